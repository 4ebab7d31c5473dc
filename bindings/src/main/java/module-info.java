/**
 * The generated FFM bindings of the fork's C API. Internal: only the Java API reads them, so the
 * package is exported to it alone.
 */
module org.flexidepth.llama.bindings {
    exports org.flexidepth.llama.bindings to org.flexidepth.llama;
}
