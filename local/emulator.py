"""Run one function as a real Lambda runtime on loopback: the Runtime Interface Emulator (shipped
inside the ``aws-sam-cli`` package) driving ``awslambdaric`` — one process per execution
environment, as on Lambda. No Docker needed; the container images are the same code (see
``functions/Dockerfile``).

The emulator serves one invocation at a time: a second concurrent one makes it panic and exit
(``local.pool`` queues requests for that reason). An environment never outlives whoever started it:
it stays in its parent's process group (a supervisor's signal to the group reaches it), and the
kernel kills it when its parent dies (``setpriv --pdeathsig``); the runtime exits with its emulator.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .ports import LOOPBACK, free_port, port_is_open
from .template import REPO_ROOT, FunctionSpec

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never via a proxy
# The kernel sends a parent-death signal when the *thread* that forked the child ends, not the
# process: request threads come and go, so every environment is forked by this one long-lived thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oncoserve-spawner")
_SETPRIV = shutil.which("setpriv")  # util-linux, on every Debian


def find_rie() -> Path:
    """``ONCOSERVE_RIE``, then ``build/bin/aws-lambda-rie`` (made by ``make setup``), then PATH."""
    candidates = [os.environ.get("ONCOSERVE_RIE"), REPO_ROOT / "build" / "bin" / "aws-lambda-rie",
                  shutil.which("aws-lambda-rie")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("aws-lambda-rie not found: run `make setup` or set ONCOSERVE_RIE")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's), from /proc; empty once it is gone."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                children += [int(child) for child in handle.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        pass
    return children


def descendant_pids(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = child_pids(frontier.pop())
        found += children
        frontier += children
    return found


class EmulatedFunction:
    """One execution environment of a function: the emulator on ``127.0.0.1:port`` and its runtime
    (Runtime API on ``runtime_api_port``). Ports: as given, ``port + 1000`` for the Runtime API when
    only ``port`` is, or both free ones chosen at start when neither is."""

    def __init__(self, spec: FunctionSpec, port: int | None = None, *, runtime_api_port: int | None = None,
                 env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        self.spec, self.port = spec, port
        self.runtime_api_port = runtime_api_port or (port + 1000 if port else None)
        self._extra_env = env or {}
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{INVOKE_PATH}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def runtime_pids(self) -> list[int]:
        """The runtime process(es) the emulator started (empty before the first invocation)."""
        return descendant_pids(self._process.pid) if self._process else []

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            # What Lambda sets, so the runtime (and Powertools) behave as deployed.
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.logical_id,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(self.spec.timeout_s),
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "POWERTOOLS_SERVICE_NAME": "oncoserve",
            "POWERTOOLS_METRICS_NAMESPACE": "OncoServe",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "false"),
            # /var/task holds app.py and oncoserve_runtime/ side by side in the image.
            "PYTHONPATH": os.pathsep.join([str(self.spec.directory), str(self.spec.functions_root)]),
            **self._extra_env,
        }

    def command(self) -> list[str]:
        rie = [str(find_rie()),
               "--runtime-interface-emulator-address", f"{LOOPBACK}:{self.port}",
               "--runtime-api-address", f"{LOOPBACK}:{self.runtime_api_port}",
               sys.executable, "-m", "awslambdaric", "app.lambda_handler"]
        return [_SETPRIV, "--pdeathsig", "KILL", *rie] if _SETPRIV else rie

    def start(self, timeout_s: float = 30.0) -> "EmulatedFunction":
        if self.port is None:
            self.port, self.runtime_api_port = free_port(), free_port()
        for port in (self.port, self.runtime_api_port):
            if port_is_open(port):
                raise RuntimeError(f"127.0.0.1:{port} is already in use")
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL
        try:
            self._process = _SPAWNER.submit(
                subprocess.Popen, self.command(), cwd=self.spec.directory, env=self.environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT).result()
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # the child holds its own copy
        deadline = time.monotonic() + timeout_s
        while not port_is_open(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.spec.logical_id}: emulator exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.spec.logical_id}: emulator did not listen within {timeout_s} s")
            time.sleep(0.02)
        return self

    def invoke(self, event: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """POST ``event`` to the emulator; return the function's result (or its error object).
        Raises ``OSError``/``http.client.HTTPException`` when the environment does not answer."""
        return invoke_url(self.url, event, timeout_s or self.spec.timeout_s + 5)

    def stop(self, grace_s: float = 2.0) -> None:
        """End the emulator and its runtime: SIGTERM, then SIGKILL after ``grace_s``. The runtime is
        killed explicitly as well, since one stuck in a handler would not notice its emulator go."""
        if self._process is None:
            return
        runtime = self.runtime_pids()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        for pid in runtime:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._process = None

    def __enter__(self) -> "EmulatedFunction":
        return self.start() if self._process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def invoke_url(url: str, event: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """POST an event to an emulator (a local process or a container's) and decode the result."""
    request = urllib.request.Request(url, data=json.dumps(event).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with _NO_PROXY.open(request, timeout=timeout_s) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:  # the emulator reports function errors as HTTP 200; this is RIE itself
        return {"errorType": "EmulatorHTTPError", "errorMessage": f"HTTP {exc.code}: {exc.read()[:200]!r}"}
    try:
        return json.loads(raw or b"null")
    except ValueError:  # e.g. the emulator's plain-text answer when the function timed out
        return {"errorType": "EmulatorInvalidResponse", "errorMessage": raw[:200].decode("utf-8", "replace")}
