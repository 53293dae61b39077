/*
 * Unit tests of src/common/schema.c and schemas/<code>.json: the built-in
 * schemas load and say what the specs say (wire contract, agent contract
 * §4, ngsi-mapping §2), every example vector of the wire contract fits its
 * vertical, and broken schema texts are refused with a useful message.
 * SPOT_VECTORS names the vectors directory (default tests/fixtures/vectors,
 * relative to the repository root).
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/schema.h"
#include "spot/vertical.h"

/* Defined by the generated build/gen/schemas_embedded.c. */
struct spot_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t len;
};
extern const struct spot_embedded_file spot_embedded_schemas[];
extern const size_t spot_embedded_schema_count;

static struct schema_set *set;

static void load(void)
{
    char err[512] = "";
    int rc = schema_set_new(&set, err, sizeof err);
    cr_assert_eq(rc, SPOT_OK, "schema_set_new: %s", err);
    cr_assert_not_null(set);
}

static void unload(void)
{
    schema_set_free(set);
    set = NULL;
}

static const struct schema_vertical *sv_of(enum spot_vertical v)
{
    const struct schema_vertical *sv = schema_set_vertical(set, v);
    cr_assert_not_null(sv);
    return sv;
}

static const struct schema_field *field_of(enum spot_vertical v,
                                           const char *name)
{
    const struct schema_vertical *sv = sv_of(v);
    int i = schema_field_index(sv, name, strlen(name));
    cr_assert_geq(i, 0, "%s has no field %s", sv->code, name);
    cr_assert_lt((size_t)i, sv->n_fields);
    return &sv->fields[i];
}

static bool streq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* ---- the built-in set ------------------------------------------------- */

TestSuite(schema, .init = load, .fini = unload);

Test(schema, every_vertical_loads)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv = sv_of((enum spot_vertical)v);
        cr_assert_eq(sv->vertical, (enum spot_vertical)v);
        cr_assert_str_eq(sv->code, vertical_code((enum spot_vertical)v));
        cr_assert(sv->title != NULL && sv->title[0] != '\0');
        cr_assert_lt(sv->time_field, sv->n_fields);
        cr_assert_str_eq(sv->fields[sv->time_field].name, "TimeInstant");
    }
    cr_assert_null(schema_set_vertical(set, SPOT_V_COUNT));
    cr_assert_null(schema_set_vertical(NULL, SPOT_V_AQO));
}

Test(schema, field_counts)
{
    static const size_t want[SPOT_V_COUNT] = {
        [SPOT_V_AQO] = 3 + 13, [SPOT_V_NLO] = 3 + 8, [SPOT_V_WTO] = 3 + 18,
        [SPOT_V_CFO] = 3 + 7,  [SPOT_V_CFE] = 2 + 4, [SPOT_V_DEV] = 3 + 10,
        [SPOT_V_DHO] = 3 + 6,
    };
    for (int v = 0; v < SPOT_V_COUNT; v++)
        cr_expect_eq(sv_of((enum spot_vertical)v)->n_fields, want[v],
                     "%s: %zu fields", vertical_code((enum spot_vertical)v),
                     sv_of((enum spot_vertical)v)->n_fields);
}

Test(schema, tables_and_entity_types)
{
    static const struct {
        enum spot_vertical v;
        const char *table, *sdm, *id_field;
    } want[] = {
        {SPOT_V_AQO, "air_quality", "AirQualityObserved", NULL},
        {SPOT_V_NLO, "noise_level", "NoiseLevelObserved", NULL},
        {SPOT_V_WTO, "weather", "WeatherObserved", NULL},
        {SPOT_V_CFO, "crowd_count", "CrowdFlowObserved", NULL},
        {SPOT_V_CFE, "crowd_event", "AnonymousCommuterId", "visitorId"},
        {SPOT_V_DEV, "device_info", "Device", NULL},
        {SPOT_V_DHO, "device_health", "Device", NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct schema_vertical *sv = sv_of(want[i].v);
        cr_expect_str_eq(sv->table, want[i].table);
        cr_expect_str_eq(sv->sdm_entity_type, want[i].sdm);
        cr_expect_str_eq(sv->compat_entity_type, want[i].sdm);
        cr_expect(streq(sv->sdm_id_field, want[i].id_field), "%s id_field",
                  sv->code);
    }
}

Test(schema, common_fields)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        enum spot_vertical vv = (enum spot_vertical)v;
        const struct schema_vertical *sv = sv_of(vv);
        const struct schema_field *t = field_of(vv, "TimeInstant");
        cr_expect_eq(t->type, SCHEMA_DATETIME);
        cr_expect(t->mandatory && !t->nullable && !t->key);
        cr_expect_str_eq(t->column, "time_instant");
        cr_expect_str_eq(t->pg_type, "timestamptz");
        cr_expect_str_eq(t->sdm.attr_type, "DateTime");
        cr_expect_str_eq(t->compat.name, "TimeInstant");

        const struct schema_field *p = field_of(vv, "period");
        cr_expect_eq(p->type, SCHEMA_NUMBER);
        cr_expect(p->mandatory && !p->nullable);
        cr_expect(p->has_min && p->min == 1 && p->has_max && p->max == 10080);
        cr_expect_str_eq(p->column, "period");
        cr_expect_str_eq(p->pg_type, "double precision");

        int s = schema_field_index(sv, "status", 6);
        if (vv == SPOT_V_CFE) {
            cr_expect_eq(s, -1, "cfe has no status");
            continue;
        }
        cr_assert_geq(s, 0, "%s has no status", sv->code);
        const struct schema_field *st = &sv->fields[s];
        cr_expect_eq(st->type, SCHEMA_TEXT);
        cr_expect(st->mandatory && !st->nullable);
        cr_expect_eq(st->n_allowed_texts, 1);
        cr_expect_str_eq(st->allowed_texts[0], "connected");
        cr_expect_str_eq(st->column, "status");
        cr_expect_str_eq(st->pg_type, "text");
        if (vv == SPOT_V_DEV || vv == SPOT_V_DHO)
            cr_expect_str_eq(st->sdm.name, "deviceState");
        else
            cr_expect_null(st->sdm.name);
    }
}

/* The contract's rule: snake case, '-' as '_'. */
static void snake(const char *name, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; name[i] != '\0' && o + 2 < outlen; i++) {
        char c = name[i];
        if (c == '-') {
            out[o++] = '_';
        } else if (c >= 'A' && c <= 'Z') {
            if (i > 0)
                out[o++] = '_';
            out[o++] = (char)(c - 'A' + 'a');
        } else {
            out[o++] = c;
        }
    }
    out[o] = '\0';
}

