/*
 * MQTT ingress over Paho MQTTAsync. Paho runs every callback of every
 * client on one library thread; messageArrived does the minimum (journal,
 * count, free) and returns. A small supervisor thread makes the first
 * connection with back-off, because Paho's automatic reconnect only covers
 * connections that were once established.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "spot/clock.h"
#include "spot/err.h"
#include "spot/limits.h"
#include "spot/log.h"
#include "spot/topic.h"
#include "mqtt_ingress.h"
#include "activity.h"
#include "dead_record.h"

#define MOD "mqtt"

enum conn_state { ST_IDLE, ST_CONNECTING, ST_UP, ST_FAILED };

struct ingress {
    const struct agent_config *cfg;
    char url_for_logs[512]; /* mqtt_url without credentials */
    struct journal *journal;
    struct metrics *metrics;
    struct activity *activity;
    MQTTAsync client;
    char *filters[SPOT_MQTT_MAX_TOPICS];
    int qos[SPOT_MQTT_MAX_TOPICS];
    int n_filters;

    pthread_t supervisor;
    int supervisor_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    enum conn_state state; /* guarded by lock */
    int established;       /* a connection succeeded once: Paho reconnects */
    atomic_int stopping;   /* ingress_stop began: set under lock, also read
                              without it by the callback */
    int disconnected;      /* disconnect completed */
    atomic_int connected;
    atomic_int stuck; /* the callback retries a refused append */
    int abandoned;    /* stopped with the callback stuck */
};

