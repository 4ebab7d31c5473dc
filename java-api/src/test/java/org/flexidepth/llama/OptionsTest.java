package org.flexidepth.llama;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OptionsTest {
    @Test
    void invalidOptionsAreRejectedWithTheirName() {
        assertTrue(assertThrows(InvalidArgumentException.class, () -> Sampling.builder().temperature(-1).build())
                .getMessage().contains("temperature"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> Sampling.builder().topP(0).build())
                .getMessage().contains("topP"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> Sampling.builder().minP(1).build())
                .getMessage().contains("minP"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> Sampling.builder().repeatPenalty(0).build())
                .getMessage().contains("repeatPenalty"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> Sampling.builder().seed(-5).build())
                .getMessage().contains("seed"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> GenerationOptions.builder().maxTokens(0).build())
                .getMessage().contains("maxTokens"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> GenerationOptions.builder().stopString("").build())
                .getMessage().contains("stop"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> SessionOptions.builder().batchSize(0).build())
                .getMessage().contains("batchSize"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> SessionOptions.builder().contextSize(-1).build())
                .getMessage().contains("contextSize"));
        assertTrue(assertThrows(InvalidArgumentException.class, () -> ModelOptions.builder().gpuLayers(-2).build())
                .getMessage().contains("gpuLayers"));
    }

    @Test
    void optionsAreImmutableValuesThatRoundTripThroughTheirBuilders() {
        GenerationOptions g = GenerationOptions.builder().maxTokens(7).stopString("x")
                .sampling(Sampling.builder().temperature(0.5f).seed(9).grammar("root ::= \"a\"").build()).build();
        assertEquals(g, g.toBuilder().build());
        assertEquals(List.of("x"), g.stopStrings());
        assertThrows(UnsupportedOperationException.class, () -> g.stopStrings().add("y"));
        SessionOptions s = SessionOptions.builder().contextSize(64).batchSize(8).threads(1).build();
        assertEquals(s, s.toBuilder().build());
        assertEquals(ModelOptions.DEFAULT, ModelOptions.DEFAULT.toBuilder().build());
    }
}
