"""``make loadtest``: the local API (``make serve``'s) under Locust, on loopback only, bounded in time
and count. Writes ``build/loadtest/loadtest.json`` and the "local API under load" section of
BENCHMARKS.md.

1. **Capacity** — the usage plan lifted, so the functions are the limit: 1, 8 and 32 concurrent
   users cycling through every route; throughput, p50/p95/p99 latency, dropped connections.
2. **Usage plan** — the template's rate, burst and quota, as deployed: 8 and 32 users; the share
   answered 429 and the throughput of 200s, which the plan's rate caps.
3. **Soak** — ≥ 10,000 warm requests at 8 users on the capacity API; each function runtime's
   resident memory before and after (goal: growth ≤ 5%).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from bench.sections import replace_section
from bench.workload import SAMPLE_BODIES, sample_bodies
from local.running import LocalApi
from local.serve import DEFAULT_CONCURRENCY
from local.template import REPO_ROOT, load_template
from local.usage_plan import OVERRIDES, Limits

OUT = REPO_ROOT / "build" / "loadtest"
TITLE = "local API under load"
LIFTED = {OVERRIDES["rate"]: "1000000", OVERRIDES["burst"]: "1000000", OVERRIDES["quota_per_day"]: "1000000000"}
RSS_GROWTH_GOAL = 0.05


def run_locust(url: str, key: str, users: int, seconds: int, max_requests: int) -> dict[str, Any]:
    """One headless Locust run against ``url``; the locustfile's summary with percentiles added."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        env = {**os.environ, "LOADTEST_API_KEY": key, "LOADTEST_OUT": str(out),
               "LOADTEST_MAX_REQUESTS": str(max_requests), "PYTHONPATH": str(REPO_ROOT)}
        command = [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "bench" / "locustfile.py"), "--headless",
                   "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s", "--host", url,
                   "--only-summary", "--loglevel", "ERROR", "--stop-timeout", "60", "--exit-code-on-error", "0"]
        with open(OUT / "locust.log", "a") as log:
            subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, stdout=log, stderr=subprocess.STDOUT,
                           timeout=seconds + 180)
        summary = json.loads(out.read_text())
    ok = summary["latencies_ms"].get("200", [])
    answered = sum(summary["statuses"].values())
    total = answered + summary["dropped"]
    return {
        "users": users, "requests": total, "seconds": round(summary["seconds"], 2),
        "statuses": summary["statuses"], "dropped": summary["dropped"],
        "throughput_rps": round(total / summary["seconds"], 1) if summary["seconds"] else 0.0,
        "ok_rps": round(len(ok) / summary["seconds"], 1) if summary["seconds"] else 0.0,
        "share_429": round(summary["statuses"].get("429", 0) / total, 4) if total else 0.0,
        "ok_latency_ms": {f"p{q}": round(float(np.percentile(ok, q)), 1) for q in (50, 95, 99)} if ok else {},
    }


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def warm_up(api: LocalApi, key: str) -> None:
    """Fill every pool with warm environments, so that the phases measure warm requests."""
    run_locust(api.url, key, users=2 * DEFAULT_CONCURRENCY * len(SAMPLE_BODIES), seconds=60,
               max_requests=4 * DEFAULT_CONCURRENCY * len(SAMPLE_BODIES))


def soak(api: LocalApi, key: str, requests: int) -> dict[str, Any]:
    before = {pid: (task, rss_kib(pid)) for pid, task in api.runtime_processes().items()}
    run = run_locust(api.url, key, users=8, seconds=1800, max_requests=requests)
    runtimes = []
    for pid, (task, start) in sorted(before.items(), key=lambda item: item[1][0]):
        end = rss_kib(pid)
        runtimes.append({"task": task, "pid": pid, "rss_before_mib": round(start / 1024, 1) if start else None,
                         "rss_after_mib": round(end / 1024, 1) if end else None,
                         "growth": round(end / start - 1, 4) if start and end else None})
    started_during = sorted(set(api.runtime_processes()) - set(before))
    return {**run, "runtimes": runtimes, "runtimes_started_during_soak": len(started_during)}


def measure(seconds: int, max_requests: int, soak_requests: int) -> dict[str, Any]:
    sample_bodies()  # fail early without events/generated
    key = "loadtest-" + secrets.token_hex(8)
    OUT.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "concurrency_per_function": DEFAULT_CONCURRENCY, "routes": list(SAMPLE_BODIES),
        "usage_plan": Limits.from_template(load_template(), environ={}).__dict__,
    }
    capacity = LocalApi(env={"API_KEY": key, **LIFTED}, log_path=OUT / "serve-capacity.log").start()
    try:
        warm_up(capacity, key)
        report["capacity"] = [run_locust(capacity.url, key, users, seconds, max_requests) for users in (1, 8, 32)]
        report["after_capacity_every_route_200"] = every_route_answers(capacity, key)
        report["soak"] = soak(capacity, key, soak_requests)
        report["after_soak_every_route_200"] = every_route_answers(capacity, key)
    finally:
        capacity.stop()
    planned = LocalApi(env={"API_KEY": key}, log_path=OUT / "serve-usage-plan.log").start()
    try:
        warm_up(planned, key)
        time.sleep(3)  # the warm-up emptied the bucket; let it refill to its burst
        report["usage_plan_runs"] = [run_locust(planned.url, key, users, seconds, max_requests) for users in (8, 32)]
    finally:
        planned.stop()
    return report


