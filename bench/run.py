"""``make bench``: per shipped model, LiteRT (float32 / float16 / int8) against TensorFlow and ONNX
Runtime running the *same* trained graph, on the same input, on this machine.

Measured per engine and variant: cold start (new process → first answer; median of 5), warm latency
p50/p95/p99 over 200 single requests with 1 thread and with all threads, peak RSS, file size and the
task's test metric. Per function: the handler's own overhead through the real path (Runtime
Interface Emulator + awslambdaric) next to model time, the histopathology 2048x2048 region time, and a
CPU bound (model FLOPs ÷ measured single-core peak FLOP/s). Writes ``build/bench/bench.json`` and
``BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.sections import split_sections
from contract.registry import TASKS
from train import core

OUT = core.BUILD_DIR / "bench"
COLD_RUNS = 5
WARM_REQUESTS = 200


# ------------------------------------------------------------------------------------------------
# Test data and metric per task (the same splits the model cards report)
# ------------------------------------------------------------------------------------------------

def task_data(task: str) -> tuple[np.ndarray, Callable[[dict[str, np.ndarray]], float], str]:
    """(test inputs, metric(outputs by name) → float, metric name)."""
    from sklearn.metrics import roc_auc_score

    if task == "leukemia":
        from train.leukemia.data import load_golub

        _, _, test = load_golub()
        return test.expression.astype(np.float32), lambda o: float((first(o).argmax(1) == test.labels).mean()), "accuracy"
    if task == "breast_survival":
        from lifelines.utils import concordance_index

        from train.breast_survival.data import load_metabric
        from train.breast_survival.graph import serving_rows

        t = load_metabric().subset("test")  # expression-only groups (the clinical columns at their fill values)
        fill = np.array([f["fill_value"] for f in core.read_model_json("breast_survival")["input"]["clinical"]["fields"]])
        return (serving_rows(t, fill),
                lambda o: float(concordance_index(t.months, -o["membership"].argmax(1), t.os_event)), "Harrell C (OS)")
    if task == "histopathology":
        from train.histopathology.data import load_splits

        x, y, _ = load_splits()["test"]
        return x.astype(np.float32), lambda o: float(roc_auc_score(y, first(o)[:, 1])), "ROC-AUC"
    if task == "brain":
        from train.brain.data import load_data

        training = core.read_model_json("brain")["training"]  # at the shipped model's input size, on its sources
        data = load_data(training["backbone"], training.get("sources", core.Release.load("brain").options.get("sources")))
        rows = data["split"] == "test"
        return (data["images"][rows].astype(np.float32),
                lambda o: float(roc_auc_score(data["tumor"][rows], o["tumor"][:, 1])), "tumour ROC-AUC")
    if task == "skin":
        from train.imaging import load_images, load_manifest
        from oncoserve_runtime import ImagePreprocessing

        manifest = load_manifest("skin")
        rows = manifest["split"].to_numpy() == "test"
        # The size the shipped model was trained at (224 px up to v1.4.0, 256 px since v1.5.0)
        served = ImagePreprocessing.from_metadata(core.read_model_json("skin")["preprocessing"]["in_runtime"])
        images = load_images("skin", list(manifest["path"]), served)
        y = (manifest["label"].to_numpy() == "melanoma").astype(int)[rows]
        return images[rows].astype(np.float32), lambda o: float(roc_auc_score(y, o["melanoma"][:, 1])), "ROC-AUC"
    raise ValueError(task)


def first(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs[sorted(outputs)[0]]


# ------------------------------------------------------------------------------------------------
# Engines in-process (for accuracy) and in fresh processes (for time and memory)
# ------------------------------------------------------------------------------------------------

def run_batched(predict: Callable[[np.ndarray], dict[str, np.ndarray]], x: np.ndarray, batch: int = 64) -> dict[str, np.ndarray]:
    parts = [predict(x[i : i + batch]) for i in range(0, len(x), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def in_process(engine: str, model: str) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    if engine == "litert":
        from convert.convert import run_tflite

        content = Path(model).read_bytes()
        return lambda x: run_tflite(content, x)
    if engine == "tensorflow":
        import tensorflow as tf

        loaded = tf.saved_model.load(model)  # keep a reference: its variables die with it
        return lambda x: {k: v.numpy() for k, v in _as_dict(loaded.serve(tf.constant(x))).items()}
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name, outputs = session.get_inputs()[0].name, [o.name for o in session.get_outputs()]
    return lambda x: dict(zip(outputs, session.run(None, {name: x})))


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, (list, tuple)):
        return {f"output_{i}": v for i, v in enumerate(value)}
    return {"output_0": value}


def child(engine: str, model: str, inputs: Path, mode: str, threads: int = 0) -> dict[str, Any]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(core.REPO_ROOT)}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "bench.engine", engine, model, str(inputs), mode, str(threads),
                          str(WARM_REQUESTS)], capture_output=True, text=True, env=env, cwd=core.REPO_ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{engine} {mode} failed: {out.stderr[-800:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - started
    return result


# ------------------------------------------------------------------------------------------------
# Model artifacts: the LiteRT variants and the ONNX export of the same SavedModel
# ------------------------------------------------------------------------------------------------

def artifacts(task: str, x: np.ndarray, workdir: Path) -> dict[str, tuple[str, str]]:
    """name → (engine, path). Needs build/<task>/saved_model from `make train-<task>`."""
    import tensorflow as tf

    saved = core.build_dir(task) / "saved_model"
    if not (saved / "saved_model.pb").is_file():
        raise FileNotFoundError(f"{saved} missing: run `make train-{task.replace('_', '-')}` first")
    found: dict[str, tuple[str, str]] = {}
    calibration = x[:100]
    for variant in ("float32", "float16", "int8"):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if variant != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if variant == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if variant == "int8":
            converter.representative_dataset = lambda: ([row[np.newaxis]] for row in calibration)
        path = workdir / f"{task}_{variant}.tflite"
        path.write_bytes(converter.convert())
        found[f"litert_{variant}"] = ("litert", str(path))
    found["tensorflow"] = ("tensorflow", str(saved))
    onnx = workdir / f"{task}.onnx"
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(saved), "--output", str(onnx),
                    "--opset", "17"], check=True, capture_output=True)
    found["onnxruntime"] = ("onnxruntime", str(onnx))
    return found


def model_flops(task: str) -> float:
    """FLOPs of one inference (batch 1), counted from the shipped TFLite graph: 2 x multiply-adds of
    convolutions, depthwise convolutions, fully connected layers and batch matmuls (the rest is
    element-wise and negligible)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    metadata = core.read_model_json(task)
    # Without the XNNPACK delegate: it keeps the shapes of the tensors it owns at their allocation values.
    interpreter = Interpreter(model_path=str(core.model_json_path(task).parent / metadata["artifact"]["file"]),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()  # batch 1: the input signature's batch dimension defaults to 1
    # One inference first: shapes that depend on the batch inside the graph (skin's 8 views) are
    # only known once it has run.
    entry = interpreter.get_input_details()[0]
    interpreter.set_tensor(entry["index"], np.zeros(entry["shape"], entry["dtype"]))
    interpreter.invoke()
    shapes = {t["index"]: list(t["shape"]) for t in interpreter.get_tensor_details()}
    flops = 0.0
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the only op-level view LiteRT exposes
        name, inputs, outputs = op["op_name"], list(op["inputs"]), list(op["outputs"])
        out = shapes.get(outputs[0], []) if outputs else []
        weights = shapes.get(inputs[1], []) if len(inputs) > 1 else []
        if name == "CONV_2D" and len(out) == 4 and len(weights) == 4:
            flops += 2.0 * np.prod(out) * np.prod(weights[1:])  # weights: [out_c, kh, kw, in_c]
        elif name == "DEPTHWISE_CONV_2D" and len(out) == 4 and len(weights) == 4:
            flops += 2.0 * np.prod(out) * weights[1] * weights[2]
        elif name == "FULLY_CONNECTED" and out and len(weights) == 2:
            flops += 2.0 * np.prod(out) * weights[1]
        elif name == "BATCH_MATMUL" and out and weights:
            flops += 2.0 * np.prod(out) * shapes.get(inputs[0], [1])[-1]
    return float(flops)


def core_peak_flops() -> float:
    """Single-core float32 matrix-multiply throughput (NumPy/OpenBLAS, one thread)."""
    code = ("import numpy as np, time; a=np.random.rand(1024,1024).astype('float32'); a@a; "
            "t=time.perf_counter(); [a@a for _ in range(20)]; print(20*2*1024**3/(time.perf_counter()-t))")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)


