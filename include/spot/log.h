/*
 * One line per event to stderr: "ts level module: message". Any thread.
 * log_msg() checks the level first, so disabled levels cost one compare.
 * Never pass a secret to it.
 */
#ifndef SPOT_LOG_H
#define SPOT_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug". Returns SPOT_OK or SPOT_EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
int log_enabled(enum log_level level);
void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_msg(level, module, ...)                                            \
    do {                                                                       \
        if (log_enabled(level))                                                \
            log_write(level, module, __VA_ARGS__);                             \
    } while (0)

#endif
