"""Reliability scenarios 5 and 9 (spec/reliability.md §3): a worker killed
under load, a storm of reloads and a graceful quit lose no acknowledged
event.  The conservation invariant: every uuid that got a 200 is in Kafka (at least
once: librdkafka may retry a request whose ack it did not see)."""

import json
import os
import signal
import threading
import uuid

import pytest
import requests
from confluent_kafka import TopicPartition

from capture_kit import Capture, nginx_workers
from conftest import wait_for

RELOADS = 10


class Load:
    """Two clients posting single events until stopped; remembers the
    uuids that were answered 200 and counts the other answers."""

    def __init__(self, url):
        self.url = url
        self.ok, self.other = [], []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True)
                        for _ in range(2)]
        for t in self.threads:
            t.start()

    def run(self):
        s = requests.Session()
        while not self.stop.is_set():
            e = str(uuid.uuid4())
            body = {"api_key": "phc_test", "event": "storm", "uuid": e,
                    "distinct_id": e[:8]}
            try:
                r = s.post(self.url + "/i/v0/e/", json=body, timeout=30)
            except requests.RequestException as exc:
                # a keep-alive connection the old worker closed: not acked
                self.other.append(type(exc).__name__)
                s = requests.Session()
                continue
            (self.ok if r.status_code == 200 else self.other).append(
                e if r.status_code == 200 else r.status_code)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def all_uuids(c):
    """every event uuid in the main topic, from the beginning"""
    tp = TopicPartition(c.topics["main"], 0)
    high = c._high(tp)
    c.consumer.assign([TopicPartition(c.topics["main"], 0, 0)])
    got = []
    try:
        wait_for(lambda: got.extend(
                     m for m in c.consumer.consume(1000, 1.0)
                     if not m.error()) or len(got) >= high,
                 timeout=60, what=f"{high} messages read back")
    finally:
        c.consumer.unassign()
    return [json.loads(m.value())["uuid"] for m in got]


@pytest.mark.parametrize("ack", ["delivery", "enqueue"])
def test_reload_storm_and_quit_under_load_lose_nothing(stack, tmp_path, ack):
    c = Capture(stack, tmp_path, extra_loc=f"capture_ack {ack};")
    load = None
    try:
        load = Load(c.url)
        for i in range(RELOADS):
            old = nginx_workers(c.nginx.pid)
            n = len(load.ok)
            c.nginx.signal(signal.SIGHUP)
            wait_for(lambda: nginx_workers(c.nginx.pid) and not (
                     nginx_workers(c.nginx.pid) & old), timeout=30,
                     what=f"reload {i + 1}: workers replaced")
            # the new generation answers before the next reload
            wait_for(lambda: len(load.ok) > n + 20, timeout=30,
                     what=f"events acked after reload {i + 1}")

        # graceful quit while the clients are still sending
        c.nginx.signal(signal.SIGQUIT)
        wait_for(lambda: c.nginx.proc.poll() is not None, timeout=60,
                 what="nginx to quit")
        load.finish()

        acked = set(load.ok)
        assert len(acked) == len(load.ok) > RELOADS * 20
        stored = all_uuids(c)
        missing = acked - set(stored)
        assert not missing, f"{len(missing)} acked events lost"
        assert not c.bad_log_lines()
    finally:
        if load:
            load.finish()
        c.close()


def test_worker_kill9_under_load_loses_no_acked_event(stack, tmp_path):
    """Scenario 5: a worker killed with SIGKILL loses only what it had not
    answered yet (capture_ack delivery); the master's new worker goes on."""
    c = Capture(stack, tmp_path)
    load = None
    try:
        load = Load(c.url)
        for i in range(3):
            n = len(load.ok)
            wait_for(lambda: len(load.ok) > n + 20, timeout=30,
                     what=f"events acked before kill {i + 1}")
            old = nginx_workers(c.nginx.pid)
            for pid in old:
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: nginx_workers(c.nginx.pid) and not (
                     nginx_workers(c.nginx.pid) & old), timeout=30,
                     what=f"kill {i + 1}: worker respawned")
        n = len(load.ok)
        wait_for(lambda: len(load.ok) > n + 20, timeout=30,
                 what="events acked after the last kill")
        load.finish()

        missing = set(load.ok) - set(all_uuids(c))
        assert not missing, f"{len(missing)} acked events lost"
        # the kills are the only alerts
        assert all("exited on signal 9" in l for l in c.bad_log_lines())
    finally:
        if load:
            load.finish()
        c.close()
