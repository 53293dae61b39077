/*
 * The rules the NGSI test server enforces, as pure functions (included
 * once, by ngsi_server.c; any thread): identifier syntax, forbidden
 * characters, DateTime, GeoJSON, and the parsing of a POST /v2/op/update
 * body and of NGSI-LD upsert entities into plain structs (struct ns_entity)
 * that the store applies. Where Orion's source says something, the error
 * texts are Orion's (src/lib/jsonParseV2, src/lib/ngsi, src/lib/parse of
 * telefonicaid/fiware-orion); README.md lists the rules and their origin.
 *
 * Nothing here touches the store: a request is validated whole before any
 * of it is applied.
 */
#ifndef NGSI_SERVER_RULES_H
#define NGSI_SERVER_RULES_H

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ngsi_server_intern.h"
#include "ngsi_server_json.h"

#define NS_MAX_ID_LEN   256 /* Orion MAX_ID_LEN */
#define NS_MIN_ID_LEN   1   /* Orion MIN_ID_LEN */
#define NS_MAX_DATE_LEN 29  /* parse8601Time's length guard */
#define NS_MAX_URI_LEN  2048
#define NS_LD_MAX_DEPTH 4 /* sub-property nesting accepted in NGSI-LD */

/* --- errors --------------------------------------------------------------- */

struct ns_err {
    int status;      /* HTTP status */
    char error[40];  /* Orion "error" / NGSI-LD problem type suffix */
    char desc[512];  /* Orion "description" / NGSI-LD "detail" */
    char title[128]; /* NGSI-LD "title" */
};

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
ns_fail(struct ns_err *e, int status, const char *error, const char *fmt, ...)
{
    va_list ap;

    e->status = status;
    snprintf(e->error, sizeof e->error, "%s", error);
    va_start(ap, fmt);
    vsnprintf(e->desc, sizeof e->desc, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, ...) ns_fail((e), 400, "BadRequest", __VA_ARGS__)

/* --- request structs ------------------------------------------------------ */

struct ns_md {
    char *name;
    char *type;
    char *value; /* compact JSON text */
};

/* An attribute. NGSI-v2: name, type, value and metadata. NGSI-LD: name and
 * value (the whole attribute object or instance array, as JSON text). */
struct ns_attr {
    char *name;
    char *type;  /* NULL for NGSI-LD */
    char *value; /* compact JSON text */
    struct ns_md *md;
    size_t nmd;
    int md_given; /* the request carried "metadata" (even {}) */
    int is_geo;   /* counts towards Orion's one-location limit */
};

struct ns_entity {
    char *id;
    char *type;      /* v2 type; NGSI-LD: first type */
    char *type_json; /* NGSI-LD: the "type" member as JSON text */
    char *types;     /* NGSI-LD: every type, each followed by '\n' */
    struct ns_attr *attrs;
    size_t nattrs;
};

enum ns_action {
    ACT_APPEND,
    ACT_APPEND_STRICT,
    ACT_UPDATE,
    ACT_DELETE,
    ACT_REPLACE
};

struct v2_update {
    enum ns_action action;
    struct ns_entity *ents;
    size_t n;
};

static void md_clear(struct ns_md *m)
{
    str_release(m->name);
    str_release(m->type);
    free(m->value);
    memset(m, 0, sizeof *m);
}

static void attr_clear(struct ns_attr *a)
{
    for (size_t i = 0; i < a->nmd; i++) {
        md_clear(&a->md[i]);
    }
    free(a->md);
    str_release(a->name);
    str_release(a->type);
    free(a->value);
    memset(a, 0, sizeof *a);
}

static void entity_clear(struct ns_entity *en)
{
    for (size_t i = 0; i < en->nattrs; i++) {
        attr_clear(&en->attrs[i]);
    }
    free(en->attrs);
    free(en->id);
    free(en->type);
    free(en->type_json);
    free(en->types);
    memset(en, 0, sizeof *en);
}

static void v2_update_clear(struct v2_update *u)
{
    for (size_t i = 0; i < u->n; i++) {
        entity_clear(&u->ents[i]);
    }
    free(u->ents);
    u->ents = NULL;
    u->n = 0;
}

static int oom(struct ns_err *e)
{
    return ns_fail(e, 500, "InternalServerError", "out of memory");
}

/* --- characters and identifiers ------------------------------------------- */

/* Orion's character rules as byte classes, one lookup per byte:
 * NS_CH_COMMON commonForbidden(), forbidden in any request field
 * (< > " ' = ; ( )); NS_CH_ID forbiddenIdChars() adds & ? / # (and every
 * byte outside 0x21..0x7E, tested apart). */
enum { NS_CH_COMMON = 1, NS_CH_ID = 2 };
static const unsigned char ns_char_class[256] = {
    ['<'] = NS_CH_COMMON | NS_CH_ID,
    ['>'] = NS_CH_COMMON | NS_CH_ID,
    ['"'] = NS_CH_COMMON | NS_CH_ID,
    ['\''] = NS_CH_COMMON | NS_CH_ID,
    ['='] = NS_CH_COMMON | NS_CH_ID,
    [';'] = NS_CH_COMMON | NS_CH_ID,
    ['('] = NS_CH_COMMON | NS_CH_ID,
    [')'] = NS_CH_COMMON | NS_CH_ID,
    ['&'] = NS_CH_ID,
    ['?'] = NS_CH_ID,
    ['/'] = NS_CH_ID,
    ['#'] = NS_CH_ID,
};

/* Orion's commonForbidden() for one byte. */
static int forbidden_common(unsigned char c)
{
    return (ns_char_class[c] & NS_CH_COMMON) != 0;
}

/* Orion's forbiddenChars(): any of < > " ' = ; ( ) in s. */
static int has_forbidden_chars(const char *s)
{
    for (; *s != '\0'; s++) {
        if (ns_char_class[(unsigned char)*s] & NS_CH_COMMON) {
            return 1;
        }
    }
    return 0;
}

/* Orion's forbiddenIdChars(): outside 0x21..0x7E, & ? / #, or the common
 * set. */
static int has_forbidden_id_chars(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || (ns_char_class[c] & NS_CH_ID)) {
            return 1;
        }
    }
    return 0;
}

/* strcmp(s, lit) == 0, the first bytes compared inline: most of the
 * server's comparisons are of keys and types against a literal, and most
 * differ at once. */
static inline int str_is(const char *s, const char *lit)
{
    return s[0] == lit[0] && strcmp(s, lit) == 0;
}

