/*
 * Configuration: the option table, and the layering of defaults, the JSON
 * file, the environment and the command line over it. Validation runs on
 * the whole result, so --check-config and start-up say the same thing.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/json_depth.h"
#include "spot/log.h"
#include "admin_http.h"
#include "config.h"
#include "devices.h"

enum opt_type { OPT_STR, OPT_INT, OPT_LIST, OPT_BOOL };

struct option_def {
    const char *flag; /* without the leading "--" */
    enum opt_type type;
    size_t off;
    const char *def; /* NULL: none */
    int min, max;    /* OPT_INT bounds */
    bool secret;     /* may come from *_FILE; never logged */
    bool flag_only;  /* no environment variable or file key */
    const char *help;
};

#define OFF(f) offsetof(struct agent_config, f)

static const struct option_def options[] = {
    {"config", OPT_STR, OFF(config_path), NULL, 0, 0, false, false,
     "JSON configuration file (options, service_groups, devices)"},
    {"mqtt-url", OPT_STR, OFF(mqtt_url), "mqtt://127.0.0.1:1883", 0, 0, false,
     false, "broker URL: mqtt://, mqtts:// (TLS), ws://, wss://"},
    {"mqtt-username", OPT_STR, OFF(mqtt_username), NULL, 0, 0, false, false,
     "broker user name"},
    {"mqtt-password", OPT_STR, OFF(mqtt_password), NULL, 0, 0, true, false,
     "broker password"},
    {"mqtt-ca", OPT_STR, OFF(mqtt_ca), NULL, 0, 0, false, false,
     "PEM file of the CA that signed the broker's certificate"},
    {"mqtt-cert", OPT_STR, OFF(mqtt_cert), NULL, 0, 0, false, false,
     "PEM file of the client certificate"},
    {"mqtt-key", OPT_STR, OFF(mqtt_key), NULL, 0, 0, false, false,
     "PEM file of the client private key"},
    {"mqtt-client-id", OPT_STR, OFF(mqtt_client_id), NULL, 0, 0, false, false,
     "stable client id (default spotagent-{hostname})"},
    {"mqtt-topic", OPT_LIST, 0, "/+/+/attrs", 0, 0, false, false,
     "subscription filter (repeatable; comma-separated in the environment)"},
    {"mqtt-qos", OPT_INT, OFF(mqtt_qos), "1", 0, 2, false, false,
     "subscription QoS"},
    {"mqtt-share-group", OPT_STR, OFF(mqtt_share_group), NULL, 0, 0, false,
     false, "subscribe as $share/{group}/{filter} to split load"},
    {"pg-url", OPT_STR, OFF(pg_url), NULL, 0, 0, true, false,
     "PostgreSQL sink (libpq connection string or URI); off when empty"},
    {"pg-schema", OPT_STR, OFF(pg_schema), "public", 0, 0, false, false,
     "PostgreSQL schema of the tables"},
    {"orion-url", OPT_STR, OFF(orion_url), NULL, 0, 0, false, false,
     "NGSI-v2 sink, e.g. http://orion:1026; off when empty"},
    {"ngsi-ld-url", OPT_STR, OFF(ngsi_ld_url), NULL, 0, 0, false, false,
     "NGSI-LD sink; off when empty"},
    {"ngsi-mapping", OPT_STR, OFF(ngsi_mapping), "sdm", 0, 0, false, false,
     "sdm or compat"},
    {"orion-token", OPT_STR, OFF(orion_token), NULL, 0, 0, true, false,
     "token for the NGSI brokers, sent as --orion-auth says"},
    {"orion-auth", OPT_STR, OFF(orion_auth), "x-auth-token", 0, 0, false, false,
     "how the token is sent: x-auth-token (X-Auth-Token: T) or bearer "
     "(Authorization: Bearer T)"},
    {"orion-ca", OPT_STR, OFF(orion_ca), NULL, 0, 0, false, false,
     "PEM CA bundle to verify https:// NGSI brokers (default: system CAs)"},
    {"ngsi-ld-context", OPT_STR, OFF(ngsi_ld_context), NULL, 0, 0, false, false,
     "@context URL sent in the Link header to the NGSI-LD broker "
     "(default: the ETSI core context)"},
    {"http-listen", OPT_STR, OFF(http_listen), "127.0.0.1:8080", 0, 0, false,
     false, "health and metrics endpoint host:port; off disables"},
    {"data-dir", OPT_STR, OFF(data_dir), "./spotagent-data", 0, 0, false, false,
     "journal, checkpoints, and dead letters when no PostgreSQL sink"},
    {"log-level", OPT_STR, OFF(log_level), "info", 0, 0, false, false,
     "error, warn, info, debug"},
    {"log-format", OPT_STR, OFF(log_format), "text", 0, 0, false, false,
     "text, logfmt or json (one line per event on standard error)"},
    {"fsync-interval-ms", OPT_INT, OFF(fsync_interval_ms), "100", 0, 60000,
     false, false, "journal fsync interval; 0 = every message"},
    {"journal-max-mb", OPT_INT, OFF(journal_max_mb), "1024", 1, 1048576, false,
     false, "bound of the journal; when full, messages wait at the broker"},
    {"check-config", OPT_BOOL, OFF(check_config), NULL, 0, 0, false, true,
     "validate the configuration and exit"},
    {"help", OPT_BOOL, OFF(help), NULL, 0, 0, false, true,
     "print this help and exit"},
    {"version", OPT_BOOL, OFF(version), NULL, 0, 0, false, true,
     "print the version and exit"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

/* Which layer set each option, so a lower layer never overrides. */
enum layer { LAYER_DEFAULT, LAYER_FILE, LAYER_ENV, LAYER_FLAG };

struct loader {
    struct agent_config *c;
    enum layer set_by[N_OPTIONS];
    char *err;
    size_t errlen;
};

static int fail(struct loader *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fail(struct loader *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, l->errlen, fmt, ap);
    va_end(ap);
    return SPOT_ECONFIG;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static char **str_slot(struct agent_config *c, const struct option_def *o)
{
    return (char **)(void *)((char *)c + o->off);
}

static void clear_topics(struct agent_config *c)
{
    for (int i = 0; i < c->n_mqtt_topics; i++)
        free(c->mqtt_topics[i]);
    c->n_mqtt_topics = 0;
}

static int add_topic(struct loader *l, const char *t)
{
    struct agent_config *c = l->c;
    if (c->n_mqtt_topics == SPOT_MQTT_MAX_TOPICS)
        return fail(l, "mqtt-topic: at most %d filters", SPOT_MQTT_MAX_TOPICS);
    if (*t == '\0')
        return fail(l, "mqtt-topic: empty filter");
    c->mqtt_topics[c->n_mqtt_topics] = dup_str(t);
    if (c->mqtt_topics[c->n_mqtt_topics] == NULL)
        return SPOT_ENOMEM;
    c->n_mqtt_topics++;
    return SPOT_OK;
}

/* Sets option o from text; lists are replaced whole by each layer, except
 * that repeated flags accumulate. */
static int set_value(struct loader *l, size_t i, const char *val,
                     enum layer layer)
{
    const struct option_def *o = &options[i];
    struct agent_config *c = l->c;
    if (layer < l->set_by[i])
        return SPOT_OK;
    int replace = layer > l->set_by[i] || layer != LAYER_FLAG;
    l->set_by[i] = layer;
    switch (o->type) {
    case OPT_STR: {
        char **slot = str_slot(c, o);
        char *copy = dup_str(val);
        if (copy == NULL)
            return SPOT_ENOMEM;
        free(*slot);
        *slot = copy;
        return SPOT_OK;
    }
    case OPT_INT: {
        char *end;
        errno = 0;
        long x = strtol(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0' || x < o->min ||
            x > o->max)
            return fail(l, "%s: \"%s\" is not an integer in [%d, %d]", o->flag,
                        val, o->min, o->max);
        *(int *)(void *)((char *)c + o->off) = (int)x;
        return SPOT_OK;
    }
    case OPT_BOOL:
        *(bool *)(void *)((char *)c + o->off) = strcmp(val, "true") == 0;
        return SPOT_OK;
    case OPT_LIST: {
        if (replace)
            clear_topics(c);
        /* comma-separated outside the flag layer */
        if (layer == LAYER_FLAG)
            return add_topic(l, val);
        char *copy = dup_str(val);
        if (copy == NULL)
            return SPOT_ENOMEM;
        int rc = SPOT_OK;
        for (char *p = copy, *comma; rc == SPOT_OK && p != NULL;
             p = comma ? comma + 1 : NULL) {
            comma = strchr(p, ',');
            if (comma)
                *comma = '\0';
            rc = add_topic(l, p);
        }
        free(copy);
        return rc;
    }
    }
    return SPOT_EINVAL;
}

static void env_name(const struct option_def *o, const char *suffix, char *buf,
                     size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "SPOTAGENT_");
    for (const char *p = o->flag; *p && n + 1 < len; p++)
        buf[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[n] = '\0';
    if (suffix)
        snprintf(buf + n, len - n, "%s", suffix);
}

static int read_secret_file(struct loader *l, const char *var, const char *path,
                            char **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(l, "%s: cannot open %s: %s", var, path, strerror(errno));
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int read_err = ferror(f) ? errno : 0;
    int too_long = !read_err && !feof(f);
    fclose(f);
    if (read_err)
        return fail(l, "%s: cannot read %s: %s", var, path, strerror(read_err));
    if (memchr(buf, '\0', n) != NULL)
        return fail(l, "%s: %s holds a NUL byte", var, path);
    if (too_long)
        return fail(l, "%s: %s is longer than %zu bytes", var, path,
                    sizeof buf - 1);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    *out = dup_str(buf);
    return *out ? SPOT_OK : SPOT_ENOMEM;
}

static int apply_env(struct loader *l)
{
    char name[96];
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        if (o->flag_only)
            continue;
        env_name(o, NULL, name, sizeof name);
        const char *val = getenv(name);
        int rc = SPOT_OK;
        if (val != NULL) {
            rc = set_value(l, i, val, LAYER_ENV);
        } else if (o->secret) {
            env_name(o, "_FILE", name, sizeof name);
            const char *path = getenv(name);
            if (path != NULL) {
                char *secret;
                rc = read_secret_file(l, name, path, &secret);
                if (rc == SPOT_OK) {
                    rc = set_value(l, i, secret, LAYER_ENV);
                    free(secret);
                }
            }
        }
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

static int find_option(const char *flag, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].flag) == len &&
            memcmp(options[i].flag, flag, len) == 0)
            return (int)i;
    return -1;
}

/* Walks argv; with only_config, just picks --config (needed before the
 * file layer). */
static int apply_flags(struct loader *l, int argc, char **argv, int only_config)
{
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        if (strncmp(arg, "--", 2) != 0)
            return fail(l, "unexpected argument \"%s\" (see --help)", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        int i = find_option(name, len);
        if (i < 0)
            return fail(l, "unknown option \"%.*s\" (see --help)", (int)len + 2,
                        arg);
        const char *val;
        if (options[i].type == OPT_BOOL) {
            if (eq)
                return fail(l, "--%s takes no value", options[i].flag);
            val = "true";
        } else if (eq) {
            val = eq + 1;
        } else if (a + 1 < argc) {
            val = argv[++a];
        } else {
            return fail(l, "--%s needs a value", options[i].flag);
        }
        if (only_config && strcmp(options[i].flag, "config") != 0)
            continue;
        int rc = set_value(l, (size_t)i, val, LAYER_FLAG);
        if (rc != SPOT_OK)
            return rc;
    }
    return SPOT_OK;
}

static int apply_file(struct loader *l, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(l, "config: cannot open %s: %s", path, strerror(errno));
    char *text = malloc(SPOT_MAX_CONFIG_BYTES + 1);
    if (text == NULL) {
        fclose(f);
        return SPOT_ENOMEM;
    }
    size_t n = fread(text, 1, SPOT_MAX_CONFIG_BYTES + 1, f);
    fclose(f);
    int rc = SPOT_OK;
    yajl_val root = NULL;
    if (n > SPOT_MAX_CONFIG_BYTES) {
        rc = fail(l, "config: %s is larger than %d bytes", path,
                  SPOT_MAX_CONFIG_BYTES);
        goto out;
    }
    text[n] = '\0';
    if (json_depth_exceeds(text, n, SPOT_MAX_CONFIG_DEPTH)) {
        rc = fail(l, "config: %s nests arrays/objects deeper than %d levels",
                  path, SPOT_MAX_CONFIG_DEPTH);
        goto out;
    }
    char perr[256];
    root = yajl_tree_parse(text, perr, sizeof perr);
    if (root == NULL) {
        perr[strcspn(perr, "\n")] = '\0';
        rc = fail(l, "config: %s is not valid JSON: %s", path, perr);
        goto out;
    }
    if (!YAJL_IS_OBJECT(root)) {
        rc = fail(l, "config: %s must hold a JSON object", path);
        goto out;
    }
    yajl_val groups = NULL;
    yajl_val devices = NULL;
    for (size_t k = 0; k < root->u.object.len && rc == SPOT_OK; k++) {
        const char *key = root->u.object.keys[k];
        yajl_val v = root->u.object.values[k];
        if (strcmp(key, "service_groups") == 0) {
            groups = v;
            continue;
        }
        if (strcmp(key, "devices") == 0) {
            devices = v;
            continue;
        }
        /* option keys: the flag in snake case */
        char flag[64];
        snprintf(flag, sizeof flag, "%s", key);
        for (char *p = flag; *p; p++)
            if (*p == '_')
                *p = '-';
        int i = find_option(flag, strlen(flag));
        if (i < 0 || options[i].flag_only ||
            strcmp(options[i].flag, "config") == 0) {
            rc = fail(l, "config: unknown key \"%.64s\"", key);
            break;
        }
        char num[32];
        const char *val = NULL;
        if (YAJL_IS_STRING(v)) {
            val = v->u.string;
        } else if (YAJL_IS_INTEGER(v) && options[i].type == OPT_INT) {
            snprintf(num, sizeof num, "%lld", YAJL_GET_INTEGER(v));
            val = num;
        } else if (YAJL_IS_ARRAY(v) && options[i].type == OPT_LIST) {
            clear_topics(l->c);
            l->set_by[i] = LAYER_FILE;
            for (size_t j = 0; j < v->u.array.len && rc == SPOT_OK; j++) {
                if (!YAJL_IS_STRING(v->u.array.values[j]))
                    rc = fail(l, "config: %s must hold strings", key);
                else
                    rc = add_topic(l, v->u.array.values[j]->u.string);
            }
            continue;
        } else if (YAJL_IS_NULL(v)) {
            continue;
        } else {
            rc = fail(l, "config: %s has the wrong type", key);
            break;
        }
        rc = set_value(l, (size_t)i, val, LAYER_FILE);
    }
    if (rc == SPOT_OK) {
        rc = groups_new(&l->c->groups, groups, l->err, l->errlen);
        if (rc == SPOT_OK)
            rc = devices_new(&l->c->devices, devices, l->err, l->errlen);
        if (rc == SPOT_ECONFIG) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", l->err);
            rc = fail(l, "config: %s", msg);
        }
    }
out:
    yajl_tree_free(root);
    free(text);
    return rc;
}

