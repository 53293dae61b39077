/*
 * NGSI encoder: one validated record -> one NGSI-v2 or NGSI-LD entity, in
 * the `sdm` or `compat` mapping of ngsi-mapping.md. The per-field mapping
 * (names, types, unit codes, conversions) comes from the schema files; what
 * the schemas cannot say (entity ids, dateObserved, refDevice, static
 * attributes, extra fields) is decided here. docs/ngsi.md is the reader's
 * version of this file.
 *
 * Attribute order and precedence: TimeInstant, the generated attributes
 * (dateObserved, refDevice, ...), the schema fields, the device's static
 * attributes (location first), then the message's extra fields. The first
 * attribute of a name wins; a later one of the same name is left out (an
 * extra field left out that way is counted in skipped_attrs).
 *
 * One encoder per thread; ngsi_encoder_set_devices may come from another
 * thread (the table pointer is atomic; the old table must outlive the
 * encode in progress). The yajl generator prints into a buffer of the
 * encoder that is reused: no allocation per message once warm, except the
 * yajl tree of a message that has extra fields. docs/ngsi.md lists the
 * choices made where the mapping is silent.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "ngsi_encode.h"

/* Attribute names remembered per entity to keep the first of each name:
 * schema fields (<= 40) + static attributes (<= 64) + extra fields (<= 256,
 * the validator's key cap) + the generated ones. Open addressing. */
#define NAME_SLOTS 1024
#define MAX_ATTRS  512

/* "YYYY-MM-DDThh:mm:ss.sssZ" */
#define TS_LEN 24

#define URN_PREFIX     "urn:ngsi-ld:"
#define URN_PREFIX_LEN (sizeof URN_PREFIX - 1)

struct name_slot {
    const char *s;
    uint32_t len;
    uint32_t gen;
};

struct ngsi_encoder {
    enum ngsi_flavour flavour;
    enum ngsi_mapping mapping;
    const struct devices *_Atomic devices;
    yajl_gen g;
    int gst; /* OR of the yajl_gen statuses of the current entity */
    /* the generator prints into this buffer (yajl's own buffer costs a
     * capacity check and a NUL per token) */
    char *out;
    size_t out_len, out_cap;
    int oom;
    /* the last location printed, keyed by its values (formatting a double
     * costs more than the rest of an attribute) */
    int loc_valid;
    double loc_lon, loc_lat;
    char lon[40], lat[40];
    int lon_len, lat_len;
    int ld;
    char ts[32]; /* TimeInstant of the current entity, NGSI DateTime */
    char id[SPOT_MAX_ID_LEN + 1];
    char type[SPOT_MAX_ID_LEN + 1];
    char *extra; /* NUL-terminated copy of extra_json, grow-only */
    size_t extra_cap;
    size_t skipped;
    size_t n_names;
    uint32_t gen;
    struct name_slot names[NAME_SLOTS];
};

/* --- names ------------------------------------------------------------- */

/* Characters Orion forbids in string values (and in names). */
static const unsigned char value_bad[256] = {
    ['<'] = 1, ['>'] = 1, ['"'] = 1, ['\''] = 1,
    ['='] = 1, [';'] = 1, ['('] = 1, [')'] = 1,
};

static int name_char_ok(unsigned char c)
{
    return c >= 0x21 && c <= 0x7e && !value_bad[c] && c != '&' && c != '?' &&
           c != '/' && c != '#';
}

int ngsi_name_is_legal(const char *s, size_t len)
{
    if (len == 0 || len > SPOT_MAX_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok((unsigned char)s[i]))
            return 0;
    return 1;
}

int ngsi_attr_name_is_legal(const char *s, size_t len)
{
    static const char *const reserved[] = {
        "id",          "type",        "geo:distance",
        "*",           "dateCreated", "dateModified",
        "dateExpires", "servicePath", "alterationType",
    };
    if (!ngsi_name_is_legal(s, len))
        return 0;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strlen(reserved[i]) == len && memcmp(reserved[i], s, len) == 0)
            return 0;
    return 1;
}

