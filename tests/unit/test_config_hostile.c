/* The agent's configuration (config.c), hostile side: values refused with a
 * clear, one-line message (what --check-config prints and exits 2 on), secrets
 * from *_FILE variables, and hostile configuration files. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spot/err.h"
#include "config.h"

static char tmpdir[] = "/tmp/spot-config-test.XXXXXX";

static void setup(void)
{
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config_hostile, .init = setup, .fini = teardown);

/* config_load over NULL-terminated flags (copied: argv is writable);
 * returns its result, the message in err. */
static int load(char *err, size_t errlen, struct agent_config **out, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = strdup("spotagent");
    va_list ap;
    va_start(ap, out);
    for (const char *a; argc < 31 && (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    int rc = config_load(out, argc, argv, err, errlen);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
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

static const char *write_tmp(const char *name, const void *data, size_t len)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    return path;
}

Test(config_hostile, bad_values_are_refused_by_name)
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
Test(config_hostile, urls_need_a_host_and_a_real_port)
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

Test(config_hostile, topic_filters_follow_mqtt)
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

Test(config_hostile, secret_files)
{
    char err[512];
    struct agent_config *c = NULL;
    const char *p = write_tmp("pw", "s3cret\n", 7);
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
    p = write_tmp("nul", "ab\0cd", 5);
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", p, 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_ECONFIG);
    cr_assert(strstr(err, "NUL") != NULL, "%s", err);

    char big[5000];
    memset(big, 'x', sizeof big);
    p = write_tmp("big", big, sizeof big);
    setenv("SPOTAGENT_MQTT_PASSWORD_FILE", p, 1);
    cr_assert_eq(load(err, sizeof err, &c, "--mqtt-username", "u", NULL),
                 SPOT_ECONFIG);
    cr_assert(strstr(err, "longer than") != NULL, "%s", err);
}

/* Found by fuzzing and by hand: yajl_tree_free() recurses once per level,
 * so half a million '[' crashed --check-config (SIGSEGV). */
Test(config_hostile, deeply_nested_file_is_refused)
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
    const char *p = write_tmp("deep.json", text, n);
    free(text);
    char err[512];
    struct agent_config *c = NULL;
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_ECONFIG);
    cr_assert(strstr(err, "deeper than 64 levels") != NULL, "%s", err);

    /* legitimate nesting is fine */
    const char ok[] = "{\"devices\":{\"d1\":{\"location\":[1,2],"
                      "\"info\":{\"a\":{\"b\":[[1]]}}}}}";
    p = write_tmp("ok.json", ok, sizeof ok - 1);
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_OK, "%s",
                 err);
    config_free(c);
}

Test(config_hostile, hostile_files)
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
            write_tmp("h.json", cases[i].text, strlen(cases[i].text));
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
Test(config_hostile, file_errors_are_prefixed_once)
{
    const char *p = write_tmp("u.json", "{\"mqtt_urll\":1}", 15);
    char err[512];
    struct agent_config *c = NULL;
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_ECONFIG);
    cr_assert_str_eq(err, "config: unknown key \"mqtt_urll\"");
    p = write_tmp("g.json", "{\"service_groups\":[{\"apikey\":\"\"}]}", 33);
    cr_assert_eq(load(err, sizeof err, &c, "--config", p, NULL), SPOT_ECONFIG);
    cr_assert(strncmp(err, "config: ", 8) == 0 &&
                  strncmp(err + 8, "config: ", 8) != 0,
              "%s", err);
}
