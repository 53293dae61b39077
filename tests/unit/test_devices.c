/*
 * Devices table (src/agent/devices.c): the configuration's "devices"
 * object is validated whole, copied, and looked up by base device id.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "devices.h"

/* Builds a table from JSON text; the parsed tree is freed before the
 * table is used, so every lookup also checks that the table owns a copy. */
static int build(const char *json, struct devices **out, char *err,
                 size_t errlen)
{
    char perr[256];
    yajl_val root = yajl_tree_parse(json, perr, sizeof perr);
    cr_assert_not_null(root, "test JSON: %s", perr);
    int rc = devices_new(out, root, err, errlen);
    yajl_tree_free(root);
    return rc;
}

static struct devices *ok(const char *json)
{
    struct devices *d = NULL;
    char err[512] = "";
    cr_assert_eq(build(json, &d, err, sizeof err), SPOT_OK, "%s", err);
    cr_assert_not_null(d);
    return d;
}

static void refused(const char *json, const char *part1, const char *part2)
{
    struct devices *d = (struct devices *)1;
    char err[512] = "";
    cr_assert_eq(build(json, &d, err, sizeof err), SPOT_ECONFIG, "%s", json);
    cr_assert_null(d);
    cr_assert(strstr(err, part1) != NULL, "\"%s\" lacks \"%s\"", err, part1);
    if (part2 != NULL)
        cr_assert(strstr(err, part2) != NULL, "\"%s\" lacks \"%s\"", err,
                  part2);
}

static const struct device_static *find(const struct devices *d, const char *id)
{
    return devices_find(d, id, strlen(id));
}

Test(devices, null_node_is_an_empty_table)
{
    struct devices *d = NULL;
    char err[64];
    cr_assert_eq(devices_new(&d, NULL, err, sizeof err), SPOT_OK);
    cr_assert_null(find(d, "x"));
    devices_free(d);
    cr_assert_null(find(NULL, "x"));
    devices_free(NULL);
}

Test(devices, example_of_the_header)
{
    struct devices *d =
        ok("{\"SmartSpot_AQ_1\": {\"location\": [-1.13, 37.99],"
           " \"address\": \"Calle Mayor 1, Murcia\", \"name\": \"Plaza 1\"},"
           " \"SmartSpot_AQ_2\": {}}");
    const struct device_static *s = find(d, "SmartSpot_AQ_1");
    cr_assert_not_null(s);
    cr_assert_str_eq(s->device_id, "SmartSpot_AQ_1");
    cr_assert(s->has_location);
    cr_assert_float_eq(s->lon, -1.13, 1e-12);
    cr_assert_float_eq(s->lat, 37.99, 1e-12);
    cr_assert_eq(s->n_attrs, 2);
    cr_assert_str_eq(s->attrs[0].name, "address");
    cr_assert(YAJL_IS_STRING(s->attrs[0].value));
    cr_assert_str_eq(s->attrs[0].value->u.string, "Calle Mayor 1, Murcia");
    cr_assert_str_eq(s->attrs[1].name, "name");
    s = find(d, "SmartSpot_AQ_2");
    cr_assert_not_null(s);
    cr_assert(!s->has_location);
    cr_assert_eq(s->n_attrs, 0);
    cr_assert_null(find(d, "SmartSpot_AQ_3"));
    cr_assert_null(find(d, "SmartSpot_AQ_"));
    cr_assert_null(find(d, ""));
    /* the id need not be NUL-terminated: a prefix of a longer buffer */
    s = devices_find(d, "SmartSpot_AQ_1_AQO", 14);
    cr_assert_not_null(s);
    cr_assert_str_eq(s->device_id, "SmartSpot_AQ_1");
    devices_free(d);
}

Test(devices, values_are_any_json_and_copied)
{
    struct devices *d =
        ok("{\"d\":{\"n\":1.50,\"big\":12345678901234567890,\"t\":true,"
           "\"f\":false,\"z\":null,\"o\":{\"a\":[1,{\"b\":\"c\"}]},"
           "\"arr\":[]}}");
    const struct device_static *s = find(d, "d");
    cr_assert_eq(s->n_attrs, 7);
    cr_assert_str_eq(s->attrs[0].value->u.number.r, "1.50");
    cr_assert_str_eq(s->attrs[1].value->u.number.r, "12345678901234567890");
    cr_assert(YAJL_IS_TRUE(s->attrs[2].value));
    cr_assert(YAJL_IS_FALSE(s->attrs[3].value));
    cr_assert(YAJL_IS_NULL(s->attrs[4].value));
    const struct yajl_val_s *o = s->attrs[5].value;
    cr_assert(YAJL_IS_OBJECT(o) && o->u.object.len == 1);
    cr_assert_str_eq(o->u.object.keys[0], "a");
    const struct yajl_val_s *a = o->u.object.values[0];
    cr_assert(YAJL_IS_ARRAY(a));
    cr_assert_eq(a->u.array.len, 2);
    cr_assert(YAJL_IS_ARRAY(s->attrs[6].value));
    devices_free(d);
}

