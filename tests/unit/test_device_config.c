/* The device configuration: every rule of the MQTT client resources 0-17
 * (wire contract §4: ids, ranges, defaults, the transport / URL scheme
 * rule, "required when"), the server URL, PEM checks with real keys, topic
 * prefix and composition, and the JSON file validated whole. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "spot/device_config.h"
#include "spot/device_topic.h"
#include "spot/err.h"
#include "spot/mqtt_config.h"
#include "spot/mqtt_url.h"
#include "spot/schema.h"

static struct schema_set *schemas;
static struct mqtt_config mc;
static struct config_report rep;

static void setup(void)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    cr_assert_eq(mqtt_config_init(&mc), SPOT_OK);
    config_report_init(&rep);
}

static void teardown(void)
{
    mqtt_config_clear(&mc);
    schema_set_free(schemas);
}

TestSuite(device_config, .init = setup, .fini = teardown);

/* Validates mc; returns the number of errors; the report must mention
 * `want` when given. */
static int check(const char *want)
{
    config_report_init(&rep);
    mqtt_config_validate(&mc, "dev1", &rep);
    if (want)
        cr_assert(strstr(rep.text, want) != NULL, "want \"%s\" in:\n%s", want,
                  rep.text);
    return rep.errors;
}

static void set_s(int id, const char *v)
{
    cr_assert_eq(mqtt_config_set_string(&mc, id, v, &rep), SPOT_OK);
}

static void set_i(int id, long long v)
{
    cr_assert_eq(mqtt_config_set_int(&mc, id, v, &rep), SPOT_OK);
}

Test(device_config, defaults_of_section_4)
{
    cr_assert_eq(mc.enable, false);
    cr_assert_eq(mc.transport, 1);
    cr_assert_str_eq(mc.server, "mqtt://iot.eclipse.org");
    cr_assert_eq(mc.port, 1883);
    cr_assert_eq(mc.keep_alive, 120);
    cr_assert_null(mc.lwt_topic);
    cr_assert_eq(mc.lwt_qos, 0);
    cr_assert_eq(mc.lwt_retain, false);
    cr_assert_null(mc.lwt_message);
    cr_assert_null(mc.username);
    cr_assert_null(mc.password);
    cr_assert_null(mc.ca);
    cr_assert_eq(mc.qos, 1);
    cr_assert_null(mc.topic_prefix);
    /* valid as is; the only remark: the client is disabled */
    cr_assert_eq(check("resource 0 (enable) is false"), 0);
    cr_assert_eq(rep.warnings, 1);
    char uri[256];
    cr_assert_eq(mqtt_config_paho_uri(&mc, uri, sizeof uri), SPOT_OK);
    cr_assert_str_eq(uri, "tcp://iot.eclipse.org:1883");
}

Test(device_config, resources_by_id_and_name)
{
    static const char *const names[MQTT_RES_COUNT] = {
        "enable",         "transport",          "server",     "port",
        "keep_alive",     "lwt_topic",          "lwt_qos",    "lwt_retain",
        "lwt_message",    "reserved",           "username",   "password",
        "ca_certificate", "client_certificate", "client_key", "qos",
        "topic_prefix",   "client_status",
    };
    for (int id = 0; id < MQTT_RES_COUNT; id++) {
        char num[8];
        snprintf(num, sizeof num, "%d", id);
        cr_assert_eq(mqtt_res_find(num, strlen(num)), id);
        cr_assert_eq(mqtt_res_find(names[id], strlen(names[id])), id);
        cr_assert_str_eq(mqtt_res_def(id)->name, names[id]);
    }
    cr_assert_eq(mqtt_res_find("18", 2), -1);
    cr_assert_eq(mqtt_res_find("04", 2), -1);
    cr_assert_eq(mqtt_res_find("-1", 2), -1);
    cr_assert_eq(mqtt_res_find("keepalive", 9), -1);
}