/* Names NGSI-LD gives a meaning of its own at the entity level (JSON-LD
 * keywords, system attributes, the geo-properties): an extra field or
 * static attribute of that name would be refused or misread. */
static int ld_reserved(const char *s, size_t len)
{
    static const char *const names[] = {
        "scope",     "location",   "observationSpace", "operationSpace",
        "createdAt", "modifiedAt", "deletedAt",        "observedAt",
        "unitCode",  "datasetId",  "instanceId",
    };
    if (len > 0 && s[0] == '@')
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return 1;
    return 0;
}

static int has_forbidden(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (value_bad[(unsigned char)s[i]])
            return 1;
    return 0;
}

/* Any string or key of a JSON value holds a character Orion forbids. */
static int tree_has_forbidden(const struct yajl_val_s *v)
{
    if (YAJL_IS_STRING(v))
        return has_forbidden(v->u.string, strlen(v->u.string));
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++)
            if (has_forbidden(v->u.object.keys[i],
                              strlen(v->u.object.keys[i])) ||
                tree_has_forbidden(v->u.object.values[i]))
                return 1;
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            if (tree_has_forbidden(v->u.array.values[i]))
                return 1;
    }
    return 0;
}

/* The NGSI-v2 type of a string attribute: TextUnrestricted when the value
 * holds a character Orion would refuse under any other type. */
static const char *text_type(const char *declared, const char *s, size_t len)
{
    if (strcmp(declared, "TextUnrestricted") == 0 || !has_forbidden(s, len))
        return declared;
    return "TextUnrestricted";
}

static void names_reset(struct ngsi_encoder *e)
{
    e->n_names = 0;
    if (++e->gen == 0) { /* wrapped: old marks would look current */
        memset(e->names, 0, sizeof e->names);
        e->gen = 1;
    }
}

/* Remembers an attribute name. 1: new; 0: already present, or too many
 * attributes (left out either way). */
static int names_add(struct ngsi_encoder *e, const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    for (uint32_t i = h & (NAME_SLOTS - 1);; i = (i + 1) & (NAME_SLOTS - 1)) {
        struct name_slot *sl = &e->names[i];
        if (sl->gen != e->gen) {
            if (e->n_names == MAX_ATTRS)
                return 0;
            *sl = (struct name_slot){s, (uint32_t)len, e->gen};
            e->n_names++;
            return 1;
        }
        if (sl->len == len && memcmp(sl->s, s, len) == 0)
            return 0;
    }
}

/* --- numbers and times -------------------------------------------------- */

/* Shortest of %.15g, %.16g, %.17g that reads back as x, in JSON syntax
 * whatever LC_NUMERIC says. Returns the length, or -1. */
static int format_double(double x, char buf[40])
{
    int n = -1;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, 40, "%.*g", prec, x);
        if (n <= 0 || n >= 40)
            return -1;
        if (prec == 17 || strtod(buf, NULL) == x)
            break;
    }
    for (int i = 0; i < n; i++) {
        char c = buf[i];
        if (c == ',')
            buf[i] = '.'; /* a decimal comma: the locale is not "C" */
        else if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' ||
                   c == 'e' || c == 'E'))
            return -1; /* inf, nan */
    }
    return n;
}

void ngsi_format_datetime(int64_t t_us, char out[32])
{
    /* "YYYY-MM-DDThh:mm:ss.ffffffZ" -> keep milliseconds */
    validate_format_time(t_us, out);
    out[23] = 'Z';
    out[24] = '\0';
}

int ngsi_mapping_parse(const char *s, enum ngsi_mapping *out)
{
    if (s != NULL && strcmp(s, "sdm") == 0) {
        *out = NGSI_MAPPING_SDM;
        return SPOT_OK;
    }
    if (s != NULL && strcmp(s, "compat") == 0) {
        *out = NGSI_MAPPING_COMPAT;
        return SPOT_OK;
    }
    return SPOT_EINVAL;
}

