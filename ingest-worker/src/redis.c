/*
 * Copyright (C) edgehog
 */

/*
 * One way to reach Redis for the worker's threads: "host:port",
 * "unix:/path" or "/path", with a timeout on connect and on every
 * command, so a hung Redis delays a write instead of stopping a thread.
 */


#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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


/*
 * A command on a thread's own connection, made when needed.  Redis drops
 * its connections when it restarts, and the first command on a dropped
 * one fails: that command is sent again once on a new connection, or the
 * write that found the restart would be lost (nothing rewrites a person
 * or group entry until it changes again; the refill after a restart has
 * run by then).  After a failure on a new connection, or one to connect,
 * no connection is tried for WORKER_REDIS_RETRY_S, so a Redis that is
 * down costs a connect timeout only now and then.  NULL on failure.
 */

redisReply *
worker_redis_command(redisContext **rc, time_t *retry, const char *addr,
    int timeout_s, const char *who, const char *fmt, ...)
{
    int          fresh, attempt;
    va_list      args, copy;
    redisReply  *reply;

    reply = NULL;
    va_start(args, fmt);

    for (attempt = 0; attempt < 2; attempt++) {
        fresh = 0;

        if (*rc == NULL) {
            if (time(NULL) < *retry) {
                break;
            }

            *rc = worker_redis_connect(addr, timeout_s, who);

            if (*rc == NULL) {
                *retry = time(NULL) + WORKER_REDIS_RETRY_S;
                break;
            }

            fresh = 1;
        }

        va_copy(copy, args);
        reply = redisvCommand(*rc, fmt, copy);
        va_end(copy);

        if (reply != NULL) {
            break;
        }

        worker_log(WORKER_LOG_WARN, "%s: redis %s: %s", who, addr,
                   (*rc)->errstr);
        redisFree(*rc);
        *rc = NULL;

        if (fresh) {
            *retry = time(NULL) + WORKER_REDIS_RETRY_S;
            break;
        }
    }

    va_end(args);

    return reply;
}
