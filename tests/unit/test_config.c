/*
 * Agent configuration (src/agent/config.c): defaults, the layering
 * flag > environment > file > default, *_FILE secrets, the JSON file's
 * keys and types, validation messages and the generated --help. Criterion
 * runs each test in its own process, so setenv() does not leak between
 * tests.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Writes text to a file in the test's directory; returns its path
 * (static buffer per slot). */
static const char *write_file(int slot, const char *name, const char *text)
{
    static char paths[4][128];
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmpdir, name);
    FILE *f = fopen(paths[slot], "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return paths[slot];
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
