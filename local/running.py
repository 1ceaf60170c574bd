"""A local API started as a child process, for tests and load tests: started in a process group of
its own (as a supervisor starts a service), its output drained to a log, its address read from
its ``ready:`` line, and its processes listed from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .emulator import descendant_pids
from .template import REPO_ROOT

READY = "ready: "


def process_ended(pid: int) -> bool:
    """Gone, or a zombie nobody has reaped yet (it runs nothing any more)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


class LocalApi:
    """``python -m local.serve`` (or ``command``, e.g. ``make serve``) on a free port unless ``PORT``
    is in ``env``. ``url`` is known once ``start`` returns."""

    def __init__(self, command: list[str] | None = None, *, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.command = command or [sys.executable, "-m", "local.serve"]
        # A make started by a make must not look for its parent's jobserver.
        inherited = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        self.env = {"PORT": "0", **inherited, **(env or {})}
        self.log_path = log_path
        self.url: str | None = None
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    def start(self, timeout_s: float = 180.0) -> "LocalApi":
        self.process = subprocess.Popen(self.command, cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        start_new_session=True)
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(timeout_s) or self.url is None:
            self.kill()
            raise RuntimeError(f"local API did not become ready:\n{''.join(self.lines[-30:])}")
        return self

    def _drain(self) -> None:
        assert self.process and self.process.stdout
        log = open(self.log_path, "a") if self.log_path else None
        for line in self.process.stdout:
            self.lines.append(line)
            if log:
                log.write(line)
                log.flush()
            if line.startswith(READY):
                self.url = line[len(READY):].strip()
                self._ready.set()
        self._ready.set()  # it exited: start() stops waiting
        if log:
            log.close()

    @property
    def pid(self) -> int:
        assert self.process
        return self.process.pid

    def descendants(self) -> list[int]:
        return descendant_pids(self.pid)

    def runtime_processes(self) -> dict[int, str]:
        """pid → task of every function runtime (awslambdaric) below this API."""
        runtimes = {}
        for pid in self.descendants():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if cmdline[1:3] == [b"-m", b"awslambdaric"]:  # not the emulator, which names it too
                    runtimes[pid] = Path(os.readlink(f"/proc/{pid}/cwd")).name
            except (FileNotFoundError, ProcessLookupError):
                continue
        return runtimes

    def signal_group(self, sig: int) -> None:
        """What a supervisor does: signal the whole process group."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout_s: float) -> int | None:
        assert self.process
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process and self.process.poll() is None:
            self.signal_group(signal.SIGTERM)
            if self.wait(timeout_s) is None:
                self.kill()

    def kill(self) -> None:
        if self.process:
            self.signal_group(signal.SIGKILL)
            self.wait(5)


def wait_until_ended(pids: list[int], timeout_s: float) -> list[int]:
    """The pids still running after ``timeout_s`` (empty when all ended in time)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [pid for pid in pids if not process_ended(pid)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
