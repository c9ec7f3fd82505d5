#!/usr/bin/python3
"""make bench-decide: req/s and p50/p99 of /flags?v=2 with one nginx worker
against the snapshot the ingest-worker published to Redis, next to nginx's
`return 204`, measured in one run with wrk (issue 4).  Numbers are printed,
never asserted.

Each wrk line also shows the nginx worker's CPU time per request (user +
system from /proc), which other load on the machine disturbs much less
than req/s.  Then /flags?v=2 runs open-loop at half the rate wrk reached
(bench/openloop.c, see there for why not wrk) and prints its latency,
next to `return 204` open-loop at the same rate, both interleaved over
BENCH_OPENLOOP_ROUNDS rounds (median printed, each round's p99 shown).

Why (b)'s open-loop p99 was 4x the 204's (session 9, measured): (1) the
generator itself: openloop ran at ~98% of a core (perf sched: 3.9 s of
CPU in 4 s), 40% of it re-arming a timerfd every loop (each hrtimer
reprogramming is a VM exit here) and, for (b) only, 17% in strcasestr()
over the 4.8 KB body looking for "Connection: close"; a saturated
generator sends late and reads late, more so with (b)'s bigger
responses.  Fixed in openloop.c, which now prints its own lateness and
CPU.  (2) Interference: the worker waited runnable 200-1100 ms per
second of a run while other jobs' compilers and JVMs held the 2 cores
(printed as "waited runnable", from /proc/<pid>/task/*/schedstat), and
epoll iterations of 1-3 ms with 1-4 events (vCPU taken away) showed at
random times, not at the 250 ms snapshot refresh.  (3) Utilization: at
half of (b)'s maximum the worker is ~50% busy by construction (12-17 us
of CPU per request open-loop against the 204's 8-11), so the backlog a
stall leaves takes about as long again to drain (1/(1-rho)), against a
quarter of it for the 204 at the same rate; a faster module raises the
rate with it, so this part does not shrink.  Not found: periodic work on
the loop, page faults (18 minor faults per 20000 requests), extra
syscalls (one recvfrom and one writev per request), log writes.
(s) serves the bytes of a (b) response as a
static file: what carrying a response that size costs without building
it, an upper bound for (b)/(a) on this machine (it adds one pread()).

BENCH_COMPARE=dir runs every case also against the decide module built
in dir (e.g. a copy of build/nginx from an older commit), interleaved,
so both see the same load; BENCH_ROUNDS=n repeats every case n times and
prints the median; BENCH_CASES=a,b runs a subset; BENCH_PERF=dir records
perf profiles of the worker for each case.

BENCH_PIN=1 runs the nginx worker as an operator would on a dedicated
box: pinned to the last CPU (worker_cpu_affinity) with worker_priority
-10, and wrk and openloop on CPU 0, for every case alike.  The open-loop
tail on this 2-core machine is the worker waiting, runnable, behind
other processes (perf sched timehist: 5-20 ms scheduling delays while
compilers or Kafka of a parallel job hold its CPU).  Pinned, it no
longer waits behind the load generator, but cannot move away from a
foreign CPU hog either (one pinned run had p99 0.6 s; session 9, load 3-4
from other jobs: pinned (b) p50 161 ms against 1.6 ms unpinned), so it
is off by default: use it on a quiet machine only."""

import json
import os
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "t", "lib"))
sys.path.insert(0, HERE)

import services as S  # noqa: E402
import stack as ST  # noqa: E402
from capture import lua, wrk, CONNS, DURATION  # noqa: E402

ROOT = os.path.join(HERE, "..")
OPENLOOP = os.path.join(ROOT, "build", "bench", "openloop")
OPENLOOP_CONNS = os.environ.get("BENCH_OPENLOOP_CONNECTIONS", "64")
OPENLOOP_ROUNDS = int(os.environ.get("BENCH_OPENLOOP_ROUNDS", "3"))
COMPARE = os.environ.get("BENCH_COMPARE", "")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
CASES = os.environ.get("BENCH_CASES", "")
PERF = os.environ.get("BENCH_PERF", "")
NCPU = len(os.sched_getaffinity(0))
PIN = os.environ.get("BENCH_PIN", "0") != "0" and NCPU >= 2
SERVER_CPU = max(os.sched_getaffinity(0))
CLIENT_CPU = min(os.sched_getaffinity(0))