# ------------------------------------------------------------------------------------------------
# The function path: handler overhead under the emulator, histopathology region
# ------------------------------------------------------------------------------------------------

def stage_breakdown(task: str, event: dict[str, Any]) -> dict[str, float] | None:
    """In-process median ms of each request stage for an image event: where the overhead goes."""
    body = json.loads(event["body"])
    if "image" not in body:
        return None
    from contract.apps import load_function_app
    from oncoserve_runtime import ImagePreprocessing, ModelBundle, decode_image, parse_json_body
    from oncoserve_runtime.inputs import _decode_base64_image

    contract_type = load_function_app(task).MODEL.contract_type  # the function's own reading of model.json
    model = ModelBundle(core.function_dir(task) / "model", contract_type, num_threads=1)
    preprocessing = ImagePreprocessing.for_model(model)
    stages = {
        "parse_json": lambda: parse_json_body(event),
        "base64_decode": lambda: _decode_base64_image(body["image"]),
        "image_decode": lambda: decode_image(_decode_base64_image(body["image"])),
    }
    image = decode_image(_decode_base64_image(body["image"]))
    stages["resize_and_scale"] = lambda: preprocessing.to_array(image)
    batch = preprocessing.to_array(image)
    stages["model"] = lambda: model.run(batch)
    timings = {}
    for name, stage in stages.items():
        stage()
        runs = []
        for _ in range(30):
            started = time.perf_counter()
            stage()
            runs.append((time.perf_counter() - started) * 1000.0)
        timings[name] = float(np.median(runs))
    timings["image_decode"] -= timings["base64_decode"]  # decode_image ran on freshly decoded bytes
    return timings


