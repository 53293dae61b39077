/*
 * A thin wrapper over libcurl's multi interface for the NGSI sink: one
 * struct http_client (a curl multi handle: connection cache with
 * keep-alive, at most HTTP_MAX_HOST_CONNECTIONS connections per host,
 * connect and total timeouts, no proxy) and reusable struct http_request
 * objects (one curl easy handle each, its header list and a capped copy of
 * the response body).
 *
 * Everything runs on the one thread that owns the client, except
 * http_client_wakeup(), which any thread may call to interrupt
 * http_client_run().
 */
#ifndef SPOT_HTTP_CLIENT_H
#define SPOT_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

/* Connections kept per host (and so requests in flight to one broker). */
#define HTTP_MAX_HOST_CONNECTIONS 4
/* Response bytes kept; the rest is read and dropped. */
#define HTTP_MAX_RESPONSE (64 * 1024)

struct http_client_options {
    const char *ca_file; /* CA bundle for https, or NULL; copied */
    long connect_timeout_ms;
    long timeout_ms; /* whole request, connect included */
};

/* The outcome of a finished request; strings borrowed from the request
 * until it is started again or freed. */
struct http_result {
    bool answered;     /* an HTTP response arrived: status is set */
    long status;       /* HTTP status code, 0 when !answered */
    bool timed_out;    /* connect or total timeout */
    const char *error; /* !answered: why (curl's message), never NULL */
    const char *body;  /* response body (NUL-terminated), possibly cut */
    size_t body_len;
    double seconds; /* total time of the transfer */
};

struct http_client;
struct http_request;

int http_client_new(struct http_client **out,
                    const struct http_client_options *o);
/* Every request must be idle (finished or cancelled). Accepts NULL. */
void http_client_free(struct http_client *c);

/* Runs the transfers and waits up to timeout_ms for network activity or a
 * wake-up. Returns SPOT_OK or SPOT_EIO (curl's multi interface failed). */
int http_client_run(struct http_client *c, int timeout_ms);

/* Interrupts a wait in http_client_run(). Any thread. */
void http_client_wakeup(struct http_client *c);

/* Number of requests started and not yet returned by http_client_done(). */
int http_client_active(const struct http_client *c);

/* The next finished request (NULL when none), its result in *res. The
 * request is idle again and may be restarted. */
struct http_request *http_client_done(struct http_client *c,
                                      struct http_result *res);

int http_request_new(struct http_request **out, void *user);
/* Must not be active (cancel it first). Accepts NULL. */
void http_request_free(struct http_request *r);
void *http_request_user(const struct http_request *r);
bool http_request_active(const struct http_request *r);

/* Header list of the next start: cleared, then one header at a time
 * ("Name: value"; value copied, must not hold CR or LF; an empty value
 * suppresses a header curl would add, e.g. "Expect"). SPOT_OK,
 * SPOT_EINVAL or SPOT_ENOMEM. */
void http_request_clear_headers(struct http_request *r);
int http_request_header(struct http_request *r, const char *name,
                        const char *value);

/* Starts a GET (body NULL) or a POST of body (borrowed: must stay
 * unchanged until the request finishes or is cancelled) to url (copied
 * by curl). SPOT_OK, SPOT_EINVAL (already active) or SPOT_ENOMEM. */
int http_client_start(struct http_client *c, struct http_request *r,
                      const char *url, const void *body, size_t len);

/* Aborts an active request (it will not be returned by
 * http_client_done()). */
void http_client_cancel(struct http_client *c, struct http_request *r);

#endif
