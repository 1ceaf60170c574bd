"""Transfer learning with a selectable ImageNet backbone, shared by the brain and skin tasks.

Frozen-feature training runs on a CPU: the backbone turns every image into its last convolutional
feature map once (cached), and small *linear* heads are trained on the pooled features. Linear
heads keep class-activation maps exact and gradient-free: the serving graph applies each head to
every cell of the feature map, so global pooling of that map gives the logits and the positive
class's map is the CAM (Zhou et al. 2016). The TFLite model therefore outputs what the
explanation needs, and Lambda computes no gradients.

Top-block fine-tuning also runs on a CPU: the backbone is cut before its last stage
(``BackboneSpec.fine_tune_from``), the lower part's maps are cached once (original and mirrored
training images), and only the last stage is trained on them — batch norm frozen, a small learning
rate, early stopping on validation loss (``fine_tune_last_stage``). The fine-tuned layers are the
backbone's own, so the serving graph and its exact CAMs are unchanged.

Whole-backbone fine-tuning (``fine_tune_whole_backbone``) trains every layer end to end on images
augmented on the fly by Keras random layers (``dermoscopy_augmentation``); it is meant for a lent
GPU but runs on a CPU at minutes per epoch. The linear heads are refitted afterwards, as above.

Backbones: MobileNetV2 (ImageNet weights in ``../shared/weights``) by default; Xception, VGG16,
EfficientNetB0, ResNet50 when their weights are given (a file path, or Keras' cache via
``--weights imagenet``); ``--weights none`` trains from random features (useless, but runnable).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train import common

DEFAULT_WEIGHTS = {
    "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    "efficientnet_lite0": "efficientnet_lite0_imagenet.npz",
    "efficientnet_lite2": "efficientnet_lite2_imagenet.npz",
}


@dataclass(frozen=True)
class BackboneSpec:
    constructor: str  # keras.applications attribute, or "efficientnet_lite:<variant>" (train/efficientnet_lite.py)
    input_size: int
    scaling: str  # in-graph: "tf" (x/127.5 - 1), "lite" ((x-127)/128), "caffe" (BGR, ImageNet means), "none" (model scales itself)
    fine_tune_from: str  # first layer of the last stage: CPU fine-tuning trains from its input onwards


BACKBONES = {
    "mobilenet_v2": BackboneSpec("MobileNetV2", 224, "tf", "block_14_expand"),  # blocks 14-16 + Conv_1 (7x7)
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
        from train import efficientnet_lite

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
        path = common.REPO_ROOT.parent / "shared" / "weights" / default if default else None
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
                from train.efficientnet_lite import INPUT_MEAN, INPUT_SCALE

                return (x - INPUT_MEAN) / INPUT_SCALE
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


def cached_maps(task: str, tag: str, model, images: np.ndarray) -> np.ndarray:
    """``model`` applied to all images, cached as float16 under build/<task>/ (maps are big)."""
    return cached_in_chunks(common.build_dir(task) / f"maps_{tag}.npy", images,
                            lambda chunk: feature_maps(model, chunk).astype(np.float16), f"maps {tag}")


def pooled_outputs(model, inputs: np.ndarray) -> np.ndarray:
    """``model``'s output maps, globally average-pooled, 256 inputs at a time (not cached)."""
    return np.concatenate([feature_maps(model, inputs[start : start + 256]).mean(axis=(1, 2))
                           for start in range(0, len(inputs), 256)])