static int in_list(const char *s, const char *const *list)
{
    for (; *list != NULL; list++) {
        if (s[0] == (*list)[0] && strcmp(s, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* orion-api.md "Attribute names restrictions": id, type, geo:distance,
 * builtin attributes (dateExpires is settable: see v2_check_attr), "*". */
static const char *const reserved_attr_names[] = {
    "id",           "type",           "geo:distance", "*",  "dateCreated",
    "dateModified", "alterationType", "servicePath",  NULL,
};

/* orion-api.md "Metadata names restrictions": builtin metadata and "*". */
static const char *const reserved_md_names[] = {
    "*", "dateCreated", "dateModified", "previousValue", "actionType", NULL,
};

/* --- DateTime (orion-api.md "Datetime support", parse8601Time) ------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *yp, unsigned *mp, unsigned *dp)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp0 = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp0 + 2) / 5 + 1;
    const unsigned m = mp0 < 10 ? mp0 + 3 : mp0 - 9;
    *yp = (int)(y + (m <= 2));
    *mp = m;
    *dp = d;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Reads n digits at *pp; -1 when they are not all there. */
static int take_digits(const char **pp, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*pp)[i])) {
            return -1;
        }
        v = v * 10 + ((*pp)[i] - '0');
    }
    *pp += n;
    return v;
}

enum { DT_ORION = 0, DT_XSD = 1 };

/* Parses an ISO 8601 DateTime as Orion documents it: <date>,
 * <date>T<time> or <date>T<time><tz>; date YYYY-MM-DD; time hh:mm:ss.sss,
 * hhmmss.sss, hh:mm:ss, hhmmss, hh:mm, hhmm or hh; tz Z, ±hh:mm, ±hhmm or
 * ±hh; no zone means Z. At most 29 characters, year >= 1900 and every field
 * in range, as parse8601Time. mode DT_XSD (NGSI-LD) demands xsd:dateTime:
 * YYYY-MM-DDThh:mm:ss[.s+][Z|±hh:mm]. Returns 0 and the instant in *ms. */
static int iso8601_parse(const char *s, int mode, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    int64_t off = 0;

    if (strlen(s) > NS_MAX_DATE_LEN) {
        return -1;
    }
    if ((y = take_digits(&p, 4)) < 0 || *p++ != '-' ||
        (mo = take_digits(&p, 2)) < 0 || *p++ != '-' ||
        (d = take_digits(&p, 2)) < 0) {
        return -1;
    }
    if (*p == '\0') {
        if (mode == DT_XSD) {
            return -1;
        }
        goto check;
    }
    if (*p++ != 'T' || (h = take_digits(&p, 2)) < 0) {
        return -1;
    }
    if (*p == ':') {
        p++;
        if ((mi = take_digits(&p, 2)) < 0) {
            return -1;
        }
        if (*p == ':') {
            p++;
            if ((sec = take_digits(&p, 2)) < 0) {
                return -1;
            }
            goto fraction;
        }
        if (mode == DT_XSD) {
            return -1;
        }
    } else if (isdigit((unsigned char)*p)) {
        if (mode == DT_XSD || (mi = take_digits(&p, 2)) < 0) {
            return -1;
        }
        if (isdigit((unsigned char)*p)) {
            if ((sec = take_digits(&p, 2)) < 0) {
                return -1;
            }
            goto fraction;
        }
    } else if (mode == DT_XSD) {
        return -1;
    }
    goto zone;
fraction:
    if (*p == '.') {
        int n = 0;
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -1;
        }
        for (; isdigit((unsigned char)*p); p++, n++) {
            if (n < 3) {
                frac = frac * 10 + (*p - '0');
            }
        }
        for (; n < 3; n++) {
            frac *= 10;
        }
    }
zone:
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '+' ? 1 : -1;
        int zh, zm = 0;
        if ((zh = take_digits(&p, 2)) < 0 || zh > 23) {
            return -1;
        }
        if (*p == ':') {
            p++;
            if ((zm = take_digits(&p, 2)) < 0) {
                return -1;
            }
        } else if (isdigit((unsigned char)*p)) {
            if (mode == DT_XSD || (zm = take_digits(&p, 2)) < 0) {
                return -1;
            }
        } else if (mode == DT_XSD) {
            return -1;
        }
        if (zm > 59) {
            return -1;
        }
        off = sign * (zh * 3600 + zm * 60);
    }
    if (*p != '\0') {
        return -1;
    }
check:
    if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
        h > 23 || mi > 59 || sec > 59) {
        return -1;
    }
    *ms = ((days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
            mi * 60 + sec) -
           off) *
              1000 +
          frac;
    return 0;
}

/* Two decimal digits of v (0..99) at p. */
static void put2(char *p, int v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

/* Orion renders DateTime values as YYYY-MM-DDThh:mm:ss.sssZ (UTC). */
static void iso8601_format(int64_t ms, char *buf, size_t len)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    int64_t rem = secs - days * 86400;
    int y;
    unsigned m, d;

    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999 || len < 25) {
        snprintf(buf, len, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d,
                 (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60),
                 (int)(ms - secs * 1000));
        return;
    }
    /* The common case by hand: snprintf was a tenth of the server's time
     * on a stream of DateTime attributes. */
    put2(buf, y / 100);
    put2(buf + 2, y % 100);
    buf[4] = '-';
    put2(buf + 5, (int)m);
    buf[7] = '-';
    put2(buf + 8, (int)d);
    buf[10] = 'T';
    put2(buf + 11, (int)(rem / 3600));
    buf[13] = ':';
    put2(buf + 14, (int)(rem % 3600 / 60));
    buf[16] = ':';
    put2(buf + 17, (int)(rem % 60));
    buf[19] = '.';
    buf[20] = (char)('0' + (ms - secs * 1000) / 100);
    put2(buf + 21, (int)((ms - secs * 1000) % 100));
    buf[23] = 'Z';
    buf[24] = '\0';
}

/* --- GeoJSON (orion-api.md "GeoJSON"; MongoDB 2dsphere rules) ------------- */

static const char *geo_position(yajl_val p)
{
    if (!YAJL_IS_ARRAY(p) || p->u.array.len < 2 || p->u.array.len > 3) {
        return "a position must be an array of 2 or 3 numbers";
    }
    for (size_t i = 0; i < p->u.array.len; i++) {
        if (!json_number_finite(p->u.array.values[i])) {
            return "a position must be an array of 2 or 3 numbers";
        }
    }
    double lon = p->u.array.values[0]->u.number.d;
    double lat = p->u.array.values[1]->u.number.d;
    if (lon < -180.0 || lon > 180.0 || lat < -90.0 || lat > 90.0) {
        return "longitude/latitude is out of bounds";
    }
    return NULL;
}

