/*
 * The rows of one PostgreSQL transaction, and the statements that send
 * them (see pg_batch.h). Owned by the sink thread.
 *
 * Storage: every value of the batch is appended to one arena in
 * PostgreSQL's binary format (the bytes of its typsend/typrecv functions:
 * float8 and int4 big-endian, timestamptz as big-endian microseconds since
 * 2000-01-01, boolean one byte, jsonb a version byte then the text, text
 * and bytea their bytes); each table keeps one slot (arena offset, length
 * or -1 for NULL) per column per row. Pointers into the arena are made
 * only when sending, after the last append, so the arena may move while
 * the batch fills. The same bytes serve both ways of sending:
 *
 * COPY (pg_batch_copy): one COPY ... FROM STDIN (FORMAT binary) per data
 * table: each value is length-prefixed, so no payload byte can be taken
 * for a delimiter or an escape, and the server parses no text. COPY has no
 * ON CONFLICT: a row whose natural key is already stored (a redelivery)
 * fails the statement with unique_violation and the caller sends the
 * batch again by INSERT. Rejected messages always go by INSERT.
 *
 * INSERT (pg_batch_insert): parsing and planning a 500-row VALUES list
 * costs PostgreSQL as much as inserting the rows, so each table's rows go
 * out by prepared statements of a few fixed row counts (SPOT_PG_BATCH_ROWS
 * and the powers of two below it, largest first: a full batch is one
 * statement, any other count at most ten), prepared on first use on each
 * connection, with every parameter binary. If the server loses them
 * (SQLSTATE 26000: a transaction-mode pooler), the batch falls back to
 * one-off PQexecParams statements for good.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "pg_batch.h"
#include "spot/err.h"
#include "spot/limits.h"
#include "spot/log.h"

/* PostgreSQL's wire protocol counts parameters in 16 bits. */
#define MAX_PARAMS 65535
#define SHA256_LEN 32
/* 2000-01-01T00:00:00Z, PostgreSQL's epoch, in µs since 1970. */
#define PG_EPOCH_US 946684800000000LL
/* Binary COPY: signature, flags, header extension length. */
#define COPY_HEADER     "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0"
#define COPY_HEADER_LEN 19
/* Bytes of COPY data per CopyData message. */
#define COPY_CHUNK (32 * 1024)
/* Row counts that get a prepared statement: SPOT_PG_BATCH_ROWS and the
 * powers of two below it. */
#define MAX_SIZES 24

struct slot {
    size_t off;
    int len; /* -1: SQL NULL */
};

/* The binary representation a column's values take (the layout's types
 * that are inserted; text for any other). */
enum col_kind {
    KIND_TEXT,
    KIND_FLOAT8,
    KIND_INT4,
    KIND_BOOL,
    KIND_TIMESTAMPTZ,
    KIND_JSONB,
    KIND_BYTEA,
};

struct tbl {
    const struct pg_table *t;
    size_t ins[PG_MAX_COLUMNS]; /* layout columns that are inserted */
    size_t n_ins;
    enum col_kind kind[PG_MAX_COLUMNS]; /* per inserted column */
    struct pg_sql prefix;               /* INSERT INTO ... VALUES */
    struct pg_sql copy;                 /* COPY ... FROM STDIN */
    bool copy_ok;       /* the database's columns have the layout's types */
    const char *suffix; /* ON CONFLICT ... */
    bool prepared[MAX_SIZES]; /* on the current connection */
    struct slot *slots;
    size_t n_slots;
    size_t cap_slots;
};

struct pg_batch {
    const struct pg_layout *layout;
    size_t sizes[MAX_SIZES]; /* descending; sizes[n_sizes - 1] == 1 */
    size_t n_sizes;
    bool use_prepared; /* false once the server lost a named statement */
    struct tbl tbl[PG_TABLE_COUNT];
    char *arena;
    size_t len;
    size_t cap;
    struct pg_sql sql;
    const char **values;
    int *lengths;
    int *formats;
    Oid *types;
    char *stream; /* COPY data being built */
    size_t stream_len;
    size_t stream_cap;
};

static enum col_kind kind_of(const char *type)
{
    static const struct {
        const char *type;
        enum col_kind kind;
    } kinds[] = {
        {"double precision", KIND_FLOAT8},
        {"integer", KIND_INT4},
        {"boolean", KIND_BOOL},
        {"timestamptz", KIND_TIMESTAMPTZ},
        {"jsonb", KIND_JSONB},
        {"bytea", KIND_BYTEA},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(type, kinds[i].type) == 0)
            return kinds[i].kind;
    }
    return KIND_TEXT;
}

