/*
 * The PEM resources of the device's MQTT client (CA 12, client certificate
 * 13, client key 14). A resource holds either the PEM text itself (it
 * contains "-----BEGIN ") or the path of a PEM file. Checks go through
 * OpenSSL so that a wrong file is found by --check-config, not at the
 * first TLS handshake. Any thread.
 */
#ifndef SPOT_PEM_H
#define SPOT_PEM_H

#include <stdbool.h>
#include <stddef.h>

/* True when value is PEM text rather than a path. */
bool pem_is_inline(const char *value);

/* The PEM text of value (read from the file when it is a path, at most
 * SPOT_DEVICE_MAX_PEM bytes). *out is NUL-terminated; caller frees.
 * Returns SPOT_OK, SPOT_EIO or SPOT_ETOOBIG with the reason in why. */
int pem_load(const char *value, char **out, size_t *len, char *why,
             size_t whylen);

/* At least one X.509 certificate and nothing unparsable. */
int pem_check_certs(const char *pem, size_t len, char *why, size_t whylen);
/* An unencrypted private key. */
int pem_check_key(const char *pem, size_t len, char *why, size_t whylen);
/* The key belongs to the (first) certificate. */
int pem_check_pair(const char *cert, size_t cert_len, const char *key,
                   size_t key_len, char *why, size_t whylen);

/* A path Paho can open for value: value itself when it is a path, else
 * dir/name written with mode 0600 (overwritten). Returns SPOT_OK or
 * SPOT_EIO. */
int pem_to_file(const char *value, const char *dir, const char *name,
                char *path, size_t pathlen);

#endif