/* --- generator helpers ----------------------------------------------------
 * yajl_gen prints through print_cb into e->out. */

static void print_grow(struct ngsi_encoder *e, const char *s, size_t len)
{
    size_t cap = e->out_cap ? e->out_cap : 16384;
    while (cap < e->out_len + len)
        cap *= 2;
    char *p = e->oom ? NULL : realloc(e->out, cap);
    if (p == NULL) {
        e->oom = 1;
        return;
    }
    e->out = p;
    e->out_cap = cap;
    memcpy(e->out + e->out_len, s, len);
    e->out_len += len;
}

/* Called for every token, quote and separator: keep the common path a
 * leaf function. */
static void print_cb(void *ctx, const char *s, size_t len)
{
    struct ngsi_encoder *e = ctx;
    size_t n = e->out_len;
    if (n + len > e->out_cap) {
        print_grow(e, s, len);
        return;
    }
    e->out_len = n + len;
    char *d = e->out + n;
    if (len == 1)
        *d = *s;
    else
        memcpy(d, s, len);
}

/* yajl_gen statuses are OR-ed into e->gst and checked once per entity. */

static void gsn(struct ngsi_encoder *e, const char *s, size_t len)
{
    e->gst |= (int)yajl_gen_string(e->g, (const unsigned char *)s, len);
}

static void gs(struct ngsi_encoder *e, const char *s)
{
    gsn(e, s, strlen(s));
}

/* A string literal: its length is known at compile time. */
#define GS_LIT(e, lit) gsn((e), (lit), sizeof(lit) - 1)

static void gnum(struct ngsi_encoder *e, const char *s, size_t len)
{
    e->gst |= (int)yajl_gen_number(e->g, s, len);
}

static void gopen(struct ngsi_encoder *e)
{
    e->gst |= (int)yajl_gen_map_open(e->g);
}

static void gclose(struct ngsi_encoder *e)
{
    e->gst |= (int)yajl_gen_map_close(e->g);
}

enum attr_kind { A_PROPERTY, A_RELATIONSHIP, A_GEO };

/* Writes the attribute's key, opens it, writes its type and the key of its
 * value ("value", or "object" for an NGSI-LD relationship). */
static void attr_open(struct ngsi_encoder *e, const char *name, size_t len,
                      const char *v2_type, enum attr_kind k)
{
    gsn(e, name, len);
    gopen(e);
    GS_LIT(e, "type");
    if (!e->ld)
        gs(e, v2_type);
    else
        gs(e, k == A_RELATIONSHIP ? "Relationship"
              : k == A_GEO        ? "GeoProperty"
                                  : "Property");
    gs(e, e->ld && k == A_RELATIONSHIP ? "object" : "value");
}

/* Writes the observation time (v2: TimeInstant metadata; LD: observedAt)
 * and the unit code, and closes the attribute. */
static void attr_close(struct ngsi_encoder *e, const char *unit_code, int timed)
{
    if (e->ld) {
        if (timed) {
            GS_LIT(e, "observedAt");
            gsn(e, e->ts, TS_LEN);
        }
        if (unit_code != NULL) {
            GS_LIT(e, "unitCode");
            gs(e, unit_code);
        }
    } else if (timed || unit_code != NULL) {
        GS_LIT(e, "metadata");
        gopen(e);
        if (timed) {
            GS_LIT(e, "TimeInstant");
            gopen(e);
            GS_LIT(e, "type");
            GS_LIT(e, "DateTime");
            GS_LIT(e, "value");
            gsn(e, e->ts, TS_LEN);
            gclose(e);
        }
        if (unit_code != NULL) {
            GS_LIT(e, "unitCode");
            gopen(e);
            GS_LIT(e, "type");
            GS_LIT(e, "Text");
            GS_LIT(e, "value");
            gs(e, unit_code);
            gclose(e);
        }
        gclose(e);
    }
    gclose(e);
}