/* --- life cycle ----------------------------------------------------------- */

int pg_batch_new(struct pg_batch **out, const struct pg_layout *layout)
{
    struct pg_batch *b = calloc(1, sizeof *b);
    if (!b)
        return SPOT_ENOMEM;
    b->layout = layout;
    b->use_prepared = true;
    b->sizes[b->n_sizes++] = SPOT_PG_BATCH_ROWS;
    size_t p2 = 1;
    while (p2 * 2 < SPOT_PG_BATCH_ROWS)
        p2 *= 2;
    for (; p2 >= 1 && b->n_sizes < MAX_SIZES; p2 /= 2) {
        if (p2 < b->sizes[b->n_sizes - 1])
            b->sizes[b->n_sizes++] = p2;
    }
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        struct tbl *t = &b->tbl[i];
        t->t = &layout->tables[i];
        for (size_t c = 0; c < t->t->n_cols; c++) {
            if (t->t->cols[c].src == PG_SRC_ID)
                continue;
            t->kind[t->n_ins] = kind_of(t->t->cols[c].type);
            t->ins[t->n_ins++] = c;
        }
        t->suffix = i == PG_TABLE_REJECTED
                        ? " ON CONFLICT (fingerprint) DO NOTHING"
                        : " ON CONFLICT DO NOTHING";
    }
    b->values = malloc(MAX_PARAMS * sizeof *b->values);
    b->lengths = malloc(MAX_PARAMS * sizeof *b->lengths);
    b->formats = malloc(MAX_PARAMS * sizeof *b->formats);
    b->types = malloc(MAX_PARAMS * sizeof *b->types);
    if (!b->values || !b->lengths || !b->formats || !b->types) {
        pg_batch_free(b);
        return SPOT_ENOMEM;
    }
    *out = b;
    return SPOT_OK;
}

void pg_batch_free(struct pg_batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        pg_sql_free(&b->tbl[i].prefix);
        pg_sql_free(&b->tbl[i].copy);
        free(b->tbl[i].slots);
    }
    free(b->arena);
    free(b->stream);
    pg_sql_free(&b->sql);
    free(b->values);
    free(b->lengths);
    free(b->formats);
    free(b->types);
    free(b);
}

/* Appends "schema"."table" ("c1", ...) to q. */
static void add_target(struct pg_sql *q, PGconn *conn, const char *schema,
                       const struct tbl *t)
{
    pg_sql_qualified(q, conn, schema, t->t->name);
    pg_sql_add(q, " (");
    for (size_t c = 0; c < t->n_ins; c++) {
        if (c)
            pg_sql_add(q, ", ");
        pg_sql_ident(q, conn, t->t->cols[t->ins[c]].name);
    }
    pg_sql_add(q, ")");
}

int pg_batch_prepare(struct pg_batch *b, PGconn *conn, const char *schema,
                     const bool types_ok[PG_TABLE_COUNT])
{
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        struct tbl *t = &b->tbl[i];
        memset(t->prepared, 0, sizeof t->prepared);
        t->copy_ok = types_ok ? types_ok[i] : true;
        pg_sql_reset(&t->prefix);
        pg_sql_add(&t->prefix, "INSERT INTO ");
        add_target(&t->prefix, conn, schema, t);
        pg_sql_add(&t->prefix, " VALUES ");
        pg_sql_reset(&t->copy);
        pg_sql_add(&t->copy, "COPY ");
        add_target(&t->copy, conn, schema, t);
        pg_sql_add(&t->copy, " FROM STDIN (FORMAT binary)");
        if (t->prefix.oom || t->copy.oom)
            return SPOT_ENOMEM;
    }
    return SPOT_OK;
}

void pg_batch_reset(struct pg_batch *b)
{
    b->len = 0;
    for (int i = 0; i < PG_TABLE_COUNT; i++)
        b->tbl[i].n_slots = 0;
}

size_t pg_batch_data_rows(const struct pg_batch *b)
{
    size_t n = 0;
    for (int i = 0; i < PG_TABLE_REJECTED; i++)
        n += b->tbl[i].n_slots / b->tbl[i].n_ins;
    return n;
}

size_t pg_batch_reject_rows(const struct pg_batch *b)
{
    const struct tbl *t = &b->tbl[PG_TABLE_REJECTED];
    return t->n_slots / t->n_ins;
}

size_t pg_batch_bytes(const struct pg_batch *b)
{
    return b->len;
}

/* --- values --------------------------------------------------------------- */

/* Reserves n bytes at the end of the arena; returns their offset, or
 * SIZE_MAX when out of memory. */
