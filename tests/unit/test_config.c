/*
 * Agent configuration (src/agent/config.c): defaults, the layering
 * flag > environment > file > default, *_FILE secrets, the JSON file's
 * keys and types, validation messages and the generated --help; then the
 * hostile side: values --check-config must refuse with a clear one-line
 * message, odd secret files, deep and malformed configuration files.
 * Criterion runs each test in its own process, so setenv() does not leak
 * between tests.
 */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spot/err.h"
#include "config.h"

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spot-config-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = make_tmpdir, .fini = remove_tmpdir);

/* Writes len bytes to a file in the test's directory; returns its path
 * (a static buffer per slot, so up to 4 paths live at once). */
static const char *write_bytes(int slot, const char *name, const void *data,
                               size_t len)
{
    static char paths[4][128];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmpdir, name);
    FILE *f = fopen(paths[slot], "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return paths[slot];
}

static const char *write_file(int slot, const char *name, const char *text)
{
    return write_bytes(slot, name, text, strlen(text));
}

/* Runs config_load over "spotagent" + args (NULL-terminated; NULL for
 * none), on copies since argv is not const. */
static int run_load(const char *const *args, struct agent_config **c, char *err,
                    size_t errlen)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup("spotagent");
    for (size_t i = 0; args && args[i]; i++)
        argv[argc++] = strdup(args[i]);
    for (int i = 0; i < argc; i++)
        cr_assert_not_null(argv[i]);
    int rc = config_load(c, argc, argv, err, errlen);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

static struct agent_config *load_ok(const char *const *args)
{
    struct agent_config *c = NULL;
    char err[512] = "";
    int rc = run_load(args, &c, err, sizeof err);
    cr_assert_eq(rc, SPOT_OK, "config_load: %s", err);
    cr_assert_not_null(c);
    return c;
}

/* Asserts that loading fails with SPOT_ECONFIG and a message holding
 * part. */
static void load_refused(const char *const *args, const char *part)
{
    struct agent_config *c = NULL;
    char err[512] = "";
    int rc = run_load(args, &c, err, sizeof err);
    cr_assert_eq(rc, SPOT_ECONFIG, "expected a refusal mentioning \"%s\"",
                 part);
    cr_assert_null(c);
    cr_assert_not_null(strstr(err, part), "message \"%s\" lacks \"%s\"", err,
                       part);
}

/* config_load over NULL-terminated flags; returns its result, the
 * message in err. */
static int load(char *err, size_t errlen, struct agent_config **out, ...)
{
    const char *args[31];
    size_t n = 0;
    va_list ap;
    va_start(ap, out);
    for (const char *a; n < 30 && (a = va_arg(ap, const char *)) != NULL;)
        args[n++] = a;
    va_end(ap);
    args[n] = NULL;
    err[0] = '\0';
    return run_load(args, out, err, errlen);
}

static void expect_refused(const char *flag, const char *value,
                           const char *want)
{
    char err[512];
    struct agent_config *c = NULL;
    int rc = load(err, sizeof err, &c, flag, value, NULL);
    cr_assert_eq(rc, SPOT_ECONFIG, "%s %s accepted", flag, value);
    cr_assert_null(c);
    cr_assert(strstr(err, want) != NULL, "%s %s: \"%s\" lacks \"%s\"", flag,
              value, err, want);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
}

static void expect_accepted(const char *flag, const char *value)
{
    char err[512];
    struct agent_config *c = NULL;
    int rc = load(err, sizeof err, &c, flag, value, NULL);
    cr_assert_eq(rc, SPOT_OK, "%s %s: %s", flag, value, err);
    config_free(c);
}

Test(config, defaults_are_the_contract)
{
    struct agent_config *c = load_ok(NULL);
    cr_assert_str_eq(c->mqtt_url, "mqtt://127.0.0.1:1883");
    cr_assert_eq(c->mqtt_qos, 1);
    cr_assert_eq(c->n_mqtt_topics, 1);
    cr_assert_str_eq(c->mqtt_topics[0], "/+/+/attrs");
    cr_assert_str_eq(c->pg_schema, "public");
    cr_assert_null(c->pg_url);
    cr_assert_null(c->orion_url);
    cr_assert_null(c->ngsi_ld_url);
    cr_assert_str_eq(c->ngsi_mapping, "sdm");
    cr_assert_str_eq(c->orion_auth, "x-auth-token");
    cr_assert_str_eq(c->http_listen, "127.0.0.1:8080");
    cr_assert_str_eq(c->data_dir, "./spotagent-data");
    cr_assert_str_eq(c->log_level, "info");
    cr_assert_eq(c->fsync_interval_ms, 100);
    cr_assert_eq(c->journal_max_mb, 1024);
    cr_assert_eq(strncmp(c->mqtt_client_id, "spotagent-", 10), 0);
    cr_assert_gt(strlen(c->mqtt_client_id), 10, "hostname in the client id");
    config_free(c);
}