def function_path(task: str, model_p50_ms: float) -> dict[str, Any]:
    from local.emulator import EmulatedFunction
    from local.events import EVENTS_DIR
    from local.template import function_specs

    spec = next(s for s in function_specs() if s.task == task)
    generated = EVENTS_DIR / "generated" / task
    ok_events = sorted(p for p in generated.glob("ok_*.json") if not p.name.endswith(".body.json") and "region" not in p.name)
    if not ok_events:
        return {}
    event = json.loads(ok_events[0].read_text())
    result: dict[str, Any] = {"event": ok_events[0].name, "stages_ms": stage_breakdown(task, event)}
    # One thread: Lambda gives ~1 vCPU at the 1,769-2,048 MB these functions get.
    with EmulatedFunction(spec, 9700, env={"ONCOSERVE_NUM_THREADS": "1"}) as function:
        for _ in range(3):
            function.invoke(event)
        times = []
        for _ in range(30):
            started = time.perf_counter()
            answer = function.invoke(event)
            times.append((time.perf_counter() - started) * 1000.0)
            assert answer.get("statusCode") == 200, answer
        total = float(np.median(times))
        result.update(request_p50_ms=total, model_p50_ms=model_p50_ms, handler_overhead_ms=total - model_p50_ms,
                      overhead_ratio=(total - model_p50_ms) / model_p50_ms if model_p50_ms else None)
        region = generated / "ok_region_2048.json"
        if task == "histopathology" and region.is_file():
            region_event = json.loads(region.read_text())
            runs = []
            for _ in range(3):
                started = time.perf_counter()
                answer = function.invoke(region_event)
                runs.append(time.perf_counter() - started)
            body = json.loads(answer["body"])
            seconds = float(np.median(runs))
            result["region_2048"] = {"seconds": seconds, "tiles_scored": body["tiles"]["scored"],
                                     "patches_per_s": body["tiles"]["scored"] / seconds,
                                     "threads": 1}
    return result


# ------------------------------------------------------------------------------------------------