static size_t arena_reserve(struct pg_batch *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64 * 1024;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->arena, cap);
        if (!p)
            return SIZE_MAX;
        b->arena = p;
        b->cap = cap;
    }
    size_t off = b->len;
    b->len += n;
    return off;
}

/* Makes room for one more row of table t. */
static int row_begin(struct pg_batch *b, struct tbl *t)
{
    (void)b;
    if (t->n_slots + t->n_ins > t->cap_slots) {
        size_t cap = t->cap_slots ? t->cap_slots * 2 : t->n_ins * 64;
        while (cap < t->n_slots + t->n_ins)
            cap *= 2;
        struct slot *p = realloc(t->slots, cap * sizeof *p);
        if (!p)
            return SPOT_ENOMEM;
        t->slots = p;
        t->cap_slots = cap;
    }
    return SPOT_OK;
}

static void put_null(struct tbl *t)
{
    t->slots[t->n_slots].off = 0;
    t->slots[t->n_slots].len = -1;
    t->n_slots++;
}

/* Reserves n bytes of a new value of t; NULL when out of memory. */
static unsigned char *put_reserve(struct pg_batch *b, struct tbl *t, size_t n)
{
    size_t off = arena_reserve(b, n);
    if (off == SIZE_MAX)
        return NULL;
    t->slots[t->n_slots].off = off;
    t->slots[t->n_slots].len = (int)n;
    t->n_slots++;
    return (unsigned char *)b->arena + off;
}

static void be_put(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* Copies n bytes (text, bytea). */
static int put_bytes(struct pg_batch *b, struct tbl *t, const void *s, size_t n)
{
    if (n > INT_MAX)
        return SPOT_ETOOBIG;
    unsigned char *p = put_reserve(b, t, n);
    if (!p)
        return SPOT_ENOMEM;
    if (n)
        memcpy(p, s, n);
    return SPOT_OK;
}

static int put_str(struct pg_batch *b, struct tbl *t, const char *s)
{
    if (!s) {
        put_null(t);
        return SPOT_OK;
    }
    return put_bytes(b, t, s, strlen(s));
}

/* timestamptz: µs since 2000-01-01, big-endian. */
static int put_time(struct pg_batch *b, struct tbl *t, int64_t us)
{
    unsigned char *p = put_reserve(b, t, 8);
    if (!p)
        return SPOT_ENOMEM;
    be_put(p, (uint64_t)(us - PG_EPOCH_US), 8);
    return SPOT_OK;
}

static int put_int4(struct pg_batch *b, struct tbl *t, int32_t v)
{
    unsigned char *p = put_reserve(b, t, 4);
    if (!p)
        return SPOT_ENOMEM;
    be_put(p, (uint32_t)v, 4);
    return SPOT_OK;
}

static int put_float8(struct pg_batch *b, struct tbl *t, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    unsigned char *p = put_reserve(b, t, 8);
    if (!p)
        return SPOT_ENOMEM;
    be_put(p, bits, 8);
    return SPOT_OK;
}

static int put_bool(struct pg_batch *b, struct tbl *t, bool v)
{
    unsigned char *p = put_reserve(b, t, 1);
    if (!p)
        return SPOT_ENOMEM;
    p[0] = v ? 1 : 0;
    return SPOT_OK;
}

/* jsonb: version 1, then the JSON text. */
static int put_jsonb(struct pg_batch *b, struct tbl *t, const char *s, size_t n)
{
    if (n > INT_MAX - 1)
        return SPOT_ETOOBIG;
    unsigned char *p = put_reserve(b, t, n + 1);
    if (!p)
        return SPOT_ENOMEM;
    p[0] = 1;
    memcpy(p + 1, s, n);
    return SPOT_OK;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid.
 * NUL is invalid here: PostgreSQL text cannot hold it. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return len;
}

/* Copies s as valid UTF-8 text: each byte that does not start a valid
 * sequence (and each NUL) becomes U+FFFD. */
static int put_text_sanitized(struct pg_batch *b, struct tbl *t, const char *s,
                              size_t n)
{
    if (!s) {
        put_null(t);
        return SPOT_OK;
    }
    if (n > INT_MAX / 3)
        return SPOT_ETOOBIG;
    size_t off = arena_reserve(b, 3 * n);
    if (off == SIZE_MAX)
        return SPOT_ENOMEM;
    const unsigned char *p = (const unsigned char *)s;
    char *o = b->arena + off;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0) {
            o[k++] = (char)0xEF;
            o[k++] = (char)0xBF;
            o[k++] = (char)0xBD;
            i++;
        } else {
            memcpy(o + k, p + i, len);
            k += len;
            i += len;
        }
    }
    b->len = off + k; /* give back what the worst case reserved */
    t->slots[t->n_slots].off = off;
    t->slots[t->n_slots].len = (int)k;
    t->n_slots++;
    return SPOT_OK;
}

