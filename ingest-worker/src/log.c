/*
 * Copyright (C) edgehog
 */


#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"


static worker_log_level_e  worker_log_level = WORKER_LOG_INFO;

static const char  *worker_log_names[] = { "error", "warn", "info", "debug" };


void
worker_log_set_level(worker_log_level_e level)
{
    worker_log_level = level;
}


/* one line per message on stderr, nginx-like: time [level] pid: text */

void
worker_log(worker_log_level_e level, const char *fmt, ...)
{
    char        ts[32];
    time_t      now;
    va_list     args;
    struct tm   tm;

    if (level > worker_log_level) {
        return;
    }

    now = time(NULL);
    localtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y/%m/%d %H:%M:%S", &tm);

    fprintf(stderr, "%s [%s] %d: ", ts, worker_log_names[level],
            (int) getpid());

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}
