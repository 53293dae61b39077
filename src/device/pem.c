/*
 * PEM resources: loading, OpenSSL checks, and files for Paho (API:
 * spot/pem.h). Any thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "spot/device_limits.h"
#include "spot/err.h"
#include "spot/pem.h"

bool pem_is_inline(const char *value)
{
    return strstr(value, "-----BEGIN ") != NULL;
}

int pem_load(const char *value, char **out, size_t *len, char *why,
             size_t whylen)
{
    if (pem_is_inline(value)) {
        size_t n = strlen(value);
        if (n > SPOT_DEVICE_MAX_PEM) {
            snprintf(why, whylen, "PEM text larger than %d bytes",
                     SPOT_DEVICE_MAX_PEM);
            return SPOT_ETOOBIG;
        }
        *out = strdup(value);
        if (*out == NULL)
            return SPOT_ENOMEM;
        *len = n;
        return SPOT_OK;
    }
    FILE *f = fopen(value, "rb");
    if (f == NULL) {
        snprintf(why, whylen, "%s: %s", value, strerror(errno));
        return SPOT_EIO;
    }
    char *buf = malloc(SPOT_DEVICE_MAX_PEM + 2);
    if (buf == NULL) {
        fclose(f);
        return SPOT_ENOMEM;
    }
    size_t n = fread(buf, 1, SPOT_DEVICE_MAX_PEM + 1, f);
    int err = ferror(f);
    fclose(f);
    if (err) {
        snprintf(why, whylen, "%s: read error", value);
        free(buf);
        return SPOT_EIO;
    }
    if (n > SPOT_DEVICE_MAX_PEM) {
        snprintf(why, whylen, "%s: larger than %d bytes", value,
                 SPOT_DEVICE_MAX_PEM);
        free(buf);
        return SPOT_ETOOBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return SPOT_OK;
}

static void ssl_reason(char *why, size_t whylen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(why, whylen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* Never prompt for a pass phrase: an encrypted key is an error. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

int pem_check_certs(const char *pem, size_t len, char *why, size_t whylen)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL)
        return SPOT_ENOMEM;
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
        X509_free(x);
        n++;
    }
    BIO_free(b);
    /* the loop ends with a "no start line" error at the end of input */
    ERR_clear_error();
    if (n == 0) {
        snprintf(why, whylen, "no PEM certificate found");
        return SPOT_EINVAL;
    }
    return SPOT_OK;
}

static EVP_PKEY *read_key(const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
    BIO_free(b);
    return k;
}

int pem_check_key(const char *pem, size_t len, char *why, size_t whylen)
{
    EVP_PKEY *k = read_key(pem, len);
    if (k == NULL) {
        ssl_reason(why, whylen, "not an unencrypted PEM private key");
        return SPOT_EINVAL;
    }
    EVP_PKEY_free(k);
    return SPOT_OK;
}

int pem_check_pair(const char *cert, size_t cert_len, const char *key,
                   size_t key_len, char *why, size_t whylen)
{
    BIO *b = BIO_new_mem_buf(cert, (int)cert_len);
    if (b == NULL)
        return SPOT_ENOMEM;
    X509 *x = PEM_read_bio_X509(b, NULL, no_password, NULL);
    BIO_free(b);
    EVP_PKEY *k = read_key(key, key_len);
    int rc = SPOT_OK;
    if (x == NULL || k == NULL) {
        ssl_reason(why, whylen, "cannot read the certificate or the key");
        rc = SPOT_EINVAL;
    } else if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        snprintf(why, whylen,
                 "the client key does not belong to the client certificate");
        rc = SPOT_EINVAL;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int pem_to_file(const char *value, const char *dir, const char *name,
                char *path, size_t pathlen)
{
    if (!pem_is_inline(value)) {
        if ((size_t)snprintf(path, pathlen, "%s", value) >= pathlen)
            return SPOT_ETOOBIG;
        return SPOT_OK;
    }
    if ((size_t)snprintf(path, pathlen, "%s/%s", dir, name) >= pathlen)
        return SPOT_ETOOBIG;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return SPOT_EIO;
    size_t n = strlen(value), off = 0;
    while (off < n) {
        ssize_t w = write(fd, value + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return SPOT_EIO;
        }
        off += (size_t)w;
    }
    return close(fd) == 0 ? SPOT_OK : SPOT_EIO;
}
