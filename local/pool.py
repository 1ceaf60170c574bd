"""A function's execution environments, as Lambda keeps them: up to ``concurrency`` emulated
environments, each serving one invocation at a time (the emulator allows no more). A request waits
for a free environment, or a new one is started (a cold start) while there are fewer than
``concurrency``; one that waits longer than the function's timeout is answered as API Gateway
answers an integration timeout. An environment that crashes, fails or stops answering is discarded
and its request gets API Gateway's 502; the next request starts a fresh one."""

from __future__ import annotations

import http.client
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .emulator import EmulatedFunction
from .ports import PortAllocator
from .template import FunctionSpec

# What the gateway receives for an invocation that produced no function result; like any
# non-proxy result, API Gateway turns it into 502 {"message": "Internal server error"}.
ENVIRONMENT_FAILED = {"errorType": "Runtime.EnvironmentFailed", "errorMessage": "the execution environment failed"}
_START_ATTEMPTS = 3  # a free port can be taken by someone else before the emulator binds it


class QueueTimeout(TimeoutError):
    """No environment came free within the function's timeout."""


class EnvironmentPool:
    def __init__(self, spec: FunctionSpec, concurrency: int, *, ports: PortAllocator | None = None,
                 log_path: Path | None = None, env: dict[str, str] | None = None,
                 say: Callable[[str], None] = lambda line: print(line, flush=True),
                 make_environment: Callable[..., EmulatedFunction] = EmulatedFunction) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.spec, self.concurrency = spec, concurrency
        self._ports = ports or PortAllocator()
        self._log_path, self._env, self._say = log_path, env, say
        self._make_environment = make_environment
        self._idle: list[EmulatedFunction] = []
        self._all: list[EmulatedFunction] = []
        self._starting = 0
        self._stopped = False
        self._started_count = 0
        self._cond = threading.Condition()

    def start(self) -> "EnvironmentPool":
        """Start one environment now, so that a broken set-up fails at start, not at the first request."""
        environment = self._add(self._new_environment())
        with self._cond:
            self._idle.append(environment)
        return self

    def environments(self) -> list[EmulatedFunction]:
        with self._cond:
            return list(self._all)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The function's result for ``event``; ``ENVIRONMENT_FAILED`` when no environment answered.
        Raises ``QueueTimeout`` when every environment stayed busy for the function's timeout."""
        try:
            environment = self._acquire(deadline=time.monotonic() + self.spec.timeout_s)
        except QueueTimeout:
            raise
        except (OSError, RuntimeError) as exc:  # a new environment failed to start
            self._say(f"[pool] {self.spec.logical_id}: could not start an environment: {exc}")
            return ENVIRONMENT_FAILED
        try:
            # The emulator enforces the function's timeout itself; the margin covers its own answer.
            result = environment.invoke(event, timeout_s=self.spec.timeout_s + 2)
        except (OSError, http.client.HTTPException) as exc:  # crashed, hung or killed mid-request
            self._discard(environment, f"no answer ({type(exc).__name__})")
            return ENVIRONMENT_FAILED
        # A result that is no proxy response is the gateway's 502, but only an error (or a dead runtime)
        # costs the environment: a job's worker invocation rightly answers something else.
        if not isinstance(result, dict) or "errorType" in result or not environment.alive:
            reason = result.get("errorType") if isinstance(result, dict) else "not a JSON object"
            self._discard(environment, f"function error {reason}")
            return result if isinstance(result, dict) else ENVIRONMENT_FAILED
        with self._cond:
            if environment in self._all:
                self._idle.append(environment)
                self._cond.notify()
        return result

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            environments, self._all, self._idle = self._all, [], []
            self._cond.notify_all()
        stop_all(environments)

    def _acquire(self, deadline: float) -> EmulatedFunction:
        with self._cond:
            while True:
                if self._stopped:
                    raise RuntimeError("the local API is stopping")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self.concurrency:
                    self._starting += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueTimeout(self.spec.logical_id)
                self._cond.wait(remaining)
        try:
            environment = self._new_environment()
        finally:
            with self._cond:
                self._starting -= 1
                self._cond.notify()
        return self._add(environment)

    def _add(self, environment: EmulatedFunction) -> EmulatedFunction:
        with self._cond:
            if self._stopped:
                environment.stop()
                raise RuntimeError("the local API is stopping")
            self._all.append(environment)
        return environment

    def _new_environment(self) -> EmulatedFunction:
        for attempt in range(_START_ATTEMPTS):
            environment = self._make_environment(self.spec, self._ports.take(), runtime_api_port=self._ports.take(),
                                                 env=self._env, log_path=self._log_path)
            try:
                environment.start()
                break
            except RuntimeError:
                if attempt == _START_ATTEMPTS - 1:
                    raise
        with self._cond:
            self._started_count += 1
            number = self._started_count
        self._say(f"[pool] {self.spec.logical_id}: new execution environment #{number} on 127.0.0.1:"
                  f"{environment.port} (cold start at its first request)")
        return environment

    def _discard(self, environment: EmulatedFunction, reason: str) -> None:
        with self._cond:
            if environment in self._all:
                self._all.remove(environment)
            self._cond.notify()
        environment.stop(grace_s=0.5)
        self._say(f"[pool] {self.spec.logical_id}: environment on 127.0.0.1:{environment.port} discarded "
                  f"({reason}); the next request starts a fresh one")


def side_by_side(calls: list[Callable[[], None]]) -> None:
    """Run ``calls`` in parallel threads and wait for all: stopping many environments then takes
    one grace period, not one each."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def stop_all(environments: list[EmulatedFunction]) -> None:
    side_by_side([environment.stop for environment in environments])
