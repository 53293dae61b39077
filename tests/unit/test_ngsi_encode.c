/*
 * NGSI encoder: golden entities of the manufacturer's vectors in every
 * flavour (v2, LD) and mapping (sdm, compat), checked by hand against
 * ngsi-mapping.md and stored compact under tests/fixtures/ngsi/<flavour>-
 * <mapping>/<code>.json; then the edge cases (null and out-of-range
 * readings, forbidden characters, extra fields, ids, group overrides,
 * generic devices). SPOT_VECTORS names the vectors directory (default
 * tests/fixtures/vectors); the fixtures are its sibling "ngsi". With
 * SPOT_UPDATE_GOLDEN=1 the golden test rewrites the fixtures instead of
 * comparing (review the diff by hand before committing it).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/schema.h"
#include "devices.h"
#include "groups.h"
#include "ngsi_encode.h"
#include "validate.h"

#define TOPIC_AQO "/JRI9jTbEKJQS29y3bc8BC6aqo/SmartSpot_AQ_1_AQO/attrs"
#define TOPIC_DEV "/JRI9jTbEKJQS29y3bc8BC6dev/SmartSpot_AQ_1_DEV/attrs"
#define BASE                                                                   \
    "\"TimeInstant\":\"2023-03-20T13:50:00Z\",\"period\":5,"                   \
    "\"status\":\"connected\""

/* The fixed devices table of every test: one device with a location and
 * a structured address. */
static const char *const DEVICES_JSON =
    "{\"SmartSpot_AQ_1\":{\"location\":[-1.1307,37.9922],"
    "\"address\":{\"streetAddress\":\"Calle Mayor 1\","
    "\"addressLocality\":\"Murcia\",\"addressCountry\":\"ES\"}}}";

static struct schema_set *schemas;
static struct validator *val;
static struct devices *devs;
static struct groups *groups;
static struct ngsi_encoder *enc[2][2]; /* [flavour][mapping] */

static struct devices *devices_from(const char *json)
{
    char err[256];
    yajl_val root = yajl_tree_parse(json, err, sizeof err);
    cr_assert_not_null(root, "%s", err);
    struct devices *d;
    cr_assert_eq(devices_new(&d, root, err, sizeof err), SPOT_OK, "%s", err);
    yajl_tree_free(root); /* the table keeps a copy */
    return d;
}

static void setup_groups(const char *groups_json)
{
    char err[256];
    cr_assert_eq(schema_set_new(&schemas, err, sizeof err), SPOT_OK, "%s", err);
    if (groups_json != NULL) {
        yajl_val root = yajl_tree_parse(groups_json, err, sizeof err);
        cr_assert_not_null(root, "%s", err);
        cr_assert_eq(groups_new(&groups, root, err, sizeof err), SPOT_OK, "%s",
                     err);
        yajl_tree_free(root);
    }
    cr_assert_eq(validator_new(&val, schemas, groups), SPOT_OK);
    devs = devices_from(DEVICES_JSON);
    for (int f = 0; f < 2; f++)
        for (int m = 0; m < 2; m++)
            cr_assert_eq(ngsi_encoder_new(&enc[f][m], (enum ngsi_flavour)f,
                                          (enum ngsi_mapping)m, devs),
                         SPOT_OK);
}

static void setup(void)
{
    setup_groups(NULL);
}

static void setup_with_groups(void)
{
    setup_groups(
        "[{\"apikey\":\"JRI9jTbEKJQS29y3bc8BC6\"},"
        "{\"apikey\":\"custom\",\"entity_types\":{\"aqo\":\"AirQualityCustom\","
        "\"dev\":\"SmartSpotDevice\"}},"
        "{\"apikey\":\"legacy42\",\"generic\":true},"
        "{\"apikey\":\"things\",\"generic\":true,"
        "\"entity_types\":{\"generic\":\"Sensor\"}}]");
}

static void teardown(void)
{
    for (int f = 0; f < 2; f++)
        for (int m = 0; m < 2; m++)
            ngsi_encoder_free(enc[f][m]);
    devices_free(devs);
    validator_free(val);
    groups_free(groups);
    groups = NULL;
    schema_set_free(schemas);
}

TestSuite(ngsi, .init = setup, .fini = teardown);
TestSuite(ngsi_groups, .init = setup_with_groups, .fini = teardown);

/* --- helpers ------------------------------------------------------------- */

