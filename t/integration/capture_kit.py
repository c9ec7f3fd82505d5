"""Helpers for the capture tests: an nginx of their own with one-partition
topics (so Kafka keeps the production order), the test clock on, and a
reader that returns exactly the messages a request produced."""

import itertools
import json
import os
import time
import uuid as uuidlib

import requests
from confluent_kafka import Consumer, KafkaException, TopicPartition

from conftest import ST

KINDS = ["main", "historical", "exceptions", "heatmaps", "client_warnings",
         "overflow", "dlq"]
_seq = itertools.count()


def nginx_workers(master):
    """pids of the master's children: a reload replaces them all"""
    try:
        with open(f"/proc/{master}/task/{master}/children") as f:
            return {int(p) for p in f.read().split()}
    except OSError:
        return set()


class Capture:
    """One nginx with capture on every v0 route and its own topics."""

    def __init__(self, stack, tmpdir, extra_loc="", extra_http="",
                 extra_server=""):
        self.stack = stack
        n = f"{os.getpid()}_{next(_seq)}_{uuidlib.uuid4().hex[:6]}"
        self.topics = {k: f"cap_{n}_{k}" for k in KINDS}
        stack.kafka.create_topics(list(self.topics.values()), partitions=1)
        directives = "\n".join(
            f"capture_kafka_topic{'' if k == 'main' else '_' + k} {t};"
            for k, t in self.topics.items())
        conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
        conf = conf.replace("capture  on;", "capture  on;\n" + directives
                            + "\ncapture_test_clock on;\n" + extra_loc)
        conf = conf.replace("client_body_buffer_size  1m;",
                            "client_body_buffer_size  1m;\n" + extra_http)
        self.nginx = ST.Nginx(str(tmpdir), kafka=stack.kafka.bootstrap,
                              redis=f"127.0.0.1:{stack.redis.port}",
                              extra=extra_server, conf=conf)
        self.nginx.start()
        self.url = self.nginx.url
        self.consumer = Consumer({
            "bootstrap.servers": stack.kafka.bootstrap,
            "group.id": "cap-test-" + n, "enable.auto.commit": False})
        # watermarks through a consumer that never fetches: an assigned
        # one answers them only between fetches, seconds later
        self.meta = Consumer({
            "bootstrap.servers": stack.kafka.bootstrap,
            "group.id": "cap-meta-" + n, "enable.auto.commit": False})
        self.tps = [TopicPartition(t, 0) for t in self.topics.values()]
        self.kind_of = {t: k for k, t in self.topics.items()}
        self.log_start = 0

    def close(self):
        try:
            self.consumer.close()
            self.meta.close()
        finally:
            self.nginx.stop()

    def marks(self):
        return {tp.topic: self._high(tp) for tp in self.tps}

    def _high(self, tp):
        # a topic created moments ago may not be in this client's metadata
        # yet: ask again until the broker answers or the deadline passes
        deadline = time.monotonic() + 30
        while True:
            try:
                return self.meta.get_watermark_offsets(tp, timeout=10)[1]
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # poll interval of the wait above

    def read(self, before):
        """Every message produced since `before` (from marks()), as dicts
        with kind, key, value (parsed), data (parsed), headers.  Capture
        answers 2xx only after the broker acknowledged (capture_ack
        delivery), so the marks taken after the response are final."""
        after = self.marks()
        out = []
        for topic, lo in before.items():
            hi = after[topic]
            if hi <= lo:
                continue
            tp = TopicPartition(topic, 0, lo)
            self.consumer.assign([tp])
            got = []
            deadline = time.monotonic() + 60
            while len(got) < hi - lo and time.monotonic() < deadline:
                m = self.consumer.poll(1.0)
                if m is None or m.error():
                    continue
                got.append(m)
            self.consumer.unassign()
            for m in got:
                value = json.loads(m.value())
                out.append({
                    "kind": self.kind_of[topic],
                    "key": m.key().decode() if m.key() is not None else None,
                    "raw": m.value(),
                    "value": value,
                    "data": json.loads(value["data"]),
                    "headers": {k: (v.decode() if v is not None else None)
                                for k, v in (m.headers() or [])},
                })
        return out

    def send(self, method, path, body=None, headers=None, now=None,
             xff="203.0.113.7"):
        """One request; returns (response, messages it produced)."""
        h = {}
        if xff is not None:
            h["X-Forwarded-For"] = xff
        if now:
            h["X-Capture-Test-Now"] = now
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        before = self.marks()
        r = requests.request(method, self.url + path, data=body, headers=h,
                             timeout=60)
        return r, self.read(before)

    def bad_log_lines(self):
        return self.nginx.bad_log_lines()