def set_trainable_except_batch_norm(backbone, trainable: bool) -> None:
    """(Un)freeze ``backbone`` but keep batch norm frozen: ImageNet statistics, which small
    fine-tuning batches would wreck."""
    from keras import layers

    backbone.trainable = trainable
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def fine_tune_top(extractor, upper, maps: np.ndarray, targets: dict[str, np.ndarray],
                  val: tuple[np.ndarray, dict[str, np.ndarray]], *, learning_rate: float, epochs: int, seed: int,
                  patience: int = 3) -> dict[str, Any]:
    """Train ``upper`` (the backbone's last stage) with temporary softmax heads, one per target.

    Targets are class indices; -1 means "no label for this head" (e.g. untyped tumours) and is
    ignored by that head's loss. Batch norm stays frozen (statistics from ImageNet; small batches
    would wreck them). Early stopping on the summed validation loss restores the best epoch.
    Returns the history (per-epoch losses) for the model card.
    """
    import keras
    from keras import layers

    common.seed_everything(seed)
    backbone = backbone_of(extractor)
    set_trainable_except_batch_norm(backbone, True)
    inputs = keras.Input(maps.shape[1:])
    pooled = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(upper(inputs)))
    outputs = {name: layers.Dense(int(y.max()) + 1, activation="softmax", name=name)(pooled)
               for name, y in targets.items()}
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss={name: keras.losses.SparseCategoricalCrossentropy(ignore_class=-1) for name in targets})
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print(f"  fine-tuning {trainable:,} weights on {len(maps):,} maps", flush=True)
    history = model.fit(maps, targets, validation_data=val, epochs=epochs, batch_size=32, verbose=2,
                        callbacks=[keras.callbacks.EarlyStopping(patience=patience, restore_best_weights=True)])
    backbone.trainable = False
    losses = history.history
    return {"epochs_run": len(losses["loss"]), "best_epoch": int(np.argmin(losses["val_loss"])) + 1,
            "learning_rate": learning_rate, "trainable_weights": trainable,
            "loss": [round(float(v), 4) for v in losses["loss"]],
            "val_loss": [round(float(v), 4) for v in losses["val_loss"]]}


# Augmentations for fine-tuning, applied to (N, H, W, 3) arrays before the lower part's maps are cached.
MIRRORED = {"mirrored": lambda images: images[:, :, ::-1]}  # anatomy: left-right only
MIRRORED_AND_FLIPPED = {**MIRRORED, "flipped": lambda images: images[:, ::-1]}  # skin, tissue: no orientation


@dataclass
class TunedFeatures:
    pooled: np.ndarray  # every image, through the fine-tuned backbone
    augmented_train: dict[str, np.ndarray]  # the same for each augmented copy of the training images
    summary: dict[str, Any]  # for model.json


def fine_tune_last_stage(task: str, tag: str, extractor, backbone: str, images: np.ndarray, split: np.ndarray,
                         targets: dict[str, np.ndarray], *, augmentations: dict[str, Any], learning_rate: float,
                         epochs: int, seed: int) -> TunedFeatures:
    """Fine-tune ``extractor``'s last stage in place on training images and their augmented copies
    (maps of the frozen lower part cached under build/<task>/), early stopping on validation; return
    pooled features from the tuned backbone for the linear heads."""
    lower, upper = split_extractor(extractor, backbone)
    stage = BACKBONES[backbone].fine_tune_from
    tag = f"{tag}_{stage}"
    train, val = split == "train", split == "val"
    maps = cached_maps(task, tag, lower, images)
    augmented = {name: cached_maps(task, f"{tag}_{name}_train", lower, transform(images[train]))
                 for name, transform in augmentations.items()}
    copies = 1 + len(augmented)
    summary = fine_tune_top(
        extractor, upper, np.concatenate([maps[train], *augmented.values()]).astype(np.float32),
        {name: np.concatenate([y[train]] * copies) for name, y in targets.items()},
        (maps[val].astype(np.float32), {name: y[val] for name, y in targets.items()}),
        learning_rate=learning_rate, epochs=epochs, seed=seed)
    return TunedFeatures(
        pooled_outputs(upper, maps), {name: pooled_outputs(upper, m) for name, m in augmented.items()},
        {"run": True, **summary, "from_layer": stage,
         "augmentation": " + ".join(["original", *augmented]) + " training images",
         "rule": "last stage trained on cached maps (batch norm frozen), early stopping on validation loss"})


