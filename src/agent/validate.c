/*
 * Message validation: topic, apikey policy, size, JSON syntax and the
 * vertical's schema, in that order; the first failing stage names the
 * rejection reason. The JSON is read once by yajl's callback parser: values
 * of known fields are typed straight into the record, unknown fields are
 * re-emitted by a yajl generator into extra_json.
 *
 * One thread per struct validator. No allocation per message besides the
 * yajl parser handle: strings go to a fixed arena sized for the largest
 * accepted payload.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "spot/err.h"
#include "spot/topic.h"
#include "spot/utf8.h"
#include "validate.h"

/* Keys remembered per message for duplicate detection, across all nesting
 * levels (a message has a few dozen). */
#define MAX_KEYS   256
#define ARENA_SIZE (2 * SPOT_MAX_PAYLOAD_LEN + 4 * SPOT_MAX_TOPIC_LEN)

enum { FIELD_NONE = -2, FIELD_EXTRA = -1 };

struct key_ref {
    size_t off, len;
    int depth;
};

struct validator {
    const struct schema_set *schemas;
    const struct groups *groups;
    yajl_gen extra;
    struct record rec;

    /* per-message parse state */
    const struct schema_vertical *sv;
    int depth;       /* 0 outside the top object, 1 inside it */
    int field;       /* field of the current top-level key, or FIELD_* */
    int extra_open;  /* the extra object has been opened */
    int extra_depth; /* nesting inside the current extra value */
    int skipping;    /* the current container is a schema field's bad value:
                        parse it through, keep nothing */
    enum reject_reason stop_reason; /* set when a callback stopped yajl */
    enum reject_reason reason;      /* first schema/range problem */
    char detail[SPOT_MAX_DETAIL_LEN];
    unsigned long long seen; /* bit per schema field */
    struct key_ref keys[MAX_KEYS];
    size_t n_keys;
    size_t arena_used;
    char arena[ARENA_SIZE];
};

const char *reject_reason_name(enum reject_reason r)
{
    static const char *const names[REJECT_COUNT] = {
        "",     "topic",  "unknown_apikey", "too_large",
        "json", "schema", "range",          "ngsi_rejected",
    };
    return (unsigned)r < REJECT_COUNT ? names[r] : "unknown";
}

/* --- small helpers ------------------------------------------------------ */

static char *arena_copy(struct validator *v, const void *s, size_t len)
{
    if (v->arena_used + len + 1 > sizeof v->arena)
        return NULL;
    char *p = v->arena + v->arena_used;
    memcpy(p, s, len);
    p[len] = '\0';
    v->arena_used += len + 1;
    return p;
}

/* Records the first problem of a given severity: schema beats range. */
static void problem(struct validator *v, enum reject_reason r, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));
static void problem(struct validator *v, enum reject_reason r, const char *fmt,
                    ...)
{
    if (v->reason == REJECT_SCHEMA ||
        (v->reason == REJECT_RANGE && r == REJECT_RANGE))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    v->reason = r;
}

/* Stops the parser with a reason of its own (json-level problems found by
 * the callbacks, such as depth or non-finite numbers). */
static int stop(struct validator *v, enum reject_reason r, const char *msg)
{
    v->stop_reason = r;
    snprintf(v->detail, sizeof v->detail, "%s", msg);
    return 0;
}

static const char *field_name(const struct validator *v)
{
    return v->sv->fields[v->field].name;
}

/* --- date and time ------------------------------------------------------- */

static int digits(const char *s, size_t n, int *out)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int validate_parse_time(const char *s, size_t len, int64_t *out_us)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;
    if (len < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
        s[13] != ':' || s[16] != ':' || s[len - 1] != 'Z')
        return SPOT_EINVAL;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) ||
        digits(s + 17, 2, &sec))
        return SPOT_EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59)
        return SPOT_EINVAL;
    if (d > mdays[mo - 1] + (mo == 2 && is_leap(y)))
        return SPOT_EINVAL;
    long frac_us = 0;
    size_t p = 19;
    if (p < len - 1) {
        if (s[p] != '.')
            return SPOT_EINVAL;
        size_t nd = len - 1 - (p + 1);
        if (nd < 1 || nd > 9)
            return SPOT_EINVAL;
        long scale = 100000;
        for (size_t i = p + 1; i < len - 1; i++) {
            if (s[i] < '0' || s[i] > '9')
                return SPOT_EINVAL;
            frac_us += (s[i] - '0') * scale;
            scale /= 10;
        }
    }
    long long days = days_from_civil(y, mo, d);
    *out_us = (int64_t)((days * 86400 + h * 3600 + mi * 60 + sec) * 1000000 +
                        frac_us);
    return SPOT_OK;
}