static const char *vectors_dir(void)
{
    const char *dir = getenv("SPOT_VECTORS");
    return dir ? dir : "tests/fixtures/vectors";
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = malloc(65536);
    cr_assert_not_null(buf);
    *len = fread(buf, 1, 65535, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static const struct record *run(const char *topic, const char *payload)
{
    const struct record *r;
    cr_assert_eq(validator_run(val, topic, strlen(topic),
                               (const unsigned char *)payload, strlen(payload),
                               1700000000000000, &r),
                 SPOT_OK);
    cr_assert(r->reason == REJECT_NONE || r->reason == REJECT_RANGE,
              "validation: %s (%s)", reject_reason_name(r->reason), r->detail);
    return r;
}

static const struct record *run_vector(const char *file, const char *code)
{
    char path[1024], topic[128];
    snprintf(path, sizeof path, "%s/%s", vectors_dir(), file);
    size_t len;
    char *p = read_file(path, &len);
    cr_assert_not_null(p, "cannot open %s", path);
    char upper[4] = {(char)(code[0] - 32), (char)(code[1] - 32),
                     (char)(code[2] - 32), 0};
    snprintf(topic, sizeof topic,
             "/JRI9jTbEKJQS29y3bc8BC6%s/SmartSpot_AQ_1_%s/attrs", code, upper);
    const struct record *r = run(topic, p);
    free(p);
    return r;
}

/* Encodes r; the entity text is returned NUL-terminated (static buffer). */
static const char *encode(const struct record *r, enum ngsi_flavour f,
                          enum ngsi_mapping m, struct ngsi_entity *out)
{
    static char text[262144];
    char why[256] = "";
    struct ngsi_entity ent;
    int rc = ngsi_encode(enc[f][m], r, &ent, why, sizeof why);
    cr_assert_eq(rc, SPOT_OK, "ngsi_encode: %s", why);
    cr_assert(ent.len < sizeof text);
    memcpy(text, ent.json, ent.len);
    text[ent.len] = '\0';
    if (out != NULL)
        *out = ent;
    return text;
}

/* The parsed entity; caller frees with yajl_tree_free. */
static yajl_val parse(const char *text)
{
    char err[256];
    yajl_val v = yajl_tree_parse(text, err, sizeof err);
    cr_assert_not_null(v, "entity is not JSON: %s\n%s", err, text);
    cr_assert(YAJL_IS_OBJECT(v));
    return v;
}

/* The node at a path of object keys (NULL-terminated), or NULL. */
static yajl_val at(yajl_val v, const char *a, const char *b, const char *c,
                   const char *d)
{
    const char *path[] = {a, b, c, d, NULL};
    return yajl_tree_get(v, path, yajl_t_any);
}

static void expect_str(yajl_val v, const char *want, const char *a,
                       const char *b, const char *c, const char *d)
{
    yajl_val n = at(v, a, b, c, d);
    cr_assert(n != NULL && YAJL_IS_STRING(n), "%s.%s.%s: not a string", a,
              b ? b : "", c ? c : "");
    cr_assert_str_eq(n->u.string, want, "%s.%s.%s", a, b ? b : "", c ? c : "");
}

static void expect_number_text(yajl_val v, const char *want, const char *a,
                               const char *b)
{
    yajl_val n = at(v, a, b, NULL, NULL);
    cr_assert(n != NULL && YAJL_IS_NUMBER(n), "%s.%s: not a number", a, b);
    cr_assert_str_eq(n->u.number.r, want, "%s.%s", a, b);
}

/* --- golden entities ----------------------------------------------------- */

static const char *const FLAVOUR[2] = {"v2", "ld"};
static const char *const MAPPING[2] = {"sdm", "compat"};

Test(ngsi, golden_vectors)
{
    static const char *const vec[][2] = {
        {"aqo.json", "aqo"},       {"nlo.json", "nlo"},
        {"wto.json", "wto"},       {"cfo.json", "cfo"},
        {"cfe.fixed.json", "cfe"}, {"dev.fixed.json", "dev"},
        {"dho.fixed.json", "dho"},
    };
    const char *update = getenv("SPOT_UPDATE_GOLDEN");
    int n = 0;
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        for (int f = 0; f < 2; f++) {
            for (int m = 0; m < 2; m++) {
                const struct record *r = run_vector(vec[i][0], vec[i][1]);
                cr_assert_eq(r->reason, REJECT_NONE);
                struct ngsi_entity ent;
                const char *got =
                    encode(r, (enum ngsi_flavour)f, (enum ngsi_mapping)m, &ent);
                cr_assert_eq(ent.skipped_attrs, 0);
                char path[1024];
                snprintf(path, sizeof path, "%s/../ngsi/%s-%s/%s.json",
                         vectors_dir(), FLAVOUR[f], MAPPING[m], vec[i][1]);
                if (update != NULL && strcmp(update, "1") == 0) {
                    FILE *out = fopen(path, "wb");
                    cr_assert_not_null(out, "cannot write %s", path);
                    fprintf(out, "%s\n", got);
                    fclose(out);
                    n++;
                    continue;
                }
                size_t len;
                char *want = read_file(path, &len);
                cr_assert_not_null(want, "cannot open %s", path);
                cr_assert(len > 0 && want[len - 1] == '\n',
                          "%s: no trailing newline", path);
                want[len - 1] = '\0';
                cr_assert_str_eq(got, want, "%s differs:\n got: %s\nwant: %s",
                                 path, got, want);
                free(want);
                n++;
            }
        }
    }
    cr_assert_eq(n, 28);
}

/* The mapping facts the fixtures encode, asserted one by one so that a
 * regenerated fixture cannot silently drift from the table. */
Test(ngsi, sdm_v2_mapping_facts)
{
    yajl_val v = parse(encode(run_vector("aqo.json", "aqo"), NGSI_FLAVOUR_V2,
                              NGSI_MAPPING_SDM, NULL));
    expect_str(v, "urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1", "id", NULL,
               NULL, NULL);
    expect_str(v, "DateTime", "TimeInstant", "type", NULL, NULL);
    expect_str(v, "2023-03-20T13:50:00.000Z", "TimeInstant", "value", NULL,
               NULL);
    cr_assert_null(at(v, "TimeInstant", "metadata", NULL, NULL));
    expect_str(v, "2023-03-20T13:50:00.000Z", "dateObserved", "value", NULL,
               NULL);
    expect_str(v, "Relationship", "refDevice", "type", NULL, NULL);
    expect_str(v, "urn:ngsi-ld:Device:SmartSpot_AQ_1", "refDevice", "value",
               NULL, NULL);
    expect_number_text(v, "28.586013793945312", "o3", "value");
    expect_str(v, "GQ", "o3", "metadata", "unitCode", "value");
    expect_str(v, "2023-03-20T13:50:00.000Z", "o3", "metadata", "TimeInstant",
               "value");
    expect_number_text(v, "15.33404541015625", "pm25", "value");
    expect_str(v, "MIN", "period", "metadata", "unitCode", "value");
    cr_assert_null(at(v, "status", NULL, NULL, NULL));
    cr_assert_null(at(v, "no2-a4", NULL, NULL, NULL));
    expect_str(v, "geo:json", "location", "type", NULL, NULL);
    expect_str(v, "Point", "location", "value", "type", NULL);
    yajl_val c = at(v, "location", "value", "coordinates", NULL);
    cr_assert(YAJL_IS_ARRAY(c) && c->u.array.len == 2);
    cr_assert_str_eq(c->u.array.values[0]->u.number.r, "-1.1307");
    cr_assert_str_eq(c->u.array.values[1]->u.number.r, "37.9922");
    expect_str(v, "StructuredValue", "address", "type", NULL, NULL);
    expect_str(v, "Murcia", "address", "value", "addressLocality", NULL);
    yajl_tree_free(v);

    v = parse(encode(run_vector("wto.json", "wto"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    expect_number_text(v, "0.67", "relativeHumidityInternal", "value");
    expect_str(v, "C62", "relativeHumidityInternal", "metadata", "unitCode",
               "value");
    expect_number_text(v, "18.05555534362793", "temperatureInternal", "value");
    expect_number_text(v, "980.83404541015625", "atmosphericPressure", "value");
    expect_number_text(v, "34", "windDirection", "value");
    expect_str(v, "DD", "windDirection", "metadata", "unitCode", "value");
    expect_number_text(v, "8.6999998092651367", "uVIndexMax", "value");
    expect_number_text(v, "168750", "illuminance", "value");
    expect_str(v, "H67", "precipitationRate15min", "metadata", "unitCode",
               "value");
    expect_str(v, "CEL", "feelsLikeTemperature", "metadata", "unitCode",
               "value");
    yajl_tree_free(v);

    v = parse(encode(run_vector("nlo.json", "nlo"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    expect_str(v, "2023-03-20T13:45:00.000Z", "dateObservedFrom", "value", NULL,
               NULL);
    expect_str(v, "2023-03-20T13:48:00.000Z", "dateObservedTo", "value", NULL,
               NULL);
    expect_str(v, "2N", "LAeq", "metadata", "unitCode", "value");
    expect_number_text(v, "75.5999984741211", "LA1", "value");
    yajl_tree_free(v);

    v = parse(encode(run_vector("dho.fixed.json", "dho"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    expect_str(v, "urn:ngsi-ld:Device:SmartSpot_AQ_1", "id", NULL, NULL, NULL);
    expect_str(v, "Device", "type", NULL, NULL, NULL);
    expect_str(v, "wifi", "networkBearer", "value", NULL, NULL);
    expect_str(v, "Text", "networkBearer", "type", NULL, NULL);
    expect_str(v, "bypass", "batteryState", "value", NULL, NULL);
    expect_str(v, "connected", "deviceState", "value", NULL, NULL);
    expect_number_text(v, "0.77999997138977051", "rssi", "value");
    expect_str(v, "2Z", "batteryVoltage", "metadata", "unitCode", "value");
    expect_str(v, "4K", "batteryCurrent", "metadata", "unitCode", "value");
    cr_assert_null(at(v, "refDevice", NULL, NULL, NULL));
    cr_assert_null(at(v, "dateObserved", NULL, NULL, NULL));
    yajl_tree_free(v);

    v = parse(encode(run_vector("dev.fixed.json", "dev"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    cr_assert(YAJL_IS_FALSE(at(v, "wifiEnabled", "value", NULL, NULL)));
    expect_str(v, "Boolean", "wifiEnabled", "type", NULL, NULL);
    expect_str(v, "TextUnrestricted", "wifiSsid", "type", NULL, NULL);
    expect_str(v, "TextUnrestricted", "cellularApn", "type", NULL, NULL);
    expect_number_text(v, "0", "firmwareUpdateState", "value");
    yajl_tree_free(v);

    v = parse(encode(run_vector("cfe.fixed.json", "cfe"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    expect_str(v,
               "urn:ngsi-ld:AnonymousCommuterId:"
               "cdb6be6326af1dc10b55fd91d6c26548db230203",
               "id", NULL, NULL, NULL);
    expect_str(v, "wifi", "detectionType", "value", NULL, NULL);
    cr_assert(YAJL_IS_FALSE(at(v, "randomizedMac", "value", NULL, NULL)));
    expect_str(v, "SHA-1", "algorithm", "value", NULL, NULL);
    expect_str(v, "2023-03-20T13:45:07.000Z", "date", "value", NULL, NULL);
    expect_str(v, "SEC", "dwellTime", "metadata", "unitCode", "value");
    expect_str(v, "cdb6be6326af1dc10b55fd91d6c26548db230203", "anonymizedId",
               "value", NULL, NULL);
    yajl_tree_free(v);

    v = parse(encode(run_vector("cfo.json", "cfo"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    expect_number_text(v, "11", "averageDwellTime", "value");
    expect_number_text(v, "-1", "reportingPeriod", "value");
    expect_str(v, "on", "dataCollection", "value", NULL, NULL);
    yajl_tree_free(v);
}

Test(ngsi, compat_and_ld_mapping_facts)
{
    yajl_val v = parse(encode(run_vector("dev.fixed.json", "dev"),
                              NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, NULL));
    expect_str(v, "Device:SmartSpot_AQ_1_DEV", "id", NULL, NULL, NULL);
    expect_str(v, "Text", "wifiEnabled", "type", NULL, NULL);
    expect_str(v, "false", "wifiEnabled", "value", NULL, NULL);
    expect_str(v, "connected", "status", "value", NULL, NULL);
    expect_str(v, "Text", "wifiSsid", "type", NULL, NULL);
    cr_assert_null(at(v, "period", "metadata", "unitCode", NULL));
    expect_str(v, "2023-03-20T13:45:00.000Z", "period", "metadata",
               "TimeInstant", "value");
    yajl_tree_free(v);

    v = parse(encode(run_vector("wto.json", "wto"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_COMPAT, NULL));
    expect_str(v, "WeatherObserved:SmartSpot_AQ_1_WTO", "id", NULL, NULL, NULL);
    expect_number_text(v, "67", "hum3", "value");
    expect_str(v, "Number", "hum3", "type", NULL, NULL);
    cr_assert_null(at(v, "dateObserved", NULL, NULL, NULL));
    cr_assert_null(at(v, "refDevice", NULL, NULL, NULL));
    yajl_tree_free(v);

    v = parse(encode(run_vector("aqo.json", "aqo"), NGSI_FLAVOUR_LD,
                     NGSI_MAPPING_COMPAT, NULL));
    expect_str(v, "urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1_AQO", "id",
               NULL, NULL, NULL);
    expect_number_text(v, "28.586013793945312", "ox-a431", "value");
    expect_str(v, "Property", "ox-a431", "type", NULL, NULL);
    cr_assert_null(at(v, "ox-a431", "unitCode", NULL, NULL));
    yajl_tree_free(v);

    v = parse(encode(run_vector("aqo.json", "aqo"), NGSI_FLAVOUR_LD,
                     NGSI_MAPPING_SDM, NULL));
    cr_assert_null(at(v, "@context", NULL, NULL, NULL));
    expect_str(v, "Property", "o3", "type", NULL, NULL);
    expect_str(v, "GQ", "o3", "unitCode", NULL, NULL);
    expect_str(v, "2023-03-20T13:50:00.000Z", "o3", "observedAt", NULL, NULL);
    expect_str(v, "Relationship", "refDevice", "type", NULL, NULL);
    expect_str(v, "urn:ngsi-ld:Device:SmartSpot_AQ_1", "refDevice", "object",
               NULL, NULL);
    expect_str(v, "GeoProperty", "location", "type", NULL, NULL);
    expect_str(v, "DateTime", "dateObserved", "value", "@type", NULL);
    expect_str(v, "2023-03-20T13:50:00.000Z", "dateObserved", "value", "@value",
               NULL);
    expect_str(v, "DateTime", "TimeInstant", "value", "@type", NULL);
    yajl_tree_free(v);
}

/* --- edge cases ---------------------------------------------------------- */

Test(ngsi, null_reading_v2_null_ld_omitted)
{
    const struct record *r = run(TOPIC_AQO, "{" BASE ",\"no2-a4\":null}");
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    yajl_val n = at(v, "no2", "value", NULL, NULL);
    cr_assert(n != NULL && YAJL_IS_NULL(n));
    expect_str(v, "Number", "no2", "type", NULL, NULL);
    expect_str(v, "GQ", "no2", "metadata", "unitCode", "value");
    yajl_tree_free(v);

    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, NULL));
    cr_assert(YAJL_IS_NULL(at(v, "no2-a4", "value", NULL, NULL)));
    yajl_tree_free(v);

    for (int m = 0; m < 2; m++) {
        v = parse(encode(r, NGSI_FLAVOUR_LD, (enum ngsi_mapping)m, NULL));
        cr_assert_null(at(v, m == 0 ? "no2" : "no2-a4", NULL, NULL, NULL));
        yajl_tree_free(v);
    }
}

Test(ngsi, out_of_range_value_is_null)
{
    const struct record *r = run(TOPIC_AQO, "{" BASE ",\"pm10\":20000}");
    cr_assert_eq(r->reason, REJECT_RANGE);
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    cr_assert(YAJL_IS_NULL(at(v, "pm10", "value", NULL, NULL)));
    yajl_tree_free(v);
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, NULL));
    cr_assert_null(at(v, "pm10", NULL, NULL, NULL));
    yajl_tree_free(v);
    /* a null or out-of-range bool_text / code field keeps its NGSI type */
    r = run(TOPIC_DEV, "{" BASE ",\"wifiEnabled\":null}");
    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "Boolean", "wifiEnabled", "type", NULL, NULL);
    cr_assert(YAJL_IS_NULL(at(v, "wifiEnabled", "value", NULL, NULL)));
    yajl_tree_free(v);
    r = run("/kdho/d_DHO/attrs", "{" BASE ",\"networkBearer\":5}");
    cr_assert_eq(r->reason, REJECT_RANGE);
    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "Text", "networkBearer", "type", NULL, NULL);
    cr_assert(YAJL_IS_NULL(at(v, "networkBearer", "value", NULL, NULL)));
    yajl_tree_free(v);
}

Test(ngsi, forbidden_characters_choose_text_unrestricted)
{
    const struct record *r =
        run(TOPIC_DEV, "{" BASE ",\"wifiSsid\":\"Cafe (guest)='x'\","
                       "\"modelName\":\"A<72>\",\"firmwareVersion\":\"1.0\"}");
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "TextUnrestricted", "wifiSsid", "type", NULL, NULL);
    expect_str(v, "Cafe (guest)='x'", "wifiSsid", "value", NULL, NULL);
    expect_str(v, "TextUnrestricted", "modelName", "type", NULL, NULL);
    expect_str(v, "Text", "firmwareVersion", "type", NULL, NULL);
    yajl_tree_free(v);
    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, NULL));
    expect_str(v, "TextUnrestricted", "wifiSsid", "type", NULL, NULL);
    expect_str(v, "TextUnrestricted", "modelName", "type", NULL, NULL);
    expect_str(v, "Text", "firmwareVersion", "type", NULL, NULL);
    yajl_tree_free(v);
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "Property", "wifiSsid", "type", NULL, NULL);
    expect_str(v, "Cafe (guest)='x'", "wifiSsid", "value", NULL, NULL);
    yajl_tree_free(v);
}

Test(ngsi, extra_fields_pass_through_typed)
{
    const struct record *r =
        run(TOPIC_AQO, "{" BASE ",\"note\":\"a<b\",\"plain\":\"ok\","
                       "\"n\":1.50,\"flag\":true,\"nothing\":null,"
                       "\"obj\":{\"a\":[1,\"x\"]},"
                       "\"bad\":{\"k\":[\"x(y)\"]},"
                       "\"badkey\":{\"a=b\":1}}");
    struct ngsi_entity ent;
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent));
    cr_assert_eq(ent.skipped_attrs, 0);
    expect_str(v, "TextUnrestricted", "note", "type", NULL, NULL);
    expect_str(v, "a<b", "note", "value", NULL, NULL);
    expect_str(v, "Text", "plain", "type", NULL, NULL);
    expect_str(v, "Number", "n", "type", NULL, NULL);
    expect_number_text(v, "1.50", "n", "value");
    expect_str(v, "Boolean", "flag", "type", NULL, NULL);
    expect_str(v, "None", "nothing", "type", NULL, NULL);
    cr_assert(YAJL_IS_NULL(at(v, "nothing", "value", NULL, NULL)));
    expect_str(v, "StructuredValue", "obj", "type", NULL, NULL);
    expect_str(v, "TextUnrestricted", "bad", "type", NULL, NULL);
    cr_assert(YAJL_IS_OBJECT(at(v, "bad", "value", NULL, NULL)));
    expect_str(v, "TextUnrestricted", "badkey", "type", NULL, NULL);
    expect_str(v, "2023-03-20T13:50:00.000Z", "note", "metadata", "TimeInstant",
               "value");
    yajl_tree_free(v);

    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, &ent));
    expect_str(v, "Property", "note", "type", NULL, NULL);
    expect_str(v, "Property", "bad", "type", NULL, NULL);
    cr_assert_null(at(v, "nothing", NULL, NULL, NULL));
    yajl_tree_free(v);
}

Test(ngsi, illegal_extra_names_are_skipped_and_counted)
{
    const struct record *r =
        run(TOPIC_AQO, "{" BASE ",\"bad name\":1,\"a/b\":2,\"id\":3,"
                       "\"dateCreated\":4,\"refDevice\":5,\"o3\":6,"
                       "\"fine\":7}");
    for (int f = 0; f < 2; f++) {
        struct ngsi_entity ent;
        yajl_val v =
            parse(encode(r, (enum ngsi_flavour)f, NGSI_MAPPING_SDM, &ent));
        /* 4 illegal names; refDevice is generated; o3 is a schema
         * attribute (ox-a431) that this message lacks, so the extra "o3"
         * is sent */
        cr_assert_eq(ent.skipped_attrs, 5, "flavour %d: %zu", f,
                     ent.skipped_attrs);
        cr_assert_null(at(v, "bad name", NULL, NULL, NULL));
        cr_assert_null(at(v, "a/b", NULL, NULL, NULL));
        cr_assert_null(at(v, "dateCreated", NULL, NULL, NULL));
        expect_str(v, "urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1", "id",
                   NULL, NULL, NULL);
        cr_assert(at(v, "fine", NULL, NULL, NULL) != NULL);
        cr_assert(at(v, "o3", NULL, NULL, NULL) != NULL);
        yajl_tree_free(v);
    }
    /* compat: "refDevice" is not generated there, so it is sent */
    struct ngsi_entity ent;
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, &ent);
    cr_assert_eq(ent.skipped_attrs, 4);
}

Test(ngsi, ld_reserved_names_are_skipped_in_ld_only)
{
    const struct record *r = run(
        "/kaqo/Other_AQO/attrs",
        "{" BASE ",\"@context\":\"x\",\"createdAt\":1,\"location\":\"here\","
        "\"unitCode\":\"GQ\",\"ok\":1}");
    struct ngsi_entity ent;
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, &ent));
    cr_assert_eq(ent.skipped_attrs, 4);
    cr_assert_null(at(v, "@context", NULL, NULL, NULL));
    cr_assert_null(at(v, "location", NULL, NULL, NULL));
    cr_assert_not_null(at(v, "ok", NULL, NULL, NULL));
    yajl_tree_free(v);
    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent));
    cr_assert_eq(ent.skipped_attrs, 0);
    expect_str(v, "Text", "location", "type", NULL, NULL);
    expect_str(v, "Text", "@context", "type", NULL, NULL);
    yajl_tree_free(v);
}

Test(ngsi, measurement_wins_over_static_and_extra)
{
    /* an extra "location" and "address": the device table's win */
    const struct record *r =
        run(TOPIC_AQO, "{" BASE ",\"location\":\"here\",\"address\":1}");
    struct ngsi_entity ent;
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent));
    cr_assert_eq(ent.skipped_attrs, 2);
    expect_str(v, "geo:json", "location", "type", NULL, NULL);
    expect_str(v, "StructuredValue", "address", "type", NULL, NULL);
    yajl_tree_free(v);
}