/* True when the JSON text holds the escape \u0000, which jsonb refuses. */
static bool json_has_nul_escape(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\')
            continue;
        if (i + 5 < n && s[i + 1] == 'u' && memcmp(s + i + 2, "0000", 4) == 0)
            return true;
        i++; /* skip the escaped character, e.g. the second of "\\" */
    }
    return false;
}

static const char *kind_name(enum col_kind k)
{
    switch (k) {
    case KIND_TEXT:
        return "text";
    case KIND_FLOAT8:
        return "double precision";
    case KIND_INT4:
        return "integer";
    case KIND_BOOL:
        return "boolean";
    case KIND_TIMESTAMPTZ:
        return "timestamptz";
    case KIND_JSONB:
        return "jsonb";
    case KIND_BYTEA:
        return "bytea";
    }
    return "?";
}

/* The double PostgreSQL's float8in would make of the number's text. */
static double exact_number(const struct value *v)
{
    if (v->number_exact || !v->text)
        return v->number;
    return strtod(v->text, NULL); /* the validator NUL-terminates it */
}

/* Appends the value of a schema field in the binary form of its column.
 * Returns SPOT_OK, SPOT_ENOMEM, SPOT_ETOOBIG, or SPOT_EINVAL with why
 * filled when PostgreSQL could not store the value (nothing added). */
static int put_value(struct pg_batch *b, struct tbl *t, enum col_kind kind,
                     const struct value *v, const char *field, char *why,
                     size_t whylen)
{
    if (v->kind == VALUE_ABSENT || v->kind == VALUE_NULL) {
        put_null(t);
        return SPOT_OK;
    }
    switch (kind) {
    case KIND_FLOAT8:
        if (v->kind == VALUE_NUMBER || v->kind == VALUE_INTEGER)
            return put_float8(b, t, exact_number(v));
        break;
    case KIND_INT4:
        if (v->kind == VALUE_INTEGER) {
            if (v->integer < INT32_MIN || v->integer > INT32_MAX) {
                snprintf(why, whylen,
                         "field %s: %lld is outside PostgreSQL integer", field,
                         v->integer);
                return SPOT_EINVAL;
            }
            return put_int4(b, t, (int32_t)v->integer);
        }
        if (v->kind == VALUE_NUMBER) {
            if (v->number != floor(v->number) || v->number < INT32_MIN ||
                v->number > INT32_MAX) {
                snprintf(why, whylen,
                         "field %s: %g is not a PostgreSQL integer", field,
                         v->number);
                return SPOT_EINVAL;
            }
            return put_int4(b, t, (int32_t)v->number);
        }
        break;
    case KIND_BOOL:
        if (v->kind == VALUE_BOOL)
            return put_bool(b, t, v->boolean);
        break;
    case KIND_TIMESTAMPTZ:
        if (v->kind == VALUE_TIME)
            return put_time(b, t, v->time_us);
        break;
    case KIND_TEXT:
        if (v->kind == VALUE_BOOL)
            return put_str(b, t, v->boolean ? "true" : "false");
        if (!v->text) {
            put_null(t);
            return SPOT_OK;
        }
        if (memchr(v->text, '\0', v->text_len)) {
            snprintf(why, whylen,
                     "field %s: text holds a NUL character, which "
                     "PostgreSQL cannot store",
                     field);
            return SPOT_EINVAL;
        }
        return put_bytes(b, t, v->text,
                         v->text_len ? v->text_len : strlen(v->text));
    case KIND_JSONB:
    case KIND_BYTEA:
        break;
    }
    snprintf(why, whylen, "field %s: no way to store this value in a %s column",
             field, kind_name(kind));
    return SPOT_EINVAL;
}

/* --- rejected_message.fingerprint ------------------------------------------
 */

/* SHA-256 of the topic's length (8 bytes, big endian), topic and payload:
 * the same message redelivered gets the same fingerprint. */
