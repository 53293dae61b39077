/*
 * The device's MQTT publisher (API: spot/publisher.h; design:
 * docs/internals/spool.md).
 *
 * One thread runs the connection state machine and sends from the spool:
 * IDLE -> CONNECTING -> CONNECTED -> LOST -> (destroy, rewind, back-off)
 * IDLE. Paho calls back on its own threads, with its own mutex held for
 * acknowledgements: callbacks therefore only take our mutex (mu), mark
 * and signal; the thread never holds mu while calling into Paho. Each
 * client generation has its own callback context, so a late callback of a
 * destroyed client is recognised and ignored.
 *
 * The in-flight ring holds, in send order, the seq and Paho token of every
 * message handed to Paho and not yet released; the acknowledged prefix is
 * released from the spool by the thread. Paho may report an acknowledgement
 * before MQTTAsync_sendMessage() returned its token: such tokens wait in a
 * small "early" list.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "spot/clock.h"
#include "spot/device_limits.h"
#include "spot/err.h"
#include "spot/log.h"
#include "spot/mqtt_url.h"
#include "spot/pem.h"
#include "spot/publisher.h"

#define MOD     "publisher"
#define N_GEN   8 /* callback contexts, reused round-robin */
#define URI_MAX (SPOT_DEVICE_MAX_URL + 16)

enum state { ST_IDLE, ST_CONNECTING, ST_CONNECTED, ST_LOST };

struct genctx {
    struct publisher *p;
    uint32_t gen;
};

struct slot {
    uint64_t seq;
    int token;
    bool acked;
};

struct publisher {
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* the thread waits on it */
    pthread_cond_t drain; /* publisher_drain waits on it */
    pthread_t thread;
    bool started, stopping;

    const struct mqtt_config *cfg;
    struct spool *spool;
    char *client_id;
    char uri[URI_MAX];
    char ca_path[4096], cert_path[4096], key_path[4096];
    struct mqtt_url url;
    const char *user, *password;
    int window;

    /* guarded by mu */
    enum state state;
    uint32_t gen;
    struct genctx ctx[N_GEN];
    MQTTAsync client;
    bool connected;
    int backoff_ms;
    int64_t next_attempt_ms;
    int64_t connecting_since_ms;
    struct slot *ring; /* window entries */
    size_t r_head, r_count, r_unacked;
    int early[SPOT_DEVICE_EARLY_ACKS];
    size_t n_early;
    int acks_since_wake;
    bool notified;    /* publisher_notify since the spool was found empty */
    bool spool_empty; /* the last spool_next() had nothing */
    bool disconnect_done;
    struct publisher_stats st;
};

/* --- helpers (mu held) -------------------------------------------------------
 */

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(c, m, &ts);
}

static struct slot *ring_at(struct publisher *p, size_t i)
{
    return &p->ring[(p->r_head + i) % (size_t)p->window];
}

/* Marks the unacknowledged message with this token; false when none.
 * QoS 0 messages all have token 0 and complete in send order: the oldest
 * one is marked. */
static bool ring_ack(struct publisher *p, int token)
{
    for (size_t i = 0; i < p->r_count; i++) {
        struct slot *s = ring_at(p, i);
        if (!s->acked && s->token == token) {
            s->acked = true;
            p->r_unacked--;
            return true;
        }
    }
    return false;
}

static void ring_clear(struct publisher *p)
{
    p->r_head = p->r_count = p->r_unacked = 0;
    p->n_early = 0;
}

/* --- Paho callbacks (Paho's threads)
 * ------------------------------------------- */

/* Locks mu; returns the publisher when ctx is the current generation. */
static struct publisher *current(void *context)
{
    struct genctx *g = context;
    struct publisher *p = g->p;
    pthread_mutex_lock(&p->mu);
    if (g->gen != p->gen) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    return p;
}

static void on_lost(void *context, char *cause)
{
    struct publisher *p = current(context);
    if (p == NULL)
        return;
    if (p->state == ST_CONNECTED || p->state == ST_CONNECTING) {
        log_msg(LOG_WARN, MOD, "connection to %s lost: %s", p->uri,
                cause ? cause : "no reason given");
        p->state = ST_LOST;
        p->st.losses++;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->mu);
}

