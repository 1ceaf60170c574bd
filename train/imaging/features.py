"""Backbone outputs for every image, computed once and cached under ``build/<task>/`` (git-ignored).

Frozen-feature training runs on a CPU because the backbone turns every image into its last
feature map once; the small heads then train on the pooled features in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from train.core.paths import build_dir


def feature_maps(extractor, images: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
    return np.asarray(extractor.predict(images.astype(np.float32), batch_size=batch_size, verbose=0))


def pooled_features(task: str, tag: str, extractor, images: np.ndarray) -> np.ndarray:
    """Global-average-pooled features, cached under build/<task>/ (tag names backbone + variant)."""
    return cached_in_chunks(build_dir(task) / f"features_{tag}.npy", images,
                            lambda chunk: feature_maps(extractor, chunk).mean(axis=(1, 2)), f"features {tag}")


def cached_maps(task: str, tag: str, model, images: np.ndarray) -> np.ndarray:
    """``model`` applied to all images, cached as float16 under build/<task>/ (maps are big)."""
    return cached_in_chunks(build_dir(task) / f"maps_{tag}.npy", images,
                            lambda chunk: feature_maps(model, chunk).astype(np.float16), f"maps {tag}")


def guard_training_features(task: str, tag: str, extractor, layer: str, train_images: np.ndarray) -> np.ndarray:
    """The out-of-distribution score's fitting features: backbone ``layer``'s map of the training
    images, pooled, cached as ``<tag>_<layer>_train`` (``tag`` names the extractor's weights)."""
    from train.imaging.backbones import tap_only

    return pooled_features(task, f"{tag}_{layer}_train", tap_only(extractor, layer), train_images)


def pooled_outputs(model, inputs: np.ndarray) -> np.ndarray:
    """``model``'s output maps, globally average-pooled, 256 inputs at a time (not cached)."""
    return np.concatenate([feature_maps(model, inputs[start : start + 256]).mean(axis=(1, 2))
                           for start in range(0, len(inputs), 256)])


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