Test(device_config, setters_check_types_reserved_and_read_only)
{
    cr_assert_eq(mqtt_config_set_int(&mc, MQTT_RES_SERVER, 1, &rep),
                 SPOT_EINVAL);
    cr_assert_eq(mqtt_config_set_string(&mc, MQTT_RES_PORT, "1883", &rep),
                 SPOT_EINVAL);
    cr_assert_eq(mqtt_config_set_bool(&mc, MQTT_RES_QOS, true, &rep),
                 SPOT_EINVAL);
    cr_assert_eq(mqtt_config_set_bool(&mc, MQTT_RES_RESERVED, true, &rep),
                 SPOT_EINVAL);
    cr_assert_eq(mqtt_config_set_bool(&mc, MQTT_RES_STATUS, true, &rep),
                 SPOT_EINVAL);
    cr_assert_eq(rep.errors, 5);
    cr_assert(strstr(rep.text, "resource 9 is reserved"));
    cr_assert(strstr(rep.text, "resource 17 (client_status) is read-only"));
    cr_assert(strstr(rep.text, "resource 3 (port) must be an integer"));
}

Test(device_config, transport_range)
{
    set_i(MQTT_RES_TRANSPORT, 0);
    cr_assert_geq(check("resource 1 (transport): 0 is outside 1..4"), 1);
    set_i(MQTT_RES_TRANSPORT, 5);
    cr_assert_geq(check("resource 1 (transport): 5 is outside 1..4"), 1);
}

Test(device_config, url_scheme_follows_transport)
{
    /* transport 1 and 2: mqtt:// */
    set_s(MQTT_RES_SERVER, "ws://broker.example");
    cr_assert_eq(check("transport 1 (TCP) needs a mqtt:// URL, not ws://"), 1);
    /* 3: ws:// */
    set_i(MQTT_RES_TRANSPORT, 3);
    cr_assert_eq(check(NULL), 0);
    set_s(MQTT_RES_SERVER, "mqtt://broker.example");
    cr_assert_eq(check("transport 3 (WebSocket) needs a ws:// URL"), 1);
    set_s(MQTT_RES_SERVER, "wss://broker.example/mqtt");
    cr_assert_eq(check("needs a ws:// URL, not wss://"), 1);
    /* 4: wss:// (and a CA) */
    set_i(MQTT_RES_TRANSPORT, 4);
    set_s(MQTT_RES_SERVER, "ws://broker.example/mqtt");
    cr_assert_eq(check("transport 4 (WebSocket over TLS) needs a wss:// URL"),
                 2);
    cr_assert(strstr(rep.text, "resource 12 (ca_certificate) is required"));
    /* unknown schemes */
    set_i(MQTT_RES_TRANSPORT, 1);
    set_s(MQTT_RES_SERVER, "tcp://broker.example");
    cr_assert_eq(check("unknown scheme"), 1);
    set_s(MQTT_RES_SERVER, "broker.example");
    cr_assert_eq(check("no scheme"), 1);
    set_s(MQTT_RES_SERVER, "");
    cr_assert_eq(check("resource 2 (server) is empty"), 1);
}

Test(device_config, port_belongs_to_resource_3)
{
    set_s(MQTT_RES_SERVER, "mqtt://127.0.0.1:1884");
    cr_assert_eq(check("the port goes in resource 3"), 1);
    set_s(MQTT_RES_SERVER, "mqtt://127.0.0.1");
    set_i(MQTT_RES_PORT, 0);
    cr_assert_eq(check("resource 3 (port): 0 is outside 1..65535"), 1);
    set_i(MQTT_RES_PORT, 65536);
    cr_assert_eq(check("65536 is outside"), 1);
    set_i(MQTT_RES_PORT, 8883);
    cr_assert_eq(check(NULL), 0);
    char uri[256];
    cr_assert_eq(mqtt_config_paho_uri(&mc, uri, sizeof uri), SPOT_OK);
    cr_assert_str_eq(uri, "tcp://127.0.0.1:8883");
    set_s(MQTT_RES_SERVER, "mqtt://127.0.0.1/some/path");
    cr_assert_eq(check("an mqtt:// URL has no path"), 1);
}

