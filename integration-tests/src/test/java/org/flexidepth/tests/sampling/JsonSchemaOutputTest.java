package org.flexidepth.tests.sampling;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import org.flexidepth.llama.GenerationOptions;
import org.flexidepth.llama.GenerationResult;
import org.flexidepth.llama.InvalidArgumentException;
import org.flexidepth.llama.LlamaModel;
import org.flexidepth.llama.Sampling;
import org.flexidepth.llama.Session;
import org.flexidepth.llama.StopReason;
import org.flexidepth.tests.api.RealModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Structured output: a model whose weights know nothing of JSON (stories260K) generates under each
 * schema, through upstream's json_schema_to_grammar, and every output parses (Jackson) and
 * validates against the schema (networknt's JSON Schema validator, draft 2020-12), for several seeds.
 */
class JsonSchemaOutputTest {
    static final int SEEDS = 3;
    static final ObjectMapper JSON = new ObjectMapper();
    static final SchemaRegistry SCHEMAS = SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12);
    static LlamaModel model;
    static Session session;

    @BeforeAll
    static void load() {
        model = LlamaModel.load(RealModels.stories260K());
        session = model.newSession();
    }

    @AfterAll
    static void close() {
        if (session != null) {
            session.close();
        }
        if (model != null) {
            model.close();
        }
    }

    static List<String> schemas() {
        String name = "{\"type\":\"string\",\"maxLength\":12}";
        return List.of(
                "{\"type\":\"boolean\"}",
                "{\"type\":\"integer\"}",
                "{\"type\":\"integer\",\"minimum\":-20,\"maximum\":150}",
                "{\"type\":\"integer\",\"minimum\":1000}",
                "{\"type\":\"number\"}",
                "{\"type\":\"string\",\"minLength\":3,\"maxLength\":10}",
                "{\"type\":\"string\",\"pattern\":\"^[a-z]{2,6}-[0-9]{3}$\"}",
                "{\"type\":\"string\",\"format\":\"date\"}",
                "{\"type\":\"string\",\"format\":\"time\"}",
                "{\"type\":\"string\",\"format\":\"date-time\"}",
                "{\"type\":\"string\",\"format\":\"uuid\"}",
                "{\"enum\":[\"red\",\"green\",\"blue\",42,null]}",
                "{\"const\":{\"version\":2}}",
                "{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":9},\"minItems\":2,\"maxItems\":5}",
                "{\"type\":\"array\",\"items\":" + name + ",\"maxItems\":3}",
                "{\"type\":\"array\",\"prefixItems\":[{\"type\":\"integer\"},{\"type\":\"boolean\"}],\"minItems\":2,\"maxItems\":2}",
                "{\"type\":\"object\",\"properties\":{\"name\":" + name + ",\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":120}},"
                        + "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
                "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},\"nick\":" + name + ",\"admin\":{\"type\":\"boolean\"}},"
                        + "\"required\":[\"id\"],\"additionalProperties\":false}",
                "{\"type\":\"object\",\"properties\":{\"owner\":{\"type\":\"object\",\"properties\":{\"name\":" + name
                        + ",\"pets\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"kind\":{\"enum\":[\"cat\",\"dog\"]},"
                        + "\"legs\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":4}},\"required\":[\"kind\",\"legs\"],\"additionalProperties\":false},"
                        + "\"maxItems\":2}},\"required\":[\"name\",\"pets\"],\"additionalProperties\":false}},\"required\":[\"owner\"],"
                        + "\"additionalProperties\":false}",
                "{\"anyOf\":[{\"type\":\"integer\",\"minimum\":0,\"maximum\":5},{\"type\":\"string\",\"maxLength\":4}]}",
                "{\"oneOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"],\"additionalProperties\":false},"
                        + "{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"boolean\"}},\"required\":[\"b\"],\"additionalProperties\":false}]}",
                "{\"$defs\":{\"point\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\",\"minimum\":-9,\"maximum\":9},"
                        + "\"y\":{\"type\":\"integer\",\"minimum\":-9,\"maximum\":9}},\"required\":[\"x\",\"y\"],\"additionalProperties\":false}},"
                        + "\"type\":\"object\",\"properties\":{\"from\":{\"$ref\":\"#/$defs/point\"},\"to\":{\"$ref\":\"#/$defs/point\"}},"
                        + "\"required\":[\"from\",\"to\"],\"additionalProperties\":false}",
                "{\"type\":\"object\",\"additionalProperties\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":3},\"maxProperties\":2}",
                "{\"type\":[\"string\",\"null\"],\"maxLength\":5}");
    }

    @ParameterizedTest
    @MethodSource("schemas")
    void everyOutputParsesAndValidates(String schemaText) throws Exception {
        Schema schema = SCHEMAS.getSchema(schemaText);
        Set<String> outputs = new HashSet<>();
        for (int seed = 1; seed <= SEEDS; seed++) {
            session.clear();
            Sampling s = Sampling.builder().seed(seed).temperature(1.0f).jsonSchema(schemaText).build();
            GenerationResult r = session.complete("Once upon a time", GenerationOptions.builder().maxTokens(600).sampling(s).build());
            assertEquals(StopReason.END_OF_GENERATION, r.stopReason(), "the grammar completed: " + r.text());
            JsonNode value = JSON.readTree(r.text());
            List<Error> errors = schema.validate(value);
            assertTrue(errors.isEmpty(), "seed " + seed + ": " + r.text() + " is invalid: " + errors);
            outputs.add(r.text());
        }
        System.out.println(schemaText + " -> " + outputs);
    }

    @Test
    void theSchemasAreMoreThanTwenty() {
        assertTrue(schemas().size() >= 20);
    }

    @Test
    void anInvalidSchemaIsATypedError() {
        Sampling s = Sampling.builder().jsonSchema("{\"type\": ").build();
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> session.complete("x", GenerationOptions.builder().maxTokens(4).sampling(s).build()));
        assertTrue(e.getMessage().contains("JSON schema"), e.getMessage());
        // the session is usable afterwards
        assertTrue(session.complete("Once", GenerationOptions.builder().maxTokens(3).build()).tokens().size() > 0);
    }

    @Test
    void grammarAndSchemaTogetherAreRejected() {
        assertThrows(InvalidArgumentException.class,
                () -> Sampling.builder().grammar("root ::= \"a\"").jsonSchema("{}").build());
    }
}