static const char *geo_positions(yajl_val a, size_t min)
{
    const char *why;

    if (!YAJL_IS_ARRAY(a) || a->u.array.len < min) {
        return min > 1 ? "too few positions" : "positions missing";
    }
    for (size_t i = 0; i < a->u.array.len; i++) {
        if ((why = geo_position(a->u.array.values[i])) != NULL) {
            return why;
        }
    }
    return NULL;
}

static const char *geo_polygon(yajl_val rings)
{
    const char *why;

    if (!YAJL_IS_ARRAY(rings) || rings->u.array.len < 1) {
        return "a Polygon needs at least one linear ring";
    }
    for (size_t i = 0; i < rings->u.array.len; i++) {
        yajl_val r = rings->u.array.values[i];
        if ((why = geo_positions(r, 4)) != NULL) {
            return why;
        }
        yajl_val a = r->u.array.values[0];
        yajl_val b = r->u.array.values[r->u.array.len - 1];
        for (size_t k = 0; k < a->u.array.len; k++) {
            if (b->u.array.len != a->u.array.len ||
                a->u.array.values[k]->u.number.d !=
                    b->u.array.values[k]->u.number.d) {
                return "a linear ring must be closed";
            }
        }
    }
    return NULL;
}

static const char *geo_each(yajl_val a, const char *(*one)(yajl_val))
{
    const char *why;

    if (!YAJL_IS_ARRAY(a) || a->u.array.len < 1) {
        return "coordinates must be a non-empty array";
    }
    for (size_t i = 0; i < a->u.array.len; i++) {
        if ((why = one(a->u.array.values[i])) != NULL) {
            return why;
        }
    }
    return NULL;
}

static const char *geo_line(yajl_val a)
{
    return geo_positions(a, 2);
}

/* The geometries Orion (MongoDB 2dsphere) supports; no GeometryCollection. */
static const char *const geo_types[] = {
    "Point",   "MultiPoint",   "LineString", "MultiLineString",
    "Polygon", "MultiPolygon", NULL,
};

/* Validates a GeoJSON geometry; features allows Feature and a
 * FeatureCollection of exactly one Feature (Orion). NULL when valid. */
static const char *geo_validate(yajl_val v, int features)
{
    yajl_val t = obj_get(v, "type");
    yajl_val c = obj_get(v, "coordinates");
    const char *type;

    if (!YAJL_IS_OBJECT(v)) {
        return "a GeoJSON object is needed";
    }
    if (!YAJL_IS_STRING(t)) {
        return "GeoJSON type missing";
    }
    type = t->u.string;
    if (str_is(type, "Feature") && features) {
        yajl_val g = obj_get(v, "geometry");
        if (!YAJL_IS_OBJECT(g)) {
            return "geometry in Feature is not an object";
        }
        return geo_validate(g, 0);
    }
    if (str_is(type, "FeatureCollection") && features) {
        yajl_val f = obj_get(v, "features");
        if (!YAJL_IS_ARRAY(f)) {
            return "features in FeatureCollection is not an array";
        }
        if (f->u.array.len != 1) {
            return f->u.array.len == 0
                       ? "features in FeatureCollection has 0 items"
                       : "features in FeatureCollection has more than 1 item";
        }
        yajl_val f0 = f->u.array.values[0];
        yajl_val ft = obj_get(f0, "type");
        if (!YAJL_IS_STRING(ft) || strcmp(ft->u.string, "Feature") != 0) {
            return "features in FeatureCollection must be a Feature";
        }
        return geo_validate(f0, 1);
    }
    if (!in_list(type, geo_types)) {
        return "unsupported GeoJSON type";
    }
    if (c == NULL) {
        return "GeoJSON coordinates missing";
    }
    if (str_is(type, "Point")) {
        return geo_position(c);
    }
    if (str_is(type, "MultiPoint")) {
        return geo_positions(c, 1);
    }
    if (str_is(type, "LineString")) {
        return geo_line(c);
    }
    if (str_is(type, "MultiLineString")) {
        return geo_each(c, geo_line);
    }
    if (str_is(type, "Polygon")) {
        return geo_polygon(c);
    }
    if (str_is(type, "MultiPolygon")) {
        return geo_each(c, geo_polygon);
    }
    return "unsupported GeoJSON type"; /* not reached */
}

/* Orion's legacy geo:point value "lat, lon". */
static int geo_point_ok(const char *s)
{
    char *end;
    double lat, lon;

    errno = 0;
    lat = strtod(s, &end);
    if (end == s || errno != 0) {
        return 0;
    }
    while (*end == ' ') {
        end++;
    }
    if (*end++ != ',') {
        return 0;
    }
    s = end;
    lon = strtod(s, &end);
    if (end == s || errno != 0 || *end != '\0') {
        return 0;
    }
    return lat >= -90.0 && lat <= 90.0 && lon >= -180.0 && lon <= 180.0;
}

/* --- NGSI-v2 attribute values --------------------------------------------- */

/* Orion's CompoundValueNode::check(): duplicated keys, forbidden characters
 * in string leaves (keys are not checked). */
static int v2_compound_check(yajl_val v, struct ns_err *e)
{
    if (YAJL_IS_STRING(v)) {
        if (has_forbidden_chars(v->u.string)) {
            return BAD(e, "Invalid characters in attribute value");
        }
    } else if (YAJL_IS_OBJECT(v)) {
        const char *dup = obj_dup_key(v);
        if (dup != NULL) {
            return BAD(e, "duplicated tag-name: /%s/ in path: /", dup);
        }
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (v2_compound_check(v->u.object.values[i], e) != 0) {
                return -1;
            }
        }
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (v2_compound_check(v->u.array.values[i], e) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* Orion's defaultType(). */
static const char *v2_default_type(yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        return "None";
    }
    if (YAJL_IS_STRING(v)) {
        return "Text";
    }
    if (YAJL_IS_NUMBER(v)) {
        return "Number";
    }
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        return "Boolean";
    }
    return "StructuredValue";
}

static int is_date_type(const char *t)
{
    return str_is(t, "DateTime") || str_is(t, "ISO8601");
}

/* Checks a DateTime value; on success *out is its normalized JSON text.
 * A batch repeats one instant in every attribute's TimeInstant metadata:
 * each thread keeps its last input and the text it gave. */
