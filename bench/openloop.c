/*
 * Copyright (C) edgehog
 */

/*
 * Open-loop HTTP/1.1 load at a fixed rate, for "p99 at half the maximum
 * rate" (issue 4).  wrk is closed-loop: a slow response delays the next
 * request on its connection and the delay never shows in its latency
 * (coordinated omission), and its Lua delay() paces in whole
 * milliseconds per connection.  Here request k is due at start + k/rate
 * whatever happened before; it goes out on an idle keep-alive
 * connection, or waits for one, and its latency runs from the due time,
 * so queueing on our side counts against the server as it would for a
 * real client.  One thread; epoll_pwait2() sleeps until the next due time
 * with a 1 ns timer slack (a timerfd re-armed every loop took 40% of this
 * process's CPU in this VM: each hrtimer reprogramming is a VM exit).
 *
 * The generator shares the machine with the server, so it also reports
 * on itself: late_p99_us is how late, at the 99th percentile, requests
 * went out after they could have (their due time, or when a connection
 * freed up if all were busy): the generator's own delay, for want of
 * CPU; and cpu_pct its CPU use.  When late_p99_us comes near p99_us, the
 * tail is the generator's, not the server's.
 *
 *     openloop HOST PORT RATE SECONDS CONNS REQUEST_FILE
 *
 * prints one line: "sent N done N non2xx N errors N p50_us X p99_us X
 * p999_us X max_us X".
 */


#define _GNU_SOURCE              /* strcasestr() */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>


#define OL_BUF         65536
#define OL_MAX_CONNS   1024
#define OL_EVENTS      256


typedef struct {
    int        fd;
    int        busy;
    uint64_t   due;           /* ns: when its request was due */
    size_t     have;
    char       buf[OL_BUF];
} ol_conn_t;


static uint64_t ol_now(void);
static int ol_connect(const char *host, int port);
static int ol_response(ol_conn_t *c, int *status);
static int ol_cmp(const void *a, const void *b);


static uint64_t
ol_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}


static int
ol_connect(const char *host, int port)
{
    int                 fd, one;
    struct sockaddr_in  sa;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, host, &sa.sin_addr);

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }

    one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    return fd;
}


/*
 * 1 and *status once a whole response is buffered (and consumed), else 0;
 * 2 if the server also said it closes the connection.
 */
static int
ol_response(ol_conn_t *c, int *status)
{
    int      rc;
    char    *end, *cl, *conn;
    size_t   head, body, total;

    end = memmem(c->buf, c->have, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }

    /*
     * Headers only: strcasestr() over a 5 KB body for a "Connection:
     * close" that is not there took 17% of this process's CPU with
     * (b)'s responses and none with the 204's, so the generator itself
     * was slower, and its latency worse, for the larger response.
     */
    *end = '\0';

    head = end + 4 - c->buf;
    body = 0;

    cl = strcasestr(c->buf, "\r\nContent-Length:");
    if (cl) {
        body = strtoul(cl + 17, NULL, 10);
    }

    conn = strcasestr(c->buf, "\r\nConnection: close");
    rc = conn ? 2 : 1;

    *end = '\r';

    total = head + body;
    if (c->have < total) {
        return 0;
    }

    *status = atoi(c->buf + 9);

    memmove(c->buf, c->buf + total, c->have - total);
    c->have -= total;

    return rc;
}


static int
ol_cmp(const void *a, const void *b)
{
    uint64_t  x, y;

    x = *(const uint64_t *) a;
    y = *(const uint64_t *) b;

    return (x > y) - (x < y);
}


