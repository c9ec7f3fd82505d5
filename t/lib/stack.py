"""The edgehog stack: backing services (services.py) plus our own nginx and
ingest-worker, wired together.

Used two ways:
  * by `make run` / `make stop`:  stack.py run --dir .run [--cluster]
  * by the pytest fixtures in t/integration/conftest.py (Stack, Nginx, Worker).

Python 3.11 standard library only; Debian's /usr/bin/python3.
"""

import argparse
import glob
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import services as S  # noqa: E402

REPO = S.REPO
BUILD = os.path.join(REPO, "build")
MODULES = os.path.join(BUILD, "nginx")
WORKER_BIN = os.path.join(BUILD, "ingest-worker")
NGINX_BIN = "/usr/sbin/nginx"

# Topics the pipeline uses; created up front so consumers and ClickHouse's
# Kafka engine see their partitions from the start.
INPUT_TOPICS = [
    "events_plugin_ingestion", "events_plugin_ingestion_overflow",
    "events_plugin_ingestion_historical", "events_plugin_ingestion_dlq",
    "error_tracking_events", "heatmaps_ingestion",
    "ingestion-clientwarnings-main-1",
]
OUTPUT_TOPICS = [
    "clickhouse_events_json", "clickhouse_person",
    "clickhouse_person_distinct_id", "clickhouse_ingestion_warnings",
    "clickhouse_groups",
]

# lines that fail a test when nginx logs them (nginx-tests' rule)
BAD_LOG = re.compile(r"\[(alert|crit|emerg)\]|Sanitizer|runtime error:")

# the master's line for a worker that died of a signal; any signal but
# SIGKILL (which only comes from outside: a test, the OOM killer) is a crash
CRASH_LOG = re.compile(r"exited on signal (\d+)")

# a worker's core file, if the kernel writes one, should hold the whole
# process; the cores are sparse on disk
CORE_LIMIT = 8 << 30


def _render(template, dest, **values):
    with open(os.path.join(REPO, "conf", template)) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k.upper()}@", str(v))
    with open(dest, "w") as f:
        f.write(text)


def core_directives(prefix):
    """Main-context directives that let a crashing worker leave a core file
    in `prefix`: nginx raises the workers' RLIMIT_CORE (soft and hard) to
    worker_rlimit_core, chdir()s them to working_directory and marks them
    dumpable again after setuid().  Only up to the hard limit we were given,
    which even root may lack the capability to raise: above it setrlimit()
    fails with an [alert].  The system's core_pattern is left alone; with
    a pipe (systemd-coredump) the core goes there instead."""
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    limit = CORE_LIMIT if hard == resource.RLIM_INFINITY \
        else min(CORE_LIMIT, hard)
    text = f"\n# set by t/lib/stack.py: cores of crashed workers land here\n" \
           f"working_directory  {prefix};\n"
    if limit > 0:
        text += f"worker_rlimit_core  {limit};\n"
    return text


def core_location(prefix):
    """Where the kernel put the core of a crashed worker, for the report."""
    cores = sorted(glob.glob(os.path.join(prefix, "core*")))
    if cores:
        return "core file(s): " + ", ".join(cores)
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError:
        pattern = "?"
    if pattern.startswith("|"):
        return (f"no core file in {prefix}: core_pattern pipes to "
                f"{pattern[1:].split()[0]} (try coredumpctl)")
    return (f"no core file in {prefix} (core_pattern {pattern!r}, hard "
            f"RLIMIT_CORE {resource.getrlimit(resource.RLIMIT_CORE)[1]})")


