/*
 * Loads the vertical schemas (schemas/<code>.json, embedded into the binary
 * by src/tools/embed.c) into immutable tables, validating every file
 * strictly: an unknown key, a wrong type or an inconsistent combination is
 * an error that names the file and the field. schemas/README.md documents
 * the format.
 *
 * Everything a set hands out lives in allocations the set owns (strings are
 * copied out of the yajl tree) and is freed by schema_set_free(). Built by
 * one thread; afterwards read-only, so any number of threads may read it.
 *
 * schema_field_index() runs once per JSON key of every message: each
 * vertical has a small open-addressing hash table of its names and aliases,
 * placed in the same allocation as its field array, in front of it, so the
 * lookup finds it from sv->fields alone.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "spot/schema.h"

/* Defined by the generated build/gen/schemas_embedded.c. */
struct spot_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t len;
};
extern const struct spot_embedded_file spot_embedded_schemas[];
extern const size_t spot_embedded_schema_count;

#define MAX_ALIASES      4   /* per field */
#define MAX_ALLOWED      64  /* allowed values or codes per field */
#define MAX_NAME_LEN     256 /* JSON keys and NGSI names (Orion's rule) */
#define MAX_SQL_IDENT    63  /* PostgreSQL NAMEDATALEN - 1 */
#define MAX_TEXT_LEN     256 /* titles, units, descriptions, code texts */
#define MAX_CODE_ABS     2147483647.0
#define MAX_SCHEMA_BYTES (256 * 1024)
#define LOOKUP_KEYS      128 /* names + aliases per vertical */
#define LOOKUP_SLOTS     256 /* power of two, twice LOOKUP_KEYS */

struct lookup_key {
    const char *s;
    size_t len;
    int field;
};

/* One allocation per vertical: the lookup table, then the fields. */
struct vertical_data {
    uint64_t len_mask; /* bit n set: some key has length n (n < 64) */
    size_t max_len;
    size_t n_keys;
    struct lookup_key keys[LOOKUP_KEYS];
    uint8_t slots[LOOKUP_SLOTS]; /* 1 + index into keys; 0 = empty */
    struct schema_field fields[];
};

struct schema_set {
    struct schema_vertical verticals[SPOT_V_COUNT];
    void **allocs; /* everything the set owns */
    size_t n_allocs, cap_allocs;
};

/* Parsing context: where we are, for error messages. */
struct ctx {
    struct schema_set *set;
    char *err;
    size_t errlen;
    char label[80];  /* "aqo.json", or "text 2 (aqo)" */
    char field[300]; /* "" or "field \"no2-a4\"" / "field #3" */
    const char *obj; /* "" or "sdm." / "compat." for key names */
};

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static int fail(struct ctx *c, const char *fmt, ...) PRINTF_LIKE(2, 3);

/* Writes "label: field \"x\": message" into c->err; returns SPOT_ECORRUPT
 * so that callers can write `return fail(...)`. */
static int fail(struct ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (c->err == NULL || c->errlen == 0)
        return SPOT_ECORRUPT;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->field[0] != '\0')
        snprintf(c->err, c->errlen, "%s: %s: %s", c->label, c->field, msg);
    else
        snprintf(c->err, c->errlen, "%s: %s", c->label, msg);
    return SPOT_ECORRUPT;
}

static int fail_nomem(struct ctx *c)
{
    if (c->err != NULL && c->errlen > 0)
        snprintf(c->err, c->errlen, "%s: out of memory", c->label);
    return SPOT_ENOMEM;
}

/* ---- ownership: every allocation is registered with the set ---------- */

static void *set_alloc(struct schema_set *set, size_t size)
{
    if (set->n_allocs == set->cap_allocs) {
        size_t cap = set->cap_allocs ? set->cap_allocs * 2 : 64;
        void **a = realloc(set->allocs, cap * sizeof *a);
        if (a == NULL)
            return NULL;
        set->allocs = a;
        set->cap_allocs = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p == NULL)
        return NULL;
    set->allocs[set->n_allocs++] = p;
    return p;
}

static const char *set_strdup(struct schema_set *set, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = set_alloc(set, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

void schema_set_free(struct schema_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n_allocs; i++)
        free(set->allocs[i]);
    free(set->allocs);
    free(set);
}

/* ---- lexical rules ---------------------------------------------------- */

/* Orion's rule for ids, types and attribute names. */
static bool ngsi_name_ok(const char *s)
{
    static const char *const reserved[] = {
        "id",          "type",        "geo:distance",
        "*",           "dateCreated", "dateModified",
        "dateExpires", "servicePath", "alterationType",
    };
    size_t n = strlen(s);

    if (n == 0 || n > MAX_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x21 || ch > 0x7e || strchr("<>\"'=;()&?/#", ch) != NULL)
            return false;
    }
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(s, reserved[i]) == 0)
            return false;
    return true;
}

/* A string value Orion accepts in a Text attribute. */
static bool ngsi_text_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_TEXT_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || strchr("<>\"'=;()", ch) != NULL)
            return false;
    }
    return true;
}

/* [a-z_][a-z0-9_]*: a PostgreSQL identifier that needs no quoting. */
static bool sql_ident_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAX_SQL_IDENT || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '_'))
            return false;
    }
    return true;
}

