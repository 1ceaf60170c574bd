"""``python -m bench.handler``: the handler's own work per request, in process → BENCHMARKS.md.

What a request costs inside the function besides the model: parsing, validation, decoding,
building the model input, the answer and Powertools' logging and metrics (tracing off: no X-Ray
daemon here). One warm handler per task, one interpreter thread, the median of repeated calls of
``lambda_handler`` on the first answered event of each route, minus the model's own median on
the same input. Needs events/generated (``make setup`` with ../shared/data).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from bench.sections import replace_section
from contract.apps import FakeLambdaContext, load_function_app
from local.events import EVENTS_DIR

TITLE = "handler's own work (in process)"
BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
EVENTS = {  # task → events measured (the expression forms side by side)
    "histopathology": ["ok_idc_patch.json"],
    "brain": ["ok_ct_tumor.json"],
    "skin": ["ok_ham_melanoma.json"],
    "leukemia": ["ok_all.json", "ok_all_compact.json"],
    "breast_survival": ["ok_patient.json", "ok_patient_compact_reordered.json"],
}
RUNS = 300


def _median_ms(call: Callable[[], Any], runs: int = RUNS) -> tuple[float, float]:
    call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000.0)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def _model_input(app: Any, body: dict[str, Any]) -> Callable[[], Any]:
    """The model's own call on this request's input, captured by running the route once."""
    bundle = app.MODEL.get()
    captured: list[Any] = []
    original = bundle.run
    bundle.run = lambda batch: captured.append(batch) or original(batch)  # type: ignore[method-assign]
    try:
        app.lambda_handler.routes[0].predict(body, bundle)
    finally:
        bundle.run = original  # type: ignore[method-assign]
    return lambda: original(captured[0])


def measure() -> list[dict[str, Any]]:
    os.environ.update(ONCOSERVE_NUM_THREADS="1", POWERTOOLS_TRACE_DISABLED="true",
                      POWERTOOLS_METRICS_NAMESPACE="OncoServe", POWERTOOLS_LOG_LEVEL="INFO")
    rows = []
    for task, names in EVENTS.items():
        app = load_function_app(task)
        for name in names:
            path = EVENTS_DIR / "generated" / task / name
            if not path.is_file():
                continue
            event = json.loads(path.read_text())
            body = json.loads(event["body"])
            with contextlib.redirect_stdout(io.StringIO()):  # logs and metrics, as Lambda prints them
                answer = app.lambda_handler(event, FakeLambdaContext())
                assert answer["statusCode"] == 200, answer
                request_p50, request_p95 = _median_ms(lambda: app.lambda_handler(event, FakeLambdaContext()))
            model_p50, _ = _median_ms(_model_input(app, body))
            rows.append({"task": task, "event": name, "body_kb": len(event["body"]) / 1000, "request_p50": request_p50,
                         "request_p95": request_p95, "model_p50": model_p50, "own_p50": request_p50 - model_p50})
            print(f"{task:16s} {name:36s} request p50 {request_p50:7.2f} ms, model {model_p50:7.2f}, "
                  f"own {request_p50 - model_p50:6.2f}", flush=True)
    return rows


def section(rows: list[dict[str, Any]]) -> str:
    lines = [f"## {TITLE}", "", f"Measured on {datetime.date.today().isoformat()} by `make bench` "
             f"(`python -m bench.handler`): {RUNS} warm calls of `lambda_handler` per event, 1 interpreter thread, "
             "Powertools logging and metrics on, tracing off. Own work = request p50 − model p50. "
             "(The \"Function path\" lines of the sections above also count the emulator's transport of the event, "
             "a 150 kB body for leukemia, and are dated with their own run.)", "",
             "| task | event | body kB | request p50 / p95 ms | model p50 ms | handler's own work p50 ms |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | `{r['event']}` | {r['body_kb']:.1f} | {r['request_p50']:.2f} / "
                     f"{r['request_p95']:.2f} | {r['model_p50']:.2f} | **{r['own_p50']:.2f}** |")
    return "\n".join(lines)


def main() -> int:
    rows = measure()
    if not rows:
        print("no events in events/generated: run `make setup` with ../shared/data first")
        return 1
    text = BENCHMARKS.read_text() if BENCHMARKS.is_file() else "# Benchmarks\n"
    BENCHMARKS.write_text(replace_section(text, TITLE, section(rows)))
    print(f"BENCHMARKS.md: section '{TITLE}' written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
