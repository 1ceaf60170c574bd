"""Class-activation maps from a model that outputs them (brain, skin): normalise and overlay.

The TFLite graph already applies the linear head to every cell of the last feature map, so the
positive class's logit map *is* the CAM (Zhou et al. 2016); no gradients are needed on Lambda.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .heatmaps import overlay_png_base64


def normalise_cam(logit_map: np.ndarray) -> np.ndarray:
    """Keep positive evidence, scale to [0, 1] (a flat map stays all zero)."""
    positive = np.maximum(np.asarray(logit_map, dtype=np.float64), 0.0)
    peak = positive.max()
    return positive / peak if peak > 0 else positive


def cam_overlay(image: Image.Image, logit_map: np.ndarray) -> dict[str, object]:
    """The ``explanation`` field of a response: the heatmap PNG and where its peak is."""
    cam = normalise_cam(logit_map)
    row, col = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return {
        "method": "class activation map (linear head applied to the last feature map)",
        "grid": list(cam.shape),
        "peak_cell": [int(row), int(col)],
        "heatmap_png": overlay_png_base64(image, cam, smooth=True, max_side=512),
    }
