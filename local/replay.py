"""Replay every event in ``events/`` against the functions and check each answer.

``python -m local.replay`` starts each function under the emulator (no Docker);
``--target images`` posts to the built container images instead (started by
``tests/container``/``make images-test`` on ports from ``--function-port``). Same events, same checks.
Prints one line per event and a closing ``N passed, N failed``; exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .emulator import EmulatedFunction, invoke_url
from .events import EVENTS_DIR
from .template import FunctionSpec, function_specs

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Outcome:
    event: str
    ok: bool
    status: Any
    detail: str
    seconds: float


def event_cases(task: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(event file, expectation) for a task: committed events, then generated ones if present."""
    for folder in (EVENTS_DIR / task, EVENTS_DIR / "generated" / task):
        expected_file = folder / "expected.json"
        if expected_file.is_file():
            for name, expectation in sorted(json.loads(expected_file.read_text()).items()):
                yield folder / name, expectation


def check(result: dict[str, Any], expectation: dict[str, Any]) -> tuple[bool, Any, str]:
    """Does a function result meet its expectation (status, error code or label)?"""
    if not isinstance(result, dict) or "statusCode" not in result:
        return False, None, f"not a proxy response: {str(result)[:160]}"
    status = result["statusCode"]
    try:
        body = json.loads(result.get("body") or "null")
    except ValueError:
        return False, status, "body is not JSON"
    problems = []
    if status != expectation["status"]:
        problems.append(f"status {status} != {expectation['status']}")
    if "code" in expectation and (body or {}).get("error", {}).get("code") != expectation["code"]:
        problems.append(f"code {(body or {}).get('error', {}).get('code')!r} != {expectation['code']!r}")
    if "label" in expectation and (body or {}).get("label") != expectation["label"]:
        problems.append(f"label {(body or {}).get('label')!r} != {expectation['label']!r}")
    summary = (body or {}).get("error", {}).get("code") or (body or {}).get("label") or ""
    return not problems, status, "; ".join(problems) or str(summary)


def replay_function(spec: FunctionSpec, invoke: Invoke) -> list[Outcome]:
    outcomes = []
    for path, expectation in event_cases(spec.task):
        event = json.loads(path.read_text())
        started = time.perf_counter()
        result = invoke(event)
        ok, status, detail = check(result, expectation)
        outcomes.append(Outcome(str(path.relative_to(EVENTS_DIR)), ok, status, detail, time.perf_counter() - started))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("emulator", "images"), default="emulator")
    parser.add_argument("--function-port", type=int, default=9200,
                        help="first port; function i listens on port + i (images: already running there)")
    parser.add_argument("tasks", nargs="*", help="only these tasks (default: every function with events)")
    args = parser.parse_args(argv)

    specs = [s for s in function_specs() if not args.tasks or s.task in args.tasks]
    outcomes: list[Outcome] = []
    for i, spec in enumerate(specs):
        if not any(True for _ in event_cases(spec.task)):
            continue
        port = args.function_port + i
        if args.target == "emulator":
            with EmulatedFunction(spec, port) as function:
                results = replay_function(spec, function.invoke)
        else:
            url = f"http://127.0.0.1:{port}/2015-03-31/functions/function/invocations"
            results = replay_function(spec, lambda event: invoke_url(url, event, spec.timeout_s + 5))
        for outcome in results:
            mark = "ok  " if outcome.ok else "FAIL"
            print(f"{mark} {outcome.event:55s} {outcome.status!s:>4} {outcome.seconds * 1000:7.0f} ms  {outcome.detail}")
        outcomes.extend(results)
    failed = sum(not o.ok for o in outcomes)
    print(f"replay ({args.target}): {len(outcomes) - failed} passed, {failed} failed")
    return 1 if failed or not outcomes else 0


if __name__ == "__main__":
    raise SystemExit(main())
