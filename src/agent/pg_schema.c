/*
 * PostgreSQL table layout and migrations (see pg_schema.h; tables in
 * docs/tables.md). Called from the PostgreSQL sink thread on each
 * (re)connection.
 *
 * Migrations. spotagent_schema_version records each applied version. On
 * every start, in one transaction holding pg_advisory_xact_lock('SPOT',
 * hash of the schema name):
 *   1. the schema and the version table are created when missing;
 *   2. each entry of migrations[] whose version is not recorded runs and is
 *      recorded (version 1 creates every table and index from the schema
 *      set in force);
 *   3. reconcile: every layout table missing from the database is created,
 *      and every layout column missing from an existing table is added with
 *      ALTER TABLE ... ADD COLUMN IF NOT EXISTS (logged). A field added to a
 *      schema JSON therefore needs no hand-written migration. A column
 *      whose type differs is reported, never changed.
 * What reconcile cannot do (changing a primary key or a type, renaming,
 * new indexes on existing tables) is a new entry of migrations[] with the
 * next version number. Catalog lookups come before CREATE SCHEMA/TABLE so
 * that a role without CREATE privilege works on tables made by an admin.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_schema.h"
#include "spot/err.h"
#include "spot/log.h"

#define MOD "pg"

/* --- SQL text buffer ------------------------------------------------------ */

void pg_sql_reset(struct pg_sql *b)
{
    b->len = 0;
    b->oom = false;
    if (b->s)
        b->s[0] = '\0';
}

void pg_sql_free(struct pg_sql *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
    b->oom = false;
}

void pg_sql_addn(struct pg_sql *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void pg_sql_add(struct pg_sql *b, const char *s)
{
    pg_sql_addn(b, s, strlen(s));
}

void pg_sql_param(struct pg_sql *b, unsigned n)
{
    char tmp[16];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    tmp[--i] = '$';
    pg_sql_addn(b, tmp + i, sizeof tmp - i);
}

void pg_sql_ident(struct pg_sql *b, PGconn *conn, const char *ident)
{
    char *q = PQescapeIdentifier(conn, ident, strlen(ident));
    if (!q) {
        b->oom = true;
        return;
    }
    pg_sql_add(b, q);
    PQfreemem(q);
}

void pg_sql_qualified(struct pg_sql *b, PGconn *conn, const char *schema,
                      const char *table)
{
    pg_sql_ident(b, conn, schema);
    pg_sql_add(b, ".");
    pg_sql_ident(b, conn, table);
}

/* --- results -------------------------------------------------------------- */

/* Copies s into err as one line: control characters become spaces, runs
 * of spaces one, and trailing blanks go. */
void pg_one_line(char *err, size_t errlen, const char *prefix, const char *s)
{
    if (!err || errlen == 0)
        return;
    int n = snprintf(err, errlen, "%s%s", prefix, s ? s : "");
    size_t len = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char c = err[i];
        if ((unsigned char)c < 0x20 || c == 0x7f)
            c = ' ';
        if (c == ' ' && (k == 0 || err[k - 1] == ' '))
            continue;
        err[k++] = c;
    }
    while (k > 0 && err[k - 1] == ' ')
        k--;
    err[k] = '\0';
}

static bool sqlstate_is_data_error(const char *st)
{
    if (!st || strlen(st) != 5)
        return false;
    /* 22 data exception, 23 integrity constraint violation, 54 program
     * limit exceeded (e.g. index row too large), 42804 datatype mismatch:
     * the same statement would fail again whatever the server's state. */
    return strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
           strncmp(st, "54", 2) == 0 || strcmp(st, "42804") == 0;
}

