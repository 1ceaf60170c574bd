"""The device fine-tuning path: what travels (the pack), what comes back (weights + record), and
that tuned weights never reuse features cached for other weights."""

import json

import numpy as np
import pytest

from train import core, finetune, imaging
from train.brain import tuning as brain_tuning
from train.histopathology import tuning as histopathology_tuning
from train.skin import tuning as skin_tuning


@pytest.fixture()
def fake_task(monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    images[:3] = images[:3, :, :, :1]  # greyscale rows broadcast over RGB
    arrays = {"images": images, "split": np.array(["train", "val", "test"] * 2, dtype=object),
              "melanoma": np.array([0, 1, 0, 1, 1, 0]),
              "source": np.array(["HAM10000", "ISIC2017"] * 3, dtype=object)}
    monkeypatch.setattr(finetune, "task_arrays", lambda task, backbone, input_size=None: arrays)
    return arrays


def test_pack_keeps_train_and_val_only_and_round_trips(tmp_path, fake_task):
    path = finetune.pack("skin", "mobilenet_v2", "none", tmp_path)
    unpacked = finetune.unpack(path)
    keep = fake_task["split"] != "test"
    assert list(unpacked["split"]) == list(fake_task["split"][keep])  # test images never travel
    assert list(unpacked["source"]) == list(fake_task["source"][keep])
    np.testing.assert_array_equal(unpacked["melanoma"], fake_task["melanoma"][keep])
    assert unpacked["images"].shape == (4, 32, 32, 3) and unpacked["images"].dtype == np.uint8
    # WebP q90 is lossy but close (random noise is its worst case; real images err ≈ 1 grey level)
    error = np.abs(unpacked["images"].astype(int) - fake_task["images"][keep].astype(int)).mean()
    assert 0 < error < 40


def test_grey_pack_stores_one_channel_and_restores_three(tmp_path, monkeypatch):
    grey = np.repeat(np.linspace(0, 255, 32 * 32).reshape(1, 32, 32, 1).astype(np.uint8), 3, axis=-1)
    arrays = {"images": np.concatenate([grey, grey]), "split": np.array(["train", "val"], dtype=object),
              "tumor": np.array([0, 1]), "modality": np.array([0, 1]), "tumor_type": np.array([-1, 2]),
              "source": np.array(["a", "a"])}
    monkeypatch.setattr(finetune, "task_arrays", lambda task, backbone, input_size=None: arrays)
    unpacked = finetune.unpack(finetune.pack("brain", "mobilenet_v2", "none", tmp_path))
    assert np.array_equal(unpacked["images"][..., 0], unpacked["images"][..., 2])
    error = np.abs(unpacked["images"].astype(int) - grey.astype(int))
    assert error.mean() < 1.5 and error.max() <= 6  # a smooth image: near exact


def test_scores_rate_what_each_issue_asks():
    val = {"melanoma": np.array([0, 1, 0, 1]), "source": np.array(["a", "a", "b", "b"])}
    perfect_a_reversed_b = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], float)
    assert skin_tuning.score({"melanoma": perfect_a_reversed_b}, val) == pytest.approx(0.5)  # (1 + 0) / 2
    # Brain: CT AUC, MRI AUC and type accuracy, the MRI figures averaged over the MRI sources (a
    # source whose ranking is reversed and whose type is wrong counts as much as the bigger one).
    val = {"tumor": np.array([0, 1, 0, 1, 1, 0, 1]), "modality": np.array([0, 0, 1, 1, 1, 1, 1]),
           "tumor_type": np.array([-1, 0, -1, 2, 1, -1, 0]), "source": np.array(["a"] * 5 + ["b"] * 2)}
    outputs = {"tumor": np.array([[0.9, 0.1], [0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6], [0.2, 0.8], [0.7, 0.3]]),
               "tumor_type": np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 0]], float)}
    assert brain_tuning.score(outputs, val) == pytest.approx((1 + (1 + 0) / 2 + (1 + 0) / 2) / 3)