static void put_digits(char *p, long long x, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + x % 10);
        x /= 10;
    }
}

void validate_format_time(int64_t t_us, char out[32])
{
    long long secs = t_us / 1000000;
    long long us = t_us % 1000000;
    if (us < 0) {
        us += 1000000;
        secs -= 1;
    }
    long long days = secs / 86400;
    long long rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    /* hand-formatted: this runs for every message */
    memcpy(out, "0000-00-00T00:00:00.000000Z", 28);
    put_digits(out, y < 0 ? 0 : y % 10000, 4);
    put_digits(out + 5, m, 2);
    put_digits(out + 8, d, 2);
    put_digits(out + 11, rem / 3600, 2);
    put_digits(out + 14, rem / 60 % 60, 2);
    put_digits(out + 17, rem % 60, 2);
    put_digits(out + 20, us, 6);
}

/* --- duplicate keys ------------------------------------------------------ */

/* Remembers key at the current depth; returns 1 if the enclosing object
 * already had it, -1 when too many keys. */
static int key_seen(struct validator *v, const unsigned char *key, size_t len)
{
    for (size_t i = v->n_keys; i-- > 0;) {
        const struct key_ref *k = &v->keys[i];
        if (k->depth < v->depth)
            break;
        if (k->depth == v->depth && k->len == len &&
            memcmp(v->arena + k->off, key, len) == 0)
            return 1;
    }
    if (v->n_keys == MAX_KEYS)
        return -1;
    char *copy = arena_copy(v, key, len);
    if (copy == NULL)
        return -1;
    v->keys[v->n_keys++] =
        (struct key_ref){(size_t)(copy - v->arena), len, v->depth};
    return 0;
}

static void keys_pop_depth(struct validator *v)
{
    while (v->n_keys > 0 && v->keys[v->n_keys - 1].depth >= v->depth)
        v->n_keys--;
}

/* --- typed values of schema fields --------------------------------------- */

static int in_allowed_numbers(const struct schema_field *f, double x)
{
    for (size_t i = 0; i < f->n_allowed_numbers; i++)
        if (f->allowed_numbers[i] == x)
            return 1;
    return f->n_allowed_numbers == 0;
}

/* A field value breaks a physical rule: key fields reject the message,
 * others become NULL and the message is dead-lettered with reason range. */
static void out_of_range(struct validator *v, struct value *val,
                         const char *what)
{
    const struct schema_field *f = &v->sv->fields[v->field];
    if (f->key) {
        problem(v, REJECT_SCHEMA, "field \"%s\" %s", f->name, what);
        return;
    }
    problem(v, REJECT_RANGE, "field \"%s\" %s", f->name, what);
    val->kind = VALUE_NULL;
    val->out_of_range = true;
}

static void check_number_range(struct validator *v, struct value *val)
{
    const struct schema_field *f = &v->sv->fields[v->field];
    char what[96];
    if ((f->has_min && val->number < f->min) ||
        (f->has_max && val->number > f->max)) {
        snprintf(what, sizeof what, "value %.17g outside [%g, %g]", val->number,
                 f->has_min ? f->min : -INFINITY,
                 f->has_max ? f->max : INFINITY);
        out_of_range(v, val, what);
    } else if (!in_allowed_numbers(f, val->number)) {
        snprintf(what, sizeof what, "value %.17g is not an allowed code",
                 val->number);
        out_of_range(v, val, what);
    }
}

static int is_hex40(const char *s, size_t len)
{
    if (len != 40)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return 0;
    return 1;
}

static void check_text(struct validator *v, struct value *val)
{
    const struct schema_field *f = &v->sv->fields[v->field];
    if (f->max_length > 0 && val->text_len > f->max_length) {
        out_of_range(v, val, "is longer than allowed");
        return;
    }
    if (f->pattern != NULL && strcmp(f->pattern, "hex40") == 0 &&
        !is_hex40(val->text, val->text_len)) {
        out_of_range(v, val, "is not 40 hexadecimal characters");
        return;
    }
    if (f->n_allowed_texts > 0) {
        for (size_t i = 0; i < f->n_allowed_texts; i++)
            if (strlen(f->allowed_texts[i]) == val->text_len &&
                memcmp(f->allowed_texts[i], val->text, val->text_len) == 0)
                return;
        out_of_range(v, val, "is not one of the allowed values");
    }
}

