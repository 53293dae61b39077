/*
 * One line per event to stderr, as text, logfmt or JSON. Any thread.
 * log_msg() checks the level first, so disabled levels cost one compare.
 * Warnings and errors are rate-limited per call site. Never pass a secret
 * to it (log_redact_url() strips credentials from URLs).
 */
#ifndef SPOT_LOG_H
#define SPOT_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };

void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug". Returns SPOT_OK or SPOT_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_format(enum log_format format);
/* Parses "text", "logfmt", "json". Returns SPOT_OK or SPOT_EINVAL. */
int log_format_parse(const char *s, enum log_format *out);
/* Copies url with any user:password@ replaced by ***@, for logging. */
void log_redact_url(const char *url, char *out, size_t outlen);
int log_enabled(enum log_level level);
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_msg(level, module, ...)                                            \
    do {                                                                       \
        if (log_enabled(level))                                                \
            log_write(level, module, __VA_ARGS__);                             \
    } while (0)

#endif
