"""The serving graph of an image model: linear heads applied to every cell of the feature map, so
the pooled logits are the prediction and the positive class's map is the class-activation map
(Zhou et al. 2016). The TFLite model outputs what the explanation needs; Lambda computes no gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.core.plots import plots_dir, pyplot


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


def build_cam_model(extractor, heads: dict[str, Any], *, symmetric_views: bool = False,
                    ood: dict[str, Any] | None = None, ood_layer: str | None = None):
    """Serving graph: features → every head applied per cell → pooled logits → softmax.

    Outputs a dict: ``<head>`` probabilities for each head and ``<head>_cam`` logit maps (of class
    ``cam_class``) for the heads that name one. ``symmetric_views``: for images with no up or left
    (dermoscopy), every cell's logits averaged over the image's 8 flips and rotations, each view
    turned back first (8× the compute). The heads are linear, so this is the head on the averaged
    features and the CAM stays exact; averaging the logit maps rather than the features keeps the
    graph exportable to ONNX (tf2onnx mis-infers the head's MatMul after the view transposes).
    ``ood``: the constants of ``ood.fit_feature_density``; adds the ``ood_score`` output, computed
    on the pooled features (averaged over the views when there are 8) of the last map, or of the
    backbone's ``ood_layer`` map (same backbone pass, ``backbones.guard_maps``).
    """
    import keras
    from keras import layers, ops

    from train.imaging.backbones import guard_maps

    inputs = keras.Input(extractor.input_shape[1:], name="image")
    feature_map, ood_map = guard_maps(extractor, stack_symmetric_views(inputs) if symmetric_views else inputs, ood_layer)
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
    if ood is not None:
        from train.core.ood import score_layer

        outputs["ood_score"] = score_layer(ood, ood_map, views=len(SQUARE_SYMMETRIES) if symmetric_views else 1)
    return keras.Model(inputs, outputs, name="transfer_cam")


def plot_cam_examples(task: str, images: np.ndarray, cams: np.ndarray, titles: list[str]) -> str:
    """One row of images with their normalised CAMs overlaid, as the function would explain them."""
    from PIL import Image

    from oncoserve_runtime import normalise_cam

    plt = pyplot()
    fig, axes = plt.subplots(1, len(images), figsize=(3 * len(images), 3.2))
    for ax, image, cam, title in zip(axes, images, cams, titles):
        heat = np.asarray(Image.fromarray(normalise_cam(cam).astype(np.float32), mode="F")
                          .resize(image.shape[:2][::-1], Image.BILINEAR))
        ax.imshow(image.astype(np.uint8))
        ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(plots_dir(task) / "cam_examples.png", dpi=90)
    plt.close(fig)
    return "plots/cam_examples.png"