/* The authority of a URL after its scheme (up to '/', '?' or the end):
 * [user[:password]@]host[:port], host a name or [ipv6]. Returns 1 when it
 * names a host and any port is 1..65535. */
static int authority_ok(const char *a)
{
    size_t n = strcspn(a, "/?#");
    size_t h = 0; /* start of the host: after the last '@' */
    for (size_t i = 0; i < n; i++)
        if (a[i] == '@')
            h = i + 1;
    size_t p = 0; /* start of the port, 0: none */
    if (h < n && a[h] == '[') {
        size_t close = h + 1;
        while (close < n && a[close] != ']')
            close++;
        if (close == n || close == h + 1)
            return 0;
        if (close + 1 < n) {
            if (a[close + 1] != ':')
                return 0;
            p = close + 2;
        }
    } else {
        size_t colon = h;
        while (colon < n && a[colon] != ':')
            colon++;
        if (colon == h)
            return 0; /* no host */
        for (size_t i = h; i < colon; i++)
            if ((unsigned char)a[i] <= ' ' || a[i] == '[' || a[i] == ']')
                return 0;
        if (colon < n)
            p = colon + 1;
    }
    if (p == 0)
        return 1;
    if (p >= n)
        return 0;
    long x = 0;
    for (size_t i = p; i < n; i++) {
        if (a[i] < '0' || a[i] > '9' || x > 65535)
            return 0;
        x = x * 10 + (a[i] - '0');
    }
    return x >= 1 && x <= 65535;
}