int pg_result_check(PGconn *conn, const PGresult *res, ExecStatusType want,
                    char *err, size_t errlen)
{
    if (res && PQresultStatus(res) == want)
        return SPOT_OK;
    const char *state = NULL;
    const char *msg = NULL;
    char prefix[32];
    if (res) {
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (!msg && PQresultStatus(res) != PGRES_FATAL_ERROR) {
            msg = PQresStatus(PQresultStatus(res));
            state = NULL;
        }
    }
    if (!msg)
        msg = PQerrorMessage(conn);
    snprintf(prefix, sizeof prefix, "%s: ", state ? state : "no SQLSTATE");
    pg_one_line(err, errlen, prefix, msg);
    if (PQstatus(conn) != CONNECTION_OK)
        return SPOT_EAGAIN;
    if (res && PQresultStatus(res) == PGRES_FATAL_ERROR &&
        sqlstate_is_data_error(state))
        return SPOT_EPEER;
    return SPOT_EAGAIN;
}

int pg_exec_simple(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = pg_result_check(conn, res, PGRES_COMMAND_OK, err, errlen);
    PQclear(res);
    return rc;
}

/* --- layout --------------------------------------------------------------- */

/* Types a schema field may map to (contract §4), and their names as
 * pg_catalog.format_type() writes them. */
static const struct {
    const char *name;
    const char *catalog;
} field_types[] = {
    {"double precision", "double precision"},
    {"integer", "integer"},
    {"text", "text"},
    {"boolean", "boolean"},
    {"timestamptz", "timestamp with time zone"},
};

static const struct {
    const char *name;
    const char *catalog;
} other_types[] = {
    {"jsonb", "jsonb"},
    {"bytea", "bytea"},
    {"bigint", "bigint"},
    {"bigserial", "bigint"},
};

static const char *catalog_type_name(const char *type)
{
    for (size_t i = 0; i < sizeof field_types / sizeof field_types[0]; i++) {
        if (strcmp(type, field_types[i].name) == 0)
            return field_types[i].catalog;
    }
    for (size_t i = 0; i < sizeof other_types / sizeof other_types[0]; i++) {
        if (strcmp(type, other_types[i].name) == 0)
            return other_types[i].catalog;
    }
    return type;
}

static bool field_type_allowed(const char *type)
{
    for (size_t i = 0; i < sizeof field_types / sizeof field_types[0]; i++) {
        if (strcmp(type, field_types[i].name) == 0)
            return true;
    }
    return false;
}

/* [a-z_][a-z0-9_]*, at most 63 bytes (NAMEDATALEN - 1). */
static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static void add_col(struct pg_table *t, const char *name, const char *type,
                    enum pg_col_source src)
{
    struct pg_column *c = &t->cols[t->n_cols++];
    memset(c, 0, sizeof *c);
    c->name = name;
    c->type = type;
    c->src = src;
}

static void add_common_cols(struct pg_table *t)
{
    add_col(t, "apikey", "text", PG_SRC_APIKEY);
    t->cols[t->n_cols - 1].key = true;
    add_col(t, "device_id", "text", PG_SRC_DEVICE_ID);
    t->cols[t->n_cols - 1].key = true;
    add_col(t, "service", "text", PG_SRC_SERVICE);
    add_col(t, "service_path", "text", PG_SRC_SERVICE_PATH);
    add_col(t, "time_instant", "timestamptz", PG_SRC_TIME_INSTANT);
    t->cols[t->n_cols - 1].key = true;
    add_col(t, "received_at", "timestamptz", PG_SRC_RECEIVED_AT);
    t->cols[t->n_cols - 1].not_null = true;
}

static int check_table(const struct pg_table *t, char *err, size_t errlen)
{
    if (!name_ok(t->name)) {
        snprintf(err, errlen, "table name \"%s\" is not [a-z_][a-z0-9_]*",
                 t->name ? t->name : "");
        return SPOT_ECONFIG;
    }
    for (size_t i = 0; i < t->n_cols; i++) {
        if (!name_ok(t->cols[i].name)) {
            snprintf(err, errlen,
                     "table %s: column name \"%s\" is not [a-z_][a-z0-9_]*",
                     t->name, t->cols[i].name ? t->cols[i].name : "");
            return SPOT_ECONFIG;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->cols[i].name, t->cols[j].name) == 0) {
                snprintf(err, errlen, "table %s: column %s appears twice",
                         t->name, t->cols[i].name);
                return SPOT_ECONFIG;
            }
        }
    }
    return SPOT_OK;
}

