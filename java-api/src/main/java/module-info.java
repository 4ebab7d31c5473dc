/**
 * llama.cpp with FlexiDepth for Java: models, sessions, generation and FlexiDepth plug-ins
 * ({@code org.flexidepth.llama}), and GGUF and safetensors files ({@code org.flexidepth.gguf}).
 * The native bindings underneath are not part of the API.
 */
module org.flexidepth.llama {
    requires org.flexidepth.llama.bindings;
    requires org.slf4j;
    requires com.fasterxml.jackson.databind;

    exports org.flexidepth.llama;
    exports org.flexidepth.gguf;
}