/* An MQTT 3.1.1 topic filter (§4.7): '#' only as the whole last level,
 * '+' only as a whole level. Filters whose first level is "$spotagent"
 * are refused: that is where the agent's own journal records live
 * (dead_record.h), and a publisher must not be able to forge them. */
static const char *filter_problem(const char *t)
{
    size_t n = strlen(t);
    if (n > SPOT_MAX_TOPIC_LEN)
        return "filter too long";
    for (size_t i = 0; i < n; i++) {
        int starts = i == 0 || t[i - 1] == '/';
        int ends = i + 1 == n || t[i + 1] == '/';
        if (t[i] == '+' && !(starts && ends))
            return "'+' must be a whole level";
        if (t[i] == '#' && !(starts && i + 1 == n))
            return "'#' must be the whole last level";
    }
    if (strncmp(t, "$spotagent", 10) == 0 && (t[10] == '/' || t[10] == '\0'))
        return "the $spotagent topics are the agent's own";
    return NULL;
}

static int validate(struct loader *l)
{
    struct agent_config *c = l->c;
    static const char *const schemes[] = {"mqtt://", "mqtts://", "ws://",
                                          "wss://"};
    int scheme_ok = 0, tls = 0;
    for (size_t i = 0; i < 4; i++) {
        if (strncmp(c->mqtt_url, schemes[i], strlen(schemes[i])) == 0) {
            scheme_ok = c->mqtt_url[strlen(schemes[i])] != '\0';
            tls = i == 1 || i == 3;
        }
    }
    if (scheme_ok) {
        const char *a = strstr(c->mqtt_url, "://") + 3;
        scheme_ok = authority_ok(a);
    }
    if (!scheme_ok)
        return fail(l,
                    "mqtt-url: \"%s\" must start with mqtt://, mqtts://, "
                    "ws:// or wss:// and name a host (and a port in "
                    "1..65535 if any)",
                    c->mqtt_url);
    if ((c->mqtt_cert == NULL) != (c->mqtt_key == NULL))
        return fail(l, "mqtt-cert and mqtt-key go together");
    if (!tls && (c->mqtt_ca || c->mqtt_cert))
        return fail(l, "mqtt-ca/mqtt-cert need a TLS URL (mqtts:// or wss://)");
    const char *files[] = {c->mqtt_ca, c->mqtt_cert, c->mqtt_key};
    const char *names[] = {"mqtt-ca", "mqtt-cert", "mqtt-key"};
    for (size_t i = 0; i < 3; i++)
        if (files[i] && access(files[i], R_OK) != 0)
            return fail(l, "%s: cannot read %s: %s", names[i], files[i],
                        strerror(errno));
    if (c->mqtt_password && !c->mqtt_username)
        return fail(l, "mqtt-password needs mqtt-username");
    if (c->mqtt_client_id == NULL || *c->mqtt_client_id == '\0' ||
        strlen(c->mqtt_client_id) > 65535)
        return fail(l, "mqtt-client-id must be 1-65535 characters");
    if (c->mqtt_share_group && (*c->mqtt_share_group == '\0' ||
                                strpbrk(c->mqtt_share_group, "/+#") != NULL))
        return fail(l, "mqtt-share-group must be non-empty without / + #");
    if (c->n_mqtt_topics == 0)
        return fail(l, "mqtt-topic: at least one filter is needed");
    for (int i = 0; i < c->n_mqtt_topics; i++) {
        const char *why = filter_problem(c->mqtt_topics[i]);
        if (why != NULL)
            return fail(l, "mqtt-topic: \"%.200s\" is not a valid filter: %s",
                        c->mqtt_topics[i], why);
    }
    if (c->pg_schema == NULL || *c->pg_schema == '\0' ||
        strspn(c->pg_schema, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
            strlen(c->pg_schema) ||
        isdigit((unsigned char)c->pg_schema[0]) || strlen(c->pg_schema) > 63)
        return fail(l, "pg-schema must be a lower-case identifier "
                       "[a-z_][a-z0-9_]{0,62}");
    const char *urls[] = {c->orion_url, c->ngsi_ld_url};
    const char *unames[] = {"orion-url", "ngsi-ld-url"};
    for (size_t i = 0; i < 2; i++) {
        if (!urls[i] || !*urls[i])
            continue;
        size_t skip = strncmp(urls[i], "http://", 7) == 0    ? 7
                      : strncmp(urls[i], "https://", 8) == 0 ? 8
                                                             : 0;
        if (skip == 0 || !authority_ok(urls[i] + skip))
            return fail(l,
                        "%s must start with http:// or https:// and name a "
                        "host (and a port in 1..65535 if any)",
                        unames[i]);
    }
    if (strcmp(c->ngsi_mapping, "sdm") != 0 &&
        strcmp(c->ngsi_mapping, "compat") != 0)
        return fail(l, "ngsi-mapping must be sdm or compat");
    if (strcmp(c->orion_auth, "x-auth-token") != 0 &&
        strcmp(c->orion_auth, "bearer") != 0)
        return fail(l, "orion-auth must be x-auth-token or bearer");
    if (strcmp(c->http_listen, "off") != 0) {
        char host[256], port[8];
        if (admin_http_parse_listen(c->http_listen, host, sizeof host, port,
                                    sizeof port) != SPOT_OK)
            return fail(l, "http-listen must be host:port, [ipv6]:port or "
                           "off");
    }
    if (*c->data_dir == '\0')
        return fail(l, "data-dir must not be empty");
    enum log_level lvl;
    if (log_level_parse(c->log_level, &lvl) != SPOT_OK)
        return fail(l, "log-level must be error, warn, info or debug");
    enum log_format fmt;
    if (log_format_parse(c->log_format, &fmt) != SPOT_OK)
        return fail(l, "log-format must be text, logfmt or json");
    if (c->orion_ca && access(c->orion_ca, R_OK) != 0)
        return fail(l, "orion-ca: cannot read %s: %s", c->orion_ca,
                    strerror(errno));
    /* empty strings mean "off" for the sinks */
    char **offable[] = {&c->pg_url, &c->orion_url, &c->ngsi_ld_url};
    for (size_t i = 0; i < 3; i++) {
        if (*offable[i] && **offable[i] == '\0') {
            free(*offable[i]);
            *offable[i] = NULL;
        }
    }
    return SPOT_OK;
}

static int apply_defaults(struct loader *l)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (options[i].def == NULL)
            continue;
        int rc = set_value(l, i, options[i].def, LAYER_DEFAULT);
        if (rc != SPOT_OK)
            return rc;
    }
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    char id[300];
    snprintf(id, sizeof id, "spotagent-%s", host);
    l->c->mqtt_client_id = dup_str(id);
    return l->c->mqtt_client_id ? SPOT_OK : SPOT_ENOMEM;
}