CONF = """
load_module @MODULES@/ngx_http_decide_module.so;
@USER@
worker_processes  1;
@PIN@
# the decide location is a regex, as in conf/nginx.conf.in: JIT-compiled
pcre_jit          on;
daemon            off;
pid               @PREFIX@/nginx.pid;
error_log         @PREFIX@/error.log warn;
events { worker_connections 4096; }
http {
    access_log            off;
    client_body_temp_path @PREFIX@/client_body;
    decide_redis_address  @REDIS@;
    client_max_body_size     20m;
    client_body_buffer_size  1m;
    server {
        listen 127.0.0.1:@PORT@ backlog=4096;
        location = /noop { return 204; }
        location = /static {
            alias @PREFIX@/response.json;
            default_type application/json;
            open_file_cache max=4;
        }
        location ~ ^/(decide|flags)/?$ { decide on; }
    }
}
"""


def flags():
    """20 flags: rollouts, multivariates, 3 property filters, payloads."""
    out = []
    for i in range(20):
        props = []
        if i % 4 == 0:
            props = [{"key": "plan", "type": "person", "operator": "exact",
                      "value": ["enterprise", "pro"]},
                     {"key": "email", "type": "person",
                      "operator": "icontains", "value": "@example.com"},
                     {"key": "app_version", "type": "person",
                      "operator": "semver_gte", "value": "1.2.0"}]
        f = {"key": f"bench-flag-{i}", "filters": {
            "groups": [{"properties": props,
                        "rollout_percentage": 10 + 4 * i}],
            "payloads": {"true": json.dumps({"i": i})}}}
        if i % 3 == 0:
            f["filters"]["multivariate"] = {"variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "test", "rollout_percentage": 50}]}
        out.append(f)
    return out


def worker_pid(master):
    with open(f"/proc/{master}/task/{master}/children") as f:
        return int(f.read().split()[0])


def build_openloop():
    os.makedirs(os.path.dirname(OPENLOOP), exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    OPENLOOP, os.path.join(HERE, "openloop.c")], check=True)


def schedstat(pid):
    """ns on CPU, ns waiting runnable on a run queue (all threads)"""
    on = wait = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                words = f.read().split()
        except OSError:
            continue
        on += int(words[0])
        wait += int(words[1])
    return on, wait


def openloop(port, rate, path, body, headers, req_file, wpid):
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + \
        f"Content-Length: {len(body)}\r\n\r\n"
    with open(req_file, "wb") as f:
        f.write(head.encode() + body)
    secs = DURATION.rstrip("s")
    on, wait = schedstat(wpid)
    out = subprocess.run([OPENLOOP, "127.0.0.1", str(port), str(rate), secs,
                          OPENLOOP_CONNS, req_file], capture_output=True,
                         text=True)
    on2, wait2 = schedstat(wpid)
    if out.returncode != 0:
        return None, out.stderr.strip()
    words = out.stdout.split()
    res = dict(zip(words[0::2], words[1::2]))
    # the nginx worker's own share: CPU per request, and how long it sat
    # runnable while something else held the CPU (per second of the run)
    res["worker_us_req"] = (on2 - on) / 1e3 / max(int(res["done"]), 1)
    res["runq_ms_s"] = (wait2 - wait) / 1e6 / float(secs)
    return res, None


def flag_team(tmp, pg, redis, started, name, team_flags):
    """Postgres and Redis started (added to started), an ingest-worker
    publishing flags to that Redis (no Kafka or ClickHouse), and a team
    holding team_flags: (worker, team id, token, the flags file)"""
    for svc in (pg, redis):
        svc.start()
        started.append(svc)
    worker = ST.Worker(tmp, kafka="127.0.0.1:1", postgres=pg.dsn,
                       clickhouse="http://127.0.0.1:1",
                       redis=f"127.0.0.1:{redis.port}")
    worker.run_cmd("migrate", "postgres")
    tid, token = worker.team_create(name)
    path = os.path.join(tmp, "flags.json")
    with open(path, "w") as f:
        json.dump(team_flags, f)
    worker.run_cmd("flag", "put", "--team", token, "--file", path)
    return worker, tid, token, path


def group_types(pg, tid, names):
    """group types mapped as $groupidentify maps them, index by order"""
    for gti, name in enumerate(names):
        pg.psql("INSERT INTO posthog_grouptypemapping (team_id, project_id, "
                f"group_type, group_type_index) VALUES ({tid}, {tid}, "
                f"'{name}', {gti})", dbname=pg.dbname)


