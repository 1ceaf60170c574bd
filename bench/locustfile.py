"""Locust users for ``make loadtest`` (``bench/loadtest.py`` starts Locust with this file): closed-loop
clients, each cycling through every route with a valid body, that count every answer by status and
every connection closed without one. Settings come from the environment:
``LOADTEST_API_KEY``, ``LOADTEST_MAX_REQUESTS`` (stop after that many), ``LOADTEST_OUT`` (JSON summary)."""

from __future__ import annotations

import collections
import itertools
import json
import os
import time

import gevent
from locust import FastHttpUser, constant, events, task

from bench.workload import sample_bodies

BODIES = sample_bodies()
KEY = os.environ["LOADTEST_API_KEY"]
MAX_REQUESTS = int(os.environ.get("LOADTEST_MAX_REQUESTS", "1000000"))
_users = itertools.count()
_tally = {"statuses": collections.Counter(), "dropped": 0, "latencies_ms": collections.defaultdict(list),
          "first": None, "last": None}


class ApiClient(FastHttpUser):
    wait_time = constant(0)  # send the next request as soon as the last is answered
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        routes = list(BODIES)
        start = next(_users) % len(routes)  # users start on different routes
        self._routes = itertools.cycle(routes[start:] + routes[:start])

    @task
    def predict(self) -> None:
        route = next(self._routes)
        with self.client.post(route, data=BODIES[route], name=route, catch_response=True,
                              headers={"x-api-key": KEY, "Content-Type": "application/json"}) as response:
            if response.status_code in (200, 429):
                response.success()
            else:
                response.failure(f"status {response.status_code}")


@events.request.add_listener
def count(request_type, name, response_time, response_length, response=None, exception=None, **_) -> None:
    status = getattr(response, "status_code", 0) or 0
    now = time.monotonic()
    _tally["first"] = _tally["first"] or now - response_time / 1000.0
    _tally["last"] = now
    if status == 0:  # no HTTP answer at all: the connection was closed, reset or timed out
        _tally["dropped"] += 1
    else:
        _tally["statuses"][status] += 1
        _tally["latencies_ms"][status].append(response_time)
    answered = sum(_tally["statuses"].values()) + _tally["dropped"]
    if answered == MAX_REQUESTS:
        gevent.spawn(_runner.quit)


@events.init.add_listener
def keep_runner(environment, **_) -> None:
    global _runner
    _runner = environment.runner


@events.quitting.add_listener
def write_summary(environment, **_) -> None:
    summary = {"statuses": {str(k): v for k, v in sorted(_tally["statuses"].items())}, "dropped": _tally["dropped"],
               "seconds": (_tally["last"] - _tally["first"]) if _tally["first"] else 0.0,
               "latencies_ms": {str(k): v for k, v in _tally["latencies_ms"].items()}}
    with open(os.environ["LOADTEST_OUT"], "w") as handle:
        json.dump(summary, handle)