int config_load(struct agent_config **out, int argc, char **argv, char *err,
                size_t errlen)
{
    struct loader l = {.err = err, .errlen = errlen};
    l.c = calloc(1, sizeof *l.c);
    if (l.c == NULL)
        return SPOT_ENOMEM;
    int rc = apply_defaults(&l);
    if (rc == SPOT_OK)
        rc = apply_flags(&l, argc, argv, 1);
    if (rc == SPOT_OK && l.c->config_path == NULL) {
        const char *p = getenv("SPOTAGENT_CONFIG");
        if (p != NULL && *p != '\0')
            rc = set_value(&l, 0, p, LAYER_ENV);
    }
    if (rc == SPOT_OK && l.c->config_path != NULL)
        rc = apply_file(&l, l.c->config_path);
    else if (rc == SPOT_OK)
        rc = groups_new(&l.c->groups, NULL, err, errlen);
    if (rc == SPOT_OK && l.c->devices == NULL)
        rc = devices_new(&l.c->devices, NULL, err, errlen);
    if (rc == SPOT_OK)
        rc = apply_env(&l);
    if (rc == SPOT_OK)
        rc = apply_flags(&l, argc, argv, 0);
    if (rc == SPOT_OK && !l.c->help && !l.c->version)
        rc = validate(&l);
    if (rc != SPOT_OK) {
        if (rc == SPOT_ENOMEM)
            snprintf(err, errlen, "out of memory");
        config_free(l.c);
        return rc;
    }
    *out = l.c;
    return SPOT_OK;
}