Test(ngsi, entity_id_too_long_is_einval)
{
    char dev[251];
    memset(dev, 'x', 250);
    dev[250] = '\0';
    char topic[400];
    snprintf(topic, sizeof topic, "/kaqo/%s_AQO/attrs", dev);
    const struct record *r = run(topic, "{" BASE "}");
    for (int f = 0; f < 2; f++) {
        for (int m = 0; m < 2; m++) {
            struct ngsi_entity ent;
            char why[256] = "";
            int rc = ngsi_encode(enc[f][m], r, &ent, why, sizeof why);
            cr_assert_eq(rc, SPOT_EINVAL, "flavour %d mapping %d", f, m);
            cr_assert(strstr(why, "at most 256") != NULL, "why: %s", why);
        }
    }
    /* the encoder is usable afterwards */
    struct ngsi_entity ent;
    encode(run_vector("aqo.json", "aqo"), NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM,
           &ent);
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:AirQualityObserved:SmartSpot_AQ_1");
}

Test(ngsi, id_of_exactly_256_is_accepted)
{
    /* "urn:ngsi-ld:AirQualityObserved:" is 31 characters */
    char dev[226];
    memset(dev, 'y', 225);
    dev[225] = '\0';
    char topic[400];
    snprintf(topic, sizeof topic, "/kaqo/%s_AQO/attrs", dev);
    const struct record *r = run(topic, "{" BASE "}");
    struct ngsi_entity ent;
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent);
    cr_assert_eq(strlen(ent.id), 256);
}