Test(devices, location_is_validated)
{
    refused("{\"d\":{\"location\":[1]}}", "\"d\"", "location");
    refused("{\"d\":{\"location\":[1,2,3]}}", "\"d\"", "[longitude, latitude]");
    refused("{\"d\":{\"location\":{\"lon\":1,\"lat\":2}}}", "\"d\"",
            "location");
    refused("{\"d\":{\"location\":[\"1\",\"2\"]}}", "\"d\"", "location");
    refused("{\"d\":{\"location\":[180.5,0]}}", "\"d\"", "longitude");
    refused("{\"d\":{\"location\":[0,-90.01]}}", "\"d\"", "latitude");
    refused("{\"d\":{\"location\":[37.99,-1.13],\"location\":[1,2]}}", "\"d\"",
            "twice");
    refused("{\"d\":{\"location\":[1e999,0]}}", "\"d\"", "location");
    struct devices *d = ok("{\"d\":{\"location\":[-180,90]},"
                           "\"e\":{\"location\":[180,-90]}}");
    cr_assert_float_eq(find(d, "d")->lon, -180, 0);
    cr_assert_float_eq(find(d, "e")->lat, -90, 0);
    devices_free(d);
}

Test(devices, names_are_validated)
{
    refused("{\"bad/id\":{}}", "\"bad/id\"", "device id");
    refused("{\"bad id\":{}}", "\"bad id\"", "device id");
    refused("{\"\":{}}", "device id", NULL);
    refused("{\"d\":{\"id\":1}}", "\"d\"", "key \"id\"");
    refused("{\"d\":{\"type\":\"x\"}}", "\"d\"", "\"type\"");
    refused("{\"d\":{\"dateCreated\":1}}", "\"d\"", "dateCreated");
    refused("{\"d\":{\"geo:distance\":1}}", "\"d\"", "geo:distance");
    refused("{\"d\":{\"a b\":1}}", "\"d\"", "\"a b\"");
    refused("{\"d\":{\"a=b\":1}}", "\"d\"", "\"a=b\"");
    refused("{\"d\":{\"TimeInstant\":1}}", "\"d\"", "TimeInstant");
    refused("{\"d\":{\"name\":1,\"name\":2}}", "\"d\"", "twice");
    refused("{\"d\":{},\"e\":{},\"d\":{}}", "\"d\"", "listed twice");
    refused("{\"d\":[1,2]}", "\"d\"", "object");
    refused("{\"d\":\"x\"}", "\"d\"", "object");
}

Test(devices, values_are_bounded)
{
    refused("{\"d\":{\"n\":1e999}}", "\"n\"", "range");
    refused("{\"d\":{\"o\":{\"n\":[-1e999]}}}", "\"o\"", "range");
    char deep[256];
    size_t n = (size_t)snprintf(deep, sizeof deep, "{\"d\":{\"x\":");
    for (int i = 0; i < 20; i++)
        deep[n++] = '[';
    for (int i = 0; i < 20; i++)
        deep[n++] = ']';
    snprintf(deep + n, sizeof deep - n, "}}");
    refused(deep, "\"x\"", "deep");
    char many[4096];
    n = (size_t)snprintf(many, sizeof many, "{\"d\":{");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(many + n, sizeof many - n, "%s\"k%d\":%d",
                              i ? "," : "", i, i);
    snprintf(many + n, sizeof many - n, "}}");
    refused(many, "\"d\"", "64");
}

Test(devices, top_level_must_be_an_object)
{
    refused("[]", "devices", "object");
    refused("1", "devices", "object");
}

Test(devices, many_devices_are_found)
{
    enum { N = 2000 };
    char *json = malloc(N * 48 + 16);
    cr_assert_not_null(json);
    size_t n = 0;
    json[n++] = '{';
    /* reverse order, so the table has to sort */
    for (int i = N - 1; i >= 0; i--)
        n += (size_t)snprintf(json + n, 48, "%s\"dev%05d\":{\"k\":%d}",
                              i == N - 1 ? "" : ",", i, i);
    json[n++] = '}';
    json[n] = '\0';
    struct devices *d = ok(json);
    free(json);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, "dev%05d", i);
        const struct device_static *s = find(d, id);
        cr_assert_not_null(s, "%s", id);
        cr_assert_str_eq(s->device_id, id);
        cr_assert_eq(s->attrs[0].value->u.number.i, i);
    }
    cr_assert_null(find(d, "dev0"));
    cr_assert_null(find(d, "dev020000"));
    devices_free(d);
}
