"""Heatmap overlays as base64 PNG: histopathology tile grids and class-activation maps share this.

No matplotlib in a function image: a small blue→cyan→yellow→red colour ramp is enough.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

# (position, RGB) stops of the ramp; probabilities 0 → blue, 1 → red.
_STOPS = np.array([0.0, 0.35, 0.65, 1.0])
_COLOURS = np.array([[0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0]], dtype=np.float64)


def colour_ramp(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to RGB uint8 (any shape → shape + (3,))."""
    v = np.clip(np.nan_to_num(values, nan=0.0), 0.0, 1.0)
    channels = [np.interp(v, _STOPS, _COLOURS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1).round().astype(np.uint8)


def overlay_png_base64(image: Image.Image, heat: np.ndarray, *, max_side: int = 1024, alpha: float = 0.45,
                       smooth: bool = False) -> str:
    """Blend ``heat`` (2-D, values in [0, 1], NaN = not scored: left uncoloured) over ``image``.

    The overlay is at most ``max_side`` pixels on its longer side, keeping responses well under
    API Gateway's payload limit. ``smooth`` upsamples bilinearly (activation maps); otherwise each
    heat cell stays a crisp block (tile grids).
    """
    scale = min(1.0, max_side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    base = np.asarray(image.convert("RGB").resize(size, Image.BILINEAR), dtype=np.float64)
    heat = np.asarray(heat, dtype=np.float64)
    scored = ~np.isnan(heat)
    resample = Image.BILINEAR if smooth else Image.NEAREST
    values = np.asarray(Image.fromarray(np.nan_to_num(heat, nan=0.0).astype(np.float32), mode="F").resize(size, resample))
    mask = np.asarray(Image.fromarray(scored.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0
    colours = colour_ramp(values).astype(np.float64)
    blended = np.where(mask[..., None], (1 - alpha) * base + alpha * colours, base)
    buffer = io.BytesIO()
    # zlib level 1: 2-3% larger than the default 6, in under half the time (0.17 → 0.07 s for a 768² map)
    Image.fromarray(blended.round().astype(np.uint8)).save(buffer, format="PNG", compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