static int v2_date_value(yajl_val v, char **out)
{
    static _Thread_local char last_in[NS_MAX_DATE_LEN + 1];
    static _Thread_local char last_text[48];
    static _Thread_local size_t last_len; /* 0: nothing kept */
    int64_t ms;
    char buf[40];
    size_t n;

    if (!YAJL_IS_STRING(v)) {
        return -1;
    }
    if (last_len == 0 || strcmp(v->u.string, last_in) != 0) {
        if (iso8601_parse(v->u.string, DT_ORION, &ms)) {
            return -1;
        }
        /* parsed: at most NS_MAX_DATE_LEN characters */
        snprintf(last_in, sizeof last_in, "%s", v->u.string);
        iso8601_format(ms, buf, sizeof buf);
        /* digits, '-', ':', 'T', '.' and 'Z': JSON needs no escape */
        n = strlen(buf);
        last_text[0] = '"';
        memcpy(last_text + 1, buf, n);
        last_text[n + 1] = '"';
        last_text[n + 2] = '\0';
        last_len = n + 2;
    }
    if ((*out = malloc(last_len + 1)) != NULL) {
        memcpy(*out, last_text, last_len + 1);
    }
    return 0;
}

/* Name syntax of Orion's ContextAttribute::check / Metadata::check. */
static int v2_check_name(const char *what, const char *name, struct ns_err *e)
{
    size_t len = strlen(name);

    if (len < NS_MIN_ID_LEN) {
        return BAD(e, "%s name length: 0, min length supported: 1", what);
    }
    if (len > NS_MAX_ID_LEN) {
        return BAD(e, "%s name length: %zu, max length supported: %d", what,
                   len, NS_MAX_ID_LEN);
    }
    if (has_forbidden_id_chars(name)) {
        return BAD(e, "Invalid characters in %s name", what);
    }
    return 0;
}

static int v2_check_type(const char *what, const char *type, struct ns_err *e)
{
    size_t len = strlen(type);

    if (len > NS_MAX_ID_LEN) {
        return BAD(e, "%s type length: %zu, max length supported: %d", what,
                   len, NS_MAX_ID_LEN);
    }
    if (len < NS_MIN_ID_LEN) {
        return BAD(e, "%s type length: 0, min length supported: 1", what);
    }
    if (has_forbidden_id_chars(type)) {
        return BAD(e, "Invalid characters in %s type", what);
    }
    return 0;
}

static int v2_parse_md(const char *name, yajl_val v, struct ns_md *m,
                       struct ns_err *e)
{
    yajl_val type = NULL, value = NULL;
    const char *dup;

    if (!YAJL_IS_OBJECT(v)) {
        return BAD(e, "metadata must be a JSON object");
    }
    if ((dup = obj_dup_key(v)) != NULL) {
        return BAD(e, "duplicated key /%s/ in metadata", dup);
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        if (str_is(k, "type")) {
            type = v->u.object.values[i];
            if (!YAJL_IS_STRING(type)) {
                return BAD(e, "invalid JSON type for attribute metadata type");
            }
        } else if (str_is(k, "value")) {
            value = v->u.object.values[i];
        } else {
            return BAD(e, "invalid JSON field for attribute metadata");
        }
    }
    m->name = intern(name);
    m->type = intern(type != NULL ? type->u.string : v2_default_type(value));
    if (m->name == NULL || m->type == NULL) {
        return oom(e);
    }
    if (is_date_type(m->type) && value != NULL && !YAJL_IS_NULL(value)) {
        if (v2_date_value(value, &m->value) != 0) {
            return BAD(e, "date has invalid format in metadata value");
        }
    } else {
        m->value = json_text(value);
    }
    if (m->value == NULL) {
        return oom(e);
    }
    /* Metadata::check */
    if (v2_check_name("metadata", name, e) != 0 ||
        v2_check_type("metadata", m->type, e) != 0) {
        return -1;
    }
    if (YAJL_IS_STRING(value) && has_forbidden_chars(value->u.string)) {
        return BAD(e, "Invalid characters in metadata value");
    }
    if (in_list(name, reserved_md_names)) {
        return BAD(e, "metadata name is reserved: /%s/", name);
    }
    return 0;
}

/* True when metadata name is a boolean true (TextUnrestricted, ignoreType). */
static int md_true(yajl_val mdobj, const char *name)
{
    yajl_val m = obj_get(mdobj, name);
    return YAJL_IS_TRUE(obj_get(m, "value"));
}

static int is_geo_type(const char *t)
{
    return str_is(t, "geo:json") || str_is(t, "geo:point") ||
           str_is(t, "geo:line") || str_is(t, "geo:box") ||
           str_is(t, "geo:polygon");
}

/* Parses and checks one attribute (parseContextAttribute +
 * ContextAttribute::check), v the attribute object, or its bare value when
 * keyvalues. */
static int v2_parse_attr(const char *name, yajl_val v, int keyvalues,
                         struct ns_attr *a, struct ns_err *e)
{
    yajl_val type = NULL, value = NULL, md = NULL;
    const char *dup;
    int unrestricted, ignore_type;