static struct value *field_value(struct validator *v)
{
    v->seen |= 1ull << v->field;
    return &v->rec.values[v->field];
}

static void type_error(struct validator *v, const char *got)
{
    static const char *const want[] = {"a number", "an integer", "a string",
                                       "\"true\" or \"false\"",
                                       "an ISO 8601 UTC date-time string"};
    problem(v, REJECT_SCHEMA, "field \"%s\" must be %s, not %s", field_name(v),
            want[v->sv->fields[v->field].type], got);
}

/* --- extra (unknown) fields ---------------------------------------------- */

static int extra_active(const struct validator *v)
{
    return v->field == FIELD_EXTRA || v->extra_depth > 0;
}

/* After a scalar at the top level, the current key's value is complete. */
static void value_done(struct validator *v)
{
    if (v->extra_depth == 0)
        v->field = FIELD_NONE;
}

static int gen_ok(struct validator *v, yajl_gen_status st)
{
    if (st != yajl_gen_status_ok)
        return stop(v, REJECT_JSON, "cannot re-encode an extra field");
    return 1;
}

/* --- yajl callbacks ------------------------------------------------------ */

static int top_level_scalar(struct validator *v)
{
    if (v->depth == 0)
        return stop(v, REJECT_SCHEMA, "message is not a JSON object");
    return 1;
}

static int on_null(void *ctx)
{
    struct validator *v = ctx;
    if (!top_level_scalar(v))
        return 0;
    if (v->skipping) {
        /* inside a schema field's bad container */
    } else if (extra_active(v)) {
        if (!gen_ok(v, yajl_gen_null(v->extra)))
            return 0;
    } else if (v->field >= 0) {
        struct value *val = field_value(v);
        if (v->sv->fields[v->field].nullable)
            val->kind = VALUE_NULL;
        else
            problem(v, REJECT_SCHEMA, "field \"%s\" must not be null",
                    field_name(v));
    }
    value_done(v);
    return 1;
}

static int on_boolean(void *ctx, int b)
{
    struct validator *v = ctx;
    if (!top_level_scalar(v))
        return 0;
    if (v->skipping) {
        /* inside a schema field's bad container */
    } else if (extra_active(v)) {
        if (!gen_ok(v, yajl_gen_bool(v->extra, b)))
            return 0;
    } else if (v->field >= 0) {
        struct value *val = field_value(v);
        if (v->sv->fields[v->field].type == SCHEMA_BOOL_TEXT) {
            val->kind = VALUE_BOOL;
            val->boolean = b != 0;
        } else {
            type_error(v, "a boolean");
        }
    }
    value_done(v);
    return 1;
}

/* True when the number text is a zero ("0", "-0.00", "0e5"): strtod's
 * ERANGE on a zero result means underflow only for non-zero texts. */
static int is_zero_text(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 'e' || s[i] == 'E')
            return 1;
        if (s[i] >= '1' && s[i] <= '9')
            return 0;
    }
    return 1;
}

/* Clinger's fast path: a decimal whose digits make an integer of at most
 * 2^53 and a power of ten up to 22 converts exactly (as strtod would) with
 * one division: returns 2. Up to 19 digits (devices print floats with 17)
 * the result is within 2 ulp, which is all range checks need: returns 1
 * (sinks that need the exact double take strtod of the text then). Returns
 * 0 when the text needs strtod. */
static int fast_strtod(const char *s, size_t len, double *out)
{
    static const double pow10[] = {
        1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    int neg = 0;
    if (i < len && s[i] == '-') {
        neg = 1;
        i++;
    }
    unsigned long long mant = 0;
    int ndig = 0, frac = 0, dot = 0;
    for (; i < len; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (mant == 0 && c == '0') {
                if (dot)
                    frac++;
                continue; /* leading zeros are not significant */
            }
            if (++ndig > 19)
                return 0;
            mant = mant * 10 + (unsigned)(c - '0');
            if (dot)
                frac++;
        } else if (c == '.' && !dot) {
            dot = 1;
        } else {
            return 0; /* exponent: leave it to strtod */
        }
    }
    if (frac > 22)
        return 0;
    double x = (double)mant / pow10[frac];
    *out = neg ? -x : x;
    return mant <= (1ull << 53) ? 2 : 1;
}

