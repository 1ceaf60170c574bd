"""Whole-backbone fine-tuning: every layer trained end to end on images augmented on the fly, through
temporary softmax heads. Meant for a lent GPU (any Keras backend); runs on a CPU at minutes per
epoch, resumably. The task's linear heads are refitted on the tuned features afterwards.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from train.core.metrics import balanced_class_weight
from train.core.reproducibility import seed_everything
from train.imaging.augmentation import augmentation_text
from train.imaging.backbones import backbone_of
from train.imaging.last_stage import set_trainable_except_batch_norm


@dataclass(frozen=True)
class TuningSpec:
    """A task's whole-backbone tuning run, as ``train/<task>/tuning.py`` declares it for ``train.finetune``."""

    targets: tuple[str, ...]  # arrays trained through temporary heads (the rest only feed the score)
    score: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], float]  # its docstring's first clause is recorded
    augmentation: Callable[[int], Any]
    colour_constancy: bool  # must match the extractor the task's heads will use
    grey: bool  # images are greyscale replicated to RGB: packed as one channel
    seed: int
    epochs: int  # of the shipped run (cosine schedule over them)
    input_size: int | None = None  # backbone input, when not the backbone's default
    source_size: int | None = None  # images arrive this size and are upscaled in-graph (50 px patches)
    batch_size: int = 32
    learning_rates: tuple[float, ...] = (1e-4,)  # of the shipped run


class TuningModel:
    """The extractor under temporary heads, one per target (class indices; -1 = no label for that
    head, ignored by its loss), with its training and validation images. A single target is
    class-weighted (Keras weights classes for single-output models only)."""

    def __init__(self, extractor, images: np.ndarray, targets: dict[str, np.ndarray], split: np.ndarray, *,
                 score, augmentation, batch_size: int) -> None:
        import keras
        from keras import layers

        self.backbone, self.targets, self.score, self.batch_size = backbone_of(extractor), targets, score, batch_size
        train, val = split == "train", split == "val"
        inputs = keras.Input(images.shape[1:])
        pooled = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(extractor(augmentation(inputs))))
        heads = {name: layers.Dense(int(y.max()) + 1, activation="softmax", name=name)(pooled)
                 for name, y in targets.items()}
        self.single = len(targets) == 1
        self.model = keras.Model(inputs, next(iter(heads.values())) if self.single else heads)
        self.y_train = (next(iter(targets.values()))[train] if self.single
                        else {name: y[train] for name, y in targets.items()})
        self.class_weight = balanced_class_weight(self.y_train, int(self.y_train.max()) + 1) if self.single else None
        self.x_train, self.x_val = images[train].astype(np.float32), images[val].astype(np.float32)
        self.steps_per_epoch = -(-len(self.x_train) // batch_size)
        self.started, self.losses = time.time(), []

    def compile(self, rate: float, backbone_trainable: bool, decay_epochs: int = 0) -> None:
        import keras

        set_trainable_except_batch_norm(self.backbone, backbone_trainable)
        if decay_epochs:
            rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=decay_epochs * self.steps_per_epoch)
        self.model.compile(optimizer=keras.optimizers.Adam(rate),
                           loss=keras.losses.SparseCategoricalCrossentropy(ignore_class=-1))

    def epoch(self) -> float:
        """One epoch of training, then the validation score of the outputs."""
        fitted = self.model.fit(self.x_train, self.y_train, epochs=1, batch_size=self.batch_size,
                                class_weight=self.class_weight, verbose=2)
        self.losses.append(round(float(fitted.history["loss"][-1]), 4))
        outputs = self.model.predict(self.x_val, batch_size=64, verbose=0)
        value = float(self.score(dict(zip(self.targets, [outputs])) if self.single else outputs))
        print(f"  validation score {value:.4f} ({time.time() - self.started:.0f} s)", flush=True)
        return value

    def trainable_weights(self) -> int:
        return sum(int(np.prod(w.shape)) for w in self.model.trainable_weights)


