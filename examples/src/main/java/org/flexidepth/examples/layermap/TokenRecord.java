package org.flexidepth.examples.layermap;

import org.flexidepth.llama.LayerUsage;

/**
 * One token of a layer map: a prompt token or a generated one, with its layer usage.
 *
 * @param promptId  index of the prompt in the input list
 * @param position  position of the token in its sequence
 * @param generated false for prompt tokens
 * @param tokenId   the token id
 * @param text      the token's text piece
 * @param usage     its layer usage
 */
record TokenRecord(int promptId, int position, boolean generated, int tokenId, String text, LayerUsage usage) {

    /** One JSON object, as a line of the JSONL output. */
    String toJson() {
        StringBuilder b = new StringBuilder();
        b.append("{\"prompt_id\":").append(promptId)
                .append(",\"position\":").append(position)
                .append(",\"role\":\"").append(generated ? "generated" : "prompt").append('"')
                .append(",\"token_id\":").append(tokenId)
                .append(",\"text\":").append(org.flexidepth.tools.JsonFiles.quote(text))
                .append(",\"layers_used\":").append(usage.layersUsed())
                .append(",\"total_layers\":").append(usage.totalLayers())
                .append(",\"routed_layers\":").append(usage.routedLayers())
                .append(",\"ran\":[");
        for (int i = 0; i < usage.routedLayers().size(); i++) {
            b.append(i == 0 ? "" : ",").append(usage.ran(i));
        }
        b.append("],\"gates\":[");
        for (int i = 0; i < usage.routedLayers().size(); i++) {
            b.append(i == 0 ? "" : ",").append(usage.gate(i));
        }
        return b.append("]}").toString();
    }
}
