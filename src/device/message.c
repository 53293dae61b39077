/*
 * The device-side message encoder (API: spot/message.h): readings to wire
 * contract JSON with yajl_gen, schema-driven. One thread per encoder.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yajl/yajl_gen.h>

#include "spot/err.h"
#include "spot/message.h"

struct message_encoder {
    yajl_gen g;
};

int message_encoder_new(struct message_encoder **out)
{
    struct message_encoder *e = calloc(1, sizeof *e);
    if (e == NULL)
        return SPOT_ENOMEM;
    e->g = yajl_gen_alloc(NULL);
    if (e->g == NULL) {
        free(e);
        return SPOT_ENOMEM;
    }
    yajl_gen_config(e->g, yajl_gen_validate_utf8, 1);
    *out = e;
    return SPOT_OK;
}

void message_encoder_free(struct message_encoder *e)
{
    if (e == NULL)
        return;
    yajl_gen_free(e->g);
    free(e);
}

int64_t message_align(int64_t t_s, int64_t period_s)
{
    int64_t q = t_s / period_s;
    if (t_s % period_s != 0 && t_s < 0)
        q--;
    return q * period_s;
}

void message_format_time(int64_t t_s, char out[32])
{
    time_t t = (time_t)t_s;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "1970-01-01T00:00:00Z");
        return;
    }
    /* numeric conversions only: the same in every locale */
    if (strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

size_t message_format_number(double x, char out[32])
{
    int n = 0;
    /* the shortest of 15, 16, 17 significant digits that reads back */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, x);
        if (strtod(out, NULL) == x)
            break;
    }
    /* a locale with a decimal comma: JSON wants a point */
    for (int i = 0; i < n; i++)
        if (out[i] == ',')
            out[i] = '.';
    return (size_t)n;
}

static int gen_string(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) ==
                   yajl_gen_status_ok
               ? SPOT_OK
               : SPOT_EINVAL;
}

static int gen_number(yajl_gen g, double x)
{
    char buf[32];
    size_t n = message_format_number(x, buf);
    return yajl_gen_number(g, buf, n) == yajl_gen_status_ok ? SPOT_OK
                                                            : SPOT_EINVAL;
}

/* One sensor field; its key is already written. */
static int gen_value(yajl_gen g, const struct schema_field *f,
                     const struct reading_value *v, char *why, size_t whylen)
{
    if (v->kind == READING_NULL) {
        if (!f->nullable) {
            snprintf(why, whylen, "%s may not be null", f->name);
            return SPOT_EINVAL;
        }
        return yajl_gen_null(g) == yajl_gen_status_ok ? SPOT_OK : SPOT_EINVAL;
    }
    switch (f->type) {
    case SCHEMA_NUMBER:
        if (v->kind == READING_NUMBER || v->kind == READING_INTEGER)
            return gen_number(g, v->number);
        break;
    case SCHEMA_INTEGER:
        if (v->kind == READING_INTEGER)
            return yajl_gen_integer(g, v->integer) == yajl_gen_status_ok
                       ? SPOT_OK
                       : SPOT_EINVAL;
        if (v->kind == READING_NUMBER && v->number == floor(v->number) &&
            fabs(v->number) < 9e15)
            return yajl_gen_integer(g, (long long)v->number) ==
                           yajl_gen_status_ok
                       ? SPOT_OK
                       : SPOT_EINVAL;
        break;
    case SCHEMA_BOOL_TEXT:
        if (v->kind == READING_TEXT &&
            (strcmp(v->text, "true") == 0 || strcmp(v->text, "false") == 0))
            return gen_string(g, v->text);
        break;
    case SCHEMA_TEXT:
        if (v->kind == READING_TEXT) {
            if (gen_string(g, v->text) != SPOT_OK) {
                snprintf(why, whylen, "%s is not valid UTF-8", f->name);
                return SPOT_EINVAL;
            }
            return SPOT_OK;
        }
        break;
    case SCHEMA_DATETIME:
        break;
    }
    snprintf(why, whylen, "%s: value does not fit the field's type", f->name);
    return SPOT_EINVAL;
}

static int gen_key(yajl_gen g, const char *name)
{
    return gen_string(g, name);
}

int message_encode(struct message_encoder *e, const struct reading *r,
                   int64_t period_start_s, int period_min, unsigned flags,
                   const unsigned char **out, size_t *len, char *why,
                   size_t whylen)
{
    yajl_gen g = e->g;
    const struct schema_vertical *sv = r->schema;
    yajl_gen_clear(g);
    yajl_gen_reset(g, NULL);
    if (why && whylen)
        why[0] = '\0';
    int rc = yajl_gen_map_open(g) == yajl_gen_status_ok ? SPOT_OK : SPOT_EINVAL;
    for (size_t i = 0; rc == SPOT_OK && i < sv->n_fields; i++) {
        const struct schema_field *f = &sv->fields[i];
        const struct reading_value *v = &r->v[i];
        if (i == sv->time_field) {
            char ts[32];
            message_format_time(period_start_s, ts);
            if ((rc = gen_key(g, f->name)) == SPOT_OK)
                rc = gen_string(g, ts);
        } else if (strcmp(f->name, "period") == 0) {
            if ((rc = gen_key(g, f->name)) != SPOT_OK)
                break;
            if (flags & MESSAGE_PERIOD_AS_TEXT) {
                char p[16];
                snprintf(p, sizeof p, "%d", period_min);
                rc = gen_string(g, p);
            } else {
                rc = yajl_gen_integer(g, period_min) == yajl_gen_status_ok
                         ? SPOT_OK
                         : SPOT_EINVAL;
            }
        } else if (strcmp(f->name, "status") == 0) {
            if ((rc = gen_key(g, f->name)) == SPOT_OK)
                rc = gen_string(g, "connected");
        } else if (v->kind == READING_ABSENT) {
            if (f->mandatory) {
                snprintf(why, whylen, "mandatory field %s is missing", f->name);
                rc = SPOT_EINVAL;
            }
        } else {
            if ((rc = gen_key(g, f->name)) == SPOT_OK)
                rc = gen_value(g, f, v, why, whylen);
        }
    }
    if (rc == SPOT_OK && yajl_gen_map_close(g) != yajl_gen_status_ok)
        rc = SPOT_EINVAL;
    if (rc != SPOT_OK) {
        if (why && whylen && why[0] == '\0')
            snprintf(why, whylen, "JSON generation failed");
        return rc;
    }
    const unsigned char *buf;
    size_t n;
    if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
        return SPOT_ENOMEM;
    if (n > SPOT_DEVICE_MAX_MESSAGE) {
        snprintf(why, whylen, "message of %zu bytes is over the cap", n);
        return SPOT_ETOOBIG;
    }
    *out = buf;
    *len = n;
    return SPOT_OK;
}