int
main(int argc, char **argv)
{
    int                 ep, i, n, nconns, port, status, alive, eof, rc;
    const char         *host;
    char               *req;
    long                size;
    FILE               *f;
    double              rate, secs;
    ssize_t             r;
    uint64_t            start, stop, now, next, k, total, sent, done;
    uint64_t            non2xx, errors, *lat, *late, pending, expired;
    uint64_t            begun, cpu, freed;
    int                 blocked;
    struct rusage       ru;
    struct timespec     ts;
    ol_conn_t          *conns, *c;
    struct epoll_event  ev, events[OL_EVENTS];

    if (argc != 7) {
        fprintf(stderr, "usage: openloop HOST PORT RATE SECONDS CONNS "
                        "REQUEST_FILE\n");
        return 2;
    }

    /* a write to a connection nginx just closed must not kill us */
    signal(SIGPIPE, SIG_IGN);

    host = argv[1];
    port = atoi(argv[2]);
    rate = atof(argv[3]);
    secs = atof(argv[4]);
    nconns = atoi(argv[5]);

    if (rate <= 0 || secs <= 0 || nconns <= 0 || nconns > OL_MAX_CONNS) {
        fprintf(stderr, "openloop: bad arguments\n");
        return 2;
    }

    f = fopen(argv[6], "rb");
    if (f == NULL) {
        perror("openloop: request file");
        return 2;
    }

    fseek(f, 0, SEEK_END);
    size = ftell(f);
    rewind(f);
    req = malloc(size);

    if (req == NULL || fread(req, 1, size, f) != (size_t) size) {
        fprintf(stderr, "openloop: cannot read the request\n");
        return 2;
    }

    fclose(f);

    total = (uint64_t) (rate * secs);
    lat = calloc(total + 1, sizeof(uint64_t));
    conns = calloc(nconns, sizeof(ol_conn_t));
    ep = epoll_create1(0);
    late = calloc(total + 1, sizeof(uint64_t));

    /* wake at the due time, not up to 50 us after it */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    if (lat == NULL || late == NULL || conns == NULL || ep < 0) {
        fprintf(stderr, "openloop: out of resources\n");
        return 2;
    }

    for (i = 0; i < nconns; i++) {
        conns[i].fd = ol_connect(host, port);
        if (conns[i].fd < 0) {
            perror("openloop: connect");
            return 2;
        }

        ev.events = EPOLLIN;
        ev.data.ptr = &conns[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }

    start = ol_now() + 10000000ULL;
    getrusage(RUSAGE_SELF, &ru);
    cpu = ru.ru_utime.tv_sec * 1000000ULL + ru.ru_utime.tv_usec
          + ru.ru_stime.tv_sec * 1000000ULL + ru.ru_stime.tv_usec;
    begun = 0;
    freed = 0;
    blocked = 0;
    stop = start + (uint64_t) (secs * 1e9) + 2000000000ULL;
    k = 0;
    sent = 0;
    done = 0;
    non2xx = 0;
    errors = 0;
    expired = 0;

    for ( ;; ) {
        now = ol_now();

        /* send what is due, oldest first, on idle connections */
        for ( ;; ) {
            if (k >= total) {
                break;
            }

            next = start + (uint64_t) ((double) k * 1e9 / rate);
            if (next > now) {
                break;
            }

            c = NULL;

            for (i = 0; i < nconns; i++) {
                if (!conns[i].busy && conns[i].fd >= 0) {
                    c = &conns[i];
                    break;
                }
            }

            if (c == NULL) {
                /* all busy: it waits, and its latency keeps running */
                blocked = 1;
                break;
            }

            r = write(c->fd, req, size);
            if (r != size) {
                /* requests are small: a short write means a dead peer */
                errors++;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                c->have = 0;
                c->fd = ol_connect(host, port);

                if (c->fd >= 0) {
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
                }

                continue;
            }

            c->busy = 1;
            c->due = next;
            /* it could go out when due, or when a connection freed up */
            if (blocked && freed > next) {
                next = freed;
            }

            late[sent] = now > next ? now - next : 0;
            blocked = 0;
            sent++;
            k++;
        }

        pending = 0;
        alive = 0;

        for (i = 0; i < nconns; i++) {
            pending += conns[i].busy;
            alive += (conns[i].fd >= 0);
        }

        if (alive == 0) {
            fprintf(stderr, "openloop: every connection failed\n");
            return 1;
        }

        if ((k >= total && pending == 0) || now > stop) {
            expired = pending + (total - k);
            break;
        }

        /*
         * Wake for the next due time only if a connection could take
         * it; with all busy a response is what frees one.
         */
        ts.tv_sec = 0;
        ts.tv_nsec = 100000000;

        if (k < total && pending < (uint64_t) alive) {
            next = start + (uint64_t) ((double) k * 1e9 / rate);
            now = ol_now();
            next = next > now ? next - now : 0;
            ts.tv_sec = next / 1000000000ULL;
            ts.tv_nsec = next % 1000000000ULL;
        }

        n = epoll_pwait2(ep, events, OL_EVENTS, &ts, NULL);

        for (i = 0; i < n; i++) {
            c = events[i].data.ptr;

            eof = 0;

            for ( ;; ) {
                r = read(c->fd, c->buf + c->have, OL_BUF - 1 - c->have);

                if (r > 0) {
                    c->have += r;

                    /* drained: level-triggered epoll reports the rest */
                    if ((size_t) r < OL_BUF - 1 - (c->have - r)) {
                        break;
                    }

                    continue;
                }

                if (r < 0 && errno == EAGAIN) {
                    break;
                }

                eof = 1;
                break;
            }

            if (c->busy && (rc = ol_response(c, &status)) != 0) {
                /* keepalive_requests reached: do not reuse it */
                eof |= (rc == 2);
                freed = ol_now();
                lat[done++] = freed - c->due;
                c->busy = 0;

                if (status < 200 || status > 299) {
                    non2xx++;
                }
            }

            if (!eof) {
                continue;
            }

            /*
             * nginx closes after keepalive_requests with the last
             * response; a close with a request outstanding loses it.
             */
            if (c->busy) {
                errors++;
                c->busy = 0;
            }

            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            c->have = 0;
            c->fd = ol_connect(host, port);

            if (c->fd >= 0) {
                ev.events = EPOLLIN;
                ev.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
            }
        }
    }

    getrusage(RUSAGE_SELF, &ru);
    cpu = ru.ru_utime.tv_sec * 1000000ULL + ru.ru_utime.tv_usec
          + ru.ru_stime.tv_sec * 1000000ULL + ru.ru_stime.tv_usec - cpu;
    begun = ol_now() - start;

    qsort(lat, done, sizeof(uint64_t), ol_cmp);
    qsort(late, sent, sizeof(uint64_t), ol_cmp);

    printf("sent %llu done %llu non2xx %llu errors %llu unfinished %llu "
           "p50_us %.0f p99_us %.0f p999_us %.0f max_us %.0f "
           "late_p99_us %.0f cpu_pct %.0f\n",
           (unsigned long long) sent, (unsigned long long) done,
           (unsigned long long) non2xx, (unsigned long long) errors,
           (unsigned long long) expired,
           done ? lat[done / 2] / 1e3 : 0.0,
           done ? lat[(size_t) (done * 0.99)] / 1e3 : 0.0,
           done ? lat[(size_t) (done * 0.999)] / 1e3 : 0.0,
           done ? lat[done - 1] / 1e3 : 0.0,
           sent ? late[(size_t) (sent * 0.99)] / 1e3 : 0.0,
           begun ? cpu * 1e5 / begun : 0.0);

    return 0;
}