/* A DateTime value: a string in v2, {"@type":"DateTime","@value":...} in
 * NGSI-LD. */
static void datetime_value(struct ngsi_encoder *e, const char *t)
{
    if (!e->ld) {
        gs(e, t);
        return;
    }
    gopen(e);
    GS_LIT(e, "@type");
    GS_LIT(e, "DateTime");
    GS_LIT(e, "@value");
    gs(e, t);
    gclose(e);
}

static void datetime_attr(struct ngsi_encoder *e, const char *name,
                          const char *t, int timed)
{
    if (!names_add(e, name, strlen(name)))
        return;
    attr_open(e, name, strlen(name), "DateTime", A_PROPERTY);
    datetime_value(e, t);
    attr_close(e, NULL, timed);
}

static void text_attr(struct ngsi_encoder *e, const char *name,
                      const char *text)
{
    if (!names_add(e, name, strlen(name)))
        return;
    attr_open(e, name, strlen(name), text_type("Text", text, strlen(text)),
              A_PROPERTY);
    gs(e, text);
    attr_close(e, NULL, 1);
}

/* --- JSON values of static attributes and extra fields ------------------ */

static void tree_value(struct ngsi_encoder *e, const struct yajl_val_s *v)
{
    switch (v->type) {
    case yajl_t_string:
        gs(e, v->u.string);
        break;
    case yajl_t_number:
        gnum(e, v->u.number.r, strlen(v->u.number.r));
        break;
    case yajl_t_true:
    case yajl_t_false:
        e->gst |= (int)yajl_gen_bool(e->g, v->type == yajl_t_true);
        break;
    case yajl_t_null:
    case yajl_t_any:
        e->gst |= (int)yajl_gen_null(e->g);
        break;
    case yajl_t_object:
        gopen(e);
        for (size_t i = 0; i < v->u.object.len; i++) {
            gs(e, v->u.object.keys[i]);
            tree_value(e, v->u.object.values[i]);
        }
        gclose(e);
        break;
    case yajl_t_array:
        e->gst |= (int)yajl_gen_array_open(e->g);
        for (size_t i = 0; i < v->u.array.len; i++)
            tree_value(e, v->u.array.values[i]);
        e->gst |= (int)yajl_gen_array_close(e->g);
        break;
    }
}

/* An attribute whose value is any JSON (static attributes, extra fields):
 * Text (TextUnrestricted with forbidden characters), Number, Boolean,
 * StructuredValue (TextUnrestricted when a nested string or key holds a
 * forbidden character), null as type None; NGSI-LD leaves nulls out. The
 * name is already checked and remembered. */
static void json_attr(struct ngsi_encoder *e, const char *name, size_t len,
                      const struct yajl_val_s *v)
{
    const char *type;
    switch (v->type) {
    case yajl_t_string:
        type = text_type("Text", v->u.string, strlen(v->u.string));
        break;
    case yajl_t_number:
        type = "Number";
        break;
    case yajl_t_true:
    case yajl_t_false:
        type = "Boolean";
        break;
    case yajl_t_object:
    case yajl_t_array:
        type = e->ld || !tree_has_forbidden(v) ? "StructuredValue"
                                               : "TextUnrestricted";
        break;
    default:
        if (e->ld)
            return;
        type = "None";
        break;
    }
    attr_open(e, name, len, type, A_PROPERTY);
    tree_value(e, v);
    attr_close(e, NULL, 1);
}

