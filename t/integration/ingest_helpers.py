"""Helpers of the ingest-worker integration tests: produce raw capture
messages to events_plugin_ingestion, collect everything the worker
produces in one background consumer, read Postgres and ClickHouse."""

import json
import threading
import time
import uuid

import psycopg2
from confluent_kafka import Consumer, Producer, TopicPartition

from conftest import ST, wait_for

PERSON_NS = uuid.UUID("932979b4-65c3-4424-8467-0b66ec27bc22")
NOW = "2024-01-01T10:00:00.000Z"
COLLECTED = ["clickhouse_events_json", "clickhouse_person",
             "clickhouse_person_distinct_id", "clickhouse_ingestion_warnings",
             "events_plugin_ingestion_dlq",
             "events_plugin_ingestion_overflow", "clickhouse_groups"]


def own_worker(stack, d, name, **values):
    """A worker of the stack's services with its own consumer group and
    output topics prefixed with `name`_ (values override config keys)."""
    return ST.Worker(
        str(d), kafka=stack.kafka.bootstrap, postgres=stack.postgres.dsn,
        clickhouse=",".join(f"http://127.0.0.1:{n.http_port}"
                            for n in stack.ch_nodes),
        redis=f"127.0.0.1:{stack.redis.port}", group=f"t-{name}",
        topic_prefix=f"{name}_", name=name, **values)


def person_uuid(team_id, distinct_id):
    return str(uuid.uuid5(PERSON_NS, f"{team_id}:{distinct_id}"))


class Collector:
    """Every message of the output topics, from the beginning."""

    def __init__(self, bootstrap):
        self.msgs = []
        self.pos = {}               # (topic, partition) -> next offset
        self.lock = threading.Lock()
        self.stop = False
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": "t-collector-" + uuid.uuid4().hex,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False})
        self.consumer.subscribe(COLLECTED)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            m = self.consumer.poll(0.2)
            if m is None or m.error():
                continue
            with self.lock:
                self.pos[(m.topic(), m.partition())] = m.offset() + 1
            try:
                value = json.loads(m.value())
            except ValueError:
                value = None
            with self.lock:
                self.msgs.append(dict(
                    topic=m.topic(), key=m.key(), raw=m.value(), value=value,
                    headers=dict(m.headers() or [])))

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.consumer.close()

    def caught_up(self, marks):
        """True once every partition was read up to marks[(topic, p)]."""
        with self.lock:
            return all(self.pos.get(tp, 0) >= hi for tp, hi in marks.items())

    def get(self, topic, **match):
        with self.lock:
            msgs = list(self.msgs)
        out = []
        for m in msgs:
            if m["topic"] != topic:
                continue
            v = m["value"] if isinstance(m["value"], dict) else {}
            if all(v.get(k) == want for k, want in match.items()):
                out.append(m)
        return out

    def values(self, topic, **match):
        return [m["value"] for m in self.get(topic, **match)]

    def event(self, ev_uuid, timeout=60):
        rows = wait_for(lambda: self.values("clickhouse_events_json",
                                            uuid=ev_uuid),
                        timeout=timeout, what=f"event {ev_uuid}")
        return rows[-1]