Test(device_config, keep_alive_20_to_6000)
{
    set_i(MQTT_RES_KEEP_ALIVE, 19);
    cr_assert_eq(check("resource 4 (keep_alive): 19 is outside 20..6000"), 1);
    set_i(MQTT_RES_KEEP_ALIVE, 6001);
    cr_assert_eq(check("6001 is outside 20..6000"), 1);
    set_i(MQTT_RES_KEEP_ALIVE, 20);
    cr_assert_eq(check(NULL), 0);
    set_i(MQTT_RES_KEEP_ALIVE, 6000);
    cr_assert_eq(check(NULL), 0);
}

Test(device_config, qos_0_to_2)
{
    for (int q = 0; q <= 2; q++) {
        set_i(MQTT_RES_QOS, q);
        cr_assert_eq(check(NULL), 0);
    }
    set_i(MQTT_RES_QOS, 3);
    cr_assert_eq(check("resource 15 (qos): 3 is outside 0..2"), 1);
    set_i(MQTT_RES_QOS, -1);
    cr_assert_eq(check("-1 is outside 0..2"), 1);
}

Test(device_config, last_will_fields)
{
    set_s(MQTT_RES_LWT_TOPIC, "/k/d/lwt");
    cr_assert_eq(check("resource 8 (lwt_message) is required when 5"), 1);
    set_s(MQTT_RES_LWT_MESSAGE, "offline");
    cr_assert_eq(check(NULL), 0);
    set_i(MQTT_RES_LWT_QOS, 3);
    cr_assert_eq(check("resource 6 (lwt_qos): 3 is outside 0..2"), 1);
    set_i(MQTT_RES_LWT_QOS, 2);
    cr_assert(mqtt_config_set_bool(&mc, MQTT_RES_LWT_RETAIN, true, &rep) ==
              SPOT_OK);
    cr_assert_eq(check(NULL), 0);
    set_s(MQTT_RES_LWT_TOPIC, "/k/+/lwt");
    cr_assert_eq(check("may not hold the wildcards"), 1);
    set_s(MQTT_RES_LWT_TOPIC, "");
    cr_assert_eq(check("resource 5 (lwt_topic) is empty"), 1);

    mqtt_config_clear(&mc);
    mqtt_config_init(&mc);
    set_s(MQTT_RES_LWT_MESSAGE, "offline");
    cr_assert_eq(check("resource 5 (lwt_topic) is required when 8"), 1);
    mqtt_config_clear(&mc);
    mqtt_config_init(&mc);
    set_i(MQTT_RES_LWT_QOS, 1);
    cr_assert_eq(check("need a Last Will"), 1);
}

Test(device_config, credentials)
{
    set_s(MQTT_RES_PASSWORD, "secret");
    cr_assert_eq(check("resource 11 (password) needs 10 (username)"), 1);
    cr_assert(strstr(rep.text, "secret") == NULL, "never print a secret");
    set_s(MQTT_RES_USERNAME, "spot");
    cr_assert_eq(check(NULL), 0);
    set_s(MQTT_RES_SERVER, "mqtt://u:p@broker");
    cr_assert_eq(check("credentials are given twice"), 2);
    cr_assert(strstr(rep.text, ":p@") == NULL);

    /* credentials from the URL, percent-decoded */
    mqtt_config_clear(&mc);
    mqtt_config_init(&mc);
    set_s(MQTT_RES_SERVER, "mqtt://us%40er:p%3Ass@broker");
    cr_assert_eq(check(NULL), 0);
    struct mqtt_url u;
    char why[128];
    cr_assert_eq(mqtt_url_parse(mc.server, &u, why, sizeof why), SPOT_OK);
    const char *user, *pass;
    mqtt_config_credentials(&mc, &u, &user, &pass);
    cr_assert_str_eq(user, "us@er");
    cr_assert_str_eq(pass, "p:ss");
    char uri[256];
    cr_assert_eq(mqtt_config_paho_uri(&mc, uri, sizeof uri), SPOT_OK);
    cr_assert_str_eq(uri, "tcp://broker:1883", "no credentials in the URI");
}