static int fingerprint(const char *topic, size_t topic_len,
                       const unsigned char *payload, size_t payload_len,
                       unsigned char out[SHA256_LEN])
{
    unsigned char lenbuf[8];
    uint64_t tl = topic_len;
    for (int i = 7; i >= 0; i--) {
        lenbuf[i] = (unsigned char)(tl & 0xff);
        tl >>= 8;
    }
    /* OpenSSL's SHA-256 (libcrypto comes with Paho's TLS build anyway);
     * rejects are rare, so a context per call is fine */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned int n = SHA256_LEN;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, lenbuf, sizeof lenbuf) == 1 &&
             EVP_DigestUpdate(c, topic, topic_len) == 1 &&
             EVP_DigestUpdate(c, payload, payload_len) == 1 &&
             EVP_DigestFinal_ex(c, out, &n) == 1;
    EVP_MD_CTX_free(c);
    return ok ? SPOT_OK : SPOT_ENOMEM;
}

int pg_batch_add_reject(struct pg_batch *b, const char *topic, size_t topic_len,
                        const unsigned char *payload, size_t payload_len,
                        int64_t received_us, enum reject_reason reason,
                        const char *detail)
{
    struct tbl *t = &b->tbl[PG_TABLE_REJECTED];
    size_t save_len = b->len, save_slots = t->n_slots;
    unsigned char fp[SHA256_LEN];
    int rc = row_begin(b, t);
    if (rc != SPOT_OK)
        return rc;
    rc = fingerprint(topic, topic_len, payload, payload_len, fp);
    for (size_t i = 0; rc == SPOT_OK && i < t->n_ins; i++) {
        const struct pg_column *c = &t->t->cols[t->ins[i]];
        switch (c->src) {
        case PG_SRC_RECEIVED_AT:
            rc = put_time(b, t, received_us);
            break;
        case PG_SRC_TOPIC:
            rc = put_text_sanitized(b, t, topic, topic_len);
            break;
        case PG_SRC_PAYLOAD:
            rc = put_bytes(b, t, payload ? (const void *)payload : "",
                           payload_len);
            break;
        case PG_SRC_REASON:
            rc = put_str(b, t, reject_reason_name(reason));
            break;
        case PG_SRC_DETAIL:
            rc = put_text_sanitized(b, t, detail, detail ? strlen(detail) : 0);
            break;
        case PG_SRC_FINGERPRINT:
            rc = put_bytes(b, t, fp, sizeof fp);
            break;
        default:
            put_null(t);
            break;
        }
    }
    if (rc != SPOT_OK) {
        b->len = save_len;
        t->n_slots = save_slots;
    }
    return rc == SPOT_ETOOBIG ? SPOT_ENOMEM : rc;
}

/* Adds the row of r to its table. Returns SPOT_OK, SPOT_ENOMEM, or
 * SPOT_EINVAL with why filled when PostgreSQL could not store a value
 * (nothing added then). */
static int add_row(struct pg_batch *b, const struct record *r, char *why,
                   size_t whylen)
{
    int ti = r->schema ? (int)r->vertical : PG_TABLE_GENERIC;
    if (ti < 0 || ti >= PG_TABLE_REJECTED) {
        snprintf(why, whylen, "no table for vertical %d", (int)r->vertical);
        return SPOT_EINVAL;
    }
    struct tbl *t = &b->tbl[ti];
    size_t save_len = b->len, save_slots = t->n_slots;
    int rc = row_begin(b, t);
    if (rc != SPOT_OK)
        return rc;
    const struct group *g = r->group;
    const char *service = g ? g->service : NULL;
    const char *path = g ? g->service_path : NULL;
    if (!path && service)
        path = "/";
    size_t extra_len = r->extra_json && r->extra_len == 0
                           ? strlen(r->extra_json)
                           : r->extra_len;

    for (size_t i = 0; rc == SPOT_OK && i < t->n_ins; i++) {
        const struct pg_column *c = &t->t->cols[t->ins[i]];
        switch (c->src) {
        case PG_SRC_APIKEY:
            rc = put_str(b, t, r->apikey);
            break;
        case PG_SRC_DEVICE_ID:
            rc = put_str(b, t, r->device_id);
            break;
        case PG_SRC_SERVICE:
            rc = put_str(b, t, service);
            break;
        case PG_SRC_SERVICE_PATH:
            rc = put_str(b, t, path);
            break;
        case PG_SRC_TIME_INSTANT:
            rc = put_time(b, t, r->time_instant_us);
            break;
        case PG_SRC_RECEIVED_AT:
            rc = put_time(b, t, r->received_us);
            break;
        case PG_SRC_FIELD:
            rc = put_value(b, t, t->kind[i], &r->values[c->field],
                           r->schema->fields[c->field].name, why, whylen);
            break;
        case PG_SRC_EXTRA:
        case PG_SRC_ATTRS:
            if (!r->extra_json) {
                put_null(t);
            } else if (json_has_nul_escape(r->extra_json, extra_len)) {
                snprintf(why, whylen,
                         "a field holds \\u0000, which PostgreSQL jsonb "
                         "cannot store");
                rc = SPOT_EINVAL;
            } else {
                rc = put_jsonb(b, t, r->extra_json, extra_len);
            }
            break;
        default:
            put_null(t);
            break;
        }
    }
    if (rc == SPOT_ETOOBIG) {
        snprintf(why, whylen, "value too large for one parameter");
        rc = SPOT_EINVAL;
    }
    if (rc != SPOT_OK) {
        b->len = save_len;
        t->n_slots = save_slots;
    }
    return rc;
}