class Nginx(S.Service):
    """Debian's /usr/sbin/nginx with our modules, in its own prefix with its
    own error log.  `conf` replaces the whole nginx.conf when given; else
    conf/nginx.conf.in is rendered with `extra` inside the server block.
    Every instance is remembered in `instances` so the test fixtures can
    check each one's log for crashed workers."""

    start_timeout = 30.0
    instances = []
    # the test session lengthens decide's Redis deadline (conftest.py)
    redis_timeout = None

    def __init__(self, dir, kafka="127.0.0.1:9092", redis="127.0.0.1:6379",
                 port=None, workers=1, extra="", conf=None, name="nginx",
                 log_level="info"):
        super().__init__(dir, name)
        self.port = port or S.free_port()
        self.kafka, self.redis = kafka, redis
        self.workers, self.extra, self.conf = workers, extra, conf
        self.log_level = log_level
        self.conf_path = os.path.join(self.workdir, "nginx.conf")
        self.error_log = os.path.join(self.workdir, "error.log")
        self.url = f"http://127.0.0.1:{self.port}"
        # how far crash_report() has read the error log
        self.crash_checked = 0
        Nginx.instances.append(self)

    def values(self):
        return dict(modules=MODULES, prefix=self.workdir, port=self.port,
                    kafka=self.kafka, redis=self.redis, workers=self.workers,
                    extra=self.extra, log_level=self.log_level,
                    # as root, workers would drop to nobody and lose .run/
                    user="user root;" if os.geteuid() == 0 else "")

    def prepare(self):
        if self.conf is None:
            _render("nginx.conf.in", self.conf_path, **self.values())
        else:
            text = self.conf
            for k, v in self.values().items():
                text = text.replace(f"@{k.upper()}@", str(v))
            with open(self.conf_path, "w") as f:
                f.write(text)
        if self.redis_timeout:
            self.set_redis_timeout()
        # appended, so the line numbers of nginx -t messages stay those of
        # the config text; a config with its own working_directory keeps it
        with open(self.conf_path, "r+") as f:
            if not re.search(r"^\s*working_directory\b", f.read(), re.M):
                f.write(core_directives(self.workdir))

    def set_redis_timeout(self):
        """Adds decide_redis_timeout on the decide_redis_address line, so
        the line numbers of nginx -t messages do not move; a config that
        sets its own keeps it."""
        with open(self.conf_path) as f:
            text = f.read()
        if "decide_redis_timeout" in text:
            return
        text = re.sub(r"^(\s*decide_redis_address\s[^;]*;)",
                      rf"\1 decide_redis_timeout {self.redis_timeout};",
                      text, count=1, flags=re.M)
        with open(self.conf_path, "w") as f:
            f.write(text)

    def cmd(self, *extra):
        return [NGINX_BIN, "-p", self.workdir + "/", "-c", self.conf_path,
                "-e", self.error_log, *extra]

    def argv(self):
        return self.cmd()

    def test_config(self):
        """nginx -t; returns (returncode, output)."""
        self.prepare()
        out = subprocess.run(self.cmd("-t"), capture_output=True, text=True)
        return out.returncode, out.stdout + out.stderr

    def ready(self):
        try:
            urllib.request.urlopen(self.url + "/", timeout=1).read()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def signal(self, signo):
        os.kill(self.pid, signo)

    def log_text(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def bad_log_lines(self, since=0):
        return [l for l in self.log_text()[since:].splitlines()
                if BAD_LOG.search(l)]

    def crash_report(self, context=40):
        """None, or a report of the workers that crashed since the last call:
        each crash line with the log lines before it (a glibc or sanitizer
        abort message lands there too: nginx points stderr at the error
        log) and where the core went."""
        text = self.log_text()
        lines = text[self.crash_checked:].splitlines()
        self.crash_checked = len(text)
        report = []
        for i, line in enumerate(lines):
            m = CRASH_LOG.search(line)
            if m and int(m.group(1)) != signal.SIGKILL:
                report += ["...", *lines[max(0, i - context):i + 1]]
        if not report:
            return None
        return "\n".join([f"nginx worker crashed ({self.error_log}):",
                          *report, core_location(self.workdir)])


class Worker(S.Service):
    """The ingest-worker daemon with a config rendered from
    conf/worker.conf.in (`values` override single keys)."""

    start_timeout = 30.0

    def __init__(self, dir, kafka, postgres, clickhouse, redis, cluster="",
                 group="edgehog-ingestion", topic_prefix="", name="worker",
                 **values):
        super().__init__(dir, name)
        self.conf_path = os.path.join(self.workdir, "worker.conf")
        self.settings = dict(kafka=kafka, postgres=postgres,
                             clickhouse=clickhouse, redis=redis,
                             cluster=cluster, group=group,
                             prefix=topic_prefix)
        self.values = values
        self.topic_prefix = topic_prefix
        self.log_mark = 0
        self.write_config()

    def write_config(self):
        _render("worker.conf.in", self.conf_path, **self.settings)
        if self.values:
            with open(self.conf_path, "a") as f:
                for k, v in self.values.items():
                    # a list: the key repeated (kafka_*_option)
                    for x in v if isinstance(v, list) else [v]:
                        f.write(f"{k} = {x}\n")

    def prepare(self):
        self.write_config()
        # the log is appended to: a restarted worker is ready once *it*
        # logs "consuming", not because the previous run did
        try:
            self.log_mark = os.path.getsize(self.logfile)
        except OSError:
            self.log_mark = 0

    def run_cmd(self, *args, check=True):
        out = subprocess.run([WORKER_BIN, "-c", self.conf_path, *args],
                             capture_output=True, text=True)
        if check and out.returncode != 0:
            raise S.ServiceError(f"ingest-worker {' '.join(args)} failed:\n"
                                 f"{out.stdout}{out.stderr}")
        return out

    def migrate(self):
        return self.run_cmd("migrate")

    def team_create(self, name="Default project", token=None):
        args = ["team", "create", "--name", name]
        if token:
            args += ["--token", token]
        out = self.run_cmd(*args).stdout
        kv = dict(line.split("=", 1) for line in out.split())
        return int(kv["id"]), kv["token"]

    def argv(self):
        return [WORKER_BIN, "-c", self.conf_path, "run"]

    def ready(self):
        return "consuming" in self.log_since(self.log_mark)

    def log_since(self, offset):
        try:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class Stack:
    """Postgres, Redis, Kafka, ClickHouse (one node, or ZooKeeper and 2x2
    nodes), the ingest-worker and nginx, all under `dir`."""

    def __init__(self, dir, cluster=False, ports=None, nginx_workers=1):
        self.dir = os.path.abspath(dir)
        self.cluster = cluster
        p = ports or {}
        os.makedirs(self.dir, exist_ok=True)
        self.postgres = S.Postgres(self.dir, port=p.get("postgres"))
        self.redis = S.Redis(self.dir, port=p.get("redis"))
        self.kafka = S.Kafka(self.dir, port=p.get("kafka"),
                             controller_port=p.get("kafka_controller"))
        self.zookeeper = None
        if cluster:
            self.zookeeper = S.ZooKeeper(self.dir, port=p.get("zookeeper"))
            self.clickhouse = S.ClickHouseCluster(
                self.dir, self.zookeeper, base_http=p.get("clickhouse"),
                base_tcp=p.get("clickhouse_tcp"),
                base_interserver=p.get("clickhouse_interserver"))
            self.ch_nodes = self.clickhouse.nodes
        else:
            self.clickhouse = S.ClickHouse(
                self.dir, http_port=p.get("clickhouse"),
                tcp_port=p.get("clickhouse_tcp"),
                interserver_port=p.get("clickhouse_interserver"))
            self.ch_nodes = [self.clickhouse]
        self.worker = Worker(
            self.dir, kafka=self.kafka.bootstrap, postgres=self.postgres.dsn,
            clickhouse=",".join(f"http://127.0.0.1:{n.http_port}"
                                for n in self.ch_nodes),
            redis=f"127.0.0.1:{self.redis.port}",
            cluster="edgehog" if cluster else "")
        self.nginx = Nginx(self.dir, kafka=self.kafka.bootstrap,
                           redis=f"127.0.0.1:{self.redis.port}",
                           port=p.get("nginx"), workers=nginx_workers)
        self.team_id = self.token = None
        self.started = []

    def _start(self, svc):
        svc.start()
        self.started.append(svc)

    def start(self, log=lambda msg: None):
        try:
            log("starting postgres, redis, kafka")
            for svc in (self.postgres, self.redis, self.kafka):
                self._start(svc)
            self.kafka.create_topics(INPUT_TOPICS + OUTPUT_TOPICS)
            if self.zookeeper:
                log("starting zookeeper")
                self._start(self.zookeeper)
            log("starting clickhouse" + (" (2 shards x 2 replicas)"
                                         if self.cluster else ""))
            self._start(self.clickhouse)
            log("applying schemas (ingest-worker migrate)")
            self.worker.migrate()
            self.team_id, self.token = self.demo_team()
            log("starting ingest-worker and nginx")
            self._start(self.worker)
            self._start(self.nginx)
        except BaseException:
            self.stop()
            raise
        return self

    def demo_team(self):
        """The demo project, created once and reused by later runs."""
        path = os.path.join(self.dir, "demo.team")
        if os.path.exists(path):
            with open(path) as f:
                tid, token = f.read().split()
            if self.postgres.psql(
                    f"SELECT 1 FROM posthog_team WHERE id = {int(tid)}",
                    dbname="edgehog").strip():
                return int(tid), token
        tid, token = self.worker.team_create("Demo project")
        with open(path, "w") as f:
            f.write(f"{tid} {token}\n")
        return tid, token

    def stop(self):
        for svc in reversed(self.started):
            try:
                svc.stop()
            except Exception as e:  # keep stopping the others
                print(f"stop {svc.name}: {e}", file=sys.stderr)
        self.started = []

    def env(self):
        return {
            "EDGEHOG_URL": self.nginx.url,
            "EDGEHOG_KAFKA": self.kafka.bootstrap,
            "EDGEHOG_REDIS": f"127.0.0.1:{self.redis.port}",
            "EDGEHOG_POSTGRES": self.postgres.dsn,
            "EDGEHOG_CLICKHOUSE": ",".join(
                f"http://127.0.0.1:{n.http_port}" for n in self.ch_nodes),
            "EDGEHOG_TEAM_ID": str(self.team_id),
            "EDGEHOG_TOKEN": self.token,
            "EDGEHOG_WORKER_CONF": self.worker.conf_path,
        }

    def write_env(self):
        with open(os.path.join(self.dir, "stack.env"), "w") as f:
            for k, v in self.env().items():
                f.write(f"{k}={v}\n")


def _ports(cluster):
    """Fixed ports for `make run` (EDGEHOG_<NAME>_PORT overrides each)."""
    defaults = dict(nginx=8000, postgres=15432, redis=16379, kafka=19092,
                    kafka_controller=19093, zookeeper=12181,
                    clickhouse=18123, clickhouse_tcp=19000,
                    clickhouse_interserver=19009)
    return {k: int(os.environ.get(f"EDGEHOG_{k.upper()}_PORT", v))
            for k, v in defaults.items()}


def cmd_run(args):
    ports = _ports(args.cluster)
    ports["nginx"] = args.nginx_port
    cmd_stop(args, quiet=True)
    stack = Stack(args.dir, cluster=args.cluster, ports=ports)
    stack.start(log=lambda m: print(f"  .. {m}", flush=True))
    stack.write_env()
    ch = stack.ch_nodes[0]
    print(f"""
edgehog is running (state, logs and pids in {args.dir}).

  demo project token:  {stack.token}
  capture endpoint:    {stack.nginx.url}/i/v0/e/

Send an event:

  curl -s -X POST {stack.nginx.url}/i/v0/e/ -H 'Content-Type: application/json' \\
    -d '{{"api_key":"{stack.token}","event":"hello","distinct_id":"user-1","properties":{{"plan":"free"}}}}'

See it in ClickHouse (the Kafka engine flushes every few seconds):

  clickhouse-client --port {ch.tcp_port} -q "SELECT timestamp, event, distinct_id, properties FROM events FINAL ORDER BY timestamp DESC LIMIT 5"

Addresses for scripts: {args.dir}/stack.env.  Stop everything: make stop
""")


def cmd_stop(args, quiet=False):
    """Stop whatever a previous `make run` left, by pid file."""
    order = ["nginx", "worker", "clickhouse*", "kafka", "zookeeper", "redis",
             "postgres"]
    stopped = []
    for pattern in order:
        pidfiles = sorted(glob.glob(os.path.join(args.dir, pattern + ".pid")))
        # all ClickHouse nodes at once: one by one they wait on each other
        S.stop_pidfiles(pidfiles)
        stopped += [os.path.basename(p)[:-4] for p in pidfiles]
    if not quiet:
        print("stopped: " + (", ".join(stopped) if stopped else "nothing"))


def main():
    ap = argparse.ArgumentParser(prog="stack.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--dir", default=os.path.join(REPO, ".run"))
    run.add_argument("--nginx-port", type=int, default=8000)
    run.add_argument("--cluster", action="store_true")
    stop = sub.add_parser("stop")
    stop.add_argument("--dir", default=os.path.join(REPO, ".run"))
    args = ap.parse_args()
    if args.cmd == "run":
        cmd_run(args)
    else:
        cmd_stop(args)


if __name__ == "__main__":
    main()
