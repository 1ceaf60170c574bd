"""ImageNet backbones as feature extractors: which exist, where their weights are, how an image gets in.

Backbones: MobileNetV2 (ImageNet weights in ``../shared/weights``) by default; EfficientNet-Lite0/2
(our Keras port, ``efficientnet_lite.py``, weights in ``../shared/weights``); Xception, VGG16,
EfficientNetB0, ResNet50 when their weights are given (a file path, or Keras' cache via
``--weights imagenet``); ``--weights none`` trains from random features (useless, but runnable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.core.paths import REPO_ROOT
from train.imaging import efficientnet_lite


DEFAULT_WEIGHTS = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "efficientnet_lite0": "efficientnet_lite0_imagenet.npz",
    "efficientnet_lite2": "efficientnet_lite2_imagenet.npz",
}


@dataclass(frozen=True)
class BackboneSpec:
    constructor: str  # keras.applications attribute, or "efficientnet_lite:<variant>" (efficientnet_lite.py)
    input_size: int
    scaling: str  # in-graph: "tf" (x/127.5 - 1), "lite" ((x-127)/128), "caffe" (BGR, ImageNet means), "none" (model scales itself)
    fine_tune_from: str  # first layer of the last stage: CPU fine-tuning trains from its input onwards
    # The map the out-of-distribution score of skin and histopathology reads (None: the last one; brain names
    # its own in its release.yaml, since this one broke under int8 there). A backbone tuned end to end maps
    # what is not its kind of image onto its classes by the last stages; measured in history.md.
    ood_layer: str | None = None


BACKBONES = {
    # blocks 14-16 + Conv_1 (7x7); the guard's layer, AUROC against the far families on the tuned backbones:
    # histopathology out_relu 0.31-1.0 -> block_10 0.995-1.0, skin 0.79-1.0 -> 1.0
    "mobilenet_v2": BackboneSpec("MobileNetV2", 224, "tf", "block_14_expand", "block_10_expand_relu"),
    "xception": BackboneSpec("Xception", 299, "tf", "block14_sepconv1"),
    "vgg16": BackboneSpec("VGG16", 224, "caffe", "block5_conv1"),
    "resnet50": BackboneSpec("ResNet50", 224, "caffe", "conv5_block1_1_conv"),
    "efficientnet_b0": BackboneSpec("EfficientNetB0", 224, "none", "block7a_expand_conv"),
    # Cut after the first (stride-2) block of stage 6, at 7x7 as MobileNetV2's block_14_expand.
    "efficientnet_lite0": BackboneSpec("efficientnet_lite:lite0", 224, "lite", "block6b_expand_conv"),
    "efficientnet_lite2": BackboneSpec("efficientnet_lite:lite2", 260, "lite", "block6b_expand_conv"),
}


def backbone_constructor(spec: BackboneSpec):
    """``constructor(include_top=, weights=, input_shape=)`` for a spec: keras.applications or our port."""
    import keras

    if spec.constructor.startswith("efficientnet_lite:"):
        variant = spec.constructor.split(":", 1)[1]

        def build(*, include_top: bool, weights: str | None, input_shape: tuple[int, int, int]):
            if weights == "imagenet":
                raise ValueError("EfficientNet-Lite has no Keras download; pass the .npz (--weights default)")
            if weights is not None and not str(weights).endswith(".npz"):
                model = efficientnet_lite.build(variant, include_top=include_top, input_shape=input_shape)
                model.load_weights(weights)  # Keras weights of a tuned backbone
                return model
            return efficientnet_lite.build(variant, include_top=include_top, weights=weights, input_shape=input_shape)

        return build
    return getattr(keras.applications, spec.constructor)


def resolve_weights(name: str, weights: str | None) -> str | None:
    """A weights argument for keras.applications: a file path, "imagenet" (Keras cache), or None."""
    if weights is None:
        weights = os.environ.get("ONCOSERVE_BACKBONE_WEIGHTS")
    if weights in (None, "default"):
        default = DEFAULT_WEIGHTS.get(name)
        path = REPO_ROOT.parent / "shared" / "weights" / default if default else None
        if path is None or not path.is_file():
            raise FileNotFoundError(f"no default weights for {name}; pass --weights PATH, 'imagenet' or 'none'")
        return str(path)
    if weights == "none":
        return None
    if weights != "imagenet" and not Path(weights).is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    return weights


def cache_tag(name: str, weights: str | None) -> str:
    """Names feature caches by backbone *and* weights, so fine-tuned weights never reuse features
    computed with the ImageNet ones: the default weights keep the plain backbone name."""
    path = resolve_weights(name, weights)
    if path is None:
        return f"{name}_random"
    if path == "imagenet":
        return f"{name}_imagenet"
    default = DEFAULT_WEIGHTS.get(name)
    if default and Path(path).name == default:
        return name
    from oncoserve_runtime.digests import sha256_of

    return f"{name}_{sha256_of(Path(path))[:8]}"


def build_feature_extractor(name: str, weights: str | None, *, colour_constancy: bool = False,
                            input_size: int | None = None, source_size: int | None = None,
                            model_name: str | None = None):
    """Raw RGB 0..255 in → last convolutional feature map out (backbone frozen, inference mode).

    ``input_size`` runs the backbone at another square size than its default; ``source_size``
    makes the model take smaller images and upscale them in-graph (bilinear), e.g. 50 px patches.
    ``model_name`` tells two extractors of one backbone apart inside one graph (an ensemble).

    ``colour_constancy``: Shades-of-Grey white balance (Finlayson & Trezzi 2004, Minkowski p = 6)
    in-graph, a standard step for dermoscopy from different cameras and clinics (Barata et al. 2015).
    """
    import keras
    from keras import layers, ops

    spec = BACKBONES[name]

    @keras.saving.register_keras_serializable(package="oncoserve")
    class ShadesOfGrey(layers.Layer):
        def __init__(self, power: float = 6.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.power = power

        def call(self, x):
            scaled = x / 255.0 + 1e-6
            illuminant = ops.power(ops.mean(ops.power(scaled, self.power), axis=(1, 2), keepdims=True), 1.0 / self.power)
            gain = ops.mean(illuminant, axis=-1, keepdims=True) / illuminant
            return ops.clip(x * gain, 0.0, 255.0)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "power": self.power}

    @keras.saving.register_keras_serializable(package="oncoserve")
    class BackbonePreprocess(layers.Layer):
        """The backbone's own input scaling, in-graph (so serving sends 0..255 RGB)."""

        def __init__(self, mode: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.mode = mode

        def call(self, x):
            if self.mode == "tf":
                return x / 127.5 - 1.0
            if self.mode == "lite":
                return (x - efficientnet_lite.INPUT_MEAN) / efficientnet_lite.INPUT_SCALE
            if self.mode == "caffe":
                return ops.flip(x, axis=-1) - np.array([103.939, 116.779, 123.68], dtype="float32")
            return x

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mode": self.mode}

    size = input_size or spec.input_size
    constructor = backbone_constructor(spec)
    backbone = constructor(include_top=False, weights=resolve_weights(name, weights), input_shape=(size, size, 3))
    backbone.trainable = False
    inputs = keras.Input((source_size or size, source_size or size, 3), name="image")
    x = layers.Resizing(size, size, interpolation="bilinear", name="upscale")(inputs) if source_size else inputs
    x = ShadesOfGrey(name="shades_of_grey")(x) if colour_constancy else x
    features = backbone(BackbonePreprocess(spec.scaling, name="backbone_preprocess")(x), training=False)
    return keras.Model(inputs, features, name=model_name or f"{name}_features")


def concatenated_extractor(extractors: list, name: str = "concatenated_features"):
    """One image through several extractors, their last feature maps side by side (channels
    concatenated; the maps must share height and width). A linear head on the result is a single
    head over every backbone, so the ensemble's CAM stays exact."""
    import keras
    from keras import layers

    inputs = keras.Input(extractors[0].input_shape[1:], name="image")
    return keras.Model(inputs, layers.Concatenate(axis=-1, name="members")([e(inputs) for e in extractors]), name=name)


def backbone_of(extractor):
    import keras

    return next(layer for layer in extractor.layers if isinstance(layer, keras.Model))


def tapped_extractor(extractor, layer: str):
    """image → (the last conv map, the map backbone ``layer`` outputs), in one backbone pass.

    Shares the extractor's layers. The out-of-distribution score reads the earlier map: a backbone tuned
    end to end maps what is not its kind of image onto its classes by the last stage (histopathology)."""
    import keras

    backbone = backbone_of(extractor)
    both = keras.Model(backbone.input, [backbone.output, backbone.get_layer(layer).output])
    preprocessed = extractor.get_layer("backbone_preprocess").output
    return keras.Model(extractor.input, both(preprocessed), name=f"{extractor.name}_tapped")


def guard_maps(extractor, inputs, layer: str | None):
    """(the last conv map, the map the out-of-distribution score reads) of ``inputs``: backbone
    ``layer``'s from the same pass (``tapped_extractor``), or the last map itself when ``layer`` is None."""
    if layer is None:
        feature_map = extractor(inputs)
        return feature_map, feature_map
    feature_map, tap_map = tapped_extractor(extractor, layer)(inputs)
    return feature_map, tap_map


def tap_only(extractor, layer: str):
    """image → the map backbone ``layer`` outputs (for the guard's training features)."""
    import keras

    tapped = tapped_extractor(extractor, layer)
    return keras.Model(tapped.input, tapped.outputs[1], name=f"{extractor.name}_{layer}")


def split_extractor(extractor, name: str):
    """(lower, upper): image 0..255 → map before the last stage; that map → last conv map.

    Both share the extractor's layers, so training ``upper`` fine-tunes the extractor itself."""
    import keras

    backbone = backbone_of(extractor)
    cut = backbone.get_layer(BACKBONES[name].fine_tune_from).input
    lower_backbone = keras.Model(backbone.input, cut)
    preprocessed = extractor.get_layer("backbone_preprocess").output
    lower = keras.Model(extractor.input, lower_backbone(preprocessed), name=f"{name}_lower")
    upper = keras.Model(cut, backbone.output, name=f"{name}_upper")
    return lower, upper
