/* Dead-letter journal records: round trip through a real journal, several
 * appending threads, and rejection of malformed records. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spot/err.h"
#include "dead_record.h"
#include "journal.h"

static char dir[64];
static struct journal *j;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/spot-dead-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct journal_options o = {dir, 100, 1 << 20, 1 << 16};
    cr_assert_eq(journal_open(&j, &o), SPOT_OK);
}

static void teardown(void)
{
    journal_close(j);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(dead_record, .init = setup, .fini = teardown);

Test(dead_record, round_trip)
{
    const unsigned char payload[] = {'{', 0, 0xff, '}'};
    struct dead_record d = {
        .reason = REJECT_NGSI,
        .detail = "Orion said: Invalid characters in attribute value",
        .detail_len = 49,
        .topic = "/kaqo/d_AQO/attrs",
        .topic_len = 17,
        .payload = payload,
        .payload_len = sizeof payload,
        .received_us = 1234567,
    };
    cr_assert_eq(journal_append(j, "/kaqo/d_AQO/attrs", 17, "{}", 2, 1),
                 SPOT_OK);
    cr_assert_eq(dead_record_append(j, &d, false), SPOT_OK);
    struct journal_cursor *c;
    cr_assert_eq(journal_cursor_open(j, "t", &c), SPOT_OK);
    struct journal_entry e;
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
    cr_assert_eq(dead_record_is(&e), 0, "a device message is not one");
    struct dead_record got;
    cr_assert_eq(dead_record_decode(&e, &got), SPOT_ECORRUPT);
    cr_assert_eq(journal_cursor_next(c, 0, &e), SPOT_OK);
    cr_assert(dead_record_is(&e));
    cr_assert_eq(dead_record_decode(&e, &got), SPOT_OK);
    cr_assert_eq(got.reason, REJECT_NGSI);
    cr_assert_eq(got.received_us, 1234567);
    cr_assert_eq(got.topic_len, 17);
    cr_assert(memcmp(got.topic, "/kaqo/d_AQO/attrs", 17) == 0);
    cr_assert_eq(got.detail_len, 49);
    cr_assert(memcmp(got.detail, d.detail, 49) == 0);
    cr_assert_eq(got.payload_len, sizeof payload);
    cr_assert(memcmp(got.payload, payload, sizeof payload) == 0);
    journal_cursor_close(c);
}

Test(dead_record, malformed_records_are_refused)
{
    /* the right topic, a payload too short or lying about its lengths */
    struct journal_entry e = {0};
    e.topic = "$spotagent/dead/ngsi_rejected";
    e.topic_len = strlen(e.topic);
    unsigned char bad[12] = {200, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c', 'd'};
    e.payload = bad;
    e.payload_len = 4;
    struct dead_record d;
    cr_assert_eq(dead_record_decode(&e, &d), SPOT_ECORRUPT);
    e.payload_len = sizeof bad;
    cr_assert_eq(dead_record_decode(&e, &d), SPOT_ECORRUPT);
    e.topic = "$spotagent/dead/bogus";
    e.topic_len = strlen(e.topic);
    bad[0] = 0;
    cr_assert_eq(dead_record_decode(&e, &d), SPOT_ECORRUPT);
}

struct writer {
    int id;
    int n;
};

static void *write_many(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < w->n; i++) {
        char topic[64];
        int len = snprintf(topic, sizeof topic, "/w%d/%d/attrs", w->id, i);
        if (w->id == 0) {
            journal_append(j, topic, (size_t)len, "x", 1, i);
        } else {
            struct dead_record d = {REJECT_NGSI, "d",
                                    1,           topic,
                                    (size_t)len, (const unsigned char *)"y",
                                    1,           i};
            dead_record_append(j, &d, false);
        }
    }
    return NULL;
}

Test(dead_record, appends_from_several_threads_stay_whole)
{
    enum { N = 3000 };
    pthread_t t[3];
    struct writer w[3] = {{0, N}, {1, N}, {2, N}};
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, write_many, &w[i]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    struct journal_cursor *c;
    cr_assert_eq(journal_cursor_open(j, "t", &c), SPOT_OK);
    struct journal_entry e;
    int seen[3] = {0, 0, 0};
    int next[3] = {0, 0, 0};
    while (journal_cursor_next(c, 0, &e) == SPOT_OK) {
        int who = 0, idx;
        if (dead_record_is(&e)) {
            struct dead_record d;
            cr_assert_eq(dead_record_decode(&e, &d), SPOT_OK);
            cr_assert_eq(sscanf(d.topic, "/w%d/%d/", &who, &idx), 2);
        } else {
            cr_assert_eq(sscanf(e.topic, "/w%d/%d/", &who, &idx), 2);
        }
        cr_assert_eq(idx, next[who], "writer %d out of order", who);
        next[who]++;
        seen[who]++;
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(seen[i], N, "writer %d: %d records", i, seen[i]);
    journal_cursor_close(c);
}