Test(schema, columns_are_snake_case_of_names)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv = sv_of((enum spot_vertical)v);
        for (size_t i = 0; i < sv->n_fields; i++) {
            char want[128];
            snake(sv->fields[i].name, want, sizeof want);
            cr_expect_str_eq(sv->fields[i].column, want, "%s.%s", sv->code,
                             sv->fields[i].name);
        }
    }
}

Test(schema, named_columns)
{
    static const struct {
        enum spot_vertical v;
        const char *field, *column;
    } want[] = {
        {SPOT_V_AQO, "no2-a4", "no2_a4"},
        {SPOT_V_AQO, "ox-a431", "ox_a431"},
        {SPOT_V_AQO, "pm2", "pm2"},
        {SPOT_V_NLO, "son_laeq", "son_laeq"},
        {SPOT_V_WTO, "temp8", "temp8"},
        {SPOT_V_CFO, "peopleCount", "people_count"},
        {SPOT_V_CFO, "avgDuration", "avg_duration"},
        {SPOT_V_CFO, "measurementInterval", "measurement_interval"},
        {SPOT_V_CFO, "reportingPeriod", "reporting_period"},
        {SPOT_V_CFO, "dataCollection", "data_collection"},
        {SPOT_V_CFO, "peopleCountCollection", "people_count_collection"},
        {SPOT_V_CFO, "eventCollection", "event_collection"},
        {SPOT_V_CFE, "detectionType", "detection_type"},
        {SPOT_V_CFE, "visitorId", "visitor_id"},
        {SPOT_V_CFE, "random", "random"},
        {SPOT_V_CFE, "duration", "duration"},
        {SPOT_V_DEV, "modelName", "model_name"},
        {SPOT_V_DEV, "serialNumber", "serial_number"},
        {SPOT_V_DEV, "firmwareVersion", "firmware_version"},
        {SPOT_V_DEV, "updateFirmwareDownloadProgress",
         "update_firmware_download_progress"},
        {SPOT_V_DEV, "updateFirmwareState", "update_firmware_state"},
        {SPOT_V_DEV, "updateFirmwareResult", "update_firmware_result"},
        {SPOT_V_DEV, "cellularEnabled", "cellular_enabled"},
        {SPOT_V_DEV, "wifiEnabled", "wifi_enabled"},
        {SPOT_V_DEV, "cellularApn", "cellular_apn"},
        {SPOT_V_DEV, "wifiSsid", "wifi_ssid"},
        {SPOT_V_DHO, "networkBearer", "network_bearer"},
        {SPOT_V_DHO, "rssi", "rssi"},
        {SPOT_V_DHO, "batteryLevel", "battery_level"},
        {SPOT_V_DHO, "batteryState", "battery_state"},
        {SPOT_V_DHO, "batteryVoltage", "battery_voltage"},
        {SPOT_V_DHO, "batteryCurrent", "battery_current"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_str_eq(field_of(want[i].v, want[i].field)->column,
                         want[i].column);
}

static bool is_integer_code(const char *name)
{
    static const char *const codes[] = {
        "peopleCountCollection", "eventCollection",
        "detectionType",         "random",
        "updateFirmwareState",   "updateFirmwareResult",
        "networkBearer",         "batteryState",
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(name, codes[i]) == 0)
            return true;
    return false;
}

Test(schema, types_and_pg_types)
{
    static const char *const text_fields[] = {
        "status",       "dataCollection",  "visitorId",   "modelName",
        "serialNumber", "firmwareVersion", "cellularApn", "wifiSsid",
    };
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv = sv_of((enum spot_vertical)v);
        for (size_t i = 0; i < sv->n_fields; i++) {
            const struct schema_field *f = &sv->fields[i];
            enum schema_type want = SCHEMA_NUMBER;
            if (strcmp(f->name, "TimeInstant") == 0)
                want = SCHEMA_DATETIME;
            else if (is_integer_code(f->name))
                want = SCHEMA_INTEGER;
            else if (strcmp(f->name, "cellularEnabled") == 0 ||
                     strcmp(f->name, "wifiEnabled") == 0)
                want = SCHEMA_BOOL_TEXT;
            for (size_t t = 0; t < sizeof text_fields / sizeof *text_fields;
                 t++)
                if (strcmp(f->name, text_fields[t]) == 0)
                    want = SCHEMA_TEXT;
            cr_expect_eq(f->type, want, "%s.%s type", sv->code, f->name);
            const char *pg = want == SCHEMA_NUMBER      ? "double precision"
                             : want == SCHEMA_INTEGER   ? "integer"
                             : want == SCHEMA_TEXT      ? "text"
                             : want == SCHEMA_BOOL_TEXT ? "boolean"
                                                        : "timestamptz";
            cr_expect_str_eq(f->pg_type, pg, "%s.%s", sv->code, f->name);
        }
    }
}

Test(schema, sensor_fields_optional_and_nullable)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv = sv_of((enum spot_vertical)v);
        for (size_t i = 0; i < sv->n_fields; i++) {
            const struct schema_field *f = &sv->fields[i];
            bool common = strcmp(f->name, "TimeInstant") == 0 ||
                          strcmp(f->name, "period") == 0 ||
                          strcmp(f->name, "status") == 0 ||
                          strcmp(f->name, "visitorId") == 0;
            cr_expect_eq(f->mandatory, common, "%s.%s", sv->code, f->name);
            cr_expect_eq(f->nullable, !common, "%s.%s", sv->code, f->name);
            cr_expect_eq(f->key, strcmp(f->name, "visitorId") == 0);
        }
    }
}

struct range {
    enum spot_vertical v;
    const char *field;
    double min, max;
};

static void expect_range(const struct range *r)
{
    const struct schema_field *f = field_of(r->v, r->field);
    cr_expect(f->has_min && f->min == r->min, "%s min %g", r->field, f->min);
    if (isinf(r->max))
        cr_expect(!f->has_max, "%s has a max", r->field);
    else
        cr_expect(f->has_max && f->max == r->max, "%s max %g", r->field,
                  f->max);
}