    if (keyvalues) {
        value = v;
    } else {
        if (!YAJL_IS_OBJECT(v)) {
            return BAD(e, "attribute must be a JSON object, unless keyValues "
                          "option is used");
        }
        if ((dup = obj_dup_key(v)) != NULL) {
            if (str_is(dup, "value")) {
                return BAD(e, "duplicated value key in attribute");
            }
            return BAD(e, "duplicated key /%s/ in attribute", dup);
        }
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *k = v->u.object.keys[i];
            yajl_val x = v->u.object.values[i];
            if (str_is(k, "type")) {
                if (!YAJL_IS_STRING(x)) {
                    return BAD(e, "invalid JSON type for attribute type");
                }
                type = x;
            } else if (str_is(k, "value")) {
                value = x;
            } else if (str_is(k, "metadata")) {
                if (!YAJL_IS_OBJECT(x)) {
                    return BAD(e, "metadata not a JSON object");
                }
                md = x;
            } else {
                return BAD(e, "unrecognized property for context attribute");
            }
        }
    }
    a->name = intern(name);
    a->type = intern(type != NULL ? type->u.string : v2_default_type(value));
    if (a->name == NULL || a->type == NULL) {
        return oom(e);
    }
    a->md_given = md != NULL;
    if (md != NULL && md->u.object.len > 0) {
        if ((dup = obj_dup_key(md)) != NULL) {
            return BAD(e, "duplicated metadata /%s/", dup);
        }
        a->md = calloc(md->u.object.len, sizeof *a->md);
        if (a->md == NULL) {
            return oom(e);
        }
        for (size_t i = 0; i < md->u.object.len; i++) {
            a->nmd++;
            if (v2_parse_md(md->u.object.keys[i], md->u.object.values[i],
                            &a->md[i], e) != 0) {
                return -1;
            }
        }
    }
    unrestricted =
        str_is(a->type, "TextUnrestricted") || md_true(md, "TextUnrestricted");
    ignore_type = md_true(md, "ignoreType");

    /* special types: DateTime and geo:json (parseContextAttributeObject) */
    if (is_date_type(a->type) && value != NULL && !YAJL_IS_NULL(value)) {
        if (!YAJL_IS_STRING(value)) {
            return BAD(e, "date has invalid format in attribute value");
        }
        if (v2_date_value(value, &a->value) != 0) {
            return BAD(e, "date has invalid format in attribute value");
        }
    } else {
        a->value = json_text(value);
    }
    if (a->value == NULL) {
        return oom(e);
    }
    if (str_is(a->type, "geo:json") && value != NULL && !YAJL_IS_NULL(value)) {
        const char *why;
        if (!YAJL_IS_OBJECT(value)) {
            return BAD(e, "geo:json needs an object or null as value");
        }
        if (!ignore_type && (why = geo_validate(value, 1)) != NULL) {
            return BAD(e, "Wrong GeoJson: %s", why);
        }
    }
    if (str_is(a->type, "geo:point") && !ignore_type && YAJL_IS_STRING(value) &&
        !geo_point_ok(value->u.string)) {
        return BAD(e, "geo coordinates format error [see Orion user manual]");
    }
    a->is_geo = is_geo_type(a->type) && !ignore_type && value != NULL &&
                !YAJL_IS_NULL(value);

    /* ContextAttribute::check */
    if (v2_check_name("attribute", name, e) != 0 ||
        v2_check_type("attribute", a->type, e) != 0) {
        return -1;
    }
    if (!unrestricted) {
        if (YAJL_IS_OBJECT(value) || YAJL_IS_ARRAY(value)) {
            if (v2_compound_check(value, e) != 0) {
                return -1;
            }
        } else if (YAJL_IS_STRING(value) &&
                   has_forbidden_chars(value->u.string)) {
            return BAD(e, "Invalid characters in attribute value");
        }
    }
    /* orion-api.md: reserved names; dateExpires must be a DateTime */
    if (in_list(name, reserved_attr_names)) {
        return BAD(e, "attribute name is reserved: /%s/", name);
    }
    if (str_is(name, "dateExpires") && !is_date_type(a->type)) {
        return BAD(e, "dateExpires attribute must be of type DateTime");
    }
    return 0;
}

/* parseEntityObject + Entity::check for one entity of a batch update. */
static int v2_parse_entity(yajl_val v, int keyvalues, struct ns_entity *en,
                           struct ns_err *e)
{
    yajl_val id, idp;
    const char *dup;
    size_t len;

    if (!YAJL_IS_OBJECT(v)) {
        return BAD(e, "entity is not a JSON object");
    }
    id = obj_get(v, "id");
    idp = obj_get(v, "idPattern");
    if (id != NULL && idp != NULL) {
        return BAD(e, "both /id/ and /idPattern/ present");
    }
    if (id == NULL && idp == NULL) {
        return BAD(e, "nor /id/ nor /idPattern/ present");
    }
    if ((dup = obj_dup_key(v)) != NULL) {
        return BAD(e, "duplicated key /%s/ in entity", dup);
    }
    en->attrs = calloc(v->u.object.len, sizeof *en->attrs);
    if (en->attrs == NULL && v->u.object.len > 0) {
        return oom(e);
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        yajl_val x = v->u.object.values[i];
        if (str_is(k, "id")) {
            if (!YAJL_IS_STRING(x)) {
                return BAD(e, "Invalid JSON type for entity id");
            }
            if (has_forbidden_id_chars(x->u.string)) {
                return BAD(e, "Invalid characters in entity id");
            }
            if ((en->id = strdup(x->u.string)) == NULL) {
                return oom(e);
            }
        } else if (str_is(k, "idPattern")) {
            return ns_fail(e, 501, "NotImplemented", "NotImplemented");
        } else if (str_is(k, "type")) {
            if (!YAJL_IS_STRING(x)) {
                return BAD(e, "Invalid JSON type for entity type");
            }
            if (x->u.string[0] == '\0') {
                return BAD(e, "entity type length: 0, min length supported: 1");
            }
            if (has_forbidden_id_chars(x->u.string)) {
                return BAD(e, "Invalid characters in entity type");
            }
            if ((en->type = strdup(x->u.string)) == NULL) {
                return oom(e);
            }
        } else if (str_is(k, "typePattern")) {
            return BAD(e, "typePattern is not supported");
        } else {
            struct ns_attr *a = &en->attrs[en->nattrs++];
            if (v2_parse_attr(k, x, keyvalues, a, e) != 0) {
                return -1;
            }
        }
    }
    /* Entity::check */
    len = strlen(en->id);
    if (len < NS_MIN_ID_LEN) {
        return BAD(e, "entity id length: 0, min length supported: 1");
    }
    if (len > NS_MAX_ID_LEN) {
        return BAD(e, "entity id length: %zu, max length supported: %d", len,
                   NS_MAX_ID_LEN);
    }
    if (en->type == NULL) {
        return BAD(e, "entity /type/ missing (this test server requires it; "
                      "Orion would default it to Thing)");
    }
    if ((len = strlen(en->type)) > NS_MAX_ID_LEN) {
        return BAD(e, "entity type length: %zu, max length supported: %d", len,
                   NS_MAX_ID_LEN);
    }
    return 0;
}

/* parseActionType: v2 names, then NGSIv1 names in any case. */
static int v2_action(const char *s, enum ns_action *out)
{
    static const struct {
        const char *name;
        enum ns_action act;
    } v2[] = {{"update", ACT_UPDATE},
              {"append", ACT_APPEND},
              {"appendStrict", ACT_APPEND_STRICT},
              {"delete", ACT_DELETE},
              {"replace", ACT_REPLACE}},
      v1[] = {{"update", ACT_UPDATE},
              {"append", ACT_APPEND},
              {"append_strict", ACT_APPEND_STRICT},
              {"delete", ACT_DELETE},
              {"replace", ACT_REPLACE}};

    for (size_t i = 0; i < sizeof v2 / sizeof v2[0]; i++) {
        if (strcmp(s, v2[i].name) == 0) {
            *out = v2[i].act;
            return 0;
        }
    }
    for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) {
        if (strcasecmp(s, v1[i].name) == 0) {
            *out = v1[i].act;
            return 0;
        }
    }
    return -1;
}