Test(ngsi, ld_id_must_be_a_uri)
{
    const struct record *r = run("/kaqo/dev[1]_AQO/attrs", "{" BASE "}");
    struct ngsi_entity ent;
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent);
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:AirQualityObserved:dev[1]");
    char why[256] = "";
    cr_assert_eq(ngsi_encode(enc[NGSI_FLAVOUR_LD][NGSI_MAPPING_SDM], r, &ent,
                             why, sizeof why),
                 SPOT_EINVAL);
    cr_assert(strstr(why, "URI") != NULL, "why: %s", why);
}

Test(ngsi, hand_made_records_that_cannot_be_entities)
{
    /* records no validated topic yields, to check the encoder's own
     * checks */
    const struct record *good = run_vector("aqo.json", "aqo");
    static struct record r;
    memcpy(&r, good, sizeof r);
    struct ngsi_entity ent;
    char why[256] = "";
    r.device_id = "bad id";
    cr_assert_eq(ngsi_encode(enc[0][0], &r, &ent, why, sizeof why),
                 SPOT_EINVAL);
    cr_assert(strstr(why, "character ' '") != NULL, "why: %s", why);
    r.device_id = "x";
    r.full_device_id = "x/y";
    cr_assert_eq(
        ngsi_encode(enc[0][NGSI_MAPPING_COMPAT], &r, &ent, why, sizeof why),
        SPOT_EINVAL);
    cr_assert(strstr(why, "'/'") != NULL, "why: %s", why);
    /* an illegal type override */
    static struct group g;
    static char apikey[] = "k", type[] = "Air Quality";
    g.apikey = apikey;
    g.entity_types[SPOT_V_AQO] = type;
    memcpy(&r, good, sizeof r);
    r.group = &g;
    cr_assert_eq(ngsi_encode(enc[1][0], &r, &ent, why, sizeof why),
                 SPOT_EINVAL);
    cr_assert(strstr(why, "entity type") != NULL, "why: %s", why);
    /* a cfe record without the text that makes its id */
    const struct record *cfe = run_vector("cfe.fixed.json", "cfe");
    memcpy(&r, cfe, sizeof r);
    int i = schema_field_index(r.schema, "visitorId", 9);
    cr_assert(i >= 0);
    r.values[i].kind = VALUE_NULL;
    cr_assert_eq(ngsi_encode(enc[0][0], &r, &ent, why, sizeof why),
                 SPOT_EINVAL);
    cr_assert(strstr(why, "visitorId") != NULL, "why: %s", why);
    /* compat does not need it */
    encode(&r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, &ent);
    cr_assert_str_eq(ent.id, "AnonymousCommuterId:SmartSpot_AQ_1_CFE");
}

