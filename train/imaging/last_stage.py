"""Last-stage fine-tuning on the CPU: the backbone cut before its last stage
(``BackboneSpec.fine_tune_from``), the lower part's maps cached once (original and augmented
training images), only the last stage trained on them — batch norm frozen, a small learning rate,
early stopping on validation loss. The tuned layers are the backbone's own, so the serving graph
and its exact CAMs are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from train.core.reproducibility import seed_everything
from train.imaging.backbones import BACKBONES, backbone_of, split_extractor
from train.imaging.features import cached_maps, pooled_outputs


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

    seed_everything(seed)
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