Test(device_config, url_parsing)
{
    struct mqtt_url u;
    char why[128];
    cr_assert_eq(mqtt_url_parse("ws://[::1]:9001/mqtt", &u, why, sizeof why),
                 SPOT_OK, "%s", why);
    cr_assert_str_eq(u.scheme, "ws");
    cr_assert_str_eq(u.host, "[::1]");
    cr_assert_eq(u.port, 9001);
    cr_assert_str_eq(u.path, "/mqtt");
    cr_assert_eq(mqtt_url_parse("MQTT://Host.example", &u, why, sizeof why),
                 SPOT_OK);
    cr_assert_str_eq(u.scheme, "mqtt");
    cr_assert_eq(u.port, -1);
    static const char *const bad[] = {
        "mqtt://",      "mqtt://host:0",     "mqtt://host:99999",
        "mqtt://ho st", "mqtt://host?x=1",   "mqtt://host#f",
        "mqtt://@host", "mqtt://u:%zz@host", "mqtt://host:12a",
        "http://host",  "mqtt://[::1",       "mqtt://ho$t",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(mqtt_url_parse(bad[i], &u, why, sizeof why), SPOT_EINVAL,
                     "%s", bad[i]);
}

Test(device_config, paho_uri_per_transport)
{
    char uri[256];
    set_i(MQTT_RES_PORT, 9001);
    set_i(MQTT_RES_TRANSPORT, 3);
    set_s(MQTT_RES_SERVER, "ws://broker/mqtt");
    cr_assert_eq(mqtt_config_paho_uri(&mc, uri, sizeof uri), SPOT_OK);
    cr_assert_str_eq(uri, "ws://broker:9001/mqtt");
    set_i(MQTT_RES_TRANSPORT, 4);
    set_s(MQTT_RES_SERVER, "wss://broker/mqtt");
    cr_assert_eq(mqtt_config_paho_uri(&mc, uri, sizeof uri), SPOT_OK);
    cr_assert_str_eq(uri, "wss://broker:9001/mqtt");
    set_i(MQTT_RES_TRANSPORT, 2);
    set_s(MQTT_RES_SERVER, "mqtt://broker");
    cr_assert_eq(mqtt_config_paho_uri(&mc, uri, sizeof uri), SPOT_OK);
    cr_assert_str_eq(uri, "ssl://broker:9001");
}

/* --- TLS resources with real keys ------------------------------------------
 */

static char *pem_of_key(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)n);
    BIO_free(b);
    return s;
}

static char *self_signed(EVP_PKEY *k)
{
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"spot-test", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509_sign(x, k, EVP_sha256());
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char *p;
    long len = BIO_get_mem_data(b, &p);
    char *s = strndup(p, (size_t)len);
    BIO_free(b);
    X509_free(x);
    return s;
}

Test(device_config, ca_required_for_transports_2_and_4)
{
    set_i(MQTT_RES_TRANSPORT, 2);
    cr_assert_eq(check("resource 12 (ca_certificate) is required for "
                       "transport 2 (TLS)"),
                 1);
    set_i(MQTT_RES_TRANSPORT, 4);
    set_s(MQTT_RES_SERVER, "wss://broker/mqtt");
    cr_assert_eq(check("required for transport 4 (WebSocket over TLS)"), 1);

    EVP_PKEY *k = EVP_EC_gen("P-256");
    cr_assert_not_null(k);
    char *ca = self_signed(k);
    set_s(MQTT_RES_CA, ca);
    cr_assert_eq(check(NULL), 0);
    set_i(MQTT_RES_TRANSPORT, 2);
    set_s(MQTT_RES_SERVER, "mqtt://broker");
    cr_assert_eq(check(NULL), 0);
    /* a CA for a plain transport is only a warning */
    set_i(MQTT_RES_TRANSPORT, 1);
    cr_assert_eq(check("resources 12-14 (certificates) are ignored"), 0);
    /* garbage, and a file that is missing */
    set_i(MQTT_RES_TRANSPORT, 2);
    set_s(MQTT_RES_CA, "-----BEGIN CERTIFICATE-----\nnope\n"
                       "-----END CERTIFICATE-----\n");
    cr_assert_eq(check("resource 12 (ca_certificate): no PEM certificate"), 1);
    set_s(MQTT_RES_CA, "/nonexistent/ca.pem");
    cr_assert_eq(check("/nonexistent/ca.pem: No such file"), 1);
    /* a file path */
    char path[] = "/tmp/spotca.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, ca, strlen(ca)), (ssize_t)strlen(ca));
    close(fd);
    set_s(MQTT_RES_CA, path);
    cr_assert_eq(check(NULL), 0);
    unlink(path);
    free(ca);
    EVP_PKEY_free(k);
}

