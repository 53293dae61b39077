/*
 * spotpub: a fast Smart Spot MQTT publisher for the integration tests and
 * `make bench` (test tooling, not product code). It publishes --count
 * generated messages that follow the wire contract (or one file's bytes
 * as-is) through Paho MQTTAsync, MQTT 3.1.1, keeping at most --inflight
 * messages unacknowledged, and prints one summary line:
 *
 *   sent=N acked=N elapsed_s=X rate=Y
 *
 * Message k goes to device k % devices; it is that device's j-th message
 * (j = k / devices) and carries TimeInstant start + j * period minutes, so
 * every message has a distinct natural key (apikey, device_id,
 * time_instant); cfe messages also get a distinct visitorId.
 *
 * With --raw it bypasses Paho and writes MQTT packets to the socket itself,
 * many per write (the bench's lean load generator; see "raw transport").
 *
 * Threads: main publishes; Paho's callback thread counts completions under
 * one mutex (--raw: one thread).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <MQTTAsync.h>

#include "spot/err.h"
#include "spot/mqtt_url.h"

#define PUB_MAX_PAYLOAD (1024 * 1024)
#define PUB_MAX_TOPIC   1024
#define PUB_BUF         2048

static const char *const all_codes[] = {"aqo", "nlo", "wto", "cfo",
                                        "cfe", "dev", "dho"};
#define N_CODES (sizeof all_codes / sizeof all_codes[0])

struct opts {
    const char *url;
    int qos;
    long long count;
    long devices;
    const char *vertical; /* a code, or "all" */
    const char *apikey;
    const char *device_prefix;
    long long start; /* epoch seconds of the first TimeInstant */
    long period;     /* minutes */
    double rate;     /* messages per second, 0 = unlimited */
    long inflight;
    const char *client_id;
    const char *file;
    const char *topic;
    const char *payload;
    double timeout_s; /* for the last acknowledgements */
    bool quiet;
    bool raw; /* MQTT written straight to a socket, not through Paho */
};

struct state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int connected; /* 0 pending, 1 ok, -1 failed */
    long long completed;
    long long acked;
    long long failed;
    struct timespec last_ack;
};

static struct state st = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};
static bool quiet;