int pg_layout_build(struct pg_layout *out, const struct schema_set *set,
                    char *err, size_t errlen)
{
    int rc = SPOT_OK;
    memset(out, 0, sizeof *out);

    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv =
            schema_set_vertical(set, (enum spot_vertical)v);
        struct pg_table *t = &out->tables[v];
        if (!sv) {
            snprintf(err, errlen, "no schema for vertical %d", v);
            return SPOT_ECONFIG;
        }
        if (sv->n_fields > SPOT_MAX_SCHEMA_FIELDS) {
            snprintf(err, errlen, "vertical %s: %zu fields, more than %d",
                     sv->code, sv->n_fields, SPOT_MAX_SCHEMA_FIELDS);
            return SPOT_ECONFIG;
        }
        t->name = sv->table;
        t->schema = sv;
        add_common_cols(t);
        for (size_t f = 0; f < sv->n_fields; f++) {
            const struct schema_field *fd = &sv->fields[f];
            if (f == sv->time_field)
                continue; /* TimeInstant is time_instant itself */
            if (!fd->pg_type || !field_type_allowed(fd->pg_type)) {
                snprintf(err, errlen,
                         "vertical %s: field %s: PostgreSQL type \"%s\" is "
                         "not one of double precision, integer, text, "
                         "boolean, timestamptz",
                         sv->code, fd->name ? fd->name : "?",
                         fd->pg_type ? fd->pg_type : "");
                return SPOT_ECONFIG;
            }
            add_col(t, fd->column, fd->pg_type, PG_SRC_FIELD);
            t->cols[t->n_cols - 1].field = f;
            t->cols[t->n_cols - 1].key = fd->key;
        }
        add_col(t, "extra", "jsonb", PG_SRC_EXTRA);
        rc = check_table(t, err, errlen);
        if (rc != SPOT_OK)
            return rc;
        for (int w = 0; w < v; w++) {
            if (strcmp(out->tables[w].name, t->name) == 0) {
                snprintf(err, errlen, "verticals %s and %s share table %s",
                         out->tables[w].schema->code, sv->code, t->name);
                return SPOT_ECONFIG;
            }
        }
    }

    struct pg_table *g = &out->tables[PG_TABLE_GENERIC];
    g->name = "generic_measure";
    add_common_cols(g);
    add_col(g, "attrs", "jsonb", PG_SRC_ATTRS);

    struct pg_table *r = &out->tables[PG_TABLE_REJECTED];
    r->name = "rejected_message";
    add_col(r, "id", "bigserial", PG_SRC_ID);
    r->cols[r->n_cols - 1].key = true;
    add_col(r, "received_at", "timestamptz", PG_SRC_RECEIVED_AT);
    r->cols[r->n_cols - 1].not_null = true;
    add_col(r, "topic", "text", PG_SRC_TOPIC);
    add_col(r, "payload", "bytea", PG_SRC_PAYLOAD);
    r->cols[r->n_cols - 1].binary = true;
    add_col(r, "reason", "text", PG_SRC_REASON);
    r->cols[r->n_cols - 1].not_null = true;
    add_col(r, "detail", "text", PG_SRC_DETAIL);
    add_col(r, "fingerprint", "bytea", PG_SRC_FINGERPRINT);
    r->cols[r->n_cols - 1].not_null = true;
    r->cols[r->n_cols - 1].unique = true;
    r->cols[r->n_cols - 1].binary = true;

    for (int i = SPOT_V_COUNT; i < PG_TABLE_COUNT; i++) {
        for (int v = 0; v < SPOT_V_COUNT; v++) {
            if (strcmp(out->tables[v].name, out->tables[i].name) == 0) {
                snprintf(err, errlen, "vertical %s uses reserved table %s",
                         out->tables[v].schema->code, out->tables[v].name);
                return SPOT_ECONFIG;
            }
        }
    }
    return SPOT_OK;
}

/* --- migrations ----------------------------------------------------------- */

