/*
 * Readings: one message's worth of sensor values, by schema field index
 * (API: spot/sensor.h). Plain values: no locking; the thread that fills a
 * reading owns it.
 */
#include <math.h>
#include <string.h>

#include "spot/err.h"
#include "spot/sensor.h"

void reading_init(struct reading *r, const struct schema_vertical *sv)
{
    r->schema = sv;
    for (size_t i = 0; i < SPOT_MAX_SCHEMA_FIELDS; i++) {
        r->v[i].kind = READING_ABSENT;
        r->v[i].number = 0;
        r->v[i].integer = 0;
        r->v[i].text = NULL;
    }
    r->text_used = 0;
}

static int field_ok(const struct reading *r, int field)
{
    return field >= 0 && (size_t)field < r->schema->n_fields;
}

void reading_set_null(struct reading *r, int field)
{
    if (field_ok(r, field))
        r->v[field].kind = READING_NULL;
}

void reading_set_number(struct reading *r, int field, double x)
{
    if (!field_ok(r, field))
        return;
    if (!isfinite(x)) {
        r->v[field].kind = READING_NULL;
        return;
    }
    r->v[field].kind = READING_NUMBER;
    r->v[field].number = x;
}

void reading_set_integer(struct reading *r, int field, long long x)
{
    if (!field_ok(r, field))
        return;
    r->v[field].kind = READING_INTEGER;
    r->v[field].integer = x;
    r->v[field].number = (double)x;
}

int reading_set_text(struct reading *r, int field, const char *s)
{
    if (!field_ok(r, field))
        return SPOT_OK;
    size_t n = strlen(s) + 1;
    if (n > sizeof r->text - r->text_used) {
        r->v[field].kind = READING_NULL;
        return SPOT_ETOOBIG;
    }
    char *dst = r->text + r->text_used;
    memcpy(dst, s, n);
    r->text_used += n;
    r->v[field].kind = READING_TEXT;
    r->v[field].text = dst;
    return SPOT_OK;
}

void reading_copy(struct reading *dst, const struct reading *src)
{
    memcpy(dst, src, sizeof *dst);
    for (size_t i = 0; i < SPOT_MAX_SCHEMA_FIELDS; i++)
        if (src->v[i].kind == READING_TEXT)
            dst->v[i].text = dst->text + (src->v[i].text - src->text);
}
