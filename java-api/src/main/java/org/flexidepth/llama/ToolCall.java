package org.flexidepth.llama;

/**
 * A call of a {@link Tool} by the model, parsed from its reply by upstream's chat parser.
 *
 * @param id        the call's id (the template's own, or one generated), to answer with
 *                  {@link ChatMessage#toolResult(ToolCall, String)}
 * @param name      the tool's name
 * @param arguments the arguments as JSON text (an object, valid against the tool's parameters
 *                  when the tool-call grammar constrained the generation)
 */
public record ToolCall(String id, String name, String arguments) {
    /**
     * Checks the call.
     *
     * @throws InvalidArgumentException if a component is null
     */
    public ToolCall {
        if (id == null || name == null || arguments == null) {
            throw new InvalidArgumentException("a tool call needs an id, a name and arguments");
        }
    }
}