static void location_attr(struct ngsi_encoder *e,
                          const struct device_static *ds)
{
    if (!e->loc_valid || memcmp(&e->loc_lon, &ds->lon, sizeof ds->lon) != 0 ||
        memcmp(&e->loc_lat, &ds->lat, sizeof ds->lat) != 0) {
        e->lon_len = format_double(ds->lon, e->lon);
        e->lat_len = format_double(ds->lat, e->lat);
        e->loc_lon = ds->lon;
        e->loc_lat = ds->lat;
        e->loc_valid = 1;
    }
    if (e->lon_len < 0 || e->lat_len < 0) {
        e->gst |= (int)yajl_gen_invalid_number;
        return;
    }
    if (!names_add(e, "location", 8))
        return;
    attr_open(e, "location", 8, "geo:json", A_GEO);
    gopen(e);
    GS_LIT(e, "type");
    GS_LIT(e, "Point");
    GS_LIT(e, "coordinates");
    e->gst |= (int)yajl_gen_array_open(e->g);
    gnum(e, e->lon, (size_t)e->lon_len);
    gnum(e, e->lat, (size_t)e->lat_len);
    e->gst |= (int)yajl_gen_array_close(e->g);
    gclose(e);
    attr_close(e, NULL, 1);
}

static void static_attrs(struct ngsi_encoder *e, const struct record *r)
{
    const struct devices *d =
        atomic_load_explicit(&e->devices, memory_order_acquire);
    const struct device_static *ds =
        devices_find(d, r->device_id, strlen(r->device_id));
    if (ds == NULL)
        return;
    if (ds->has_location)
        location_attr(e, ds);
    for (size_t i = 0; i < ds->n_attrs; i++) {
        const struct device_attr *a = &ds->attrs[i];
        size_t len = strlen(a->name);
        if ((!e->ld || !ld_reserved(a->name, len)) &&
            names_add(e, a->name, len))
            json_attr(e, a->name, len, a->value);
    }
}

/* Extra fields (generic devices: every field) under their own names. */
static int extra_attrs(struct ngsi_encoder *e, const struct record *r,
                       char *why, size_t whylen)
{
    if (r->extra_json == NULL || r->extra_len <= 2)
        return SPOT_OK;
    if (r->extra_len + 1 > e->extra_cap) {
        size_t cap = r->extra_len + 1 > 4096 ? r->extra_len + 1 : 4096;
        char *p = realloc(e->extra, cap);
        if (p == NULL)
            return SPOT_ENOMEM;
        e->extra = p;
        e->extra_cap = cap;
    }
    memcpy(e->extra, r->extra_json, r->extra_len);
    e->extra[r->extra_len] = '\0';
    yajl_val root = yajl_tree_parse(e->extra, NULL, 0);
    if (root == NULL || !YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        snprintf(why, whylen, "extra fields are not a JSON object");
        return SPOT_EINVAL;
    }
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        size_t len = strlen(k);
        if (r->schema == NULL && len == 11 && memcmp(k, "TimeInstant", 11) == 0)
            continue; /* generic device: already the TimeInstant attribute */
        if (!ngsi_attr_name_is_legal(k, len) ||
            (e->ld && ld_reserved(k, len)) || !names_add(e, k, len)) {
            e->skipped++;
            continue;
        }
        json_attr(e, k, len, root->u.object.values[i]);
    }
    yajl_tree_free(root);
    return SPOT_OK;
}

/* --- schema fields ------------------------------------------------------ */

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    if (whylen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return SPOT_EINVAL;
}

static const char *code_text(const struct schema_ngsi *m, long long code)
{
    for (size_t i = 0; i < m->n_codes; i++)
        if (m->codes[i].code == code)
            return m->codes[i].text;
    return NULL;
}