def bench_task(task: str, workdir: Path, peak: float) -> dict[str, Any]:
    print(f"== {task}", flush=True)
    x, metric, metric_name = task_data(task)
    inputs = workdir / f"{task}_input.npy"
    np.save(inputs, x[:1])
    engines = artifacts(task, x, workdir)
    flops = model_flops(task)
    metadata = core.read_model_json(task)
    results: dict[str, Any] = {"metric": metric_name, "flops": flops, "cpu_bound_ms": flops / peak * 1000.0,
                               "measured_on": time.strftime("%Y-%m-%d"), "core_peak_gflops": peak / 1e9,
                               "model": f"v{metadata['version']}, sha256 {metadata['artifact']['sha256'][:8]}",
                               "engines": {}}
    for name, (engine, path) in engines.items():
        size = sum(f.stat().st_size for f in Path(path).rglob("*")) if Path(path).is_dir() else Path(path).stat().st_size
        try:
            value = metric(run_batched(in_process(engine, path), x))
            colds = [child(engine, path, inputs, "cold") for _ in range(COLD_RUNS)]
            one = child(engine, path, inputs, "warm", threads=1)
            every = child(engine, path, inputs, "warm", threads=os.cpu_count() or 1)
        except RuntimeError as exc:  # e.g. an int8 graph that cannot run (reported, not fatal)
            results["engines"][name] = {"bytes": size, "failed": str(exc).splitlines()[0][:200]}
            print(f"  {name:16s} failed: {results['engines'][name]['failed']}", flush=True)
            continue
        results["engines"][name] = {
            "bytes": size, metric_name: value,
            "cold_start_s": float(np.median([c["process_wall_s"] for c in colds])),
            "peak_rss_mb": max(c["peak_rss_mb"] for c in colds + [one, every]),
            "warm_1_thread": {k: one[k] for k in ("p50_ms", "p95_ms", "p99_ms")},
            "warm_all_threads": {k: every[k] for k in ("p50_ms", "p95_ms", "p99_ms")},
        }
        print(f"  {name:16s} {size / 1e6:7.2f} MB  cold {results['engines'][name]['cold_start_s']:.2f} s  "
              f"p50 {one['p50_ms']:.2f} ms (1 thr) {every['p50_ms']:.2f} ms (all)  {metric_name} {value:.4f}", flush=True)
    shipped = metadata["artifact"]["variant"]
    results["shipped"] = f"litert_{shipped}"
    results["function"] = function_path(task, results["engines"][results["shipped"]]["warm_1_thread"]["p50_ms"])
    lite, tf_, ort_ = (results["engines"][k] for k in (results["shipped"], "tensorflow", "onnxruntime"))
    results["ratios"] = {
        "warm_p50_litert_over_tf": lite["warm_1_thread"]["p50_ms"] / tf_["warm_1_thread"]["p50_ms"],
        "warm_p50_litert_over_ort": lite["warm_1_thread"]["p50_ms"] / ort_["warm_1_thread"]["p50_ms"],
        "cold_start_litert_over_tf": lite["cold_start_s"] / tf_["cold_start_s"],
        "cold_start_litert_over_ort": lite["cold_start_s"] / ort_["cold_start_s"],
    }
    return results


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# OncoServe benchmarks", "",
        f"Machine: {report['machine']}. Generated by `make bench` (last run {report['date']}); each section says "
        "when it was measured, and a section the last run did not measure (`--rerun`) is kept from the previous "
        "file. Absolute times vary between machines, so compare the ratios. Cold start = new process → first answer (median of 5); warm = "
        "single requests, batch 1. CPU bound = model FLOPs ÷ the single-core peak (float32 matmul) measured in "
        "the same run, given per section because it varies from run to run.", "",
    ]
    for task, r in report["tasks"].items():
        if "kept" in r:
            lines += [r["kept"], ""]
            continue
        lines += [f"## {task}", ""]
        if "measured_on" in r:
            lines += [f"Measured on {r['measured_on']} ({r['model']}; core peak {r['core_peak_gflops']:.1f} GFLOP/s).", ""]
        lines += [f"Shipped: `{r['shipped']}`. FLOPs/inference: "
                  f"{r['flops'] / 1e6:.3g} MFLOP → CPU bound ≈ {r['cpu_bound_ms']:.3g} ms on one core at peak." if r["flops"] else
                  f"Shipped: `{r['shipped']}`.", "",
                  f"| engine | MB | cold start (s) | p50 / p95 / p99 ms, 1 thread | p50 / p95 / p99 ms, all threads | peak RSS (MB) | {r['metric']} |",
                  "|---|---|---|---|---|---|---|"]
        for name, e in r["engines"].items():
            if "failed" in e:
                lines.append(f"| {name} | {e['bytes'] / 1e6:.2f} | fails at inference: `{e['failed']}` | | | | |")
                continue
            one, every = e["warm_1_thread"], e["warm_all_threads"]
            lines.append(f"| {name} | {e['bytes'] / 1e6:.2f} | {e['cold_start_s']:.2f} | "
                         f"{one['p50_ms']:.2f} / {one['p95_ms']:.2f} / {one['p99_ms']:.2f} | "
                         f"{every['p50_ms']:.2f} / {every['p95_ms']:.2f} / {every['p99_ms']:.2f} | "
                         f"{e['peak_rss_mb']:.0f} | {e[r['metric']]:.4f} |")
        q = r["ratios"]
        lines += ["", f"Ratios (shipped LiteRT, 1 thread): warm p50 ÷ TF **{q['warm_p50_litert_over_tf']:.2f}**, "
                  f"÷ ORT **{q['warm_p50_litert_over_ort']:.2f}**; cold start ÷ TF **{q['cold_start_litert_over_tf']:.2f}**, "
                  f"÷ ORT **{q['cold_start_litert_over_ort']:.2f}**."]
        f = r.get("function") or {}
        if f:
            lines.append(f"Function path (RIE + awslambdaric, 1 thread, `{f['event']}`): request p50 {f['request_p50_ms']:.1f} ms, "
                         f"model p50 {f['model_p50_ms']:.2f} ms → handler overhead {f['handler_overhead_ms']:.1f} ms "
                         f"({f['overhead_ratio']:.0%} of model time).")
        if f.get("stages_ms"):
            lines.append("In-process stages (median ms, 1 thread): " + ", ".join(
                f"{name.replace('_', ' ')} {ms:.2f}" for name, ms in f["stages_ms"].items()) + ".")
        if f.get("region_2048"):
            g = f["region_2048"]
            lines.append(f"Region 2048×2048: {g['seconds']:.2f} s for {g['tiles_scored']} tiles "
                         f"({g['patches_per_s']:.0f} patches/s, {g['threads']} threads).")
        lines.append("")
    return "\n".join(lines) + "\n"