static int on_number(void *ctx, const char *s, size_t len)
{
    struct validator *v = ctx;
    if (!top_level_scalar(v))
        return 0;
    char buf[64];
    double x;
    int fast = fast_strtod(s, len, &x);
    bool exact = fast != 1;
    bool erange = false; /* errno is only strtod's to read when it ran */
    if (fast) {
        /* no errno involved */
    } else if (len >= sizeof buf) {
        /* Longer than any double needs: parse a copy from the arena. */
        char *copy = arena_copy(v, s, len);
        if (copy == NULL)
            return stop(v, REJECT_TOO_LARGE, "message too large");
        errno = 0;
        x = strtod(copy, NULL);
        erange = errno == ERANGE;
    } else {
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        x = strtod(buf, NULL);
        erange = errno == ERANGE;
    }
    if ((erange && x != 0.0) || !isfinite(x) ||
        (erange && x == 0.0 && !is_zero_text(s, len)))
        return stop(v, REJECT_JSON, "number out of the range of a double");

    if (v->skipping) {
        /* inside a schema field's bad container */
    } else if (extra_active(v)) {
        if (!gen_ok(v, yajl_gen_number(v->extra, s, len)))
            return 0;
    } else if (v->field >= 0) {
        struct value *val = field_value(v);
        const struct schema_field *f = &v->sv->fields[v->field];
        if (f->type == SCHEMA_NUMBER || f->type == SCHEMA_INTEGER) {
            val->number = x;
            val->number_exact = exact;
            val->text = arena_copy(v, s, len);
            val->text_len = len;
            if (val->text == NULL)
                return stop(v, REJECT_TOO_LARGE, "message too large");
            if (f->type == SCHEMA_INTEGER) {
                if (x != floor(x) || x < -2147483648.0 || x > 2147483647.0) {
                    type_error(v, "a fractional or huge number");
                    value_done(v);
                    return 1;
                }
                val->kind = VALUE_INTEGER;
                val->integer = (long long)x;
            } else {
                val->kind = VALUE_NUMBER;
            }
            check_number_range(v, val);
        } else {
            type_error(v, "a number");
        }
    }
    value_done(v);
    return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    struct validator *v = ctx;
    if (!top_level_scalar(v))
        return 0;
    if (memchr(s, '\0', len) != NULL)
        return stop(v, REJECT_JSON, "string contains U+0000");
    if (!utf8_is_valid(s, len))
        return stop(v, REJECT_JSON,
                    "string is not valid UTF-8 (overlong form, surrogate "
                    "or code point above U+10FFFF)");

    if (v->sv == NULL && v->depth == 1 && v->extra_depth == 0 &&
        v->field == FIELD_EXTRA && v->rec.time_instant_text == NULL &&
        v->n_keys > 0) {
        /* generic device: TimeInstant, when present, keys the row */
        const struct key_ref *k = &v->keys[v->n_keys - 1];
        if (k->len == 11 && memcmp(v->arena + k->off, "TimeInstant", 11) == 0) {
            if (validate_parse_time((const char *)s, len,
                                    &v->rec.time_instant_us) != SPOT_OK)
                problem(v, REJECT_SCHEMA,
                        "field \"TimeInstant\" must be an ISO 8601 UTC "
                        "date-time string");
            else
                v->rec.time_instant_text = "";
        }
    }

    if (v->skipping) {
        /* inside a schema field's bad container */
    } else if (extra_active(v)) {
        if (!gen_ok(v, yajl_gen_string(v->extra, s, len)))
            return 0;
    } else if (v->field >= 0) {
        struct value *val = field_value(v);
        const struct schema_field *f = &v->sv->fields[v->field];
        switch (f->type) {
        case SCHEMA_TEXT:
            val->kind = VALUE_TEXT;
            val->text = arena_copy(v, s, len);
            val->text_len = len;
            if (val->text == NULL)
                return stop(v, REJECT_TOO_LARGE, "message too large");
            check_text(v, val);
            break;
        case SCHEMA_BOOL_TEXT:
            if (len == 4 && memcmp(s, "true", 4) == 0) {
                val->kind = VALUE_BOOL;
                val->boolean = true;
            } else if (len == 5 && memcmp(s, "false", 5) == 0) {
                val->kind = VALUE_BOOL;
                val->boolean = false;
            } else {
                type_error(v, "another string");
            }
            break;
        case SCHEMA_DATETIME:
            if (validate_parse_time((const char *)s, len, &val->time_us) !=
                SPOT_OK) {
                type_error(v, "an invalid date-time");
            } else {
                val->kind = VALUE_TIME;
            }
            break;
        case SCHEMA_NUMBER:
        case SCHEMA_INTEGER:
            type_error(v, "a string");
            break;
        }
    }
    value_done(v);
    return 1;
}

