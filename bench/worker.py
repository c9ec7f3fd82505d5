#!/usr/bin/python3
"""make bench-worker: events/s of ONE ingest-worker process against real
Kafka, Postgres, ClickHouse and Redis (issue 5).  For each case N capture
messages are produced to an input topic of their own before the worker
starts; the time runs from the worker's first committed batch (its
metrics endpoint: edgehog_ingest_events_in_total counts committed
batches) until the group's committed offsets cover all N messages.
Numbers are printed, never asserted.  The worker processes up to 32
batches before their acks (consumer.c), so work done before the first
commit is outside the window: on a fresh broker the producer waits
seconds for its idempotence PID ("Coordinator load in progress") and a
first run (the (a) warm-up) is mostly processed before its window opens
(its rate and per-event CPU come out far too good: 141k events/s, 0.7
us/event of Postgres in session 8, while perf over its whole run had the
worker's CPU per event the same as the timed (a)'s, 11.7 against 11.85
us).  "whole run" is the worker's CPU per event from the moment it
logs "consuming" to the end, window or not.

  (a) personless events ($process_person_profile: false)
  (b) events of 10k known persons, $set without a change
  (c) events of the same persons with a changing $set
  (d) $identify merging two existing anonymous persons

BENCH_EVENTS scales the message counts (default 200000 for (a)).
Before the timed cases (and after each (d) run's own untimed pairs in
BENCH_COMPARE mode) Postgres gets `VACUUM ANALYZE`, so the first timed
(d) meets edgehog_person_deletion empty and analyzed, as a fresh
install does: the worker plans its statements without
sequential scans (pg.c), so (d) needs no untimed merges first
(before, their generic plans seq-scanned the table as the run filled it).
BENCH_CASES picks cases (default "abcd").  Untimed warm-ups go first:
the persons of b-d, and for (a) BENCH_WARM personless events of a team
of their own (default BENCH_EVENTS / 4; 0: none), so (a) meets a broker
whose JIT has compiled and caches that are filled, as in steady state.
(The broker with the JVM's full JIT instead of the harness's C1 only was
tried: its C2 compiler threads alone then took 7.4 us/event of a warmed
(a), 0.7 with C1.)
BENCH_THREADS=1 prints the services' CPU per event per thread name.
BENCH_PERF=<dir> records `perf record` of the worker per case there
(BENCH_PERF_OPTS, default "-g", e.g. "--call-graph dwarf -F 999").
Each case also prints the worker's own stage log line (where its time
went, consumer.c) for the whole run.

BENCH_CONF="key = value; key = value" appends lines to the workers'
config (e.g. kafka_producer_option settings to compare).
Each case also prints the CPU of Kafka, Postgres and ClickHouse (their
process trees) per event over the same interval: all share the cores.

BENCH_BATCH overrides the workers' batch_size (the header line says
it; 2000 is the worker.conf.in default).
BENCH_COMPARE=<other ingest-worker binary>: A/B in one run for every
case, BENCH_ROUNDS times (default 2) alternating this build (A) and the
other (B); every (a) run gets a team of its own, so no run finds the
personless ids of another already written; every (c) run sets values
of its own and every (d) run merges pairs of its own."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "t", "lib"))

import services as S  # noqa: E402
import stack as ST  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

N = int(os.environ.get("BENCH_EVENTS", "200000"))
CASES = os.environ.get("BENCH_CASES", "abcd")
PERF = os.environ.get("BENCH_PERF")
PERF_OPTS = os.environ.get("BENCH_PERF_OPTS", "-g").split()
COMPARE = os.environ.get("BENCH_COMPARE")
BATCH = os.environ.get("BENCH_BATCH")
CONF = [x.strip() for x in os.environ.get("BENCH_CONF", "").split(";")
        if x.strip()]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
THREADS = os.environ.get("BENCH_THREADS")
WARM = int(os.environ.get("BENCH_WARM", str(N // 4)))
PERSONS = int(os.environ.get("BENCH_PERSONS", "10000"))
MERGES = int(os.environ.get("BENCH_MERGES", str(max(N // 20, 1000))))
PARTITIONS = 4
NOW = "2025-07-01T11:00:00.000Z"
PROPS = {"$current_url": "https://example.com/some/page?q=" + "x" * 200,
         "$browser": "Firefox", "$os": "Linux", "$screen_height": 1080,
         "$screen_width": 1920, "$lib": "web", "$lib_version": "1.200.0"}


def message(token, distinct_id, event="$pageview", props=None, **extra):
    """one message as capture writes it to events_plugin_ingestion"""
    ev_uuid = str(uuid.uuid4())
    p = dict(PROPS)
    p.update(props or {})
    data = {"event": event, "distinct_id": distinct_id, "uuid": ev_uuid,
            "timestamp": "2025-07-01T10:59:58.000Z", "properties": p}
    data.update(extra)
    outer = {"uuid": ev_uuid, "distinct_id": distinct_id, "ip": "127.0.0.1",
             "data": json.dumps(data), "now": NOW, "token": token,
             "timestamp": "2025-07-01T10:59:58.000Z"}
    return json.dumps(outer).encode(), f"{token}:{distinct_id}".encode()


class Bench:
    def __init__(self, tmp, kafka, pg, ch, redis):
        self.tmp, self.kafka = tmp, kafka
        self.common = dict(kafka=kafka.bootstrap, postgres=pg.dsn,
                           clickhouse=f"http://127.0.0.1:{ch.http_port}",
                           redis=f"127.0.0.1:{redis.port}")
        self.producer = Producer({"bootstrap.servers": kafka.bootstrap,
                                  "linger.ms": 20,
                                  "queue.buffering.max.messages": 1000000,
                                  "compression.type": "lz4"})
        self.token = None
        self.services = dict(kafka=kafka, pg=pg, ch=ch)
        self.pg = pg

    def settle(self):
        """steady state after bulk inserts: visibility map and planner
        statistics as autovacuum would leave them, instead of autovacuum
        (or seq-scanning plans) during the next timed run"""
        self.pg.psql("VACUUM ANALYZE", dbname="edgehog")

    def worker(self, name, binary=None, **values):
        if BATCH and name != "admin":
            values["batch_size"] = BATCH
        w = ST.Worker(self.tmp, name=name, group=f"bench-{name}",
                      **self.common, **values)
        if CONF and name != "admin":
            write = w.write_config

            def write_config():
                write()
                with open(w.conf_path, "a") as f:
                    f.write("".join(line + "\n" for line in CONF))
            w.write_config = write_config
            write_config()
        if binary:
            w.argv = lambda: [binary, "-c", w.conf_path, "run"]
        return w

    def produce(self, topic, msgs):
        self.kafka.create_topics([topic], partitions=PARTITIONS)
        for value, key in msgs:
            while True:
                try:
                    self.producer.produce(topic, value=value, key=key)
                    break
                except BufferError:
                    self.producer.poll(0.1)
        self.producer.flush(120)

    def run(self, name, msgs, binary=None, topic=None):
        """produce, then time one worker consuming and committing them"""
        if topic is None:
            topic = f"bench_{name}"
            self.produce(topic, list(msgs))
        port = S.free_port()
        w = self.worker(name, binary, input_topic=topic, metrics_port=port)
        offsets = Consumer({"bootstrap.servers": self.kafka.bootstrap,
                            "group.id": f"bench-{name}"})
        ends = {p: offsets.get_watermark_offsets(
            TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)}
        total = sum(ends.values())
        w.start()
        whole0 = cpu(w.pid)
        perf = None
        if PERF:
            os.makedirs(PERF, exist_ok=True)
            perf = subprocess.Popen(
                ["perf", "record", *PERF_OPTS, "-q", "-p", str(w.pid),
                 "-o", os.path.join(PERF, f"{name}.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            t0 = in0 = None
            while True:
                m = metrics(port)
                if m.get("edgehog_ingest_events_in_total", 0) > 0:
                    t0 = time.monotonic()
                    cpu0 = cpu(w.pid)
                    svc0 = {k: tree_cpu(v.pid)
                            for k, v in self.services.items()}
                    thr0 = {k: tree_threads(v.pid)
                            for k, v in self.services.items()} \
                        if THREADS else None
                    in0 = m["edgehog_ingest_events_in_total"]
                    break
                time.sleep(0.005)
            while True:
                done = sum(max(tp.offset, 0) for tp in offsets.committed(
                    [TopicPartition(topic, p) for p in range(PARTITIONS)],
                    timeout=10))
                if done >= total:
                    break
                time.sleep(0.02)
            secs = time.monotonic() - t0
            cpu1 = cpu(w.pid)
            svc1 = {k: tree_cpu(v.pid) for k, v in self.services.items()}
            if THREADS:
                for k, v in self.services.items():
                    print_threads(k, thr0[k], tree_threads(v.pid),
                                  max(total - in0, 1))
            m = metrics(port)
            # a small untimed run may be read whole before the first
            # metrics poll: per event of nothing is not asked for
            m["cpu"] = [(b - a) / max(total - in0, 1) * 1e6
                        for a, b in zip(cpu0, cpu1)]
            m["svc"] = {k: (svc1[k] - svc0[k]) / max(total - in0, 1) * 1e6
                        for k in svc0}
            m["whole"] = (cpu1[0] - whole0[0]) / max(total, 1) * 1e6
        finally:
            if perf:
                perf.send_signal(2)
                perf.wait()
            w.stop()
            offsets.close()
        return (total - in0) / secs, secs, total, m, stages(w)


def metrics(port):
    try:
        text = urllib.request.urlopen(
            f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return {}
    out = {}
    for name, labels, value in re.findall(
            r"^(\w+)(\{[^}]*\})?\s+([-\d.e+]+)$", text, re.M):
        out[name + labels] = out.get(name + labels, 0) + float(value)
    return out


def compare(b, admin, token, cases):
    """the cases with this build (A) and BENCH_COMPARE (B), alternated;
    (c) and (d) get work of their own per run: new $set values, new
    pairs to merge (created first, untimed)"""
    rates, cpus = {}, {}
    n_persons = min(PERSONS, N)
    for rnd in range(ROUNDS):
        for variant, binary in (("A", None), ("B", COMPARE)):
            for key, title, msgs in cases:
                if key not in CASES:
                    continue
                name = f"{key}{variant}{rnd}"
                run = (rnd * 2 + (variant == "B") + 1) * N
                topic = None
                if key == "c":
                    msgs = (message(token, f"user-{i % n_persons}",
                                    props={"$set": {"counter": run + i}})
                            for i in range(N // 4))
                elif key == "d":
                    b.run(f"warm{name}", [
                        message(token, f"{side}-{name}-{i}")
                        for i in range(MERGES) for side in ("anon", "ident")])
                    msgs = (message(token, f"ident-{name}-{i}",
                                    event="$identify",
                                    props={"$anon_distinct_id":
                                           f"anon-{name}-{i}"})
                            for i in range(MERGES))
                    b.settle()
                elif key == "a":
                    _, tok = admin.team_create(f"bench {name}")
                    msgs = (message(tok, f"anon-pl-{i % 100000}",
                                    props={"$process_person_profile":
                                           False})
                            for i in range(N))
                elif key == "b":
                    topic = f"bench_{key}"
                    if rnd == 0 and variant == "A":
                        b.produce(topic, list(msgs))
                rate, secs, total, m, st = b.run(name, None, binary, topic) \
                    if topic else b.run(name, msgs, binary)
                rates.setdefault((key, variant), []).append(rate)
                cpus.setdefault((key, variant), []).append(m["cpu"][1])
                print(f"({key}) {variant} round {rnd}: {rate:10.0f} events/s"
                      f"  ({secs:.1f}s; {summary(m)})\n    worker: {st}",
                      flush=True)
    for (key, variant), r in sorted(rates.items()):
        print(f"({key}) {variant}: " + " ".join(f"{x:.0f}" for x in r)
              + f"  best {max(r):.0f}; main thread CPU us/event "
              + " ".join(f"{x:.1f}" for x in cpus[key, variant]))


def stages(w):
    """the worker's last stage log line: the whole run's shares"""
    lines = [line for line in w.log_tail(50).splitlines()
             if "events/s, time:" in line]
    return lines[-1].split("] ", 1)[-1].split(": ", 1)[-1] if lines else ""


def cpu(pid):
    """CPU seconds of the process and of its main thread, and the
    process's minor page faults / 1e6 (run() scales all by 1e6/events)"""
    tick = os.sysconf("SC_CLK_TCK")
    out, faults = [], 0
    for path in (f"/proc/{pid}/stat", f"/proc/{pid}/task/{pid}/stat"):
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / tick)
        faults = faults or int(fields[7])
    out.append(faults / 1e6)
    # time the main thread was runnable but waiting for a core
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        out.append(int(f.read().split()[1]) / 1e9)
    return out