def previous_sections(text: str) -> dict[str, str]:
    """Each ``## task`` section of an earlier BENCHMARKS.md, verbatim. A section written before sections
    carried their own date gets the file's date and core peak, so a kept section always says when it was
    measured and what its CPU bound was divided by."""
    header, sections = split_sections(text)
    dated = re.search(r"make bench` on (\d{4}-\d{2}-\d{2}).*?\(([\d.]+) GFLOP/s", header, flags=re.DOTALL)
    for title, section in sections.items():
        body = section.split("\n\n", 1)[1] if "\n\n" in section else ""
        if dated and not body.startswith("Measured on"):
            sections[title] = f"## {title}\n\nMeasured on {dated.group(1)} (core peak {dated.group(2)} GFLOP/s).\n\n{body}"
    return sections


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tasks", nargs="*", default=list(TASKS))
    parser.add_argument("--rerun", nargs="*", default=["all"],
                        help="tasks to measure again (default all); others reuse build/bench/<task>.json")
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    peak = core_peak_flops()
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"{platform.python_implementation()} {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d"), "core_peak_gflops": peak / 1e9, "tasks": {}}
    written = core.REPO_ROOT / "BENCHMARKS.md"
    earlier = previous_sections(written.read_text()) if written.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            if not core.model_json_path(task).is_file():
                print(f"skip {task}: no committed model", flush=True)
                continue
            saved = OUT / f"{task}.json"
            if task not in args.rerun and "all" not in args.rerun:
                if saved.is_file():
                    earlier_run = report["tasks"][task] = json.loads(saved.read_text())  # measured on this machine
                    flops, run_peak = model_flops(task), earlier_run.setdefault("core_peak_gflops", peak / 1e9) * 1e9
                    earlier_run.update(flops=flops, cpu_bound_ms=flops / run_peak * 1000.0)
                    continue
                if task in earlier:  # a fresh checkout has no build/bench: keep the committed section
                    report["tasks"][task] = {"kept": earlier[task]}
                    continue
            report["tasks"][task] = bench_task(task, Path(tmp), peak)
            saved.write_text(json.dumps(report["tasks"][task], indent=2) + "\n")
    (OUT / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    # Sections other commands wrote (the load test's) stay as they are.
    others = [section for title, section in earlier.items() if title not in args.tasks]
    written.write_text(markdown(report) + "".join(f"\n{section}\n" for section in others))
    print(markdown(report))


if __name__ == "__main__":
    main()
