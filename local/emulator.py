"""Run one function as a real Lambda runtime on loopback: the Runtime Interface Emulator (shipped
inside the ``aws-sam-cli`` package) driving ``awslambdaric`` — one process per function, like one
Lambda each. No Docker needed; the container images are the same code (see ``functions/Dockerfile``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .template import REPO_ROOT, FunctionSpec

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
_LOOPBACK = "127.0.0.1"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback never via a proxy


def find_rie() -> Path:
    """``ONCOSERVE_RIE``, then ``build/bin/aws-lambda-rie`` (made by ``make setup``), then PATH."""
    candidates = [os.environ.get("ONCOSERVE_RIE"), REPO_ROOT / "build" / "bin" / "aws-lambda-rie",
                  shutil.which("aws-lambda-rie")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError("aws-lambda-rie not found: run `make setup` or set ONCOSERVE_RIE")


def port_is_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((_LOOPBACK, port)) == 0


class EmulatedFunction:
    """A function served by the emulator on ``127.0.0.1:port`` (Runtime API on ``port + 1000``)."""

    def __init__(self, spec: FunctionSpec, port: int, *, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.spec, self.port = spec, port
        self._extra_env = env or {}
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{_LOOPBACK}:{self.port}{INVOKE_PATH}"

    def environment(self) -> dict[str, str]:
        functions_dir = REPO_ROOT / "functions"
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
            "PYTHONPATH": os.pathsep.join([str(self.spec.directory), str(functions_dir)]),
            **self._extra_env,
        }

    def start(self, timeout_s: float = 30.0) -> "EmulatedFunction":
        for port in (self.port, self.port + 1000):
            if port_is_open(port):
                raise RuntimeError(f"127.0.0.1:{port} is already in use")
        command = [
            str(find_rie()),
            "--runtime-interface-emulator-address", f"{_LOOPBACK}:{self.port}",
            "--runtime-api-address", f"{_LOOPBACK}:{self.port + 1000}",
            sys.executable, "-m", "awslambdaric", "app.lambda_handler",
        ]
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(command, cwd=self.spec.directory, env=self.environment(),
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not port_is_open(self.port):
            if self._process.poll() is not None:
                raise RuntimeError(f"{self.spec.logical_id}: emulator exited with {self._process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.spec.logical_id}: emulator did not listen within {timeout_s} s")
            time.sleep(0.05)
        return self

    def invoke(self, event: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """POST ``event`` to the emulator; return the function's result (or its error object)."""
        return invoke_url(self.url, event, timeout_s or self.spec.timeout_s + 5)

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
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
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:  # the emulator reports function errors as HTTP 200; this is RIE itself
        return {"errorType": "EmulatorHTTPError", "errorMessage": f"HTTP {exc.code}: {exc.read()[:200]!r}"}