def dermoscopy_augmentation(seed: int):
    """Training-only random layers for images without orientation or fixed lighting: flips, any
    rotation (reflected borders), brightness and contrast. Keras layers, so the same code runs on
    the JAX backend of a lent GPU; at inference they pass images through unchanged."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal_and_vertical", seed=seed),
                             layers.RandomRotation(0.5, fill_mode="reflect", seed=seed + 1),
                             layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 2),
                             layers.RandomContrast(0.15, seed=seed + 3)], name="augmentation")


def tissue_augmentation(seed: int):
    """Training-only random layers for H&E patches: flips and any rotation (a slide has no up),
    H&E stain jitter (labs and scanners differ mostly in stain colour), brightness and contrast."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal_and_vertical", seed=seed),
                             layers.RandomRotation(0.5, fill_mode="reflect", seed=seed + 1),
                             hed_jitter_layer(seed=seed + 2),
                             layers.RandomBrightness(0.08, value_range=(0, 255), seed=seed + 3),
                             layers.RandomContrast(0.1, seed=seed + 4)], name="augmentation")


def hed_jitter_layer(scale: float = 0.05, shift: float = 0.05, seed: int | None = None):
    """``augment.hed_jitter`` as a Keras layer (any backend): each image's stain optical densities
    perturbed, od' = od·(1+α) + β with α, β ~ U(±scale), U(±shift) per stain and image."""
    import keras
    from keras import layers, ops

    from train.augment import recolour_stains

    @keras.saving.register_keras_serializable(package="oncoserve")
    class HedJitter(layers.Layer):
        def __init__(self, scale: float, shift: float, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale, self.shift, self.seed = scale, shift, seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            shape = (ops.shape(x)[0], 1, 1, 3)
            alpha = keras.random.uniform(shape, 1.0 - self.scale, 1.0 + self.scale, seed=self.generator)
            beta = keras.random.uniform(shape, -self.shift, self.shift, seed=self.generator)
            return recolour_stains(x, alpha, beta)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "scale": self.scale, "shift": self.shift, "seed": self.seed}

    return HedJitter(scale, shift, seed, name="hed_jitter")