/* parseBatchUpdate + postBatchUpdate: the whole body, every entity checked
 * before anything is applied. On error u is cleared. */
static int v2_parse_update(yajl_val root, int keyvalues, struct v2_update *u,
                           struct ns_err *e)
{
    yajl_val ents = NULL;
    int rc = -1;

    memset(u, 0, sizeof *u);
    if (!YAJL_IS_OBJECT(root)) {
        return ns_fail(e, 400, "ParseError",
                       "Errors found in incoming JSON buffer");
    }
    if (root->u.object.len == 0) {
        return BAD(e, "empty payload");
    }
    if (obj_get(root, "entities") == NULL) {
        return BAD(e, "Invalid JSON payload, mandatory field /entities/ not "
                      "found");
    }
    if (obj_get(root, "actionType") == NULL) {
        return BAD(e, "Invalid JSON payload, mandatory field /actionType/ not "
                      "found");
    }
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        yajl_val x = root->u.object.values[i];
        if (str_is(k, "entities")) {
            if (ents != NULL) {
                BAD(e, "duplicated field /entities/");
                goto out;
            }
            if (!YAJL_IS_ARRAY(x)) {
                BAD(e, "not a JSON array");
                goto out;
            }
            ents = x;
            u->ents = calloc(x->u.array.len + 1, sizeof *u->ents);
            if (u->ents == NULL) {
                oom(e);
                goto out;
            }
            for (size_t j = 0; j < x->u.array.len; j++) {
                u->n++;
                if (v2_parse_entity(x->u.array.values[j], keyvalues,
                                    &u->ents[j], e) != 0) {
                    goto out;
                }
            }
        } else if (str_is(k, "actionType")) {
            if (!YAJL_IS_STRING(x) || v2_action(x->u.string, &u->action)) {
                BAD(e, "invalid update action type: right ones are: append, "
                       "appendStric, delete, replace, update");
                goto out;
            }
        } else {
            BAD(e, "Unrecognized field in JSON payload: /%s/", k);
            goto out;
        }
    }
    if (u->n == 0) {
        BAD(e, "empty entities vector");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        v2_update_clear(u);
    }
    return rc;
}

/* --- Fiware-Service and Fiware-ServicePath (rest.cpp, RestService.cpp) ---- */

/* tenantCheck(); on success out is the lower-cased service. */
static int v2_service(const char *s, char *out, size_t outlen, struct ns_err *e)
{
    size_t len = strlen(s);

    if (len > 50) {
        return BAD(e, "bad length - a tenant name can be max 50 characters "
                      "long");
    }
    for (size_t i = 0; i < len; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '_') {
            return BAD(e, "bad character in tenant name - only underscore "
                          "and alphanumeric characters are allowed");
        }
    }
    for (size_t i = 0; i < len && i + 1 < outlen; i++) {
        out[i] = (char)tolower((unsigned char)s[i]);
        out[i + 1] = '\0';
    }
    if (len == 0 && outlen > 0) {
        out[0] = '\0';
    }
    return 0;
}

#define NS_MAX_SPATHS    10
#define NS_SPATH_MAX_LEN (10 * 51 + 3)

struct spaths {
    int n;
    char p[NS_MAX_SPATHS][NS_SPATH_MAX_LEN];
};

/* servicePathSplit + servicePathCheck. header NULL: not sent. update: one
 * path, no '#' (postUpdateContext). Without a header a query sees "/#" and
 * an update uses "/". Trailing slashes are dropped. */
static int v2_service_paths(const char *header, int update, struct spaths *sp,
                            struct ns_err *e)
{
    const char *p = header;

    memset(sp, 0, sizeof *sp);
    if (header == NULL) {
        sp->n = 1;
        snprintf(sp->p[0], sizeof sp->p[0], "%s", update ? "/" : "/#");
        return 0;
    }
    if (header[0] == '\0') {
        return BAD(e, "empty service path");
    }
    while (p != NULL) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char path[NS_SPATH_MAX_LEN];
        int levels = 0;

        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) {
            len--;
        }
        if (sp->n == NS_MAX_SPATHS) {
            return BAD(e, "too many service paths - a maximum of ten service "
                          "paths is allowed");
        }
        if (len >= sizeof path) {
            return BAD(e, "component-name too long in ServicePath");
        }
        memcpy(path, p, len);
        path[len] = '\0';
        if (len > 1 && path[len - 1] == '/') {
            path[--len] = '\0';
        }
        if (path[0] != '/' && path[0] != '\0') {
            return BAD(e, "Only /absolute/ Service Paths allowed [a service "
                          "path must begin with /]");
        }
        if (path[0] == '/' && path[1] == '/') {
            return BAD(e, "empty component in ServicePath");
        }
        for (const char *c = path + (path[0] == '/'); *c != '\0';) {
            const char *end = strchr(c, '/');
            size_t clen = end != NULL ? (size_t)(end - c) : strlen(c);
            if (++levels > 10) {
                return BAD(e, "too many components in ServicePath");
            }
            if (clen > 50) {
                return BAD(e, "component-name too long in ServicePath");
            }
            if (clen == 0) {
                return BAD(e, "empty component in ServicePath");
            }
            if (clen == 1 && c[0] == '#' && end == NULL) {
                if (update) {
                    return BAD(e, "Bad Character in Service-Path");
                }
                break;
            }
            for (size_t i = 0; i < clen; i++) {
                if (!isalnum((unsigned char)c[i]) && c[i] != '_') {
                    return BAD(e, "a component of ServicePath contains an "
                                  "illegal character");
                }
            }
            c += clen + (end != NULL);
        }
        if (path[0] == '\0') {
            snprintf(path, sizeof path, "/");
        }
        snprintf(sp->p[sp->n++], sizeof sp->p[0], "%s", path);
        p = comma != NULL ? comma + 1 : NULL;
    }
    if (update && sp->n > 1) {
        return BAD(e, "more than one service path in context update request");
    }
    return 0;
}

/* True when the entity path is within one of the query paths. */
static int spath_match(const struct spaths *sp, const char *path)
{
    for (int i = 0; i < sp->n; i++) {
        const char *q = sp->p[i];
        size_t ql = strlen(q);
        if (ql >= 2 && str_is(q + ql - 2, "/#")) {
            size_t base = ql - 2; /* "/a/#" -> "/a"; "/#" -> "" */
            if (base == 0 || (strncmp(path, q, base) == 0 &&
                              (path[base] == '\0' || path[base] == '/'))) {
                return 1;
            }
        } else if (strcmp(q, path) == 0) {
            return 1;
        }
    }
    return 0;
}