/* One schema field in the encoder's mapping m. */
static int field_attr(struct ngsi_encoder *e, const struct schema_field *f,
                      const struct schema_ngsi *m, const struct value *val,
                      char *why, size_t whylen)
{
    if (m->name == NULL || val->kind == VALUE_ABSENT)
        return SPOT_OK;
    size_t nlen = strlen(m->name);
    /* a null reading keeps its name even where it is left out (LD), so
     * that no static attribute or extra field stands in for it */
    if (!names_add(e, m->name, nlen) || (val->kind == VALUE_NULL && e->ld))
        return SPOT_OK;
    const char *conv = e->mapping == NGSI_MAPPING_SDM ? m->convert : NULL;
    const char *unit = m->unit_code;
    char num[40];
    int n;
    const char *s;

    switch (val->kind) {
    case VALUE_NULL:
        attr_open(e, m->name, nlen, m->attr_type, A_PROPERTY);
        e->gst |= (int)yajl_gen_null(e->g);
        break;
    case VALUE_NUMBER:
    case VALUE_INTEGER:
        if (conv == NULL) {
            attr_open(e, m->name, nlen, m->attr_type, A_PROPERTY);
            gnum(e, val->text, val->text_len);
        } else if (strcmp(conv, "div100") == 0) {
            n = format_double(val->number / 100.0, num);
            if (n < 0)
                return fail(why, whylen, "field \"%s\": cannot format %s/100",
                            f->name, val->text);
            attr_open(e, m->name, nlen, m->attr_type, A_PROPERTY);
            gnum(e, num, (size_t)n);
        } else if (strcmp(conv, "code_text") == 0) {
            s = code_text(m, val->kind == VALUE_INTEGER
                                 ? val->integer
                                 : (long long)val->number);
            if (s == NULL)
                return fail(why, whylen, "field \"%s\": code %s has no text",
                            f->name, val->text);
            attr_open(e, m->name, nlen, text_type(m->attr_type, s, strlen(s)),
                      A_PROPERTY);
            gs(e, s);
            unit = NULL;
        } else if (strcmp(conv, "int_bool") == 0) {
            attr_open(e, m->name, nlen, m->attr_type, A_PROPERTY);
            e->gst |= (int)yajl_gen_bool(e->g, val->number != 0.0);
            unit = NULL;
        } else {
            return fail(why, whylen, "field \"%s\": unknown conversion %s",
                        f->name, conv);
        }
        break;
    case VALUE_TEXT:
        attr_open(e, m->name, nlen,
                  text_type(m->attr_type, val->text, val->text_len),
                  A_PROPERTY);
        gsn(e, val->text, val->text_len);
        unit = NULL;
        break;
    case VALUE_BOOL:
        if (conv != NULL || strcmp(m->attr_type, "Boolean") == 0) {
            attr_open(e, m->name, nlen, "Boolean", A_PROPERTY);
            e->gst |= (int)yajl_gen_bool(e->g, val->boolean);
        } else { /* compat: iotagent-json sends the string as Text */
            attr_open(e, m->name, nlen, m->attr_type, A_PROPERTY);
            gs(e, val->boolean ? "true" : "false");
        }
        unit = NULL;
        break;
    case VALUE_TIME: {
        char t[32];
        ngsi_format_datetime(val->time_us, t);
        attr_open(e, m->name, nlen, "DateTime", A_PROPERTY);
        datetime_value(e, t);
        unit = NULL;
        break;
    }
    case VALUE_ABSENT:
        return SPOT_OK;
    }
    attr_close(e, unit, 1);
    return SPOT_OK;
}

/* --- entity id and type -------------------------------------------------- */

/* Characters legal in an Orion id but not in a URI (NGSI-LD ids). */
static int uri_char_ok(unsigned char c)
{
    switch (c) {
    case '[':
    case ']':
    case '{':
    case '}':
    case '|':
    case '\\':
    case '^':
    case '`':
    case '%':
        return 0;
    default:
        return 1;
    }
}