/* UN/CEFACT Rec 20 common codes are two or three of [A-Z0-9]. */
static bool unit_code_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 2 || n > 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static bool is_integral(double d)
{
    return isfinite(d) && fabs(d) <= MAX_CODE_ABS && d == floor(d);
}

/* ---- typed access to yajl objects ------------------------------------ */

static yajl_val get(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* Every key of obj must be in known (n entries), at most once. */
static int check_keys(struct ctx *c, yajl_val obj, const char *const *known,
                      size_t n)
{
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *k = obj->u.object.keys[i];
        size_t j = 0;
        while (j < n && strcmp(k, known[j]) != 0)
            j++;
        if (j == n)
            return fail(c, "unknown key \"%s%s\"", c->obj, k);
        for (size_t m = 0; m < i; m++)
            if (strcmp(obj->u.object.keys[m], k) == 0)
                return fail(c, "key \"%s%s\" given twice", c->obj, k);
    }
    return SPOT_OK;
}

/* *out = the string at key, or NULL when absent (or null, if nullable). */
static int get_string(struct ctx *c, yajl_val obj, const char *key,
                      bool required, bool nullable, const char **out)
{
    yajl_val v = get(obj, key);

    *out = NULL;
    if (v == NULL && !required)
        return SPOT_OK;
    if (v == NULL)
        return fail(c, "missing \"%s%s\"", c->obj, key);
    if (YAJL_IS_NULL(v) && nullable)
        return SPOT_OK;
    if (!YAJL_IS_STRING(v))
        return fail(c, "\"%s%s\" must be a string%s", c->obj, key,
                    nullable ? " or null" : "");
    *out = v->u.string;
    return SPOT_OK;
}

static int get_bool(struct ctx *c, yajl_val obj, const char *key, bool required,
                    bool *out)
{
    yajl_val v = get(obj, key);

    *out = false;
    if (v == NULL && !required)
        return SPOT_OK;
    if (v == NULL)
        return fail(c, "missing \"%s%s\"", c->obj, key);
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        return fail(c, "\"%s%s\" must be true or false", c->obj, key);
    *out = YAJL_IS_TRUE(v);
    return SPOT_OK;
}

