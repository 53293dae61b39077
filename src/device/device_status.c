/*
 * spotdevice's status file (API: spot/device_status.h): yajl_gen, then
 * write-and-rename so readers never see half a file. One thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_gen.h>

#include "spot/device_status.h"
#include "spot/err.h"
#include "spot/message.h"

static void put_u64(yajl_gen g, const char *k, uint64_t v)
{
    yajl_gen_string(g, (const unsigned char *)k, strlen(k));
    yajl_gen_integer(g, (long long)v);
}

int device_status_write(const struct device_stats *st, const char *path)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return SPOT_ENOMEM;
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"client_status", 13);
    yajl_gen_bool(g, st->pub.connected);
    put_u64(g, "periods", st->periods);
    put_u64(g, "messages", st->messages);
    put_u64(g, "acknowledged", st->pub.acked);
    put_u64(g, "queued", st->spool.pending);
    put_u64(g, "dropped", st->spool.dropped);
    put_u64(g, "recovered", st->spool.recovered);
    put_u64(g, "connects", st->pub.connects);
    put_u64(g, "connection_losses", st->pub.losses);
    put_u64(g, "encode_errors", st->encode_errors);
    put_u64(g, "spool_errors", st->spool_errors);
    yajl_gen_string(g, (const unsigned char *)"last_time_instant", 17);
    if (st->last_period_s >= 0) {
        char ts[32];
        message_format_time(st->last_period_s, ts);
        yajl_gen_string(g, (const unsigned char *)ts, strlen(ts));
    } else {
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(g, &buf, &len);
    char tmp[4200];
    int rc = SPOT_EIO;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) < sizeof tmp) {
        FILE *f = fopen(tmp, "w");
        if (f != NULL) {
            bool ok = fwrite(buf, 1, len, f) == len && fputc('\n', f) != EOF;
            if (fclose(f) == 0 && ok && rename(tmp, path) == 0)
                rc = SPOT_OK;
        }
    }
    yajl_gen_free(g);
    return rc;
}
