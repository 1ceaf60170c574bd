"""One engine in a fresh process: ``python -m bench.engine ENGINE MODEL INPUT.npy MODE [THREADS] [N]``.

ENGINE: litert | tensorflow | onnxruntime. MODE ``cold``: import, load and first inference, timed
from process start; ``warm``: N single-request latencies after a warm-up. Prints one JSON line,
with the process's peak resident memory. A fresh process per measurement keeps engines (and
TensorFlow's thread pools, fixed at start) from interfering.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

STARTED = time.perf_counter()


def load(engine: str, model: str, threads: int | None):
    if engine == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=model, num_threads=threads or os.cpu_count()).get_signature_runner()
        name = next(iter(runner.get_input_details()))
        return lambda x: runner(**{name: x})
    if engine == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        loaded = tf.saved_model.load(model)  # keep a reference: its variables die with it
        return lambda x: loaded.serve(tf.constant(x))
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})
    raise ValueError(engine)


def main() -> None:
    import numpy as np

    engine, model, inputs, mode = sys.argv[1:5]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "0" else None
    count = int(sys.argv[6]) if len(sys.argv) > 6 else 200
    sample = np.load(inputs).astype(np.float32)[:1]
    run = load(engine, model, threads)
    run(sample)
    result: dict[str, object] = {"cold_start_s": time.perf_counter() - STARTED}
    if mode == "warm":
        for _ in range(10):
            run(sample)
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            run(sample)
            latencies.append((time.perf_counter() - started) * 1000.0)
        p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
        result.update(p50_ms=float(p50), p95_ms=float(p95), p99_ms=float(p99), requests=count)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def peak_rss_mb() -> float:
    """This process's peak resident memory since exec (VmHWM). ru_maxrss would also count the
    parent's pages the child held between fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


if __name__ == "__main__":
    main()
