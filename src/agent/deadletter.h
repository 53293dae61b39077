/*
 * File dead-letter store, used when no PostgreSQL sink is configured:
 * rejected messages are appended to <data-dir>/dead-letters.jsonl, one JSON
 * object per line with the receive time, topic, reason, detail and the raw
 * payload in base64. Written by one sink thread at a time.
 */
#ifndef SPOT_DEADLETTER_H
#define SPOT_DEADLETTER_H

#include <stddef.h>
#include <stdint.h>

#include "validate.h"

struct deadletter;

int deadletter_open(struct deadletter **out, const char *dir);
void deadletter_close(struct deadletter *d);

/* Appends one rejected message (topic and payload as received). */
int deadletter_write(struct deadletter *d, enum reject_reason reason,
                     const char *detail, size_t detail_len, int64_t received_us,
                     const char *topic, size_t topic_len,
                     const unsigned char *payload, size_t payload_len);

/* Makes everything written so far durable (fflush + fdatasync). */
int deadletter_sync(struct deadletter *d);

#endif
