/*
 * Descriptions of enum spot_err. Constant strings: any thread.
 */
#include "spot/err.h"

const char *spot_strerror(int err)
{
    switch (err) {
    case SPOT_OK:
        return "success";
    case SPOT_EAGAIN:
        return "temporarily unavailable, try again later";
    case SPOT_ENOMEM:
        return "out of memory";
    case SPOT_EINVAL:
        return "invalid argument or input";
    case SPOT_EIO:
        return "input/output error";
    case SPOT_ECORRUPT:
        return "data failed its integrity check";
    case SPOT_EFULL:
        return "limit reached";
    case SPOT_ECONFIG:
        return "invalid configuration";
    case SPOT_ESHUTDOWN:
        return "shutting down";
    case SPOT_ENOTFOUND:
        return "not found";
    case SPOT_ETOOBIG:
        return "input too large";
    case SPOT_EPEER:
        return "refused by the remote peer";
    }
    return "unknown error";
}
