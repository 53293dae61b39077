/*
 * Per-device static attributes: the configuration file's "devices" object,
 * validated whole and turned into an immutable table sorted by device id
 * (devices_find is a binary search, called once per message by the NGSI
 * encoders). The table owns a private copy of the configuration subtree:
 * the node is re-generated with yajl_gen and re-parsed, so the caller may
 * free its tree at once. Built on the main thread; read by any.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "spot/err.h"
#include "spot/limits.h"
#include "spot/topic.h"
#include "devices.h"
#include "ngsi_encode.h"

/* Static attributes one device may declare besides its location. */
#define DEVICES_MAX_ATTRS 64

struct dev_entry {
    struct device_static st;
    size_t id_len;
};

struct devices {
    yajl_val root; /* private copy of the "devices" object */
    struct dev_entry *items;
    size_t n;
    struct device_attr *attrs; /* all devices' attributes, in one array */
};

static int fail(char *err, size_t errlen, const char *dev, const char *key,
                const char *msg)
{
    if (errlen == 0)
        return SPOT_ECONFIG;
    if (key != NULL)
        snprintf(err, errlen, "devices: device \"%.64s\", key \"%.64s\": %s",
                 dev, key, msg);
    else if (dev != NULL)
        snprintf(err, errlen, "devices: device \"%.64s\": %s", dev, msg);
    else
        snprintf(err, errlen, "devices: %s", msg);
    return SPOT_ECONFIG;
}

/* --- private copy of the subtree ----------------------------------------- */

/* Checks a static value: finite numbers, nesting within the JSON depth
 * cap. Returns 0 or a message. */
static const char *check_value(const struct yajl_val_s *v, int depth)
{
    if (depth > SPOT_MAX_JSON_DEPTH)
        return "value nested too deeply";
    if (YAJL_IS_NUMBER(v)) {
        if (!(v->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ||
            !isfinite(v->u.number.d))
            return "number out of the range of a double";
        return NULL;
    }
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++) {
            const char *m = check_value(v->u.object.values[i], depth + 1);
            if (m != NULL)
                return m;
        }
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            const char *m = check_value(v->u.array.values[i], depth + 1);
            if (m != NULL)
                return m;
        }
    }
    return NULL;
}

/* Writes v with g (depth already checked). */
static yajl_gen_status regen(yajl_gen g, const struct yajl_val_s *v)
{
    yajl_gen_status st = yajl_gen_status_ok;
    switch (v->type) {
    case yajl_t_string:
        return yajl_gen_string(g, (const unsigned char *)v->u.string,
                               strlen(v->u.string));
    case yajl_t_number:
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    case yajl_t_true:
        return yajl_gen_bool(g, 1);
    case yajl_t_false:
        return yajl_gen_bool(g, 0);
    case yajl_t_null:
        return yajl_gen_null(g);
    case yajl_t_object:
        st = yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len && st == yajl_gen_status_ok;
             i++) {
            const char *k = v->u.object.keys[i];
            st = yajl_gen_string(g, (const unsigned char *)k, strlen(k));
            if (st == yajl_gen_status_ok)
                st = regen(g, v->u.object.values[i]);
        }
        return st == yajl_gen_status_ok ? yajl_gen_map_close(g) : st;
    case yajl_t_array:
        st = yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len && st == yajl_gen_status_ok; i++)
            st = regen(g, v->u.array.values[i]);
        return st == yajl_gen_status_ok ? yajl_gen_array_close(g) : st;
    case yajl_t_any:
        break;
    }
    return yajl_gen_invalid_string;
}

/* Copies node into a tree of our own. */
static int copy_tree(yajl_val *out, const struct yajl_val_s *node, char *err,
                     size_t errlen)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return SPOT_ENOMEM;
    int rc = SPOT_OK;
    char *text = NULL;
    const unsigned char *buf;
    size_t len;
    if (regen(g, node) != yajl_gen_status_ok ||
        yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        rc = fail(err, errlen, NULL, NULL, "cannot copy the devices object");
        goto out;
    }
    text = malloc(len + 1);
    if (text == NULL) {
        rc = SPOT_ENOMEM;
        goto out;
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    char perr[128];
    *out = yajl_tree_parse(text, perr, sizeof perr);
    if (*out == NULL)
        rc = fail(err, errlen, NULL, NULL, "cannot copy the devices object");
out:
    free(text);
    yajl_gen_free(g);
    return rc;
}

/* --- validation ---------------------------------------------------------- */

static int parse_location(struct device_static *st, const char *dev,
                          const struct yajl_val_s *v, char *err, size_t errlen)
{
    if (st->has_location)
        return fail(err, errlen, dev, "location", "given twice");
    if (!YAJL_IS_ARRAY(v) || v->u.array.len != 2 ||
        !YAJL_IS_NUMBER(v->u.array.values[0]) ||
        !YAJL_IS_NUMBER(v->u.array.values[1]))
        return fail(err, errlen, dev, "location",
                    "must be [longitude, latitude], two numbers");
    const struct yajl_val_s *lon = v->u.array.values[0];
    const struct yajl_val_s *lat = v->u.array.values[1];
    if (!(lon->u.number.flags & YAJL_NUMBER_DOUBLE_VALID) ||
        !(lat->u.number.flags & YAJL_NUMBER_DOUBLE_VALID))
        return fail(err, errlen, dev, "location", "numbers out of range");
    st->lon = lon->u.number.d;
    st->lat = lat->u.number.d;
    if (!(st->lon >= -180.0 && st->lon <= 180.0))
        return fail(err, errlen, dev, "location",
                    "longitude (first number) must be in [-180, 180]");
    if (!(st->lat >= -90.0 && st->lat <= 90.0))
        return fail(err, errlen, dev, "location",
                    "latitude (second number) must be in [-90, 90]");
    st->has_location = true;
    return SPOT_OK;
}

