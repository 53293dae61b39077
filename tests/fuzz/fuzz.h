/*
 * The libFuzzer entry points every target in tests/fuzz/ defines. The same
 * file is linked either with libFuzzer (clang -fsanitize=fuzzer: `make
 * fuzz`) or with driver.c (any compiler: the corpus regression of `make
 * check`), so a target is plain C with no fuzzer dependency.
 */
#ifndef SPOT_FUZZ_H
#define SPOT_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input: must not keep state that changes how the next one runs,
 * must free what it allocates, and aborts (or trips a sanitizer) when an
 * invariant breaks. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message when cond is false: an invariant a target checks
 * beyond what the sanitizers see. */
#define FUZZ_ASSERT(cond)                                                      \
    do {                                                                       \
        if (!(cond))                                                           \
            fuzz_fail(__FILE__, __LINE__, #cond);                              \
    } while (0)

void fuzz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

#endif