def test_cache_tags_separate_weights(tmp_path):
    a, b = tmp_path / "a.weights.h5", tmp_path / "b.weights.h5"
    a.write_bytes(b"tuned once")
    b.write_bytes(b"tuned twice")
    assert imaging.cache_tag("mobilenet_v2", "none") == "mobilenet_v2_random"
    assert imaging.cache_tag("mobilenet_v2", str(a)) != imaging.cache_tag("mobilenet_v2", str(b))
    assert imaging.cache_tag("mobilenet_v2", str(a)).startswith("mobilenet_v2_")


def test_default_weights_keep_the_plain_cache_tag(shared_data):
    assert imaging.cache_tag("mobilenet_v2", None) == "mobilenet_v2"


def test_recorded_fine_tuning_comes_from_the_file_beside_the_weights(tmp_path):
    weights = tmp_path / finetune.WEIGHTS_FILE
    weights.write_bytes(b"w")
    assert imaging.recorded_fine_tuning(str(weights)) == {}
    (tmp_path / finetune.SUMMARY_FILE).write_text(json.dumps({"best_epoch": 3, "runs": {"1e-4": {}}}))
    # per-rate runs stay in the file
    assert imaging.recorded_fine_tuning(str(weights)) == {"backbone_tuning": {"best_epoch": 3}}
    assert imaging.recorded_fine_tuning("imagenet") == {}


def test_committed_tuned_weights_match_their_record():
    root = core.REPO_ROOT / "train" / "weights"
    task_of = {path: path.relative_to(root).parts[0] for path in root.glob(f"*/**/{finetune.SUMMARY_FILE}")}
    assert set(task_of.values()) == {"brain", "skin", "histopathology"}
    for path, task in task_of.items():
        record = json.loads(path.read_text())
        assert imaging.file_sha256(path.parent / finetune.WEIGHTS_FILE) == record["weights_sha256"]
        assert record["task"] == task and record["best_epoch"] <= record["epochs_run"]


def test_histopathology_score_is_the_validation_idc_auc():
    val = {"idc": np.array([0, 0, 1, 1])}
    assert histopathology_tuning.score({"idc": np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8]])},
                                         val) == pytest.approx(0.75)  # one of four pairs misordered


def test_hed_jitter_recolours_in_training_only_and_is_exact_at_zero_strength():
    images = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 3)).astype(np.float32)
    images[1] = images[0]
    layer = imaging.hed_jitter_layer(seed=3)
    assert np.array_equal(np.asarray(layer(images, training=False)), images)
    jittered = np.asarray(layer(images, training=True))
    assert jittered.min() >= 0 and jittered.max() <= 255
    assert np.abs(jittered - images).mean() > 0.5  # stains moved
    # one α, β per stain and image: the same image twice in a batch gets two colourings
    assert np.abs(jittered[0] - jittered[1]).mean() > 0.5
    # RGB → stain densities → RGB round-trips when nothing is perturbed
    identity = np.asarray(imaging.hed_jitter_layer(scale=0.0, shift=0.0)(images, training=True))
    np.testing.assert_allclose(identity, images, atol=1e-2)


def test_grey_intensity_jitter_keeps_slices_grey_and_acts_in_training_only():
    grey = np.random.default_rng(4).integers(0, 256, (4, 8, 8, 1)).astype(np.float32)
    images = np.repeat(grey, 3, axis=-1)
    layer = imaging.grey_intensity_layer(seed=3)
    assert np.array_equal(np.asarray(layer(images, training=False)), images)
    jittered = np.asarray(layer(images, training=True))
    assert jittered.min() >= 0 and jittered.max() <= 255 and np.abs(jittered - images).mean() > 0.5
    # one gamma and one noise field per image, the same in the three channels: still greyscale
    assert np.array_equal(jittered[..., 0], jittered[..., 2])
    # γ = 1 and no noise: the identity
    identity = np.asarray(imaging.grey_intensity_layer(gamma=1.0, noise=0.0)(images, training=True))
    np.testing.assert_allclose(identity, images, atol=1e-2)


