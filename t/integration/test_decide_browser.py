"""posthog-js 1.449 (the published dist/array.full.js from npm) in headless
Chromium on a page of another origin: its remote config, /flags and event
requests succeed with CORS, getFeatureFlag returns what the engine decides,
and the event reaches Kafka.  Needs Debian's chromium and npm (`make deps`);
the npm packages are cached under build/js."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer

from conftest import ST
from test_decide import put_flags, wait_flag

POSTHOG_JS = "1.449.2"
JS_DIR = os.path.join(ST.REPO, "build", "js")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _npm(*args):
    out = subprocess.run(["npm", "--no-audit", "--no-fund",
                          "--loglevel=error", *args], cwd=JS_DIR,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        # no registry: an environment problem, not an edgehog failure
        pytest.skip(f"npm {' '.join(args)} failed: {out.stderr[-300:]}")


@pytest.fixture(scope="module")
def js_assets():
    if not os.path.exists(CHROMIUM) or not shutil.which("npm"):
        pytest.skip("chromium or npm missing (make deps installs them)")
    os.makedirs(JS_DIR, exist_ok=True)
    bundle = os.path.join(JS_DIR, f"posthog-js-{POSTHOG_JS}",
                          "array.full.js")
    if not os.path.exists(bundle):
        # the bundle alone: npm pack fetches the tarball without deps
        _npm("pack", f"posthog-js@{POSTHOG_JS}")
        with tarfile.open(os.path.join(
                JS_DIR, f"posthog-js-{POSTHOG_JS}.tgz")) as t:
            member = t.getmember("package/dist/array.full.js")
            member.name = os.path.basename(member.name)
            t.extract(member, os.path.dirname(bundle))
    pw = os.path.join(JS_DIR, "node_modules", "playwright-core")
    if not os.path.exists(pw):
        _npm("install", "playwright-core")
    return bundle, pw


@pytest.fixture(scope="module")
def site(js_assets, tmp_path_factory):
    """A page on another origin (its own port) that loads the bundle."""
    bundle, _ = js_assets
    root = tmp_path_factory.mktemp("site")
    shutil.copy(bundle, root / "array.full.js")
    (root / "index.html").write_text(
        "<!doctype html><html><head>"
        "<script src=\"/array.full.js\"></script>"
        "</head><body>edgehog</body></html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(root))
    handler.log_message = lambda *a: None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    srv.shutdown()


def _kafka_has(stack, needle, timeout=60.0):
    c = Consumer({"bootstrap.servers": stack.kafka.bootstrap,
                  "group.id": "browser-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest"})
    c.subscribe(["events_plugin_ingestion"])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error() and \
                    needle.encode() in (m.value() or b""):
                return json.loads(m.value())
        return None
    finally:
        c.close()


def test_posthog_js_in_chromium(stack, js_assets, site):
    _, pw = js_assets
    tid, token = stack.worker.team_create("browser")
    put_flags(stack, token, {"key": "browser-flag", "filters": {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": [
            {"key": "blue", "rollout_percentage": 100}]}}})
    wait_flag(stack, token, "browser-flag")
    did = "browser-" + uuid.uuid4().hex[:12]
    api = stack.nginx.url
    out = subprocess.run(
        ["node", os.path.join(ST.REPO, "t", "browser", "posthog_page.js"),
         pw, site, api, token, "browser-flag", did],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert not res["errors"], res
    assert not res["requestFailed"], res
    urls = [r["url"] for r in res["responses"]]
    assert any("/array/" + token + "/config" in u for u in urls), urls
    assert any("/flags" in u for u in urls), urls
    assert all(200 <= r["status"] < 300 for r in res["responses"]), res
    assert res["flag"] == "blue"
    ev = _kafka_has(stack, did)
    assert ev is not None, "the browser's events did not reach Kafka"
