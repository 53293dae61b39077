/*
 * The anonymous visitor id of crowd monitoring (cfe.visitorId): the MAC
 * address a device detected is never sent, only a salted SHA-1 of it.
 * Pure function: any thread.
 */
#ifndef SPOT_VISITOR_ID_H
#define SPOT_VISITOR_ID_H

#define VISITOR_ID_LEN 40

/* Writes the 40 lower-case hex digits of SHA-1(salt || mac) and a NUL into
 * out, mac written as "aa:bb:cc:dd:ee:ff". salt may be "". Returns SPOT_OK
 * or SPOT_EIO (OpenSSL failed). */
int visitor_id(const char *salt, const unsigned char mac[6],
               char out[VISITOR_ID_LEN + 1]);

#endif
