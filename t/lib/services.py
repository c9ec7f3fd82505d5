"""Real backing services for edgehog's tests and local stack, run as child daemons.

Python 3.11 standard library only (Debian's /usr/bin/python3); imported by the
pytest fixtures and by t/lib/stack.py (`make run` / `make stop`).

Every service lives in a directory `dir` given by the caller:
  <dir>/<name>.pid   pid of the daemon (one line)
  <dir>/<name>.log   its stdout/stderr (and ClickHouse's own log)
  <dir>/<name>/      its data and generated configuration
Processes are started in their own session, so they outlive the Python process
(`make run`), and `start()` returns only once the service answers a real request
(Postgres accepts connections, Redis PONGs, ZooKeeper serves, Kafka returns
metadata with a broker, ClickHouse answers /ping) or raises after a timeout with
the tail of the log. `stop()` sends TERM, then KILL after a timeout, and waits
until the process is gone.
"""

import base64
import os
import pwd
import signal
import socket
import string
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONF = os.path.join(REPO, "conf")
PG_BIN = "/usr/lib/postgresql/15/bin"
KAFKA_JARS = os.environ.get(
    "EDGEHOG_KAFKA_JARS", os.path.expanduser("~/.cache/edgehog/kafka-3.9.1"))
ZK_CLASSPATH = ":".join([
    "/usr/share/java/zookeeper.jar",  # its manifest pulls in its dependencies
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
])


class ServiceError(RuntimeError):
    pass


# --- helpers ---------------------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    return free_ports(1)[0]


def free_ports(n):
    """n distinct free ports (sockets are held open together so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _terminate(pid, timeout=20.0, proc=None):
    """TERM, then KILL after `timeout` seconds; returns once pid is gone."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                return  # our child, now reaped
            if proc is None and not _alive(pid):
                return
            time.sleep(0.05)
    raise ServiceError(f"pid {pid} survived SIGKILL")


def _pid_from(path):
    """The pid in pidfile `path` if that process is alive and is ours: a pid can
    be reused by an unrelated process, so its /proc/<pid>/cmdline must mention
    the pidfile's directory (every service here has its data/config path on its
    command line). None otherwise."""
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    marker = os.path.dirname(os.path.abspath(path))
    return pid if _alive(pid) and marker in _cmdline(pid) else None


def stop_by_pidfile(path, timeout=20.0):
    """Stop the daemon recorded in pidfile `path` (a leftover of an earlier run).
    Returns True if something was stopped. The pidfile is removed either way."""
    return stop_pidfiles([path], timeout) == 1


def stop_pidfiles(paths, timeout=20.0):
    """stop_by_pidfile() for many pidfiles at once: TERM all, then wait (shutdowns
    overlap, which matters for the ClickHouse cluster). Returns how many stopped."""
    pids = [pid for pid in map(_pid_from, paths) if pid is not None]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for pid in pids:
        _terminate(pid, timeout)
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return len(pids)


def _render(template, dest, **values):
    with open(os.path.join(CONF, template)) as f:
        text = string.Template(f.read()).substitute(
            {k: str(v) for k, v in values.items()})
    with open(dest, "w") as f:
        f.write(text)
    return dest