static int num_value(struct ctx *c, yajl_val v, const char *what, double *out)
{
    if (!YAJL_IS_NUMBER(v))
        return fail(c, "%s must be a number", what);
    if (!(v->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ||
        !isfinite(v->u.number.d))
        return fail(c, "%s is out of range", what);
    *out = v->u.number.d;
    return SPOT_OK;
}

static int get_number(struct ctx *c, yajl_val obj, const char *key, bool *has,
                      double *out)
{
    yajl_val v = get(obj, key);
    char what[64];

    *has = false;
    *out = 0;
    if (v == NULL)
        return SPOT_OK;
    snprintf(what, sizeof what, "\"%s%s\"", c->obj, key);
    int rc = num_value(c, v, what, out);
    if (rc == SPOT_OK)
        *has = true;
    return rc;
}

/* ---- enumerations ----------------------------------------------------- */

static const struct {
    const char *name;
    enum schema_type type;
    const char *pg_type;
} types[] = {
    {"number", SCHEMA_NUMBER, "double precision"},
    {"integer", SCHEMA_INTEGER, "integer"},
    {"text", SCHEMA_TEXT, "text"},
    {"bool_text", SCHEMA_BOOL_TEXT, "boolean"},
    {"datetime", SCHEMA_DATETIME, "timestamptz"},
};
#define N_TYPES (sizeof types / sizeof types[0])

static const char *const ngsi_types[] = {
    "Number", "Text", "TextUnrestricted", "DateTime", "Boolean",
};

static const char *const converts[] = {
    "div100",    /* number -> number / 100 */
    "code_text", /* integer code -> text via codes[] */
    "bool_text", /* "true"/"false" -> Boolean */
    "int_bool",  /* 0/1 -> Boolean */
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

#define IN_LIST(s, list) in_list((s), (list), sizeof(list) / sizeof(list)[0])

/* ---- one NGSI mapping of a field ------------------------------------- */

static bool is_text_ngsi(const char *t)
{
    return strcmp(t, "Text") == 0 || strcmp(t, "TextUnrestricted") == 0;
}

static bool field_allows(const struct schema_field *f, double d)
{
    for (size_t i = 0; i < f->n_allowed_numbers; i++)
        if (f->allowed_numbers[i] == d)
            return true;
    return false;
}

static int parse_codes(struct ctx *c, yajl_val arr, struct schema_ngsi *n)
{
    static const char *const keys[] = {"code", "text"};
    size_t cnt = arr->u.array.len;
    struct schema_code_text *codes;

    if (cnt == 0 || cnt > MAX_ALLOWED)
        return fail(c, "\"%scodes\" must hold 1 to %d entries", c->obj,
                    MAX_ALLOWED);
    codes = set_alloc(c->set, cnt * sizeof *codes);
    if (codes == NULL)
        return fail_nomem(c);
    for (size_t i = 0; i < cnt; i++) {
        yajl_val e = arr->u.array.values[i];
        const char *text;
        double d;
        int rc;

        if (!YAJL_IS_OBJECT(e))
            return fail(c, "\"%scodes\" entries must be objects", c->obj);
        if ((rc = check_keys(c, e, keys, 2)) != SPOT_OK)
            return rc;
        yajl_val code = get(e, "code");
        if (code == NULL)
            return fail(c, "\"%scodes\" entry %zu has no \"code\"", c->obj, i);
        if ((rc = num_value(c, code, "a code", &d)) != SPOT_OK)
            return rc;
        if (!is_integral(d))
            return fail(c, "code %g is not an integer", d);
        if ((rc = get_string(c, e, "text", true, false, &text)) != SPOT_OK)
            return rc;
        if (!ngsi_text_ok(text))
            return fail(c, "code %g: text \"%s\" is not a legal NGSI value", d,
                        text);
        for (size_t j = 0; j < i; j++)
            if (codes[j].code == (long)d)
                return fail(c, "code %g given twice", d);
        codes[i].code = (long)d;
        if ((codes[i].text = set_strdup(c->set, text)) == NULL)
            return fail_nomem(c);
    }
    n->codes = codes;
    n->n_codes = cnt;
    return SPOT_OK;
}

/* Checks that the NGSI type and conversion fit the field's type. */
static int check_ngsi_fit(struct ctx *c, const struct schema_field *f,
                          const struct schema_ngsi *n)
{
    const char *t = n->attr_type;
    const char *cv = n->convert;

    if ((f->type == SCHEMA_DATETIME) != (strcmp(t, "DateTime") == 0))
        return fail(c, "\"%stype\" %s does not fit a %s field", c->obj, t,
                    f->type == SCHEMA_DATETIME ? "datetime" : "non-datetime");
    if (n->unit_code != NULL && strcmp(t, "Number") != 0)
        return fail(c, "\"%sunitCode\" needs type Number", c->obj);
    if ((cv != NULL && strcmp(cv, "code_text") == 0) != (n->n_codes > 0))
        return fail(c,
                    "\"%scodes\" goes with convert code_text, and only "
                    "with it",
                    c->obj);
    if (cv == NULL) {
        if (strcmp(t, "Boolean") == 0)
            return fail(c, "type Boolean needs a conversion");
        if (strcmp(t, "Number") == 0 && f->type != SCHEMA_NUMBER &&
            f->type != SCHEMA_INTEGER)
            return fail(c, "type Number needs a number or integer field");
        if (is_text_ngsi(t) && f->type != SCHEMA_TEXT &&
            f->type != SCHEMA_BOOL_TEXT)
            return fail(c, "type %s needs a text field", t);
        return SPOT_OK;
    }
    if (strcmp(cv, "div100") == 0) {
        if (f->type != SCHEMA_NUMBER || strcmp(t, "Number") != 0)
            return fail(c, "convert div100 needs a number field sent as "
                           "Number");
    } else if (strcmp(cv, "bool_text") == 0) {
        if (f->type != SCHEMA_BOOL_TEXT || strcmp(t, "Boolean") != 0)
            return fail(c, "convert bool_text needs a bool_text field sent "
                           "as Boolean");
    } else if (strcmp(cv, "int_bool") == 0) {
        if (f->type != SCHEMA_INTEGER || strcmp(t, "Boolean") != 0)
            return fail(c, "convert int_bool needs an integer field sent as "
                           "Boolean");
        if (f->n_allowed_numbers == 0)
            return fail(c, "convert int_bool needs \"allowed\" [0, 1]");
        for (size_t i = 0; i < f->n_allowed_numbers; i++)
            if (f->allowed_numbers[i] != 0 && f->allowed_numbers[i] != 1)
                return fail(c, "convert int_bool allows only 0 and 1");
    } else { /* code_text */
        if (f->type != SCHEMA_INTEGER || !is_text_ngsi(t))
            return fail(c, "convert code_text needs an integer field sent "
                           "as Text");
        if (f->n_allowed_numbers != n->n_codes)
            return fail(c,
                        "\"%scodes\" must name exactly the \"allowed\" "
                        "values",
                        c->obj);
        for (size_t i = 0; i < n->n_codes; i++)
            if (!field_allows(f, (double)n->codes[i].code))
                return fail(c, "code %ld is not an allowed value",
                            n->codes[i].code);
    }
    return SPOT_OK;
}

/* val: null (not sent as its own attribute) or an object. */
static int parse_ngsi(struct ctx *c, yajl_val val, const char *which,
                      const struct schema_field *f, struct schema_ngsi *n)
{
    static const char *const keys[] = {"name", "type", "unitCode", "convert",
                                       "codes"};
    const char *name, *type, *unit, *cv;
    int rc;

    memset(n, 0, sizeof *n);
    if (val == NULL)
        return fail(c, "missing \"%s\" (an object, or null)", which);
    if (YAJL_IS_NULL(val))
        return SPOT_OK;
    if (!YAJL_IS_OBJECT(val))
        return fail(c, "\"%s\" must be an object or null", which);

    c->obj = strcmp(which, "sdm") == 0 ? "sdm." : "compat.";
    if ((rc = check_keys(c, val, keys, 5)) != SPOT_OK)
        goto out;
    if ((rc = get_string(c, val, "name", true, false, &name)) != SPOT_OK ||
        (rc = get_string(c, val, "type", true, false, &type)) != SPOT_OK ||
        (rc = get_string(c, val, "unitCode", false, true, &unit)) != SPOT_OK ||
        (rc = get_string(c, val, "convert", false, true, &cv)) != SPOT_OK)
        goto out;
    if (!ngsi_name_ok(name)) {
        rc = fail(c, "\"%sname\" \"%s\" is not a legal NGSI attribute name",
                  c->obj, name);
        goto out;
    }
    if (!IN_LIST(type, ngsi_types)) {
        rc = fail(c,
                  "\"%stype\" \"%s\" is not one of Number, Text, "
                  "TextUnrestricted, DateTime, Boolean",
                  c->obj, type);
        goto out;
    }
    if (unit != NULL && !unit_code_ok(unit)) {
        rc = fail(c, "\"%sunitCode\" \"%s\" is not a UN/CEFACT code", c->obj,
                  unit);
        goto out;
    }
    if (cv != NULL && !IN_LIST(cv, converts)) {
        rc = fail(c,
                  "\"%sconvert\" \"%s\" is not one of div100, code_text, "
                  "bool_text, int_bool",
                  c->obj, cv);
        goto out;
    }
    if (cv != NULL && strcmp(which, "compat") == 0) {
        rc = fail(c, "the compat mapping does no conversions");
        goto out;
    }
    yajl_val codes = get(val, "codes");
    if (codes != NULL) {
        if (!YAJL_IS_ARRAY(codes)) {
            rc = fail(c, "\"%scodes\" must be an array", c->obj);
            goto out;
        }
        if ((rc = parse_codes(c, codes, n)) != SPOT_OK)
            goto out;
    }
    if ((n->name = set_strdup(c->set, name)) == NULL ||
        (n->attr_type = set_strdup(c->set, type)) == NULL ||
        (unit != NULL && (n->unit_code = set_strdup(c->set, unit)) == NULL) ||
        (cv != NULL && (n->convert = set_strdup(c->set, cv)) == NULL)) {
        rc = fail_nomem(c);
        goto out;
    }
    rc = check_ngsi_fit(c, f, n);
out:
    c->obj = "";
    return rc;
}

/* ---- one field -------------------------------------------------------- */

static int parse_aliases(struct ctx *c, yajl_val arr, struct schema_field *f)
{
    size_t n = arr->u.array.len;
    const char **a;

    if (n > MAX_ALIASES)
        return fail(c, "more than %d aliases", MAX_ALIASES);
    a = set_alloc(c->set, (n ? n : 1) * sizeof *a);
    if (a == NULL)
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++) {
        yajl_val v = arr->u.array.values[i];
        if (!YAJL_IS_STRING(v))
            return fail(c, "\"aliases\" must hold strings");
        if (!ngsi_name_ok(v->u.string))
            return fail(c, "alias \"%s\" is not a legal name", v->u.string);
        if ((a[i] = set_strdup(c->set, v->u.string)) == NULL)
            return fail_nomem(c);
    }
    f->aliases = a;
    f->n_aliases = n;
    return SPOT_OK;
}

static int parse_allowed(struct ctx *c, yajl_val arr, struct schema_field *f)
{
    size_t n = arr->u.array.len;

    if (f->type != SCHEMA_INTEGER && f->type != SCHEMA_TEXT)
        return fail(c, "\"allowed\" applies to integer and text fields only");
    if (n == 0 || n > MAX_ALLOWED)
        return fail(c, "\"allowed\" must hold 1 to %d values", MAX_ALLOWED);
    if (f->type == SCHEMA_INTEGER) {
        double *nums = set_alloc(c->set, n * sizeof *nums);
        if (nums == NULL)
            return fail_nomem(c);
        for (size_t i = 0; i < n; i++) {
            int rc = num_value(c, arr->u.array.values[i],
                               "an \"allowed\" value", &nums[i]);
            if (rc != SPOT_OK)
                return rc;
            if (!is_integral(nums[i]))
                return fail(c, "allowed value %g is not an integer", nums[i]);
            for (size_t j = 0; j < i; j++)
                if (nums[j] == nums[i])
                    return fail(c, "allowed value %g given twice", nums[i]);
        }
        f->allowed_numbers = nums;
        f->n_allowed_numbers = n;
        return SPOT_OK;
    }
    const char **texts = set_alloc(c->set, n * sizeof *texts);
    if (texts == NULL)
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++) {
        yajl_val v = arr->u.array.values[i];
        if (!YAJL_IS_STRING(v))
            return fail(c, "\"allowed\" of a text field must hold strings");
        for (size_t j = 0; j < i; j++)
            if (strcmp(texts[j], v->u.string) == 0)
                return fail(c, "allowed value \"%s\" given twice", v->u.string);
        if ((texts[i] = set_strdup(c->set, v->u.string)) == NULL)
            return fail_nomem(c);
    }
    f->allowed_texts = texts;
    f->n_allowed_texts = n;
    return SPOT_OK;
}