struct mig_ctx {
    PGconn *conn;
    const char *schema;
    const struct pg_layout *layout;
    struct pg_sql sql;
    char *err;
    size_t errlen;
    bool *types_ok; /* per layout table, or NULL */
};

struct migration {
    int version;
    const char *description;
    int (*apply)(struct mig_ctx *m);
};

static int run_sql(struct mig_ctx *m)
{
    if (m->sql.oom) {
        snprintf(m->err, m->errlen, "out of memory building SQL");
        return SPOT_EAGAIN;
    }
    int rc = pg_exec_simple(m->conn, m->sql.s, m->err, m->errlen);
    /* A refused DDL statement is not a poison row: retry after back-off. */
    return rc == SPOT_OK ? SPOT_OK : SPOT_EAGAIN;
}

/* Runs a query with text parameters; *out is the result (caller clears). */
static int run_query(struct mig_ctx *m, const char *sql, int n,
                     const char *const *params, PGresult **out)
{
    PGresult *res = PQexecParams(m->conn, sql, n, NULL, params, NULL, NULL, 0);
    int rc = pg_result_check(m->conn, res, PGRES_TUPLES_OK, m->err, m->errlen);
    if (rc != SPOT_OK) {
        PQclear(res);
        *out = NULL;
        return SPOT_EAGAIN;
    }
    *out = res;
    return SPOT_OK;
}

static int create_index(struct mig_ctx *m, const char *table,
                        const char *column)
{
    char name[160];
    snprintf(name, sizeof name, "%s_%s_idx", table, column);
    pg_sql_reset(&m->sql);
    pg_sql_add(&m->sql, "CREATE INDEX IF NOT EXISTS ");
    pg_sql_ident(&m->sql, m->conn, name);
    pg_sql_add(&m->sql, " ON ");
    pg_sql_qualified(&m->sql, m->conn, m->schema, table);
    pg_sql_add(&m->sql, " (");
    pg_sql_ident(&m->sql, m->conn, column);
    pg_sql_add(&m->sql, ")");
    return run_sql(m);
}

static void column_def(struct mig_ctx *m, const struct pg_column *c)
{
    pg_sql_ident(&m->sql, m->conn, c->name);
    pg_sql_add(&m->sql, " ");
    pg_sql_add(&m->sql, c->type); /* whitelisted in pg_layout_build */
    if (c->not_null || c->key)
        pg_sql_add(&m->sql, " NOT NULL");
}

static int create_table(struct mig_ctx *m, const struct pg_table *t)
{
    pg_sql_reset(&m->sql);
    pg_sql_add(&m->sql, "CREATE TABLE IF NOT EXISTS ");
    pg_sql_qualified(&m->sql, m->conn, m->schema, t->name);
    pg_sql_add(&m->sql, " (");
    for (size_t i = 0; i < t->n_cols; i++) {
        if (i)
            pg_sql_add(&m->sql, ", ");
        column_def(m, &t->cols[i]);
    }
    pg_sql_add(&m->sql, ", PRIMARY KEY (");
    bool first = true;
    for (size_t i = 0; i < t->n_cols; i++) {
        if (!t->cols[i].key)
            continue;
        if (!first)
            pg_sql_add(&m->sql, ", ");
        first = false;
        pg_sql_ident(&m->sql, m->conn, t->cols[i].name);
    }
    pg_sql_add(&m->sql, ")");
    for (size_t i = 0; i < t->n_cols; i++) {
        if (!t->cols[i].unique)
            continue;
        pg_sql_add(&m->sql, ", UNIQUE (");
        pg_sql_ident(&m->sql, m->conn, t->cols[i].name);
        pg_sql_add(&m->sql, ")");
    }
    pg_sql_add(&m->sql, ")");
    int rc = run_sql(m);
    if (rc != SPOT_OK)
        return rc;
    bool rejected = t == &m->layout->tables[PG_TABLE_REJECTED];
    return create_index(m, t->name, rejected ? "received_at" : "time_instant");
}

