"""Training smoke tests on tiny synthetic data: each in-graph preprocessing equals its NumPy twin,
and conversion keeps it (float32 TFLite within the parity bound)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from convert.convert import ParityError, convert_model, run_tflite  # noqa: E402


def test_leukemia_graph_matches_numpy_and_survives_conversion():
    from train.leukemia import model as leukemia

    rng = np.random.default_rng(0)
    raw = rng.lognormal(6.0, 1.2, size=(24, 300)) - 50.0  # MAS-4-like: skewed, a few negatives
    labels = np.array([0] * 16 + [1] * 8)
    raw[labels == 1, :20] *= 8.0  # an informative block
    projection = leukemia.FittedProjection.fit(raw, labels, n_components=4, n_genes=50, seed=0)
    head, _ = leukemia.fit_head(projection.transform(raw), labels, {"hidden_units": 4, "dropout_rate": 0.0, "l2": 0.0,
                                                                   "learning_rate": 0.01}, seed=0, epochs=2)
    model = leukemia.build_serving_model(projection, head)
    expected = np.asarray(head(projection.transform(raw).astype(np.float32), training=False))
    assert np.allclose(np.asarray(model(raw.astype(np.float32), training=False)), expected, atol=1e-4)
    converted = convert_model(model, raw.astype(np.float32))["float32"]
    assert converted.max_abs_diff < 1e-4
    assert np.allclose(run_tflite(converted.content, raw.astype(np.float32))["output_0"], expected, atol=1e-4)


def synthetic_cohort(n: int = 160, genes: int = 12, seed: int = 1):
    """Expression and clinical values with survival that depends on both (a few clinical values missing)."""
    from train.breast_survival import data as bs_data

    rng = np.random.default_rng(seed)
    expression = rng.normal(size=(n, genes))
    clinical = np.column_stack([rng.uniform(30, 85, n), rng.gamma(2.0, 12.0, n), rng.poisson(1.5, n),
                                rng.integers(1, 4, n), rng.integers(0, 2, n), rng.integers(0, 2, n),
                                rng.integers(0, 2, n)]).astype(float)
    clinical[rng.choice(n, 6, replace=False), 1] = np.nan  # unknown tumour sizes
    risk = expression[:, 0] - expression[:, 1] + 0.3 * clinical[:, 3] + 0.02 * np.nan_to_num(clinical[:, 1], nan=20)
    months = rng.exponential(100 * np.exp(-risk))
    events = (rng.random(n) < 0.7).astype(int)
    return bs_data.Metabric([f"g{i}" for i in range(genes)], expression, months, events, events,
                            np.array(["train"] * n), clinical)


@pytest.mark.parametrize("method", ["kmeans", "cox"])
def test_survival_graph_matches_numpy_for_both_models(method):
    from train.breast_survival import clinical as bs_clinical, graph, model as bs
    from train.breast_survival.prognosis import ExpressionCurves
    from train.breast_survival.prognosis_candidates import fit_clinical_cox

    data = synthetic_cohort()
    model = bs.fit_kmeans(data, 3, seed=0) if method == "kmeans" else bs.fit_cox(data, "overall", 1.0)
    curves = ExpressionCurves.fit(model, data)
    prognosis = fit_clinical_cox(data, "overall")
    rows = graph.serving_rows(data, prognosis.fill_values)
    converted = convert_model(graph.build_serving_model(model, curves, prognosis, len(data.genes)), rows)["float32"]
    out = run_tflite(converted.content, rows)
    assert np.allclose(out["membership"], model.memberships(data.expression), atol=1e-4)
    assert (out["membership"].argmax(1) == model.groups(data.expression)).all()
    expression_risk = curves.risk(model, data.expression)
    assert np.allclose(out["risk"][:, 0], expression_risk, atol=1e-4)
    assert np.allclose(out["survival"], curves.survival(expression_risk), atol=1e-4)
    clinical_risk = prognosis.risk(data)
    assert np.allclose(out["clinical_risk"][:, 0], clinical_risk, atol=1e-4)
    assert np.allclose(out["clinical_survival"], prognosis.survival(clinical_risk), atol=1e-4)
    assert (out["clinical_membership"].argmax(1) == prognosis.groups(clinical_risk)).mean() > 0.98  # ties at band edges
    npi = bs_clinical.nottingham_prognostic_index(bs_clinical.imputed(data.clinical, prognosis.fill_values))
    assert np.allclose(out["nottingham_prognostic_index"][:, 0], npi, atol=1e-5)


def test_nottingham_index_is_the_published_formula():
    from train.breast_survival.clinical import nottingham_prognostic_index

    # age, size mm, positive nodes, grade, ER, PR, HER2: 0.2 × size in cm + node stage (1 / 2 / 3) + grade
    clinical = np.array([[60, 40, 0, 3, 1, 1, 0], [50, 15, 3, 1, 1, 0, 0], [70, 22, 4, 2, 0, 0, 1]], float)
    assert nottingham_prognostic_index(clinical) == pytest.approx([0.8 + 1 + 3, 0.3 + 2 + 1, 0.44 + 3 + 2])


def test_breslow_baseline_matches_lifelines_and_curves_fall():
    import pandas as pd
    from lifelines import CoxPHFitter

    from train.breast_survival.prognosis import CURVE_MONTHS, breslow_cumulative_hazard, curve_models

    data = synthetic_cohort(n=200, seed=4)
    risk = data.expression[:, 0] - data.expression[:, 1]
    risk = risk - risk.mean()
    frame = pd.DataFrame({"risk": risk, "months": data.months, "event": data.os_event})
    fitter = CoxPHFitter().fit(frame, "months", "event")
    models = curve_models(risk, data)
    assert models["overall"]["coefficient"] == pytest.approx(float(fitter.params_["risk"]), rel=1e-6)
    ours = breslow_cumulative_hazard(data.months, data.os_event, models["overall"]["coefficient"] * risk)
    # lifelines' baseline is at the covariate mean, which is 0 for a centred score
    theirs = fitter.baseline_cumulative_hazard_.iloc[:, 0]
    at_grid = theirs.reindex(theirs.index.union(CURVE_MONTHS)).ffill().fillna(0.0).loc[CURVE_MONTHS].to_numpy()
    assert np.allclose(ours, at_grid, rtol=1e-6, atol=1e-9)
    assert ours[0] == 0 and np.all(np.diff(ours) >= 0)


def test_fine_tuned_features_are_what_the_serving_extractor_computes(tmp_path, monkeypatch, shared_data):
    from train import core, imaging

    monkeypatch.setattr(core.paths, "BUILD_DIR", tmp_path)  # map caches go to a throwaway folder
    # ImageNet weights (../shared/weights): random ones give activations that underflow float16 caches
    extractor = imaging.build_feature_extractor("mobilenet_v2", None)
    images = np.random.default_rng(3).uniform(0, 255, (8, 224, 224, 3)).astype(np.float32)
    split = np.array(["train"] * 4 + ["val"] * 2 + ["test"] * 2)
    tuned = imaging.fine_tune_last_stage("unit", "mnv2", extractor, "mobilenet_v2", images, split,
                                          {"a": np.array([0, 1, 0, 1, 0, 1, 0, 1])},
                                          augmentations=imaging.MIRRORED_AND_FLIPPED, learning_rate=1e-3, epochs=1,
                                          seed=0)
    served = imaging.feature_maps(extractor, images).mean(axis=(1, 2))  # the extractor, after tuning
    assert tuned.pooled.shape == served.shape
    assert np.allclose(tuned.pooled, served, atol=5e-3 * np.abs(served).max())  # maps are cached as float16
    mirrored = imaging.feature_maps(extractor, images[:4, :, ::-1]).mean(axis=(1, 2))
    assert set(tuned.augmented_train) == {"mirrored", "flipped"}
    assert np.allclose(tuned.augmented_train["mirrored"], mirrored, atol=5e-3 * np.abs(mirrored).max())
    assert tuned.summary["augmentation"] == "original + mirrored + flipped training images"
    assert sorted(p.name for p in (tmp_path / "unit").iterdir()) == [
        "maps_mnv2_block_14_expand.npy", "maps_mnv2_block_14_expand_flipped_train.npy",
        "maps_mnv2_block_14_expand_mirrored_train.npy"]


def test_elastic_net_cox_finds_the_informative_genes_and_orders_groups_by_risk():
    from lifelines.utils import concordance_index

    from train.breast_survival import data as bs_data, model as bs

    rng = np.random.default_rng(2)
    n, genes = 300, 40
    expression = rng.normal(size=(n, genes))
    risk = 1.2 * expression[:, 0] - 1.2 * expression[:, 1]
    months = rng.exponential(100 * np.exp(-risk))
    events = (rng.random(n) < 0.8).astype(int)
    data = bs_data.Metabric([f"g{i}" for i in range(genes)], expression, months, events, events, np.array(["train"] * n))
    model = bs.fit_coxnet(data, "overall", l1_ratio=0.5, seed=0)
    weights = model.projection[:, 0]
    assert weights[0] > 0 > weights[1], "risk rises with g0 and falls with g1"
    assert np.abs(weights[:2]).min() > np.abs(weights[2:]).max(), "the informative genes carry the largest weights"
    assert model.params["genes_used"] < genes, "the L1 part drops uninformative genes"
    groups = model.groups(expression)
    assert sorted(np.bincount(groups, minlength=4)) == pytest.approx([n / 4] * 4, abs=2)  # quartile bands
    assert concordance_index(months, -groups, events) > 0.7


def test_cross_validated_separation_is_high_for_real_signal_and_chance_for_none():
    from functools import partial

    from train.breast_survival import data as bs_data, evaluate as bs_evaluate, model as bs

    rng = np.random.default_rng(3)
    n, genes = 200, 30  # enough noise genes that a fit judged on its own patients would look good
    expression = rng.normal(size=(n, genes))
    months = rng.exponential(100 * np.exp(-1.5 * expression[:, 0]))
    os_event = (rng.random(n) < 0.8).astype(int)
    dss_event = os_event * (rng.random(n) < 0.7)  # breast-cancer deaths are a subset of all deaths
    fit = partial(bs.fit_cox, endpoint="overall", penalizer=0.01)

    def cohort(order):
        return bs_data.Metabric([f"g{i}" for i in range(genes)], expression, months[order], os_event[order],
                           dss_event[order], np.array(["train"] * n))

    real = bs_evaluate.cross_validated_separation(fit, cohort(np.arange(n)), seed=0, folds=4, repeats=2)
    assert real["held_out_patients"] == 50 and real["repeats"] == 2
    assert real["harrell_c_overall"]["mean"] > 0.65 and real["harrell_c_overall"]["sd"] > 0
    assert real["harrell_c_overall"]["min"] <= real["harrell_c_overall"]["mean"] <= real["harrell_c_overall"]["max"]
    shuffled = bs_evaluate.cross_validated_separation(fit, cohort(rng.permutation(n)), seed=0, folds=4, repeats=2)
    assert abs(shuffled["harrell_c_overall"]["mean"] - 0.5) < 0.08, "held-out folds are really held out"


def test_variant_is_eligible_only_if_it_ran_and_every_metric_stays_within_the_bound():
    from convert.convert import eligible_variants

    comparison = {"float32": {"auc_a": 0.900, "auc_b": 0.800},
                  "float16": {"auc_a": 0.896, "auc_b": 0.804},  # both within 0.005
                  "int8": {"auc_a": 0.899, "auc_b": 0.790},  # one metric off by 0.010
                  "broken": {"failed": "DIV failed to invoke"}}
    assert eligible_variants(comparison, ("auc_a", "auc_b")) == ["float32", "float16"]
    assert eligible_variants(comparison, ("auc_a",)) == ["float32", "float16", "int8"]


def test_choose_variant_prefers_the_smaller_file_when_timings_are_close():
    from convert.convert import choose_variant

    comparison = {"float32": {"bytes": 9_000_000, "ms": 7.10},
                  "float16": {"bytes": 4_500_000, "ms": 7.30},  # 3% slower: timing noise, half the size
                  "int8": {"bytes": 2_700_000, "ms": 9.00}}  # 27% slower: a real cost
    assert choose_variant(comparison, ["float32", "float16", "int8"], "ms") == "float16"
    assert choose_variant(comparison, ["float32", "int8"], "ms") == "float32"
    comparison["int8"]["ms"] = 3.6  # int8 fastest and smallest
    assert choose_variant(comparison, ["float32", "float16", "int8"], "ms") == "int8"


def test_retraining_keeps_the_experiments_other_commands_recorded(tmp_path, monkeypatch):
    # GIVEN a training record where `make experiment-…` recorded a run, WHEN training rewrites it,
    # THEN the new training fields are written, the recorded experiments survive, and they land in
    # training.json, not in the serving contract.
    from train import core

    monkeypatch.setattr(core.record, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(core.paths, "FUNCTIONS_DIR", tmp_path / "functions")
    recorded = {"run": {"command": "make experiment-x"}, "candidates": {"a": {"val_auc": 0.9}}}
    core.write_model_json("x", {"name": "x", "version": "1.0.0", "training": {"seed": 1, "experiments": recorded}})
    written = core.write_model_json("x", {"name": "x", "version": "1.0.1", "training": {"seed": 2}})
    assert written["version"] == "1.0.1" and written["training"]["seed"] == 2
    assert written["training"]["experiments"] == recorded
    assert core.read_model_json("x")["training"]["experiments"] == recorded
    contract = json.loads(core.model_json_path("x").read_text())
    record = json.loads(core.training_record_path("x").read_text())
    assert "training" not in contract and contract["version"] == "1.0.1"
    assert record["training"]["experiments"] == recorded and record["version"] == "1.0.1"


def test_whole_backbone_fine_tuning_trains_every_layer_and_restores_the_best_epoch(shared_data):
    # GIVEN validation scores that peak after the first full epoch, WHEN the whole backbone is tuned,
    # THEN it stops after `patience` worse epochs, the extractor holds that epoch's weights, every
    # convolution moved from ImageNet/random init and batch-norm statistics did not.
    from train import imaging

    # ImageNet weights (../shared/weights): with random ones the last ReLU6 is silent and nothing trains
    extractor = imaging.build_feature_extractor("mobilenet_v2", None)
    backbone = imaging.backbone_of(extractor)
    images = np.random.default_rng(0).uniform(0, 255, (12, 224, 224, 3)).astype(np.float32)
    labels = np.array([0, 1] * 6)
    split = np.array(["train"] * 8 + ["val"] * 4)
    first_conv = backbone.get_layer("Conv1").kernel
    moving_mean = next(w for w in backbone.weights if "moving_mean" in w.path)
    before = {"conv": np.array(first_conv), "moving_mean": np.array(moving_mean)}
    planned, seen, improved = iter([0.1, 0.9, 0.2, 0.1, 0.8]), [], []

    def score(outputs):
        assert outputs["melanoma"].shape == (4, 2)
        seen.append(np.array(first_conv))
        return next(planned)

    summary = imaging.fine_tune_whole_backbone(extractor, images, {"melanoma": labels}, split, score=score,
                                                augmentation=imaging.dermoscopy_augmentation(0), learning_rate=1e-3,
                                                epochs=4, seed=0, head_epochs=1, patience=2, batch_size=4,
                                                on_improvement=lambda epoch, value: improved.append((epoch, value)))
    assert (summary["best_epoch"], summary["epochs_run"]) == (1, 3)
    assert improved == [(1, 0.9)]  # the checkpoint hook fires on a new best only
    assert np.array_equal(np.array(first_conv), seen[1])  # the best epoch's weights, not the last
    assert not np.allclose(seen[1], before["conv"])  # the first convolution trained too
    assert np.array_equal(np.array(moving_mean), before["moving_mean"])


def test_whole_backbone_fine_tuning_with_several_targets_ignores_missing_labels(shared_data):
    # GIVEN the brain's three targets, untyped images labelled -1, WHEN tuned with a cosine schedule,
    # THEN every head's validation outputs reach the score and the run completes.
    from train import imaging

    extractor = imaging.build_feature_extractor("mobilenet_v2", None)
    images = np.random.default_rng(0).uniform(0, 255, (8, 224, 224, 3)).astype(np.float32)
    targets = {"tumor": np.array([0, 1] * 4), "tumor_type": np.array([-1, 0, -1, 2, -1, 1, -1, 0])}
    split = np.array(["train"] * 6 + ["val"] * 2)
    shapes = []
    summary = imaging.fine_tune_whole_backbone(
        extractor, images, targets, split, score=lambda o: shapes.append({k: v.shape for k, v in o.items()}) or 0.5,
        augmentation=imaging.anatomy_augmentation(0), learning_rate=1e-4, epochs=1, seed=0, head_epochs=1,
        batch_size=3, cosine_decay=True)
    assert shapes[-1] == {"tumor": (2, 2), "tumor_type": (2, 3)}
    assert summary["schedule"] == "cosine decay to 0"
    assert summary["augmentation"].startswith("flips (horizontal), rotation (±11°), zoom (height ±10%, width ±20% apart)")


def test_dermoscopy_augmentation_changes_training_images_only():
    from train import imaging

    augmentation = imaging.dermoscopy_augmentation(0)
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    assert np.array_equal(np.asarray(augmentation(images, training=False)), images)
    assert not np.allclose(np.asarray(augmentation(images, training=True)), images)


def test_parity_failure_is_loud():
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ParityError):
        convert_model(model, np.ones((4, 3), np.float32), float_bound=-1.0)


def test_parity_is_absolute_for_probabilities_and_relative_for_the_ood_score(monkeypatch):
    # GIVEN a converted model off by 1e-5 on a probability and by 1e-2 on a score of 100, THEN parity
    # reports 1e-5 absolute and 1e-4 relative; a score 1% off fails the conversion
    from convert import convert as conversion

    expected = {"probabilities": np.array([[0.25, 0.75]]), "ood_score": np.array([100.0])}
    monkeypatch.setattr(conversion, "_keras_outputs", lambda model, batch: expected)
    monkeypatch.setattr(conversion, "run_tflite", lambda content, batch: {
        "probabilities": expected["probabilities"] + 1e-5, "ood_score": expected["ood_score"] + 1e-2})
    absolute, relative = conversion.parity(None, b"", np.zeros((1, 3)))
    assert (absolute, relative) == (pytest.approx(1e-5), pytest.approx(1e-4))
    monkeypatch.setattr(conversion, "_keras_outputs", lambda model, batch: {"probabilities": expected["probabilities"]})
    monkeypatch.setattr(conversion, "run_tflite", lambda content, batch: {"probabilities": expected["probabilities"]})
    assert conversion.parity(None, b"", np.zeros((1, 3))) == (0.0, None)


def test_an_ood_score_off_by_a_percent_fails_the_conversion(monkeypatch):
    import keras

    from convert import convert as conversion

    inputs = keras.Input((3,))
    model = keras.Model(inputs, {"probabilities": keras.layers.Dense(2)(inputs), "ood_score": keras.layers.Dense(1)(inputs)})
    monkeypatch.setattr(conversion, "parity", lambda *args: (0.0, 0.01))
    with pytest.raises(ParityError, match="ood score"):
        convert_model(model, np.ones((4, 3), np.float32))


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "resnet50"])  # resnet50: a shortcut crosses the cut
def test_backbone_split_is_exact_and_fine_tuning_trains_the_serving_layers(backbone):
    import keras

    from train import imaging

    extractor = imaging.build_feature_extractor(backbone, "none")
    lower, upper = imaging.split_extractor(extractor, backbone)
    size = imaging.BACKBONES[backbone].input_size
    images = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    maps = np.asarray(lower(images))
    assert np.allclose(np.asarray(upper(maps)), np.asarray(extractor(images)), atol=1e-5)

    backbone_model = imaging.backbone_of(extractor)
    norms = [layer for layer in upper.layers if isinstance(layer, keras.layers.BatchNormalization)]
    before_norm = [w.copy() for w in norms[-1].get_weights()]
    convs = [layer for layer in upper.layers if isinstance(layer, keras.layers.Conv2D)]
    before_conv = convs[-1].get_weights()[0].copy()
    targets = {"a": np.array([0, 1, 0, 1]), "b": np.array([-1, 2, 0, -1])}  # -1: no label for head b
    summary = imaging.fine_tune_top(extractor, upper, maps, targets, (maps, targets), learning_rate=1e-3,
                                     epochs=1, seed=0)
    assert summary["epochs_run"] == 1 and summary["trainable_weights"] > 0
    assert convs[-1] is backbone_model.get_layer(convs[-1].name)  # upper shares the serving layers …
    assert not np.array_equal(before_conv, convs[-1].get_weights()[0])  # … and training changed them
    assert all(np.array_equal(a, b) for a, b in zip(before_norm, norms[-1].get_weights()))  # BN frozen
    assert not backbone_model.trainable


def test_a_tapped_extractor_serves_the_last_map_and_an_earlier_one_from_one_backbone():
    from train import imaging

    extractor = imaging.build_feature_extractor("mobilenet_v2", "none", input_size=96, source_size=50)
    tapped = imaging.tapped_extractor(extractor, "block_10_expand_relu")
    images = np.random.default_rng(0).uniform(0, 255, (3, 50, 50, 3)).astype(np.float32)
    last, earlier = (np.asarray(m) for m in tapped(images))
    assert np.allclose(last, np.asarray(extractor(images)), atol=1e-5)
    assert earlier.shape == (3, 6, 6, 384)  # block 10's expansion at 96 px: 1/16 of the side, 6 x 64 channels
    layer = imaging.backbone_of(extractor).get_layer("block_10_expand_relu")
    assert layer in imaging.backbone_of(tapped).layers  # the same layers, not a copy
    guarded_last, guarded_earlier = (np.asarray(m) for m in imaging.guard_maps(extractor, images, "block_10_expand_relu"))
    assert np.allclose(guarded_last, last, atol=1e-5) and np.allclose(guarded_earlier, earlier, atol=1e-5)
    plain_last, same_map = imaging.guard_maps(extractor, images, None)  # no layer named: the guard reads the last map
    assert same_map is plain_last and np.allclose(np.asarray(plain_last), last, atol=1e-5)


def test_symmetric_views_make_the_served_answer_ignore_flips_and_rotations():
    """Averaged over the 8 flips and rotations, the probability is the same for every orientation of
    the image and the CAM turns with it — in the converted model too; one view does not do that."""
    import keras

    from train import imaging

    keras.utils.set_random_seed(0)
    extractor = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, strides=2, padding="same"),
                                  keras.layers.Conv2D(6, (3, 2), strides=2, padding="same", activation="relu")])
    dense = keras.layers.Dense(2)
    dense.build((None, 6))
    heads = {"a": {"dense": dense, "cam_class": 1}}
    images = np.random.default_rng(4).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)  # logits of order 1
    turned = {"rot90": np.rot90(images, 1, axes=(1, 2)), "mirror": images[:, :, ::-1], "transpose": images.transpose(0, 2, 1, 3)}
    undo = {"rot90": lambda m: np.rot90(m, 1, axes=(1, 2)), "mirror": lambda m: m[:, :, ::-1],
            "transpose": lambda m: m.transpose(0, 2, 1)}

    symmetric = imaging.build_cam_model(extractor, heads, symmetric_views=True)
    content = convert_model(symmetric, images)["float32"].content
    reference = run_tflite(content, images)
    assert np.ptp(reference["a"][:, 1]) > 1e-3  # answers that differ between images: nothing saturated
    for name, batch in turned.items():
        answer = run_tflite(content, np.ascontiguousarray(batch))
        assert np.allclose(answer["a"], reference["a"], atol=1e-5), name
        assert np.allclose(answer["a_cam"], undo[name](reference["a_cam"]), atol=1e-4), name
    one_view = imaging.build_cam_model(extractor, heads)
    assert not np.allclose(one_view.predict(turned["rot90"].copy(), verbose=0)["a"],
                           one_view.predict(images, verbose=0)["a"], atol=1e-5)


def test_symmetric_views_score_the_view_averaged_features_out_of_distribution():
    """The served ood_score of an 8-view model is the score of the features averaged over the views:
    the same for every orientation, and what ``core.ood.score`` gives for those averaged features."""
    import keras

    from train import imaging
    from train.core import ood

    keras.utils.set_random_seed(0)
    extractor = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(6, 3, strides=4, padding="same",
                                                                                activation="relu")])
    dense = keras.layers.Dense(2)
    dense.build((None, 6))
    rng = np.random.default_rng(5)
    training = rng.uniform(0, 1, (64, 16, 16, 3)).astype(np.float32)
    pooled = np.asarray(extractor(training)).mean(axis=(1, 2))
    density = ood.fit_feature_density(pooled, np.repeat(["a", "b"], 32))
    model = imaging.build_cam_model(extractor, {"a": {"dense": dense, "cam_class": 1}}, symmetric_views=True,
                                    ood=density)
    images = training[:3]
    content = convert_model(model, images)["float32"].content
    reference = run_tflite(content, images)["ood_score"]
    assert np.allclose(run_tflite(content, np.ascontiguousarray(np.rot90(images, 1, axes=(1, 2))))["ood_score"],
                       reference, rtol=1e-4)
    views = [np.rot90(images, r, axes=(1, 2)) for r in range(4)]
    views += [v[:, :, ::-1] for v in views]
    averaged = np.mean([np.asarray(extractor(np.ascontiguousarray(v))).mean(axis=(1, 2)) for v in views], axis=0)
    assert np.allclose(reference, ood.score(density, averaged), rtol=1e-3, atol=1e-4)


def test_a_guard_on_an_earlier_layer_scores_that_layer_and_leaves_the_answer_alone():
    """``ood_layer``: the score reads the backbone's earlier map (averaged over the 8 views), from the
    same pass; the probabilities are those of the graph without it."""
    import keras

    from train import imaging
    from train.core import ood

    keras.utils.set_random_seed(0)
    extractor = imaging.build_feature_extractor("mobilenet_v2", "none", input_size=64)
    layer = imaging.BACKBONES["mobilenet_v2"].ood_layer
    images = np.random.default_rng(6).uniform(0, 255, (24, 64, 64, 3)).astype(np.float32)
    tapped = imaging.tap_only(extractor, layer)
    density = ood.fit_feature_density(imaging.pooled_outputs(tapped, images), np.repeat(["a", "b"], 12))
    dense = keras.layers.Dense(2)
    dense.build((None, 1280))
    heads = {"a": {"dense": dense, "cam_class": 1}}
    guarded = imaging.build_cam_model(extractor, heads, symmetric_views=True, ood=density, ood_layer=layer)
    plain = imaging.build_cam_model(extractor, heads, symmetric_views=True)
    out = guarded.predict(images[:2], verbose=0)
    assert np.allclose(out["a"], plain.predict(images[:2], verbose=0)["a"], atol=1e-6)
    views = [np.rot90(images[:2], r, axes=(1, 2)) for r in range(4)]
    views += [v[:, :, ::-1] for v in views]

    def view_averaged(model):
        return np.mean([imaging.pooled_outputs(model, np.ascontiguousarray(v)) for v in views], axis=0)

    assert np.allclose(out["ood_score"], ood.score(density, view_averaged(tapped)), rtol=1e-3)
    on_last_map = ood.fit_feature_density(imaging.pooled_outputs(extractor, images), np.repeat(["a", "b"], 12))
    assert not np.allclose(out["ood_score"], ood.score(on_last_map, view_averaged(extractor)), rtol=1e-2)


def test_two_backbone_graph_is_one_linear_head_over_both_feature_maps():
    """Concatenated maps under one head: the served logit map is each member's map through its share
    of the head's weights, summed (so the ensemble's CAM is exact), in the converted model too."""
    import keras

    from train import imaging

    keras.utils.set_random_seed(1)
    members = [keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(channels, 3, strides=4, padding="same",
                                                                               activation="relu")], name=f"member_{i}")
               for i, channels in enumerate((3, 5))]
    dense = keras.layers.Dense(2)
    dense.build((None, 8))
    kernel, bias = dense.get_weights()
    images = np.random.default_rng(5).uniform(0, 1, (3, 16, 16, 3)).astype(np.float32)
    maps = [np.asarray(member(images)) for member in members]
    expected_map = maps[0] @ kernel[:3] + maps[1] @ kernel[3:] + bias  # (3, 4, 4, 2)
    expected = np.exp(expected_map.mean(axis=(1, 2)))
    expected /= expected.sum(axis=1, keepdims=True)

    model = imaging.build_cam_model(imaging.concatenated_extractor(members), {"a": {"dense": dense, "cam_class": 1}})
    answer = run_tflite(convert_model(model, images)["float32"].content, images)
    assert np.allclose(answer["a_cam"], expected_map[..., 1], atol=1e-5)
    assert np.allclose(answer["a"], expected, atol=1e-5)
    assert np.ptp(expected[:, 1]) > 1e-3  # images answered differently: the check can tell members apart


def test_a_second_backbone_ships_only_if_it_beats_the_best_single_one_by_the_margin():
    from train.skin import candidates as skin

    single = {"frozen": {"score": 0.850}, "tuned": {"score": 0.855}}
    assert skin.choose_candidate({**single, "pair": {"score": 0.855 + skin.ENSEMBLE_MARGIN / 2, "backbones": 2}}) == "tuned"
    assert skin.choose_candidate({**single, "pair": {"score": 0.855 + skin.ENSEMBLE_MARGIN, "backbones": 2}}) == "pair"
    assert skin.choose_candidate(single) == "tuned"


def test_skin_feature_caches_are_named_by_input_size_except_at_the_backbone_default():
    import argparse

    from train.skin import candidates as skin

    def tag(size: int) -> str:
        return skin.feature_cache_tag(argparse.Namespace(backbone="mobilenet_v2", input_size=size), "none", True)

    assert tag(224) == "mobilenet_v2_random_sog"  # the names caches had before sizes could change
    assert tag(256) == "mobilenet_v2_random_sog_px256"


def test_whole_backbone_tuning_resumes_in_chunks_where_it_stopped(shared_data, tmp_path):
    # GIVEN a 2-epoch cosine run cut into chunks of one epoch, WHEN the second call resumes from the
    # state folder, THEN the scores, best epoch and optimizer step carry on as in one run, and the
    # same chunks from the same start give the same weights.
    from train import imaging

    images = np.random.default_rng(0).uniform(0, 255, (8, 96, 96, 3)).astype(np.float32)
    labels, split = np.array([0, 1] * 4), np.array(["train"] * 6 + ["val"] * 2)

    def tune(extractor, folder, scores, seed=0):
        return imaging.fine_tune_whole_backbone(
            extractor, images, {"melanoma": labels}, split, score=lambda outputs: next(scores),
            augmentation=imaging.dermoscopy_augmentation(0), learning_rate=1e-4, epochs=2, seed=seed, head_epochs=1,
            patience=3, batch_size=3, cosine_decay=True, state_dir=folder, max_epochs_now=1)

    def chunked(folder):
        extractor = imaging.build_feature_extractor("mobilenet_v2", None, input_size=96)
        planned = iter([0.5, 0.9, 0.6])  # head epoch, then tuned epochs 1-2: the best is epoch 1
        summaries = [tune(extractor, folder, planned) for _ in range(2)]
        return summaries, np.array(imaging.backbone_of(extractor).get_layer("Conv1").kernel)

    summaries, kernel = chunked(tmp_path / "a")
    assert [s["complete"] for s in summaries] == [False, True]
    assert summaries[-1]["val_score"] == [0.9, 0.6] and summaries[-1]["best_epoch"] == 1
    state = json.loads((tmp_path / "a" / "state.json").read_text())
    assert state["files"]["best"] == "best-epoch1.weights.h5" and len(list((tmp_path / "a").iterdir())) == 4
    with np.load(tmp_path / "a" / state["files"]["optimizer"]) as stored:
        assert int(stored["v0"]) == 2 * 2  # Adam's step: two tuned epochs of two batches, across the calls
    assert np.array_equal(kernel, chunked(tmp_path / "b")[1])
    with pytest.raises(ValueError, match="settings"):
        tune(imaging.build_feature_extractor("mobilenet_v2", None, input_size=96), tmp_path / "a", iter([0.5]),
             seed=1)