Test(schema, ranges)
{
    static const struct range want[] = {
        {SPOT_V_AQO, "no2-a4", 0, 1e6},
        {SPOT_V_AQO, "ox-a431", 0, 1e6},
        {SPOT_V_AQO, "cl2-a1", 0, 1e6},
        {SPOT_V_AQO, "co2", 0, 1e8},
        {SPOT_V_AQO, "pm1", 0, 10000},
        {SPOT_V_AQO, "pm2", 0, 10000},
        {SPOT_V_AQO, "pm10", 0, 10000},
        {SPOT_V_AQO, "voc", 0, 1e6},
        {SPOT_V_NLO, "son_laeq", 0, 200},
        {SPOT_V_NLO, "son_la99", 0, 200},
        {SPOT_V_WTO, "temp8", -60, 100},
        {SPOT_V_WTO, "temp3", -60, 100},
        {SPOT_V_WTO, "dew_point", -60, 100},
        {SPOT_V_WTO, "wind_chill", -60, 100},
        {SPOT_V_WTO, "thsw_index", -60, 100},
        {SPOT_V_WTO, "hum8", 0, 100},
        {SPOT_V_WTO, "hum3", 0, 100},
        {SPOT_V_WTO, "pres1", 300, 1200},
        {SPOT_V_WTO, "wind_dir", 0, 360},
        {SPOT_V_WTO, "wind_sp", 0, 500},
        {SPOT_V_WTO, "uv_index", 0, 30},
        {SPOT_V_WTO, "solar_rad0", 0, 2000},
        {SPOT_V_WTO, "et_daily", 0, 200},
        {SPOT_V_WTO, "rain_rate", 0, 2000},
        {SPOT_V_WTO, "rain_daily", 0, 2000},
        {SPOT_V_WTO, "illuminance", 0, 250000},
        {SPOT_V_CFO, "peopleCount", 0, INFINITY},
        {SPOT_V_CFO, "avgDuration", 0, INFINITY},
        {SPOT_V_CFE, "duration", 0, INFINITY},
        {SPOT_V_DEV, "updateFirmwareDownloadProgress", 0, 100},
        {SPOT_V_DEV, "updateFirmwareState", 0, 3},
        {SPOT_V_DEV, "updateFirmwareResult", 0, 9},
        {SPOT_V_DHO, "rssi", 0, 1},
        {SPOT_V_DHO, "batteryLevel", 0, 1},
        {SPOT_V_DHO, "batteryVoltage", 0, 100000},
        {SPOT_V_DHO, "batteryCurrent", -100000, 100000},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        expect_range(&want[i]);
    cr_expect_eq(field_of(SPOT_V_CFO, "reportingPeriod")->min, -1);
}

static void expect_allowed(enum spot_vertical v, const char *name,
                           const double *want, size_t n)
{
    const struct schema_field *f = field_of(v, name);
    cr_assert_eq(f->n_allowed_numbers, n, "%s", name);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(f->allowed_numbers[i], want[i], "%s[%zu]", name, i);
}

Test(schema, allowed_values)
{
    expect_allowed(SPOT_V_CFE, "detectionType", (const double[]){1, 2}, 2);
    expect_allowed(SPOT_V_CFE, "random", (const double[]){0, 1}, 2);
    expect_allowed(SPOT_V_CFO, "peopleCountCollection",
                   (const double[]){0, 1, 2, 3}, 4);
    expect_allowed(SPOT_V_CFO, "eventCollection", (const double[]){0, 1, 2, 3},
                   4);
    expect_allowed(SPOT_V_DHO, "networkBearer", (const double[]){0, 6, 7, 21},
                   4);
    expect_allowed(SPOT_V_DHO, "batteryState", (const double[]){0, 1, 2}, 3);

    const struct schema_field *dc = field_of(SPOT_V_CFO, "dataCollection");
    cr_assert_eq(dc->n_allowed_texts, 2);
    cr_expect_str_eq(dc->allowed_texts[0], "on");
    cr_expect_str_eq(dc->allowed_texts[1], "off");
}

Test(schema, cfe_visitor_id)
{
    const struct schema_field *f = field_of(SPOT_V_CFE, "visitorId");
    cr_expect(f->mandatory && !f->nullable && f->key);
    cr_expect_str_eq(f->pattern, "hex40");
    cr_expect_eq(f->type, SCHEMA_TEXT);
    cr_expect_str_eq(f->sdm.name, "anonymizedId");
    cr_expect_str_eq(f->compat.name, "visitorId");
}

Test(schema, dev_text_fields)
{
    static const char *const free_text[] = {"modelName", "serialNumber",
                                            "firmwareVersion", "cellularApn",
                                            "wifiSsid"};
    for (size_t i = 0; i < 5; i++) {
        const struct schema_field *f = field_of(SPOT_V_DEV, free_text[i]);
        cr_expect_eq(f->max_length, 256, "%s", free_text[i]);
        cr_expect_null(f->pattern);
    }
    cr_expect_str_eq(field_of(SPOT_V_DEV, "cellularApn")->sdm.attr_type,
                     "TextUnrestricted");
    cr_expect_str_eq(field_of(SPOT_V_DEV, "wifiSsid")->sdm.attr_type,
                     "TextUnrestricted");
    const struct schema_field *b = field_of(SPOT_V_DEV, "wifiEnabled");
    cr_expect_str_eq(b->sdm.convert, "bool_text");
    cr_expect_str_eq(b->sdm.attr_type, "Boolean");
    cr_expect_str_eq(b->compat.attr_type, "Text");
}

Test(schema, aliases_and_lookup)
{
    const struct schema_vertical *cfo = sv_of(SPOT_V_CFO);
    int canon = schema_field_index(cfo, "avgDuration", 11);
    cr_assert_geq(canon, 0);
    cr_expect_eq(schema_field_index(cfo, "AvgDuration", 11), canon);
    cr_expect_eq(cfo->fields[canon].n_aliases, 1);
    cr_expect_str_eq(cfo->fields[canon].aliases[0], "AvgDuration");
    /* case-sensitive, exact length, bytes need no NUL */
    cr_expect_eq(schema_field_index(cfo, "avgduration", 11), -1);
    cr_expect_eq(schema_field_index(cfo, "avgDuration", 10), -1);
    cr_expect_eq(schema_field_index(cfo, "avgDurationX", 11), canon);
    cr_expect_eq(schema_field_index(cfo, "avgDuration\0", 12), -1);
    cr_expect_eq(schema_field_index(cfo, "", 0), -1);
    cr_expect_eq(schema_field_index(cfo, NULL, 0), -1);
    cr_expect_eq(schema_field_index(NULL, "period", 6), -1);

    /* every name of every vertical finds itself; no alias elsewhere */
    size_t aliases = 0;
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv = sv_of((enum spot_vertical)v);
        for (size_t i = 0; i < sv->n_fields; i++) {
            const char *n = sv->fields[i].name;
            cr_expect_eq(schema_field_index(sv, n, strlen(n)), (int)i);
            aliases += sv->fields[i].n_aliases;
        }
        cr_expect_eq(schema_field_index(sv, "no-such-field", 13), -1);
    }
    cr_expect_eq(aliases, 1);

    /* the lookup works on a copy of the vertical too */
    struct schema_vertical copy = *sv_of(SPOT_V_AQO);
    cr_expect_eq(schema_field_index(&copy, "pm10", 4),
                 schema_field_index(sv_of(SPOT_V_AQO), "pm10", 4));
}