def _tcp_request(port, payload, timeout=1.0):
    """Send payload to 127.0.0.1:port and read until EOF; b'' on any error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(payload)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
    except OSError:
        return b""


# --- base class ------------------------------------------------------------------

class Service:
    """A daemon run as a child process; see the module docstring for the layout."""

    start_timeout = 60.0
    stop_timeout = 20.0

    def __init__(self, dir, name):
        self.dir = os.path.abspath(dir)
        self.name = name
        self.workdir = os.path.join(self.dir, name)
        self.pidfile = os.path.join(self.dir, f"{name}.pid")
        self.logfile = os.path.join(self.dir, f"{name}.log")
        self.host = "127.0.0.1"
        self.proc = None
        self.pid = None
        self.startup_seconds = None
        os.makedirs(self.workdir, exist_ok=True)

    # subclasses: prepare() writes config/initialises data, argv() is the daemon
    # command line, ready() is the readiness probe, after_ready() one-off setup.
    def prepare(self):
        pass

    def argv(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def after_ready(self):
        pass

    def popen_kwargs(self):
        return {}

    def start(self):
        if self.proc is not None and self.proc.poll() is None:
            return self
        stop_by_pidfile(self.pidfile)  # leftover from a crashed earlier run
        t0 = time.monotonic()
        self.prepare()
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                **self.popen_kwargs())
        self.pid = self.proc.pid
        with open(self.pidfile, "w") as f:
            f.write(f"{self.pid}\n")
        try:
            self.wait_until(self.ready, self.start_timeout, "ready")
            self.after_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def wait_until(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode} "
                                   f"before {what}:\n{self.log_tail()}")
            if cond():
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"{self.name} not {what} after {timeout}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.1)

    def stop(self):
        if self.pid is not None and (self.proc is not None or _alive(self.pid)):
            _terminate(self.pid, self.stop_timeout, self.proc)
        self.proc = self.pid = None
        try:
            os.unlink(self.pidfile)
        except FileNotFoundError:
            pass

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        """Resident memory of the daemon (KiB), for reports."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, TypeError):
            pass
        return 0

    def log_tail(self, n=30):
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# --- Postgres --------------------------------------------------------------------