int pg_batch_add_record(struct pg_batch *b, const struct record *r,
                        const char *topic, size_t topic_len,
                        const unsigned char *payload, size_t payload_len,
                        bool record_rejects, struct pg_add_result *res)
{
    int rc = SPOT_OK;
    memset(res, 0, sizeof *res);
    res->reason = REJECT_NONE;
    if (r->reason == REJECT_NONE || r->reason == REJECT_RANGE) {
        char why[SPOT_MAX_DETAIL_LEN];
        why[0] = '\0';
        rc = add_row(b, r, why, sizeof why);
        if (rc == SPOT_EINVAL) {
            rc = pg_batch_add_reject(b, topic, topic_len, payload, payload_len,
                                     r->received_us, REJECT_SCHEMA, why);
            if (rc == SPOT_OK) {
                res->rejected = true;
                res->reason = REJECT_SCHEMA;
            }
            return rc;
        }
        if (rc != SPOT_OK)
            return rc;
        res->row = true;
        if (r->reason == REJECT_NONE || !record_rejects)
            return SPOT_OK;
    } else if (!record_rejects) {
        return SPOT_OK;
    }
    rc = pg_batch_add_reject(b, topic, topic_len, payload, payload_len,
                             r->received_us, r->reason, r->detail);
    if (rc == SPOT_OK) {
        res->rejected = true;
        res->reason = r->reason;
    }
    return rc;
}

/* --- sending -------------------------------------------------------------- */

/* The type OID a value of kind k is sent as (pg_type.h). */
static Oid oid_of(enum col_kind k)
{
    switch (k) {
    case KIND_TEXT:
        return 25;
    case KIND_FLOAT8:
        return 701;
    case KIND_INT4:
        return 23;
    case KIND_BOOL:
        return 16;
    case KIND_TIMESTAMPTZ:
        return 1184;
    case KIND_JSONB:
        return 3802;
    case KIND_BYTEA:
        return 17;
    }
    return 0;
}

static void build_sql(struct pg_batch *b, const struct tbl *t, size_t rows)
{
    pg_sql_reset(&b->sql);
    pg_sql_addn(&b->sql, t->prefix.s, t->prefix.len);
    unsigned p = 1;
    for (size_t r = 0; r < rows; r++) {
        pg_sql_add(&b->sql, r ? ",(" : "(");
        for (size_t c = 0; c < t->n_ins; c++) {
            if (c)
                pg_sql_add(&b->sql, ",");
            pg_sql_param(&b->sql, p++);
        }
        pg_sql_add(&b->sql, ")");
    }
    pg_sql_add(&b->sql, t->suffix);
}

/* Index of the largest prepared size that fits in left rows and in the
 * parameter limit. */
static size_t pick_size(const struct pg_batch *b, size_t left, size_t cap)
{
    for (size_t k = 0; k < b->n_sizes; k++) {
        if (b->sizes[k] <= left && b->sizes[k] <= cap)
            return k;
    }
    return b->n_sizes - 1;
}

/* Sends n rows of t from slot s, by the prepared statement of size index
 * k (prepared on first use on this connection) or, when the server does
 * not keep named statements, as a one-off statement. Parameters are
 * declared with the layout's types, so a column an administrator changed
 * to another type still gets PostgreSQL's assignment cast. */
static PGresult *send_rows(struct pg_batch *b, PGconn *conn, struct tbl *t,
                           size_t k, size_t n, int np, char *err, size_t errlen)
{
    if (!b->use_prepared) {
        build_sql(b, t, n);
        if (b->sql.oom)
            return NULL;
        return PQexecParams(conn, b->sql.s, np, b->types, b->values, b->lengths,
                            b->formats, 0);
    }
    char name[48];
    snprintf(name, sizeof name, "spot_ins_%d_%zu", (int)(t - b->tbl), n);
    if (!t->prepared[k]) {
        build_sql(b, t, n);
        if (b->sql.oom)
            return NULL;
        PGresult *res = PQprepare(conn, name, b->sql.s, np, b->types);
        int rc = pg_result_check(conn, res, PGRES_COMMAND_OK, err, errlen);
        PQclear(res);
        if (rc != SPOT_OK)
            return NULL;
        t->prepared[k] = true;
    }
    return PQexecPrepared(conn, name, np, b->values, b->lengths, b->formats, 0);
}

