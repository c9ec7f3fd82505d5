#!/usr/bin/python3
"""make bench-capture: req/s and p50/p99 of the capture module against a
real Kafka, one nginx worker, measured in one run with wrk, and the ratios
of issue 3.  Numbers are printed, never asserted."""

import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "t", "lib"))

import services as S  # noqa: E402
import stack as ST  # noqa: E402

DURATION = os.environ.get("BENCH_DURATION", "10s")
CONNS = os.environ.get("BENCH_CONNECTIONS", "32")
# (b), (d) and (e) wait for a broker round trip (linger.ms included) per
# request: their throughput is bound by concurrency, so they run with more
# connections, and (b) is compared with a 204 baseline measured with the
# same count ((a2)); the bigger (d) and (e) need fewer to fill the cores
ACK_CONNS = os.environ.get("BENCH_ACK_CONNECTIONS", "1024")
BATCH_CONNS = os.environ.get("BENCH_BATCH_CONNECTIONS", "128")


def conns_of(key):
    return ACK_CONNS if key in ("a2", "b") \
        else BATCH_CONNS if key in ("d", "e") else CONNS
# BENCH_CASES=b,c runs a subset; BENCH_PERF=dir records perf profiles of
# the nginx worker for each case into dir
CASES = os.environ.get("BENCH_CASES", "")
PERF = os.environ.get("BENCH_PERF", "")
# ... with this perf command instead, e.g. BENCH_PERF_CMD="stat -e
# probe_libc:malloc" counts the worker's mallocs (perf probe -x libc malloc)
PERF_CMD = os.environ.get("BENCH_PERF_CMD", "record -q -g").split()
# BENCH_COMPARE=dir runs every case also against the capture module built
# in dir (e.g. an older commit), interleaved, so both see the same load
COMPARE = os.environ.get("BENCH_COMPARE", "")
# ... under this label, with these extra producer options (A/B of options)
COMPARE_LABEL = os.environ.get("BENCH_COMPARE_LABEL", "old")
COMPARE_KAFKA = "".join(
    f"    capture_kafka_option {kv.split('=', 1)[0]} {kv.split('=', 1)[1]};\n"
    for kv in os.environ.get("BENCH_COMPARE_KAFKA", "").split())
# ... and these server-level directives (';'-separated), e.g.
# BENCH_COMPARE_SERVER="client_header_buffer_size 1k" for the old default
COMPARE_SERVER = "".join(
    f"        {d.strip()};\n"
    for d in os.environ.get("BENCH_COMPARE_SERVER", "").split(";")
    if d.strip())
# rounds of every case, interleaved; the median is reported
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
# BENCH_KAFKA="linger.ms=5 compression.codec=none" tries producer options
KAFKA_OPTIONS = "".join(
    f"    capture_kafka_option {kv.split('=', 1)[0]} {kv.split('=', 1)[1]};\n"
    for kv in os.environ.get("BENCH_KAFKA", "").split())
TOKEN = "phc_bench_token"

CONF = """
load_module @MODULES@/ngx_http_capture_module.so;
@USER@
worker_processes  1;
# capture locations are regexes, JIT-compiled as in conf/nginx.conf.in;
# perf's share of pcre2 in (c) fell from 1.9% to 0.8% of the worker
pcre_jit          on;
daemon            off;
pid               @PREFIX@/nginx.pid;
error_log         @PREFIX@/error.log warn;
events { worker_connections 4096; }
http {
    access_log            off;
    client_body_temp_path @PREFIX@/client_body;
    capture_kafka_brokers @KAFKA@;
@KAFKA_OPTIONS@
    client_max_body_size     20m;
    client_body_buffer_size  1m;
    # a ~1 KB event with its headers is larger than the 1k default: the
    # request would then take a second recv() and an ioctl(FIONREAD)
    client_header_buffer_size  4k;
    server {
        listen 127.0.0.1:@PORT@ backlog=4096;
@SERVER@
        location = / { return 204; }
        location = /noop { return 204; }
        location ~ ^/(e|batch|i/v0/e)/?$ { capture on; }
        location ~ ^/q/(i/v0/e)/?$ { capture on; capture_ack enqueue; }
    }
}
"""


def event(i):
    return {"event": "$pageview", "distinct_id": f"user-{i % 1000}",
            "uuid": str(uuid.uuid4()),
            "timestamp": "2025-07-01T10:59:58Z",
            "properties": {"token": TOKEN, "$current_url":
                           "https://example.com/some/page?q=" + "x" * 600,
                           "$browser": "Firefox", "$os": "Linux",
                           "$screen_height": 1080, "$screen_width": 1920,
                           "$lib": "web", "$lib_version": "1.200.0"}}


def lua(path, body, headers):
    hs = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    with open(path, "wb") as f:
        f.write(b'wrk.method = "POST"\n' + hs.encode()
                + b"wrk.body = " + lua_string(body) + b"\n")
    return path