/* --- NGSI-LD
 * ------------------------------------------------------------------ */

/* An absolute URI: scheme ":" something, no blanks or characters RFC 3986
 * excludes. */
static int ld_uri_ok(const char *s)
{
    const char *p = s;
    size_t len = strlen(s);

    if (len == 0 || len > NS_MAX_URI_LEN || !isalpha((unsigned char)*p)) {
        return 0;
    }
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.') {
        p++;
    }
    if (*p != ':' || p[1] == '\0') {
        return 0;
    }
    for (p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 32 || c >= 127 || c == '<' || c == '>' || c == '"' ||
            c == '{' || c == '}' || c == '|' || c == '\\' || c == '^' ||
            c == '`') {
            return 0;
        }
    }
    return 1;
}

/* Attribute and type names: 1..256 printable ASCII, none of < > " ' = ; ( )
 * (full URIs are allowed, so / # ? & are). */
static int ld_name_ok(const char *s)
{
    size_t len = strlen(s);

    if (len < 1 || len > NS_MAX_ID_LEN) {
        return 0;
    }
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || forbidden_common(c)) {
            return 0;
        }
    }
    return 1;
}

static int ld_has_null(yajl_val v)
{
    if (v == NULL || YAJL_IS_NULL(v)) {
        return 1;
    }
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++) {
            if (ld_has_null(v->u.object.values[i])) {
                return 1;
            }
        }
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (ld_has_null(v->u.array.values[i])) {
                return 1;
            }
        }
    }
    return 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
ld_bad(struct ns_err *e, const char *title, const char *fmt, ...)
{
    va_list ap;

    e->status = 400;
    snprintf(e->error, sizeof e->error, "BadRequestData");
    snprintf(e->title, sizeof e->title, "%s", title);
    va_start(ap, fmt);
    vsnprintf(e->desc, sizeof e->desc, fmt, ap);
    va_end(ap);
    return -1;
}

static int ld_check_attr(const char *name, yajl_val v, int depth,
                         struct ns_err *e);

static int ld_uri_or_uris(yajl_val v)
{
    if (YAJL_IS_STRING(v)) {
        return ld_uri_ok(v->u.string);
    }
    if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0) {
        return 0;
    }
    for (size_t i = 0; i < v->u.array.len; i++) {
        yajl_val x = v->u.array.values[i];
        if (!YAJL_IS_STRING(x) || !ld_uri_ok(x->u.string)) {
            return 0;
        }
    }
    return 1;
}

/* One attribute instance: a Property, Relationship, GeoProperty,
 * LanguageProperty, ListProperty, ListRelationship, VocabProperty or
 * JsonProperty object, with its sub-attributes. */
static int ld_check_instance(const char *name, yajl_val v, int depth,
                             struct ns_err *e)
{
    yajl_val t = obj_get(v, "type");
    yajl_val x;
    const char *type, *dup;
    int64_t ms;

    if (!YAJL_IS_OBJECT(v)) {
        return ld_bad(e, "Invalid attribute", "attribute %s: not a JSON object",
                      name);
    }
    if ((dup = obj_dup_key(v)) != NULL) {
        return ld_bad(e, "Invalid attribute", "attribute %s: duplicated /%s/",
                      name, dup);
    }
    if (!YAJL_IS_STRING(t)) {
        return ld_bad(e, "Invalid attribute",
                      "attribute %s: /type/ missing or not a string", name);
    }
    type = t->u.string;
    if (strcmp(type, "JsonProperty") != 0 && ld_has_null(v)) {
        return ld_bad(e, "Null value not allowed",
                      "attribute %s: NGSI-LD forbids null values", name);
    }
    if (str_is(type, "Property")) {
        if (obj_get(v, "value") == NULL) {
            return ld_bad(e, "Invalid Property",
                          "attribute %s: Property without /value/", name);
        }
        if (obj_get(v, "object") != NULL) {
            return ld_bad(e, "Invalid Property",
                          "attribute %s: Property with /object/", name);
        }
    } else if (str_is(type, "Relationship")) {
        if (!ld_uri_or_uris(obj_get(v, "object"))) {
            return ld_bad(e, "Invalid Relationship",
                          "attribute %s: /object/ must be a URI", name);
        }
        if (obj_get(v, "value") != NULL) {
            return ld_bad(e, "Invalid Relationship",
                          "attribute %s: Relationship with /value/", name);
        }
    } else if (str_is(type, "GeoProperty")) {
        const char *why = geo_validate(obj_get(v, "value"), 0);
        if (why != NULL) {
            return ld_bad(e, "Invalid GeoProperty", "attribute %s: %s", name,
                          why);
        }
    } else if (str_is(type, "LanguageProperty")) {
        x = obj_get(v, "languageMap");
        if (!YAJL_IS_OBJECT(x)) {
            return ld_bad(e, "Invalid LanguageProperty",
                          "attribute %s: /languageMap/ must be an object",
                          name);
        }
    } else if (str_is(type, "ListProperty")) {
        if (!YAJL_IS_ARRAY(obj_get(v, "valueList"))) {
            return ld_bad(e, "Invalid ListProperty",
                          "attribute %s: /valueList/ must be an array", name);
        }
    } else if (str_is(type, "ListRelationship")) {
        if (!YAJL_IS_ARRAY(obj_get(v, "objectList"))) {
            return ld_bad(e, "Invalid ListRelationship",
                          "attribute %s: /objectList/ must be an array", name);
        }
    } else if (str_is(type, "VocabProperty")) {
        x = obj_get(v, "vocab");
        if (!YAJL_IS_STRING(x) && !YAJL_IS_ARRAY(x)) {
            return ld_bad(e, "Invalid VocabProperty",
                          "attribute %s: /vocab/ missing", name);
        }
    } else if (str_is(type, "JsonProperty")) {
        if (obj_get(v, "json") == NULL) {
            return ld_bad(e, "Invalid JsonProperty",
                          "attribute %s: /json/ missing", name);
        }
    } else {
        return ld_bad(e, "Invalid attribute type",
                      "attribute %s: type /%s/ is not an NGSI-LD attribute "
                      "type",
                      name, type);
    }
    if ((str_is(name, "location") || str_is(name, "observationSpace") ||
         str_is(name, "operationSpace")) &&
        strcmp(type, "GeoProperty") != 0) {
        return ld_bad(e, "Invalid attribute",
                      "attribute %s must be a GeoProperty", name);
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        x = v->u.object.values[i];
        if (str_is(k, "observedAt")) {
            if (!YAJL_IS_STRING(x) || iso8601_parse(x->u.string, DT_XSD, &ms)) {
                return ld_bad(e, "Invalid DateTime",
                              "attribute %s: /observedAt/ is not a valid "
                              "DateTime",
                              name);
            }
        } else if (str_is(k, "unitCode")) {
            if (!YAJL_IS_STRING(x) || x->u.string[0] == '\0') {
                return ld_bad(e, "Invalid unitCode",
                              "attribute %s: /unitCode/ must be a non-empty "
                              "string",
                              name);
            }
        } else if (str_is(k, "datasetId")) {
            if (!YAJL_IS_STRING(x) || !ld_uri_ok(x->u.string)) {
                return ld_bad(e, "Invalid datasetId",
                              "attribute %s: /datasetId/ must be a URI", name);
            }
        } else if (str_is(k, "type") || str_is(k, "value") ||
                   str_is(k, "object") || str_is(k, "languageMap") ||
                   str_is(k, "valueList") || str_is(k, "objectList") ||
                   str_is(k, "vocab") || str_is(k, "json") ||
                   str_is(k, "createdAt") || str_is(k, "modifiedAt") ||
                   str_is(k, "lang") || str_is(k, "objectType")) {
            continue;
        } else if (ld_check_attr(k, x, depth + 1, e) != 0) {
            return -1;
        }
    }
    return 0;
}