static int open_container(struct validator *v, int is_map)
{
    if (v->depth + v->extra_depth >= SPOT_MAX_JSON_DEPTH)
        return stop(v, REJECT_JSON, "JSON nested too deeply");
    if (v->depth == 0) {
        if (!is_map)
            return stop(v, REJECT_SCHEMA, "message is not a JSON object");
        v->depth = 1;
        return 1;
    }
    if (v->skipping) {
        v->extra_depth++;
        return 1;
    }
    if (extra_active(v)) {
        yajl_gen_status st = is_map ? yajl_gen_map_open(v->extra)
                                    : yajl_gen_array_open(v->extra);
        if (!gen_ok(v, st))
            return 0;
        v->extra_depth++;
        return 1;
    }
    /* a container as the value of a schema field: parse it through for
     * syntax, keeping nothing */
    if (v->field >= 0)
        type_error(v, is_map ? "an object" : "an array");
    v->field = FIELD_EXTRA;
    v->skipping = 1;
    v->extra_depth++;
    return 1;
}

static int close_container(struct validator *v, int is_map)
{
    if (v->extra_depth > 0) {
        if (!v->skipping) {
            yajl_gen_status st = is_map ? yajl_gen_map_close(v->extra)
                                        : yajl_gen_array_close(v->extra);
            if (!gen_ok(v, st))
                return 0;
        }
        if (is_map) {
            /* forget the keys of the closed nested object */
            int saved = v->depth;
            v->depth = 1 + v->extra_depth;
            keys_pop_depth(v);
            v->depth = saved;
        }
        v->extra_depth--;
        if (v->extra_depth == 0)
            v->skipping = 0;
        value_done(v);
        return 1;
    }
    v->depth = 0; /* end of the top-level object */
    return 1;
}

static int on_start_map(void *ctx)
{
    return open_container(ctx, 1);
}

static int on_end_map(void *ctx)
{
    return close_container(ctx, 1);
}

static int on_start_array(void *ctx)
{
    return open_container(ctx, 0);
}

static int on_end_array(void *ctx)
{
    return close_container(ctx, 0);
}

/* At most 40 bytes of a key for a detail, cut at a character boundary
 * (the detail is stored as text and must stay valid UTF-8). */
static int key_quote_len(const unsigned char *key, size_t len)
{
    return (int)utf8_cut(key, len, 40);
}

static int duplicate_key(struct validator *v, const unsigned char *key,
                         size_t len)
{
    char name[64];
    snprintf(name, sizeof name, "%.*s", key_quote_len(key, len), key);
    snprintf(v->detail, sizeof v->detail, "duplicate key \"%s\"", name);
    v->stop_reason = REJECT_JSON;
    return 0;
}

static int on_map_key(void *ctx, const unsigned char *key, size_t len)
{
    struct validator *v = ctx;
    if (memchr(key, '\0', len) != NULL)
        return stop(v, REJECT_JSON, "object key contains U+0000");
    if (!utf8_is_valid(key, len))
        return stop(v, REJECT_JSON,
                    "object key is not valid UTF-8 (overlong form, "
                    "surrogate or code point above U+10FFFF)");
    int idx = -1;
    if (v->extra_depth == 0 && v->sv != NULL)
        idx = schema_field_index(v->sv, (const char *)key, len);
    if (idx >= 0) {
        /* a schema field: its seen bit detects duplicates and aliases */
        if (v->seen & (1ull << idx)) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", key_quote_len(key, len), key);
            snprintf(v->detail, sizeof v->detail,
                     "duplicate key \"%s\": field \"%s\" given twice", name,
                     v->sv->fields[idx].name);
            v->stop_reason = REJECT_JSON;
            return 0;
        }
        v->field = idx;
        return 1;
    }
    int saved = v->depth;
    v->depth += v->extra_depth; /* duplicate scope = nesting level */
    int dup = key_seen(v, key, len);
    v->depth = saved;
    if (dup < 0)
        return stop(v, REJECT_JSON, "too many object keys");
    if (dup > 0)
        return duplicate_key(v, key, len);
    if (v->extra_depth > 0)
        return v->skipping || gen_ok(v, yajl_gen_string(v->extra, key, len));
    v->field = FIELD_EXTRA;
    if (!v->extra_open) {
        if (!gen_ok(v, yajl_gen_map_open(v->extra)))
            return 0;
        v->extra_open = 1;
    }
    return gen_ok(v, yajl_gen_string(v->extra, key, len));
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* --- stages --------------------------------------------------------------- */