/* Appends " (table t)" to err. */
static void name_table(const struct tbl *t, char *err, size_t errlen)
{
    size_t used = strlen(err);
    if (used + 1 < errlen)
        snprintf(err + used, errlen - used, " (table %s)", t->t->name);
}

static int insert_table(struct pg_batch *b, PGconn *conn, struct tbl *t,
                        char *err, size_t errlen)
{
    size_t rows = t->n_slots / t->n_ins;
    size_t cap = MAX_PARAMS / t->n_ins;
    size_t done = 0;
    err[0] = '\0';
    while (done < rows) {
        size_t left = rows - done;
        size_t k = pick_size(b, left, cap);
        size_t n = b->use_prepared ? b->sizes[k] : left < cap ? left : cap;
        const struct slot *s = t->slots + done * t->n_ins;
        size_t np = n * t->n_ins;
        for (size_t i = 0; i < np; i++) {
            b->values[i] = s[i].len < 0 ? NULL : b->arena + s[i].off;
            b->lengths[i] = s[i].len < 0 ? 0 : s[i].len;
            b->formats[i] = 1;
            b->types[i] = oid_of(t->kind[i % t->n_ins]);
        }
        PGresult *res = send_rows(b, conn, t, k, n, (int)np, err, errlen);
        int rc;
        if (!res && err[0]) {
            rc = SPOT_EAGAIN; /* PQprepare failed */
        } else if (!res && b->sql.oom) {
            snprintf(err, errlen, "out of memory building SQL");
            rc = SPOT_EAGAIN;
        } else {
            rc = pg_result_check(conn, res, PGRES_COMMAND_OK, err, errlen);
            const char *st =
                res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
            if (rc != SPOT_OK && st && strcmp(st, "26000") == 0 &&
                b->use_prepared) {
                /* A pooler that does not keep session state: go on with
                 * one-off statements (after the caller's retry). */
                b->use_prepared = false;
                rc = SPOT_EAGAIN;
                log_msg(LOG_WARN, "pg",
                        "the server lost a prepared statement (a pooler?): "
                        "sending one-off statements from now on");
            }
        }
        PQclear(res);
        if (rc != SPOT_OK) {
            name_table(t, err, errlen);
            return rc;
        }
        done += n;
    }
    return SPOT_OK;
}