/* Ranges, allowed values, patterns and lengths agree with each other. */
static int check_field(struct ctx *c, struct schema_field *f)
{
    bool numeric = f->type == SCHEMA_NUMBER || f->type == SCHEMA_INTEGER;

    if ((f->has_min || f->has_max) && !numeric)
        return fail(c, "\"min\"/\"max\" apply to number and integer fields "
                       "only");
    if (f->has_min && f->has_max && f->min > f->max)
        return fail(c, "min %g > max %g", f->min, f->max);
    for (size_t i = 0; i < f->n_allowed_numbers; i++) {
        double d = f->allowed_numbers[i];
        if ((f->has_min && d < f->min) || (f->has_max && d > f->max))
            return fail(c, "allowed value %g is outside [min, max]", d);
    }
    if (f->pattern != NULL && f->type != SCHEMA_TEXT)
        return fail(c, "\"pattern\" applies to text fields only");
    if (f->max_length != 0 && f->type != SCHEMA_TEXT)
        return fail(c, "\"max_length\" applies to text fields only");
    if (f->pattern != NULL && f->max_length != 0 && f->max_length < 40)
        return fail(c, "pattern hex40 needs max_length >= 40");
    for (size_t i = 0; i < f->n_allowed_texts; i++)
        if (f->max_length != 0 && strlen(f->allowed_texts[i]) > f->max_length)
            return fail(c, "allowed value \"%s\" is longer than max_length",
                        f->allowed_texts[i]);
    if (f->mandatory && f->nullable)
        return fail(c, "a mandatory field cannot be nullable (null means "
                       "\"sensor fitted, no reading\")");
    if (f->key && (!f->mandatory || f->nullable))
        return fail(c, "a key field must be mandatory and not nullable");
    for (size_t i = 0; i < N_TYPES; i++)
        if (types[i].type == f->type && strcmp(types[i].pg_type, f->pg_type))
            return fail(c, "pg_type \"%s\" does not fit type %s (needs %s)",
                        f->pg_type, types[i].name, types[i].pg_type);
    return SPOT_OK;
}

