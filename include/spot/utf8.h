/*
 * Strict UTF-8 (RFC 3629): what PostgreSQL's text and jsonb and the NGSI
 * brokers accept. yajl checks only the shape of multi-byte sequences, so
 * overlong forms, UTF-16 surrogates and code points above U+10FFFF get
 * through it. Pure functions: any thread.
 */
#ifndef SPOT_UTF8_H
#define SPOT_UTF8_H

#include <stddef.h>

/* Length of the longest prefix of the n bytes at s that is valid UTF-8
 * (n when all of it is). */
size_t utf8_valid_prefix(const void *s, size_t n);

/* True when the n bytes at s are valid UTF-8. */
int utf8_is_valid(const void *s, size_t n);

/* The largest k <= max such that the first k of the n bytes at s (valid
 * UTF-8) do not end inside a multi-byte sequence: where to cut text that
 * must stay valid UTF-8. */
size_t utf8_cut(const void *s, size_t n, size_t max);

#endif
