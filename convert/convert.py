"""Keras 3 → TFLite, float32 and quantized variants, each checked against the Keras model.

Path: ``model.export(dir, format="tf_saved_model")`` then ``TFLiteConverter.from_saved_model``
(the route that keeps a dynamic batch dimension and named signature outputs with Keras 3,
keras-team/keras#19108). The float32 variant must match Keras within ``bound`` (max absolute
difference over the given samples) or conversion fails; quantized variants report their delta and
are judged by the task on accuracy.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

VARIANTS = ("float32", "float16", "int8")


# Histopathology's score differs by 2.8e-4 (relative) between Keras and float32 TFLite: the backbone's
# float differences, ~1e-5 per feature, amplified; a conversion error moves it by orders more.
OOD_RELATIVE_BOUND = 1e-3
# Below this an out-of-distribution score is "at a training sample" (a nearest-neighbour distance of a
# training image is 0 up to float32 rounding): its difference is measured against this, not against itself.
OOD_SCORE_FLOOR = 1e-3


class ParityError(RuntimeError):
    """The converted model does not compute what the Keras model computes."""


@dataclass(frozen=True)
class ConvertedModel:
    variant: str
    content: bytes
    max_abs_diff: float
    ood_max_rel_diff: float | None = None  # the out-of-distribution score's, relative (``parity``)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.content)
        return path

    def summary(self) -> dict[str, Any]:
        summary = {"variant": self.variant, "bytes": len(self.content), "sha256": self.sha256,
                   "max_abs_diff_vs_keras": float(self.max_abs_diff)}
        if self.ood_max_rel_diff is not None:
            summary["ood_score_max_rel_diff_vs_keras"] = float(self.ood_max_rel_diff)
        return summary


def run_tflite(content: bytes, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Run a TFLite flatbuffer on ``batch`` with LiteRT (what Lambda runs), outputs by name."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content, num_threads=1)
    runner = interpreter.get_signature_runner()
    input_name = next(iter(runner.get_input_details()))
    return {k: np.asarray(v) for k, v in runner(**{input_name: batch.astype(np.float32)}).items()}


def _keras_outputs(model: Any, batch: np.ndarray) -> dict[str, np.ndarray]:
    """Keras outputs by the names the SavedModel signature gives them: dict keys, else output_0, …"""
    outputs = model(batch, training=False)
    if isinstance(outputs, dict):
        return {name: np.asarray(value) for name, value in outputs.items()}
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return {f"output_{i}": np.asarray(value) for i, value in enumerate(outputs)}


def parity(model: Any, content: bytes, samples: np.ndarray, batch_size: int = 64,
           scope: str = "ood") -> tuple[float, float | None]:
    """(the largest absolute difference between Keras and TFLite outputs on ``samples``, the largest
    relative one of the outputs named ``scope``… — None without them). The out-of-distribution score
    is unbounded and amplifies the backbone's float differences (whitened, squared): it keeps a
    relative precision, not an absolute one."""
    worst, worst_scope = 0.0, None
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size].astype(np.float32)
        expected, got = _keras_outputs(model, batch), run_tflite(content, batch)
        if set(expected) != set(got):
            raise ParityError(f"output names differ: Keras {sorted(expected)}, TFLite {sorted(got)}")
        for name, value in expected.items():
            expected_value = value.astype(np.float64)
            difference = np.abs(expected_value - got[name].astype(np.float64))
            if name.startswith(scope):
                relative = float(np.max(difference / np.maximum(np.abs(expected_value), OOD_SCORE_FLOOR)))
                worst_scope = max(worst_scope or 0.0, relative)
            else:
                worst = max(worst, float(np.max(difference)))
    return worst, worst_scope


def convert_model(
    model: Any,
    samples: np.ndarray,
    *,
    variants: Iterable[str] = ("float32",),
    float_bound: float = 1e-4,
    representative_count: int = 200,
    batch_size: int = 64,
    float_scope: str = "ood",
) -> dict[str, ConvertedModel]:
    """Convert ``model`` into each variant and measure it against Keras on ``samples``, ``batch_size``
    at a time (less for a graph that multiplies its batch inside, e.g. one that averages 8 views).

    Raises
    ------
    ParityError
        The float32 variant differs from Keras by more than ``float_bound``, or its out-of-distribution
        score (outputs named ``float_scope``…) by more than ``OOD_RELATIVE_BOUND`` relative.
    ValueError
        An unknown variant name.
    """
    import tensorflow as tf

    converted: dict[str, ConvertedModel] = {}
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = Path(tmp) / "saved_model"
        model.export(str(saved_model), format="tf_saved_model", verbose=False)
        for variant in variants:
            if variant not in VARIANTS:
                raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
            if variant == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            elif variant == "int8":
                # Dynamic-range weights + int8 activations calibrated on real samples; float I/O
                # keeps the serving contract identical across variants.
                calibration = samples[:representative_count].astype(np.float32)
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([row[np.newaxis]] for row in calibration)
                float_nodes = float_scope_nodes(converted, float_scope)
                if float_nodes:
                    content = quantized_keeping_float(tf, converter, calibration, float_nodes)
                    converted[variant] = ConvertedModel(variant, content, *parity(model, content, samples, batch_size, float_scope))
                    continue
            content = converter.convert()
            converted[variant] = ConvertedModel(variant, content, *parity(model, content, samples, batch_size, float_scope))
    float32 = converted.get("float32")
    if float32 and float32.max_abs_diff > float_bound:
        raise ParityError(f"float32 TFLite differs from Keras by {float32.max_abs_diff:.3g} > {float_bound:g}")
    if float32 and (float32.ood_max_rel_diff or 0.0) > OOD_RELATIVE_BOUND:
        raise ParityError(f"float32 TFLite's {float_scope} score differs from Keras by {float32.ood_max_rel_diff:.3g} "
                          f"(relative) > {OOD_RELATIVE_BOUND:g}")
    return converted


def float_scope_nodes(converted: dict[str, ConvertedModel], scope: str) -> list[str]:
    """Output tensor names of the float32 variant's operations in Keras layers named ``scope``…, and
    of the signature outputs named so (the last operation is fused into the output tensor)."""
    from ai_edge_litert.interpreter import Interpreter

    if "float32" not in converted:
        return []
    interpreter = Interpreter(model_content=converted["float32"].content)
    names = [t["name"] for t in interpreter.get_tensor_details() if f"/{scope}" in t["name"]]
    if not names:
        return []
    outputs = interpreter.get_signature_runner().get_output_details()
    by_index = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return names + [by_index[d["index"]] for key, d in outputs.items() if key.startswith(scope)]


def quantized_keeping_float(tf, converter, calibration: np.ndarray, float_nodes: list[str]) -> bytes:
    """int8 everywhere but ``float_nodes`` (TFLite's selective quantisation, via its debugger)."""
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([row[np.newaxis]] for row in calibration),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_nodes))
    return debugger.get_nondebug_quantized_model()