static int parse_field(struct ctx *c, yajl_val val, size_t idx,
                       struct schema_field *f)
{
    static const char *const keys[] = {
        "name",      "aliases",  "type",       "description", "unit",
        "mandatory", "nullable", "key",        "min",         "max",
        "allowed",   "pattern",  "max_length", "column",      "pg_type",
        "sdm",       "compat",
    };
    const char *name, *type, *unit, *desc, *pattern, *column, *pg_type;
    int rc;

    snprintf(c->field, sizeof c->field, "field #%zu", idx);
    if (!YAJL_IS_OBJECT(val))
        return fail(c, "must be an object");
    if ((rc = get_string(c, val, "name", true, false, &name)) != SPOT_OK)
        return rc;
    if (!ngsi_name_ok(name))
        return fail(c, "name \"%.256s\" is not a legal name", name);
    snprintf(c->field, sizeof c->field, "field \"%s\"", name);
    if ((rc = check_keys(c, val, keys, sizeof keys / sizeof keys[0])) !=
        SPOT_OK)
        return rc;
    if ((f->name = set_strdup(c->set, name)) == NULL)
        return fail_nomem(c);

    yajl_val aliases = get(val, "aliases");
    if (aliases != NULL) {
        if (!YAJL_IS_ARRAY(aliases))
            return fail(c, "\"aliases\" must be an array");
        if ((rc = parse_aliases(c, aliases, f)) != SPOT_OK)
            return rc;
    }

    if ((rc = get_string(c, val, "type", true, false, &type)) != SPOT_OK)
        return rc;
    size_t t = 0;
    while (t < N_TYPES && strcmp(type, types[t].name) != 0)
        t++;
    if (t == N_TYPES)
        return fail(c,
                    "type \"%s\" is not one of number, integer, text, "
                    "bool_text, datetime",
                    type);
    f->type = types[t].type;

    if ((rc = get_string(c, val, "description", false, false, &desc)) !=
            SPOT_OK ||
        (rc = get_string(c, val, "unit", false, true, &unit)) != SPOT_OK)
        return rc;
    if (unit != NULL && (unit[0] == '\0' || strlen(unit) > MAX_TEXT_LEN))
        return fail(c, "\"unit\" must be 1 to %d bytes", MAX_TEXT_LEN);
    if (unit != NULL && (f->unit = set_strdup(c->set, unit)) == NULL)
        return fail_nomem(c);

    if ((rc = get_bool(c, val, "mandatory", true, &f->mandatory)) != SPOT_OK ||
        (rc = get_bool(c, val, "nullable", true, &f->nullable)) != SPOT_OK ||
        (rc = get_bool(c, val, "key", false, &f->key)) != SPOT_OK ||
        (rc = get_number(c, val, "min", &f->has_min, &f->min)) != SPOT_OK ||
        (rc = get_number(c, val, "max", &f->has_max, &f->max)) != SPOT_OK)
        return rc;

    yajl_val allowed = get(val, "allowed");
    if (allowed != NULL) {
        if (!YAJL_IS_ARRAY(allowed))
            return fail(c, "\"allowed\" must be an array");
        if ((rc = parse_allowed(c, allowed, f)) != SPOT_OK)
            return rc;
    }

    if ((rc = get_string(c, val, "pattern", false, true, &pattern)) != SPOT_OK)
        return rc;
    if (pattern != NULL && strcmp(pattern, "hex40") != 0)
        return fail(c, "pattern \"%s\" is unknown (only \"hex40\")", pattern);
    if (pattern != NULL && (f->pattern = set_strdup(c->set, pattern)) == NULL)
        return fail_nomem(c);

    bool has_len;
    double len;
    if ((rc = get_number(c, val, "max_length", &has_len, &len)) != SPOT_OK)
        return rc;
    if (has_len && (!is_integral(len) || len < 1 || len > SPOT_MAX_PAYLOAD_LEN))
        return fail(c, "max_length must be an integer from 1 to %d",
                    SPOT_MAX_PAYLOAD_LEN);
    f->max_length = has_len ? (size_t)len : 0;