class Postgres(Service):
    """PostgreSQL 15 on 127.0.0.1:port with trust auth; database `edgehog`
    (superuser `postgres`). Runs as the `postgres` system user (initdb and postgres
    refuse root), so the data directory is chowned to it."""

    # extra "-c name=value" settings of every instance (the test session
    # sets some, see t/integration/conftest.py)
    settings = {}

    def __init__(self, dir, port=None, name="postgres", fsync=False,
                 dbname="edgehog", user="postgres"):
        super().__init__(dir, name)
        self.port = port or free_port()
        self.fsync = fsync
        self.dbname = dbname
        self.user = user
        self.data_dir = os.path.join(self.workdir, "data")
        # Unix sockets have a ~107 byte path limit; fall back to a short tmp dir.
        self.socket_dir = os.path.join(self.workdir, "sock")
        if len(self.socket_dir) > 90:
            self.socket_dir = tempfile.mkdtemp(prefix="edgehog-pg-")
        self.dsn = f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"
        self.url = self.dsn

    def popen_kwargs(self):
        return {"user": "postgres", "group": "postgres", "extra_groups": [],
                "env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                        "HOME": self.workdir}}

    def _as_postgres(self, argv):
        subprocess.run(argv, check=True, capture_output=True, cwd=self.workdir,
                       **self.popen_kwargs())

    def prepare(self):
        pw = pwd.getpwnam("postgres")
        # postgres must be able to traverse every ancestor of its data dir; pytest's
        # tmp dirs are 0700, so grant search (x, not read) permission to others.
        d = self.workdir
        while d != "/":
            mode = os.stat(d).st_mode
            if not mode & 0o001:
                os.chmod(d, mode | 0o001)
            d = os.path.dirname(d)
        for d in (self.workdir, self.socket_dir):
            os.makedirs(d, exist_ok=True)
            os.chown(d, pw.pw_uid, pw.pw_gid)
        if not os.path.exists(os.path.join(self.data_dir, "PG_VERSION")):
            self._as_postgres([f"{PG_BIN}/initdb", "-D", self.data_dir, "-U", "postgres",
                               "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                               "--no-sync"])

    def argv(self):
        return [f"{PG_BIN}/postgres", "-D", self.data_dir, "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", f"fsync={'on' if self.fsync else 'off'}",
                "-c", f"synchronous_commit={'on' if self.fsync else 'off'}",
                "-c", f"full_page_writes={'on' if self.fsync else 'off'}",
                "-c", "max_connections=200", "-c", "shared_buffers=64MB",
                *(a for k, v in self.settings.items()
                  for a in ("-c", f"{k}={v}"))]

    def ready(self):
        return subprocess.run(
            [f"{PG_BIN}/pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
            capture_output=True).returncode == 0

    def psql(self, sql, dbname="postgres"):
        """Run SQL through psql (as superuser); returns stdout."""
        return subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            check=True, capture_output=True, text=True).stdout

    def after_ready(self):
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.dbname}'"):
            self.psql(f'CREATE DATABASE "{self.dbname}"')


# --- Redis -----------------------------------------------------------------------

class Redis(Service):
    """redis-server on 127.0.0.1:port without persistence."""

    def __init__(self, dir, port=None, name="redis"):
        super().__init__(dir, name)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def prepare(self):
        # A config file in workdir: its path shows in the process title (see
        # proc-title-template), which stop_by_pidfile() relies on.
        self.config = os.path.join(self.workdir, "redis.conf")
        with open(self.config, "w") as f:
            f.write(f"bind 127.0.0.1\nport {self.port}\ndaemonize no\n"
                    f"save \"\"\nappendonly no\ndir {self.workdir}\n"
                    "protected-mode no\n"
                    "proc-title-template \"{title} {listen-addr} {config-file}\"\n")

    def argv(self):
        return ["/usr/bin/redis-server", self.config]

    def ready(self):
        return _tcp_request(self.port, b"PING\r\nQUIT\r\n").startswith(b"+PONG")


# --- ZooKeeper -------------------------------------------------------------------

class ZooKeeper(Service):
    """Debian's ZooKeeper 3.8, standalone, on 127.0.0.1:port."""

    def __init__(self, dir, port=None, name="zookeeper"):
        super().__init__(dir, name)
        self.port = port or free_port()
        self.hosts = f"127.0.0.1:{self.port}"

    def prepare(self):
        os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
        self.config = _render("zookeeper/zoo.cfg.in",
                              os.path.join(self.workdir, "zoo.cfg"),
                              data_dir=os.path.join(self.workdir, "data"),
                              port=self.port)

    def argv(self):
        return ["java", "-Xmx256m", "-Xms64m", "-XX:+UseSerialGC",
                f"-Dlog4j.configuration=file:{CONF}/zookeeper/log4j.properties",
                "-Dzookeeper.snapshot.trust.empty=true",
                "-cp", ZK_CLASSPATH,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.config]

    def ready(self):
        # `srvr` answers "not currently serving requests" until it is.
        return b"Mode:" in _tcp_request(self.port, b"srvr")


# --- Kafka -----------------------------------------------------------------------

class Kafka(Service):
    """Apache Kafka 3.9.1 in KRaft mode (one combined broker+controller node),
    PLAINTEXT on 127.0.0.1:port, jars resolved by deps/install.sh."""

    start_timeout = 90.0

    def __init__(self, dir, port=None, controller_port=None, jars_dir=None,
                 name="kafka", partitions=4, heap="-Xmx512m -Xms256m"):
        super().__init__(dir, name)
        self.port, self.controller_port = port or free_port(), controller_port
        if not self.controller_port:
            self.controller_port = next(p for p in free_ports(2) if p != self.port)
        self.jars_dir = jars_dir or KAFKA_JARS
        self.partitions = partitions
        self.heap = heap.split()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.config = os.path.join(self.workdir, "server.properties")
        self.log_dirs = os.path.join(self.workdir, "data")

    def _java(self, main, *args):
        if not os.path.exists(os.path.join(self.jars_dir, "kafka_2.13-3.9.1.jar")):
            raise ServiceError(f"no Kafka jars in {self.jars_dir}; run make deps")
        return ["java", *self.heap, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-XX:TieredStopAtLevel=1",  # C1 only: faster startup, less RSS
                "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{CONF}/kafka/log4j.properties",
                "-cp", os.path.join(self.jars_dir, "*"), main, *args]

    def prepare(self):
        _render("kafka/server.properties.in", self.config, port=self.port,
                controller_port=self.controller_port, log_dirs=self.log_dirs,
                partitions=self.partitions)
        if not os.path.exists(os.path.join(self.log_dirs, "meta.properties")):
            # Cluster id: a random UUID in Kafka's base64url form (22 chars, no '-'
            # first, as org.apache.kafka.common.Uuid.randomUuid() guarantees).
            while True:
                cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
                if not cid.startswith("-"):
                    break
            out = subprocess.run(
                self._java("kafka.tools.StorageTool", "format", "-t", cid,
                           "-c", self.config), capture_output=True, text=True)
            if out.returncode != 0:
                raise ServiceError(f"kafka storage format failed:\n{out.stdout}{out.stderr}")

    def argv(self):
        return self._java("kafka.Kafka", self.config)

    def ready(self):
        """A MetadataRequest v1 (all topics) answered with at least one broker."""
        client = b"edgehog-ready"
        body = struct.pack(">hhih", 3, 1, 1, len(client)) + client + struct.pack(">i", -1)
        resp = _tcp_request_kafka(self.port, struct.pack(">i", len(body)) + body)
        # response: size, correlation id, brokers array length, ...
        if len(resp) < 12:
            return False
        correlation_id, n_brokers = struct.unpack(">ii", resp[4:12])
        return correlation_id == 1 and n_brokers > 0

    def create_topics(self, names, partitions=None, timeout=30.0,
                      config=None):
        """Create topics (existing ones are fine) and wait until they have
        leaders; config: topic settings of the new ones."""
        from confluent_kafka.admin import AdminClient, NewTopic
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        n = partitions or self.partitions
        futures = admin.create_topics(
            [NewTopic(t, num_partitions=n, replication_factor=1,
                      config=config or {}) for t in names])
        for topic, fut in futures.items():
            try:
                fut.result(timeout)
            except Exception as e:  # KafkaException(TOPIC_ALREADY_EXISTS)
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise

        def have_leaders():
            md = admin.list_topics(timeout=5)
            return all(t in md.topics and md.topics[t].error is None
                       and md.topics[t].partitions
                       and all(p.leader >= 0 for p in md.topics[t].partitions.values())
                       for t in names)
        self.wait_until(have_leaders, timeout, "topics ready")


def _tcp_request_kafka(port, payload, timeout=1.0):
    """One Kafka request/response over a fresh connection; b'' on error."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(payload)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
                chunk = s.recv(65536)
                if not chunk:
                    return b""
                data += chunk
            return data
    except OSError:
        return b""


# --- ClickHouse ------------------------------------------------------------------

class ClickHouse(Service):
    """Debian's ClickHouse 18.16 server on 127.0.0.1 (HTTP, native TCP and
    interserver ports). `cluster_xml` is the <remote_servers>/<zookeeper>/<macros>
    fragment; by default a one-node cluster `edgehog` and macros shard=01."""

    def __init__(self, dir, http_port=None, tcp_port=None, interserver_port=None,
                 name="clickhouse", cluster_xml=None, shard="01", replica=None):
        super().__init__(dir, name)
        ports = free_ports(3)
        self.http_port = http_port or ports[0]
        self.tcp_port = tcp_port or ports[1]
        self.interserver_port = interserver_port or ports[2]
        self.port = self.http_port
        self.url = f"http://127.0.0.1:{self.http_port}/"
        self.shard, self.replica = shard, replica or name
        self.cluster_xml = cluster_xml or _cluster_xml(
            [[("127.0.0.1", self.tcp_port)]], None, shard, self.replica)
        self.config = os.path.join(self.workdir, "config.xml")

    def prepare(self):
        data = os.path.join(self.workdir, "data")
        for sub in ("", "tmp", "user_files", "format_schemas"):
            os.makedirs(os.path.join(data, sub), exist_ok=True)
        _render("clickhouse/config.xml.in", self.config, log=self.logfile,
                errorlog=os.path.join(self.workdir, "error.log"), path=data,
                http_port=self.http_port, tcp_port=self.tcp_port,
                interserver_port=self.interserver_port, cluster_xml=self.cluster_xml)
        _render("clickhouse/users.xml.in", os.path.join(self.workdir, "users.xml"))

    def argv(self):
        return ["/usr/sbin/clickhouse-server", f"--config-file={self.config}"]

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "ping", timeout=1) as r:
                return r.read().strip() == b"Ok."
        except OSError:
            return False

    def query(self, sql, data=None, timeout=30, **settings):
        """Run one statement over HTTP; returns the body as text. Raises
        ServiceError with ClickHouse's message on error. Append e.g.
        `FORMAT JSONEachRow` yourself; `data` is sent after the SQL (INSERTs)."""
        params = urllib.parse.urlencode(settings)
        body = sql.encode() if data is None else sql.encode() + b"\n" + (
            data if isinstance(data, bytes) else data.encode())
        req = urllib.request.Request(self.url + ("?" + params if params else ""),
                                     data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise ServiceError(f"{self.name}: {e.read().decode(errors='replace')}") from None


def _cluster_xml(shards, zk, shard, replica):
    """<remote_servers> cluster `edgehog` (shards: lists of (host, tcp_port)),
    optional <zookeeper> (a ZooKeeper), and this node's <macros>."""
    out = ["    <remote_servers>\n        <edgehog>"]
    for replicas in shards:
        out.append("            <shard>\n"
                   "                <internal_replication>true</internal_replication>")
        for host, port in replicas:
            out.append(f"                <replica><host>{host}</host>"
                       f"<port>{port}</port></replica>")
        out.append("            </shard>")
    out.append("        </edgehog>\n    </remote_servers>")
    if zk is not None:
        out.append(f"    <zookeeper>\n        <node><host>127.0.0.1</host>"
                   f"<port>{zk.port}</port></node>\n"
                   f"        <session_timeout_ms>30000</session_timeout_ms>\n"
                   f"    </zookeeper>")
    out.append(f"    <macros>\n        <shard>{shard}</shard>\n"
               f"        <replica>{replica}</replica>\n    </macros>")
    return "\n".join(out)


class ClickHouseCluster:
    """2 shards x 2 replicas of ClickHouse on one ZooKeeper: cluster `edgehog`
    (internal_replication), macros {shard} = 01/02 and {replica} = node name.
    Node i (0-based) uses ports base_http+i, base_tcp+i, base_interserver+i, or
    free ports when no bases are given."""

    def __init__(self, dir, zk, base_http=None, base_tcp=None, base_interserver=None,
                 shards=2, replicas=2, prefix="clickhouse"):
        self.dir, self.zk = os.path.abspath(dir), zk
        n = shards * replicas
        ports = free_ports(3 * n)

        def port(base, kind, i):
            return base + i if base else ports[kind * n + i]
        layout = [[i * replicas + j for j in range(replicas)] for i in range(shards)]
        tcp = [port(base_tcp, 1, i) for i in range(n)]
        topology = [[("127.0.0.1", tcp[i]) for i in s] for s in layout]
        self.nodes, self.shards = [], []
        for s, members in enumerate(layout):
            shard_nodes = []
            for i in members:
                name = f"{prefix}{i + 1}"
                node = ClickHouse(self.dir, port(base_http, 0, i), tcp[i],
                                  port(base_interserver, 2, i), name=name,
                                  cluster_xml=_cluster_xml(topology, zk, f"{s + 1:02d}", name),
                                  shard=f"{s + 1:02d}", replica=name)
                shard_nodes.append(node)
                self.nodes.append(node)
            self.shards.append(shard_nodes)
        self.startup_seconds = None

    def start(self):
        # Start all servers at once, then wait for each: they boot in parallel.
        t0 = time.monotonic()
        try:
            for node in self.nodes:
                node.start_timeout = 90.0
            procs = []
            for node in self.nodes:
                stop_by_pidfile(node.pidfile)
                node.prepare()
                with open(node.logfile, "ab") as log:
                    node.proc = subprocess.Popen(
                        node.argv(), cwd=node.workdir, stdin=subprocess.DEVNULL,
                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                node.pid = node.proc.pid
                with open(node.pidfile, "w") as f:
                    f.write(f"{node.pid}\n")
                procs.append(node)
            for node in procs:
                node.wait_until(node.ready, node.start_timeout, "ready")
                node.startup_seconds = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self):
        for node in self.nodes:
            if node.pid is not None:
                try:
                    os.kill(node.pid, signal.SIGTERM)  # all at once, then wait
                except ProcessLookupError:
                    pass
        for node in self.nodes:
            node.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
