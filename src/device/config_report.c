/*
 * Accumulated configuration errors and warnings (API:
 * spot/config_report.h). One thread per report.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "spot/config_report.h"

void config_report_init(struct config_report *r)
{
    memset(r, 0, sizeof *r);
}

static void add(struct config_report *r, const char *kind, const char *fmt,
                va_list ap) __attribute__((format(printf, 3, 0)));
static void add(struct config_report *r, const char *kind, const char *fmt,
                va_list ap)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%s: ", kind);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = strlen(line);
    if (r->len + len + 2 > sizeof r->text) {
        r->truncated = 1;
        return;
    }
    memcpy(r->text + r->len, line, len);
    r->len += len;
    r->text[r->len++] = '\n';
    r->text[r->len] = '\0';
}

void config_report_error(struct config_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(r, "error", fmt, ap);
    va_end(ap);
    r->errors++;
}

void config_report_warn(struct config_report *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add(r, "warning", fmt, ap);
    va_end(ap);
    r->warnings++;
}
