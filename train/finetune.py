"""
Title: Whole-backbone fine-tuning for the image tasks (brain, skin, histopathology), on a lent GPU or the CPU
Description: every backbone layer trained end to end on augmented images through temporary softmax
    heads, a cosine learning-rate schedule, one run per learning rate, the best validation epoch
    and rate kept; writes the tuned backbone's weights, which `python -m train.<task> --weights …` then
    uses in place of the ImageNet ones (linear heads, thresholds, conversion, cards: unchanged).
Accelerator: a GPU when one is lent (Keras 3 on JAX or torch); the CPU works too (per epoch on 2
    cores: ≈ 1.2 min brain, 2.8 min skin, 1 min histopathology at 96 px).

## Why two steps

A lent GPU machine has no TensorFlow and cannot read ``../shared``; conversion needs TensorFlow.
So ``pack`` (here, on the CPU) writes the training and validation images, at training resolution,
into one file that travels with the device call — WebP quality 90, because a call carries 64 MiB:
its mean absolute error (≈ 1.2 grey levels) is far below the augmentation's brightness jitter, and
the task's own training command later fits the heads on the exact images. Test images never leave.
``run`` trains from that file (or straight from the data root) on any Keras backend::

    python -m train.finetune pack brain                      # → devicepack/brain.npz + base weights
    KERAS_BACKEND=jax python -m train.finetune run brain --pack devicepack/brain.npz --out OUT
    python -m train.finetune run brain --out OUT             # CPU, from ONCOSERVE_DATA_ROOT
    python -m train.brain --weights OUT/backbone.weights.h5  # heads, thresholds, TFLite, card

``OUT/finetune.json`` (beside the weights) records what the run did; the training commands copy it
into training.json as ``training.backbone_tuning``.
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import shutil
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from train import core, imaging
from train.imaging import SUMMARY_FILE, WEIGHTS_FILE, TuningSpec, file_sha256

PACK_DIR = core.REPO_ROOT / "devicepack"  # git-ignored: what a device call carries
# The tasks with a whole-backbone tuning run: each declares it in train/<task>/tuning.py.
TUNABLE = tuple(sorted(path.parent.name for path in (core.REPO_ROOT / "train").glob("*/tuning.py")))


"""
## Per task: ``train/<task>/tuning.py`` declares the run (``SPEC``) and loads its arrays
"""


def tuning_module(task: str) -> ModuleType:
    return importlib.import_module(f"train.{task}.tuning")


def spec_of(task: str) -> TuningSpec:
    return tuning_module(task).SPEC


def task_arrays(task: str, backbone: str, input_size: int | None = None) -> dict[str, np.ndarray]:
    """Images, split and labels as the task's training command loads them (needs the data root)."""
    return tuning_module(task).arrays(backbone, input_size)


"""
## Pack (CPU) and unpack (anywhere)
"""


def pack(task: str, backbone: str, weights: str | None, pack_dir: Path = PACK_DIR, input_size: int | None = None) -> Path:
    """Training + validation rows of ``task_arrays`` → ``<pack_dir>/<task>.npz`` (images as WebP
    q90), with the base weights file copied beside it."""
    from PIL import Image

    arrays = task_arrays(task, backbone, input_size)
    keep = np.isin(arrays["split"], ["train", "val"])
    grey = spec_of(task).grey
    encoded = []
    for image in arrays["images"][keep]:
        buffer = io.BytesIO()
        Image.fromarray(image[..., 0] if grey else image).save(buffer, "WEBP", quality=90)
        encoded.append(np.frombuffer(buffer.getvalue(), np.uint8))
    pack_dir.mkdir(parents=True, exist_ok=True)
    path = pack_dir / f"{task}.npz"
    # Strings as fixed-width unicode: object arrays would need pickle to load.
    labels = {k: v[keep].astype(str) if v.dtype == object else v[keep] for k, v in arrays.items() if k != "images"}
    np.savez(path, webp=np.concatenate(encoded), offsets=np.cumsum([0] + [len(e) for e in encoded]),
             shape=np.array(arrays["images"].shape[1:]), **labels)
    base = imaging.resolve_weights(backbone, weights)
    if base:
        shutil.copy(base, pack_dir / Path(base).name)
    print(f"{path}: {keep.sum()} images, {path.stat().st_size / 2**20:.1f} MiB", flush=True)
    return path