static int make_id(struct ngsi_encoder *e, const struct record *r, char *why,
                   size_t whylen)
{
    const struct schema_vertical *sv = r->schema;
    int sdm = e->mapping == NGSI_MAPPING_SDM;
    const char *tail;
    size_t tail_len;
    if (sv != NULL && sdm && sv->sdm_id_field != NULL) {
        int i =
            schema_field_index(sv, sv->sdm_id_field, strlen(sv->sdm_id_field));
        if (i < 0 || r->values[i].kind != VALUE_TEXT)
            return fail(why, whylen,
                        "field \"%s\", which makes the entity id, has no "
                        "text value",
                        sv->sdm_id_field);
        tail = r->values[i].text;
        tail_len = r->values[i].text_len;
    } else {
        tail = sdm ? r->device_id : r->full_device_id;
        tail_len = strlen(tail);
    }
    int urn = e->ld || sdm;
    size_t tlen = strlen(e->type);
    size_t total = (urn ? URN_PREFIX_LEN : 0) + tlen + 1 + tail_len;
    if (total > SPOT_MAX_ID_LEN)
        return fail(why, whylen,
                    "entity id %s%s:%.64s%s would be %zu characters; NGSI "
                    "allows at most %d",
                    urn ? URN_PREFIX : "", e->type, tail,
                    tail_len > 64 ? "..." : "", total, SPOT_MAX_ID_LEN);
    char *p = e->id;
    if (urn) {
        memcpy(p, URN_PREFIX, URN_PREFIX_LEN);
        p += URN_PREFIX_LEN;
    }
    memcpy(p, e->type, tlen);
    p += tlen;
    *p++ = ':';
    memcpy(p, tail, tail_len);
    p[tail_len] = '\0';
    for (size_t i = 0; i < total; i++) {
        unsigned char c = (unsigned char)e->id[i];
        if (!name_char_ok(c) || (e->ld && !uri_char_ok(c)))
            return fail(why, whylen,
                        "entity id \"%.128s\" holds the character '%c', "
                        "illegal in %s",
                        e->id, c >= 0x20 && c < 0x7f ? c : '?',
                        e->ld ? "an NGSI-LD id (a URI)" : "an NGSI id");
    }
    return SPOT_OK;
}

static int make_type(struct ngsi_encoder *e, const struct record *r, char *why,
                     size_t whylen)
{
    const struct schema_vertical *sv = r->schema;
    const char *type = NULL;
    if (r->group != NULL && (unsigned)r->vertical <= SPOT_V_COUNT)
        type = r->group->entity_types[r->vertical];
    if (type == NULL && sv != NULL)
        type = e->mapping == NGSI_MAPPING_SDM ? sv->sdm_entity_type
                                              : sv->compat_entity_type;
    if (type == NULL)
        type = "Thing";
    size_t len = strlen(type);
    if (!ngsi_name_is_legal(type, len))
        return fail(why, whylen,
                    "entity type \"%.64s\" is not a legal NGSI "
                    "type",
                    type);
    memcpy(e->type, type, len + 1);
    return SPOT_OK;
}

/* refDevice: the Device entity of the same base device. */
static void ref_device(struct ngsi_encoder *e, const struct record *r)
{
    const char *dtype = "Device";
    if (r->group != NULL && r->group->entity_types[SPOT_V_DEV] != NULL)
        dtype = r->group->entity_types[SPOT_V_DEV];
    size_t tl = strlen(dtype), dl = strlen(r->device_id);
    char ref[URN_PREFIX_LEN + 2 * SPOT_MAX_ID_LEN + 2];
    if (tl > SPOT_MAX_ID_LEN || dl > SPOT_MAX_ID_LEN ||
        !names_add(e, "refDevice", 9))
        return;
    memcpy(ref, URN_PREFIX, URN_PREFIX_LEN);
    memcpy(ref + URN_PREFIX_LEN, dtype, tl);
    ref[URN_PREFIX_LEN + tl] = ':';
    memcpy(ref + URN_PREFIX_LEN + tl + 1, r->device_id, dl);
    attr_open(e, "refDevice", 9, "Relationship", A_RELATIONSHIP);
    gsn(e, ref, URN_PREFIX_LEN + tl + 1 + dl);
    attr_close(e, NULL, 1);
}

