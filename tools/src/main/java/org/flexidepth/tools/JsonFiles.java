package org.flexidepth.tools;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * JSON for the example programs, through Jackson: objects as maps (in file order), lists,
 * strings, booleans, {@code Long} for integers that fit one (so that a config's sizes read as exact
 * integers) and {@code Double} for every other number (tokenizer configs hold values like 1e30
 * written as integers).
 */
public final class JsonFiles {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private JsonFiles() {
    }

    /** Parses a JSON text. @throws IllegalArgumentException if it is not valid JSON */
    public static Object parse(String text) {
        try {
            return normalize(MAPPER.readValue(text, Object.class));
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("invalid JSON: " + e.getOriginalMessage(), e);
        }
    }

    /** Reads a file holding one JSON object. */
    public static Map<String, Object> readObject(Path file) throws IOException {
        try {
            @SuppressWarnings("unchecked")
            Map<String, Object> m = (Map<String, Object>) normalize(MAPPER.readValue(file.toFile(), new TypeReference<Map<String, Object>>() { }));
            return m;
        } catch (JsonProcessingException e) {
            throw new IOException(file + ": not a JSON object: " + e.getOriginalMessage(), e);
        }
    }

    @SuppressWarnings("unchecked")
    private static Object normalize(Object v) {
        if (v instanceof Integer i) {
            return i.longValue();
        }
        if (v instanceof BigInteger b) {
            return b.doubleValue();
        }
        if (v instanceof Map<?, ?> m) {
            ((Map<Object, Object>) m).replaceAll((k, x) -> normalize(x));
        } else if (v instanceof List<?> l) {
            ((List<Object>) l).replaceAll(JsonFiles::normalize);
        }
        return v;
    }

    /** A JSON string literal, quotes included. */
    public static String quote(String s) {
        try {
            return MAPPER.writeValueAsString(s);
        } catch (JsonProcessingException e) {
            throw new UncheckedIOException(e);
        }
    }
}
