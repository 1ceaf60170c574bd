"""Lambda's Invoke API on loopback, for the functions themselves: a job's function invokes itself
asynchronously for each chunk (``boto3`` ``lambda.invoke(InvocationType="Event")``), and here that
call reaches the same pools of execution environments the gateway uses, as ``sam local start-lambda``
would let it. Given to the functions as ``AWS_ENDPOINT_URL_LAMBDA``, so they run the code they run on AWS.

What it reproduces: ``POST /2015-03-31/functions/<name>/invocations``; ``X-Amz-Invocation-Type:
Event`` answers 202 at once and runs the invocation in the background, waiting for a free
environment however long it takes (Lambda's async queue), and retries a failed one twice, as Lambda
does; ``RequestResponse`` answers the function's result; an unknown function 404
``ResourceNotFoundException``. Not reproduced: IAM, event age limits, destinations.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping

from .pool import QueueTimeout

Invoker = Callable[[dict[str, Any]], dict[str, Any]]
ASYNC_RETRIES = 2  # Lambda retries a failed asynchronous invocation twice by default
_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


def _failed(result: Any) -> bool:
    return not isinstance(result, dict) or "errorType" in result


class LocalLambdaApi(ThreadingHTTPServer):
    """``invokers``: function name (the template's logical id, what ``AWS_LAMBDA_FUNCTION_NAME`` is
    locally) → its pool's ``invoke``. ``drain()`` waits for the background invocations."""

    daemon_threads = True

    def __init__(self, invokers: Mapping[str, Invoker] | None = None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.invokers = dict(invokers or {})
        self._running: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def invoke_later(self, invoker: Invoker, event: dict[str, Any]) -> None:
        thread = threading.Thread(target=self._invoke_async, args=(invoker, event), daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()

    def _invoke_async(self, invoker: Invoker, event: dict[str, Any]) -> None:
        try:
            for _ in range(1 + ASYNC_RETRIES):
                result = self._invoke_when_free(invoker, event)
                if not _failed(result) or self.stopping.is_set():
                    return
                print(f"[lambda] asynchronous invocation failed ({result.get('errorType') if isinstance(result, dict) else result}); "
                      "retrying", flush=True)
        finally:
            with self._lock:
                self._running.discard(threading.current_thread())

    def _invoke_when_free(self, invoker: Invoker, event: dict[str, Any]) -> Any:
        while not self.stopping.is_set():
            try:
                return invoker(event)
            except QueueTimeout:  # every environment busy: an async event waits in Lambda's queue
                continue
        return None

    def background(self) -> int:
        with self._lock:
            return len(self._running)

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: LocalLambdaApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the gateway's and the pools' lines say what ran

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        found = _PATH.match(self.path.split("?", 1)[0])
        invoker = self.server.invokers.get(found["name"]) if found else None
        if invoker is None:
            message = json.dumps({"Type": "User", "message": f"Function not found: {self.path}"}).encode()
            return self._send(404, message, {"x-amzn-ErrorType": "ResourceNotFoundException"})
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            message = json.dumps({"Type": "User", "message": "Could not parse request body into json"}).encode()
            return self._send(400, message, {"x-amzn-ErrorType": "InvalidRequestContentException"})
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "Event":
            self.server.invoke_later(invoker, event)
            return self._send(202, b"")
        if invocation_type == "DryRun":
            return self._send(204, b"")
        try:
            result = invoker(event)
        except QueueTimeout:
            message = json.dumps({"Type": "User", "message": "Rate Exceeded."}).encode()
            return self._send(429, message, {"x-amzn-ErrorType": "TooManyRequestsException"})
        headers = {"X-Amz-Function-Error": "Unhandled"} if _failed(result) else {}
        self._send(200, json.dumps(result).encode(), headers)