Test(config, flag_beats_environment_beats_file)
{
    const char *file =
        write_file(0, "c.json",
                   "{\"mqtt_url\":\"mqtt://file:1\",\"pg_schema\":\"fromfile\","
                   "\"log_level\":\"debug\",\"journal_max_mb\":7}");
    setenv("SPOTAGENT_MQTT_URL", "mqtt://env:2", 1);
    setenv("SPOTAGENT_PG_SCHEMA", "fromenv", 1);
    const char *args[] = {"--config", file, "--mqtt-url=mqtt://flag:3", NULL};
    struct agent_config *c = load_ok(args);
    cr_assert_str_eq(c->mqtt_url, "mqtt://flag:3");
    cr_assert_str_eq(c->pg_schema, "fromenv");
    cr_assert_str_eq(c->log_level, "debug");
    cr_assert_eq(c->journal_max_mb, 7);
    config_free(c);
}

Test(config, config_file_from_the_environment)
{
    const char *file = write_file(0, "c.json", "{\"mqtt_qos\":0}");
    setenv("SPOTAGENT_CONFIG", file, 1);
    struct agent_config *c = load_ok(NULL);
    cr_assert_eq(c->mqtt_qos, 0);
    config_free(c);
}

Test(config, topics_from_each_layer)
{
    setenv("SPOTAGENT_MQTT_TOPIC", "/a/+/attrs,/b/+/attrs", 1);
    struct agent_config *c = load_ok(NULL);
    cr_assert_eq(c->n_mqtt_topics, 2);
    cr_assert_str_eq(c->mqtt_topics[1], "/b/+/attrs");
    config_free(c);

    /* repeated flags accumulate and replace the environment's list */
    const char *args[] = {"--mqtt-topic", "/x/+/attrs", "--mqtt-topic",
                          "/y/+/attrs", NULL};
    c = load_ok(args);
    cr_assert_eq(c->n_mqtt_topics, 2);
    cr_assert_str_eq(c->mqtt_topics[0], "/x/+/attrs");
    cr_assert_str_eq(c->mqtt_topics[1], "/y/+/attrs");
    config_free(c);

    unsetenv("SPOTAGENT_MQTT_TOPIC");
    const char *file =
        write_file(0, "c.json", "{\"mqtt_topic\":[\"/f/+/attrs\"]}");
    const char *args2[] = {"--config", file, NULL};
    c = load_ok(args2);
    cr_assert_eq(c->n_mqtt_topics, 1);
    cr_assert_str_eq(c->mqtt_topics[0], "/f/+/attrs");
    config_free(c);
}

Test(config, secret_from_file_without_trailing_newline)
{
    const char *path = write_file(0, "token", "s3cr3t\n");
    setenv("SPOTAGENT_ORION_TOKEN_FILE", path, 1);
    const char *pg = write_file(1, "pg", "host=db dbname=city\r\n");
    setenv("SPOTAGENT_PG_URL_FILE", pg, 1);
    struct agent_config *c = load_ok(NULL);
    cr_assert_str_eq(c->orion_token, "s3cr3t");
    cr_assert_str_eq(c->pg_url, "host=db dbname=city");
    config_free(c);
}

Test(config, secret_file_missing_names_the_variable)
{
    char path[128];
    snprintf(path, sizeof path, "%s/absent", tmpdir);
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", path, 1);
    load_refused(NULL, "SPOTAGENT_MQTT_PASSWORD_FILE");
}

Test(config, non_secret_has_no_file_variant)
{
    /* only secrets read *_FILE; for others the variable is ignored */
    setenv("SPOTAGENT_MQTT_URL_FILE", "/nonexistent", 1);
    struct agent_config *c = load_ok(NULL);
    cr_assert_str_eq(c->mqtt_url, "mqtt://127.0.0.1:1883");
    config_free(c);
}