    if ((rc = get_string(c, val, "column", true, false, &column)) != SPOT_OK ||
        (rc = get_string(c, val, "pg_type", true, false, &pg_type)) != SPOT_OK)
        return rc;
    if (!sql_ident_ok(column))
        return fail(c,
                    "column \"%s\" is not a legal SQL identifier "
                    "([a-z_][a-z0-9_]*, at most %d bytes)",
                    column, MAX_SQL_IDENT);
    t = 0;
    while (t < N_TYPES && strcmp(pg_type, types[t].pg_type) != 0)
        t++;
    if (t == N_TYPES)
        return fail(c, "pg_type \"%s\" is unknown", pg_type);
    if ((f->column = set_strdup(c->set, column)) == NULL ||
        (f->pg_type = set_strdup(c->set, pg_type)) == NULL)
        return fail_nomem(c);

    if ((rc = check_field(c, f)) != SPOT_OK)
        return rc;
    if ((rc = parse_ngsi(c, get(val, "sdm"), "sdm", f, &f->sdm)) != SPOT_OK)
        return rc;
    return parse_ngsi(c, get(val, "compat"), "compat", f, &f->compat);
}

/* ---- name lookup ------------------------------------------------------ */

static uint32_t hash_key(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static const struct vertical_data *data_of(const struct schema_vertical *sv)
{
    const size_t off = offsetof(struct vertical_data, fields);
    const void *p = (const char *)sv->fields - off;
    return p;
}

static int lookup(const struct vertical_data *vd, const char *key, size_t len)
{
    if (len > vd->max_len || (len < 64 && !(vd->len_mask >> len & 1u)))
        return -1;
    uint32_t h = hash_key(key, len);
    for (size_t i = 0; i < LOOKUP_SLOTS; i++) {
        unsigned s = vd->slots[(h + i) & (LOOKUP_SLOTS - 1)];
        if (s == 0)
            return -1;
        const struct lookup_key *k = &vd->keys[s - 1];
        if (k->len == len && memcmp(k->s, key, len) == 0)
            return k->field;
    }
    return -1;
}

int schema_field_index(const struct schema_vertical *sv, const char *key,
                       size_t len)
{
    if (sv == NULL || sv->fields == NULL || (key == NULL && len > 0))
        return -1;
    return lookup(data_of(sv), key ? key : "", len);
}

static int add_key(struct ctx *c, struct vertical_data *vd, const char *s,
                   int field)
{
    size_t len = strlen(s);
    int other = lookup(vd, s, len);

    if (other >= 0)
        return fail(c, "name \"%s\" is already used by field \"%s\"", s,
                    vd->fields[other].name);
    if (vd->n_keys == LOOKUP_KEYS)
        return fail(c, "more than %d names and aliases in one vertical",
                    LOOKUP_KEYS);
    vd->keys[vd->n_keys] = (struct lookup_key){s, len, field};
    uint32_t h = hash_key(s, len);
    size_t i = 0;
    while (vd->slots[(h + i) & (LOOKUP_SLOTS - 1)] != 0)
        i++; /* terminates: fewer keys than slots */
    vd->slots[(h + i) & (LOOKUP_SLOTS - 1)] = (uint8_t)(++vd->n_keys);
    if (len < 64)
        vd->len_mask |= (uint64_t)1 << len;
    if (len > vd->max_len)
        vd->max_len = len;
    return SPOT_OK;
}

/* ---- one vertical ----------------------------------------------------- */

static const char *const reserved_columns[] = {
    "apikey", "device_id", "service", "service_path", "received_at", "extra",
};

/* Checks across the fields of one vertical; builds the lookup table. */
static int check_vertical(struct ctx *c, struct vertical_data *vd, size_t n,
                          struct schema_vertical *sv, const char *id_field)
{
    size_t time_field = n;
    int rc;

    for (size_t i = 0; i < n; i++) {
        const struct schema_field *f = &vd->fields[i];
        snprintf(c->field, sizeof c->field, "field \"%s\"", f->name);
        if ((rc = add_key(c, vd, f->name, (int)i)) != SPOT_OK)
            return rc;
        for (size_t a = 0; a < f->n_aliases; a++)
            if ((rc = add_key(c, vd, f->aliases[a], (int)i)) != SPOT_OK)
                return rc;
        if (IN_LIST(f->column, reserved_columns))
            return fail(c, "column \"%s\" is reserved for the agent",
                        f->column);
        for (size_t j = 0; j < i; j++) {
            const struct schema_field *g = &vd->fields[j];
            if (strcmp(f->column, g->column) == 0)
                return fail(c,
                            "column \"%s\" is already used by field "
                            "\"%s\"",
                            f->column, g->name);
            if (f->sdm.name && g->sdm.name &&
                strcmp(f->sdm.name, g->sdm.name) == 0)
                return fail(c,
                            "sdm name \"%s\" is already used by field "
                            "\"%s\"",
                            f->sdm.name, g->name);
            if (f->compat.name && g->compat.name &&
                strcmp(f->compat.name, g->compat.name) == 0)
                return fail(c,
                            "compat name \"%s\" is already used by "
                            "field \"%s\"",
                            f->compat.name, g->name);
        }
        if (strcmp(f->name, "TimeInstant") == 0) {
            if (f->type != SCHEMA_DATETIME || !f->mandatory || f->nullable ||
                strcmp(f->column, "time_instant") != 0)
                return fail(c, "TimeInstant must be a mandatory, "
                               "non-nullable datetime in column "
                               "time_instant");
            time_field = i;
        } else if (strcmp(f->column, "time_instant") == 0) {
            return fail(c, "column time_instant belongs to TimeInstant");
        }
    }
    c->field[0] = '\0';
    if (time_field == n)
        return fail(c, "no field TimeInstant");
    if (id_field != NULL) {
        int i = lookup(vd, id_field, strlen(id_field));
        if (i < 0 || strcmp(vd->fields[i].name, id_field) != 0)
            return fail(c, "\"sdm.id_field\" \"%s\" names no field", id_field);
        const struct schema_field *f = &vd->fields[i];
        if (f->type != SCHEMA_TEXT || !f->mandatory || f->nullable)
            return fail(c,
                        "\"sdm.id_field\" \"%s\" must be a mandatory, "
                        "non-nullable text field",
                        id_field);
        if ((sv->sdm_id_field = set_strdup(c->set, id_field)) == NULL)
            return fail_nomem(c);
    }
    sv->fields = vd->fields;
    sv->n_fields = n;
    sv->time_field = time_field;
    return SPOT_OK;
}

static int parse_entity(struct ctx *c, yajl_val root, const char *which,
                        bool with_id, const char **type, const char **id)
{
    static const char *const sdm_keys[] = {"entity_type", "id_field"};
    yajl_val v = get(root, which);
    int rc;

    if (v == NULL || !YAJL_IS_OBJECT(v))
        return fail(c, "\"%s\" must be an object", which);
    c->obj = with_id ? "sdm." : "compat.";
    if ((rc = check_keys(c, v, sdm_keys, with_id ? 2 : 1)) != SPOT_OK ||
        (rc = get_string(c, v, "entity_type", true, false, type)) != SPOT_OK ||
        (rc = get_string(c, v, "id_field", with_id, true, id)) != SPOT_OK)
        goto out;
    if (!ngsi_name_ok(*type))
        rc = fail(c, "\"%sentity_type\" \"%s\" is not a legal NGSI type",
                  c->obj, *type);
out:
    c->obj = "";
    return rc;
}

/* Parses one vertical from its tree into the set; *v says which. */
static int parse_vertical(struct ctx *c, yajl_val root, const bool *seen,
                          enum spot_vertical *v)
{
    static const char *const keys[] = {"code", "title",  "description", "table",
                                       "sdm",  "compat", "fields"};
    const char *code, *title, *desc, *table, *sdm_type, *sdm_id;
    const char *compat_type, *compat_id;
    int rc;

    if (!YAJL_IS_OBJECT(root))
        return fail(c, "the top level must be an object");
    /* the code first, so that later messages can name the vertical */
    if ((rc = get_string(c, root, "code", true, false, &code)) != SPOT_OK)
        return rc;
    if (vertical_from_code(code, strlen(code), v) != SPOT_OK ||
        strcmp(code, vertical_code(*v)) != 0)
        return fail(c,
                    "code \"%s\" is not a vertical (aqo, nlo, wto, cfo, "
                    "cfe, dev, dho, in lower case)",
                    code);
    if (strncmp(c->label, "text ", 5) == 0) {
        size_t l = strlen(c->label);
        snprintf(c->label + l, sizeof c->label - l, " (%s)", code);
    }
    if (seen[*v])
        return fail(c, "vertical %s is defined twice", code);
    if ((rc = check_keys(c, root, keys, sizeof keys / sizeof keys[0])) !=
        SPOT_OK)
        return rc;

    struct schema_vertical *sv = &c->set->verticals[*v];
    sv->vertical = *v;
    if ((rc = get_string(c, root, "title", true, false, &title)) != SPOT_OK ||
        (rc = get_string(c, root, "description", false, false, &desc)) !=
            SPOT_OK ||
        (rc = get_string(c, root, "table", true, false, &table)) != SPOT_OK)
        return rc;
    if (title[0] == '\0' || strlen(title) > MAX_TEXT_LEN)
        return fail(c, "\"title\" must be 1 to %d bytes", MAX_TEXT_LEN);
    if (!sql_ident_ok(table))
        return fail(c, "table \"%s\" is not a legal SQL identifier", table);
    for (int o = 0; o < SPOT_V_COUNT; o++)
        if (seen[o] && strcmp(c->set->verticals[o].table, table) == 0)
            return fail(c, "table \"%s\" is already used by %s", table,
                        vertical_code((enum spot_vertical)o));
    if ((rc = parse_entity(c, root, "sdm", true, &sdm_type, &sdm_id)) !=
            SPOT_OK ||
        (rc = parse_entity(c, root, "compat", false, &compat_type,
                           &compat_id)) != SPOT_OK)
        return rc;
    if ((sv->code = set_strdup(c->set, code)) == NULL ||
        (sv->title = set_strdup(c->set, title)) == NULL ||
        (sv->table = set_strdup(c->set, table)) == NULL ||
        (sv->sdm_entity_type = set_strdup(c->set, sdm_type)) == NULL ||
        (sv->compat_entity_type = set_strdup(c->set, compat_type)) == NULL)
        return fail_nomem(c);

    yajl_val fields = get(root, "fields");
    if (fields == NULL || !YAJL_IS_ARRAY(fields))
        return fail(c, "\"fields\" must be an array");
    size_t n = fields->u.array.len;
    if (n == 0 || n > SPOT_MAX_SCHEMA_FIELDS)
        return fail(c, "\"fields\" must hold 1 to %d fields",
                    SPOT_MAX_SCHEMA_FIELDS);
    struct vertical_data *vd =
        set_alloc(c->set, sizeof *vd + n * sizeof vd->fields[0]);
    if (vd == NULL)
        return fail_nomem(c);
    for (size_t i = 0; i < n; i++)
        if ((rc = parse_field(c, fields->u.array.values[i], i,
                              &vd->fields[i])) != SPOT_OK)
            return rc;
    return check_vertical(c, vd, n, sv, sdm_id);
}

/* yajl's messages span lines; one line reads better in a log. */
static void flatten(char *s)
{
    char *w = s;
    bool space = false;

    for (char *r = s; *r != '\0'; r++) {
        if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
            space = w != s;
            continue;
        }
        if (space)
            *w++ = ' ';
        space = false;
        *w++ = *r;
    }
    *w = '\0';
}

