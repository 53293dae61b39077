/*
 * One error enum for the whole project, agent and device side alike.
 * Functions that can fail return an int from this enum (0 = SPOT_OK) and
 * pass results through out-parameters. Any thread may call spot_strerror().
 */
#ifndef SPOT_ERR_H
#define SPOT_ERR_H

enum spot_err {
    SPOT_OK = 0,
    SPOT_EAGAIN,    /* transient: try again later (peer down, no data yet) */
    SPOT_ENOMEM,    /* allocation failed */
    SPOT_EINVAL,    /* bad argument or bad input */
    SPOT_EIO,       /* an operating-system call failed; errno says why */
    SPOT_ECORRUPT,  /* stored data failed its integrity check */
    SPOT_EFULL,     /* a bound was reached (journal, queue) */
    SPOT_ECONFIG,   /* configuration is invalid */
    SPOT_ESHUTDOWN, /* the service is stopping */
    SPOT_ENOTFOUND, /* no such item */
    SPOT_ETOOBIG,   /* input larger than its cap */
    SPOT_EPEER,     /* a remote peer refused the request permanently */
};

/* A static, human-readable description of err. Never NULL. */
const char *spot_strerror(int err);

#endif