def tflite_latency_ms(content: bytes, batch: np.ndarray, *, threads: int = 1, runs: int = 7) -> float:
    """Median wall time of one inference on ``batch`` with LiteRT (after one warm-up run)."""
    import time

    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content, num_threads=threads).get_signature_runner()
    input_name = next(iter(runner.get_input_details()))
    batch = batch.astype(np.float32)
    runner(**{input_name: batch})
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        runner(**{input_name: batch})
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


# The shipping rule every image task uses (issue: "keeps AUC within 0.005 of float and is fastest").
METRIC_BOUND = 0.005
LATENCY_TOLERANCE = 0.10


def eligible_variants(comparison: dict[str, dict[str, Any]], metric_keys: list[str] | tuple[str, ...], *,
                      bound: float = METRIC_BOUND) -> list[str]:
    """The shipping rule's first half: variants that ran and keep every metric within ``bound`` of
    float32 (``choose_variant`` then picks one of them)."""
    reference = comparison["float32"]
    return [variant for variant, figures in comparison.items()
            if "failed" not in figures and all(abs(figures[k] - reference[k]) <= bound for k in metric_keys)]


def choose_variant(comparison: dict[str, dict[str, Any]], eligible: list[str], latency_key: str, *,
                   latency_tolerance: float = LATENCY_TOLERANCE) -> str:
    """The shipping rule's second half: the smallest eligible variant among those within
    ``latency_tolerance`` of the fastest. Latency alone is not a stable choice: under XNNPACK on
    x86 float16 weights are dequantised and run the float32 kernels, so the two time a few per cent
    apart in either order from run to run; the smaller file loads faster at a cold start."""
    fastest = min(comparison[v][latency_key] for v in eligible)
    near_fastest = [v for v in eligible if comparison[v][latency_key] <= fastest * (1 + latency_tolerance)]
    return min(near_fastest, key=lambda v: comparison[v]["bytes"])


def shipping_rule(metric: str, timing: str) -> str:
    """The rule above in words, for model.json and the model card."""
    return (f"smallest variant within {LATENCY_TOLERANCE:.0%} of the fastest ({timing}) among those whose {metric} "
            f"is within {METRIC_BOUND} of float32")