class Ingest:
    """One per session: a producer, the collector, a Postgres connection."""

    def __init__(self, stack):
        self.stack = stack
        self.team = stack.team_id
        self.token = stack.token
        self.producer = Producer({"bootstrap.servers": stack.kafka.bootstrap})
        self.out = Collector(stack.kafka.bootstrap)
        self.pg = psycopg2.connect(stack.postgres.dsn)
        self.pg.autocommit = True

    def close(self):
        self.out.close()
        self.pg.close()

    def _high_marks(self, consumer, topics):
        marks = {}
        md = consumer.list_topics(timeout=10)
        for t in topics:
            for p in md.topics[t].partitions:
                _, hi = consumer.get_watermark_offsets(TopicPartition(t, p),
                                                       timeout=10)
                marks[(t, p)] = hi
        return marks

    def settle(self, timeout=30):
        """Waits until the worker committed everything produced to its
        input so far (so every output of it is acknowledged), then until
        the collector read every output partition up to its end: after
        this, a message that is not collected was never produced."""
        group = self.stack.worker.settings["group"]
        c = Consumer({"bootstrap.servers": self.stack.kafka.bootstrap,
                      "group.id": group, "enable.auto.commit": False})
        try:
            inputs = self._high_marks(c, ["events_plugin_ingestion"])

            def committed():
                tps = [TopicPartition(t, p) for t, p in inputs]
                done = c.committed(tps, timeout=10)
                return all(max(tp.offset, 0) >= inputs[(tp.topic,
                                                        tp.partition)]
                           for tp in done)
            wait_for(committed, timeout, "the worker to commit its input")
            outputs = self._high_marks(c, COLLECTED)
        finally:
            c.close()
        wait_for(lambda: self.out.caught_up(outputs), timeout,
                 "the collector to read every output")

    def raw(self, value, key=None, topic="events_plugin_ingestion"):
        self.producer.produce(topic, value=value, key=key)
        self.producer.flush(10)

    def send(self, event, distinct_id, properties=None, token=None,
             now=NOW, timestamp=NOW, outer_timestamp=None, ev_uuid=None,
             wait=True, **data_extra):
        """A capture message; `timestamp` goes in data (resolved by the
        worker with now/sent_at/offset), `outer_timestamp` in the outer
        object as G3 capture writes it."""
        ev_uuid = ev_uuid or str(uuid.uuid4())
        data = {"event": event, "distinct_id": distinct_id,
                "properties": properties or {}, "uuid": ev_uuid}
        if timestamp is not None:
            data["timestamp"] = timestamp
        data.update(data_extra)
        token = token or self.token
        outer = {"uuid": ev_uuid, "distinct_id": distinct_id,
                 "ip": "127.0.0.1", "data": json.dumps(data), "now": now,
                 "token": token}
        if "sent_at" in data_extra:
            outer["sent_at"] = data_extra["sent_at"]
        if outer_timestamp is not None:
            outer["timestamp"] = outer_timestamp
        self.raw(json.dumps(outer).encode(),
                 key=f"{token}:{distinct_id}".encode("utf-8", "surrogatepass"))
        if wait:
            return self.out.event(ev_uuid)
        return ev_uuid

    def q(self, sql, *args):
        try:
            return self._q(sql, args)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            # Postgres was restarted (fault tests): reconnect once
            self.pg = psycopg2.connect(self.stack.postgres.dsn)
            self.pg.autocommit = True
            return self._q(sql, args)

    def _q(self, sql, args):
        with self.pg.cursor() as c:
            c.execute(sql, args)
            return c.fetchall() if c.description else None

    def persons(self, distinct_id=None, uuid_=None):
        if distinct_id is not None:
            return self.q(
                "SELECT p.uuid::text, p.properties, p.is_identified, "
                "p.version, p.created_at FROM posthog_person p JOIN "
                "posthog_persondistinctid d ON d.person_id = p.id "
                "WHERE d.team_id = %s AND d.distinct_id = %s",
                self.team, distinct_id)
        return self.q(
            "SELECT uuid::text, properties, is_identified, version, "
            "created_at FROM posthog_person WHERE team_id = %s AND "
            "uuid = %s::uuid", self.team, uuid_)

    def pdis(self, *distinct_ids):
        rows = self.q(
            "SELECT d.distinct_id, p.uuid::text, d.version FROM "
            "posthog_persondistinctid d JOIN posthog_person p ON "
            "p.id = d.person_id WHERE d.team_id = %s AND "
            "d.distinct_id = ANY(%s)", self.team, list(distinct_ids))
        return {r[0]: (r[1], r[2]) for r in rows}

    def personless(self, distinct_id):
        return self.q(
            "SELECT is_merged FROM posthog_personlessdistinctid WHERE "
            "team_id = %s AND distinct_id = %s", self.team, distinct_id)

    def warnings(self, type_, since=0):
        out = []
        for v in self.out.values("clickhouse_ingestion_warnings",
                                  type=type_)[since:]:
            v = dict(v)
            v["details"] = json.loads(v["details"])
            out.append(v)
        return out

    def wait_warning(self, type_, ev_uuid, timeout=30):
        """the warnings of one event (another topic than the event's, so
        it may arrive a little later)"""
        return wait_for(lambda: [w for w in self.warnings(type_)
                                 if w["details"].get("eventUuid") == ev_uuid],
                        timeout=timeout, what=f"warning {type_}")

    def ch(self, sql):
        node = self.stack.ch_nodes[0]
        text = node.query(sql + " FORMAT JSONEachRow")
        return [json.loads(line) for line in text.splitlines() if line]

    def ch_wait(self, sql, cond, timeout=60, what="ClickHouse rows"):
        return wait_for(lambda: (lambda r: r if cond(r) else None)(
            self.ch(sql)), timeout=timeout, what=what, interval=0.5)


def props(v):
    """a person/event properties value: JSON string or dict"""
    return json.loads(v) if isinstance(v, str) else v


def strip_creator(p):
    return {k: v for k, v in p.items() if k != "$creator_event_uuid"}


def tag():
    return uuid.uuid4().hex[:8]
