"""EfficientNet-Lite in Keras 3 from ../shared/weights: the port reproduces the weights' PROVENANCE
check — the same top-5 ImageNet classes, with the same probabilities, on the same photographs —
so a wrong layout, padding, epsilon or preprocessing cannot pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

WEIGHTS = REPO_ROOT.parent / "shared" / "weights"

# ../shared/weights/PROVENANCE.md, "How we checked it", table 1: (ImageNet index, probability).
PROVENANCE_TOP5 = {
    "lite0": {"grace_hopper": [(400, .245), (667, .215), (652, .175), (887, .048), (906, .043)],
              "china": [(698, .280), (442, .181), (663, .058), (975, .055), (483, .041)],
              "flower": [(985, .321), (309, .053), (108, .052), (947, .045), (310, .030)]},
    "lite2": {"grace_hopper": [(834, .099), (906, .079), (457, .063), (652, .063), (917, .022)],
              "china": [(698, .351), (442, .071), (483, .052), (975, .032), (663, .028)],
              "flower": [(599, .372), (310, .026), (309, .022), (619, .021), (950, .017)]},
}


def photographs() -> dict[str, Path]:
    import matplotlib
    import sklearn

    return {"grace_hopper": Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg",
            "china": Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
            "flower": Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg"}


@pytest.mark.parametrize("variant, parameters", [("lite0", 4_694_024), ("lite2", 6_150_168)])
def test_the_port_reproduces_the_provenance_top5(variant, parameters):
    from PIL import Image

    from train.imaging import efficientnet_lite

    archive = WEIGHTS / f"efficientnet_{variant}_imagenet.npz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found")
    model = efficientnet_lite.build(variant, include_top=True, weights=archive)
    assert model.count_params() == parameters  # the PROVENANCE count, classifier included
    size = efficientnet_lite.VARIANTS[variant]["size"]
    for name, path in photographs().items():
        crop = efficientnet_lite.eval_crop(Image.open(path).convert("RGB"), size)
        logits = np.asarray(model.predict(efficientnet_lite.preprocess(np.asarray(crop))[None], verbose=0))[0]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        top = np.argsort(-probabilities)[:5]
        expected = PROVENANCE_TOP5[variant][name]
        assert {int(i) for i in top} == {i for i, _ in expected}, (name, top)
        for index, p in expected:
            assert abs(probabilities[index] - p) <= 0.002, (name, index, probabilities[index], p)


def test_blocks_follow_the_lite_scaling_rules():
    from train.imaging.efficientnet_lite import block_plan

    lite0, lite2 = block_plan("lite0"), block_plan("lite2")
    assert (len(lite0), len(lite2)) == (16, 21)
    assert [b["out"] for b in lite2 if b["letter"] == "a"] == [16, 24, 48, 88, 120, 208, 352]
    assert lite2[0]["in"] == lite0[0]["in"] == 32  # the stem is fixed when scaling
    assert sum(b["stage"] == 7 for b in lite2) == sum(b["stage"] == 1 for b in lite2) == 1  # never deepened


@pytest.mark.parametrize("name, grid", [("efficientnet_lite0", 7), ("efficientnet_lite2", 9)])
def test_lite_is_a_backbone_like_any_other(name, grid):
    # GIVEN the registered backbone, WHEN built as the tasks build it (raw 0..255 RGB in),
    # THEN it is the port on (x - 127) / 128, and the fine-tuning split composes back to it.
    from train import imaging
    from train.imaging import efficientnet_lite

    if not (WEIGHTS / imaging.DEFAULT_WEIGHTS[name]).is_file():
        pytest.skip("weights not found")
    extractor = imaging.build_feature_extractor(name, "default")
    size = imaging.BACKBONES[name].input_size
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    maps = np.asarray(extractor.predict(images, verbose=0))
    assert maps.shape == (2, grid, grid, efficientnet_lite.HEAD)
    port = imaging.backbone_of(extractor)
    np.testing.assert_allclose(np.asarray(port.predict(efficientnet_lite.preprocess(images), verbose=0)), maps,
                               rtol=1e-4, atol=1e-4)
    lower, upper = imaging.split_extractor(extractor, name)
    assert lower.output_shape[1:3] == (grid, grid)
    np.testing.assert_allclose(np.asarray(upper.predict(lower.predict(images, verbose=0), verbose=0)), maps,
                               rtol=1e-4, atol=1e-4)