def anatomy_augmentation(seed: int):
    """Training-only random layers for CT/MRI slices: left-right mirroring only (anatomy has an up
    and down), small rotations and zooms with black fill (slices sit on black), brightness and
    contrast (scanners and windowing differ)."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal", seed=seed),
                             layers.RandomRotation(0.03, fill_mode="constant", seed=seed + 1),  # ±11°
                             layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
                             layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 3),
                             layers.RandomContrast(0.1, seed=seed + 4)], name="augmentation")


def fine_tune_whole_backbone(extractor, images: np.ndarray, targets: dict[str, np.ndarray], split: np.ndarray, *,
                             score, augmentation, learning_rate: float, epochs: int, seed: int, head_epochs: int = 2,
                             patience: int = 3, batch_size: int = 32, cosine_decay: bool = False,
                             on_improvement=None, state_dir: Path | None = None,
                             max_epochs_now: int | None = None) -> dict[str, Any]:
    """Train every layer of ``extractor``'s backbone in place (batch norm frozen) on augmented
    training images, through temporary softmax heads, one per target (class indices; -1 = no label
    for that head, ignored by its loss): ``head_epochs`` with the backbone frozen first (random heads
    would send large gradients into ImageNet weights), then all layers at ``learning_rate``
    (constant, or cosine-decayed to 0 over ``epochs``). After each epoch ``score`` rates the
    validation outputs (a dict: target → softmax probabilities); the best tuned epoch's weights are
    restored (and ``on_improvement(epoch, score)`` called each time the best improves, e.g. to
    checkpoint a run that may be cut off). A single target is class-weighted (Keras weights classes for single-output models
    only). About 2.5 minutes per epoch of 4,466 images on 2 CPU cores.

    Resumable (``state_dir``): after every tuned epoch the model, the optimizer (moments and step, so
    the cosine schedule goes on where it stopped), the best epoch's weights and the scores are
    written there; a later call with the same ``state_dir`` and settings carries on from them.
    ``max_epochs_now`` stops after that many tuned epochs in this call (``"complete": False`` in
    the summary), so a run can span calls or sessions. Each chunk re-seeds with the epoch it starts
    at: a resumed run is reproducible chunk for chunk, not bitwise equal to one uninterrupted run."""
    import keras
    from keras import layers

    common.seed_everything(seed)
    backbone = backbone_of(extractor)
    train, val = split == "train", split == "val"
    inputs = keras.Input(images.shape[1:])
    pooled = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(extractor(augmentation(inputs))))
    heads = {name: layers.Dense(int(y.max()) + 1, activation="softmax", name=name)(pooled) for name, y in targets.items()}
    single = len(targets) == 1
    model = keras.Model(inputs, next(iter(heads.values())) if single else heads)
    y_train = next(iter(targets.values()))[train] if single else {name: y[train] for name, y in targets.items()}
    class_weight = common.balanced_class_weight(y_train, int(y_train.max()) + 1) if single else None
    x_train, x_val = images[train].astype(np.float32), images[val].astype(np.float32)
    steps_per_epoch = -(-len(x_train) // batch_size)

    def compile_with(rate: float, backbone_trainable: bool, decay_epochs: int = 0) -> None:
        set_trainable_except_batch_norm(backbone, backbone_trainable)
        if decay_epochs:
            rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=decay_epochs * steps_per_epoch)
        model.compile(optimizer=keras.optimizers.Adam(rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))

    started, losses = time.time(), []

    def one_epoch() -> float:
        fitted = model.fit(x_train, y_train, epochs=1, batch_size=batch_size, class_weight=class_weight, verbose=2)
        losses.append(round(float(fitted.history["loss"][-1]), 4))
        outputs = model.predict(x_val, batch_size=64, verbose=0)
        value = float(score(dict(zip(targets, [outputs])) if single else outputs))
        print(f"  validation score {value:.4f} ({time.time() - started:.0f} s)", flush=True)
        return value

    settings = {"learning_rate": learning_rate, "epochs": epochs, "seed": seed, "head_epochs": head_epochs,
                "batch_size": batch_size, "cosine_decay": cosine_decay, "train_images": int(len(x_train))}
    state = TuningState(state_dir, settings) if state_dir is not None else None
    resumed = state.load() if state is not None else None
    best = {"score": -np.inf, "weights": None, "epoch": 0}
    if resumed is None:
        compile_with(1e-3, backbone_trainable=False)
        head_scores = [one_epoch() for _ in range(head_epochs)]
        scores: list[float] = []
    else:
        head_scores, scores, losses[:] = resumed["head_scores"], resumed["scores"], resumed["losses"]
        started -= resumed["seconds"]  # elapsed time counts every call
        print(f"  resuming after tuned epoch {len(scores)} of {epochs} ({state_dir})", flush=True)
    # Unfreezing usually costs validation score for an epoch or two before it pays: the best epoch
    # is chosen among the tuned ones, with patience counted from the first of them.
    compile_with(learning_rate, backbone_trainable=True, decay_epochs=epochs if cosine_decay else 0)
    if resumed is not None:
        model.optimizer.build(model.trainable_variables)
        state.restore(model, best)
        common.seed_everything(seed + len(scores))
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print(f"  fine-tuning {trainable:,} weights on {len(x_train):,} augmented images per epoch", flush=True)
    stopped_early = bool(scores) and len(scores) - best["epoch"] >= patience
    now = 0
    for epoch in range(len(scores) + 1, epochs + 1):
        if stopped_early or (max_epochs_now is not None and now >= max_epochs_now):
            break
        scores.append(one_epoch())
        now += 1
        if scores[-1] > best["score"]:
            best = {"score": scores[-1], "weights": model.get_weights(), "epoch": epoch}
            if on_improvement is not None:
                on_improvement(epoch, scores[-1])
        elif epoch - best["epoch"] >= patience:
            stopped_early = True
        if state is not None:
            state.save(model, best, head_scores=head_scores, scores=scores, losses=losses,
                       seconds=round(time.time() - started, 1))
    complete = stopped_early or len(scores) == epochs
    model.set_weights(best["weights"])
    backbone.trainable = False
    return {"run": True, "complete": complete, "seconds": round(time.time() - started, 1), "from_layer": "all layers",
            "head_epochs": head_epochs, "epochs_run": len(scores),
            "best_epoch": best["epoch"], "learning_rate": learning_rate,
            "schedule": "cosine decay to 0" if cosine_decay else "constant", "trainable_weights": trainable,
            "val_score_head_only": round(head_scores[-1], 4), "val_score": [round(v, 4) for v in scores],
            "train_loss": losses[head_epochs:],
            "augmentation": augmentation_text(augmentation),
            "rule": "all backbone layers trained end to end (batch norm frozen), best validation score restored"}


class TuningState:
    """What ``fine_tune_whole_backbone`` needs to carry on in a later call: the model's and the
    optimizer's variables after the last tuned epoch, the best epoch's weights, and the scores so far,
    under one folder, for one set of settings (a state written with others is not resumed)."""

    def __init__(self, folder: Path, settings: dict[str, Any]) -> None:
        self.folder, self.settings = Path(folder), settings

    def load(self) -> dict[str, Any] | None:
        path = self.folder / "state.json"
        if not path.is_file():
            return None
        recorded = json.loads(path.read_text())
        if recorded["settings"] != self.settings:
            raise ValueError(f"{path} was written with {recorded['settings']}, not {self.settings}: "
                             "remove it or run with the same settings")
        return recorded

    def restore(self, model, best: dict[str, Any]) -> None:
        recorded = self.load()
        model.load_weights(self.folder / recorded["files"]["best"])
        best.update(score=recorded["best_score"], epoch=recorded["best_epoch"], weights=model.get_weights())
        model.load_weights(self.folder / recorded["files"]["last"])
        with np.load(self.folder / recorded["files"]["optimizer"]) as stored:
            for i, variable in enumerate(model.optimizer.variables):
                variable.assign(stored[f"v{i}"])

    def save(self, model, best: dict[str, Any], **history: Any) -> None:
        """Files named by epoch, then ``state.json`` (atomically) pointing at them, then the old files
        removed: a call cut off anywhere resumes from a consistent epoch."""
        self.folder.mkdir(parents=True, exist_ok=True)
        epoch = len(history["scores"])
        files = {"last": f"epoch{epoch}.weights.h5", "optimizer": f"epoch{epoch}.optimizer.npz",
                 "best": f"best-epoch{best['epoch']}.weights.h5"}
        model.save_weights(self.folder / files["last"])
        if best["epoch"] == epoch:  # this epoch is the best: its weights are the model's
            model.save_weights(self.folder / files["best"])
        np.savez(self.folder / files["optimizer"], **{f"v{i}": np.asarray(v) for i, v in enumerate(model.optimizer.variables)})
        partial = self.folder / "state.json.partial"
        partial.write_text(json.dumps({"settings": self.settings, "best_score": best["score"], "best_epoch": best["epoch"],
                                       "files": files, **history}, indent=1))
        partial.replace(self.folder / "state.json")
        for path in self.folder.iterdir():
            if path.name not in (*files.values(), "state.json"):
                path.unlink()


def augmentation_text(augmentation) -> str:
    """What a Keras augmentation pipeline does, for model.json and the cards, read off its layers."""
    names = {"RandomFlip": lambda l: f"flips ({l.mode})",
             "RandomRotation": lambda l: f"rotation (±{round(360 * float(np.max(l.factor)))}°)",
             "RandomZoom": lambda l: f"zoom (±{round(100 * float(np.max(np.abs(l.height_factor))))}%)",
             "RandomBrightness": lambda l: f"brightness (±{round(100 * float(np.max(l.factor)))}%)",
             "RandomContrast": lambda l: f"contrast (±{round(100 * float(np.max(l.factor)))}%)",
             "HedJitter": lambda l: f"H&E stain jitter (±{round(100 * l.scale)}% scale, ±{l.shift:g} shift per stain)"}
    return ", ".join(names[type(layer).__name__](layer) for layer in augmentation.layers) + " (on the fly)"


def tuning_device(record: dict[str, Any]) -> str:
    """Where a ``train.finetune`` run trained, in words: "the CPU" or "one <GPU name>"."""
    return "the CPU" if record["device"] == "cpu" else f"one {record['device']}"


def backbone_tuning_text(record: dict[str, Any], weights: str, *, cams: bool = True,
                         title: str = "Backbone weights") -> str:
    """One model-card paragraph for backbone weights tuned by ``python -m train.finetune`` ("" if
    none): where and how it ran, then the same account as any whole-backbone run. ``cams``: the
    served graph also outputs class-activation maps (brain, skin)."""
    if not record:
        return ""
    tried = ", ".join(f"{rate}: {score:.4f}" for rate, score in record["learning_rates_tried"].items())
    return (f"\n\n{title}: ImageNet {record['backbone']} tuned by `{record['command']}` (Keras "
            f"{record['keras']} on {record['keras_backend']}, {tuning_device(record)}, {record['seconds']:.0f} s). "
            f"{fine_tuning_text(record, cams=cams)} Best validation score per learning rate tried: {tried}. The tuned "
            f"weights are committed (`{weights}`, sha256 `{record['weights_sha256'][:16]}…`), so the training command "
            f"rebuilds this model on a CPU."
            + (" The parity column above is the largest difference over every output, the CAM logit maps (unbounded) "
               "included; what the quantised model decides is measured by its AUC columns." if cams else ""))


def fine_tuning_text(fine_tuning: dict[str, Any] | str, *, backbone_tuned: bool = False, cams: bool = True) -> str:
    """One model-card paragraph from the summary ``fine_tune_top`` returned (plus what the task added)."""
    if isinstance(fine_tuning, str):  # model.json written before CPU fine-tuning existed
        return f"Fine-tuning: {fine_tuning}."
    if not fine_tuning.get("run"):
        return ("Last-stage fine-tuning on the CPU: not run (`--fine-tune-epochs 0`)." if backbone_tuned
                else "Fine-tuning: not run (frozen backbone, `--fine-tune-epochs 0`).")
    if fine_tuning["from_layer"] == "all layers":  # fine_tune_whole_backbone (records before the schedule lack it)
        schedule = (f" ({fine_tuning['schedule']} over {fine_tuning['epochs_run']} epochs)"
                    if "schedule" in fine_tuning else "")
        rule = fine_tuning.get("val_score_rule", "").rstrip(".")  # train.finetune says what the score is
        rule = f" ({rule[:1].lower()}{rule[1:]})" if rule else ""
        text = (f"Fine-tuning: every backbone layer ({fine_tuning['trainable_weights']:,} weights with the temporary "
                f"head) trained end to end on {fine_tuning['augmentation']}, batch norm frozen; "
                f"{fine_tuning['head_epochs']} head-only epochs, then learning rate {fine_tuning['learning_rate']:g}"
                f"{schedule}; validation score{rule} per epoch {fine_tuning['val_score']} (head only: "
                f"{fine_tuning['val_score_head_only']}), best epoch {fine_tuning['best_epoch']} restored. The linear "
                f"head was then refitted on the tuned features{', so the CAMs stay exact' if cams else ''}.")
        return text + (" It lost on validation." if fine_tuning.get("chosen") is False else "")
    text = (f"Fine-tuning (CPU): the backbone's last stage, from `{fine_tuning['from_layer']}` on "
            f"({fine_tuning['trainable_weights']:,} weights), trained on cached maps of "
            f"{fine_tuning.get('augmentation', 'augmented training images')} with batch norm frozen, learning rate "
            f"{fine_tuning['learning_rate']:g}; best validation loss at epoch {fine_tuning['best_epoch']} of "
            f"{fine_tuning['epochs_run']} (early stopping). Linear heads were then refitted on the tuned features, "
            f"so the CAMs stay exact.")
    if fine_tuning.get("chosen") is False:  # a task that compares tuned and frozen on validation
        text += " The tuned backbone lost to the frozen one on validation, so the frozen one ships."
    return text


def feature_maps(extractor, images: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    return np.asarray(extractor.predict(images.astype(np.float32), batch_size=batch_size, verbose=0))


def pooled_features(task: str, tag: str, extractor, images: np.ndarray) -> np.ndarray:
    """Global-average-pooled features, cached under build/<task>/ (tag names backbone + variant)."""
    return cached_in_chunks(common.build_dir(task) / f"features_{tag}.npy", images,
                            lambda chunk: feature_maps(extractor, chunk).mean(axis=(1, 2)), f"features {tag}")


def cached_in_chunks(cache: Path, images: np.ndarray, compute, label: str) -> np.ndarray:
    """``compute`` over 256-image chunks with progress, saved to ``cache`` (reused while the count matches)."""
    if cache.is_file():
        cached = np.load(cache)
        if len(cached) == len(images):
            return cached
    chunks = []
    for start in range(0, len(images), 256):
        chunks.append(compute(images[start : start + 256]))
        print(f"  {label}: {min(start + 256, len(images))}/{len(images)}", flush=True)
    result = np.concatenate(chunks)
    np.save(cache, result)
    return result


def train_linear_head(features: np.ndarray, labels: np.ndarray, n_classes: int, *, val: tuple[np.ndarray, np.ndarray],
                      l2: float, seed: int, epochs: int = 200, class_weighting: bool = True, name: str = "head"):
    """Softmax regression in Keras on pooled features; early stopping on validation loss."""
    import keras
    from keras import layers

    common.seed_everything(seed)
    inputs = keras.Input((features.shape[1],))
    outputs = layers.Dense(n_classes, activation="softmax", kernel_regularizer=keras.regularizers.l2(l2), name=name)(
        layers.Dropout(0.2)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    class_weight = common.balanced_class_weight(labels, n_classes) if class_weighting else None
    model.fit(features, labels, validation_data=val, epochs=epochs, batch_size=128, class_weight=class_weight,
              verbose=0, callbacks=[keras.callbacks.EarlyStopping(patience=15, restore_best_weights=True)])
    return model.get_layer(name)


def select_linear_head(features: np.ndarray, labels: np.ndarray, n_classes: int, *,
                       val: tuple[np.ndarray, np.ndarray], score, seed: int, name: str,
                       l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2)) -> dict[str, Any]:
    """``train_linear_head`` for each L2 in the grid; keep the head whose validation softmax
    probabilities ``score`` highest (the task says what counts: AUC, accuracy, a mean over sources)."""
    best = None
    for l2 in l2_grid:
        dense = train_linear_head(features, labels, n_classes, val=val, l2=l2, seed=seed, name=name)
        weights, bias = dense.get_weights()
        logits = val[0] @ weights + bias
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        value = score(probabilities)
        print(f"  {name} l2={l2:g}: validation score {value:.4f}", flush=True)
        if best is None or value > best["score"]:
            best = {"score": value, "l2": l2, "dense": dense, "val_probabilities": probabilities}
    return best


# The 8 symmetries of a square image (the dihedral group D4) as (flipped axes, transposed): every
# flip and 90° rotation, each once.
SQUARE_SYMMETRIES = tuple((flips, transposed) for transposed in (False, True) for flips in ((), (1,), (2,), (1, 2)))


def apply_symmetry(tensor, flips: tuple[int, ...], transposed: bool, *, inverse: bool = False):
    """One of ``SQUARE_SYMMETRIES`` on a (batch, h, w, c) tensor: flips, then the transpose (the
    inverse: transpose, then the same flips)."""
    from keras import ops

    if inverse and transposed:
        tensor = ops.transpose(tensor, (0, 2, 1, 3))
    for axis in flips:
        tensor = ops.flip(tensor, axis=axis)
    return ops.transpose(tensor, (0, 2, 1, 3)) if transposed and not inverse else tensor


def stack_symmetric_views(images):
    """The batch followed by its 7 other flips and rotations (8 × batch rows)."""
    from keras import ops

    return ops.concatenate([apply_symmetry(images, *s) for s in SQUARE_SYMMETRIES], axis=0)


def average_symmetric_views(maps):
    """Per-cell maps of ``stack_symmetric_views`` rows → one map per image: each view's map turned
    back to the image's orientation, then the mean, so the cells stay where they are in the image."""
    from keras import ops

    views = ops.split(maps, len(SQUARE_SYMMETRIES), axis=0)
    return ops.mean(ops.stack([apply_symmetry(view, *s, inverse=True) for view, s in zip(views, SQUARE_SYMMETRIES)]),
                    axis=0)


