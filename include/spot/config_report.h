/*
 * What a configuration check found: every error and warning as one line of
 * text, so that a file is validated whole and --check-config prints all
 * problems at once. A report is filled by one thread.
 */
#ifndef SPOT_CONFIG_REPORT_H
#define SPOT_CONFIG_REPORT_H

#include <stddef.h>

#include "spot/device_limits.h"

struct config_report {
    int errors;
    int warnings;
    size_t len;
    int truncated; /* more lines than fit in text */
    char text[SPOT_DEVICE_REPORT_BYTES];
};

void config_report_init(struct config_report *r);
/* Adds "error: <message>\n" / "warning: <message>\n". */
void config_report_error(struct config_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void config_report_warn(struct config_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