static int parse_device(struct dev_entry *e, struct device_attr *attrs,
                        const char *dev, const struct yajl_val_s *obj,
                        char *err, size_t errlen)
{
    size_t len = strlen(dev);
    if (!topic_id_is_legal(dev, len))
        return fail(err, errlen, dev, NULL,
                    "not a legal device id (1-256 printable ASCII "
                    "characters, none of < > \" ' = ; ( ) & ? / # % +)");
    if (!YAJL_IS_OBJECT(obj))
        return fail(err, errlen, dev, NULL,
                    "must be an object of static attributes");
    e->st.device_id = dev;
    e->id_len = len;
    e->st.attrs = attrs;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        const char *key = obj->u.object.keys[i];
        const struct yajl_val_s *v = obj->u.object.values[i];
        for (size_t j = 0; j < i; j++)
            if (strcmp(obj->u.object.keys[j], key) == 0)
                return fail(err, errlen, dev, key, "given twice");
        if (strcmp(key, "location") == 0) {
            int rc = parse_location(&e->st, dev, v, err, errlen);
            if (rc != SPOT_OK)
                return rc;
            continue;
        }
        if (!ngsi_name_is_legal(key, strlen(key)))
            return fail(err, errlen, dev, key,
                        "not a legal NGSI attribute name (1-256 printable "
                        "ASCII characters, none of < > \" ' = ; ( ) & ? / # "
                        "or space)");
        if (!ngsi_attr_name_is_legal(key, strlen(key)))
            return fail(err, errlen, dev, key,
                        "a name NGSI reserves (id, type, geo:distance, *, "
                        "dateCreated, dateModified, dateExpires, servicePath, "
                        "alterationType)");
        if (strcmp(key, "TimeInstant") == 0)
            return fail(err, errlen, dev, key,
                        "TimeInstant is the observation time, set by each "
                        "message");
        if (e->st.n_attrs == DEVICES_MAX_ATTRS)
            return fail(err, errlen, dev, key,
                        "more than 64 static attributes");
        const char *m = check_value(v, 1);
        if (m != NULL)
            return fail(err, errlen, dev, key, m);
        attrs[e->st.n_attrs++] = (struct device_attr){key, v};
    }
    return SPOT_OK;
}

static int id_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const struct dev_entry *a = pa, *b = pb;
    return id_cmp(a->st.device_id, a->id_len, b->st.device_id, b->id_len);
}

int devices_new(struct devices **out, const struct yajl_val_s *node, char *err,
                size_t errlen)
{
    *out = NULL;
    struct devices *d = calloc(1, sizeof *d);
    if (d == NULL)
        return SPOT_ENOMEM;
    int rc = SPOT_OK;
    if (node == NULL)
        goto out;
    if (!YAJL_IS_OBJECT(node)) {
        rc = fail(err, errlen, NULL, NULL,
                  "must be an object: device id -> static attributes");
        goto out;
    }
    rc = copy_tree(&d->root, node, err, errlen);
    if (rc != SPOT_OK)
        goto out;
    const struct yajl_val_s *root = d->root;
    size_t n = root->u.object.len, n_attrs = 0;
    for (size_t i = 0; i < n; i++) {
        const struct yajl_val_s *v = root->u.object.values[i];
        if (YAJL_IS_OBJECT(v))
            n_attrs += v->u.object.len;
    }
    d->items = calloc(n + 1, sizeof *d->items);
    d->attrs = calloc(n_attrs + 1, sizeof *d->attrs);
    if (d->items == NULL || d->attrs == NULL) {
        rc = SPOT_ENOMEM;
        goto out;
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        rc = parse_device(&d->items[i], d->attrs + used, root->u.object.keys[i],
                          root->u.object.values[i], err, errlen);
        if (rc != SPOT_OK)
            goto out;
        used += d->items[i].st.n_attrs;
    }
    d->n = n;
    qsort(d->items, d->n, sizeof *d->items, entry_cmp);
    for (size_t i = 1; i < d->n; i++) {
        if (entry_cmp(&d->items[i - 1], &d->items[i]) == 0) {
            rc = fail(err, errlen, d->items[i].st.device_id, NULL,
                      "listed twice");
            goto out;
        }
    }
out:
    if (rc != SPOT_OK) {
        devices_free(d);
        return rc;
    }
    *out = d;
    return SPOT_OK;
}

void devices_free(struct devices *d)
{
    if (d == NULL)
        return;
    yajl_tree_free(d->root);
    free(d->items);
    free(d->attrs);
    free(d);
}

const struct device_static *devices_find(const struct devices *d,
                                         const char *device_id, size_t len)
{
    if (d == NULL)
        return NULL;
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct dev_entry *e = &d->items[mid];
        int c = id_cmp(device_id, len, e->st.device_id, e->id_len);
        if (c == 0)
            return &e->st;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
