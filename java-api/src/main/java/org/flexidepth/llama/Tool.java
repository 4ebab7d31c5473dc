package org.flexidepth.llama;

/**
 * A function the model may call, described as OpenAI's chat API describes one.
 *
 * @param name        the function's name, as the model writes it in a call
 * @param description what it does, for the model to read
 * @param parameters  a JSON schema (text) of its arguments object
 */
public record Tool(String name, String description, String parameters) {
    /**
     * Checks the tool.
     *
     * @throws InvalidArgumentException if the name is blank, the description null, or the
     *         parameters are not a JSON object
     */
    public Tool {
        if (name == null || name.isBlank()) {
            throw new InvalidArgumentException("a tool needs a name");
        }
        if (description == null) {
            throw new InvalidArgumentException("a tool needs a description (may be empty)");
        }
        if (parameters == null || !ChatJson.isObject(parameters)) {
            throw new InvalidArgumentException("the parameters of tool " + name + " must be a JSON schema object, were " + parameters);
        }
    }
}
