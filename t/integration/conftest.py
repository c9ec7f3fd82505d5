"""Session fixtures: real services started once per test session in a
temporary directory on free ports, always torn down (also on failure and
Ctrl-C, through pytest's fixture finalisation)."""

import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))

import services as S  # noqa: E402
import stack as ST  # noqa: E402

FIXTURES = os.environ.get(
    "EDGEHOG_FIXTURES",
    os.path.abspath(os.path.join(ST.REPO, "..", "shared", "fixtures")))


def _terminate(signo, frame):
    # services run in their own sessions: turn SIGTERM (a CI timeout, kill)
    # into the Ctrl-C path so pytest's fixture finalisers stop them
    raise KeyboardInterrupt(f"signal {signo}")


signal.signal(signal.SIGTERM, _terminate)

# decide's 100 ms Redis deadline is a production latency budget; on a busy
# 2-core CI box a GET can stall longer, and a person lookup that times out
# correctly fails its flags -- which is not what the flag tests check (the
# failure paths have their own tests, with Redis stopped or entries broken)
ST.Nginx.redis_timeout = "2s"

# the commit time of a row (pg_xact_commit_timestamp) is where a
# propagation measurement starts: test_cli_flag_change_visible_within_1s
S.Postgres.settings = {"track_commit_timestamp": "on"}


def wait_for(cond, timeout=60.0, what="condition", interval=0.2):
    """Polls cond() until it returns a truthy value; fails after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # poll interval of this condition wait


def _crash_reports():
    """Crash reports of every nginx started so far (the session's and the
    tests' own), each read from where the last check stopped."""
    return [rep for rep in (n.crash_report() for n in ST.Nginx.instances)
            if rep]


def _decide_knows(st):
    import requests
    try:
        return requests.post(st.nginx.url + "/flags?v=2", timeout=10, json={
            "token": st.token, "distinct_id": "ready"}).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    st = ST.Stack(str(tmp_path_factory.mktemp("stack")))
    st.start()
    try:
        # nginx answers as soon as it listens; decide serves the demo
        # project once the worker published it and nginx loaded that
        wait_for(lambda: _decide_knows(st), timeout=60,
                 what="decide to serve the demo project")
    except BaseException:
        st.stop()
        raise
    yield st
    st.stop()
    # a crash after the last test's check, or while stopping
    reports = _crash_reports()
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)


@pytest.fixture(scope="session")
def cluster(stack, tmp_path_factory):
    """ZooKeeper and 2 shards x 2 replicas of ClickHouse, fed by a second
    ingest-worker (own consumer group, own output topics) from the same
    Kafka, so the single-node tests are unaffected."""
    d = str(tmp_path_factory.mktemp("cluster"))
    zk = S.ZooKeeper(d)
    ch = S.ClickHouseCluster(d, zk)
    prefix = "cluster_"
    stack.kafka.create_topics([prefix + t for t in ST.OUTPUT_TOPICS])
    # An independent pipeline: its own persons database (same demo team)
    # so the two workers never process one event against one Postgres,
    # and no Redis, so it cannot overwrite the decide snapshots.
    db = "edgehog_cluster"
    if not stack.postgres.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
        stack.postgres.psql(f'CREATE DATABASE "{db}"')
    worker = ST.Worker(
        d, kafka=stack.kafka.bootstrap,
        postgres=stack.postgres.dsn.rsplit("/", 1)[0] + "/" + db,
        clickhouse=",".join(f"http://127.0.0.1:{n.http_port}"
                            for n in ch.nodes),
        redis=f"127.0.0.1:{S.free_port()}", cluster="edgehog",
        group="edgehog-cluster", topic_prefix=prefix)
    started = []
    try:
        for svc in (zk, ch):
            svc.start()
            started.append(svc)
        worker.migrate()
        stack.postgres.psql(
            f"INSERT INTO posthog_team (id, name, api_token, project_id) "
            f"VALUES ({int(stack.team_id)}, 'Demo project', "
            f"'{stack.token}', {int(stack.team_id)}) ON CONFLICT DO NOTHING",
            dbname=db)
        worker.start()
        started.append(worker)
        yield ch
    finally:
        for svc in reversed(started):
            svc.stop()


@pytest.fixture(autouse=True)
def nginx_log_clean(request):
    """nginx-tests' rule: a test fails when the error log of the nginx it
    used shows [alert], [crit], [emerg] or a sanitizer report.  And any test
    fails when a worker of any nginx crashed meanwhile, whether or not the
    test looks at that nginx's log: the crash lines, the log lines before
    them and where the core file went are the report."""
    if "stack" not in request.fixturenames:
        yield
        reports = _crash_reports()
        if reports:
            pytest.fail("\n\n".join(reports), pytrace=False)
        return
    nginx = request.getfixturevalue("stack").nginx
    start = len(nginx.log_text())
    yield
    reports = _crash_reports()
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)
    bad = nginx.bad_log_lines(start)
    assert not bad, "nginx error log:\n" + "\n".join(bad)