Test(config, integers_are_checked_against_their_bounds)
{
    const char *a1[] = {"--mqtt-qos", "3", NULL};
    load_refused(a1, "mqtt-qos");
    const char *a2[] = {"--fsync-interval-ms", "-1", NULL};
    load_refused(a2, "fsync-interval-ms");
    const char *a3[] = {"--journal-max-mb", "12x", NULL};
    load_refused(a3, "journal-max-mb");
    setenv("SPOTAGENT_JOURNAL_MAX_MB", "0", 1);
    load_refused(NULL, "journal-max-mb");
}

Test(config, command_line_errors)
{
    const char *a1[] = {"--no-such-option", NULL};
    load_refused(a1, "unknown option");
    const char *a2[] = {"--mqtt-url", NULL};
    load_refused(a2, "needs a value");
    const char *a3[] = {"--check-config=yes", NULL};
    load_refused(a3, "takes no value");
    const char *a4[] = {"stray", NULL};
    load_refused(a4, "unexpected argument");
}

Test(config, file_errors)
{
    const char *bad = write_file(0, "bad.json", "{\"mqtt_url\": ");
    const char *a1[] = {"--config", bad, NULL};
    load_refused(a1, "not valid JSON");
    const char *arr = write_file(1, "arr.json", "[1,2]");
    const char *a2[] = {"--config", arr, NULL};
    load_refused(a2, "JSON object");
    const char *unk = write_file(2, "unk.json", "{\"mqtt_uri\":\"x\"}");
    const char *a3[] = {"--config", unk, NULL};
    load_refused(a3, "unknown key \"mqtt_uri\"");
    const char *typ = write_file(3, "typ.json", "{\"mqtt_qos\":true}");
    const char *a4[] = {"--config", typ, NULL};
    load_refused(a4, "wrong type");
    const char *a5[] = {"--config", "/nonexistent/spot.json", NULL};
    load_refused(a5, "cannot open");
}

Test(config, flag_only_options_are_not_file_keys)
{
    const char *f = write_file(0, "c.json", "{\"check_config\":true}");
    const char *args[] = {"--config", f, NULL};
    load_refused(args, "unknown key");
}

Test(config, validation_messages)
{
    const char *a1[] = {"--mqtt-url", "tcp://x:1883", NULL};
    load_refused(a1, "mqtt-url");
    const char *a2[] = {"--mqtt-url", "mqtt://", NULL};
    load_refused(a2, "name a host");
    const char *a3[] = {"--ngsi-mapping", "ld", NULL};
    load_refused(a3, "ngsi-mapping");
    const char *a4[] = {"--orion-auth", "basic", NULL};
    load_refused(a4, "orion-auth must be x-auth-token or bearer");
    const char *a5[] = {"--mqtt-password", "p", NULL};
    load_refused(a5, "mqtt-password needs mqtt-username");
    const char *a6[] = {"--pg-schema", "Public", NULL};
    load_refused(a6, "pg-schema");
    const char *a7[] = {"--orion-url", "orion:1026", NULL};
    load_refused(a7, "orion-url must start with http://");
    const char *a8[] = {"--log-level", "verbose", NULL};
    load_refused(a8, "log-level");
    const char *a9[] = {"--http-listen", "8080", NULL};
    load_refused(a9, "http-listen");
    const char *a10[] = {"--mqtt-share-group", "a/b", NULL};
    load_refused(a10, "mqtt-share-group");
}

Test(config, tls_files_need_a_tls_url)
{
    const char *ca = write_file(0, "ca.pem", "x");
    const char *a1[] = {"--mqtt-ca", ca, NULL};
    load_refused(a1, "need a TLS URL");
    const char *a2[] = {"--mqtt-url", "mqtts://b:8883", "--mqtt-cert", ca,
                        NULL};
    load_refused(a2, "go together");
    const char *a3[] = {"--mqtt-url", "mqtts://b:8883", "--mqtt-ca",
                        "/nonexistent/ca.pem", NULL};
    load_refused(a3, "cannot read /nonexistent/ca.pem");
    const char *a4[] = {"--mqtt-url", "mqtts://b:8883", "--mqtt-ca", ca, NULL};
    struct agent_config *c = load_ok(a4);
    cr_assert_str_eq(c->mqtt_ca, ca);
    config_free(c);
}

Test(config, empty_sink_urls_mean_off)
{
    setenv("SPOTAGENT_PG_URL", "", 1);
    const char *args[] = {"--orion-url", "", NULL};
    struct agent_config *c = load_ok(args);
    cr_assert_null(c->pg_url);
    cr_assert_null(c->orion_url);
    config_free(c);
}