static int create_checkpoint_table(struct mig_ctx *m)
{
    pg_sql_reset(&m->sql);
    pg_sql_add(&m->sql, "CREATE TABLE IF NOT EXISTS ");
    pg_sql_qualified(&m->sql, m->conn, m->schema, "spotagent_checkpoint");
    pg_sql_add(&m->sql, " (sink text, journal_id text, "
                        "seq bigint, segment bigint, \"offset\" bigint, "
                        "updated_at timestamptz, "
                        "PRIMARY KEY (sink, journal_id))");
    return run_sql(m);
}

/* Version 2: one checkpoint row per (sink, journal). Version 1 keyed the
 * row by sink alone, so agents sharing a database (--mqtt-share-group)
 * overwrote each other's position. Rows without a journal id cannot be
 * resumed from and are dropped. */
static int mig_v2(struct mig_ctx *m)
{
    static const char *const steps[] = {
        "DELETE FROM %s WHERE journal_id IS NULL",
        "ALTER TABLE %s DROP CONSTRAINT IF EXISTS spotagent_checkpoint_pkey",
        "ALTER TABLE %s ADD PRIMARY KEY (sink, journal_id)",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const char *at = strstr(steps[i], "%s");
        pg_sql_reset(&m->sql);
        pg_sql_addn(&m->sql, steps[i], (size_t)(at - steps[i]));
        pg_sql_qualified(&m->sql, m->conn, m->schema, "spotagent_checkpoint");
        pg_sql_add(&m->sql, at + 2);
        int rc = run_sql(m);
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

/* Version 1: every table of the layout in force, and the checkpoint. */
static int mig_v1(struct mig_ctx *m)
{
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        int rc = create_table(m, &m->layout->tables[i]);
        if (rc != SPOT_OK)
            return rc;
    }
    return create_checkpoint_table(m);
}

/* Append new versions here, in order. Example of a version 2:
 *   {2, "index crowd_event on visitor_id", mig_v2}
 * where mig_v2 runs its DDL through m->sql and run_sql(). Added schema
 * fields need no entry: reconcile() adds their columns. */
static const struct migration migrations[] = {
    {1, "create tables", mig_v1},
    {2, "checkpoint keyed by sink and journal", mig_v2},
};

#define N_MIGRATIONS (sizeof migrations / sizeof migrations[0])

int pg_schema_latest_version(void)
{
    return migrations[N_MIGRATIONS - 1].version;
}

/* The catalog of the schema: one row per (table, column, type). A table
 * with no column has one row with NULL column. */
static int load_catalog(struct mig_ctx *m, PGresult **out)
{
    static const char q[] =
        "SELECT c.relname, a.attname, "
        "pg_catalog.format_type(a.atttypid, a.atttypmod) "
        "FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid "
        "AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')";
    const char *params[1] = {m->schema};
    return run_query(m, q, 1, params, out);
}

static bool catalog_has_table(const PGresult *cat, const char *table)
{
    int n = PQntuples(cat);
    for (int i = 0; i < n; i++) {
        if (strcmp(PQgetvalue(cat, i, 0), table) == 0)
            return true;
    }
    return false;
}

/* Type of table.column as format_type() writes it, or NULL if absent. */
static const char *catalog_column(const PGresult *cat, const char *table,
                                  const char *column)
{
    int n = PQntuples(cat);
    for (int i = 0; i < n; i++) {
        if (!PQgetisnull(cat, i, 1) &&
            strcmp(PQgetvalue(cat, i, 0), table) == 0 &&
            strcmp(PQgetvalue(cat, i, 1), column) == 0)
            return PQgetvalue(cat, i, 2);
    }
    return NULL;
}

static int reconcile_table(struct mig_ctx *m, const PGresult *cat,
                           const struct pg_table *t, bool *types_ok)
{
    int rc;
    *types_ok = true;
    if (!catalog_has_table(cat, t->name)) {
        rc = create_table(m, t);
        if (rc == SPOT_OK)
            log_msg(LOG_INFO, MOD, "created table %s.%s", m->schema, t->name);
        return rc;
    }
    for (size_t i = 0; i < t->n_cols; i++) {
        const struct pg_column *c = &t->cols[i];
        const char *have = catalog_column(cat, t->name, c->name);
        const char *want = catalog_type_name(c->type);
        if (have) {
            if (strcmp(have, want) != 0)
                *types_ok = false;
            if (strcmp(have, want) != 0)
                log_msg(LOG_WARN, MOD,
                        "column %s.%s.%s is %s in the database but %s in "
                        "the schema: left as is",
                        m->schema, t->name, c->name, have, want);
            continue;
        }
        if (c->src == PG_SRC_ID) {
            log_msg(LOG_WARN, MOD, "table %s.%s has no column %s: left as is",
                    m->schema, t->name, c->name);
            continue;
        }
        pg_sql_reset(&m->sql);
        pg_sql_add(&m->sql, "ALTER TABLE ");
        pg_sql_qualified(&m->sql, m->conn, m->schema, t->name);
        pg_sql_add(&m->sql, " ADD COLUMN IF NOT EXISTS ");
        pg_sql_ident(&m->sql, m->conn, c->name);
        pg_sql_add(&m->sql, " ");
        pg_sql_add(&m->sql, c->type);
        rc = run_sql(m);
        if (rc != SPOT_OK)
            return rc;
        log_msg(LOG_INFO, MOD, "added column %s.%s.%s (%s)", m->schema, t->name,
                c->name, c->type);
        if (c->key || c->not_null || c->unique)
            log_msg(LOG_WARN, MOD,
                    "column %s.%s.%s was added without its key or "
                    "constraint: that needs a versioned migration",
                    m->schema, t->name, c->name);
    }
    return SPOT_OK;
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static int migrate_locked(struct mig_ctx *m)
{
    PGresult *res = NULL;
    PGresult *cat = NULL;
    int rc;
    int max_applied = 0;
    bool applied_any = false;
    bool applied[N_MIGRATIONS];
    memset(applied, 0, sizeof applied);

    /* Serialises agents migrating the same schema of the same database. */
    char k2[16];
    snprintf(k2, sizeof k2, "%" PRId32, (int32_t)fnv1a(m->schema));
    const char *lock_params[2] = {"1397772116", k2}; /* 'SPOT', schema */
    rc = run_query(m,
                   "SELECT pg_catalog.pg_advisory_xact_lock($1::int4, "
                   "$2::int4)",
                   2, lock_params, &res);
    if (rc != SPOT_OK)
        goto out;
    PQclear(res);

    const char *schema_param[1] = {m->schema};
    rc =
        run_query(m, "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                  1, schema_param, &res);
    if (rc != SPOT_OK)
        goto out;
    bool have_schema = PQntuples(res) > 0;
    PQclear(res);
    res = NULL;
    if (!have_schema) {
        pg_sql_reset(&m->sql);
        pg_sql_add(&m->sql, "CREATE SCHEMA IF NOT EXISTS ");
        pg_sql_ident(&m->sql, m->conn, m->schema);
        rc = run_sql(m);
        if (rc != SPOT_OK)
            goto out;
        log_msg(LOG_INFO, MOD, "created schema %s", m->schema);
    }

    rc = load_catalog(m, &cat);
    if (rc != SPOT_OK)
        goto out;
    if (!catalog_has_table(cat, "spotagent_schema_version")) {
        pg_sql_reset(&m->sql);
        pg_sql_add(&m->sql, "CREATE TABLE IF NOT EXISTS ");
        pg_sql_qualified(&m->sql, m->conn, m->schema,
                         "spotagent_schema_version");
        pg_sql_add(&m->sql, " (version integer PRIMARY KEY, applied_at "
                            "timestamptz NOT NULL DEFAULT now(), "
                            "description text)");
        rc = run_sql(m);
        if (rc != SPOT_OK)
            goto out;
    }

    pg_sql_reset(&m->sql);
    pg_sql_add(&m->sql, "SELECT version FROM ");
    pg_sql_qualified(&m->sql, m->conn, m->schema, "spotagent_schema_version");
    if (m->sql.oom) {
        rc = SPOT_EAGAIN;
        goto out;
    }
    rc = run_query(m, m->sql.s, 0, NULL, &res);
    if (rc != SPOT_OK)
        goto out;
    for (int i = 0; i < PQntuples(res); i++) {
        int ver = (int)strtol(PQgetvalue(res, i, 0), NULL, 10);
        if (ver > max_applied)
            max_applied = ver;
        for (size_t j = 0; j < N_MIGRATIONS; j++) {
            if (migrations[j].version == ver)
                applied[j] = true;
        }
    }
    PQclear(res);
    res = NULL;
    if (max_applied > pg_schema_latest_version())
        log_msg(LOG_WARN, MOD,
                "schema %s is at version %d, newer than this agent's %d: "
                "carrying on with the columns it knows",
                m->schema, max_applied, pg_schema_latest_version());

    for (size_t j = 0; j < N_MIGRATIONS; j++) {
        if (applied[j])
            continue;
        rc = migrations[j].apply(m);
        if (rc != SPOT_OK)
            goto out;
        char ver[16];
        snprintf(ver, sizeof ver, "%d", migrations[j].version);
        const char *params[2] = {ver, migrations[j].description};
        pg_sql_reset(&m->sql);
        pg_sql_add(&m->sql, "INSERT INTO ");
        pg_sql_qualified(&m->sql, m->conn, m->schema,
                         "spotagent_schema_version");
        pg_sql_add(&m->sql, " (version, applied_at, description) VALUES "
                            "($1, now(), $2) ON CONFLICT (version) DO "
                            "NOTHING");
        if (m->sql.oom) {
            rc = SPOT_EAGAIN;
            goto out;
        }
        res = PQexecParams(m->conn, m->sql.s, 2, NULL, params, NULL, NULL, 0);
        rc = pg_result_check(m->conn, res, PGRES_COMMAND_OK, m->err, m->errlen);
        PQclear(res);
        res = NULL;
        if (rc != SPOT_OK) {
            rc = SPOT_EAGAIN;
            goto out;
        }
        applied_any = true;
        log_msg(LOG_INFO, MOD, "schema %s: applied migration %d (%s)",
                m->schema, migrations[j].version, migrations[j].description);
    }

    if (applied_any) {
        PQclear(cat);
        cat = NULL;
        rc = load_catalog(m, &cat);
        if (rc != SPOT_OK)
            goto out;
    }
    for (int i = 0; i < PG_TABLE_COUNT; i++) {
        bool ok;
        rc = reconcile_table(m, cat, &m->layout->tables[i], &ok);
        if (rc != SPOT_OK)
            goto out;
        if (m->types_ok)
            m->types_ok[i] = ok;
    }
    if (!catalog_has_table(cat, "spotagent_checkpoint")) {
        rc = create_checkpoint_table(m);
        if (rc != SPOT_OK)
            goto out;
    }
out:
    PQclear(res);
    PQclear(cat);
    return rc;
}

int pg_schema_migrate(PGconn *conn, const char *schema,
                      const struct pg_layout *layout,
                      bool types_ok[PG_TABLE_COUNT], char *err, size_t errlen)
{
    struct mig_ctx m = {
        .conn = conn,
        .schema = schema,
        .layout = layout,
        .err = err,
        .errlen = errlen,
        .types_ok = types_ok,
    };
    int rc = pg_exec_simple(conn, "BEGIN", err, errlen);
    if (rc != SPOT_OK) {
        rc = SPOT_EAGAIN;
        goto out;
    }
    rc = migrate_locked(&m);
    if (rc != SPOT_OK)
        goto out;
    rc = pg_exec_simple(conn, "COMMIT", err, errlen);
    if (rc != SPOT_OK)
        rc = SPOT_EAGAIN;
out:
    if (rc != SPOT_OK && PQstatus(conn) == CONNECTION_OK &&
        PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(conn, "ROLLBACK");
        PQclear(res);
    }
    pg_sql_free(&m.sql);
    return rc;
}