def lua_string(b):
    return b'"' + b"".join(
        bytes([c]) if 32 <= c < 127 and c not in (34, 92)
        else b"\\" + str(c).encode().rjust(3, b"0") for c in b) + b'"'


def cpu_ticks(pid):
    """utime + stime of a process and all its threads, in clock ticks."""
    return stat_ticks(f"/proc/{pid}/stat")


def stat_ticks(path):
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except OSError:
        return 0


def loop_stats(pid):
    """the event loop thread alone (the worker's main thread, not
    librdkafka's): CPU ticks and involuntary context switches, i.e. how
    often another runnable thread preempted it; and the worker's minor
    page faults (all threads).

    Session 10: (c) showed 0.3-0.8 preemptions per request against 0.02
    in (a), and perf put 20-26% of the loop's samples in
    finish_task_switch() on the way out of the answer's writev(): the
    write wakes wrk, which the scheduler runs on nginx's core (in (a) wrk
    never sleeps, so nothing is woken).  Part of (c)'s req/s gap to (a)
    is this co-location of client and server on two cores, not work."""
    try:
        with open(f"/proc/{pid}/task/{pid}/status") as f:
            invol = int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)",
                                  f.read()).group(1))
        with open(f"/proc/{pid}/stat") as f:
            faults = int(f.read().rsplit(")", 1)[1].split()[7])
    except (OSError, AttributeError):
        invol = faults = 0
    return stat_ticks(f"/proc/{pid}/task/{pid}/stat"), invol, faults