def main():
    tmp = tempfile.mkdtemp(prefix="edgehog-bench-decide-")
    pg = S.Postgres(tmp)
    redis = S.Redis(tmp)
    nginxes = []
    started = []
    build_openloop()
    try:
        worker, tid, token, path = flag_team(tmp, pg, redis, started,
                                             "bench", flags())
        lookup = flags()[:1]
        lookup[0]["key"] = "bench-lookup"
        lookup[0]["filters"]["groups"][0]["properties"] = [
            {"key": "stored_only", "type": "person", "operator": "exact",
             "value": "yes"}]
        tid2, token2 = worker.team_create("bench lookup")
        with open(path, "w") as f:
            json.dump(flags()[:19] + lookup, f)
        worker.run_cmd("flag", "put", "--team", token2, "--file", path)
        # (g): the same with a group flag whose filter needs the stored
        # group entry (a group type mapped in Postgres, as on
        # $groupidentify): one GET for the group beside the person's
        tid3, token3 = worker.team_create("bench group lookup")
        group_types(pg, tid3, ("company",))
        group = flags()[:1]
        group[0]["key"] = "bench-group"
        group[0]["filters"]["aggregation_group_type_index"] = 0
        group[0]["filters"]["groups"][0]["properties"] = [
            {"key": "size", "type": "group", "group_type_index": 0,
             "operator": "gt", "value": 100}]
        with open(path, "w") as f:
            json.dump(flags()[:19] + group, f)
        worker.run_cmd("flag", "put", "--team", token3, "--file", path)
        worker.run_cmd("sync")
        S.subprocess.run(["redis-cli", "-p", str(redis.port), "SET",
                          f"edgehog:group:{tid3}:0:acme",
                          json.dumps({"version": 1,
                                      "properties": {"size": 500}})],
                         check=True, capture_output=True)
        S.subprocess.run(["redis-cli", "-p", str(redis.port), "SET",
                          f"edgehog:person:{tid2}:bench-user",
                          json.dumps({"id": 1, "uuid": "", "version": 1,
                                      "properties": {"stored_only": "yes"}})],
                         check=True, capture_output=True)
        builds = [("", None)] + ([("old", COMPARE)] if COMPARE else [])
        pin = ""
        if PIN:
            # CPU n as nginx's mask: a 1 followed by n zeros
            pin = "worker_cpu_affinity 1" + "0" * SERVER_CPU + ";"
            if os.geteuid() == 0:
                pin += "\nworker_priority -10;"
        for label, modules in builds:
            conf = CONF.replace("@MODULES@", modules) if modules else CONF
            conf = conf.replace("@PIN@", pin)
            nginx = ST.Nginx(os.path.join(tmp, label or "new"),
                             redis=f"127.0.0.1:{redis.port}", conf=conf)
            nginx.start()
            nginxes.append((label, nginx, worker_pid(nginx.pid)))
        js = {"Content-Type": "application/json"}
        person = {"plan": "pro", "email": "a@example.com",
                  "app_version": "1.4.0"}
        body = json.dumps({"token": token, "distinct_id": "bench-user",
                           "person_properties": person}).encode()
        body2 = json.dumps({"token": token2, "distinct_id": "bench-user",
                            "person_properties": person}).encode()
        body3 = json.dumps({"token": token3, "distinct_id": "bench-user",
                            "person_properties": person,
                            "groups": {"company": "acme"}}).encode()
        cases = [
            ("a", "nginx return 204", "/noop",
             lua(f"{tmp}/a.lua", b"", {})),
            ("b", "/flags?v=2, 20 flags, no lookup",
             "/flags?v=2", lua(f"{tmp}/b.lua", body, js)),
            ("c", "/flags?v=2, person lookup in Redis",
             "/flags?v=2", lua(f"{tmp}/c.lua", body2, js)),
            ("g", "/flags?v=2, group lookup in Redis",
             "/flags?v=2", lua(f"{tmp}/g.lua", body3, js)),
        ]
        print(f"wrk -t1 -c{CONNS} -d{DURATION}; 1 nginx worker; "
              f"Redis local; {len(body)} byte request; median of {ROUNDS}"
              + (f"; compared with [old]: {COMPARE}" if COMPARE else ""))
        if PIN:
            # wrk, openloop and perf inherit this; the servers started
            # above keep theirs, the nginx worker sets its own
            os.sched_setaffinity(0, {CLIENT_CPU})
            print(f"nginx worker on CPU {SERVER_CPU} ({pin.strip()}), "
                  f"wrk and openloop on CPU {CLIENT_CPU}, for every case "
                  f"(BENCH_PIN=1)".replace("\n", " "))
        # (s): the bytes of a (b) response as a static file, so the cost
        # of carrying a response this size shows apart from building it
        for label, nginx, _ in nginxes:
            req = urllib.request.Request(nginx.url + "/flags?v=2", data=body,
                                         headers=js)
            with urllib.request.urlopen(req) as r, \
                    open(os.path.join(nginx.workdir, "response.json"),
                         "wb") as f:
                f.write(r.read())
        # (c) and (g) measure lookups only if their stored data matches
        for label, nginx, _ in nginxes:
            for key, b, flag in (("c", body2, "bench-lookup"),
                                 ("g", body3, "bench-group")):
                req = urllib.request.Request(nginx.url + "/flags?v=2",
                                             data=b, headers=js)
                with urllib.request.urlopen(req) as r:
                    doc = json.load(r)
                code = doc["flags"][flag]["reason"]["code"]
                if doc["errorsWhileComputingFlags"] or code not in (
                        "condition_match", "out_of_rollout_bound"):
                    print(f"({key}{'/' + label if label else ''}) the "
                          f"lookup did not match: {doc['flags'][flag]}")
        cases.insert(1, ("s", "static file, (b)'s response bytes",
                         "/static", None))
        runs = {}
        for _ in range(ROUNDS):
            for key, title, path, script in cases:
                if CASES and key not in CASES.split(","):
                    continue
                for label, nginx, wpid in nginxes:
                    perf = (wpid, os.path.join(PERF,
                                               f"perf-{key}{label}.data")) \
                        if PERF else None
                    # wrk() divides the worker's CPU by the requests it
                    # counted
                    runs.setdefault((key, label), []).append(
                        wrk(nginx.url + path, script, perf=perf,
                            pids=(wpid,)))
        res = {}
        for key, title, path, script in cases:
            for label, _, _ in nginxes:
                if (key, label) not in runs:
                    continue
                got = sorted(runs[(key, label)])
                rps, p50, p99, bad, _ = got[len(got) // 2]
                cpu = sorted(r[4][0] for r in got)[len(got) // 2]
                res[key + label] = (rps, cpu)
                name = f"{key}{'/' + label if label else ''}"
                every = " ".join(f"{r[0]:.0f}/{r[4][0]:.1f}"
                                 for r in runs[(key, label)])
                print(f"({name:5s}) {title:36s} {rps:10.0f} req/s  "
                      f"p50 {p50:>8s}  p99 {p99:>8s}  non-2xx {bad}  "
                      f"worker CPU {cpu:6.1f} us/req"
                      + (f"  (rounds req/s/us: {every})"
                         if ROUNDS > 1 else ""))
        for label, _, _ in nginxes:
            tag = f" [{label}]" if label else ""
            for x in ("s", "b", "c", "g"):
                if "a" + label in res and x + label in res:
                    a, b = res["a" + label], res[x + label]
                    print(f"ratio ({x})/(a) = {b[0] / a[0]:.2f}  "
                          f"CPU ratio {a[1] / b[1]:.2f}"
                          + ("  (target >= 0.6)" if x == "b" else "")
                          + tag)
        for label, nginx, wpid in nginxes:
            if "b" + label not in res:
                continue
            # the same rate for the module and for `return 204`,
            # interleaved round by round so both see the same load
            rate = int(res["b" + label][0] / 2)
            ol = {}
            for _ in range(OPENLOOP_ROUNDS):
                for key, path, b, hs in (("b", "/flags?v=2", body, js),
                                         ("a", "/noop", b"", {})):
                    out, err = openloop(nginx.port, rate, path, b, hs,
                                        f"{tmp}/{key}{label}.http", wpid)
                    if out is None:
                        print(f"({key}{label}) open loop at {rate} req/s "
                              f"failed: {err}")
                        continue
                    ol.setdefault(key, []).append(out)
            for key in ("b", "a"):
                if key not in ol:
                    continue
                outs = ol[key]

                def med(k):
                    v = sorted(float(o[k]) for o in outs)
                    return v[len(v) // 2]

                name = f"{key}{'/' + label if label else ''}"
                every = " ".join(o["p99_us"] for o in outs)
                print(f"({name:5s}) open loop at {rate} req/s (half of "
                      f"(b)'s), {OPENLOOP_CONNS} connections, median of "
                      f"{len(outs)}: p50 {med('p50_us'):.0f}us  p99 "
                      f"{med('p99_us'):.0f}us  p99.9 {med('p999_us'):.0f}us"
                      f"  max {med('max_us'):.0f}us"
                      + ("  (target p99 < 1000us)" if key == "b" else "")
                      + f"\n        p99 of each round: {every}us;  done "
                      f"{sum(int(o['done']) for o in outs)}/"
                      f"{sum(int(o['sent']) for o in outs)}  non-2xx "
                      f"{sum(int(o['non2xx']) for o in outs)}  errors "
                      f"{sum(int(o['errors']) for o in outs)}"
                      f"\n        worker {med('worker_us_req'):.1f} us "
                      f"CPU/req, waited runnable {med('runq_ms_s'):.0f} "
                      f"ms/s;  generator late p99 {med('late_p99_us'):.0f}"
                      f"us, CPU {med('cpu_pct'):.0f}%")
        for label, nginx, _ in nginxes:
            bad = nginx.bad_log_lines()
            if bad:
                print(f"nginx {label} error log:\n" + "\n".join(bad))
    finally:
        for _, nginx, _ in nginxes:
            nginx.stop()
        for svc in reversed(started):
            svc.stop()


if __name__ == "__main__":
    main()