def build_cam_model(extractor, heads: dict[str, Any], *, symmetric_views: bool = False):
    """Serving graph: features → every head applied per cell → pooled logits → softmax.

    Outputs a dict: ``<head>`` probabilities for each head and ``<head>_cam`` logit maps (of class
    ``cam_class``) for the heads that name one. ``symmetric_views``: for images with no up or left
    (dermoscopy), every cell's logits averaged over the image's 8 flips and rotations, each view
    turned back first (8× the compute). The heads are linear, so this is the head on the averaged
    features and the CAM stays exact; averaging the logit maps rather than the features keeps the
    graph exportable to ONNX (tf2onnx mis-infers the head's MatMul after the view transposes).
    """
    import keras
    from keras import layers, ops

    inputs = keras.Input(extractor.input_shape[1:], name="image")
    feature_map = extractor(stack_symmetric_views(inputs) if symmetric_views else inputs)
    outputs = {}
    for name, head in heads.items():
        dense = layers.Dense(head["dense"].units, name=f"{name}_logit_map")
        logit_map = dense(feature_map)  # (batch, h, w, classes): a linear head per cell
        dense.set_weights(head["dense"].get_weights())
        if symmetric_views:
            logit_map = average_symmetric_views(logit_map)
        outputs[name] = layers.Softmax(name=name)(ops.mean(logit_map, axis=(1, 2)))
        if head.get("cam_class") is not None:
            outputs[f"{name}_cam"] = layers.Identity(name=f"{name}_cam")(logit_map[..., head["cam_class"]])
    return keras.Model(inputs, outputs, name="transfer_cam")


def plot_cam_examples(task: str, images: np.ndarray, cams: np.ndarray, titles: list[str]) -> str:
    """One row of images with their normalised CAMs overlaid, as the function would explain them."""
    from PIL import Image

    from oncoserve_runtime import normalise_cam

    plt = common._pyplot()
    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3.2))
    for ax, image, cam, title in zip(axes, images, cams, titles):
        heat = np.asarray(Image.fromarray(normalise_cam(cam).astype(np.float32), mode="F")
                          .resize(image.shape[:2][::-1], Image.BILINEAR))
        ax.imshow(image.astype(np.uint8))
        ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(common.plots_dir(task) / "cam_examples.png", dpi=90)
    plt.close(fig)
    return "plots/cam_examples.png"
