/*
 * spotdevice's status file (--status FILE): the device's counters and the
 * client status (resource 17) as one JSON object, replaced atomically
 * (write to FILE.tmp, rename) after every sampling period and on each
 * change of the connection, for monitoring and tests. One thread writes.
 */
#ifndef SPOT_DEVICE_STATUS_H
#define SPOT_DEVICE_STATUS_H

#include "spot/device.h"

/* Returns SPOT_OK or SPOT_EIO (errno set). */
int device_status_write(const struct device_stats *st, const char *path);

#endif
