/*
 * Parsing of the device's MQTT server URL (API: spot/mqtt_url.h). Pure
 * function: any thread.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "spot/err.h"
#include "spot/mqtt_url.h"

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return SPOT_EINVAL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes n bytes of s into out (cap bytes with the NUL). */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static int host_ok(const char *h, size_t n)
{
    if (n == 0)
        return 0;
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
                return 0;
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return 0;
    }
    return 1;
}

int mqtt_url_parse(const char *url, struct mqtt_url *out, char *why,
                   size_t whylen)
{
    memset(out, 0, sizeof *out);
    out->port = -1;
    if (strlen(url) >= SPOT_DEVICE_MAX_URL)
        return fail(why, whylen, "URL too long");
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return fail(why, whylen,
                    "no scheme (expected mqtt://, ws:// or "
                    "wss://)");
    size_t slen = (size_t)(sep - url);
    if (slen >= sizeof out->scheme)
        return fail(why, whylen,
                    "unknown scheme (expected mqtt://, ws:// "
                    "or wss://)");
    for (size_t i = 0; i < slen; i++)
        out->scheme[i] = (char)tolower((unsigned char)url[i]);
    out->scheme[slen] = '\0';
    if (strcmp(out->scheme, "mqtt") != 0 && strcmp(out->scheme, "ws") != 0 &&
        strcmp(out->scheme, "wss") != 0)
        return fail(why, whylen,
                    "unknown scheme (expected mqtt://, ws:// "
                    "or wss://)");
    const char *auth = sep + 3;
    if (strpbrk(auth, "?#") != NULL)
        return fail(why, whylen, "a query or fragment is not allowed");
    if (strpbrk(auth, " \t\r\n") != NULL)
        return fail(why, whylen, "whitespace in the URL");
    const char *path = strchr(auth, '/');
    size_t alen = path ? (size_t)(path - auth) : strlen(auth);
    /* user info: the last '@' before the path */
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *host = auth;
    if (at != NULL) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        size_t ulen = colon ? (size_t)(colon - auth) : (size_t)(at - auth);
        if (ulen == 0)
            return fail(why, whylen, "empty user name before '@'");
        if (decode(auth, ulen, out->user, sizeof out->user) != 0)
            return fail(why, whylen,
                        "bad user name in the URL (percent "
                        "encoding or length)");
        out->has_user = true;
        if (colon != NULL) {
            if (decode(colon + 1, (size_t)(at - colon - 1), out->password,
                       sizeof out->password) != 0)
                return fail(why, whylen,
                            "bad password in the URL (percent "
                            "encoding or length)");
            out->has_password = true;
        }
        host = at + 1;
    }
    size_t hlen = (size_t)(auth + alen - host);
    /* port: after the last ':' that is not inside an IPv6 literal */
    const char *pcolon = NULL;
    if (hlen > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', hlen);
        if (close && close + 1 < host + hlen) {
            if (close[1] != ':')
                return fail(why, whylen, "garbage after the IPv6 address");
            pcolon = close + 1;
        }
    } else {
        pcolon = memchr(host, ':', hlen);
    }
    size_t name_len = pcolon ? (size_t)(pcolon - host) : hlen;
    if (pcolon) {
        const char *p = pcolon + 1;
        size_t plen = (size_t)(host + hlen - p);
        long port = 0;
        if (plen == 0 || plen > 5)
            return fail(why, whylen, "bad port in the URL");
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)p[i]))
                return fail(why, whylen, "bad port in the URL");
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535)
            return fail(why, whylen, "port in the URL outside 1..65535");
        out->port = (int)port;
    }
    if (name_len > SPOT_DEVICE_MAX_HOST + 2 || !host_ok(host, name_len))
        return fail(why, whylen, "missing or malformed host name");
    memcpy(out->host, host, name_len);
    out->host[name_len] = '\0';
    if (path != NULL) {
        if (strlen(path) >= sizeof out->path)
            return fail(why, whylen, "path too long");
        snprintf(out->path, sizeof out->path, "%s", path);
    }
    return SPOT_OK;
}