def tree_cpu(root):
    """CPU seconds of a process and its descendants (live ones)"""
    tick = os.sysconf("SC_CLK_TCK")
    kids, times = {}, {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(fields[1]), []).append(int(pid))
        times[int(pid)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(kids.get(pid, []))
    return total


def tree_threads(root):
    """CPU seconds per thread of a process tree, keyed by the process's
    title and the thread's name (BENCH_THREADS: where a service's CPU
    per event goes)"""
    tick = os.sysconf("SC_CLK_TCK")
    kids, out = {}, {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(pid))
    todo = [root]
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, []))
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read().split(b"\0")[0].decode(errors="replace")
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    s = f.read()
            except OSError:
                continue
            name = s[s.index("(") + 1:s.rindex(")")]
            name = re.sub(r"\d+", "N", name)
            fields = s.rsplit(")", 1)[1].split()
            key = (title[:40], name)
            out[key] = out.get(key, 0) + \
                (int(fields[11]) + int(fields[12])) / tick
    return out


def print_threads(svc, before, after, events):
    rows = sorted(((after[k] - before.get(k, 0)) / events * 1e6, k)
                  for k in after)
    for us, (title, name) in reversed(rows):
        if us >= 0.05:
            print(f"    {svc:6s} {us:5.2f} us/event  {title} [{name}]")