/* An attribute: one instance, or an array of instances (datasetId). */
static int ld_check_attr(const char *name, yajl_val v, int depth,
                         struct ns_err *e)
{
    if (!ld_name_ok(name)) {
        return ld_bad(e, "Invalid attribute name",
                      "attribute name /%s/ is not a valid NGSI-LD name", name);
    }
    if (depth > NS_LD_MAX_DEPTH) {
        return ld_bad(e, "Invalid attribute",
                      "attribute %s: sub-attributes nested too deeply", name);
    }
    if (YAJL_IS_ARRAY(v)) {
        if (v->u.array.len == 0) {
            return ld_bad(e, "Invalid attribute",
                          "attribute %s: empty array of instances", name);
        }
        for (size_t i = 0; i < v->u.array.len; i++) {
            if (ld_check_instance(name, v->u.array.values[i], depth, e) != 0) {
                return -1;
            }
        }
        return 0;
    }
    if (v == NULL || YAJL_IS_NULL(v)) {
        return ld_bad(e, "Null value not allowed",
                      "attribute %s: NGSI-LD forbids null values", name);
    }
    return ld_check_instance(name, v, depth, e);
}

static int ld_type_ok(yajl_val t)
{
    if (YAJL_IS_STRING(t)) {
        return ld_name_ok(t->u.string);
    }
    if (!YAJL_IS_ARRAY(t) || t->u.array.len == 0) {
        return 0;
    }
    for (size_t i = 0; i < t->u.array.len; i++) {
        yajl_val x = t->u.array.values[i];
        if (!YAJL_IS_STRING(x) || !ld_name_ok(x->u.string)) {
            return 0;
        }
    }
    return 1;
}

/* The id of entity v for error reports ("" when it has none). */
static const char *ld_entity_id(yajl_val v)
{
    yajl_val id = obj_get(v, "id");
    return YAJL_IS_STRING(id) ? id->u.string : "";
}

/* Validates one NGSI-LD entity of an upsert and builds en. need_ctx: the
 * body is application/ld+json, so the entity must carry @context. */
static int ld_parse_entity(yajl_val v, int need_ctx, struct ns_entity *en,
                           struct ns_err *e)
{
    yajl_val id = obj_get(v, "id");
    yajl_val t = obj_get(v, "type");
    const char *dup;
    size_t tlen = 0;

    if (!YAJL_IS_OBJECT(v)) {
        return ld_bad(e, "Invalid entity", "entity is not a JSON object");
    }
    if ((dup = obj_dup_key(v)) != NULL) {
        return ld_bad(e, "Invalid entity", "duplicated key /%s/", dup);
    }
    if (!YAJL_IS_STRING(id) || !ld_uri_ok(id->u.string)) {
        return ld_bad(e, "Invalid Entity ID",
                      "entity /id/ missing or not a URI");
    }
    if (!ld_type_ok(t)) {
        return ld_bad(e, "Invalid Entity Type",
                      "entity /type/ missing or not a valid name");
    }
    if (need_ctx && obj_get(v, "@context") == NULL) {
        return ld_bad(e, "Invalid payload",
                      "Content-Type is application/ld+json but the entity has "
                      "no @context");
    }
    en->id = strdup(id->u.string);
    en->type_json = json_text(t);
    if (YAJL_IS_STRING(t)) {
        tlen = strlen(t->u.string) + 2;
    } else {
        for (size_t i = 0; i < t->u.array.len; i++) {
            tlen += strlen(t->u.array.values[i]->u.string) + 1;
        }
        tlen++;
    }
    en->types = malloc(tlen);
    en->attrs = calloc(v->u.object.len + 1, sizeof *en->attrs);
    if (en->id == NULL || en->type_json == NULL || en->types == NULL ||
        en->attrs == NULL) {
        return oom(e);
    }
    en->types[0] = '\0';
    if (YAJL_IS_STRING(t)) {
        snprintf(en->types, tlen, "%s\n", t->u.string);
    } else {
        size_t off = 0;
        for (size_t i = 0; i < t->u.array.len; i++) {
            int n = snprintf(en->types + off, tlen - off, "%s\n",
                             t->u.array.values[i]->u.string);
            off += (size_t)n;
        }
    }
    en->type = strndup(en->types, strcspn(en->types, "\n"));
    if (en->type == NULL) {
        return oom(e);
    }
    for (size_t i = 0; i < v->u.object.len; i++) {
        const char *k = v->u.object.keys[i];
        yajl_val x = v->u.object.values[i];
        struct ns_attr *a;

        if (str_is(k, "id") || str_is(k, "type") || str_is(k, "@context") ||
            str_is(k, "createdAt") || str_is(k, "modifiedAt")) {
            continue;
        }
        if (str_is(k, "scope")) {
            if (!YAJL_IS_STRING(x) && !YAJL_IS_ARRAY(x)) {
                return ld_bad(e, "Invalid scope",
                              "/scope/ must be a string or an array");
            }
        } else if (ld_check_attr(k, x, 0, e) != 0) {
            return -1;
        }
        a = &en->attrs[en->nattrs++];
        a->name = intern(k);
        a->value = json_text(x);
        if (a->name == NULL || a->value == NULL) {
            return oom(e);
        }
    }
    return 0;
}

#endif