Test(ngsi, many_and_large_extra_fields)
{
    /* 250 extra keys and a long string: the buffers grow, every key is
     * sent */
    static char msg[60000];
    size_t n = (size_t)snprintf(msg, sizeof msg, "{" BASE);
    for (int i = 0; i < 250; i++)
        n += (size_t)snprintf(msg + n, sizeof msg - n, ",\"k%03d\":%d", i, i);
    n += (size_t)snprintf(msg + n, sizeof msg - n, ",\"long\":\"");
    memset(msg + n, 'z', 40000);
    n += 40000;
    snprintf(msg + n, sizeof msg - n, "\"}");
    const struct record *r = run(TOPIC_AQO, msg);
    for (int f = 0; f < 2; f++) {
        struct ngsi_entity ent;
        yajl_val v =
            parse(encode(r, (enum ngsi_flavour)f, NGSI_MAPPING_SDM, &ent));
        cr_assert_eq(ent.skipped_attrs, 0);
        expect_number_text(v, "249", "k249", "value");
        yajl_val l = at(v, "long", "value", NULL, NULL);
        cr_assert(YAJL_IS_STRING(l) && strlen(l->u.string) == 40000);
        yajl_tree_free(v);
    }
}

Test(ngsi, utf8_and_control_characters)
{
    const struct record *r = run(
        TOPIC_DEV,
        "{" BASE ",\"wifiSsid\":\"Caf\u00e9 \u2615\",\"modelName\":\"a\\nb\"}");
    const char *text = encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, NULL);
    yajl_val v = parse(text);
    expect_str(v, "Caf\xc3\xa9 \xe2\x98\x95", "wifiSsid", "value", NULL, NULL);
    expect_str(v, "Text", "wifiSsid", "type", NULL, NULL);
    expect_str(v, "a\nb", "modelName", "value", NULL, NULL);
    cr_assert(strstr(text, "a\\nb") != NULL, "control character escaped");
    yajl_tree_free(v);
}