def summary(m):
    def get(label):
        return int(m.get("edgehog_ingest_" + label, 0))
    ev = 'events_total{outcome="%s"}'
    ps = 'persons_total{op="%s"}'
    return (f"ingested {get(ev % 'ingested')} overflow {get(ev % 'overflow')}"
            f" persons +{get(ps % 'created')} ~{get(ps % 'updated')}"
            f" merged {get(ps % 'merged')}; worker CPU"
            f" {m['cpu'][0]:.1f} us/event, main thread {m['cpu'][1]:.1f},"
            f" {m['cpu'][2]:.2f} page faults/event, main thread"
            f" waiting for a core {m['cpu'][3]:.1f}; whole run"
            f" {m['whole']:.1f}; us/event kafka"
            f" {m['svc']['kafka']:.1f} postgres {m['svc']['pg']:.1f}"
            f" clickhouse {m['svc']['ch']:.1f}")


def main():
    tmp = tempfile.mkdtemp(prefix="edgehog-bench-worker-")
    pg, redis = S.Postgres(tmp), S.Redis(tmp)
    kafka, ch = S.Kafka(tmp), S.ClickHouse(tmp)
    started, b = [], None
    try:
        for svc in (pg, redis, kafka, ch):
            svc.start()
            started.append(svc)
        kafka.create_topics(ST.INPUT_TOPICS + ST.OUTPUT_TOPICS)
        b = Bench(tmp, kafka, pg, ch, redis)
        admin = b.worker("admin")
        admin.migrate()
        _, token = admin.team_create("bench")
        print(f"one ingest-worker process (batch_size {BATCH or 2000},"
              f" batch_wait_ms 50);"
              f" Kafka 3.9, Postgres, ClickHouse, Redis local; "
              f"{PARTITIONS} partitions per input topic")
        n_persons = min(PERSONS, N)

        # warm-up: the known persons of (b)/(c), the pairs merged in (d)
        warm = [message(token, f"user-{i}", props={"$set": {"plan": "free"}})
                for i in range(n_persons)]
        warm += [message(token, f"{side}-{i}") for i in range(MERGES)
                 for side in ("anon", "ident")]
        if set(CASES) & set("bcd"):
            rate, secs, total, m, _ = b.run("warmup", warm)
            print(f"(-) warm-up: create {total} persons  {rate:10.0f}"
                  f" events/s  ({secs:.1f}s; {summary(m)})")

        cases = [
            ("a", f"personless events, {N} msgs",
             (message(token, f"anon-pl-{i % 100000}",
                      props={"$process_person_profile": False})
              for i in range(N))),
            ("b", f"{n_persons} known persons, no change, {N // 2} msgs",
             (message(token, f"user-{i % n_persons}",
                      props={"$set": {"plan": "free"}})
              for i in range(N // 2))),
            ("c", f"$set changes, {N // 4} msgs",
             (message(token, f"user-{i % n_persons}",
                      props={"$set": {"counter": i}})
              for i in range(N // 4))),
            ("d", f"$identify merges, {MERGES} msgs",
             (message(token, f"ident-{i}", event="$identify",
                      props={"$anon_distinct_id": f"anon-{i}"})
              for i in range(MERGES))),
        ]
        # a freshly started broker, Postgres and ClickHouse spend the
        # first seconds compiling and filling caches (the broker's JIT
        # threads alone were 1.7 us/event of a cold (a)): personless
        # events of a team of their own go through first, untimed
        if "a" in CASES and WARM:
            _, tok = admin.team_create("bench warm-up")
            rate, secs, total, m, _ = b.run("warma", [
                message(tok, f"warm-pl-{i}",
                        props={"$process_person_profile": False})
                for i in range(WARM)])
            print(f"(-) warm-up: {total} personless events  {rate:10.0f}"
                  f" events/s  ({secs:.1f}s; {summary(m)})")
        # steady state: planner statistics as autovacuum would have them
        # (right after the bulk insert the person statements seq-scan),
        # and no autovacuum of the warm-ups' rows during a timed case
        b.settle()
        if COMPARE:
            compare(b, admin, token, cases)
            cases = []
        for key, title, msgs in cases:
            if key not in CASES:
                continue
            rate, secs, total, m, st = b.run(key, msgs)
            print(f"({key}) {title:42s} {rate:10.0f} events/s  "
                  f"({secs:.1f}s; {summary(m)})\n    worker: {st}",
                  flush=True)
        print("targets: (a) >= 100000 events/s, (b) >= 20000 events/s")
        # the rows reached ClickHouse (its Kafka engine flushes every 7.5 s)
        rows, last, t = -1, None, time.monotonic()
        while rows != last and time.monotonic() - t < 60:
            last = rows
            time.sleep(8)
            rows = int(ch.query("SELECT count() FROM events").strip())
        print(f"clickhouse: {rows} rows in events")
    finally:
        if b:
            b.producer.flush(10)
            b.producer = None  # closed before Kafka stops
        for svc in reversed(started):
            svc.stop()


if __name__ == "__main__":
    main()