static void warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warnx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("spotpub: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double ts_s(const struct timespec *ts)
{
    return (double)ts->tv_sec + (double)ts->tv_nsec / 1e9;
}

/* Absolute CLOCK_REALTIME deadline for pthread_cond_timedwait. */
static struct timespec deadline_in(double seconds)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)(seconds * 1e9) + ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    return ts;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* --- Paho callbacks (Paho's thread) --------------------------------------
 */

static void on_connect(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    pthread_mutex_lock(&st.mu);
    st.connected = 1;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

static void on_connect_failure(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    warnx("connect failed: rc=%d %s", resp ? resp->code : 0,
          resp && resp->message ? resp->message : "");
    pthread_mutex_lock(&st.mu);
    st.connected = -1;
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

static void on_sent(void *ctx, MQTTAsync_successData *resp)
{
    (void)ctx;
    (void)resp;
    pthread_mutex_lock(&st.mu);
    st.completed++;
    st.acked++;
    clock_gettime(CLOCK_MONOTONIC, &st.last_ack);
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

static void on_send_failure(void *ctx, MQTTAsync_failureData *resp)
{
    (void)ctx;
    pthread_mutex_lock(&st.mu);
    st.completed++;
    st.failed++;
    if (st.failed <= 5)
        warnx("publish failed: rc=%d %s", resp ? resp->code : 0,
              resp && resp->message ? resp->message : "");
    pthread_cond_broadcast(&st.cv);
    pthread_mutex_unlock(&st.mu);
}

static void on_lost(void *ctx, char *cause)
{
    (void)ctx;
    warnx("connection lost: %s", cause ? cause : "(no cause)");
}

static int on_message(void *ctx, char *topic, int topic_len,
                      MQTTAsync_message *m)
{
    (void)ctx;
    (void)topic_len;
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

/* --- payloads ------------------------------------------------------------
 */

/* Deterministic pseudo-random in [0, 1) from (k, salt): splitmix64. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double rnd(long long k, unsigned salt, double lo, double hi)
{
    uint64_t r = mix64((uint64_t)k * 131u + salt);
    double u = (double)(r >> 11) / 9007199254740992.0; /* 2^53 */
    return lo + u * (hi - lo);
}

static int irnd(long long k, unsigned salt, int lo, int hi)
{
    return lo +
           (int)(mix64((uint64_t)k * 131u + salt) % (uint64_t)(hi - lo + 1));
}

static void format_time(char *buf, size_t len, long long epoch)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Writes message k of vertical code into buf; returns its length or -1. */
static int make_payload(char *buf, size_t len, const char *code, long long k,
                        const char *when, long period)
{
    int n = -1;
    if (strcmp(code, "aqo") == 0) {
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"status\":\"connected\",\"no2-a4\":%.6f,"
                     "\"ox-a431\":%.6f,\"co-a4\":%.6f,\"so2-a4\":%.6f,"
                     "\"pm10\":%.6f,\"pm2\":%.6f,\"pm1\":%.6f}",
                     when, period, rnd(k, 1, 0, 120), rnd(k, 2, 0, 180),
                     rnd(k, 3, 0, 2000), rnd(k, 4, 0, 50), rnd(k, 5, 0, 80),
                     rnd(k, 6, 0, 40), rnd(k, 7, 0, 20));
    } else if (strcmp(code, "nlo") == 0) {
        double leq = rnd(k, 1, 40, 80);
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"status\":\"connected\",\"son_laeq\":%.3f,"
                     "\"son_lamax\":%.3f,\"son_lamin\":%.3f,"
                     "\"son_la1\":%.3f,\"son_la10\":%.3f,"
                     "\"son_la50\":%.3f,\"son_la90\":%.3f,"
                     "\"son_la99\":%.3f}",
                     when, period, leq, leq + 10, leq - 8, leq + 8, leq + 3,
                     leq - 1, leq - 3, leq - 4);
    } else if (strcmp(code, "wto") == 0) {
        double t = rnd(k, 1, -5, 35);
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"status\":\"connected\",\"pres1\":%.2f,"
                     "\"rain_15a\":0,\"rain_rate\":0,\"hum3\":%d,"
                     "\"temp3\":%.2f,\"thsw_index\":%.2f,\"wind_dir\":%d,"
                     "\"wind_sp\":%.2f,\"uv_index\":%.1f,\"solar_rad0\":%d,"
                     "\"et_daily\":%.2f,\"dew_point\":%.2f,"
                     "\"rain_daily\":0,\"rain_24ha\":0,"
                     "\"wind_chill\":%.2f,\"illuminance\":%d}",
                     when, period, rnd(k, 2, 960, 1040), irnd(k, 3, 20, 95), t,
                     t + 1, irnd(k, 4, 0, 359), rnd(k, 5, 0, 40),
                     rnd(k, 6, 0, 10), irnd(k, 7, 0, 1000), rnd(k, 8, 0, 5),
                     t - 5, t - 2, irnd(k, 9, 0, 100000));
    } else if (strcmp(code, "cfo") == 0) {
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"status\":\"connected\",\"peopleCount\":%d,"
                     "\"avgDuration\":%d,\"measurementInterval\":%ld,"
                     "\"reportingPeriod\":-1,\"dataCollection\":\"on\","
                     "\"peopleCountCollection\":3,\"eventCollection\":3}",
                     when, period, irnd(k, 1, 0, 500), irnd(k, 2, 0, 600),
                     period);
    } else if (strcmp(code, "cfe") == 0) {
        /* 40 hex characters, distinct per k. */
        uint64_t a = mix64((uint64_t)k), b = mix64((uint64_t)k ^ 0x55);
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"detectionType\":%d,"
                     "\"visitorId\":\"%016" PRIx64 "%016" PRIx64 "%08llx\","
                     "\"random\":%d,\"duration\":%d}",
                     when, period, irnd(k, 1, 1, 2), a, b,
                     (unsigned long long)k & 0xffffffffULL, irnd(k, 2, 0, 1),
                     irnd(k, 3, 1, 300));
    } else if (strcmp(code, "dev") == 0) {
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"status\":\"connected\","
                     "\"modelName\":\"A72gG21N1P1E1GDIB10Y1H1\","
                     "\"serialNumber\":\"ac67b2ce%04x\","
                     "\"firmwareVersion\":\"0.18.14\","
                     "\"updateFirmwareDownloadProgress\":0,"
                     "\"updateFirmwareResult\":0,\"updateFirmwareState\":0,"
                     "\"cellularEnabled\":\"false\",\"wifiEnabled\":\"true\","
                     "\"wifiSsid\":\"spotnet\"}",
                     when, period, (unsigned)(k & 0xffff));
    } else if (strcmp(code, "dho") == 0) {
        n = snprintf(buf, len,
                     "{\"TimeInstant\":\"%s\",\"period\":%ld,"
                     "\"status\":\"connected\",\"networkBearer\":21,"
                     "\"rssi\":%.4f,\"batteryLevel\":%.3f,"
                     "\"batteryState\":%d,\"batteryVoltage\":%d,"
                     "\"batteryCurrent\":%d}",
                     when, period, rnd(k, 1, 0, 1), rnd(k, 2, 0, 1),
                     irnd(k, 3, 0, 2), irnd(k, 4, 11000, 13000),
                     irnd(k, 5, -500, 500));
    }
    if (n < 0 || (size_t)n >= len)
        return -1;
    return n;
}

