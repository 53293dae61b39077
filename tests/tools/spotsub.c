/*
 * spotsub: a bare Paho MQTTAsync subscriber, the baseline of `make bench`
 * (test tooling, not product code). It subscribes, counts messages and
 * does nothing else with them, then prints one summary line measured from
 * the first to the last message:
 *
 *   received=N elapsed_s=X rate=Y cpu_s=Z
 *
 * (cpu_s: its own user + system CPU time, for make bench's per-process
 * figures.)
 * It exits 0 once --count messages arrived, 1 when --timeout passed first.
 * Once subscribed it says so on stderr and touches --ready-file if given,
 * so a script knows when to start the publisher.
 *
 * Threads: main waits; Paho's callback thread counts under one mutex.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

struct state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int subscribed; /* 0 pending, 1 ok, -1 failed */
    long long received;
    struct timespec first, last;
};

static struct state st = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};

struct opts {
    const char *url;
    const char *topic;
    const char *client_id;
    const char *ready_file;
    int qos;
    long long count;
    double timeout_s;
    double idle_s; /* 0: none */
    bool quiet;
};

static struct opts o = {
    .url = "mqtt://127.0.0.1:1883",
    .topic = "/+/+/attrs",
    .qos = 1,
    .count = 0,
    .timeout_s = 60,
};
static MQTTAsync client;

static double ts_s(const struct timespec *ts)
{
    return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_s(&ts);
}

static struct timespec deadline_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)(seconds * 1e9) + ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

static void set_subscribed(int v)
{
    pthread_mutex_lock(&st.mu);
    st.subscribed = v;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

/* --- Paho callbacks (Paho's thread) --------------------------------------
 */

static void on_subscribe(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    set_subscribed(1);
}

static void on_subscribe_failure(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    fprintf(stderr, "spotsub: subscribe failed: rc=%d\n",
            resp ? resp->code : 0);
    set_subscribed(-1);
}

static void on_connect(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribe;
    ro.onFailure = on_subscribe_failure;
    int rc = MQTTAsync_subscribe(client, o.topic, o.qos, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "spotsub: subscribe: %s\n", MQTTAsync_strerror(rc));
        set_subscribed(-1);
    }
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    fprintf(stderr, "spotsub: connect failed: rc=%d %s\n",
            resp ? resp->code : 0, resp && resp->message ? resp->message : "");
    set_subscribed(-1);
}

static void on_lost(void *ctx, char *cause)
{
    (void)ctx;
    fprintf(stderr, "spotsub: connection lost: %s\n",
            cause ? cause : "(no cause)");
}

static int on_message(void *ctx, char *topic, int topic_len,
                      MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    pthread_mutex_lock(&st.mu);
    if (st.received == 0)
        st.first = now;
    st.last = now;
    st.received++;
    if (o.count > 0 && st.received >= o.count)
        pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
    return 1;
}

/* --- options -------------------------------------------------------------
 */

static void usage(FILE *f)
{
    fputs("usage: spotsub [options]\n"
          "  --url URL         broker (default mqtt://127.0.0.1:1883)\n"
          "  --topic T         filter (default /+/+/attrs)\n"
          "  --qos 0|1|2       subscription QoS (default 1)\n"
          "  --count N         exit after N messages (default 0: at "
          "--timeout)\n"
          "  --timeout S       give up after S seconds (default 60)\n"
          "  --idle-timeout S  give up S seconds after the last message\n"
          "                    (default 0: only --timeout)\n"
          "  --client-id ID    (default spotsub-{pid})\n"
          "  --ready-file F    created once subscribed\n"
          "  --quiet           only the summary line\n",
          f);
}