/* ngsi-mapping.md §2, sdm: field -> attribute, unitCode, conversion. */
struct sdm_row {
    enum spot_vertical v;
    const char *field, *attr, *type, *unit, *convert;
};

static const struct sdm_row sdm_rows[] = {
    {SPOT_V_AQO, "no2-a4", "no2", "Number", "GQ", NULL},
    {SPOT_V_AQO, "no-a4", "no", "Number", "GQ", NULL},
    {SPOT_V_AQO, "so2-a4", "so2", "Number", "GQ", NULL},
    {SPOT_V_AQO, "co-a4", "co", "Number", "GQ", NULL},
    {SPOT_V_AQO, "ox-a431", "o3", "Number", "GQ", NULL},
    {SPOT_V_AQO, "h2s-a4", "sh2", "Number", "GQ", NULL},
    {SPOT_V_AQO, "nh3-a4", "nh3", "Number", "GQ", NULL},
    {SPOT_V_AQO, "cl2-a1", "cl2", "Number", "GQ", NULL},
    {SPOT_V_AQO, "pm1", "pm1", "Number", "GQ", NULL},
    {SPOT_V_AQO, "pm2", "pm25", "Number", "GQ", NULL},
    {SPOT_V_AQO, "pm10", "pm10", "Number", "GQ", NULL},
    {SPOT_V_AQO, "voc", "volatileOrganicCompoundsTotal", "Number", "GQ", NULL},
    {SPOT_V_AQO, "co2", "co2", "Number", "GQ", NULL},
    {SPOT_V_NLO, "son_laeq", "LAeq", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_lamax", "LAmax", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_lamin", "LAmin", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_la1", "LA1", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_la10", "LA10", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_la50", "LA50", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_la90", "LA90", "Number", "2N", NULL},
    {SPOT_V_NLO, "son_la99", "LA99", "Number", "2N", NULL},
    {SPOT_V_WTO, "temp8", "temperature", "Number", "CEL", NULL},
    {SPOT_V_WTO, "hum8", "relativeHumidity", "Number", "C62", "div100"},
    {SPOT_V_WTO, "temp3", "temperatureInternal", "Number", "CEL", NULL},
    {SPOT_V_WTO, "hum3", "relativeHumidityInternal", "Number", "C62", "div100"},
    {SPOT_V_WTO, "pres1", "atmosphericPressure", "Number", "A97", NULL},
    {SPOT_V_WTO, "wind_dir", "windDirection", "Number", "DD", NULL},
    {SPOT_V_WTO, "wind_sp", "windSpeed", "Number", "KMH", NULL},
    {SPOT_V_WTO, "uv_index", "uVIndexMax", "Number", "C62", NULL},
    {SPOT_V_WTO, "solar_rad0", "solarRadiation", "Number", "D54", NULL},
    {SPOT_V_WTO, "et_daily", "evapotranspiration", "Number", "MMT", NULL},
    {SPOT_V_WTO, "dew_point", "dewPoint", "Number", "CEL", NULL},
    {SPOT_V_WTO, "wind_chill", "feelsLikeTemperature", "Number", "CEL", NULL},
    {SPOT_V_WTO, "thsw_index", "thswIndex", "Number", "CEL", NULL},
    {SPOT_V_WTO, "rain_rate", "precipitationRate", "Number", "H67", NULL},
    {SPOT_V_WTO, "rain_15a", "precipitationRate15min", "Number", "H67", NULL},
    {SPOT_V_WTO, "rain_24ha", "precipitationRate24h", "Number", "H67", NULL},
    {SPOT_V_WTO, "rain_daily", "precipitation", "Number", "MMT", NULL},
    {SPOT_V_WTO, "illuminance", "illuminance", "Number", "LUX", NULL},
    {SPOT_V_CFO, "peopleCount", "peopleCount", "Number", "C62", NULL},
    {SPOT_V_CFO, "avgDuration", "averageDwellTime", "Number", "SEC", NULL},
    {SPOT_V_CFO, "dataCollection", "dataCollection", "Text", NULL, NULL},
    {SPOT_V_CFE, "visitorId", "anonymizedId", "Text", NULL, NULL},
    {SPOT_V_CFE, "detectionType", "detectionType", "Text", NULL, "code_text"},
    {SPOT_V_CFE, "random", "randomizedMac", "Boolean", NULL, "int_bool"},
    {SPOT_V_CFE, "duration", "dwellTime", "Number", "SEC", NULL},
    {SPOT_V_DEV, "serialNumber", "serialNumber", "Text", NULL, NULL},
    {SPOT_V_DEV, "firmwareVersion", "firmwareVersion", "Text", NULL, NULL},
    {SPOT_V_DEV, "modelName", "modelName", "Text", NULL, NULL},
    {SPOT_V_DEV, "cellularEnabled", "cellularEnabled", "Boolean", NULL,
     "bool_text"},
    {SPOT_V_DEV, "wifiEnabled", "wifiEnabled", "Boolean", NULL, "bool_text"},
    {SPOT_V_DEV, "cellularApn", "cellularApn", "TextUnrestricted", NULL, NULL},
    {SPOT_V_DEV, "wifiSsid", "wifiSsid", "TextUnrestricted", NULL, NULL},
    {SPOT_V_DEV, "updateFirmwareDownloadProgress", "firmwareUpdateProgress",
     "Number", NULL, NULL},
    {SPOT_V_DEV, "updateFirmwareState", "firmwareUpdateState", "Number", NULL,
     NULL},
    {SPOT_V_DEV, "updateFirmwareResult", "firmwareUpdateResult", "Number", NULL,
     NULL},
    {SPOT_V_DEV, "status", "deviceState", "Text", NULL, NULL},
    {SPOT_V_DHO, "networkBearer", "networkBearer", "Text", NULL, "code_text"},
    {SPOT_V_DHO, "batteryState", "batteryState", "Text", NULL, "code_text"},
    {SPOT_V_DHO, "rssi", "rssi", "Number", "C62", NULL},
    {SPOT_V_DHO, "batteryLevel", "batteryLevel", "Number", "C62", NULL},
    {SPOT_V_DHO, "batteryVoltage", "batteryVoltage", "Number", "2Z", NULL},
    {SPOT_V_DHO, "batteryCurrent", "batteryCurrent", "Number", "4K", NULL},
    {SPOT_V_DHO, "status", "deviceState", "Text", NULL, NULL},
};

