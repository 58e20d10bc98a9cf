"""A minimal local implementation of the AWS Lambda Runtime API, for benchmarks.

It serves the two endpoints a Lambda runtime loop uses on loopback:

    GET  /2018-06-01/runtime/invocation/next            (long poll: blocks until an event)
    POST /2018-06-01/runtime/invocation/<id>/response   (the function's answer)

plus `/<id>/error` and `/init/error` (recorded as failures). `run_session` spawns one
process (a Rust `bootstrap`, `node runtime.mjs`, …) pointed at it with the environment
Lambda sets, and measures:

- cold start: from just before spawning the process to the moment its first response has
  been read (the event is queued before the spawn, so `next` answers at once), and within
  it, spawn → first `GET next` (the init phase);
- each warm call: from writing the event in answer to `GET next` to reading the response;
- peak RSS: `VmHWM` from /proc/<pid>/status after the last response, just before the
  process is stopped.

Python standard library only.
"""

import http.server
import itertools
import json
import os
import queue
import signal
import subprocess
import threading
import time

PREFIX = "/2018-06-01/runtime"
_ids = itertools.count(1)


class _Session:
    def __init__(self):
        self.events = queue.Queue()
        self.responses = queue.Queue()
        self.sent_at = {}
        self.first_next_at = None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        session = self.server.session
        if self.path != PREFIX + "/invocation/next":
            self._reply(404)
            return
        if session.first_next_at is None:
            session.first_next_at = time.perf_counter()
        item = session.events.get()
        if item is None:  # the session is over
            self.close_connection = True
            return
        request_id, body = item
        deadline_ms = int(time.time() * 1000) + 900_000
        headers = [
            ("Content-Type", "application/json"),
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
            ("Lambda-Runtime-Invoked-Function-Arn",
             "arn:aws:lambda:us-east-1:123456789012:function:bench"),
            ("Lambda-Runtime-Trace-Id",
             "Root=1-00000000-000000000000000000000000;Sampled=0"),
        ]
        session.sent_at[request_id] = time.perf_counter()
        self._reply(200, body, headers)

    def do_POST(self):
        session = self.server.session
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        now = time.perf_counter()
        parts = self.path[len(PREFIX):].strip("/").split("/")
        if self.path.startswith(PREFIX + "/invocation/") and len(parts) == 3:
            _, request_id, kind = parts
            session.responses.put((request_id, kind, body, now))
            self._reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        elif self.path == PREFIX + "/init/error":
            session.responses.put((None, "init-error", body, now))
            self._reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])
        else:
            self._reply(404)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a runtime killed at the end of a session resets its connection


class InvocationFailed(Exception):
    pass


def lambda_env(port, name, memory_mb=1024):
    region = os.environ.get("AWS_REGION", "us-east-1")
    return {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
    }


def _vm_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS"):
                    out[key] = int(value.split()[0])  # kB
    except OSError:
        pass
    return out


def run_session(cmd, name, first_event, warm_event=None, warm_calls=0, env=None,
                check=None, log_path=None, cwd=None, timeout=60, on_first=None):
    """Spawns `cmd` against a fresh Runtime API server; returns the measurements.

    `check(payload_bytes)` raises InvocationFailed unless the response is the expected one.
    """
    session = _Session()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.session = session
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.update(lambda_env(port, name))
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = None
    try:
        first_id = f"bench-{next(_ids)}"
        session.events.put((first_id, first_event))
        spawned_at = time.perf_counter()
        proc = subprocess.Popen(cmd, env=full_env, stdout=log, stderr=log, cwd=cwd)
        request_id, body, done_at = _await(session, proc, first_id, check, timeout)
        result = {
            "cold_start_ms": (done_at - spawned_at) * 1e3,
            "init_ms": ((session.first_next_at or done_at) - spawned_at) * 1e3,
            "first_invoke_ms": (done_at - session.sent_at[first_id]) * 1e3,
        }
        if on_first:
            on_first()
        warm = []
        for _ in range(warm_calls):
            rid = f"bench-{next(_ids)}"
            session.events.put((rid, warm_event))
            _, _, done_at = _await(session, proc, rid, check, timeout)
            warm.append((done_at - session.sent_at[rid]) * 1e6)
        if warm_calls:
            result["warm_us"] = warm
        # The runtime is blocked in its next `GET next` now: all work for the calls is done.
        result.update({k.lower() + "_kb": v for k, v in _vm_status(proc.pid).items()})
        return result
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        session.events.put(None)
        server.shutdown()
        server.server_close()
        if log_path:
            log.close()


def _await(session, proc, request_id, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            rid, kind, body, at = session.responses.get(timeout=0.05)
            break
        except queue.Empty:
            if proc.poll() is not None:
                raise InvocationFailed(f"the process exited with {proc.returncode} "
                                       f"before answering {request_id}")
            if time.monotonic() > deadline:
                raise InvocationFailed(f"no answer to {request_id} within {timeout} s")
    if kind != "response" or rid != request_id:
        raise InvocationFailed(f"{kind} for {rid} (expected a response for {request_id}): "
                               f"{body[:500]!r}")
    if check:
        check(body)
    return rid, body, at


def expect_http_200(body):
    """An API Gateway (v2) proxy response with status 200 and `success: true`."""
    try:
        payload = json.loads(body)
        inner = json.loads(payload.get("body") or "null")
    except ValueError as e:
        raise InvocationFailed(f"not a JSON proxy response: {e}: {body[:300]!r}")
    if payload.get("statusCode") != 200:
        raise InvocationFailed(f"status {payload.get('statusCode')}: {body[:500]!r}")
    if isinstance(inner, dict) and inner.get("success") is False:
        raise InvocationFailed(f"success false: {body[:500]!r}")


def expect_jsonrpc_result(body):
    """An API Gateway (v2) proxy response with status 200 and a JSON-RPC result (MCP)."""
    expect_http_200(body)
    inner = json.loads(json.loads(body).get("body") or "null")
    if not isinstance(inner, dict) or "result" not in inner or inner.get("error"):
        raise InvocationFailed(f"not a JSON-RPC result: {body[:500]!r}")


def expect_authorized(body):
    """An HTTP API simple authorizer response that lets the caller in."""
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise InvocationFailed(f"not JSON: {e}: {body[:300]!r}")
    if payload.get("isAuthorized") is not True:
        raise InvocationFailed(f"not authorized: {body[:500]!r}")