static int parse_opts(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"topic", required_argument, NULL, 't'},
        {"qos", required_argument, NULL, 'q'},
        {"count", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 'T'},
        {"idle-timeout", required_argument, NULL, 'I'},
        {"client-id", required_argument, NULL, 'i'},
        {"ready-file", required_argument, NULL, 'r'},
        {"quiet", no_argument, NULL, 'Q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, idx = 0;
    while ((c = getopt_long(argc, argv, "", lo, &idx)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
        case 'u':
            o.url = optarg;
            break;
        case 't':
            o.topic = optarg;
            break;
        case 'q':
            o.qos = (int)strtol(optarg, &end, 10);
            if (o.qos < 0 || o.qos > 2)
                end = optarg;
            break;
        case 'n':
            o.count = strtoll(optarg, &end, 10);
            if (o.count < 0)
                end = optarg;
            break;
        case 'T':
            o.timeout_s = strtod(optarg, &end);
            if (!(o.timeout_s > 0))
                end = optarg;
            break;
        case 'I':
            o.idle_s = strtod(optarg, &end);
            if (!(o.idle_s >= 0))
                end = optarg;
            break;
        case 'i':
            o.client_id = optarg;
            break;
        case 'r':
            o.ready_file = optarg;
            break;
        case 'Q':
            o.quiet = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (end && (errno || end == optarg || *end)) {
            fprintf(stderr, "spotsub: bad value for --%s: %s\n", lo[idx].name,
                    optarg);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spotsub: unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int ret = 1;
    bool created = false;
    char client_id[128];

    if (parse_opts(argc, argv) != 0)
        return 2;
    if (!o.client_id) {
        snprintf(client_id, sizeof client_id, "spotsub-%ld", (long)getpid());
        o.client_id = client_id;
    }

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    int rc = MQTTAsync_createWithOptions(
        &client, o.url, o.client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "spotsub: create %s: %s\n", o.url,
                MQTTAsync_strerror(rc));
        goto out;
    }
    created = true;
    MQTTAsync_setCallbacks(client, NULL, on_lost, on_message, NULL);

    MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer;
    cn.keepAliveInterval = 30;
    cn.cleansession = 1;
    cn.MQTTVersion = MQTTVERSION_3_1_1;
    cn.connectTimeout = 10;
    cn.onSuccess = on_connect;
    cn.onFailure = on_connect_failure;
    rc = MQTTAsync_connect(client, &cn);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "spotsub: connect %s: %s\n", o.url,
                MQTTAsync_strerror(rc));
        goto out;
    }

    double until = now_s() + o.timeout_s;
    pthread_mutex_lock(&st.mu);
    while (st.subscribed == 0 && now_s() < until) {
        struct timespec dl = deadline_in(0.1);
        pthread_cond_timedwait(&st.cv, &st.mu, &dl);
    }
    int sub = st.subscribed;
    pthread_mutex_unlock(&st.mu);
    if (sub != 1) {
        fprintf(stderr, "spotsub: not subscribed to %s on %s\n", o.topic,
                o.url);
        goto out;
    }
    if (!o.quiet)
        fprintf(stderr, "spotsub: subscribed to %s (qos %d)\n", o.topic, o.qos);
    if (o.ready_file) {
        FILE *f = fopen(o.ready_file, "w");
        if (f)
            fclose(f);
        else
            fprintf(stderr, "spotsub: %s: %s\n", o.ready_file, strerror(errno));
    }

    pthread_mutex_lock(&st.mu);
    while ((o.count == 0 || st.received < o.count) && now_s() < until) {
        struct timespec dl = deadline_in(0.1);
        pthread_cond_timedwait(&st.cv, &st.mu, &dl);
        if (o.idle_s > 0 && st.received > 0 &&
            now_s() - ts_s(&st.last) > o.idle_s)
            break;
    }
    long long n = st.received;
    double elapsed = n > 1 ? ts_s(&st.last) - ts_s(&st.first) : 0;
    pthread_mutex_unlock(&st.mu);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("received=%lld elapsed_s=%.3f rate=%.0f cpu_s=%.3f\n", n, elapsed,
           elapsed > 0 ? (double)(n - 1) / elapsed : 0.0, cpu);
    fflush(stdout);
    ret = (o.count == 0 || n >= o.count) ? 0 : 1;

    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
    dc.timeout = 1000;
    MQTTAsync_disconnect(client, &dc);
    for (int i = 0; i < 100 && MQTTAsync_isConnected(client); i++) {
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
out:
    if (created)
        MQTTAsync_destroy(&client);
    return ret;
}
