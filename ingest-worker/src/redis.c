/*
 * Copyright (C) edgehog
 */

/*
 * One way to reach Redis for the worker's threads: "host:port",
 * "unix:/path" or "/path", with a timeout on connect and on every
 * command, so a hung Redis delays a write instead of stopping a thread.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <hiredis/hiredis.h>

#include "worker.h"


redisContext *
worker_redis_connect(const char *addr, int timeout_s, const char *who)
{
    int              port;
    char             host[256];
    const char      *colon;
    redisContext    *rc;
    struct timeval   tv;

    tv.tv_sec = timeout_s;
    tv.tv_usec = 0;

    if (strncmp(addr, "unix:", 5) == 0 || addr[0] == '/') {
        rc = redisConnectUnixWithTimeout(addr[0] == '/' ? addr : addr + 5,
                                         tv);

    } else {
        colon = strrchr(addr, ':');
        port = colon ? atoi(colon + 1) : 6379;
        snprintf(host, sizeof(host), "%.*s",
                 colon ? (int) (colon - addr) : (int) strlen(addr), addr);
        rc = redisConnectWithTimeout(host, port, tv);
    }

    if (rc == NULL || rc->err) {
        worker_log(WORKER_LOG_WARN, "%s: redis %s: %s", who, addr,
                   rc ? rc->errstr : "out of memory");
        if (rc) {
            redisFree(rc);
        }

        return NULL;
    }

    redisSetTimeout(rc, tv);

    return rc;
}
