/*
 * libcurl multi wrapper (see http_client.h). One curl multi handle holds
 * the connection cache (keep-alive across requests); each request reuses
 * its easy handle, whose fixed options are set once: no signals, HTTP/1.1,
 * http and https only, no redirects, no proxy (CURLOPT_PROXY "" overrides
 * the http_proxy/https_proxy environment: a context broker is a peer on
 * the operator's network, and a proxy picked up by accident would hide
 * its answers), TCP keep-alive, the CA bundle when configured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "spot/err.h"
#include "http_client.h"

struct http_client {
    CURLM *multi;
    char *ca_file;
    long connect_timeout_ms;
    long timeout_ms;
    int active;
};

struct http_request {
    CURL *easy;
    struct curl_slist *headers;
    void *user;
    bool active;
    bool configured; /* fixed options set for this client */
    char *resp;
    size_t resp_len;
    size_t resp_cap;
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct http_request *r = arg;
    size_t n = size * nmemb;
    size_t room = HTTP_MAX_RESPONSE - r->resp_len;
    size_t take = n < room ? n : room;
    if (take > 0) {
        if (r->resp_len + take + 1 > r->resp_cap) {
            size_t cap = r->resp_cap ? r->resp_cap : 1024;
            while (cap < r->resp_len + take + 1)
                cap *= 2;
            char *p = realloc(r->resp, cap);
            if (p == NULL)
                return 0; /* aborts the transfer: retried later */
            r->resp = p;
            r->resp_cap = cap;
        }
        memcpy(r->resp + r->resp_len, ptr, take);
        r->resp_len += take;
        r->resp[r->resp_len] = '\0';
    }
    return n;
}

int http_client_new(struct http_client **out,
                    const struct http_client_options *o)
{
    struct http_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return SPOT_ENOMEM;
    c->connect_timeout_ms = o->connect_timeout_ms;
    c->timeout_ms = o->timeout_ms;
    if (o->ca_file && o->ca_file[0]) {
        c->ca_file = strdup(o->ca_file);
        if (c->ca_file == NULL)
            goto fail;
    }
    c->multi = curl_multi_init();
    if (c->multi == NULL)
        goto fail;
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)HTTP_MAX_HOST_CONNECTIONS);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                      (long)(2 * HTTP_MAX_HOST_CONNECTIONS));
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    *out = c;
    return SPOT_OK;
fail:
    free(c->ca_file);
    free(c);
    return SPOT_ENOMEM;
}

void http_client_free(struct http_client *c)
{
    if (c == NULL)
        return;
    curl_multi_cleanup(c->multi);
    free(c->ca_file);
    free(c);
}

int http_client_run(struct http_client *c, int timeout_ms)
{
    int running = 0;
    CURLMcode mc = curl_multi_perform(c->multi, &running);
    if (mc != CURLM_OK)
        return SPOT_EIO;
    if (timeout_ms > 0) {
        mc = curl_multi_poll(c->multi, NULL, 0, timeout_ms, NULL);
        if (mc != CURLM_OK)
            return SPOT_EIO;
        mc = curl_multi_perform(c->multi, &running);
        if (mc != CURLM_OK)
            return SPOT_EIO;
    }
    return SPOT_OK;
}

void http_client_wakeup(struct http_client *c)
{
    curl_multi_wakeup(c->multi);
}

int http_client_active(const struct http_client *c)
{
    return c->active;
}

struct http_request *http_client_done(struct http_client *c,
                                      struct http_result *res)
{
    int left;
    CURLMsg *m;
    while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        struct http_request *r = (struct http_request *)(void *)priv;
        CURLcode cc = m->data.result;
        curl_multi_remove_handle(c->multi, m->easy_handle);
        if (r == NULL)
            continue;
        r->active = false;
        c->active--;
        memset(res, 0, sizeof *res);
        res->body = r->resp ? r->resp : "";
        res->body_len = r->resp_len;
        curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &res->seconds);
        if (cc == CURLE_OK) {
            res->answered = true;
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res->status);
            res->error = "";
        } else {
            res->timed_out = cc == CURLE_OPERATION_TIMEDOUT;
            res->error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc);
        }
        return r;
    }
    return NULL;
}

int http_request_new(struct http_request **out, void *user)
{
    struct http_request *r = calloc(1, sizeof *r);
    if (r == NULL)
        return SPOT_ENOMEM;
    r->easy = curl_easy_init();
    if (r->easy == NULL) {
        free(r);
        return SPOT_ENOMEM;
    }
    r->user = user;
    *out = r;
    return SPOT_OK;
}

void http_request_free(struct http_request *r)
{
    if (r == NULL)
        return;
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->resp);
    free(r);
}

void *http_request_user(const struct http_request *r)
{
    return r->user;
}

bool http_request_active(const struct http_request *r)
{
    return r->active;
}

void http_request_clear_headers(struct http_request *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
}

int http_request_header(struct http_request *r, const char *name,
                        const char *value)
{
    char line[2048];
    if (strpbrk(value, "\r\n") != NULL || strpbrk(name, "\r\n: ") != NULL)
        return SPOT_EINVAL;
    /* "Name:" alone tells curl to send no such header (e.g. "Expect"). */
    int n = value[0] ? snprintf(line, sizeof line, "%s: %s", name, value)
                     : snprintf(line, sizeof line, "%s:", name);
    if (n < 0 || (size_t)n >= sizeof line)
        return SPOT_EINVAL;
    struct curl_slist *l = curl_slist_append(r->headers, line);
    if (l == NULL)
        return SPOT_ENOMEM;
    r->headers = l;
    return SPOT_OK;
}

/* Options that do not change between requests of one client. */
static int configure(struct http_client *c, struct http_request *r)
{
    CURL *e = r->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)r) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                            c->connect_timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                            (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "") != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK;
    if (c->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) != CURLE_OK;
    if (bad)
        return SPOT_ENOMEM;
    r->configured = true;
    return SPOT_OK;
}

int http_client_start(struct http_client *c, struct http_request *r,
                      const char *url, const void *body, size_t len)
{
    if (r->active)
        return SPOT_EINVAL;
    if (!r->configured && configure(c, r) != SPOT_OK)
        return SPOT_ENOMEM;
    CURL *e = r->easy;
    r->resp_len = 0;
    if (r->resp)
        r->resp[0] = '\0';
    r->errbuf[0] = '\0';
    int bad = curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK;
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
    if (body != NULL) {
        bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                (curl_off_t)len) != CURLE_OK;
        bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) != CURLE_OK;
    } else {
        bad |= curl_easy_setopt(e, CURLOPT_HTTPGET, 1L) != CURLE_OK;
    }
    if (bad)
        return SPOT_ENOMEM;
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK)
        return SPOT_ENOMEM;
    r->active = true;
    c->active++;
    return SPOT_OK;
}

void http_client_cancel(struct http_client *c, struct http_request *r)
{
    if (!r->active)
        return;
    curl_multi_remove_handle(c->multi, r->easy);
    r->active = false;
    c->active--;
}
