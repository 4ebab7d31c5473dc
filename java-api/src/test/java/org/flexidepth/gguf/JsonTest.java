package org.flexidepth.gguf;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

class JsonTest {
    @Test
    void parsesTheShapesModelFilesUse() {
        Object v = Json.parse("""
                {"b": [1, -2, 3.5, 1e-06, 1000000000000000019884624838656],
                 "a": {"s": "\\u2581x\\n\\"\\ud83d\\ude00", "t": true, "f": false, "n": null},
                 "e": [], "o": {}}
                """);
        Map<?, ?> m = (Map<?, ?>) v;
        assertEquals(List.of("b", "a", "e", "o"), List.copyOf(m.keySet()), "object order is kept");
        List<?> b = (List<?>) m.get("b");
        assertEquals(1L, b.get(0));
        assertEquals(-2L, b.get(1));
        assertEquals(3.5, b.get(2));
        assertEquals(1e-6, b.get(3));
        assertEquals(1e30, (Double) b.get(4), 1e15, "integers beyond long become doubles");
        Map<?, ?> a = (Map<?, ?>) m.get("a");
        assertEquals("▁x\n\"😀", a.get("s"));
        assertEquals(true, a.get("t"));
        assertEquals(false, a.get("f"));
        assertNull(a.get("n"));
        assertEquals(List.of(), m.get("e"));
        assertEquals(Map.of(), m.get("o"));
    }

    @Test
    void rejectsMalformedText() {
        for (String bad : List.of("", "{", "[1,]", "{\"a\" 1}", "\"unterminated", "tru", "{} x", "\"\\q\"")) {
            assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
        }
    }
}
