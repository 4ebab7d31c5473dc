package org.flexidepth.examples.layermap;

import org.flexidepth.llama.LayerUsage;
import org.flexidepth.llama.Token;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.IntStream;

/**
 * One token of a layer map: a prompt token or a generated one, with the layers it went through.
 * Under FlexiDepth the optional layers are the routed ones and {@code routing} has the router's
 * decisions; under DMTD they are the thinking layers, which run for full-depth steps only.
 *
 * @param promptId       index of the prompt in the input list
 * @param position       position of the token in its sequence
 * @param generated      false for prompt tokens
 * @param tokenId        the token id
 * @param text           the token's text piece
 * @param totalLayers    layers of the model
 * @param optionalLayers the layers a token may leave out, ascending
 * @param routing        the FlexiDepth layer usage; empty under DMTD
 * @param step           the DMTD step the token came from; empty under FlexiDepth
 */
record TokenRecord(int promptId, int position, boolean generated, int tokenId, String text, int totalLayers,
                   List<Integer> optionalLayers, Optional<LayerUsage> routing, Optional<Token.Step> step) {

    static TokenRecord routed(int promptId, int position, boolean generated, int tokenId, String text, LayerUsage usage) {
        return new TokenRecord(promptId, position, generated, tokenId, text, usage.totalLayers(), usage.routedLayers(),
                Optional.of(usage), Optional.empty());
    }

    static TokenRecord dmtd(int promptId, int position, boolean generated, int tokenId, String text, int totalLayers,
                            int thinkingLayers, Token.Step step) {
        return new TokenRecord(promptId, position, generated, tokenId, text, totalLayers,
                IntStream.range(0, thinkingLayers).boxed().toList(), Optional.empty(), Optional.of(step));
    }

    /** {@return whether the token ran optional layer i (an index into optionalLayers)} */
    boolean ran(int i) {
        return routing.map(u -> u.ran(i)).orElseGet(() -> step.orElseThrow() == Token.Step.FULL_DEPTH);
    }

    int layersUsed() {
        return routing.map(LayerUsage::layersUsed).orElseGet(() -> ran(0) ? totalLayers : totalLayers - optionalLayers.size());
    }

    List<Integer> skippedLayers() {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < optionalLayers.size(); i++) {
            if (!ran(i)) {
                out.add(optionalLayers.get(i));
            }
        }
        return out;
    }

    /** One JSON object, as a line of the JSONL output. */
    String toJson() {
        StringBuilder b = new StringBuilder();
        b.append("{\"prompt_id\":").append(promptId)
                .append(",\"position\":").append(position)
                .append(",\"role\":\"").append(generated ? "generated" : "prompt").append('"')
                .append(",\"token_id\":").append(tokenId)
                .append(",\"text\":").append(org.flexidepth.tools.JsonFiles.quote(text))
                .append(",\"layers_used\":").append(layersUsed())
                .append(",\"total_layers\":").append(totalLayers);
        step.ifPresent(s -> b.append(",\"step\":\"").append(s == Token.Step.FULL_DEPTH ? "full_depth" : "decoding_layers").append('"'));
        b.append(routing.isPresent() ? ",\"routed_layers\":" : ",\"thinking_layers\":").append(optionalLayers).append(",\"ran\":[");
        for (int i = 0; i < optionalLayers.size(); i++) {
            b.append(i == 0 ? "" : ",").append(ran(i));
        }
        b.append(']');
        routing.ifPresent(u -> {
            b.append(",\"gates\":[");
            for (int i = 0; i < optionalLayers.size(); i++) {
                b.append(i == 0 ? "" : ",").append(u.gate(i));
            }
            b.append(']');
        });
        return b.append('}').toString();
    }
}