static int parse_text(struct ctx *c, const char *text, size_t len, bool *seen,
                      enum spot_vertical *v)
{
    char ebuf[256];
    char *buf;
    yajl_val root;
    int rc;

    if (text == NULL)
        return fail(c, "no text");
    if (len > MAX_SCHEMA_BYTES)
        return fail(c, "larger than %d bytes", MAX_SCHEMA_BYTES);
    if (memchr(text, '\0', len) != NULL)
        return fail(c, "contains a NUL byte");
    if ((buf = malloc(len + 1)) == NULL)
        return fail_nomem(c);
    memcpy(buf, text, len);
    buf[len] = '\0';
    /* yajl's tree would silently cut a string at an escaped NUL */
    if (strstr(buf, "\\u0000") != NULL) {
        free(buf);
        return fail(c, "contains an escaped NUL (\\u0000)");
    }
    ebuf[0] = '\0';
    root = yajl_tree_parse(buf, ebuf, sizeof ebuf);
    free(buf);
    if (root == NULL) {
        flatten(ebuf);
        return fail(c, "JSON syntax: %s", ebuf[0] ? ebuf : "parse error");
    }
    rc = parse_vertical(c, root, seen, v);
    yajl_tree_free(root);
    return rc;
}

static int build(struct schema_set **out, const char *const *texts,
                 const size_t *lens, const char *const *names, size_t n,
                 char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen, .obj = ""};
    bool seen[SPOT_V_COUNT] = {false};
    int rc = SPOT_OK;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return SPOT_EINVAL;
    *out = NULL;
    snprintf(c.label, sizeof c.label, "schemas");
    if (n > 0 && (texts == NULL || lens == NULL)) {
        rc = fail(&c, "no texts given");
        goto out;
    }
    if ((c.set = calloc(1, sizeof *c.set)) == NULL)
        return fail_nomem(&c);
    for (size_t i = 0; i < n; i++) {
        enum spot_vertical v;
        if (names != NULL)
            snprintf(c.label, sizeof c.label, "%s", names[i]);
        else
            snprintf(c.label, sizeof c.label, "text %zu", i);
        c.field[0] = '\0';
        if ((rc = parse_text(&c, texts[i], lens[i], seen, &v)) != SPOT_OK)
            goto out;
        if (names != NULL) {
            char want[16];
            snprintf(want, sizeof want, "%s.json", vertical_code(v));
            if (strcmp(names[i], want) != 0) {
                rc = fail(&c, "holds vertical %s, so it must be named %s",
                          vertical_code(v), want);
                goto out;
            }
        }
        seen[v] = true;
    }
    snprintf(c.label, sizeof c.label, "schemas");
    c.field[0] = '\0';
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        if (!seen[v]) {
            rc = fail(&c, "vertical %s is not defined",
                      vertical_code((enum spot_vertical)v));
            goto out;
        }
    }
