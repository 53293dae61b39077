/*
 * Helpers shared by the fuzz targets (tests/fuzz/fuzz_util.c).
 */
#ifndef SPOT_FUZZ_UTIL_H
#define SPOT_FUZZ_UTIL_H

#include <stddef.h>

/* A private directory for this process, made on first use and removed at
 * exit. */
const char *fuzz_scratch_dir(void);
/* Removes dir and everything below it (must be inside the scratch dir). */
void fuzz_rm_rf(const char *dir);
/* Writes len bytes to path (created or truncated); 0 or -1. */
int fuzz_write_file(const char *path, const void *data, size_t len);

/* Silences the product's log lines (set FUZZ_LOGS=1 to see them). */
void fuzz_quiet_logs(void);

#endif