Test(schema, sdm_mapping)
{
    for (size_t i = 0; i < sizeof sdm_rows / sizeof sdm_rows[0]; i++) {
        const struct sdm_row *r = &sdm_rows[i];
        const struct schema_ngsi *n = &field_of(r->v, r->field)->sdm;
        cr_expect_str_eq(n->name, r->attr, "%s", r->field);
        cr_expect_str_eq(n->attr_type, r->type, "%s", r->field);
        cr_expect(streq(n->unit_code, r->unit), "%s unitCode %s", r->field,
                  n->unit_code ? n->unit_code : "(none)");
        cr_expect(streq(n->convert, r->convert), "%s convert", r->field);
    }
}

Test(schema, compat_mapping_is_as_sent)
{
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct schema_vertical *sv = sv_of((enum spot_vertical)v);
        for (size_t i = 0; i < sv->n_fields; i++) {
            const struct schema_field *f = &sv->fields[i];
            cr_assert_not_null(f->compat.name, "%s", f->name);
            cr_expect_str_eq(f->compat.name, f->name);
            cr_expect_null(f->compat.convert);
            const char *want =
                f->type == SCHEMA_DATETIME ? "DateTime"
                : (f->type == SCHEMA_NUMBER || f->type == SCHEMA_INTEGER)
                    ? "Number"
                    : "Text";
            cr_expect_str_eq(f->compat.attr_type, want, "%s", f->name);
        }
    }
}

static void expect_codes(enum spot_vertical v, const char *name,
                         const long *codes, const char *const *texts, size_t n)
{
    const struct schema_ngsi *s = &field_of(v, name)->sdm;
    cr_expect_str_eq(s->convert, "code_text", "%s", name);
    cr_assert_eq(s->n_codes, n, "%s", name);
    for (size_t i = 0; i < n; i++) {
        cr_expect_eq(s->codes[i].code, codes[i]);
        cr_expect_str_eq(s->codes[i].text, texts[i]);
    }
}

Test(schema, code_text_tables)
{
    expect_codes(SPOT_V_DHO, "networkBearer", (const long[]){0, 6, 7, 21},
                 (const char *const[]){"gprs", "4g", "nb-iot", "wifi"}, 4);
    expect_codes(SPOT_V_DHO, "batteryState", (const long[]){0, 1, 2},
                 (const char *const[]){"bypass", "charging", "discharging"}, 3);
    expect_codes(SPOT_V_CFE, "detectionType", (const long[]){1, 2},
                 (const char *const[]){"wifi", "bluetooth"}, 2);
}

/* ---- the wire contract's example vectors ----------------------------- */

static const char *vectors_dir(void)
{
    const char *d = getenv("SPOT_VECTORS");
    return d && *d ? d : "tests/fixtures/vectors";
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static bool is_hex40(const char *s)
{
    if (strlen(s) != 40)
        return false;
    for (size_t i = 0; i < 40; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* The value fits the field; returns NULL or why not. */
static const char *check_value(const struct schema_field *f, yajl_val v)
{
    if (YAJL_IS_NULL(v))
        return f->nullable ? NULL : "null in a non-nullable field";
    switch (f->type) {
    case SCHEMA_NUMBER:
    case SCHEMA_INTEGER: {
        if (!YAJL_IS_DOUBLE(v))
            return "not a number";
        double d = v->u.number.d;
        if ((f->has_min && d < f->min) || (f->has_max && d > f->max))
            return "out of range";
        if (f->type == SCHEMA_INTEGER && d != floor(d))
            return "not an integer";
        if (f->n_allowed_numbers > 0) {
            for (size_t i = 0; i < f->n_allowed_numbers; i++)
                if (f->allowed_numbers[i] == d)
                    return NULL;
            return "not an allowed value";
        }
        return NULL;
    }
    case SCHEMA_TEXT: {
        if (!YAJL_IS_STRING(v))
            return "not a string";
        const char *s = v->u.string;
        if (f->max_length && strlen(s) > f->max_length)
            return "too long";
        if (f->pattern && !is_hex40(s))
            return "does not match hex40";
        if (f->n_allowed_texts > 0) {
            for (size_t i = 0; i < f->n_allowed_texts; i++)
                if (strcmp(f->allowed_texts[i], s) == 0)
                    return NULL;
            return "not an allowed value";
        }
        return NULL;
    }
    case SCHEMA_BOOL_TEXT:
        if (!YAJL_IS_STRING(v) || (strcmp(v->u.string, "true") != 0 &&
                                   strcmp(v->u.string, "false") != 0))
            return "not \"true\" or \"false\"";
        return NULL;
    case SCHEMA_DATETIME: {
        int y, mo, d, h, mi, s;
        char z;
        if (!YAJL_IS_STRING(v) ||
            sscanf(v->u.string, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h,
                   &mi, &s, &z) != 7 ||
            z != 'Z')
            return "not an ISO 8601 UTC date-time";
        return NULL;
    }
    }
    return "unknown type";
}

static void check_vector(const char *path, const struct schema_vertical *sv,
                         yajl_val root)
{
    cr_assert(YAJL_IS_OBJECT(root), "%s: not an object", path);
    bool seen[64] = {false};
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *k = root->u.object.keys[i];
        int idx = schema_field_index(sv, k, strlen(k));
        cr_expect_geq(idx, 0, "%s: \"%s\" is not a field of %s", path, k,
                      sv->code);
        if (idx < 0)
            continue;
        const char *why =
            check_value(&sv->fields[idx], root->u.object.values[i]);
        cr_expect_null(why, "%s: \"%s\": %s", path, k, why);
        seen[idx] = true;
    }
    for (size_t i = 0; i < sv->n_fields; i++)
        if (sv->fields[i].mandatory)
            cr_expect(seen[i], "%s: mandatory \"%s\" is missing", path,
                      sv->fields[i].name);
}

Test(schema, example_vectors_fit)
{
    const char *dir = vectors_dir();
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s (set SPOT_VECTORS)", dir);
    bool covered[SPOT_V_COUNT] = {false};
    size_t valid = 0, broken = 0;
    struct dirent *e;

    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        size_t n = strlen(name);
        if (n < 5 || strcmp(name + n - 5, ".json") != 0)
            continue;
        enum spot_vertical v;
        cr_assert_eq(vertical_from_code(name, 3, &v), SPOT_OK,
                     "%s: no vertical", name);
        char path[1024], fixed[1024];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(fixed, sizeof fixed, "%s/%.3s.fixed.json", dir, name);
        bool has_fixed =
            strstr(name, ".fixed.") == NULL && access(fixed, R_OK) == 0;
        char *text = read_all(path);
        char ebuf[256];
        yajl_val root = yajl_tree_parse(text, ebuf, sizeof ebuf);
        free(text);
        if (has_fixed) {
            /* the note's examples printed as invalid JSON (contract §5) */
            cr_expect_null(root, "%s should be invalid JSON", name);
            yajl_tree_free(root);
            broken++;
            continue;
        }
        cr_assert_not_null(root, "%s: %s", name, ebuf);
        check_vector(name, sv_of(v), root);
        yajl_tree_free(root);
        covered[v] = true;
        valid++;
    }
    closedir(d);
    cr_expect_eq(broken, 3, "3 broken vectors (cfe, dev, dho)");
    cr_expect_eq(valid, SPOT_V_COUNT);
    for (int v = 0; v < SPOT_V_COUNT; v++)
        cr_expect(covered[v], "no valid vector for %s",
                  vertical_code((enum spot_vertical)v));
}

/* ---- broken schema texts ---------------------------------------------- */

struct texts {
    char *t[SPOT_V_COUNT + 1];
    const char *p[SPOT_V_COUNT + 1];
    size_t len[SPOT_V_COUNT + 1];
    size_t n;
};

static int embedded_index(const char *code)
{
    char want[16];
    snprintf(want, sizeof want, "%s.json", code);
    for (size_t i = 0; i < spot_embedded_schema_count; i++)
        if (strcmp(spot_embedded_schemas[i].name, want) == 0)
            return (int)i;
    cr_assert_fail("no embedded %s", want);
    return -1;
}

/* The built-in texts, in enum order. */
static void texts_init(struct texts *t)
{
    cr_assert_eq(spot_embedded_schema_count, SPOT_V_COUNT);
    t->n = SPOT_V_COUNT;
    for (int v = 0; v < SPOT_V_COUNT; v++) {
        const struct spot_embedded_file *f =
            &spot_embedded_schemas[embedded_index(
                vertical_code((enum spot_vertical)v))];
        t->t[v] = strndup((const char *)f->data, f->len);
        cr_assert_not_null(t->t[v]);
    }
    t->t[SPOT_V_COUNT] = NULL;
}

static void texts_free(struct texts *t)
{
    for (size_t i = 0; i <= SPOT_V_COUNT; i++) {
        free(t->t[i]);
        t->t[i] = NULL;
    }
}

/* Replaces the first occurrence of from in text v with to. */
static void texts_edit(struct texts *t, enum spot_vertical v, const char *from,
                       const char *to)
{
    char *s = t->t[v];
    char *at = strstr(s, from);
    cr_assert_not_null(at, "%s: no \"%s\" to edit", vertical_code(v), from);
    size_t head = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
    size_t rest = strlen(at + fl);
    char *out = malloc(head + tl + rest + 1);
    cr_assert_not_null(out);
    memcpy(out, s, head);
    memcpy(out + head, to, tl);
    memcpy(out + head + tl, at + fl, rest + 1);
    free(s);
    t->t[v] = out;
}

static int texts_parse(struct texts *t, struct schema_set **out, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        t->p[i] = t->t[i];
        t->len[i] = strlen(t->t[i]);
    }
    return schema_set_parse(out, t->p, t->len, t->n, err, errlen);
}