def unpack(path: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    with np.load(path) as stored:
        arrays = {k: stored[k] for k in stored.files}
    webp, offsets = arrays.pop("webp"), arrays.pop("offsets")
    shape = tuple(arrays.pop("shape"))
    images = np.empty((len(offsets) - 1, *shape), np.uint8)
    for i in range(len(images)):
        decoded = np.asarray(Image.open(io.BytesIO(webp[offsets[i]:offsets[i + 1]].tobytes())))
        images[i] = decoded[..., None] if decoded.ndim == 2 else decoded  # grey broadcasts to 3 channels
    return {"images": images, **arrays}


"""
## Run: one whole-backbone tuning per learning rate, the best on validation kept
"""


def run(task: str, arrays: dict[str, np.ndarray], *, backbone: str, weights: str | None, learning_rates: list[float],
        epochs: int, batch_size: int, out: Path, seed: int, input_size: int | None = None,
        pack_path: Path | None = None, resume: bool = False, max_epochs_now: int | None = None) -> dict[str, Any] | None:
    """Tune, keep the best rate's weights and write ``finetune.json``. Each rate's progress is kept
    under ``out/state/`` after every epoch; ``resume`` carries on from it (otherwise it is cleared),
    and ``max_epochs_now`` stops after that many epochs in this call (returns None until done)."""
    import keras

    spec = spec_of(task)
    input_size = input_size or spec.input_size
    split = arrays["split"]
    val = {k: v[split == "val"] for k, v in arrays.items() if k != "images"}
    started, runs, best = time.time(), {}, None
    if not resume and (out / "state").exists():
        shutil.rmtree(out / "state")
    for rate in learning_rates:
        print(f"{task}: learning rate {rate:g}, {epochs} epochs", flush=True)
        extractor = imaging.build_feature_extractor(backbone, weights, colour_constancy=spec.colour_constancy,
                                                     input_size=input_size, source_size=spec.source_size)

        def checkpoint(epoch: int, score: float, rate: float = rate, extractor=extractor) -> None:
            # The only writer of the weights: the best epoch of the best rate so far, on disk at once
            # (a device call can be cut off).
            if best is None or score > best[0]:
                out.mkdir(parents=True, exist_ok=True)
                imaging.backbone_of(extractor).save_weights(out / WEIGHTS_FILE)
                (out / "checkpoint.json").write_text(json.dumps({"learning_rate": rate, "epoch": epoch, "val_score": score}))

        summary = imaging.fine_tune_whole_backbone(
            extractor, arrays["images"], {name: arrays[name] for name in spec.targets}, split,
            score=lambda outputs: spec.score(outputs, val), augmentation=spec.augmentation(seed),
            learning_rate=rate, epochs=epochs, seed=seed, patience=epochs, batch_size=batch_size, cosine_decay=True,
            on_improvement=checkpoint, state_dir=out / "state" / f"lr{rate:g}", max_epochs_now=max_epochs_now)
        if not summary["complete"]:
            print(f"stopped after epoch {summary['epochs_run']} of {epochs}: run the same command with --resume "
                  "to carry on", flush=True)
            return None
        runs[f"{rate:g}"] = summary
        # `checkpoint` has already written this rate's best epoch if it beat the earlier rates.
        if best is None or max(summary["val_score"]) > best[0]:
            best = (max(summary["val_score"]), f"{rate:g}")
    chosen = runs[best[1]]
    record = {**chosen, "task": task, "backbone": backbone, "seed": seed, "batch_size": batch_size,
              "input_size": input_size or imaging.BACKBONES[backbone].input_size,
              "learning_rates_tried": {rate: max(r["val_score"]) for rate, r in runs.items()},
              "chosen_learning_rate": float(best[1]), "val_score_rule": spec.score.__doc__.split(":")[0].strip(),
              "runs": runs, "base_weights_sha256": file_sha256(imaging.resolve_weights(backbone, weights)),
              "weights_sha256": file_sha256(out / WEIGHTS_FILE), "keras": keras.__version__,
              "keras_backend": keras.backend.backend(), "device": device_name(),
              "seconds": round(time.time() - started, 1) if not resume else sum(r["seconds"] for r in runs.values()),
              "command": tuning_command(task, keras.backend.backend(), list(runs), epochs=epochs, batch_size=batch_size,
                                        seed=seed, input_size=input_size, weights=weights, pack_path=pack_path)}
    (out / SUMMARY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    print(f"kept learning rate {best[1]} (validation score {best[0]:.4f}) → {out / WEIGHTS_FILE}", flush=True)
    return record


def device_name() -> str:
    """The accelerator the backend trains on (its name), or "cpu"."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return device.device_kind if device.platform == "gpu" else "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"
    return backend


def tuning_command(task: str, backend: str, rates: list[str], *, epochs: int, batch_size: int, seed: int,
                   input_size: int | None, weights: str | None, pack_path: Path | None) -> str:
    """The command that repeats a tuning run: every flag that differs from the task's defaults,
    the base weights included (the record's sha256 alone would not say where they came from)."""
    spec = spec_of(task)
    flags = f" --pack devicepack/{Path(pack_path).name}" if pack_path else ""
    flags += f" --learning-rates {' '.join(rates)} --epochs {epochs} --batch-size {batch_size}"
    flags += f" --input-size {input_size}" if input_size != spec.input_size else ""
    flags += f" --seed {seed}" if seed != spec.seed else ""
    flags += f" --weights {weights}" if weights else ""
    return f"KERAS_BACKEND={backend} python -m train.finetune run {task}{flags}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fine-tune a whole image backbone (brain, skin, histopathology).")
    parser.add_argument("step", choices=["pack", "run"])
    parser.add_argument("task", choices=TUNABLE)
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(imaging.BACKBONES))
    parser.add_argument("--weights", default=None, help="base weights: file, 'imagenet' or 'none' (default: ../shared)")
    parser.add_argument("--pack", type=Path, help="run: train from this pack instead of the data root")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=None,
                        help="one run per rate; the best on validation is kept (default: the task's shipped run)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: the task's shipped run (brain 12, skin 40, histopathology 32)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the task's (histopathology 64, else 32)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="backbone input side in px (default: histopathology 96, else the backbone's own)")
    parser.add_argument("--out", type=Path, default=None, help="default: build/<task>/finetuned")
    parser.add_argument("--seed", type=int, default=None,
                        help="default: the task's shipped run; another seed tunes another member for an ensemble")
    parser.add_argument("--resume", action="store_true", help="run: carry on from the state an earlier call left in --out")
    parser.add_argument("--max-epochs-now", type=int, default=None,
                        help="run: stop after this many tuned epochs in this call (resume later with --resume)")
    args = parser.parse_args(argv)
    if args.step == "pack":
        pack(args.task, args.backbone, args.weights, input_size=args.input_size)
        return
    arrays = unpack(args.pack) if args.pack else task_arrays(args.task, args.backbone, args.input_size)
    print(f"{len(arrays['images'])} images loaded", flush=True)
    spec = spec_of(args.task)
    run(args.task, arrays, backbone=args.backbone, weights=args.weights,
        learning_rates=args.learning_rates or list(spec.learning_rates), epochs=args.epochs or spec.epochs,
        batch_size=args.batch_size or spec.batch_size, out=args.out or core.build_dir(args.task) / "finetuned",
        seed=spec.seed if args.seed is None else args.seed, input_size=args.input_size, pack_path=args.pack,
        resume=args.resume, max_epochs_now=args.max_epochs_now)


if __name__ == "__main__":
    main()