static int on_message(void *context, char *topic, int len, MQTTAsync_message *m)
{
    (void)context;
    (void)len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_connected(void *context, MQTTAsync_successData *resp)
{
    (void)resp;
    struct publisher *p = current(context);
    if (p == NULL)
        return;
    if (p->state == ST_CONNECTING) {
        p->state = ST_CONNECTED;
        p->connected = true;
        p->st.connects++;
        p->backoff_ms = SPOT_DEVICE_RETRY_MIN_MS;
        log_msg(LOG_INFO, MOD, "connected to %s as %s", p->uri, p->client_id);
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->mu);
}

static void on_connect_failed(void *context, MQTTAsync_failureData *resp)
{
    struct publisher *p = current(context);
    if (p == NULL)
        return;
    log_msg(LOG_WARN, MOD,
            "connecting to %s failed: %s (code %d); retrying "
            "in %d ms",
            p->uri, resp && resp->message ? resp->message : "no reason given",
            resp ? resp->code : 0, p->backoff_ms);
    p->state = ST_LOST;
    p->st.losses++;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

static void on_sent(void *context, MQTTAsync_successData *resp)
{
    struct publisher *p = current(context);
    if (p == NULL)
        return;
    if (!ring_ack(p, resp->token) && p->n_early < SPOT_DEVICE_EARLY_ACKS)
        p->early[p->n_early++] = resp->token;
    if (++p->acks_since_wake >= (p->window + 3) / 4 || p->r_unacked == 0) {
        p->acks_since_wake = 0;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->mu);
}

static void on_send_failed(void *context, MQTTAsync_failureData *resp)
{
    struct publisher *p = current(context);
    if (p == NULL)
        return;
    /* order matters more than this one message: start over from the
     * spool's head on a fresh connection */
    if (p->state == ST_CONNECTED) {
        log_msg(LOG_WARN, MOD, "publish to %s failed (code %d); reconnecting",
                p->uri, resp ? resp->code : 0);
        p->state = ST_LOST;
        p->st.losses++;
        pthread_cond_signal(&p->wake);
    }
    pthread_mutex_unlock(&p->mu);
}

static void on_disconnected(void *context, MQTTAsync_successData *resp)
{
    (void)resp;
    struct genctx *g = context;
    pthread_mutex_lock(&g->p->mu);
    g->p->disconnect_done = true;
    pthread_cond_broadcast(&g->p->wake);
    pthread_mutex_unlock(&g->p->mu);
}

static void on_disconnect_failed(void *context, MQTTAsync_failureData *resp)
{
    (void)resp;
    on_disconnected(context, NULL);
}

static int on_ssl_error(const char *str, size_t len, void *u)
{
    struct publisher *p = u;
    log_msg(LOG_WARN, MOD, "TLS with %s: %.*s", p->uri, (int)len, str);
    return 0;
}

/* --- connecting (the thread, mu not held)
 * ------------------------------------- */

static int connect_client(struct publisher *p, struct genctx *g, MQTTAsync *out)
{
    const struct mqtt_config *c = p->cfg;
    MQTTAsync client = NULL;
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.sendWhileDisconnected = 0;
    co.maxBufferedMessages = p->window * 2 + 100;
    int rc = MQTTAsync_createWithOptions(
        &client, p->uri, p->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        log_msg(LOG_ERROR, MOD, "cannot create a client for %s: %s", p->uri,
                MQTTAsync_strerror(rc));
        return rc;
    }
    rc = MQTTAsync_setCallbacks(client, g, on_lost, on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS)
        goto fail;

    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.cleansession = 1; /* publish only: nothing to keep on the broker */
    opts.keepAliveInterval = (int)c->keep_alive;
    opts.connectTimeout = SPOT_DEVICE_CONNECT_TIMEOUT_S;
    opts.automaticReconnect = 0; /* ours: destroy, rewind, reconnect */
    opts.maxInflight = p->window;
    opts.username = p->user;
    opts.password = p->password;
    opts.onSuccess = on_connected;
    opts.onFailure = on_connect_failed;
    opts.context = g;
    if (c->lwt_topic) {
        will.topicName = c->lwt_topic;
        will.message = c->lwt_message;
        will.qos = (int)c->lwt_qos;
        will.retained = c->lwt_retain;
        opts.will = &will;
    }
    if (c->transport == MQTT_TRANSPORT_TLS ||
        c->transport == MQTT_TRANSPORT_WSS) {
        ssl.trustStore = p->ca_path[0] ? p->ca_path : NULL;
        ssl.keyStore = p->cert_path[0] ? p->cert_path : NULL;
        ssl.privateKey = p->key_path[0] ? p->key_path : NULL;
        ssl.enableServerCertAuth = 1;
        ssl.verify = 1; /* the broker's host name must match */
        ssl.ssl_error_cb = on_ssl_error;
        ssl.ssl_error_context = p;
        opts.ssl = &ssl;
    }
    rc = MQTTAsync_connect(client, &opts);
    if (rc != MQTTASYNC_SUCCESS)
        goto fail;
    *out = client;
    return MQTTASYNC_SUCCESS;
fail:
    log_msg(LOG_WARN, MOD, "connect request to %s failed: %s", p->uri,
            MQTTAsync_strerror(rc));
    MQTTAsync_destroy(&client);
    return rc;
}

/* --- the thread
 * --------------------------------------------------------------------- */

/* Releases the acknowledged prefix of the ring from the spool (mu held). */
static void release_acked(struct publisher *p)
{
    uint64_t upto = 0;
    size_t n = 0;
    while (p->r_count > 0 && ring_at(p, 0)->acked) {
        upto = ring_at(p, 0)->seq + 1;
        p->r_head = (p->r_head + 1) % (size_t)p->window;
        p->r_count--;
        n++;
    }
    if (n > 0) {
        p->st.acked += n;
        spool_release(p->spool, upto);
        pthread_cond_broadcast(&p->drain);
    }
}

/* Sends from the spool while the window has room (mu held; released
 * around Paho calls). */
static void send_some(struct publisher *p)
{
    release_acked(p);
    p->spool_empty = false;
    while (p->state == ST_CONNECTED && !p->stopping &&
           p->r_count < (size_t)p->window) {
        struct spool_item it;
        int rc = spool_next(p->spool, &it);
        if (rc != SPOT_OK) {
            /* nothing more now (or a read error, logged: retried) */
            p->spool_empty = true;
            break;
        }
        char topic[SPOT_MAX_TOPIC_LEN + 1];
        size_t tl = it.topic_len < SPOT_MAX_TOPIC_LEN ? it.topic_len
                                                      : SPOT_MAX_TOPIC_LEN;
        memcpy(topic, it.topic, tl);
        topic[tl] = '\0';
        MQTTAsync_message msg = MQTTAsync_message_initializer;
        msg.payload = (void *)(uintptr_t)it.payload;
        msg.payloadlen = (int)it.payload_len;
        msg.qos = it.qos;
        msg.retained = it.retain;
        MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
        /* QoS 0 too: its success means "written to the socket", and
         * waiting for it keeps Paho's queue within the window */
        ro.onSuccess = on_sent;
        ro.onFailure = on_send_failed;
        ro.context = &p->ctx[p->gen % N_GEN];
        uint32_t gen = p->gen;
        MQTTAsync client = p->client;
        pthread_mutex_unlock(&p->mu);
        rc = MQTTAsync_sendMessage(client, topic, &msg, &ro);
        pthread_mutex_lock(&p->mu);
        if (gen != p->gen)
            break;
        if (rc != MQTTASYNC_SUCCESS) {
            p->st.send_errors++;
            if (p->state == ST_CONNECTED) {
                log_msg(LOG_WARN, MOD,
                        "sending to %s failed: %s; "
                        "reconnecting",
                        p->uri, MQTTAsync_strerror(rc));
                p->state = ST_LOST;
                p->st.losses++;
            }
            break;
        }
        p->st.sent++;
        struct slot *s = ring_at(p, p->r_count++);
        s->seq = it.seq;
        s->token = ro.token;
        s->acked = false;
        p->r_unacked++;
        for (size_t i = 0; i < p->n_early; i++)
            if (p->early[i] == ro.token) {
                s->acked = true;
                p->r_unacked--;
                p->early[i] = p->early[--p->n_early];
                break;
            }
        if (p->r_count == (size_t)p->window)
            release_acked(p);
    }
    release_acked(p);
}

/* True when the thread has nothing to do until a callback or a notify
 * (mu held). */
static bool idle(struct publisher *p)
{
    if (p->state != ST_CONNECTED || p->stopping)
        return false;
    if (p->r_count > 0 && ring_at(p, 0)->acked)
        return false;
    return p->r_count >= (size_t)p->window || (p->spool_empty && !p->notified);
}

/* Drops the client after a loss: everything unacknowledged is sent again
 * from the spool's head on the next connection (mu held on entry and
 * exit). */
static void reset_connection(struct publisher *p)
{
    MQTTAsync client = p->client;
    p->client = NULL;
    p->gen++;
    p->ctx[p->gen % N_GEN].gen = p->gen;
    p->state = ST_IDLE;
    p->connected = false;
    ring_clear(p);
    p->next_attempt_ms = spot_mono_ms() + p->backoff_ms;
    p->backoff_ms = p->backoff_ms * 2 > SPOT_DEVICE_RETRY_MAX_MS
                        ? SPOT_DEVICE_RETRY_MAX_MS
                        : p->backoff_ms * 2;
    pthread_mutex_unlock(&p->mu);
    if (client)
        MQTTAsync_destroy(&client); /* fails what was outstanding */
    spool_rewind(p->spool);
    pthread_mutex_lock(&p->mu);
}

static void disconnect_clean(struct publisher *p)
{
    MQTTAsync client = p->client;
    if (client == NULL)
        return;
    if (p->state == ST_CONNECTED) {
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
        d.timeout = 2000;
        d.onSuccess = on_disconnected;
        d.onFailure = on_disconnect_failed;
        d.context = &p->ctx[p->gen % N_GEN];
        p->disconnect_done = false;
        pthread_mutex_unlock(&p->mu);
        int rc = MQTTAsync_disconnect(client, &d);
        pthread_mutex_lock(&p->mu);
        int64_t until = spot_mono_ms() + 3000;
        while (rc == MQTTASYNC_SUCCESS && !p->disconnect_done &&
               spot_mono_ms() < until)
            timed_wait(&p->wake, &p->mu, 50);
    }
    p->client = NULL;
    p->gen++;
    p->ctx[p->gen % N_GEN].gen = p->gen;
    p->connected = false;
    p->state = ST_IDLE;
    ring_clear(p);
    pthread_mutex_unlock(&p->mu);
    MQTTAsync_destroy(&client);
    spool_rewind(p->spool);
    pthread_mutex_lock(&p->mu);
}

static void *run(void *arg)
{
    struct publisher *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        switch (p->state) {
        case ST_LOST:
            reset_connection(p);
            break;
        case ST_IDLE: {
            int64_t now = spot_mono_ms();
            if (!p->cfg->enable) {
                timed_wait(&p->wake, &p->mu, 1000);
                break;
            }
            if (now < p->next_attempt_ms) {
                timed_wait(&p->wake, &p->mu, p->next_attempt_ms - now);
                break;
            }
            p->state = ST_CONNECTING;
            p->connecting_since_ms = now;
            struct genctx *g = &p->ctx[p->gen % N_GEN];
            uint32_t gen = p->gen;
            pthread_mutex_unlock(&p->mu);
            MQTTAsync client = NULL;
            int rc = connect_client(p, g, &client);
            pthread_mutex_lock(&p->mu);
            if (rc != MQTTASYNC_SUCCESS) {
                p->state = ST_LOST;
                p->st.losses++;
            } else if (gen == p->gen) {
                p->client = client;
            }
            break;
        }
        case ST_CONNECTING:
            /* Paho answers within its connect timeout; never hang on it */
            if (spot_mono_ms() - p->connecting_since_ms >
                (SPOT_DEVICE_CONNECT_TIMEOUT_S + 5) * 1000) {
                log_msg(LOG_WARN, MOD, "no answer from %s; starting over",
                        p->uri);
                p->state = ST_LOST;
                p->st.losses++;
                break;
            }
            timed_wait(&p->wake, &p->mu, 1000);
            break;
        case ST_CONNECTED:
            p->acks_since_wake = 0;
            p->notified = false;
            send_some(p);
            if (idle(p))
                timed_wait(&p->wake, &p->mu, 1000);
            break;
        }
    }
    disconnect_clean(p);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* --- API
 * ------------------------------------------------------------------------------
 */

static int resolve_pem(struct publisher *p, const char *value,
                       const char *tls_dir, const char *name, char *path,
                       size_t len)
{
    if (value == NULL)
        return SPOT_OK;
    if (pem_is_inline(value) && tls_dir == NULL) {
        log_msg(LOG_ERROR, MOD,
                "inline PEM for %s but no directory to "
                "write it to",
                name);
        return SPOT_EINVAL;
    }
    int rc = pem_to_file(value, tls_dir, name, path, len);
    if (rc != SPOT_OK)
        log_msg(LOG_ERROR, MOD, "writing %s/%s failed: %s", tls_dir, name,
                strerror(errno));
    (void)p;
    return rc;
}

int publisher_new(struct publisher **out, const struct publisher_opts *o)
{
    if (o->mqtt == NULL || o->spool == NULL || o->client_id == NULL ||
        o->window < 1 || o->window > SPOT_DEVICE_MAX_WINDOW)
        return SPOT_EINVAL;
    struct publisher *p = calloc(1, sizeof *p);
    if (p == NULL)
        return SPOT_ENOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->drain, NULL);
    p->cfg = o->mqtt;
    p->spool = o->spool;
    p->window = o->window;
    p->backoff_ms = SPOT_DEVICE_RETRY_MIN_MS;
    for (int i = 0; i < N_GEN; i++) {
        p->ctx[i].p = p;
        p->ctx[i].gen = (uint32_t)i;
    }
    int rc = SPOT_OK;
    p->client_id = strdup(o->client_id);
    p->ring = calloc((size_t)o->window, sizeof *p->ring);
    if (p->client_id == NULL || p->ring == NULL) {
        rc = SPOT_ENOMEM;
        goto out;
    }
    char why[160];
    if (mqtt_url_parse(o->mqtt->server, &p->url, why, sizeof why) != SPOT_OK ||
        mqtt_config_paho_uri(o->mqtt, p->uri, sizeof p->uri) != SPOT_OK) {
        rc = SPOT_EINVAL;
        goto out;
    }
    mqtt_config_credentials(o->mqtt, &p->url, &p->user, &p->password);
    if ((rc = resolve_pem(p, o->mqtt->ca, o->tls_dir, "ca.pem", p->ca_path,
                          sizeof p->ca_path)) != SPOT_OK ||
        (rc = resolve_pem(p, o->mqtt->cert, o->tls_dir, "cert.pem",
                          p->cert_path, sizeof p->cert_path)) != SPOT_OK ||
        (rc = resolve_pem(p, o->mqtt->key, o->tls_dir, "key.pem", p->key_path,
                          sizeof p->key_path)) != SPOT_OK)
        goto out;
out:
    if (rc != SPOT_OK) {
        publisher_free(p);
        return rc;
    }
    *out = p;
    return SPOT_OK;
}

int publisher_start(struct publisher *p)
{
    if (pthread_create(&p->thread, NULL, run, p) != 0)
        return SPOT_ENOMEM;
    p->started = true;
    return SPOT_OK;
}

void publisher_notify(struct publisher *p)
{
    pthread_mutex_lock(&p->mu);
    p->notified = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
}

int publisher_drain(struct publisher *p, int timeout_ms)
{
    int64_t until = spot_mono_ms() + timeout_ms;
    pthread_mutex_lock(&p->mu);
    int rc = SPOT_EAGAIN;
    for (;;) {
        struct spool_stats st;
        spool_get_stats(p->spool, &st);
        if (st.pending == 0) {
            rc = SPOT_OK;
            break;
        }
        int64_t left = until - spot_mono_ms();
        if (left <= 0)
            break;
        pthread_cond_signal(&p->wake);
        timed_wait(&p->drain, &p->mu, left < 50 ? left : 50);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void publisher_stop(struct publisher *p)
{
    if (p == NULL || !p->started)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    p->started = false;
}

void publisher_free(struct publisher *p)
{
    if (p == NULL)
        return;
    publisher_stop(p);
    if (p->client)
        MQTTAsync_destroy(&p->client);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->drain);
    free(p->ring);
    free(p->client_id);
    free(p);
}

bool publisher_connected(struct publisher *p)
{
    pthread_mutex_lock(&p->mu);
    bool c = p->connected;
    pthread_mutex_unlock(&p->mu);
    return c;
}

void publisher_get_stats(struct publisher *p, struct publisher_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    out->connected = p->connected;
    pthread_mutex_unlock(&p->mu);
}