def wrk(url, script=None, conns=CONNS, perf=None, pids=()):
    """req/s, p50, p99, non-2xx, and the CPU time per request of each of
    pids in microseconds: unlike req/s on a shared machine, CPU per
    request hardly depends on what else runs."""
    cmd = ["wrk", "-t1", "-c" + conns, "-d" + DURATION, "--latency"]
    if script:
        cmd += ["-s", script]
    rec = None
    if perf:
        rec = subprocess.Popen(["perf"] + PERF_CMD + ["-o", perf[1],
                                "-p", str(perf[0])],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    before = [cpu_ticks(pid) for pid in pids]
    loop0 = loop_stats(pids[0])
    out = subprocess.run(cmd + [url], capture_output=True, text=True).stdout
    used = [cpu_ticks(pid) - t for pid, t in zip(pids, before)]
    loop = [b - a for a, b in zip(loop0, loop_stats(pids[0]))]
    if rec:
        rec.send_signal(2)
        rec.wait()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    total = int(re.search(r"(\d+) requests in", out).group(1))
    tick = 1e6 / os.sysconf("SC_CLK_TCK")
    # per request: nginx (all threads), Kafka, the event loop thread,
    # the loop's involuntary context switches, the worker's page faults
    return (rps, lat.get("50"), lat.get("99"),
            int(non2xx.group(1)) if non2xx else 0,
            [u * tick / max(total, 1) for u in used + loop[:1]]
            + [x / max(total, 1) for x in loop[1:]])


def main():
    tmp = tempfile.mkdtemp(prefix="edgehog-bench-")
    kafka = S.Kafka(tmp)
    builds = [("", None, "", "")] \
        + ([(COMPARE_LABEL, COMPARE, COMPARE_KAFKA, COMPARE_SERVER)]
           if COMPARE else [])
    nginxes = []
    try:
        kafka.start()
        kafka.create_topics(["events_plugin_ingestion"], partitions=4)
        for label, modules, extra, server in builds:
            conf = CONF.replace("@KAFKA_OPTIONS@\n", KAFKA_OPTIONS + extra) \
                .replace("@SERVER@\n", server)
            nginx = ST.Nginx(os.path.join(tmp, label or "new"),
                             kafka=kafka.bootstrap,
                             conf=conf.replace("@MODULES@", modules)
                             if modules else conf)
            nginx.start()
            worker = subprocess.run(["pgrep", "-P", str(nginx.pid)],
                                    capture_output=True,
                                    text=True).stdout.split()
            nginxes.append((label, nginx, worker))
        single = json.dumps(dict(event(1), api_key=TOKEN)).encode()
        batch = json.dumps({"api_key": TOKEN, "batch":
                            [event(i) for i in range(50)]}).encode()
        arr = gzip.compress(json.dumps([event(i) for i in range(10)])
                            .encode())
        js = {"Content-Type": "application/json"}
        cases = [
            ("a", "nginx return 204", "/noop",
             lua(f"{tmp}/a.lua", b"", {}), 1),
            ("a2", "nginx return 204", "/noop",
             lua(f"{tmp}/a.lua", b"", {}), 1),
            ("b", "single event, ack delivery", "/i/v0/e/",
             lua(f"{tmp}/b.lua", single, js), 1),
            ("c", "single event, ack enqueue", "/q/i/v0/e/",
             lua(f"{tmp}/c.lua", single, js), 1),
            ("d", "/batch/ 50 events, delivery", "/batch/",
             lua(f"{tmp}/d.lua", batch, js), 50),
            ("e", "gzip-js array of 10, delivery",
             "/i/v0/e/?compression=gzip-js&ver=1.200.0",
             lua(f"{tmp}/e.lua", arr, {"Content-Type": "text/plain"}), 10),
        ]
        print(f"single event {len(single)} bytes; batch {len(batch)} bytes; "
              f"gzip array {len(arr)} bytes; wrk -t1 -d{DURATION}; "
              f"1 nginx worker; Kafka 3.9 local, acks=all "
              f"{os.environ.get('BENCH_KAFKA', '')}; median of {ROUNDS}"
              + (f"; compared with [{COMPARE_LABEL}]: {COMPARE} "
                 f"{os.environ.get('BENCH_COMPARE_KAFKA', '')} "
                 f"{os.environ.get('BENCH_COMPARE_SERVER', '')}"
                 if COMPARE else ""))
        runs = {}
        for rnd in range(ROUNDS):
            for key, title, path, script, per in cases:
                if CASES and key not in CASES.split(","):
                    continue
                conns = conns_of(key)
                # the builds take turns going first: whichever went first
                # in every round showed more page faults and CPU per request
                for label, nginx, worker in \
                        nginxes[::-1] if rnd % 2 else nginxes:
                    perf = (worker[0], os.path.join(
                        PERF, f"perf-{key}{label}.data")) \
                        if PERF and worker else None
                    runs.setdefault((key, label), []).append(
                        wrk(nginx.url + path, script, conns, perf,
                            (nginx.pid if not worker else worker[0],
                             kafka.pid)))
        res, cpus = {}, {}
        for key, title, path, script, per in cases:
            conns = conns_of(key)
            for label, _, _ in nginxes:
                if (key, label) not in runs:
                    continue
                got = sorted(runs[(key, label)])
                rps, p50, p99, bad, _ = got[len(got) // 2]
                # CPU per request: the median of each process's rounds
                cpu = [sorted(r[4][i] for r in got)[len(got) // 2]
                       for i in range(5)]
                res[key + label] = rps
                cpus[key + label] = cpu
                name = f"{key}{'/' + label if label else ''}"
                every = " ".join(f"{r[0]:.0f}" for r in runs[(key, label)])
                print(f"({name:5s}) {title:29s} -c{conns:>4s} {rps:9.0f} "
                      f"req/s {rps * per:9.0f} events/s  p50 {p50:>8s}  "
                      f"p99 {p99:>8s}  non-2xx {bad}  cpu/req nginx "
                      f"{cpu[0]:6.1f} us (loop {cpu[2]:6.1f} us, "
                      f"{cpu[3]:.2f} preemptions, {cpu[4]:.2f} faults) "
                      f"kafka {cpu[1]:6.1f} us"
                      + (f"  (rounds: {every})" if ROUNDS > 1 else ""))
        for label, _, _ in nginxes:
            tag = f" [{label}]" if label else ""
            if "a2" + label in res and "b" + label in res:
                print(f"ratio (b)/(a2) = "
                      f"{res['b' + label] / res['a2' + label]:.2f}  "
                      f"(target >= 0.5; both -c{ACK_CONNS}){tag}")
            if "a" + label in res and "c" + label in res:
                print(f"ratio (c)/(a)  = "
                      f"{res['c' + label] / res['a' + label]:.2f}  "
                      f"(target >= 0.7; both -c{CONNS}){tag}")
            if "d" + label in res:
                print(f"(d) events/s   = {res['d' + label] * 50:.0f}  "
                      f"(target >= 300000 per core){tag}")
            # what the ratios would be if nginx and Kafka had the cores to
            # themselves: from CPU per request, not from req/s
            for x, y in (("b", "a2"), ("c", "a")):
                if x + label in cpus and y + label in cpus:
                    cy, cx = sum(cpus[y + label][:2]), sum(cpus[x + label][:2])
                    print(f"cpu ratio ({x})/({y}) = {cy / cx:.2f}"
                          f"  (nginx+kafka CPU per request of ({y}) over "
                          f"({x})){tag}")
            if "d" + label in cpus:
                print(f"(d) events per core-second = "
                      f"{50e6 / sum(cpus['d' + label][:2]):.0f}  "
                      f"(nginx+kafka CPU){tag}")
            if "e" + label in res:
                print(f"(e) events/s   = {res['e' + label] * 10:.0f}{tag}")
        for label, nginx, _ in nginxes:
            bad = nginx.bad_log_lines()
            if bad:
                print(f"nginx {label} error log:\n" + "\n".join(bad))
    finally:
        for _, nginx, _ in nginxes:
            nginx.stop()
        kafka.stop()


if __name__ == "__main__":
    main()