/* Parsing the texts fails, and the message holds every string given. */
static void expect_reject(struct texts *t, const char *want1, const char *want2)
{
    struct schema_set *s = NULL;
    char err[512] = "";
    int rc = texts_parse(t, &s, err, sizeof err);
    cr_expect_eq(rc, SPOT_ECORRUPT, "rc %d, err \"%s\"", rc, err);
    cr_expect_null(s);
    cr_expect(strstr(err, want1) != NULL, "\"%s\" lacks \"%s\"", err, want1);
    if (want2 != NULL)
        cr_expect(strstr(err, want2) != NULL, "\"%s\" lacks \"%s\"", err,
                  want2);
    schema_set_free(s);
    texts_free(t);
}

/* One edit of vertical v must be refused with a message holding w1, w2. */
static void reject_edit(enum spot_vertical v, const char *from, const char *to,
                        const char *w1, const char *w2)
{
    struct texts t;
    texts_init(&t);
    texts_edit(&t, v, from, to);
    expect_reject(&t, w1, w2);
}

TestSuite(parse);

Test(parse, builtin_texts_parse_in_any_order)
{
    struct texts t;
    texts_init(&t);
    for (size_t i = 0; i < t.n / 2; i++) {
        char *tmp = t.t[i];
        t.t[i] = t.t[t.n - 1 - i];
        t.t[t.n - 1 - i] = tmp;
    }
    struct schema_set *s = NULL;
    char err[512] = "";
    cr_assert_eq(texts_parse(&t, &s, err, sizeof err), SPOT_OK, "%s", err);
    cr_expect_str_eq(schema_set_vertical(s, SPOT_V_WTO)->code, "wto");
    schema_set_free(s);
    texts_free(&t);
}

Test(parse, missing_vertical)
{
    struct texts t;
    texts_init(&t);
    free(t.t[SPOT_V_DHO]);
    t.t[SPOT_V_DHO] = NULL;
    t.n = SPOT_V_DHO;
    expect_reject(&t, "vertical dho is not defined", NULL);
}

Test(parse, vertical_twice)
{
    struct texts t;
    texts_init(&t);
    t.t[SPOT_V_COUNT] = strdup(t.t[SPOT_V_NLO]);
    t.n = SPOT_V_COUNT + 1;
    expect_reject(&t, "vertical nlo is defined twice", "text 7 (nlo)");
}

Test(parse, no_texts)
{
    struct schema_set *s = NULL;
    char err[256];
    cr_expect_eq(schema_set_parse(&s, NULL, NULL, 0, err, sizeof err),
                 SPOT_ECORRUPT);
    cr_expect_null(s);
    cr_expect(strstr(err, "is not defined") != NULL, "%s", err);
    cr_expect_eq(schema_set_parse(NULL, NULL, NULL, 0, err, sizeof err),
                 SPOT_EINVAL);
}

Test(parse, json_syntax)
{
    reject_edit(SPOT_V_AQO, "\"fields\": [", "\"fields\": [[", "text 0",
                "JSON syntax");
    reject_edit(SPOT_V_AQO, "{", "[", "text 0", "JSON syntax");
}

Test(parse, not_an_object)
{
    struct texts t;
    texts_init(&t);
    free(t.t[SPOT_V_AQO]);
    t.t[SPOT_V_AQO] = strdup("[1, 2]");
    expect_reject(&t, "text 0", "top level must be an object");
}

Test(parse, escaped_nul)
{
    reject_edit(SPOT_V_AQO, "Air Quality", "Air\\u0000Quality", "text 0",
                "NUL");
}