def every_route_answers(api: LocalApi, key: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for route, body in sample_bodies().items():
        request = urllib.request.Request(api.url + route, data=body, method="POST",
                                         headers={"x-api-key": key, "Content-Type": "application/json"})
        with opener.open(request, timeout=60) as response:
            if response.status != 200:
                return False
    return True


def markdown(report: dict[str, Any]) -> str:
    plan = report["usage_plan"]
    lines = [f"## {TITLE}", "",
             f"Measured on {report['date']} by `make loadtest` ({report['machine']}; Locust, headless, loopback). "
             f"Each user sends its next request when the last is answered, cycling through the {len(report['routes'])} "
             f"routes with one valid body each (`bench/workload.py`); every function has up to "
             f"{report['concurrency_per_function']} execution environments, warmed before measuring. Latencies are of "
             "200 answers, end to end through the gateway; throughput counts every answer.", "",
             "Capacity (usage plan lifted, so the functions are the limit):", "",
             "| users | requests | throughput (req/s) | p50 / p95 / p99 ms | 429 share | dropped connections |",
             "|---|---|---|---|---|---|"]
    for run in report["capacity"]:
        q = run["ok_latency_ms"]
        lines.append(f"| {run['users']} | {run['requests']} | {run['throughput_rps']:.1f} | "
                     f"{q['p50']:.0f} / {q['p95']:.0f} / {q['p99']:.0f} | {run['share_429']:.1%} | {run['dropped']} |")
    lines += ["", f"Under the template's usage plan ({plan['rate']:g} requests/s, burst {plan['burst']}, "
              f"{plan['quota_per_day']} a day per key):", "",
              "| users | requests | 200s per second | p50 / p95 / p99 ms of 200s | 429 share | other statuses | dropped connections |",
              "|---|---|---|---|---|---|---|"]
    for run in report["usage_plan_runs"]:
        q = run["ok_latency_ms"]
        other = sum(v for k, v in run["statuses"].items() if k not in ("200", "429"))
        lines.append(f"| {run['users']} | {run['requests']} | {run['ok_rps']:.1f} | "
                     f"{q['p50']:.0f} / {q['p95']:.0f} / {q['p99']:.0f} | {run['share_429']:.1%} | {other} | {run['dropped']} |")
    s = report["soak"]
    growths = [r["growth"] for r in s["runtimes"] if r["growth"] is not None]
    worst = max(growths) if growths else float("nan")
    lines += ["", f"Soak: {s['requests']} warm requests at {s['users']} users in {s['seconds']:.0f} s "
              f"({s['throughput_rps']:.1f} req/s), {s['dropped']} dropped; every route answered 200 afterwards: "
              f"{'yes' if report['after_soak_every_route_200'] else '**no**'}. Resident memory of each function "
              f"runtime before → after (goal: growth ≤ {RSS_GROWTH_GOAL:.0%}; largest "
              f"{worst:+.1%}{' — met' if worst <= RSS_GROWTH_GOAL else ' — **not met**'}):", "",
              "| runtime | RSS before (MiB) | RSS after (MiB) | growth |", "|---|---|---|---|"]
    for r in s["runtimes"]:
        growth = f"{r['growth']:+.1%}" if r["growth"] is not None else "ended during the soak"
        lines.append(f"| {r['task']} (pid {r['pid']}) | {r['rss_before_mib']} | {r['rss_after_mib']} | {growth} |")
    if s["runtimes_started_during_soak"]:
        lines.append(f"\n{s['runtimes_started_during_soak']} runtime(s) started during the soak (a replaced environment).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of each capacity / usage-plan run")
    parser.add_argument("--max-requests", type=int, default=5000, help="per run, whichever comes first")
    parser.add_argument("--soak-requests", type=int, default=10000)
    args = parser.parse_args(argv)
    report = measure(args.seconds, args.max_requests, args.soak_requests)
    (OUT / "loadtest.json").write_text(json.dumps(report, indent=2) + "\n")
    section = markdown(report)
    benchmarks = REPO_ROOT / "BENCHMARKS.md"
    benchmarks.write_text(replace_section(benchmarks.read_text() if benchmarks.is_file() else "# OncoServe benchmarks\n",
                                          TITLE, section))
    print(section)
    dropped = sum(run["dropped"] for run in [*report["capacity"], *report["usage_plan_runs"], report["soak"]])
    return 1 if dropped or not report["after_soak_every_route_200"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
