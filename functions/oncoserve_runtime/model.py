"""LiteRT model session: load once per container, verify the artifact, run inference.

``model.json`` beside ``model.tflite`` is the serving contract (labels, preprocessing,
thresholds, metrics, sha256), read into the function's typed contract at cold start. A missing,
malformed or incomplete contract, or a missing or tampered artifact, makes the function answer
503 ``model_unavailable`` on every request instead of a 500 on the first request that reads the
broken key.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .digests import sha256_of
from .errors import ModelUnavailableError
from .typed_json import ContractError, from_json

try:  # LiteRT, the successor of tflite-runtime (same Interpreter API)
    from ai_edge_litert.interpreter import Interpreter
except ImportError:  # pragma: no cover - fallback for images that still ship tflite-runtime
    from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

METADATA_FILE = "model.json"


def default_num_threads() -> int:
    """``ONCOSERVE_NUM_THREADS`` or every CPU Lambda gives us (vCPUs scale with memory)."""
    configured = os.environ.get("ONCOSERVE_NUM_THREADS", "").strip()
    if configured:
        return max(1, int(configured))
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ModelBundle:
    """A verified ``.tflite`` artifact, its typed contract and a ready LiteRT signature runner.

    ``contract`` is the typed model.json (``contract_type`` from :func:`contract.contract_type`);
    ``metadata`` the same document as parsed JSON, for answers that pass parts of it on.
    """

    def __init__(self, model_dir: Path, contract_type: type, *, num_threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        metadata_path = self.model_dir / METADATA_FILE
        if not metadata_path.is_file():
            raise ModelUnavailableError("model_unavailable", "This model has not been trained and committed yet.")
        self.metadata: dict[str, Any] = json.loads(metadata_path.read_text())
        try:
            self.contract = from_json(contract_type, self.metadata)
        except ContractError as exc:
            raise ModelUnavailableError("model_unavailable", f"The model's contract (model.json) is invalid: {exc}.")
        artifact = self.contract.artifact
        model_path = self.model_dir / artifact.file
        if not model_path.is_file():
            raise ModelUnavailableError("model_unavailable", "The model artifact is missing from this image.")
        self.sha256 = sha256_of(model_path)
        if self.sha256 != artifact.sha256:
            raise ModelUnavailableError(
                "model_unavailable", "The model artifact does not match its recorded sha256; refusing to serve it."
            )
        self.num_threads = num_threads or default_num_threads()
        self._interpreter = Interpreter(model_path=str(model_path), num_threads=self.num_threads)
        self._runner = self._interpreter.get_signature_runner()
        self._input_name = next(iter(self._runner.get_input_details()))
        # The interpreter is not thread-safe; Lambda runs one request per container, the local
        # threaded server may not.
        self._lock = threading.Lock()

    @property
    def info(self) -> dict[str, str]:
        """What every response says about the model that answered."""
        return {"name": self.contract.name, "version": self.contract.version, "sha256": self.sha256}

    @property
    def labels(self) -> list[str]:
        return list(self.contract.output.labels)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch; returns every output of the serving signature by name."""
        with self._lock:
            outputs = self._runner(**{self._input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return {name: np.asarray(value) for name, value in outputs.items()}

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The class-probability output of one batch (see :meth:`class_output`)."""
        return self.class_output(self.run(batch))

    def class_output(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        """Of :meth:`run`'s outputs, the class probabilities: named in ``model.json`` ``output.tensor``,
        else the only output that is not an out-of-distribution score (``ood…``)."""
        name = getattr(self.contract.output, "tensor", None)
        return outputs[name] if name else next(v for k, v in outputs.items() if not k.startswith("ood"))


class ModelHandle:
    """Load a :class:`ModelBundle` once per container; remember a failure instead of raising at import."""

    def __init__(self, model_dir: Path | str, contract_type: type) -> None:
        self.model_dir = Path(os.environ.get("ONCOSERVE_MODEL_DIR") or model_dir)
        self.contract_type = contract_type
        self._bundle: ModelBundle | None = None
        self._error: ModelUnavailableError | None = None

    def warm(self) -> None:
        """Try to load now (cold start); a failure is kept and reported on each request."""
        try:
            self.get()
        except ModelUnavailableError:
            pass

    def get(self) -> ModelBundle:
        if self._bundle is None and self._error is None:
            try:
                self._bundle = ModelBundle(self.model_dir, self.contract_type)
            except ModelUnavailableError as exc:
                self._error = exc
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                self._error = ModelUnavailableError("model_unavailable", f"The model could not be loaded: {exc}.")
        if self._error is not None:
            raise self._error
        assert self._bundle is not None
        return self._bundle