static void reject(struct validator *v, enum reject_reason r, const char *fmt,
                   ...) __attribute__((format(printf, 3, 4)));
static void reject(struct validator *v, enum reject_reason r, const char *fmt,
                   ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->rec.detail, sizeof v->rec.detail, fmt, ap);
    va_end(ap);
    v->rec.reason = r;
}

static int stage_topic(struct validator *v, const char *topic, size_t topic_len)
{
    struct topic_parts tp;
    char why[160];
    if (topic_parse(topic, topic_len, &tp, why, sizeof why) != SPOT_OK) {
        reject(v, REJECT_TOPIC, "%s", why);
        return 0;
    }
    struct record *r = &v->rec;
    r->vertical = tp.vertical;
    r->apikey = arena_copy(v, tp.apikey, tp.apikey_len);
    r->device_id = arena_copy(v, tp.device, tp.device_len);
    r->full_device_id = arena_copy(v, tp.full_device, tp.full_device_len);
    if (tp.vertical != SPOT_V_GENERIC)
        r->schema = schema_set_vertical(v->schemas, tp.vertical);
    return 1;
}

static int stage_apikey(struct validator *v)
{
    struct record *r = &v->rec;
    if (v->groups == NULL || groups_count(v->groups) == 0) {
        if (r->vertical == SPOT_V_GENERIC) {
            reject(v, REJECT_UNKNOWN_APIKEY,
                   "topic has no vertical and apikey \"%.64s\" is not a "
                   "generic service group",
                   r->apikey);
            return 0;
        }
        return 1;
    }
    r->group = groups_find(v->groups, r->apikey, strlen(r->apikey));
    if (r->group == NULL) {
        reject(v, REJECT_UNKNOWN_APIKEY, "apikey \"%.64s\" is not configured",
               r->apikey);
        return 0;
    }
    if (r->vertical == SPOT_V_GENERIC && !r->group->generic) {
        reject(v, REJECT_UNKNOWN_APIKEY,
               "topic has no vertical and apikey \"%.64s\" is not a generic "
               "service group",
               r->apikey);
        return 0;
    }
    if (r->vertical != SPOT_V_GENERIC &&
        !(r->group->verticals & (1u << r->vertical))) {
        reject(v, REJECT_UNKNOWN_APIKEY,
               "vertical %s is not allowed for apikey \"%.64s\"",
               vertical_code(r->vertical), r->apikey);
        return 0;
    }
    return 1;
}

static void json_error_detail(struct validator *v, yajl_handle h,
                              const unsigned char *payload, size_t len)
{
    size_t at = yajl_get_bytes_consumed(h);
    unsigned char *msg = yajl_get_error(h, 0, payload, len);
    const char *text = msg ? (const char *)msg : "invalid JSON";
    /* yajl's messages end with a newline */
    size_t tl = strcspn(text, "\n");
    reject(v, REJECT_JSON, "parse error at byte %zu: %.*s", at, (int)tl, text);
    if (msg)
        yajl_free_error(h, msg);
}