def test_anatomy_augmentation_is_described_layer_by_layer():
    text = imaging.augmentation_text(imaging.anatomy_augmentation(0))
    assert "zoom (height ±10%, width ±20% apart)" in text and "gamma (×/÷1.5)" in text and "blur" in text


def test_tf_data_stain_jitter_perturbs_one_patch_per_draw_and_round_trips_at_zero_strength():
    import tensorflow as tf

    from train.imaging import augmentation as augment

    patch = np.random.default_rng(2).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    tf.random.set_seed(5)
    jittered = [np.asarray(augment.hed_jitter(patch)) for _ in range(2)]
    assert all(0 <= j.min() and j.max() <= 255 for j in jittered)
    assert np.abs(jittered[0] - patch).mean() > 0.5 and np.abs(jittered[0] - jittered[1]).mean() > 0.5
    # the CancerNet candidates' tf.data path and the Keras layer share recolour_stains
    np.testing.assert_allclose(np.asarray(augment.hed_jitter(patch, scale=0.0, shift=0.0)), patch, atol=1e-2)


def test_tissue_augmentation_is_described_layer_by_layer():
    text = imaging.augmentation_text(imaging.tissue_augmentation(0))
    assert "H&E stain jitter (±5% scale, ±0.05 shift per stain)" in text and "rotation (±180°)" in text


def test_histopathology_candidate_runs_the_backbone_at_the_size_it_was_tuned_at():
    from train.histopathology.transfer_candidate import transfer_size

    assert transfer_size({"input_size": 128}) == 128
    assert transfer_size({}) == 96  # records written before --input-size existed were all tuned at 96 px


@pytest.mark.parametrize("task", ["histopathology", "skin"])
def test_the_card_lists_the_tuning_run_of_the_committed_backbone(task):
    from train.imaging import SUMMARY_FILE, file_sha256

    weights = core.REPO_ROOT / core.Release.load(task).options["weights"]
    record = json.loads(weights.with_name(SUMMARY_FILE).read_text())
    assert record["weights_sha256"] == file_sha256(weights)
    listed = {run["flags"]: run["val"] for run in core.measurements(task)["tuning_runs"]}
    assert listed[f"--epochs {record['epochs_run']}"] == max(record["val_score"])


def test_recorded_command_repeats_the_run_with_its_base_weights():
    shipped = finetune.tuning_command("skin", "torch", ["0.0001"], epochs=40, batch_size=32, seed=2017,
                                      input_size=None, weights=None, pack_path=finetune.PACK_DIR / "skin.npz")
    # the committed skin backbone's record, word for word
    assert shipped == ("KERAS_BACKEND=torch python -m train.finetune run skin --pack devicepack/skin.npz "
                       "--learning-rates 0.0001 --epochs 40 --batch-size 32")
    continued = finetune.tuning_command("skin", "tensorflow", ["2e-05"], epochs=8, batch_size=32, seed=2017,
                                        input_size=256, weights="train/weights/skin/backbone.weights.h5",
                                        pack_path=None)
    assert continued.endswith("--input-size 256 --weights train/weights/skin/backbone.weights.h5")


def test_input_size_reaches_the_image_loader(tmp_path, monkeypatch, fake_task):
    asked, packed = [], []
    monkeypatch.setattr(finetune, "task_arrays", lambda task, backbone, input_size=None: asked.append(input_size)
                        or fake_task)
    finetune.pack("skin", "mobilenet_v2", "none", tmp_path, input_size=256)
    monkeypatch.setattr(finetune, "pack", lambda *args, **kwargs: packed.append(kwargs["input_size"]))
    finetune.main(["pack", "skin", "--input-size", "288"])
    assert asked == [256] and packed == [288]