Test(parse, unknown_code)
{
    reject_edit(SPOT_V_AQO, "\"code\": \"aqo\"", "\"code\": \"xyz\"",
                "code \"xyz\" is not a vertical", NULL);
    reject_edit(SPOT_V_DHO, "\"code\": \"dho\"", "\"code\": \"DH0\"", "DH0",
                NULL);
    reject_edit(SPOT_V_DHO, "\"code\": \"dho\"", "\"code\": \"DHO\"",
                "in lower case", NULL);
    reject_edit(SPOT_V_DHO, "\"code\": \"dho\"", "\"code\": 7", "\"code\"",
                "must be a string");
}

Test(parse, unknown_keys)
{
    reject_edit(SPOT_V_AQO, "\"nullable\": true,",
                "\"nullable\": true, \"colour\": \"red\",", "field \"no2-a4\"",
                "unknown key \"colour\"");
    reject_edit(SPOT_V_AQO, "\"unitCode\": \"GQ\"", "\"unitcode\": \"GQ\"",
                "field \"no2-a4\"", "unknown key \"sdm.unitcode\"");
    reject_edit(SPOT_V_AQO, "\"table\"", "\"tables\"", "text 0 (aqo)",
                "unknown key \"tables\"");
    reject_edit(SPOT_V_CFE, "\"id_field\"", "\"idField\"", "(cfe)",
                "unknown key \"sdm.idField\"");
    reject_edit(SPOT_V_DHO, "\"text\": \"gprs\"",
                "\"text\": \"gprs\", \"x\": 1", "field \"networkBearer\"",
                "unknown key \"sdm.x\"");
}

Test(parse, key_twice)
{
    reject_edit(SPOT_V_AQO, "\"nullable\": true,",
                "\"nullable\": true, \"nullable\": true,", "field \"no2-a4\"",
                "key \"nullable\" given twice");
}

Test(parse, duplicate_field)
{
    reject_edit(SPOT_V_AQO, "\"name\": \"co-a4\"", "\"name\": \"no2-a4\"",
                "(aqo)", "name \"no2-a4\" is already used");
}

Test(parse, duplicate_alias)
{
    reject_edit(SPOT_V_CFO, "\"aliases\": [\"AvgDuration\"]",
                "\"aliases\": [\"peopleCount\"]", "(cfo)",
                "name \"peopleCount\" is already used by field "
                "\"peopleCount\"");
    reject_edit(SPOT_V_CFO, "\"aliases\": [\"AvgDuration\"]",
                "\"aliases\": [\"AvgDuration\", \"AvgDuration\"]",
                "field \"avgDuration\"", "already used");
    reject_edit(SPOT_V_CFO, "\"aliases\": [\"AvgDuration\"]",
                "\"aliases\": \"AvgDuration\"", "field \"avgDuration\"",
                "\"aliases\" must be an array");
}

Test(parse, duplicate_column)
{
    reject_edit(SPOT_V_AQO, "\"column\": \"co_a4\"", "\"column\": \"no2_a4\"",
                "field \"co-a4\"",
                "column \"no2_a4\" is already used by field \"no2-a4\"");
}

Test(parse, duplicate_sdm_name)
{
    reject_edit(SPOT_V_AQO, "\"name\": \"co\"", "\"name\": \"no2\"",
                "field \"co-a4\"", "sdm name \"no2\" is already used");
}

Test(parse, bad_types)
{
    reject_edit(SPOT_V_AQO, "\"type\": \"number\"", "\"type\": \"numbr\"",
                "field \"period\"", "type \"numbr\" is not one of");
    reject_edit(SPOT_V_AQO, "\"mandatory\": false", "\"mandatory\": \"no\"",
                "field \"no2-a4\"", "\"mandatory\" must be true or false");
    reject_edit(SPOT_V_AQO, "\"max\": 10080", "\"max\": \"10080\"",
                "field \"period\"", "\"max\" must be a number");
    reject_edit(SPOT_V_AQO, "\"max\": 10080", "\"max\": 1e999",
                "field \"period\"", "out of range");
    reject_edit(SPOT_V_AQO, "\"type\": \"Number\", \"unitCode\": \"GQ\"",
                "\"type\": \"Float\", \"unitCode\": \"GQ\"", "field \"no2-a4\"",
                "\"sdm.type\" \"Float\"");
    reject_edit(SPOT_V_AQO, "\"fields\": [", "\"fields\": 1, \"x\": [", "(aqo)",
                "unknown key \"x\"");
}

Test(parse, min_greater_than_max)
{
    reject_edit(SPOT_V_AQO, "\"max\": 10080", "\"max\": 0", "field \"period\"",
                "min 1 > max 0");
}

Test(parse, missing_keys)
{
    reject_edit(SPOT_V_AQO, "\"column\": \"no2_a4\",", "", "field \"no2-a4\"",
                "missing \"column\"");
    reject_edit(SPOT_V_AQO, "\"pg_type\": \"timestamptz\",", "",
                "field \"TimeInstant\"", "missing \"pg_type\"");
    reject_edit(SPOT_V_AQO, "\"name\": \"TimeInstant\",", "", "field #0",
                "missing \"name\"");
    reject_edit(SPOT_V_AQO, "\"mandatory\": false,", "", "field \"no2-a4\"",
                "missing \"mandatory\"");
    reject_edit(SPOT_V_AQO,
                ",\n      \"compat\": {\"name\": \"no2-a4\", "
                "\"type\": \"Number\"}",
                "", "field \"no2-a4\"", "missing \"compat\"");
}

Test(parse, pg_types)
{
    reject_edit(SPOT_V_AQO, "\"pg_type\": \"double precision\"",
                "\"pg_type\": \"float8\"", "field \"period\"",
                "pg_type \"float8\" is unknown");
    reject_edit(SPOT_V_DHO, "\"pg_type\": \"integer\"", "\"pg_type\": \"text\"",
                "field \"networkBearer\"", "does not fit");
}

Test(parse, sql_identifiers)
{
    reject_edit(SPOT_V_AQO, "\"column\": \"no2_a4\"", "\"column\": \"No2-A4\"",
                "field \"no2-a4\"", "not a legal SQL identifier");
    reject_edit(SPOT_V_AQO, "\"column\": \"no2_a4\"", "\"column\": \"2no\"",
                "field \"no2-a4\"", "not a legal SQL identifier");
    reject_edit(SPOT_V_AQO, "\"table\": \"air_quality\"",
                "\"table\": \"air quality\"", "(aqo)", "table \"air quality\"");
    reject_edit(SPOT_V_NLO, "\"table\": \"noise_level\"",
                "\"table\": \"air_quality\"", "(nlo)", "already used by aqo");
    reject_edit(SPOT_V_AQO, "\"column\": \"no2_a4\"", "\"column\": \"apikey\"",
                "field \"no2-a4\"", "reserved");
}