static int stage_json(struct validator *v, const unsigned char *payload,
                      size_t len)
{
    yajl_handle h = yajl_alloc(&callbacks, NULL, v);
    if (h == NULL)
        return -1;
    yajl_status st = yajl_parse(h, payload, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    int ok = 1;
    if (st == yajl_status_client_canceled) {
        reject(v, v->stop_reason, "%s", v->detail);
        ok = 0;
    } else if (st != yajl_status_ok) {
        json_error_detail(v, h, payload, len);
        ok = 0;
    }
    yajl_free(h);
    return ok;
}

static void stage_schema(struct validator *v)
{
    struct record *r = &v->rec;
    if (v->sv != NULL) {
        for (size_t i = 0; i < v->sv->n_fields; i++) {
            if (v->sv->fields[i].mandatory && !(v->seen & (1ull << i))) {
                problem(v, REJECT_SCHEMA, "mandatory field \"%s\" missing",
                        v->sv->fields[i].name);
                break;
            }
        }
    } else if (r->time_instant_text == NULL) {
        r->time_instant_us = r->received_us; /* generic without TimeInstant */
    }
    if (v->reason != REJECT_NONE) {
        r->reason = v->reason;
        memcpy(r->detail, v->detail, sizeof r->detail);
    }
}

/* Gives time values their normalised text once parsing succeeded. */
static void normalise_times(struct validator *v)
{
    struct record *r = &v->rec;
    char buf[32];
    if (v->sv != NULL) {
        for (size_t i = 0; i < v->sv->n_fields; i++) {
            struct value *val = &r->values[i];
            if (val->kind != VALUE_TIME)
                continue;
            validate_format_time(val->time_us, buf);
            val->text = arena_copy(v, buf, strlen(buf));
            val->text_len = strlen(buf);
        }
        const struct value *t = &r->values[v->sv->time_field];
        r->time_instant_us = t->time_us;
        r->time_instant_text = t->text;
    } else {
        validate_format_time(r->time_instant_us, buf);
        r->time_instant_text = arena_copy(v, buf, strlen(buf));
    }
}

static void reset(struct validator *v, int64_t received_us)
{
    memset(&v->rec, 0, sizeof v->rec);
    v->rec.received_us = received_us;
    v->rec.vertical = SPOT_V_GENERIC;
    v->sv = NULL;
    v->depth = 0;
    v->field = FIELD_NONE;
    v->extra_open = 0;
    v->extra_depth = 0;
    v->skipping = 0;
    v->stop_reason = REJECT_NONE;
    v->reason = REJECT_NONE;
    v->detail[0] = '\0';
    v->seen = 0;
    v->n_keys = 0;
    v->arena_used = 0;
    yajl_gen_clear(v->extra);
    yajl_gen_reset(v->extra, NULL);
}

int validator_run(struct validator *v, const char *topic, size_t topic_len,
                  const unsigned char *payload, size_t payload_len,
                  int64_t received_us, const struct record **out)
{
    reset(v, received_us);
    *out = &v->rec;
    struct record *r = &v->rec;

    if (!stage_topic(v, topic, topic_len) || !stage_apikey(v))
        return SPOT_OK;
    if (payload_len > SPOT_MAX_PAYLOAD_LEN) {
        reject(v, REJECT_TOO_LARGE, "payload of %zu bytes exceeds %d bytes",
               payload_len, SPOT_MAX_PAYLOAD_LEN);
        return SPOT_OK;
    }
    v->sv = r->schema;
    int ok = stage_json(v, payload, payload_len);
    if (ok < 0)
        return SPOT_ENOMEM;
    if (!ok)
        return SPOT_OK;
    stage_schema(v);
    if (r->reason == REJECT_SCHEMA)
        return SPOT_OK;
    normalise_times(v);

    if (v->extra_open) {
        const unsigned char *buf;
        size_t len;
        if (yajl_gen_map_close(v->extra) != yajl_gen_status_ok ||
            yajl_gen_get_buf(v->extra, &buf, &len) != yajl_gen_status_ok) {
            reject(v, REJECT_JSON, "cannot re-encode extra fields");
            return SPOT_OK;
        }
        r->extra_json = (const char *)buf;
        r->extra_len = len;
    } else if (v->sv == NULL) {
        r->extra_json = "{}";
        r->extra_len = 2;
    }
    return SPOT_OK;
}

int validator_new(struct validator **out, const struct schema_set *schemas,
                  const struct groups *groups)
{
    struct validator *v = calloc(1, sizeof *v);
    if (v == NULL)
        return SPOT_ENOMEM;
    v->schemas = schemas;
    v->groups = groups;
    v->extra = yajl_gen_alloc(NULL);
    if (v->extra == NULL) {
        free(v);
        return SPOT_ENOMEM;
    }
    *out = v;
    return SPOT_OK;
}

void validator_set_groups(struct validator *v, const struct groups *groups)
{
    v->groups = groups;
}

void validator_free(struct validator *v)
{
    if (v == NULL)
        return;
    yajl_gen_free(v->extra);
    free(v);
}
