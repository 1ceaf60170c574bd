"""``python -m bench.region``: the histopathology region route on a 2048 x 2048 H&E region, in process
through the handler, with 1 and 2 LiteRT threads (what 1,769 MB and 3,538 MB buy on Lambda: one vCPU,
two), each in a fresh process; the median of 5 requests after one warm-up, and where the time goes.
Needs the generated event (``make setup``). Writes build/bench/region.json and the "region" section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date

from bench.sections import publish
from local.template import REPO_ROOT

TITLE = "region"
EVENT = REPO_ROOT / "events" / "generated" / "histopathology" / "ok_region_2048.json"


def measure(repeats: int) -> dict:
    """In this process (its ONCOSERVE_NUM_THREADS): request times and one request's model share."""
    from contract.apps import FakeLambdaContext, load_function_app, quiet_powertools

    quiet_powertools()
    app = load_function_app("histopathology")
    event = json.loads(EVENT.read_text())
    model_seconds: list[float] = []
    run_tiles = app.run_tiles

    def timed_run_tiles(run, tiles):
        started = time.perf_counter()
        try:
            return run_tiles(run, tiles)
        finally:
            model_seconds.append(time.perf_counter() - started)

    app.run_tiles = timed_run_tiles  # the route's one call into the model
    app.lambda_handler(event, FakeLambdaContext())  # warm-up
    times = []
    for _ in range(repeats):
        model_seconds.clear()
        started = time.perf_counter()
        response = app.lambda_handler(event, FakeLambdaContext())
        times.append(time.perf_counter() - started)
        assert response["statusCode"] == 200, response["body"][:200]
    body = json.loads(response["body"])
    return {"threads": os.environ.get("ONCOSERVE_NUM_THREADS"), "seconds_median": round(statistics.median(times), 3),
            "seconds": [round(t, 3) for t in times], "model_seconds": round(sum(model_seconds), 3),
            "tiles": body["tiles"]["scored"], "heatmap_bytes": len(body["heatmap_png"]) * 3 // 4}


def _section(runs: list[dict]) -> str:
    lines = [f"## {TITLE}\n",
             f"Measured on {date.today().isoformat()} by `python -m bench.region` on the 2-core CI machine: "
             "`POST /histopathology/region` on a 2048 x 2048 H&E region (`events/generated/histopathology/ok_region_2048.json`), "
             "in process through the handler, median of 5 after a warm-up, each thread count in a fresh process.\n",
             "| LiteRT threads (Lambda memory) | request | of which the model | tiles scored | tiles/s | heatmap PNG |",
             "|---|---|---|---|---|---|"]
    for run in runs:
        memory = {"1": "1,769 MB: one vCPU", "2": "3,538 MB: two vCPUs"}.get(str(run["threads"]), "")
        lines.append(f"| {run['threads']} ({memory}) | {run['seconds_median']:.2f} s | {run['model_seconds']:.2f} s | "
                     f"{run['tiles']:,} | {run['tiles'] / run['seconds_median']:,.0f} | {run['heatmap_bytes'] / 1e6:.2f} MB |")
    lines += ["", "The histopathology function has 3,538 MB and two threads (tasks.yaml), so that a region answers within a "
              "second; the background test runs over the whole image at once and the heatmap PNG is written at zlib level 1."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child: measure and print
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.repeats)))
        return 0
    if not EVENT.is_file():
        raise SystemExit(f"{EVENT} is missing: run `make setup` first")
    runs = []
    for threads in args.threads:
        child = subprocess.run([sys.executable, "-m", "bench.region", "--one", "--repeats", str(args.repeats)],
                               env={**os.environ, "ONCOSERVE_NUM_THREADS": str(threads)}, cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True)
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    publish("region", runs, TITLE, _section(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