Test(ngsi, rejected_record_is_einval)
{
    const struct record *r;
    const char *bad = "{\"period\":5}";
    cr_assert_eq(validator_run(val, TOPIC_AQO, strlen(TOPIC_AQO),
                               (const unsigned char *)bad, strlen(bad), 0, &r),
                 SPOT_OK);
    cr_assert_eq(r->reason, REJECT_SCHEMA);
    struct ngsi_entity ent;
    char why[256];
    cr_assert_eq(ngsi_encode(enc[0][0], r, &ent, why, sizeof why), SPOT_EINVAL);
    cr_assert(strstr(why, "schema") != NULL, "why: %s", why);
}

Test(ngsi, device_without_static_attributes)
{
    const struct record *r = run("/kaqo/Other_AQO/attrs", "{" BASE "}");
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    cr_assert_null(at(v, "location", NULL, NULL, NULL));
    cr_assert_null(at(v, "address", NULL, NULL, NULL));
    yajl_tree_free(v);
    /* and no devices table at all */
    ngsi_encoder_set_devices(enc[0][0], NULL);
    v = parse(encode(run_vector("aqo.json", "aqo"), NGSI_FLAVOUR_V2,
                     NGSI_MAPPING_SDM, NULL));
    cr_assert_null(at(v, "location", NULL, NULL, NULL));
    yajl_tree_free(v);
}

