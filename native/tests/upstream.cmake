# Upstream's own test suite (tests/ of the pinned tree), built for the fork and for the pristine
# tree. Included before the fork's add_subdirectory: it wraps upstream's add_test so that each
# test runs on the fork and, when it fails there, again with the pristine build's executable; the
# output then says which tree broke it (native/cmake/compare-upstream-test.cmake). The tests keep
# upstream's names and labels ("main", ...); ours have none or "fuzz".

# Excluded, each for a reason; they stay registered but disabled, so CTest lists them as such.
set(FLEXI_UPSTREAM_TESTS_EXCLUDED
    test-download-model            # downloads stories15M from Hugging Face: no network here or in CI
    test-thread-safety             # needs that download
    test-state-restore-fragmented  # needs that download
    test-arg-parser                # fetches a URL
    test-model-resolution          # resolves models on the Hugging Face hub
    test-model-load-cancel         # label "model": downloads a model
    test-autorelease               # label "model": downloads a model
    test-backend-sampler           # label "model": downloads a model
    test-jinja-py                  # label "python": needs Python's jinja2, which no registry here serves
    test-quantize-perf             # a benchmark, not a test: times kernels
    test-tokenizers-ggml-vocabs    # clones huggingface.co/ggml-org/vocabs
    test-eval-callback-download-model  # downloads a model
    test-eval-callback             # needs that download
)

set(FLEXI_WRAP_UPSTREAM_TESTS OFF)

# Overrides add_test while the fork's tree is configured; passes every other call through.
function(add_test)
    if (NOT FLEXI_WRAP_UPSTREAM_TESTS)
        _add_test(${ARGN})
        return()
    endif()
    cmake_parse_arguments(T "" "NAME;WORKING_DIRECTORY" "COMMAND;CONFIGURATIONS" ${ARGN})
    if (NOT T_NAME OR NOT T_COMMAND)
        _add_test(${ARGN})
        return()
    endif()
    set(wd ${CMAKE_CURRENT_BINARY_DIR})
    if (T_WORKING_DIRECTORY)
        set(wd ${T_WORKING_DIRECTORY})
    endif()
    list(GET T_COMMAND 0 exe)
    if (T_NAME IN_LIST FLEXI_UPSTREAM_TESTS_EXCLUDED OR NOT exe MATCHES "^\\$<TARGET_FILE:(.+)>$")
        _add_test(${ARGN})
        if (T_NAME IN_LIST FLEXI_UPSTREAM_TESTS_EXCLUDED)
            set_tests_properties(${T_NAME} PROPERTIES DISABLED TRUE)
        endif()
        return()
    endif()
    set(target ${CMAKE_MATCH_1})
    set_property(GLOBAL APPEND PROPERTY FLEXI_UPSTREAM_TEST_TARGETS ${target})
    _add_test(NAME ${T_NAME} WORKING_DIRECTORY ${wd}
              COMMAND ${CMAKE_COMMAND} -DNAME=${T_NAME}
                      -DPRISTINE_EXE=${FLEXI_PRISTINE_BIN}/$<TARGET_FILE_NAME:${target}>
                      -P ${FLEXI_COMPARE_SCRIPT} -- ${T_COMMAND})
endfunction()

set(FLEXI_PRISTINE_BIN ${CMAKE_BINARY_DIR}/pristine/bin)
set(FLEXI_COMPARE_SCRIPT ${CMAKE_SOURCE_DIR}/native/cmake/compare-upstream-test.cmake)

# The executables of the tests that run, for the fork's default build and the pristine one.
function(flexi_upstream_test_targets out)
    get_property(targets GLOBAL PROPERTY FLEXI_UPSTREAM_TEST_TARGETS)
    list(REMOVE_DUPLICATES targets)
    set(${out} ${targets} PARENT_SCOPE)
endfunction()