Test(device_config, key_required_with_a_client_certificate)
{
    EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
    char *cert = self_signed(k1), *key1 = pem_of_key(k1),
         *key2 = pem_of_key(k2);
    set_i(MQTT_RES_TRANSPORT, 2);
    set_s(MQTT_RES_CA, cert);
    set_s(MQTT_RES_CERT, cert);
    cr_assert_eq(check("resource 14 (client_key) is required when 13"), 1);
    set_s(MQTT_RES_KEY, key2);
    cr_assert_eq(check("the client key does not belong to the client "
                       "certificate"),
                 1);
    set_s(MQTT_RES_KEY, key1);
    cr_assert_eq(check(NULL), 0);
    cr_assert(strstr(rep.text, "PRIVATE") == NULL);
    set_s(MQTT_RES_KEY, "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                        "-----END PRIVATE KEY-----\n");
    cr_assert_eq(check("resource 14 (client_key): not an unencrypted PEM "
                       "private key"),
                 1);
    /* a key alone */
    mqtt_config_clear(&mc);
    mqtt_config_init(&mc);
    set_i(MQTT_RES_TRANSPORT, 2);
    set_s(MQTT_RES_CA, cert);
    set_s(MQTT_RES_KEY, key1);
    cr_assert_eq(check("resource 14 (client_key) is set but 13"), 1);
    free(cert);
    free(key1);
    free(key2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* --- topic prefix and composition --------------------------------------------
 */

Test(device_config, topic_prefix_and_composition)
{
    struct device_topic t;
    char why[200], buf[SPOT_MAX_TOPIC_LEN + 1];
    cr_assert_eq(device_topic_init(&t, "/JRI9jTbEKJQS29y3bc8BC6/SmartSpot_AQ_1",
                                   NULL, why, sizeof why),
                 SPOT_OK, "%s", why);
    static const char *const want[SPOT_V_COUNT] = {
        "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs",
        "/JRI9jTbEKJQS29y3bc8BC6nlo/SmartSpot_AQ_1_NLO/attrs",
        "/JRI9jTbEKJQS29y3bc8BC6wto/SmartSpot_AQ_1_WTO/attrs",
        "/JRI9jTbEKJQS29y3bc8BC6cfo/SmartSpot_AQ_1_CFO/attrs",
        "/JRI9jTbEKJQS29y3bc8BC6cfe/SmartSpot_AQ_1_CFE/attrs",
        "/JRI9jTbEKJQS29y3bc8BC6dev/SmartSpot_AQ_1_DEV/attrs",
        "/JRI9jTbEKJQS29y3bc8BC6dho/SmartSpot_AQ_1_DHO/attrs",
    };
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        cr_assert_eq(
            device_topic_compose(&t, (enum spot_vertical)v, buf, sizeof buf),
            SPOT_OK);
        cr_assert_str_eq(buf, want[v]);
    }
    /* the default prefix */
    cr_assert_eq(device_topic_init(&t, NULL, "SN-0042", why, sizeof why),
                 SPOT_OK);
    cr_assert_eq(device_topic_compose(&t, SPOT_V_DHO, buf, sizeof buf),
                 SPOT_OK);
    cr_assert_str_eq(buf, "/smartspotdho/SN-0042_DHO/attrs");
    cr_assert_eq(device_topic_init(&t, "", "SN-0042", why, sizeof why),
                 SPOT_OK);
    cr_assert_str_eq(t.apikey, DEVICE_DEFAULT_APIKEY);

    static const char *const bad[] = {
        "k/d",    "/k",    "/k/d/e", "/k/",    "//d",
        "/k d/x", "/k/d#", "/k/d+",  "/k/<d>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(device_topic_init(&t, bad[i], NULL, why, sizeof why),
                     SPOT_EINVAL, "%s", bad[i]);
    /* a device id so long that "{device}_{CODE}" is no longer an id */
    char longp[SPOT_MAX_ID_LEN + 8];
    memset(longp, 'd', sizeof longp);
    memcpy(longp, "/k/", 3);
    longp[3 + SPOT_MAX_ID_LEN - 2] = '\0';
    cr_assert_eq(device_topic_init(&t, longp, NULL, why, sizeof why),
                 SPOT_EINVAL);

    mc.topic_prefix = strdup("/k/d/x");
    cr_assert_eq(check("resource 16 (topic_prefix): must look like"), 1);
}

/* --- the JSON file
 * ------------------------------------------------------------- */

static int parse(struct device_config *c, const char *json)
{
    cr_assert_eq(device_config_init(c), SPOT_OK);
    config_report_init(&rep);
    return device_config_parse(c, json, strlen(json), schemas, &rep);
}

Test(device_config, file_by_id_and_by_name)
{
    struct device_config c;
    int rc =
        parse(&c, "{\"mqtt_client\": {\"0\": true, \"transport\": 1,"
                  " \"2\": \"mqtt://127.0.0.1\", \"port\": 1884,"
                  " \"4\": 60, \"lwt_topic\": \"/k/d/lwt\", \"6\": 1,"
                  " \"lwt_retain\": true, \"8\": \"gone\", \"15\": 0,"
                  " \"topic_prefix\": \"/k/d\", \"username\": null},"
                  " \"device\": {\"serial_number\": \"SN1\","
                  " \"period_min\": 15, \"spool_max_kb\": 1024},"
                  " \"sensors\": {\"aqo\": {\"fields\": [\"no2-a4\"]},"
                  " \"dho\": true, \"cfe\": {\"random_mac_share\": 0.5}}}");
    cr_assert_eq(rc, SPOT_OK, "%s", rep.text);
    cr_assert(c.mqtt.enable);
    cr_assert_eq(c.mqtt.port, 1884);
    cr_assert_eq(c.mqtt.keep_alive, 60);
    cr_assert_eq(c.mqtt.lwt_qos, 1);
    cr_assert(c.mqtt.lwt_retain);
    cr_assert_str_eq(c.mqtt.lwt_message, "gone");
    cr_assert_eq(c.mqtt.qos, 0);
    cr_assert_null(c.mqtt.username);
    cr_assert_eq(c.dev.period_min, 15);
    cr_assert(c.sensors[SPOT_V_AQO].enabled);
    cr_assert_eq(c.sensors[SPOT_V_AQO].n_fields, 1);
    cr_assert(c.sensors[SPOT_V_DHO].enabled);
    cr_assert(!c.sensors[SPOT_V_NLO].enabled);
    cr_assert_eq(c.sensors[SPOT_V_CFE].random_mac_share, 0.5);
    char id[64];
    cr_assert_str_eq(device_config_client_id(&c, id, sizeof id), "d");
    device_config_clear(&c);
}

Test(device_config, file_is_validated_whole)
{
    struct device_config c;
    int rc = parse(&c, "{\"mqtt_client\": {\"keep_alive\": 5, \"4\": 100,"
                       " \"qos\": \"1\", \"transport\": 3, \"17\": true,"
                       " \"bogus\": 1, \"client_key\": \"/x\"},"
                       " \"device\": {\"period_min\": 0, \"colour\": 1,"
                       " \"seed\": -1},"
                       " \"sensors\": {\"xyz\": {}, \"aqo\": {\"fields\":"
                       " [\"no2\", \"TimeInstant\"], \"failure_rate\": 2},"
                       " \"cfo\": {\"fields\": [\"AvgDuration\"]},"
                       " \"nlo\": {\"driver\": \"i2c\"}}, \"extra\": 1}");
    cr_assert_eq(rc, SPOT_ECONFIG);
    static const char *const want[] = {
        "resource 4 (keep_alive) is given twice",
        "resource 15 (qos) must be an integer, not a string",
        "resource 17 (client_status) is read-only",
        "unknown resource \"bogus\"",
        "device.period_min: 0 is outside 1..10080",
        "unknown setting \"colour\"",
        "device.seed must not be negative",
        "unknown vertical \"xyz\"",
        "aqo has no field \"no2\"",
        "sensors.aqo.failure_rate: 2 is outside 0..1",
        "\"AvgDuration\" is an alias; use \"avgDuration\"",
        "no driver \"i2c\"",
        "unknown key \"extra\"",
        "resource 4 (keep_alive): 5 is outside 20..6000",
        "transport 3 (WebSocket) needs a ws:// URL",
        "resource 14 (client_key) is set but 13",
        "resource 14 (client_key): /x: No such file",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(rep.text, want[i]) != NULL, "want \"%s\" in:\n%s",
                  want[i], rep.text);
    cr_assert_eq(rep.errors, (int)(sizeof want / sizeof want[0]), "%s",
                 rep.text);
    device_config_clear(&c);
}

Test(device_config, file_errors_of_form)
{
    struct device_config c;
    cr_assert_eq(parse(&c, "{\"sensors\": {\"aqo\": {}"), SPOT_ECONFIG);
    cr_assert(strstr(rep.text, "not valid JSON"), "%s", rep.text);
    device_config_clear(&c);
    cr_assert_eq(parse(&c, "[1]"), SPOT_ECONFIG);
    cr_assert(strstr(rep.text, "must be a JSON object"));
    device_config_clear(&c);
    cr_assert_eq(parse(&c, "{}"), SPOT_ECONFIG);
    cr_assert(strstr(rep.text, "no sensor is configured"), "%s", rep.text);
    device_config_clear(&c);
    cr_assert_eq(parse(&c, "{\"sensors\": {\"aqo\": {\"fields\": \"all\"}},"
                           " \"mqtt_client\": {\"enable\": 1}}"),
                 SPOT_ECONFIG);
    cr_assert(strstr(rep.text, "resource 0 (enable) must be true or false, "
                               "not an integer"),
              "%s", rep.text);
    device_config_clear(&c);
    cr_assert_eq(device_config_init(&c), SPOT_OK);
    config_report_init(&rep);
    cr_assert_eq(device_config_load(&c, "/nonexistent.json", schemas, &rep),
                 SPOT_ECONFIG);
    cr_assert(strstr(rep.text, "/nonexistent.json: No such file"));
    device_config_clear(&c);
}

/* yajl_tree_free() recurses once per level: half a million '[' crashed
 * `spotdevice --check-config` (SIGSEGV). Refused before parsing now. */
Test(device_config, deeply_nested_file_is_refused)
{
    size_t depth = 300000;
    char *text = malloc(2 * depth + 32);
    cr_assert_not_null(text);
    size_t n = (size_t)snprintf(text, 32, "{\"mqtt_client\":");
    memset(text + n, '[', depth);
    n += depth;
    memset(text + n, ']', depth);
    n += depth;
    text[n++] = '}';
    struct device_config c;
    cr_assert_eq(device_config_init(&c), SPOT_OK);
    config_report_init(&rep);
    cr_assert_eq(device_config_parse(&c, text, n, schemas, &rep), SPOT_ECONFIG);
    cr_assert(strstr(rep.text, "nested deeper than 64") != NULL, "%s",
              rep.text);
    device_config_clear(&c);
    free(text);
}
