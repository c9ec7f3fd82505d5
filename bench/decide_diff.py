#!/usr/bin/python3
"""Differential check of the decide module against an older build, for
changes to the glue that no unit test reaches (the Redis lookups of
ngx_http_decide_lookup.c):

    python3 bench/decide_diff.py <dir with an older ngx_http_decide_module.so>
                                 [requests, default 3000]

Both builds serve one Redis; random /flags and /decide requests with
groups, $anon_distinct_id, person and group properties hit the old
nginx, then the new one, and the bodies must be byte-identical (but for
requestId and evaluatedAt).  The stored data has broken person and group
entries, missing ones and a hash-key override key of the wrong type, so
the failure paths are compared too.  Hash-key overrides are written by
whichever build comes first; both then read the same.  Prints the count
of differing answers (the first few in full) and exits 1 if any.

Session 10: old = the pool-thread lookups (5ce004a), new = lookups on
the event loop: 3000 of 3000 identical (624 of them with
errorsWhileComputingFlags), and so in the other order of the builds."""

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "t", "lib"))
sys.path.insert(0, HERE)

import services as S  # noqa: E402
import stack as ST  # noqa: E402
from decide import flag_team, group_types  # noqa: E402


def flags():
    out = []
    for gti in (0, 1):
        out.append({"key": f"g{gti}", "filters": {
            "aggregation_group_type_index": gti,
            "groups": [{"properties": [
                {"key": "size", "type": "group", "group_type_index": gti,
                 "operator": "gt", "value": 100}],
                "rollout_percentage": 60}]}})
    for r in (25, 50, 100):
        out.append({"key": f"ec{r}", "ensure_experience_continuity": True,
                    "filters": {"groups": [{"properties": [],
                                            "rollout_percentage": r}],
                                "multivariate": {"variants": [
                                    {"key": "a", "rollout_percentage": 50},
                                    {"key": "b", "rollout_percentage": 50}]}}})
    plan = [{"key": "plan", "type": "person", "operator": "exact",
             "value": "pro"}]
    out.append({"key": "ec-plan", "ensure_experience_continuity": True,
                "filters": {"groups": [{"properties": plan,
                                        "rollout_percentage": 70}]}})
    out.append({"key": "plan", "filters": {"groups": [
        {"properties": plan, "rollout_percentage": 100}]}})
    out.append({"key": "everyone", "filters": {"groups": [
        {"properties": [], "rollout_percentage": 100}]}})
    return out


def quote(s):
    """redis-cli's quoted string, "\xff" for the byte 0xff"""
    return '"' + "".join(
        c if " " <= c < "\x7f" and c not in '"\\' else f"\\x{ord(c):02x}"
        for c in s) + '"'


def main():
    old = os.path.abspath(sys.argv[1])
    n_requests = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    tmp = tempfile.mkdtemp(prefix="edgehog-decide-diff-")
    pg, redis = S.Postgres(tmp), S.Redis(tmp)
    started, nginxes = [], []
    try:
        worker, tid, token, _ = flag_team(tmp, pg, redis, started, "diff",
                                          flags())
        group_types(pg, tid, ("company", "project"))
        worker.run_cmd("sync")

        rnd = random.Random(7)
        cmds = []
        for i in range(40):
            key = f"edgehog:group:{tid}:{i % 2}:k{i}"
            if i % 5 == 4:
                cmds.append(("SET", key, "\xff{"))
            elif i % 7 != 6:
                cmds.append(("SET", key, json.dumps(
                    {"version": 1,
                     "properties": {"size": rnd.randint(0, 300)}})))
        for i in range(30):
            key = f"edgehog:person:{tid}:u{i}"
            if i % 9 == 8:
                cmds.append(("SET", key, "\xffbroken"))
            elif i % 4 != 3:
                cmds.append(("SET", key, json.dumps(
                    {"id": 100 + i % 12, "uuid": "", "version": 1,
                     "properties": {"plan": rnd.choice(["pro", "free"])}})))
        cmds.append(("SET", f"edgehog:hko:{tid}:105", "not a hash"))
        subprocess.run(["redis-cli", "-p", str(redis.port)], check=True,
                       capture_output=True, input="\n".join(
                           " ".join(quote(a) for a in c)
                           for c in cmds).encode())

        conf = open(os.path.join(ST.REPO, "conf", "nginx.conf.in")).read()
        for label, modules in (("old", old), ("new", None)):
            nginx = ST.Nginx(os.path.join(tmp, label),
                             redis=f"127.0.0.1:{redis.port}",
                             conf=conf.replace("@MODULES@", modules)
                             if modules else None)
            nginx.start()
            nginxes.append(nginx)

        volatile = re.compile(rb'"requestId":"[^"]*","evaluatedAt":\d+')
        same = differ = errors = 0
        for _ in range(n_requests):
            body = {"token": token, "distinct_id": f"u{rnd.randrange(30)}"}
            if rnd.random() < 0.6:
                body["groups"] = {
                    rnd.choice(["company", "project", "other"]):
                    rnd.choice([f"k{rnd.randrange(40)}", rnd.randrange(40)])
                    for _ in range(rnd.randrange(1, 3))}
            if rnd.random() < 0.3:
                body["groups"] = dict(body.get("groups", {}),
                                      project=f"k{rnd.randrange(40)}")
            if rnd.random() < 0.5:
                body["$anon_distinct_id"] = rnd.choice([
                    f"u{rnd.randrange(30)}", f"anon{rnd.randrange(20)}", ""])
            if rnd.random() < 0.2:
                body["group_properties"] = {
                    "company": {"size": rnd.randint(0, 300)}}
            if rnd.random() < 0.2:
                body["person_properties"] = {"plan": "pro"}
            path = rnd.choice(["/flags?v=2", "/flags?v=1", "/decide?v=3",
                               "/decide?v=4"])
            outs = []
            for nginx in nginxes:
                req = urllib.request.Request(
                    nginx.url + path, data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=30) as r:
                    outs.append((r.status, volatile.sub(b"", r.read())))
            errors += b'"errorsWhileComputingFlags":true' in outs[1][1]
            if outs[0] == outs[1]:
                same += 1
                continue
            differ += 1
            if differ <= 3:
                print(f"differ: {path} {json.dumps(body)}\n  old {outs[0]}"
                      f"\n  new {outs[1]}")
        print(f"{same} identical, {differ} different; {errors} answers "
              "with errorsWhileComputingFlags")
        for nginx in nginxes:
            bad = nginx.bad_log_lines()
            if bad:
                print(f"{nginx.workdir} error log:\n" + "\n".join(bad))
        return 1 if differ else 0
    finally:
        for nginx in nginxes:
            nginx.stop()
        for svc in reversed(started):
            svc.stop()


if __name__ == "__main__":
    sys.exit(main())
