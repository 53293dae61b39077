/*
 * Salted SHA-1 of a detected MAC, the cfe visitorId (API:
 * spot/visitor_id.h), through OpenSSL's EVP interface. Any thread.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "spot/err.h"
#include "spot/visitor_id.h"

int visitor_id(const char *salt, const unsigned char mac[6],
               char out[VISITOR_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char text[18];
    for (int i = 0; i < 6; i++) {
        text[3 * i] = hex[mac[i] >> 4];
        text[3 * i + 1] = hex[mac[i] & 15];
        text[3 * i + 2] = ':';
    }
    text[17] = '\0';
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int rc = SPOT_EIO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return SPOT_EIO;
    if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, salt, strlen(salt)) == 1 &&
        EVP_DigestUpdate(ctx, text, 17) == 1 &&
        EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen * 2 == VISITOR_ID_LEN)
        rc = SPOT_OK;
    EVP_MD_CTX_free(ctx);
    if (rc != SPOT_OK)
        return rc;
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[VISITOR_ID_LEN] = '\0';
    return SPOT_OK;
}