static void set_state(struct ingress *in, enum conn_state st)
{
    pthread_mutex_lock(&in->lock);
    in->state = st;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

/* --- callbacks (Paho thread) --------------------------------------------- */

/* One attempt to journal a message. Larger than the journal keeps: a
 * too_large dead letter with its first SPOT_MAX_JOURNAL_PAYLOAD bytes and
 * its real size in the detail; past a dead letter's topic cap (hostile),
 * the truncated payload alone, which the validator rejects. */
static int keep_message(struct journal *j, const char *topic, size_t tlen,
                        const void *payload, size_t len, int64_t now)
{
    if (len <= SPOT_MAX_JOURNAL_PAYLOAD)
        return journal_append(j, topic, tlen, payload, len, now);
    if (tlen > DEAD_RECORD_MAX_TOPIC_LEN)
        return journal_append(j, topic, tlen, payload, SPOT_MAX_JOURNAL_PAYLOAD,
                              now);
    char detail[128];
    int n = snprintf(detail, sizeof detail,
                     "payload of %zu bytes exceeds %d bytes (the first %d "
                     "are kept)",
                     len, SPOT_MAX_PAYLOAD_LEN, SPOT_MAX_JOURNAL_PAYLOAD);
    struct dead_record big = {
        .reason = REJECT_TOO_LARGE,
        .detail = detail,
        .detail_len = n > 0 ? (size_t)n : 0,
        .topic = topic,
        .topic_len = tlen,
        .payload = payload,
        .payload_len = SPOT_MAX_JOURNAL_PAYLOAD,
        .received_us = now,
    };
    return dead_record_append(j, &big, true);
}

static int on_message(void *ctx, char *topic, int topic_len,
                      MQTTAsync_message *msg)
{
    struct ingress *in = ctx;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    int64_t now = spot_now_us();

    struct topic_parts tp;
    int vertical = topic_parse(topic, tlen, &tp, NULL, 0) == SPOT_OK
                       ? (int)tp.vertical
                       : METRICS_VERTICAL_UNKNOWN;
    metrics_received(in->metrics, vertical);
    if (vertical != METRICS_VERTICAL_UNKNOWN)
        activity_seen(in->activity, tp.apikey, tp.apikey_len, tp.device,
                      tp.device_len, tp.vertical, now);

    size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    if (len > SPOT_MAX_JOURNAL_PAYLOAD)
        log_msg(LOG_WARN, MOD,
                "message of %zu bytes on %.*s: kept as a dead letter, "
                "truncated to %d bytes",
                len, (int)(tlen > 200 ? 200 : tlen), topic,
                SPOT_MAX_JOURNAL_PAYLOAD);
    int backoff_ms = 100;
    for (;;) {
        int rc = keep_message(in->journal, topic, tlen, msg->payload, len, now);
        if (rc == SPOT_OK)
            break;
        /* Disk trouble: the broker must not get a PUBACK for a message we
         * could not keep, so wait here (the broker holds the rest). Paho
         * holds its client lock around this callback and acknowledges
         * when it returns, so even a stop has to wait: ingress_stop gives
         * up on us after a deadline and the process exits without the
         * acknowledgement (see ingress_abandoned). */
        atomic_store(&in->stuck, 1);
        log_msg(LOG_ERROR, MOD, "journal append failed: %s; retrying in %d ms",
                spot_strerror(rc), backoff_ms);
        for (int waited = 0; waited < backoff_ms; waited += 100) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (backoff_ms < 5000 && !atomic_load(&in->stopping))
            backoff_ms *= 2;
    }
    atomic_store(&in->stuck, 0);
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connection_lost(void *ctx, char *cause)
{
    struct ingress *in = ctx;
    atomic_store(&in->connected, 0);
    metrics_mqtt_connected(in->metrics, 0);
    log_msg(LOG_WARN, MOD, "connection to %s lost: %s; reconnecting",
            in->url_for_logs, cause ? cause : "unknown cause");
}

static void on_subscribe_ok(void *ctx, MQTTAsync_successData *resp)
{
    struct ingress *in = ctx;
    (void)resp;
    atomic_store(&in->connected, 1);
    metrics_mqtt_connected(in->metrics, 1);
    log_msg(LOG_INFO, MOD, "subscribed to %d filter(s) at QoS %d",
            in->n_filters, in->cfg->mqtt_qos);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData *resp)
{
    struct ingress *in = ctx;
    log_msg(LOG_ERROR, MOD, "subscribe failed (code %d): %s; reconnecting",
            resp ? resp->code : 0,
            resp && resp->message ? resp->message : "refused");
    /* Drop the connection: the automatic reconnect subscribes again. */
    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnect(in->client, &opts);
}

/* Runs after every successful connect, the first and each reconnect. */
static void on_connected(void *ctx, char *cause)
{
    struct ingress *in = ctx;
    (void)cause;
    pthread_mutex_lock(&in->lock);
    in->established = 1;
    in->state = ST_UP;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    log_msg(LOG_INFO, MOD, "connected to %s as %s", in->url_for_logs,
            in->cfg->mqtt_client_id);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribe_ok;
    ro.onFailure = on_subscribe_fail;
    ro.context = in;
    int rc = MQTTAsync_subscribeMany(in->client, in->n_filters, in->filters,
                                     in->qos, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        log_msg(LOG_ERROR, MOD, "subscribe request failed: %s",
                MQTTAsync_strerror(rc));
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
    struct ingress *in = ctx;
    log_msg(LOG_WARN, MOD, "cannot connect to %s: %s (code %d)",
            in->url_for_logs,
            resp && resp->message ? resp->message : "no answer",
            resp ? resp->code : 0);
    set_state(in, ST_FAILED);
}

static void on_disconnected(void *ctx, MQTTAsync_successData *resp)
{
    struct ingress *in = ctx;
    (void)resp;
    pthread_mutex_lock(&in->lock);
    in->disconnected = 1;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *resp)
{
    (void)resp;
    on_disconnected(ctx, NULL);
}

/* --- connecting ------------------------------------------------------------
 */

static int request_connect(struct ingress *in)
{
    const struct agent_config *c = in->cfg;
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.cleansession = 0;
    opts.keepAliveInterval = 30;
    opts.connectTimeout = 10;
    opts.automaticReconnect = 1;
    opts.minRetryInterval = SPOT_MQTT_RETRY_MIN_S;
    opts.maxRetryInterval = SPOT_MQTT_RETRY_MAX_S;
    opts.username = c->mqtt_username;
    opts.password = c->mqtt_password;
    opts.onFailure = on_connect_fail;
    opts.context = in;
    if (strncmp(c->mqtt_url, "mqtts://", 8) == 0 ||
        strncmp(c->mqtt_url, "wss://", 6) == 0) {
        ssl.trustStore = c->mqtt_ca;
        ssl.keyStore = c->mqtt_cert;
        ssl.privateKey = c->mqtt_key;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1; /* check the broker's host name */
        opts.ssl = &ssl;
    }
    set_state(in, ST_CONNECTING);
    int rc = MQTTAsync_connect(in->client, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        log_msg(LOG_WARN, MOD, "connect request failed: %s",
                MQTTAsync_strerror(rc));
        set_state(in, ST_FAILED);
    }
    return rc;
}

/* Makes the first connection, retrying with exponential back-off. */
static void *supervise(void *arg)
{
    struct ingress *in = arg;
    int backoff_ms = SPOT_MQTT_RETRY_MIN_S * 1000;
    pthread_mutex_lock(&in->lock);
    while (!in->stopping && !in->established) {
        if (in->state == ST_IDLE || in->state == ST_FAILED) {
            int retry = in->state == ST_FAILED;
            pthread_mutex_unlock(&in->lock);
            if (retry) {
                /* wait out the back-off, waking early on stop */
                int64_t until = spot_mono_ms() + backoff_ms;
                pthread_mutex_lock(&in->lock);
                while (!in->stopping && spot_mono_ms() < until) {
                    struct timespec ts;
                    clock_gettime(CLOCK_REALTIME, &ts);
                    ts.tv_nsec += 100 * 1000000L;
                    if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                    }
                    pthread_cond_timedwait(&in->cond, &in->lock, &ts);
                }
                int stop = in->stopping;
                pthread_mutex_unlock(&in->lock);
                if (stop)
                    break;
                if (backoff_ms < SPOT_MQTT_RETRY_MAX_S * 1000)
                    backoff_ms *= 2;
            }
            request_connect(in);
            pthread_mutex_lock(&in->lock);
            continue;
        }
        pthread_cond_wait(&in->cond, &in->lock);
    }
    pthread_mutex_unlock(&in->lock);
    return NULL;
}

/* The delivery guarantee rests on Paho calling messageArrived before it
 * sends the PUBACK of a QoS 1 message (and holding it while the callback
 * runs). Paho before 1.3.10 acknowledged first: a crash then loses the
 * message in hand. Said once at start-up. */
static void check_paho_version(void)
{
    const MQTTAsync_nameValue *info = MQTTAsync_getVersionInfo();
    for (; info != NULL && info->name != NULL; info++) {
        if (strcmp(info->name, "Version") != 0 || info->value == NULL)
            continue;
        unsigned a = 0, b = 0, c = 0;
        if (sscanf(info->value, "%u.%u.%u", &a, &b, &c) >= 2 &&
            (a < 1 || (a == 1 && (b < 3 || (b == 3 && c < 10)))))
            log_msg(LOG_WARN, MOD,
                    "Paho MQTT C %s acknowledges a QoS 1 message before the "
                    "agent has journaled it (changed in 1.3.10): a crash "
                    "can lose the message in hand",
                    info->value);
        return;
    }
}

int ingress_new(struct ingress **out, const struct agent_config *cfg,
                struct journal *journal, struct metrics *metrics)
{
    struct ingress *in = calloc(1, sizeof *in);
    if (in == NULL)
        return SPOT_ENOMEM;
    check_paho_version();
    in->cfg = cfg;
    log_redact_url(cfg->mqtt_url, in->url_for_logs, sizeof in->url_for_logs);
    in->journal = journal;
    in->metrics = metrics;
    pthread_mutex_init(&in->lock, NULL);
    pthread_cond_init(&in->cond, NULL);
    int rc = SPOT_OK;
    for (int i = 0; i < cfg->n_mqtt_topics; i++) {
        size_t n = strlen(cfg->mqtt_topics[i]) + 1;
        if (cfg->mqtt_share_group)
            n += strlen(cfg->mqtt_share_group) + 8;
        in->filters[i] = malloc(n);
        if (in->filters[i] == NULL) {
            rc = SPOT_ENOMEM;
            goto out;
        }
        if (cfg->mqtt_share_group)
            snprintf(in->filters[i], n, "$share/%s/%s", cfg->mqtt_share_group,
                     cfg->mqtt_topics[i]);
        else
            snprintf(in->filters[i], n, "%s", cfg->mqtt_topics[i]);
        in->qos[i] = cfg->mqtt_qos;
        in->n_filters = i + 1;
    }

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    int prc = MQTTAsync_createWithOptions(
        &in->client, cfg->mqtt_url, cfg->mqtt_client_id,
        MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (prc != MQTTASYNC_SUCCESS) {
        log_msg(LOG_ERROR, MOD, "cannot create client for %s: %s",
                in->url_for_logs, MQTTAsync_strerror(prc));
        rc = SPOT_ECONFIG;
        goto out;
    }
    prc = MQTTAsync_setCallbacks(in->client, in, on_connection_lost, on_message,
                                 NULL);
    if (prc == MQTTASYNC_SUCCESS)
        prc = MQTTAsync_setConnected(in->client, in, on_connected);
    if (prc != MQTTASYNC_SUCCESS) {
        log_msg(LOG_ERROR, MOD, "cannot set callbacks: %s",
                MQTTAsync_strerror(prc));
        rc = SPOT_ECONFIG;
    }
out:
    if (rc != SPOT_OK) {
        ingress_free(in);
        return rc;
    }
    *out = in;
    return SPOT_OK;
}

int ingress_start(struct ingress *in)
{
    if (pthread_create(&in->supervisor, NULL, supervise, in) != 0)
        return SPOT_ENOMEM;
    in->supervisor_started = 1;
    return SPOT_OK;
}

void ingress_stop(struct ingress *in)
{
    if (in == NULL || !in->supervisor_started)
        return;
    pthread_mutex_lock(&in->lock);
    in->stopping = 1;
    pthread_cond_broadcast(&in->cond);
    pthread_mutex_unlock(&in->lock);
    pthread_join(in->supervisor, NULL);
    in->supervisor_started = 0;

    /* A callback stuck on a refused append holds Paho's lock: any Paho
     * call would wait for it. Give the disk a little time, then leave
     * the client as it is; the caller must exit without freeing. */
    int64_t stuck_until = spot_mono_ms() + SPOT_SHUTDOWN_DRAIN_MS;
    while (atomic_load(&in->stuck) && spot_mono_ms() < stuck_until) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (atomic_load(&in->stuck)) {
        in->abandoned = 1;
        log_msg(LOG_ERROR, MOD,
                "stopping while the journal refuses appends: the message "
                "in hand is not acknowledged and stays with the broker");
        return;
    }

    MQTTAsync_disconnectOptions opts = MQTTAsync_disconnectOptions_initializer;
    opts.timeout = 2000;
    opts.onSuccess = on_disconnected;
    opts.onFailure = on_disconnect_fail;
    opts.context = in;
    if (MQTTAsync_disconnect(in->client, &opts) == MQTTASYNC_SUCCESS) {
        int64_t deadline = spot_mono_ms() + 5000;
        pthread_mutex_lock(&in->lock);
        while (!in->disconnected && spot_mono_ms() < deadline) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&in->cond, &in->lock, &ts);
        }
        pthread_mutex_unlock(&in->lock);
    }
    atomic_store(&in->connected, 0);
    metrics_mqtt_connected(in->metrics, 0);
    log_msg(LOG_INFO, MOD, "disconnected; the broker keeps the session");
}

int ingress_abandoned(const struct ingress *in)
{
    return in != NULL && in->abandoned;
}

void ingress_free(struct ingress *in)
{
    if (in == NULL)
        return;
    ingress_stop(in);
    if (in->abandoned)
        return; /* Paho's thread still runs our callback: keep it all */
    if (in->client)
        MQTTAsync_destroy(&in->client);
    for (int i = 0; i < in->n_filters; i++)
        free(in->filters[i]);
    pthread_mutex_destroy(&in->lock);
    pthread_cond_destroy(&in->cond);
    free(in);
}

int ingress_is_connected(const struct ingress *in)
{
    return atomic_load(&in->connected);
}

void ingress_set_activity(struct ingress *in, struct activity *a)
{
    in->activity = a;
}