static int read_file(const char *path, char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        warnx("%s: %s", path, strerror(errno));
        return -1;
    }
    char *buf = malloc(PUB_MAX_PAYLOAD);
    size_t n = buf ? fread(buf, 1, PUB_MAX_PAYLOAD, f) : 0;
    int err = ferror(f) || !buf;
    int more = fgetc(f) != EOF;
    fclose(f);
    if (err || more) {
        warnx("%s: %s", path, more ? "larger than 1 MiB" : "read error");
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}

/* --- options -------------------------------------------------------------
 */

static void usage(FILE *f)
{
    fputs(
        "usage: spotpub [options]\n"
        "  --url URL          broker (default mqtt://127.0.0.1:1883)\n"
        "  --qos 0|1|2        (default 1)\n"
        "  --count N          messages in total (default 1)\n"
        "  --devices D        devices dev0..dev{D-1} (default 1)\n"
        "  --device-prefix P  device id prefix (default dev)\n"
        "  --vertical CODE    aqo nlo wto cfo cfe dev dho, or all (default "
        "aqo)\n"
        "  --apikey KEY       base apikey (default spotpubkey)\n"
        "  --start EPOCH      TimeInstant of each device's first message\n"
        "                     (default 1700000000)\n"
        "  --period MIN       sampling period in minutes (default 5)\n"
        "  --rate R           messages/s, 0 = as fast as possible (default "
        "0)\n"
        "  --inflight W       max unacknowledged messages (default 1000)\n"
        "  --client-id ID     (default spotpub-{pid})\n"
        "  --topic T          publish on T instead of the vertical's topic\n"
        "  --file F           publish F's bytes as-is (needs --topic)\n"
        "  --payload S        publish the string S as-is (needs --topic)\n"
        "  --timeout S        wait for acknowledgements (default 120)\n"
        "  --quiet            only the summary line\n"
        "  --raw              no Paho: MQTT 3.1.1 written straight to a TCP\n"
        "                     socket, many PUBLISH packets per write, so the\n"
        "                     publisher costs the shared cores little (QoS 0\n"
        "                     and 1, mqtt://host:port only, clean session)\n",
        f);
}

