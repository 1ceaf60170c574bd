"""Convert a trained Keras model to TFLite, evaluate every variant through LiteRT, ship one.

The stage every image task runs (float32, float16 and int8, chosen by ``convert.choose_variant``)
and the float32-only one of the expression tasks. Figures are always the artifact's, never Keras'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from train.core.paths import function_dir


def tflite_outputs(content: bytes, images: np.ndarray, rows: np.ndarray | None = None, *,
                   per_call: int = 64) -> dict[str, np.ndarray]:
    """Every output of a TFLite model on ``images[rows]`` (a mask or row indices; all when None), about
    ``per_call`` rows per call."""
    from convert.convert import run_tflite

    index = np.arange(len(images)) if rows is None else (np.flatnonzero(rows) if rows.dtype == bool else rows)
    chunks = [run_tflite(content, images[chunk].astype(np.float32))
              for chunk in np.array_split(index, max(1, len(index) // per_call))]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def only_output(content: bytes, batch: np.ndarray) -> np.ndarray:
    """The one output of a TFLite model on ``batch`` (one call) besides its out-of-distribution score."""
    from convert.convert import run_tflite

    return next(v for k, v in run_tflite(content, batch.astype(np.float32)).items() if not k.startswith("ood"))


def artifact_entry(converted) -> dict[str, Any]:
    """model.json's ``artifact``: the file the function loads, its digest and its parity with Keras."""
    return {"file": "model.tflite", "sha256": converted.sha256, "bytes": len(converted.content),
            "variant": converted.variant, "max_abs_diff_vs_keras": converted.max_abs_diff}


def write_artifact(task: str, converted) -> None:
    converted.write(function_dir(task) / "model" / "model.tflite")


def convert_float32(task: str, model, samples: np.ndarray, *, float_bound: float = 1e-4):
    """The expression tasks' artifact: float32 only (kilobytes; quantising would buy nothing)."""
    from convert.convert import convert_model

    converted = convert_model(model, samples, variants=("float32",), float_bound=float_bound)["float32"]
    write_artifact(task, converted)
    print(f"TFLite float32: {len(converted.content)} bytes, max |Δ| vs Keras {converted.max_abs_diff:.2e}", flush=True)
    return converted


@dataclass
class ShippedVariant:
    name: str
    converted: dict[str, Any]  # variant → convert.ConvertedModel
    comparison: dict[str, dict[str, Any]]  # variant → its figures, as model.json's conversion.variants
    outputs: dict[str, Any]  # variant → what ``evaluate`` returned beside its figures

    @property
    def model(self):
        return self.converted[self.name]

    def record(self, metric: str, timing: str) -> dict[str, Any]:
        """model.json's ``conversion``: every variant's figures, the one shipped and the rule."""
        from convert.convert import shipping_rule

        return {"variants": self.comparison, "shipped": self.name, "rule": shipping_rule(metric, timing)}


def convert_and_choose(task: str, model, samples: np.ndarray, *,
                       evaluate: Callable[[bytes], tuple[dict[str, float], Any]], metric_keys: tuple[str, ...],
                       latency_key: str, latency_batch: np.ndarray, latency_runs: int = 7,
                       float_bound: float = 1e-3, batch_size: int = 64) -> ShippedVariant:
    """Convert to every variant; ``evaluate(content)`` gives each its figures (``metric_keys`` among
    them) and outputs; a variant that fails at inference is recorded, not shipped. Every variant that
    ran is timed on ``latency_batch`` (LiteRT, one thread); the shipping rule picks one, written as
    ``functions/<task>/model/model.tflite``."""
    from convert.convert import choose_variant, convert_model, eligible_variants, tflite_latency_ms

    converted = convert_model(model, samples, variants=("float32", "float16", "int8"), float_bound=float_bound,
                              batch_size=batch_size)
    comparison, outputs = {}, {}
    for variant, candidate in converted.items():
        try:
            figures, outputs[variant] = evaluate(candidate.content)
        except RuntimeError as exc:  # e.g. int8 colour constancy dividing by a zero-quantised illuminant
            comparison[variant] = {**candidate.summary(), "failed": str(exc).splitlines()[0]}
            print(f"{variant}: fails at inference ({comparison[variant]['failed']}); not eligible", flush=True)
            continue
        comparison[variant] = {**candidate.summary(), **figures}
        print(f"{variant}: {len(candidate.content):,} bytes, " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()),
              flush=True)
    eligible = eligible_variants(comparison, metric_keys)
    for variant, figures in comparison.items():
        if "failed" not in figures:
            figures[latency_key] = tflite_latency_ms(converted[variant].content, latency_batch, runs=latency_runs)
    shipped = choose_variant(comparison, eligible, latency_key)
    write_artifact(task, converted[shipped])
    print(f"shipping {shipped}", flush=True)
    return ShippedVariant(shipped, converted, comparison, outputs)
