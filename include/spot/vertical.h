/*
 * The Smart Spot data verticals and their three-letter codes (wire contract
 * §2). Pure functions over constant data: any thread may call them.
 */
#ifndef SPOT_VERTICAL_H
#define SPOT_VERTICAL_H

#include <stddef.h>

enum spot_vertical {
    SPOT_V_AQO, /* air quality */
    SPOT_V_NLO, /* noise level */
    SPOT_V_WTO, /* weather */
    SPOT_V_CFO, /* crowd counts */
    SPOT_V_CFE, /* crowd per-visitor events */
    SPOT_V_DEV, /* device */
    SPOT_V_DHO, /* device health */
    SPOT_V_COUNT,
    SPOT_V_GENERIC = SPOT_V_COUNT, /* /{apikey}/{device}/attrs, no vertical */
};

/* Lower-case code ("aqo"), or "generic" for SPOT_V_GENERIC. */
const char *vertical_code(enum spot_vertical v);

/* Finds the vertical whose code equals the len bytes at s, ignoring case.
 * Returns SPOT_OK or SPOT_ENOTFOUND. */
int vertical_from_code(const char *s, size_t len, enum spot_vertical *out);

#endif