Test(config, help_lists_every_option_with_defaults)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    config_print_help(f);
    fclose(f);
    static const char *const flags[] = {"--config",
                                        "--mqtt-url",
                                        "--mqtt-username",
                                        "--mqtt-password",
                                        "--mqtt-ca",
                                        "--mqtt-cert",
                                        "--mqtt-key",
                                        "--mqtt-client-id",
                                        "--mqtt-topic",
                                        "--mqtt-qos",
                                        "--mqtt-share-group",
                                        "--pg-url",
                                        "--pg-schema",
                                        "--orion-url",
                                        "--ngsi-ld-url",
                                        "--ngsi-mapping",
                                        "--orion-token",
                                        "--orion-auth",
                                        "--http-listen",
                                        "--data-dir",
                                        "--log-level",
                                        "--check-config",
                                        "--fsync-interval-ms",
                                        "--journal-max-mb",
                                        "--help",
                                        "--version"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert_not_null(strstr(text, flags[i]), "--help lacks %s", flags[i]);
    cr_assert_not_null(strstr(text, "[mqtt://127.0.0.1:1883]"));
    cr_assert_not_null(strstr(text, "[/+/+/attrs]"));
    cr_assert_not_null(strstr(text, "SPOTAGENT_"));
    free(text);
}

Test(config, help_and_version_skip_validation)
{
    /* --help must work even when the rest of the configuration is bad */
    const char *args[] = {"--mqtt-url", "bogus", "--help", NULL};
    struct agent_config *c = load_ok(args);
    cr_assert(c->help);
    config_free(c);
}

Test(config, bad_values_are_refused_by_name)
{
    expect_refused("--mqtt-qos", "3", "mqtt-qos");
    expect_refused("--mqtt-qos", "1x", "mqtt-qos");
    expect_refused("--journal-max-mb", "0", "journal-max-mb");
    expect_refused("--fsync-interval-ms", "-1", "fsync-interval-ms");
    expect_refused("--mqtt-url", "http://broker", "mqtt-url");
    expect_refused("--pg-schema", "Bad-Name", "pg-schema");
    expect_refused("--log-level", "loud", "log-level");
    expect_refused("--http-listen", "nohost", "http-listen");
    expect_refused("--data-dir", "", "data-dir");
    expect_refused("--ngsi-mapping", "other", "ngsi-mapping");
}

/* Before: accepted by --check-config, then failing for ever at run time
 * (connect retries to port 99999, a subscription the broker refuses,
 * NGSI requests to no host). */
Test(config, urls_need_a_host_and_a_real_port)
{
    expect_refused("--mqtt-url", "mqtt://host:99999", "port in 1..65535");
    expect_refused("--mqtt-url", "mqtt://host:0", "mqtt-url");
    expect_refused("--mqtt-url", "mqtt://host:", "mqtt-url");
    expect_refused("--mqtt-url", "mqtt://host:18x3", "mqtt-url");
    expect_refused("--mqtt-url", "mqtt://:1883", "name a host");
    expect_refused("--mqtt-url", "mqtt://u:p@", "name a host");
    expect_refused("--mqtt-url", "mqtt://[::1", "mqtt-url");
    expect_refused("--orion-url", "http://", "orion-url");
    expect_refused("--ngsi-ld-url", "https://:1026", "ngsi-ld-url");
    expect_accepted("--mqtt-url", "mqtt://broker");
    expect_accepted("--mqtt-url", "mqtt://u:p@broker:1883");
    expect_accepted("--mqtt-url", "mqtt://[::1]:1883");
    expect_accepted("--mqtt-url", "ws://broker:8080/mqtt");
    expect_accepted("--orion-url", "https://orion.example:1026/");
}

Test(config, topic_filters_follow_mqtt)
{
    expect_refused("--mqtt-topic", "a/#/b", "'#' must be the whole last");
    expect_refused("--mqtt-topic", "a#", "'#'");
    expect_refused("--mqtt-topic", "a+/b", "'+' must be a whole level");
    expect_refused("--mqtt-topic", "/+x/attrs", "'+'");
    /* where the agent's own dead-letter records live: a publisher must not
     * be able to forge them */
    expect_refused("--mqtt-topic", "$spotagent/dead/#", "agent's own");
    expect_refused("--mqtt-topic", "$spotagent", "agent's own");
    expect_accepted("--mqtt-topic", "#");
    expect_accepted("--mqtt-topic", "/+/+/attrs");
    expect_accepted("--mqtt-topic", "+");
    expect_accepted("--mqtt-topic", "$spotagentx/#");
}

