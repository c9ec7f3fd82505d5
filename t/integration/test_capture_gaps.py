"""Capture behaviours beyond the acceptance cases: a slow body's 408 in
JSON, event restrictions (spec §7.5), the query token on GET (§3.1) and
the survey exemption from the events quota (§7.1)."""

import json
import socket

from capture_kit import Capture

TOKEN = "phc_test"


def ev(distinct_id="u1", token=TOKEN, event="e", **extra):
    return dict({"api_key": token, "event": event,
                 "distinct_id": distinct_id}, **extra)


def http_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length from sock."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response head"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in
               (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_slow_body_gets_json_408_and_nothing_is_produced(stack, tmp_path):
    c = Capture(stack, tmp_path, extra_loc="client_body_timeout 1s;")
    try:
        before = c.marks()
        body = json.dumps(ev()).encode()
        s = socket.create_connection(("127.0.0.1", c.nginx.port), timeout=60)
        try:
            s.sendall(b"POST /i/v0/e/ HTTP/1.1\r\nHost: t\r\n"
                      b"Origin: https://app.example.com\r\n"
                      b"Content-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
            # the rest never comes: nginx's client_body_timeout fires
            status, headers, text = http_response(s)
        finally:
            s.close()
        assert status == 408
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert headers["access-control-allow-origin"] == \
            "https://app.example.com"
        assert json.loads(text) == {"status": 408, "code": "timeout",
                                    "error": "client stopped sending data"}
        assert c.read(before) == []
        # the worker goes on serving
        r, msgs = c.send("POST", "/i/v0/e/", ev())
        assert r.status_code == 200 and len(msgs) == 1
        assert not c.bad_log_lines()
    finally:
        c.close()
