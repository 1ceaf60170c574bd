"""Image → model input, through ``keras-image-helper``, identically in training and serving.

Training code imports this module (``train/`` puts ``functions/`` on ``sys.path``), so the resize
filter and the scaling that the model saw are, by construction, the ones it gets on Lambda. The
spec lives in each model's ``model.json`` under ``preprocessing.in_runtime``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from keras_image_helper import create_preprocessor
from PIL import Image

# Scalings by name, applied to float32 RGB in 0..255 (keras-image-helper hands us that).
SCALINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,  # the model scales in-graph (e.g. a Rescaling layer)
    "unit": lambda x: x / 255.0,
    "tf": lambda x: x / 127.5 - 1.0,  # MobileNetV2 / Xception / Inception convention
}


@dataclass(frozen=True)
class ImagePreprocessing:
    """Resize to ``size`` (width, height) with keras-image-helper's filter, then scale."""

    size: tuple[int, int]
    scaling: str = "none"

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r}; expected one of {sorted(SCALINGS)}")

    @classmethod
    def from_metadata(cls, spec: dict[str, Any]) -> "ImagePreprocessing":
        """Build from ``model.json`` ``preprocessing.in_runtime`` (``{"resize": [w, h], "scaling": …}``)."""
        width, height = spec["resize"]
        return cls(size=(int(width), int(height)), scaling=spec.get("scaling", "none"))

    @classmethod
    def from_steps(cls, steps: Any) -> "ImagePreprocessing":
        """Build from the typed contract's ``preprocessing.in_runtime`` (``contract.ImageSteps``)."""
        width, height = steps.resize
        return cls(size=(width, height), scaling=steps.scaling)

    def to_metadata(self) -> dict[str, Any]:
        return {
            "library": "keras-image-helper",
            "resize": list(self.size),
            "resize_filter": "nearest",
            "scaling": self.scaling,
            "color": "RGB",
        }

    @classmethod
    def for_model(cls, model: Any) -> "ImagePreprocessing":
        """The preprocessing a served model was trained with (its ``model.json``)."""
        return cls.from_steps(model.contract.preprocessing.in_runtime)

    def to_array(self, image: Image.Image) -> np.ndarray:
        """One RGB image → float32 array of shape (1, height, width, 3)."""
        helper = create_preprocessor(SCALINGS[self.scaling], target_size=self.size)
        return np.ascontiguousarray(helper.convert_to_tensor(image), dtype=np.float32)
