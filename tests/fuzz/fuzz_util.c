/*
 * Helpers shared by the fuzz targets: the invariant failure, and a private
 * scratch directory per process for targets that read files.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spot/log.h"
#include "fuzz.h"
#include "fuzz_util.h"

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", file, line, what);
    abort();
}

static char scratch[256];

static void scratch_remove(void)
{
    if (scratch[0] != '\0')
        fuzz_rm_rf(scratch);
}

const char *fuzz_scratch_dir(void)
{
    if (scratch[0] != '\0')
        return scratch;
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/spotfuzz.XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(scratch) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(scratch_remove);
    return scratch;
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char child[1024];
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(child, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(child);
            else
                unlink(child);
        }
        closedir(d);
    }
    rmdir(path);
}

void fuzz_rm_rf(const char *dir)
{
    /* only ever our own mkdtemp directory or a child of it */
    if (strstr(dir, "/spotfuzz.") == NULL)
        abort();
    rm_tree(dir);
}

int fuzz_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    int rc = fclose(f);
    return n == len && rc == 0 ? 0 : -1;
}

void fuzz_quiet_logs(void)
{
    /* below LOG_ERROR: nothing is written (log_enabled compares ints) */
    if (getenv("FUZZ_LOGS") == NULL)
        log_set_level((enum log_level) - 1);
}