int pg_batch_insert(struct pg_batch *b, PGconn *conn, char *err, size_t errlen)
{
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        struct tbl *t = &b->tbl[i];
        if (t->n_slots == 0)
            continue;
        int rc = insert_table(b, conn, t, err, errlen);
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

/* --- COPY ----------------------------------------------------------------- */

static int stream_reserve(struct pg_batch *b, size_t n)
{
    if (b->stream_len + n <= b->stream_cap)
        return SPOT_OK;
    size_t cap = b->stream_cap ? b->stream_cap : 64 * 1024;
    while (cap < b->stream_len + n)
        cap *= 2;
    char *p = realloc(b->stream, cap);
    if (!p)
        return SPOT_ENOMEM;
    b->stream = p;
    b->stream_cap = cap;
    return SPOT_OK;
}

static void stream_be(struct pg_batch *b, uint32_t v, int n)
{
    be_put((unsigned char *)b->stream + b->stream_len, v, n);
    b->stream_len += (size_t)n;
}

int pg_batch_copy_stream(struct pg_batch *b, int table, const char **data,
                         size_t *len)
{
    if (table < 0 || table >= PG_TABLE_COUNT)
        return SPOT_EINVAL;
    const struct tbl *t = &b->tbl[table];
    size_t rows = t->n_slots / t->n_ins;
    /* header, per row a field count and per field a length, trailer;
     * values at most the whole arena */
    size_t need = COPY_HEADER_LEN + rows * (2 + 4 * t->n_ins) + b->len + 2;
    b->stream_len = 0;
    if (stream_reserve(b, need) != SPOT_OK)
        return SPOT_ENOMEM;
    memcpy(b->stream, COPY_HEADER, COPY_HEADER_LEN);
    b->stream_len = COPY_HEADER_LEN;
    const struct slot *s = t->slots;
    for (size_t r = 0; r < rows; r++) {
        stream_be(b, (uint32_t)t->n_ins, 2);
        for (size_t c = 0; c < t->n_ins; c++, s++) {
            stream_be(b, (uint32_t)s->len, 4); /* -1: NULL */
            if (s->len > 0) {
                memcpy(b->stream + b->stream_len, b->arena + s->off,
                       (size_t)s->len);
                b->stream_len += (size_t)s->len;
            }
        }
    }
    stream_be(b, 0xffffu, 2); /* trailer: -1 */
    *data = b->stream;
    *len = b->stream_len;
    return SPOT_OK;
}

/* Classifies a refused COPY (connection fine). */
static enum pg_copy_refusal refusal_of(const char *st)
{
    if (st && strcmp(st, "23505") == 0)
        return PG_COPY_DUPLICATE;
    if (st && (strcmp(st, "0A000") == 0 || strcmp(st, "42501") == 0 ||
               strcmp(st, "42809") == 0))
        return PG_COPY_UNSUPPORTED;
    return PG_COPY_DATA;
}

/* Ends a COPY in progress and reads its result. */
static int copy_finish(PGconn *conn, const char *abort_msg,
                       enum pg_copy_refusal *why, char *err, size_t errlen)
{
    int rc = SPOT_EAGAIN;
    if (PQputCopyEnd(conn, abort_msg) != 1) {
        pg_one_line(err, errlen, "ending COPY: ", PQerrorMessage(conn));
        return SPOT_EAGAIN;
    }
    PGresult *res = PQgetResult(conn);
    rc = pg_result_check(conn, res, PGRES_COMMAND_OK, err, errlen);
    if (rc != SPOT_OK && PQstatus(conn) == CONNECTION_OK && res &&
        PQresultStatus(res) == PGRES_FATAL_ERROR) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        enum pg_copy_refusal r = refusal_of(st);
        if (rc == SPOT_EPEER || r != PG_COPY_DATA) {
            *why = r;
            rc = SPOT_EPEER;
        }
    }
    PQclear(res);
    while ((res = PQgetResult(conn)) != NULL)
        PQclear(res);
    return rc;
}

static int copy_table(struct pg_batch *b, PGconn *conn, struct tbl *t,
                      enum pg_copy_refusal *why, char *err, size_t errlen)
{
    const char *data;
    size_t len;
    if (pg_batch_copy_stream(b, (int)(t - b->tbl), &data, &len) != SPOT_OK) {
        snprintf(err, errlen, "out of memory building COPY data");
        return SPOT_EAGAIN;
    }
    PGresult *res = PQexec(conn, t->copy.s);
    int rc = pg_result_check(conn, res, PGRES_COPY_IN, err, errlen);
    if (rc != SPOT_OK && PQstatus(conn) == CONNECTION_OK && res &&
        PQresultStatus(res) == PGRES_FATAL_ERROR) {
        enum pg_copy_refusal r =
            refusal_of(PQresultErrorField(res, PG_DIAG_SQLSTATE));
        if (rc == SPOT_EPEER || r != PG_COPY_DATA) {
            *why = r;
            rc = SPOT_EPEER;
        }
    }
    PQclear(res);
    if (rc != SPOT_OK)
        return rc;
    /* One CopyData message per COPY_CHUNK: the server reads each into a
     * buffer it reuses, where one message of the whole table would make it
     * allocate (and page-fault, and unmap) a buffer of that size per
     * statement. */
    while (len > 0) {
        int n = len > COPY_CHUNK ? COPY_CHUNK : (int)len;
        if (PQputCopyData(conn, data, n) != 1) {
            pg_one_line(err, errlen,
                        "sending COPY data: ", PQerrorMessage(conn));
            copy_finish(conn, "send failed", why, err, errlen);
            return SPOT_EAGAIN;
        }
        data += n;
        len -= (size_t)n;
    }
    return copy_finish(conn, NULL, why, err, errlen);
}

int pg_batch_copy(struct pg_batch *b, PGconn *conn, enum pg_copy_refusal *why,
                  char *err, size_t errlen)
{
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        struct tbl *t = &b->tbl[i];
        if (t->n_slots == 0)
            continue;
        int rc;
        if (i != PG_TABLE_REJECTED && t->copy_ok) {
            err[0] = '\0';
            rc = copy_table(b, conn, t, why, err, errlen);
            if (rc != SPOT_OK)
                name_table(t, err, errlen);
        } else {
            rc = insert_table(b, conn, t, err, errlen);
            if (rc == SPOT_EPEER)
                *why = PG_COPY_DATA;
        }
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}