Test(ngsi, static_attribute_types)
{
    struct devices *d =
        devices_from("{\"D1\":{\"location\":[2.5,-45],\"name\":\"Plaza (1)\","
                     "\"floor\":3,\"indoor\":false,\"tags\":[\"a\",\"b\"],"
                     "\"nothing\":null}}");
    ngsi_encoder_set_devices(enc[0][0], d);
    ngsi_encoder_set_devices(enc[1][0], d);
    const struct record *r = run("/kaqo/D1_AQO/attrs", "{" BASE "}");
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    yajl_val c = at(v, "location", "value", "coordinates", NULL);
    cr_assert(YAJL_IS_ARRAY(c) && c->u.array.len == 2);
    cr_assert_str_eq(c->u.array.values[0]->u.number.r, "2.5");
    cr_assert_str_eq(c->u.array.values[1]->u.number.r, "-45");
    expect_str(v, "TextUnrestricted", "name", "type", NULL, NULL);
    expect_str(v, "Number", "floor", "type", NULL, NULL);
    expect_str(v, "Boolean", "indoor", "type", NULL, NULL);
    expect_str(v, "StructuredValue", "tags", "type", NULL, NULL);
    expect_str(v, "None", "nothing", "type", NULL, NULL);
    yajl_tree_free(v);
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "Property", "name", "type", NULL, NULL);
    cr_assert_null(at(v, "nothing", NULL, NULL, NULL));
    yajl_tree_free(v);
    ngsi_encoder_set_devices(enc[0][0], devs);
    ngsi_encoder_set_devices(enc[1][0], devs);
    devices_free(d);
}

Test(ngsi, conversions)
{
    const struct record *r =
        run("/kwto/d_WTO/attrs", "{" BASE ",\"hum8\":55.5,\"hum3\":0}");
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    expect_number_text(v, "0.555", "relativeHumidity", "value");
    expect_number_text(v, "0", "relativeHumidityInternal", "value");
    yajl_tree_free(v);
    r = run("/kcfe/d_CFE/attrs",
            "{\"TimeInstant\":\"2023-03-20T13:45:07.250Z\",\"period\":1,"
            "\"detectionType\":2,\"random\":1,"
            "\"visitorId\":\"CDB6BE6326AF1DC10B55FD91D6C26548DB230203\"}");
    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "bluetooth", "detectionType", "value", NULL, NULL);
    cr_assert(YAJL_IS_TRUE(at(v, "randomizedMac", "value", NULL, NULL)));
    expect_str(v, "2023-03-20T13:45:07.250Z", "TimeInstant", "value", NULL,
               NULL);
    yajl_tree_free(v);
    r = run("/kdho/d_DHO/attrs", "{" BASE ",\"networkBearer\":7,"
                                 "\"batteryState\":2}");
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, NULL));
    expect_str(v, "nb-iot", "networkBearer", "value", NULL, NULL);
    expect_str(v, "discharging", "batteryState", "value", NULL, NULL);
    yajl_tree_free(v);
    r = run(TOPIC_DEV, "{" BASE ",\"cellularEnabled\":\"true\"}");
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_SDM, NULL));
    cr_assert(YAJL_IS_TRUE(at(v, "cellularEnabled", "value", NULL, NULL)));
    yajl_tree_free(v);
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_COMPAT, NULL));
    expect_str(v, "true", "cellularEnabled", "value", NULL, NULL);
    yajl_tree_free(v);
}

Test(ngsi, alias_is_sent_under_the_canonical_name)
{
    const struct record *r =
        run("/kcfo/d_CFO/attrs", "{" BASE ",\"AvgDuration\":7}");
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, NULL));
    expect_number_text(v, "7", "avgDuration", "value");
    cr_assert_null(at(v, "AvgDuration", NULL, NULL, NULL));
    yajl_tree_free(v);
}

Test(ngsi, output_is_reused_and_stable)
{
    const struct record *r = run_vector("wto.json", "wto");
    struct ngsi_entity ent;
    char first[8192];
    snprintf(first, sizeof first, "%s",
             encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent));
    encode(run(TOPIC_AQO, "{" BASE "}"), NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM,
           NULL);
    r = run_vector("wto.json", "wto");
    cr_assert_str_eq(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent), first);
    cr_assert_eq(ent.len, strlen(first));
    cr_assert_str_eq(ent.type, "WeatherObserved");
}

/* --- groups and generic devices ----------------------------------------- */