static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_d(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"qos", required_argument, NULL, 'q'},
        {"count", required_argument, NULL, 'n'},
        {"devices", required_argument, NULL, 'd'},
        {"device-prefix", required_argument, NULL, 'P'},
        {"vertical", required_argument, NULL, 'v'},
        {"apikey", required_argument, NULL, 'k'},
        {"start", required_argument, NULL, 's'},
        {"period", required_argument, NULL, 'p'},
        {"rate", required_argument, NULL, 'r'},
        {"inflight", required_argument, NULL, 'w'},
        {"client-id", required_argument, NULL, 'i'},
        {"file", required_argument, NULL, 'f'},
        {"topic", required_argument, NULL, 't'},
        {"payload", required_argument, NULL, 'm'},
        {"timeout", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'Q'},
        {"raw", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool count_set = false;
    int c, idx = 0;
    long long v;
    while ((c = getopt_long(argc, argv, "", lo, &idx)) != -1) {
        int bad = 0;
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 'q':
            bad = parse_ll(optarg, 0, 2, &v);
            o->qos = (int)v;
            break;
        case 'n':
            bad = parse_ll(optarg, 0, 1000000000LL, &o->count);
            count_set = true;
            break;
        case 'd':
            bad = parse_ll(optarg, 1, 1000000, &v);
            o->devices = (long)v;
            break;
        case 'P':
            o->device_prefix = optarg;
            break;
        case 'v':
            o->vertical = optarg;
            break;
        case 'k':
            o->apikey = optarg;
            break;
        case 's':
            bad = parse_ll(optarg, 0, 253402300799LL, &o->start);
            break;
        case 'p':
            bad = parse_ll(optarg, 1, 100000, &v);
            o->period = (long)v;
            break;
        case 'r':
            bad = parse_d(optarg, 0, 1e9, &o->rate);
            break;
        case 'w':
            bad = parse_ll(optarg, 1, 65535, &v);
            o->inflight = (long)v;
            break;
        case 'i':
            o->client_id = optarg;
            break;
        case 'f':
            o->file = optarg;
            break;
        case 't':
            o->topic = optarg;
            break;
        case 'm':
            o->payload = optarg;
            break;
        case 'T':
            bad = parse_d(optarg, 0, 86400, &o->timeout_s);
            break;
        case 'Q':
            o->quiet = true;
            break;
        case 'R':
            o->raw = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
        if (bad) {
            warnx("bad value for --%s: %s", lo[idx].name, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        warnx("unexpected argument: %s", argv[optind]);
        return -1;
    }
    if ((o->file || o->payload) && !o->topic) {
        warnx("--file and --payload need --topic");
        return -1;
    }
    if (o->file && o->payload) {
        warnx("--file and --payload are exclusive");
        return -1;
    }
    if (!count_set)
        o->count = 1;
    if (o->raw && o->qos == 2) {
        warnx("--raw publishes at QoS 0 or 1");
        return -1;
    }
    if (strcmp(o->vertical, "all") != 0) {
        bool known = false;
        for (size_t i = 0; i < N_CODES; i++)
            known = known || strcmp(o->vertical, all_codes[i]) == 0;
        if (!known) {
            warnx("unknown vertical: %s", o->vertical);
            return -1;
        }
    }
    return 0;
}

/* --- messages --------------------------------------------------------------
 */

/* One message to publish; topic and data point into the generator (or the
 * --topic/--payload/--file bytes) until the next generate(). */
struct outgoing {
    const char *topic;
    const void *data;
    int len;
};

struct generator {
    const struct opts *o;
    bool all;
    char *file_buf;
    size_t file_len;
    char payload[PUB_BUF];
    char topic[PUB_MAX_TOPIC];
};

/* Message k of the run: 0, or -1 (with a warning) when it does not fit. */
static int generate(struct generator *g, long long k, struct outgoing *m)
{
    const struct opts *o = g->o;
    m->topic = o->topic ? o->topic : g->topic;
    if (g->file_buf) {
        m->data = g->file_buf;
        m->len = (int)g->file_len;
        return 0;
    }
    if (o->payload) {
        m->data = o->payload;
        m->len = (int)strlen(o->payload);
        return 0;
    }
    long dev = (long)(k % o->devices);
    long long j = k / o->devices;
    const char *code = g->all ? all_codes[j % (long long)N_CODES] : o->vertical;
    char when[32];
    format_time(when, sizeof when, o->start + j * o->period * 60);
    m->len =
        make_payload(g->payload, sizeof g->payload, code, k, when, o->period);
    if (m->len < 0) {
        warnx("payload too long");
        return -1;
    }
    m->data = g->payload;
    if (!o->topic) {
        char upper[4];
        for (int i = 0; i < 3; i++)
            upper[i] = (char)(code[i] - 'a' + 'A');
        upper[3] = '\0';
        int tn = snprintf(g->topic, sizeof g->topic, "/%s%s/%s%ld_%s/attrs",
                          o->apikey, code, o->device_prefix, dev, upper);
        if (tn < 0 || (size_t)tn >= sizeof g->topic) {
            warnx("topic too long");
            return -1;
        }
    }
    return 0;
}

/* --- main ----------------------------------------------------------------
 */

/* Publishes one message, retrying while Paho's queue is full. */
static int publish(MQTTAsync client, const char *topic, const void *data,
                   int len, int qos)
{
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    /* Paho copies the payload; the cast drops const for its API only. */
    msg.payload = (void *)(uintptr_t)data;
    msg.payloadlen = len;
    msg.qos = qos;
    msg.retained = 0;
    ro.onSuccess = on_sent;
    ro.onFailure = on_send_failure;
    double give_up = now_s() + 30;
    for (;;) {
        int rc = MQTTAsync_sendMessage(client, topic, &msg, &ro);
        if (rc == MQTTASYNC_SUCCESS)
            return 0;
        if ((rc != MQTTASYNC_MAX_BUFFERED_MESSAGES &&
             rc != MQTTASYNC_MAX_MESSAGES_INFLIGHT) ||
            now_s() > give_up) {
            warnx("send: %s (rc=%d)", MQTTAsync_strerror(rc), rc);
            return -1;
        }
        sleep_s(0.001);
    }
}

/* --- raw transport (--raw) -----------------------------------------------
 * MQTT 3.1.1 without a client library: CONNECT, then PUBLISH packets packed
 * into one buffer and written with one write(2) per RAW_FLUSH bytes. Paho
 * spends a system call and a thread hand-off on every message; on shared
 * cores that is CPU taken from the broker and the agent under test, which in
 * production run on other hosts than the devices. QoS 1 keeps at most
 * --inflight PUBLISH packets unacknowledged; QoS 0 ends with DISCONNECT and
 * waits for the broker to close the connection, so every message counted
 * has been read by the broker.
 */

#define RAW_FLUSH (64 * 1024)
#define RAW_OUT   (PUB_MAX_PAYLOAD + PUB_MAX_TOPIC + RAW_FLUSH + 16)
#define RAW_IN    (64 * 1024)

struct raw_conn {
    int fd;
    unsigned char *out;
    size_t out_len;
    unsigned char in[RAW_IN];
    size_t in_len;
    bool closed; /* the broker closed the connection */
    long long acked;
    struct timespec last_ack;
};

static size_t put_remaining_length(unsigned char *b, size_t n)
{
    size_t i = 0;
    do {
        unsigned char d = (unsigned char)(n % 128);
        n /= 128;
        b[i++] = (unsigned char)(d | (n ? 0x80 : 0));
    } while (n);
    return i;
}

static size_t put_string(unsigned char *b, const char *s, size_t n)
{
    b[0] = (unsigned char)(n >> 8);
    b[1] = (unsigned char)n;
    memcpy(b + 2, s, n);
    return n + 2;
}

static int raw_flush(struct raw_conn *c)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t w = write(c->fd, c->out + off, c->out_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            warnx("write to broker: %s", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    c->out_len = 0;
    return 0;
}

/* Reads what the broker sent, waiting up to wait_ms for it, and counts the
 * PUBACKs; any other packet is skipped. 0, or -1 on an error. */
static int raw_read(struct raw_conn *c, int wait_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int pr = poll(&pfd, 1, wait_ms);
    if (pr < 0 && errno != EINTR) {
        warnx("poll: %s", strerror(errno));
        return -1;
    }
    if (pr <= 0)
        return 0;
    ssize_t r =
        recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, MSG_DONTWAIT);
    if (r == 0) {
        c->closed = true;
        return 0;
    }
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->in_len += (size_t)r;
    size_t pos = 0;
    long long acked = c->acked;
    while (c->in_len - pos >= 2) {
        size_t len = 0, i = 1;
        unsigned mul = 1;
        for (;; i++) {
            if (pos + i >= c->in_len || i > 4)
                break;
            len += (c->in[pos + i] & 127u) * mul;
            mul *= 128;
            if (!(c->in[pos + i] & 128u))
                break;
        }
        if (i > 4 || len > sizeof c->in / 2) {
            warnx("unexpected packet from the broker");
            return -1;
        }
        if (pos + i >= c->in_len || c->in_len - pos - i - 1 < len)
            break; /* incomplete */
        if ((c->in[pos] & 0xf0) == 0x40)
            c->acked++;
        pos += i + 1 + len;
    }
    if (c->acked != acked)
        clock_gettime(CLOCK_MONOTONIC, &c->last_ack);
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
    return 0;
}

static int raw_connect(struct raw_conn *c, const struct opts *o)
{
    struct mqtt_url u;
    char why[256], port[16];
    if (mqtt_url_parse(o->url, &u, why, sizeof why) != SPOT_OK) {
        warnx("%s", why);
        return -1;
    }
    if (strcmp(u.scheme, "mqtt") != 0 || u.has_user || u.path[0]) {
        warnx("--raw takes an mqtt://host:port URL (no credentials, no path)");
        return -1;
    }
    /* getaddrinfo wants an IPv6 literal without its brackets */
    char *host = u.host;
    size_t hl = strlen(host);
    if (hl > 1 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        host++;
    }
    snprintf(port, sizeof port, "%d", u.port >= 0 ? u.port : 1883);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        warnx("%s: %s", host, gai_strerror(gai));
        return -1;
    }
    c->fd = -1;
    for (struct addrinfo *a = ai; a && c->fd < 0; a = a->ai_next) {
        c->fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (c->fd >= 0 && connect(c->fd, a->ai_addr, a->ai_addrlen) != 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (c->fd < 0) {
        warnx("connect %s: %s", o->url, strerror(errno));
        return -1;
    }
    size_t idlen = strlen(o->client_id);
    if (idlen > 1024) {
        warnx("client id too long");
        return -1;
    }
    unsigned char var[1100];
    size_t v = put_string(var, "MQTT", 4);
    var[v++] = 4;    /* protocol level: 3.1.1 */
    var[v++] = 0x02; /* clean session */
    var[v++] = 0;    /* keepalive off: the stream never pauses long */
    var[v++] = 0;
    v += put_string(var + v, o->client_id, idlen);
    c->out[0] = 0x10;
    c->out_len = 1 + put_remaining_length(c->out + 1, v);
    memcpy(c->out + c->out_len, var, v);
    c->out_len += v;
    if (raw_flush(c) != 0)
        return -1;
    double until = now_s() + 10;
    while (c->in_len < 4 && !c->closed && now_s() < until) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t r = recv(c->fd, c->in + c->in_len, 4 - c->in_len, 0);
        if (r <= 0)
            c->closed = true;
        else
            c->in_len += (size_t)r;
    }
    if (c->in_len < 4 || c->in[0] != 0x20 || c->in[3] != 0) {
        warnx("broker refused the connection (CONNACK %s, code %d)",
              c->in_len < 4 ? "missing" : "received",
              c->in_len < 4 ? -1 : c->in[3]);
        return -1;
    }
    c->in_len = 0;
    return 0;
}

/* Appends one PUBLISH packet to the output buffer (flushed when full). */
static int raw_publish(struct raw_conn *c, const struct outgoing *m, int qos,
                       unsigned id)
{
    size_t tlen = strlen(m->topic);
    if (tlen > 65535 || (size_t)m->len > PUB_MAX_PAYLOAD) {
        warnx("topic or payload too long");
        return -1;
    }
    size_t rem = 2 + tlen + (qos ? 2 : 0) + (size_t)m->len;
    if (c->out_len + rem + 5 > RAW_OUT && raw_flush(c) != 0)
        return -1;
    unsigned char *b = c->out + c->out_len;
    size_t n = 0;
    b[n++] = (unsigned char)(0x30 | (qos << 1));
    n += put_remaining_length(b + n, rem);
    n += put_string(b + n, m->topic, tlen);
    if (qos) {
        b[n++] = (unsigned char)(id >> 8);
        b[n++] = (unsigned char)id;
    }
    memcpy(b + n, m->data, (size_t)m->len);
    c->out_len += n + (size_t)m->len;
    return c->out_len >= RAW_FLUSH ? raw_flush(c) : 0;
}

/* Publishes over a raw socket; returns the exit status. */
static int run_raw(const struct opts *o, struct generator *g)
{
    static struct raw_conn c;
    int ret = 1;
    c.out = malloc(RAW_OUT);
    if (!c.out) {
        warnx("out of memory");
        return 1;
    }
    c.fd = -1;
    if (raw_connect(&c, o) != 0)
        goto out;

    long long sent = 0;
    unsigned id = 0;
    bool failed = false;
    double t0 = now_s();
    for (long long k = 0; k < o->count && !failed; k++) {
        if (o->qos == 1) {
            while (sent - c.acked >= o->inflight && !failed) {
                failed =
                    raw_flush(&c) != 0 || raw_read(&c, 1000) != 0 || c.closed;
            }
            if (k % 256 == 0) /* collect acknowledgements on the way */
                failed = failed || raw_read(&c, 0) != 0;
        }
        if (o->rate > 0 && t0 + (double)k / o->rate > now_s()) {
            failed = failed || raw_flush(&c) != 0;
            sleep_s(t0 + (double)k / o->rate - now_s());
        }
        struct outgoing m;
        if (failed || generate(g, k, &m) != 0)
            break;
        id = id % 65535 + 1;
        if (raw_publish(&c, &m, o->qos, id) != 0)
            break;
        sent++;
    }
    if (raw_flush(&c) != 0)
        goto report;
    double until = now_s() + o->timeout_s;
    if (o->qos == 1) {
        while (c.acked < sent && !c.closed && now_s() < until &&
               raw_read(&c, 200) == 0) {
        }
    }
    /* DISCONNECT; the broker closes once it has read everything before. */
    c.out[0] = 0xe0;
    c.out[1] = 0;
    c.out_len = 2;
    if (raw_flush(&c) == 0 && shutdown(c.fd, SHUT_WR) == 0) {
        while (!c.closed && now_s() < until && raw_read(&c, 200) == 0) {
        }
    }
    if (o->qos == 0 && c.closed) {
        c.acked = sent;
        clock_gettime(CLOCK_MONOTONIC, &c.last_ack);
    }
report:;
    double last = c.acked > 0 ? ts_s(&c.last_ack) : now_s();
    double elapsed = last - t0;
    if (elapsed <= 0)
        elapsed = 1e-9;
    printf("sent=%lld acked=%lld elapsed_s=%.3f rate=%.0f\n", sent, c.acked,
           elapsed, (double)c.acked / elapsed);
    fflush(stdout);
    if (c.acked == o->count)
        ret = 0;
    else if (!quiet)
        warnx("only %lld of %lld messages acknowledged", c.acked, o->count);
out:
    if (c.fd >= 0)
        close(c.fd);
    free(c.out);
    return ret;
}

/* Publishes through Paho MQTTAsync; returns the exit status. */
static int run_paho(const struct opts *op, struct generator *g)
{
    struct opts o = *op;
    int ret = 1;
    MQTTAsync client = NULL;
    bool created = false;

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.maxBufferedMessages = (int)o.inflight * 2 + 100;
    int rc = MQTTAsync_createWithOptions(
        &client, o.url, o.client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        warnx("create %s: %s", o.url, MQTTAsync_strerror(rc));
        goto out;
    }
    created = true;
    MQTTAsync_setCallbacks(client, NULL, on_lost, on_message, NULL);

    MQTTAsync_connectOptions cn = MQTTAsync_connectOptions_initializer;
    cn.keepAliveInterval = 30;
    cn.cleansession = 1;
    cn.maxInflight = (int)o.inflight;
    cn.MQTTVersion = MQTTVERSION_3_1_1;
    cn.connectTimeout = 10;
    cn.onSuccess = on_connect;
    cn.onFailure = on_connect_failure;
    cn.context = NULL;
    rc = MQTTAsync_connect(client, &cn);
    if (rc != MQTTASYNC_SUCCESS) {
        warnx("connect %s: %s", o.url, MQTTAsync_strerror(rc));
        goto out;
    }
    pthread_mutex_lock(&st.mu);
    struct timespec dl = deadline_in(15);
    while (st.connected == 0 &&
           pthread_cond_timedwait(&st.cv, &st.mu, &dl) != ETIMEDOUT) {
    }
    int conn = st.connected;
    pthread_mutex_unlock(&st.mu);
    if (conn != 1) {
        warnx("could not connect to %s", o.url);
        goto out;
    }

    long long sent = 0;
    double t0 = now_s();
    for (long long k = 0; k < o.count; k++) {
        /* Window: at most --inflight messages not yet completed. */
        pthread_mutex_lock(&st.mu);
        while (sent - st.completed >= o.inflight) {
            dl = deadline_in(1);
            pthread_cond_timedwait(&st.cv, &st.mu, &dl);
        }
        pthread_mutex_unlock(&st.mu);
        if (o.rate > 0)
            sleep_s(t0 + (double)k / o.rate - now_s());

        struct outgoing m;
        if (generate(g, k, &m) != 0)
            break;
        if (publish(client, m.topic, m.data, m.len, o.qos) != 0)
            break;
        sent++;
    }

    /* Wait for the last acknowledgements. */
    pthread_mutex_lock(&st.mu);
    double until = now_s() + o.timeout_s;
    while (st.completed < sent && now_s() < until) {
        dl = deadline_in(0.2);
        pthread_cond_timedwait(&st.cv, &st.mu, &dl);
    }
    long long acked = st.acked;
    double last = acked > 0 ? ts_s(&st.last_ack) : now_s();
    pthread_mutex_unlock(&st.mu);

    double elapsed = last - t0;
    if (elapsed <= 0)
        elapsed = 1e-9;
    printf("sent=%lld acked=%lld elapsed_s=%.3f rate=%.0f\n", sent, acked,
           elapsed, (double)acked / elapsed);
    fflush(stdout);
    if (acked == o.count)
        ret = 0;
    else if (!quiet)
        warnx("only %lld of %lld messages acknowledged", acked, o.count);

    MQTTAsync_disconnectOptions dc = MQTTAsync_disconnectOptions_initializer;
    dc.timeout = 2000;
    MQTTAsync_disconnect(client, &dc);
    /* Let the DISCONNECT go out before destroying the client. */
    for (int i = 0; i < 200 && MQTTAsync_isConnected(client); i++)
        sleep_s(0.01);
out:
    if (created)
        MQTTAsync_destroy(&client);
    return ret;
}

int main(int argc, char **argv)
{
    struct opts o = {
        .url = "mqtt://127.0.0.1:1883",
        .qos = 1,
        .count = 1,
        .devices = 1,
        .vertical = "aqo",
        .apikey = "spotpubkey",
        .device_prefix = "dev",
        .start = 1700000000LL,
        .period = 5,
        .rate = 0,
        .inflight = 1000,
        .timeout_s = 120,
    };
    char client_id[128];
    static struct generator g;

    if (parse_opts(argc, argv, &o) != 0)
        return 2;
    quiet = o.quiet;
    g.o = &o;
    g.all = strcmp(o.vertical, "all") == 0;
    if (o.file && read_file(o.file, &g.file_buf, &g.file_len) != 0)
        return 2;
    if (!o.client_id) {
        snprintf(client_id, sizeof client_id, "spotpub-%ld", (long)getpid());
        o.client_id = client_id;
    }
    int ret = o.raw ? run_raw(&o, &g) : run_paho(&o, &g);
    free(g.file_buf);
    return ret;
}