void config_free(struct agent_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == OPT_STR)
            free(*str_slot(c, &options[i]));
    clear_topics(c);
    groups_free(c->groups);
    devices_free(c->devices);
    free(c);
}

void config_print_help(FILE *f)
{
    fprintf(f, "Usage: spotagent [OPTION]...\n"
               "Ingests Libelium Smart Spot measurements from MQTT, validates "
               "them and stores\nthem in PostgreSQL and/or forwards them to "
               "NGSI context brokers.\n\n"
               "Every option may also be set as the environment variable "
               "SPOTAGENT_<OPTION>\n(upper snake case) or as a snake_case key "
               "of the --config file.\nPrecedence: flag > environment > file "
               "> default. Secrets marked * may be\ngiven as "
               "SPOTAGENT_<OPTION>_FILE naming a file.\n\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        char left[64];
        snprintf(left, sizeof left, "  --%s%s%s", o->flag,
                 o->type == OPT_BOOL ? "" : " VALUE", o->secret ? " *" : "");
        fprintf(f, "%-34s %s", left, o->help);
        if (o->def)
            fprintf(f, " [%s]", o->def);
        fputc('\n', f);
    }
}

/* Whether option o differs between a and b. */
static int option_differs(const struct option_def *o,
                          const struct agent_config *a,
                          const struct agent_config *b)
{
    const char *pa = (const char *)a + o->off, *pb = (const char *)b + o->off;
    switch (o->type) {
    case OPT_STR: {
        const char *sa = *(char *const *)(const void *)pa;
        const char *sb = *(char *const *)(const void *)pb;
        return (sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0);
    }
    case OPT_INT:
        return *(const int *)(const void *)pa != *(const int *)(const void *)pb;
    case OPT_LIST:
        if (a->n_mqtt_topics != b->n_mqtt_topics)
            return 1;
        for (int i = 0; i < a->n_mqtt_topics; i++)
            if (strcmp(a->mqtt_topics[i], b->mqtt_topics[i]) != 0)
                return 1;
        return 0;
    case OPT_BOOL:
        return 0;
    }
    return 0;
}

void config_log_changes(const struct agent_config *running,
                        const struct agent_config *fresh)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_def *o = &options[i];
        if (o->flag_only || !option_differs(o, running, fresh))
            continue;
        if (strcmp(o->flag, "log-level") == 0 ||
            strcmp(o->flag, "log-format") == 0)
            log_msg(LOG_INFO, "config", "reload: --%s applied", o->flag);
        else
            log_msg(LOG_WARN, "config",
                    "reload: --%s changed; it takes effect after a restart",
                    o->flag);
    }
}