Test(ngsi_groups, entity_type_override)
{
    const struct record *r = run("/customaqo/dev1_AQO/attrs", "{" BASE "}");
    struct ngsi_entity ent;
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent));
    cr_assert_str_eq(ent.type, "AirQualityCustom");
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:AirQualityCustom:dev1");
    expect_str(v, "urn:ngsi-ld:SmartSpotDevice:dev1", "refDevice", "value",
               NULL, NULL);
    yajl_tree_free(v);
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, &ent);
    cr_assert_str_eq(ent.id, "AirQualityCustom:dev1_AQO");
    encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_COMPAT, &ent);
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:AirQualityCustom:dev1_AQO");
    /* the Device entity follows the override of "dev" */
    r = run("/customdev/dev1_DEV/attrs", "{" BASE "}");
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent);
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:SmartSpotDevice:dev1");
    /* verticals without an override keep the schema's type */
    r = run("/customnlo/dev1_NLO/attrs", "{" BASE "}");
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent);
    cr_assert_str_eq(ent.type, "NoiseLevelObserved");
}

Test(ngsi_groups, generic_device)
{
    const struct record *r =
        run("/legacy42/thing7/attrs",
            "{\"TimeInstant\":\"2024-01-02T03:04:05.678Z\",\"temp\":21.50,"
            "\"label\":\"x\",\"on\":true,\"bad key\":1}");
    cr_assert_null(r->schema);
    struct ngsi_entity ent;
    yajl_val v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, &ent));
    cr_assert_str_eq(ent.id, "Thing:thing7");
    cr_assert_str_eq(ent.type, "Thing");
    cr_assert_eq(ent.skipped_attrs, 1);
    expect_str(v, "2024-01-02T03:04:05.678Z", "TimeInstant", "value", NULL,
               NULL);
    expect_str(v, "DateTime", "TimeInstant", "type", NULL, NULL);
    expect_number_text(v, "21.50", "temp", "value");
    expect_str(v, "Number", "temp", "type", NULL, NULL);
    expect_str(v, "Text", "label", "type", NULL, NULL);
    expect_str(v, "Boolean", "on", "type", NULL, NULL);
    cr_assert_null(at(v, "dateObserved", NULL, NULL, NULL));
    cr_assert_null(at(v, "refDevice", NULL, NULL, NULL));
    yajl_tree_free(v);
    encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_SDM, &ent);
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:Thing:thing7");
    v = parse(encode(r, NGSI_FLAVOUR_LD, NGSI_MAPPING_COMPAT, &ent));
    cr_assert_str_eq(ent.id, "urn:ngsi-ld:Thing:thing7");
    expect_str(v, "2024-01-02T03:04:05.678Z", "temp", "observedAt", NULL, NULL);
    yajl_tree_free(v);

    /* group override of "generic"; no TimeInstant: the reception time */
    r = run("/things/t1/attrs", "{\"x\":1}");
    v = parse(encode(r, NGSI_FLAVOUR_V2, NGSI_MAPPING_COMPAT, &ent));
    cr_assert_str_eq(ent.id, "Sensor:t1");
    cr_assert_str_eq(ent.type, "Sensor");
    expect_str(v, "2023-11-14T22:13:20.000Z", "TimeInstant", "value", NULL,
               NULL);
    yajl_tree_free(v);
}

/* --- small functions ----------------------------------------------------- */

Test(ngsi, format_datetime)
{
    char out[32];
    ngsi_format_datetime(0, out);
    cr_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
    ngsi_format_datetime(1679320200123999LL, out);
    cr_assert_str_eq(out, "2023-03-20T13:50:00.123Z");
    ngsi_format_datetime(951782400000000LL, out); /* leap day 2000 */
    cr_assert_str_eq(out, "2000-02-29T00:00:00.000Z");
    ngsi_format_datetime(-1000, out);
    cr_assert_str_eq(out, "1969-12-31T23:59:59.999Z");
    cr_assert_eq(strlen(out), 24);
}

Test(ngsi, mapping_parse)
{
    enum ngsi_mapping m;
    cr_assert_eq(ngsi_mapping_parse("sdm", &m), SPOT_OK);
    cr_assert_eq(m, NGSI_MAPPING_SDM);
    cr_assert_eq(ngsi_mapping_parse("compat", &m), SPOT_OK);
    cr_assert_eq(m, NGSI_MAPPING_COMPAT);
    cr_assert_eq(ngsi_mapping_parse("SDM", &m), SPOT_EINVAL);
    cr_assert_eq(ngsi_mapping_parse("", &m), SPOT_EINVAL);
    cr_assert_eq(ngsi_mapping_parse(NULL, &m), SPOT_EINVAL);
}

Test(ngsi, names)
{
    cr_assert(ngsi_name_is_legal("urn:ngsi-ld:X:a_b-c.d", 21));
    cr_assert(!ngsi_name_is_legal("", 0));
    cr_assert(!ngsi_name_is_legal("a b", 3));
    cr_assert(!ngsi_name_is_legal("a\tb", 3));
    cr_assert(!ngsi_name_is_legal("a\x7f", 2));
    cr_assert(!ngsi_name_is_legal("caf\xc3\xa9", 5));
    const char *bad = "<>\"'=;()&?/#";
    for (const char *p = bad; *p; p++) {
        char s[3] = {'a', *p, 0};
        cr_assert(!ngsi_name_is_legal(s, 2), "%s", s);
    }
    char big[300];
    memset(big, 'a', sizeof big);
    cr_assert(ngsi_name_is_legal(big, 256));
    cr_assert(!ngsi_name_is_legal(big, 257));
    cr_assert(ngsi_attr_name_is_legal("temperature", 11));
    cr_assert(ngsi_attr_name_is_legal("ids", 3));
    static const char *const reserved[] = {
        "id",          "type",        "geo:distance",
        "*",           "dateCreated", "dateModified",
        "dateExpires", "servicePath", "alterationType"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        cr_assert(!ngsi_attr_name_is_legal(reserved[i], strlen(reserved[i])),
                  "%s", reserved[i]);
}