Test(parse, mandatory_nullable_key)
{
    /* the first "mandatory": false is no2-a4, a nullable sensor */
    reject_edit(SPOT_V_AQO, "\"mandatory\": false", "\"mandatory\": true",
                "field \"no2-a4\"", "cannot be nullable");
    reject_edit(SPOT_V_CFE,
                "\"mandatory\": true,\n      \"nullable\": false,\n"
                "      \"key\": true",
                "\"mandatory\": false,\n      \"nullable\": false,\n"
                "      \"key\": true",
                "field \"visitorId\"", "key field must be mandatory");
    reject_edit(SPOT_V_AQO, "\"column\": \"pm1\"",
                "\"key\": true, \"column\": \"pm1\"", "field \"pm1\"",
                "key field");
}

Test(parse, time_instant)
{
    reject_edit(SPOT_V_WTO, "\"name\": \"TimeInstant\"", "\"name\": \"Time\"",
                "field \"Time\"", "column time_instant belongs to TimeInstant");
    struct texts t;
    texts_init(&t);
    texts_edit(&t, SPOT_V_WTO, "\"name\": \"TimeInstant\"",
               "\"name\": \"Time\"");
    texts_edit(&t, SPOT_V_WTO, "\"column\": \"time_instant\"",
               "\"column\": \"time\"");
    expect_reject(&t, "text 2 (wto)", "no field TimeInstant");
    reject_edit(SPOT_V_WTO, "\"mandatory\": true", "\"mandatory\": false",
                "field \"TimeInstant\"", "TimeInstant must be");
}

Test(parse, allowed_values)
{
    reject_edit(SPOT_V_CFE, "\"allowed\": [1, 2]", "\"allowed\": [1, 2.5]",
                "field \"detectionType\"", "2.5 is not an integer");
    reject_edit(SPOT_V_CFE, "\"allowed\": [1, 2]", "\"allowed\": [1, 1]",
                "field \"detectionType\"", "given twice");
    reject_edit(SPOT_V_CFE, "\"allowed\": [1, 2]", "\"allowed\": []",
                "field \"detectionType\"", "\"allowed\" must hold");
    reject_edit(SPOT_V_CFO, "\"allowed\": [\"on\", \"off\"]",
                "\"allowed\": [\"on\", 0]", "field \"dataCollection\"",
                "must hold strings");
    reject_edit(SPOT_V_AQO, "\"column\": \"pm1\"",
                "\"allowed\": [1], \"column\": \"pm1\"", "field \"pm1\"",
                "integer and text fields only");
    reject_edit(SPOT_V_DEV, "\"max\": 3", "\"max\": 3, \"allowed\": [0, 4]",
                "field \"updateFirmwareState\"", "outside [min, max]");
}

Test(parse, conversions)
{
    reject_edit(SPOT_V_WTO, "\"convert\": \"div100\"", "\"convert\": \"div10\"",
                "field \"hum8\"", "\"sdm.convert\" \"div10\"");
    reject_edit(SPOT_V_DHO, ", {\"code\": 21, \"text\": \"wifi\"}", "",
                "field \"networkBearer\"", "exactly the \"allowed\"");
    reject_edit(SPOT_V_DHO, "{\"code\": 21, \"text\": \"wifi\"}",
                "{\"code\": 22, \"text\": \"wifi\"}", "field \"networkBearer\"",
                "code 22 is not an allowed value");
    reject_edit(SPOT_V_DHO, "\"convert\": \"code_text\", ", "",
                "field \"networkBearer\"", "only with it");
    reject_edit(SPOT_V_DEV, "\"convert\": \"bool_text\"",
                "\"convert\": \"div100\"", "field \"cellularEnabled\"",
                "div100");
    reject_edit(SPOT_V_CFE, "\"convert\": \"int_bool\"", "\"convert\": null",
                "field \"random\"", "Boolean needs a conversion");
    reject_edit(SPOT_V_AQO,
                "\"compat\": {\"name\": \"no2-a4\", "
                "\"type\": \"Number\"}",
                "\"compat\": {\"name\": \"no2-a4\", \"type\": \"Number\", "
                "\"convert\": \"div100\"}",
                "field \"no2-a4\"", "compat mapping does no conversions");
    reject_edit(SPOT_V_AQO, "\"unitCode\": \"GQ\"", "\"unitCode\": \"gq\"",
                "field \"no2-a4\"", "not a UN/CEFACT code");
}

Test(parse, ngsi_names)
{
    reject_edit(SPOT_V_AQO, "\"name\": \"no2\"", "\"name\": \"no 2\"",
                "field \"no2-a4\"", "not a legal NGSI attribute name");
    reject_edit(SPOT_V_AQO, "\"name\": \"no2\"", "\"name\": \"id\"",
                "field \"no2-a4\"", "not a legal NGSI attribute name");
    reject_edit(SPOT_V_AQO, "\"entity_type\": \"AirQualityObserved\"",
                "\"entity_type\": \"Air(Quality)\"", "(aqo)",
                "not a legal NGSI type");
    reject_edit(SPOT_V_CFE, "\"id_field\": \"visitorId\"",
                "\"id_field\": \"visitor\"", "(cfe)", "names no field");
    reject_edit(SPOT_V_CFE, "\"id_field\": \"visitorId\"",
                "\"id_field\": \"duration\"", "(cfe)",
                "mandatory, non-nullable text field");
}

Test(parse, patterns_and_lengths)
{
    reject_edit(SPOT_V_CFE, "\"pattern\": \"hex40\"", "\"pattern\": \"hex41\"",
                "field \"visitorId\"", "pattern \"hex41\" is unknown");
    reject_edit(SPOT_V_CFE, "\"max_length\": 40", "\"max_length\": 39",
                "field \"visitorId\"", "max_length >= 40");
    reject_edit(SPOT_V_DEV, "\"max_length\": 256", "\"max_length\": 0",
                "field \"modelName\"", "max_length must be an integer");
    reject_edit(SPOT_V_AQO, "\"column\": \"pm1\"",
                "\"max_length\": 5, \"column\": \"pm1\"", "field \"pm1\"",
                "text fields only");
}

Test(parse, tiny_error_buffers)
{
    struct texts t;
    texts_init(&t);
    texts_edit(&t, SPOT_V_AQO, "\"max\": 10080", "\"max\": 0");
    struct schema_set *s = NULL;
    char err[8];
    cr_expect_eq(texts_parse(&t, &s, err, sizeof err), SPOT_ECORRUPT);
    cr_expect_eq(strlen(err), sizeof err - 1);
    cr_expect_eq(texts_parse(&t, &s, NULL, 0), SPOT_ECORRUPT);
    cr_expect_null(s);
    texts_free(&t);
}