Test(config, secret_files)
{
    char err[512];
    struct agent_config *c = NULL;
    const char *p = write_bytes(0, "pw", "s3cret\n", 7);
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", p, 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_OK, "%s", err);
    cr_assert_str_eq(c->mqtt_password, "s3cret");
    config_free(c);

    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", "/nonexistent/pw", 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_ECONFIG);
    cr_assert(strstr(err, "SPOTAGENT_MQTT_PASSWORD_FILE: cannot open "
                          "/nonexistent/pw: No such file") != NULL,
              "%s", err);

    /* a directory: it said "is longer than 4095 bytes" */
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", tmpdir, 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_ECONFIG);
    cr_assert(strstr(err, "cannot read") != NULL &&
                  strstr(err, "Is a directory") != NULL,
              "%s", err);

    /* a NUL would cut the secret silently */
    p = write_bytes(0, "nul", "ab\0cd", 5);
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", p, 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_ECONFIG);
    cr_assert(strstr(err, "NUL") != NULL, "%s", err);

    char big[5000];
    memset(big, 'x', sizeof big);
    p = write_bytes(0, "big", big, sizeof big);
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", p, 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_ECONFIG);
    cr_assert(strstr(err, "longer than") != NULL, "%s", err);
}

/* Found by fuzzing and by hand: yajl_tree_free() recurses once per level,
 * so half a million '[' crashed --check-config (SIGSEGV). */
Test(config, deeply_nested_file_is_refused)
{
    size_t depth = 300000;
    char *text = malloc(2 * depth + 16);
    cr_assert_not_null(text);
    size_t n = (size_t)snprintf(text, 16, "{\"devices\":");
    memset(text + n, '[', depth);
    n += depth;
    memset(text + n, ']', depth);
    n += depth;
    text[n++] = '}';
    const char *p = write_bytes(0, "deep.json", text, n);
    free(text);
    char err[512];
    struct agent_config *c = NULL;
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_ECONFIG);
    cr_assert(strstr(err, "deeper than 64 levels") != NULL, "%s", err);

    /* legitimate nesting is fine */
    const char ok[] = "{\"devices\":{\"d1\":{\"location\":[1,2],"
                      "\"info\":{\"a\":{\"b\":[[1]]}}}}}";
    p = write_bytes(0, "ok.json", ok, sizeof ok - 1);
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_OK, "%s",
                 err);
    config_free(c);
}

Test(config, hostile_files)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"", "not valid JSON"},
        {"[1]", "JSON object"},
        {"{\"mqtt_qos\": 1.5}", "wrong type"},
        {"{\"mqtt_qos\": 99999999999999999999}", "wrong type"},
        {"{\"mqtt_qos\": 4294967297}", "mqtt-qos"},
        {"{\"mqtt_topic\": [1]}", "must hold strings"},
        {"{\"mqtt_topic\": []}", "mqtt-topic"},
        {"{\"check_config\": true}", "unknown key"},
        {"{\"config\": \"x\"}", "unknown key"},
        {"{\"service_groups\": 5}", "service_groups"},
        {"{\"mqtt_url\": \"mqtt://a\"} trailing", "not valid JSON"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p =
            write_bytes(0, "h.json", cases[i].text, strlen(cases[i].text));
        char err[512];
        struct agent_config *c = NULL;
        cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL),
                     SPOT_ECONFIG, "accepted: %s", cases[i].text);
        cr_assert(strstr(err, cases[i].want) != NULL, "%s: \"%s\" lacks %s",
                  cases[i].text, err, cases[i].want);
        cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    }
}

/* Errors of the file's own keys said "config: config: ..." (the prefix
 * added twice). */
Test(config, file_errors_are_prefixed_once)
{
    const char *p = write_bytes(0, "u.json", "{\"mqtt_urll\":1}", 15);
    char err[512];
    struct agent_config *c = NULL;
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_ECONFIG);
    cr_assert_str_eq(err, "config: unknown key \"mqtt_urll\"");
    p = write_bytes(0, "g.json", "{\"service_groups\":[{\"apikey\":\"\"}]}",
                    33);
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_ECONFIG);
    cr_assert(strncmp(err, "config: ", 8) == 0 &&
                  strncmp(err + 8, "config: ", 8) != 0,
              "%s", err);
}