/* The sdm attributes no schema field carries. */
static void sdm_generated(struct ngsi_encoder *e, const struct record *r)
{
    const struct schema_vertical *sv = r->schema;
    if (r->vertical == SPOT_V_DEV || r->vertical == SPOT_V_DHO)
        return; /* the Device entity itself */
    datetime_attr(e, "dateObserved", e->ts, 1);
    if (r->vertical == SPOT_V_NLO) {
        int i = schema_field_index(sv, "period", 6);
        if (i >= 0 && (r->values[i].kind == VALUE_NUMBER ||
                       r->values[i].kind == VALUE_INTEGER)) {
            char to[32];
            double us = r->values[i].number * 60e6;
            ngsi_format_datetime(r->time_instant_us + (int64_t)(us + 0.5), to);
            datetime_attr(e, "dateObservedFrom", e->ts, 1);
            datetime_attr(e, "dateObservedTo", to, 1);
        }
    }
    if (r->vertical == SPOT_V_CFE) {
        datetime_attr(e, "date", e->ts, 1);
        text_attr(e, "algorithm", "SHA-1");
    }
    ref_device(e, r);
}

/* --- the entity ---------------------------------------------------------- */

int ngsi_encode(struct ngsi_encoder *e, const struct record *r,
                struct ngsi_entity *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    if (r->reason != REJECT_NONE && r->reason != REJECT_RANGE)
        return fail(why, whylen, "record was rejected (%s); nothing to send",
                    reject_reason_name(r->reason));
    int rc = make_type(e, r, why, whylen);
    if (rc == SPOT_OK)
        rc = make_id(e, r, why, whylen);
    if (rc != SPOT_OK)
        return rc;

    yajl_gen_reset(e->g, NULL);
    e->out_len = 0;
    e->oom = 0;
    e->gst = 0;
    e->skipped = 0;
    names_reset(e);
    ngsi_format_datetime(r->time_instant_us, e->ts);

    gopen(e);
    GS_LIT(e, "id");
    gs(e, e->id);
    GS_LIT(e, "type");
    gs(e, e->type);
    datetime_attr(e, "TimeInstant", e->ts, 0);

    const struct schema_vertical *sv = r->schema;
    if (sv != NULL) {
        if (e->mapping == NGSI_MAPPING_SDM)
            sdm_generated(e, r);
        for (size_t i = 0; i < sv->n_fields; i++) {
            if (i == sv->time_field)
                continue;
            const struct schema_field *f = &sv->fields[i];
            rc = field_attr(
                e, f, e->mapping == NGSI_MAPPING_SDM ? &f->sdm : &f->compat,
                &r->values[i], why, whylen);
            if (rc != SPOT_OK)
                return rc;
        }
    }
    static_attrs(e, r);
    rc = extra_attrs(e, r, why, whylen);
    if (rc != SPOT_OK)
        return rc;
    gclose(e);

    if (e->oom)
        return SPOT_ENOMEM;
    if (e->gst != 0)
        return fail(why, whylen, "cannot generate the entity JSON");
    out->id = e->id;
    out->type = e->type;
    out->json = e->out;
    out->len = e->out_len;
    out->skipped_attrs = e->skipped;
    return SPOT_OK;
}

int ngsi_encoder_new(struct ngsi_encoder **out, enum ngsi_flavour flavour,
                     enum ngsi_mapping mapping, const struct devices *devices)
{
    struct ngsi_encoder *e = calloc(1, sizeof *e);
    if (e == NULL)
        return SPOT_ENOMEM;
    e->g = yajl_gen_alloc(NULL);
    if (e->g == NULL) {
        free(e);
        return SPOT_ENOMEM;
    }
    yajl_gen_config(e->g, yajl_gen_print_callback, print_cb, e);
    e->flavour = flavour;
    e->mapping = mapping;
    e->ld = flavour == NGSI_FLAVOUR_LD;
    atomic_init(&e->devices, devices);
    *out = e;
    return SPOT_OK;
}

void ngsi_encoder_set_devices(struct ngsi_encoder *e,
                              const struct devices *devices)
{
    atomic_store_explicit(&e->devices, devices, memory_order_release);
}

void ngsi_encoder_free(struct ngsi_encoder *e)
{
    if (e == NULL)
        return;
    yajl_gen_free(e->g);
    free(e->out);
    free(e->extra);
    free(e);
}
