"""EfficientNet-Lite0 / Lite2 in Keras 3 (any backend), with ImageNet weights from the NumPy archives
in ``../shared/weights`` (torch ``state_dict`` names and layouts; see their PROVENANCE.md).

EfficientNet-B0's blocks without squeeze-and-excitation, ReLU6 everywhere, stem (32) and head (1280)
fixed when scaling, BatchNorm epsilon 1e-3, TF "SAME" padding, no conv biases. Layers are named as
``keras.applications.EfficientNetB0`` names them (``block6a_expand_conv`` …), so the rest of
``train/`` can address stages the same way. Inputs are RGB already scaled to (x − 127) / 128.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

# Per stage: kernel, stride of the first block, expansion, output channels, repeats (B0 / Lite0).
STAGES = [(3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3), (5, 1, 6, 112, 3),
          (5, 2, 6, 192, 4), (3, 1, 6, 320, 1)]
VARIANTS = {"lite0": {"width": 1.0, "depth": 1.0, "size": 224}, "lite2": {"width": 1.1, "depth": 1.2, "size": 260}}
STEM, HEAD = 32, 1280
BN_EPSILON = 1e-3
INPUT_MEAN, INPUT_SCALE = 127.0, 128.0  # tensorflow/tpu's Lite preprocessing (MEAN_RGB, STDDEV_RGB)


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor) if rounded < 0.9 * scaled else int(rounded)


def block_plan(variant: str) -> list[dict[str, Any]]:
    """Every MBConv block in order: stage, letter, kernel, stride, expansion, input and output channels.
    The first and last stages are never deepened (Lite's fixed stem and head)."""
    width, depth = VARIANTS[variant]["width"], VARIANTS[variant]["depth"]
    plan, channels = [], STEM
    for number, (kernel, stride, expand, out, repeats) in enumerate(STAGES, start=1):
        out = round_filters(out, width)
        if 1 < number < len(STAGES):
            repeats = int(math.ceil(depth * repeats))
        for i in range(repeats):
            plan.append({"stage": number, "letter": "abcdefghij"[i], "kernel": kernel, "stride": stride if i == 0 else 1,
                         "expand": expand, "in": channels, "out": out})
            channels = out
    return plan


def build(variant: str, *, include_top: bool = False, weights: str | Path | None = None,
          input_shape: tuple[int, int, int] | None = None, name: str | None = None):
    """The network; ``weights`` is an ``.npz`` of the torch ``state_dict`` (or None: random)."""
    import keras
    from keras import layers

    size = VARIANTS[variant]["size"]
    inputs = keras.Input(input_shape or (size, size, 3), name="input")

    def bn(x, layer_name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=layer_name)(x)

    def relu6(x, layer_name):
        return layers.ReLU(6.0, name=layer_name)(x)

    x = layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = relu6(bn(x, "stem_bn"), "stem_activation")
    for block in block_plan(variant):
        prefix = f"block{block['stage']}{block['letter']}_"
        shortcut = x
        expanded = block["in"] * block["expand"]
        if block["expand"] != 1:
            x = layers.Conv2D(expanded, 1, padding="same", use_bias=False, name=prefix + "expand_conv")(x)
            x = relu6(bn(x, prefix + "expand_bn"), prefix + "expand_activation")
        x = layers.DepthwiseConv2D(block["kernel"], strides=block["stride"], padding="same", use_bias=False,
                                   name=prefix + "dwconv")(x)
        x = relu6(bn(x, prefix + "bn"), prefix + "activation")
        x = layers.Conv2D(block["out"], 1, padding="same", use_bias=False, name=prefix + "project_conv")(x)
        x = bn(x, prefix + "project_bn")  # linear bottleneck: no activation
        if block["stride"] == 1 and block["in"] == block["out"]:
            x = layers.Add(name=prefix + "add")([x, shortcut])
    x = layers.Conv2D(HEAD, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = relu6(bn(x, "top_bn"), "top_activation")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, name="predictions")(x)  # logits; softmax outside, as the checkpoint
    model = keras.Model(inputs, x, name=name or f"efficientnet_{variant}")
    if weights is not None:
        load_torch_weights(model, variant, np.load(weights), include_top=include_top)
    return model


def _conv(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(2, 3, 1, 0)  # torch (out, in, kh, kw) → Keras (kh, kw, in, out)


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(2, 3, 0, 1)  # torch (C, 1, kh, kw) → Keras (kh, kw, C, 1)


def _bn(arrays, key: str) -> list[np.ndarray]:
    return [arrays[f"{key}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]


def load_torch_weights(model, variant: str, arrays, *, include_top: bool) -> None:
    """Every array of the archive into its layer by name; a shape mismatch or a left-over array fails."""
    assignments: dict[str, list[np.ndarray]] = {
        "stem_conv": [_conv(arrays["_conv_stem.weight"])], "stem_bn": _bn(arrays, "_bn0"),
        "top_conv": [_conv(arrays["_conv_head.weight"])], "top_bn": _bn(arrays, "_bn1"),
    }
    used = {"_conv_stem.weight", "_conv_head.weight", *(f"_bn{i}.{p}" for i in (0, 1)
                                                        for p in ("weight", "bias", "running_mean", "running_var"))}
    for index, block in enumerate(block_plan(variant)):
        prefix, key = f"block{block['stage']}{block['letter']}_", f"_blocks.{index}."
        if block["expand"] != 1:
            assignments[prefix + "expand_conv"] = [_conv(arrays[key + "_expand_conv.weight"])]
            assignments[prefix + "expand_bn"] = _bn(arrays, key + "_bn0")
        assignments[prefix + "dwconv"] = [_depthwise(arrays[key + "_depthwise_conv.weight"])]
        assignments[prefix + "bn"] = _bn(arrays, key + "_bn1")
        assignments[prefix + "project_conv"] = [_conv(arrays[key + "_project_conv.weight"])]
        assignments[prefix + "project_bn"] = _bn(arrays, key + "_bn2")
        used |= {name for name in arrays.files if name.startswith(key)}
    if include_top:
        assignments["predictions"] = [arrays["_fc.weight"].T, arrays["_fc.bias"]]
    used |= {"_fc.weight", "_fc.bias"}
    for layer_name, values in assignments.items():
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [tuple(v.shape) for v in values]:
            raise ValueError(f"{layer_name}: weights {[v.shape for v in values]} do not fit {expected}")
        layer.set_weights(values)
    left = sorted(set(arrays.files) - used - {n for n in arrays.files if n.endswith("num_batches_tracked")})
    if left:
        raise ValueError(f"arrays not used: {left[:5]}")


def eval_crop(image, size: int):
    """The official evaluation crop: a centre square of side size/(size+32) · min(h, w), its offsets
    rounded up as tensorflow/tpu's ``preprocessing.py`` rounds them, bicubic to size."""
    from PIL import Image

    side = int(size / (size + 32) * min(image.size))
    left, top = (image.width - side + 1) // 2, (image.height - side + 1) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """RGB 0..255 → the weights' input scale, (x − 127) / 128 (not the torchvision mean/std)."""
    return (np.asarray(pixels, dtype=np.float32) - INPUT_MEAN) / INPUT_SCALE