out:
    if (rc != SPOT_OK) {
        schema_set_free(c.set);
        return rc;
    }
    *out = c.set;
    return SPOT_OK;
}

int schema_set_parse(struct schema_set **out, const char *const *texts,
                     const size_t *lens, size_t n, char *err, size_t errlen)
{
    return build(out, texts, lens, NULL, n, err, errlen);
}

int schema_set_new(struct schema_set **out, char *err, size_t errlen)
{
    size_t n = spot_embedded_schema_count;
    const char **texts = calloc(n ? n : 1, sizeof *texts);
    const char **names = calloc(n ? n : 1, sizeof *names);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    int rc;

    if (texts == NULL || names == NULL || lens == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "schemas: out of memory");
        rc = SPOT_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        texts[i] = (const char *)spot_embedded_schemas[i].data;
        lens[i] = spot_embedded_schemas[i].len;
        names[i] = spot_embedded_schemas[i].name;
    }
    rc = build(out, texts, lens, names, n, err, errlen);
out:
    free(texts);
    free(names);
    free(lens);
    return rc;
}

const struct schema_vertical *schema_set_vertical(const struct schema_set *set,
                                                  enum spot_vertical v)
{
    if (set == NULL || (unsigned)v >= SPOT_V_COUNT)
        return NULL;
    return &set->verticals[v];
}
