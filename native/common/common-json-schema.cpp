#include "common-errors.h"

#include "llama-fork-common.h"

#include "json-schema-to-grammar.h"
#include "json.h"

char * llama_fork_common_json_schema_to_grammar(const char * schema) {
    return fork_common::guarded<char *>(nullptr, [&]() -> char * {
        if (schema == nullptr) {
            throw std::invalid_argument("the schema is NULL");
        }
        return fork_common::copy_string(json_schema_to_grammar(common_json::parse(schema)));
    });
}