def fine_tune_whole_backbone(extractor, images: np.ndarray, targets: dict[str, np.ndarray], split: np.ndarray, *,
                             score, augmentation, learning_rate: float, epochs: int, seed: int, head_epochs: int = 2,
                             patience: int = 3, batch_size: int = 32, cosine_decay: bool = False,
                             on_improvement=None, state_dir: Path | None = None,
                             max_epochs_now: int | None = None) -> dict[str, Any]:
    """Train every layer of ``extractor``'s backbone in place (batch norm frozen) on augmented
    training images (``TuningModel``): ``head_epochs`` with the backbone frozen first (random heads
    would send large gradients into ImageNet weights), then all layers at ``learning_rate``
    (constant, or cosine-decayed to 0 over ``epochs``). After each epoch ``score`` rates the
    validation outputs (a dict: target → softmax probabilities); the best tuned epoch's weights are
    restored (and ``on_improvement(epoch, score)`` called each time the best improves, e.g. to
    checkpoint a run that may be cut off).

    Resumable (``state_dir``): after every tuned epoch the model, the optimizer (moments and step, so
    the cosine schedule goes on where it stopped), the best epoch's weights and the scores are
    written there; a later call with the same ``state_dir`` and settings carries on from them.
    ``max_epochs_now`` stops after that many tuned epochs in this call (``"complete": False`` in
    the summary), so a run can span calls or sessions. Each chunk re-seeds with the epoch it starts
    at: a resumed run is reproducible chunk for chunk, not bitwise equal to one uninterrupted run."""
    seed_everything(seed)
    run = TuningModel(extractor, images, targets, split, score=score, augmentation=augmentation, batch_size=batch_size)
    settings = {"learning_rate": learning_rate, "epochs": epochs, "seed": seed, "head_epochs": head_epochs,
                "batch_size": batch_size, "cosine_decay": cosine_decay, "train_images": int(len(run.x_train))}
    state = TuningState(state_dir, settings) if state_dir is not None else None
    resumed = state.load() if state is not None else None
    best = {"score": -np.inf, "weights": None, "epoch": 0}
    if resumed is None:
        run.compile(1e-3, backbone_trainable=False)
        head_scores = [run.epoch() for _ in range(head_epochs)]
        scores: list[float] = []
    else:
        head_scores, scores, run.losses[:] = resumed["head_scores"], resumed["scores"], resumed["losses"]
        run.started -= resumed["seconds"]  # elapsed time counts every call
        print(f"  resuming after tuned epoch {len(scores)} of {epochs} ({state_dir})", flush=True)
    # Unfreezing usually costs validation score for an epoch or two before it pays: the best epoch
    # is chosen among the tuned ones, with patience counted from the first of them.
    run.compile(learning_rate, backbone_trainable=True, decay_epochs=epochs if cosine_decay else 0)
    if resumed is not None:
        run.model.optimizer.build(run.model.trainable_variables)
        state.restore(run.model, best)
        seed_everything(seed + len(scores))
    trainable = run.trainable_weights()
    print(f"  fine-tuning {trainable:,} weights on {len(run.x_train):,} augmented images per epoch",
          flush=True)
    complete = tuned_epochs(run, best, head_scores, scores, epochs=epochs, patience=patience, state=state,
                            on_improvement=on_improvement, max_epochs_now=max_epochs_now)
    run.model.set_weights(best["weights"])
    run.backbone.trainable = False
    return {"run": True, "complete": complete, "seconds": round(time.time() - run.started, 1),
            "from_layer": "all layers", "head_epochs": head_epochs, "epochs_run": len(scores),
            "best_epoch": best["epoch"], "learning_rate": learning_rate,
            "schedule": "cosine decay to 0" if cosine_decay else "constant", "trainable_weights": trainable,
            "val_score_head_only": round(head_scores[-1], 4), "val_score": [round(v, 4) for v in scores],
            "train_loss": run.losses[head_epochs:], "augmentation": augmentation_text(augmentation),
            "rule": "all backbone layers trained end to end (batch norm frozen), best validation score restored"}


def tuned_epochs(run: TuningModel, best: dict[str, Any], head_scores: list[float], scores: list[float], *,
                 epochs: int, patience: int, state: "TuningState | None", on_improvement, max_epochs_now: int | None) -> bool:
    """The tuned epochs left (``scores`` and ``best`` updated in place, the state saved after each);
    True when the run is complete (all epochs, or stopped early), False when this call's share ran out."""
    stopped_early = bool(scores) and len(scores) - best["epoch"] >= patience
    now = 0
    for epoch in range(len(scores) + 1, epochs + 1):
        if stopped_early or (max_epochs_now is not None and now >= max_epochs_now):
            break
        scores.append(run.epoch())
        now += 1
        if scores[-1] > best["score"]:
            best.update(score=scores[-1], weights=run.model.get_weights(), epoch=epoch)
            if on_improvement is not None:
                on_improvement(epoch, scores[-1])
        elif epoch - best["epoch"] >= patience:
            stopped_early = True
        if state is not None:
            state.save(run.model, best, head_scores=head_scores, scores=scores, losses=run.losses,
                       seconds=round(time.time() - run.started, 1))
    return stopped_early or len(scores) == epochs


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
