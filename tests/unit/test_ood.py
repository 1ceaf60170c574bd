"""The out-of-distribution score: its graph equals its NumPy definition (and survives conversion,
int8 included, in float), the thresholds keep their promise, and the runtime's guard decides
refuse / report / flag from them."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from oncoserve_runtime import UnprocessableEntityError, ood as runtime_ood

from train.core import ood


def cohort(n=400, d=40, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(["a", "b"], n // 2)
    centres = {"a": rng.normal(0, 1, d), "b": rng.normal(0, 1, d)}
    # low-rank signal + small isotropic noise, like pooled backbone features
    loadings = rng.normal(0, 1, (5, d))
    features = np.stack([centres[g] for g in groups]) + rng.normal(0, 1, (n, 5)) @ loadings + rng.normal(0, 0.1, (n, d))
    return features, groups, rng


def test_a_training_like_sample_scores_low_and_a_far_one_high():
    features, groups, rng = cohort()
    params = ood.fit_feature_density(features[:300], groups[:300])
    held_out = ood.score(params, features[300:])
    far = ood.score(params, rng.normal(0, 3, (50, features.shape[1])))
    assert 0.5 < np.median(held_out) < 6  # ≈ 2 per the definition: one per term
    assert far.min() > np.quantile(held_out, 0.99)


def test_the_basis_keeps_residual_variance_with_few_samples():
    # GIVEN 38 samples of 7,000 dimensions (leukemia), THEN the basis spans at most a quarter of them,
    # so the training residual is not zero and the score stays finite
    rng = np.random.default_rng(1)
    params = ood.fit_feature_density(rng.normal(size=(38, 7000)), np.repeat(["x", "y"], 19))
    assert params["components"] == 9 and params["residual_scale"] > 0
    assert np.isfinite(ood.score(params, rng.normal(size=(5, 7000)))).all()


def test_dead_channels_do_not_empty_the_residual():
    # GIVEN features with most channels always zero (a tuned backbone's: histopathology's 1,280 span
    # 190 directions), THEN the basis takes half the spanned directions, the training residual keeps
    # variance, and a far input's score stays finite and far
    features, groups, rng = cohort(d=16)
    padded = np.concatenate([features, np.zeros((len(features), 48))], axis=1)
    params = ood.fit_feature_density(padded, groups)
    assert params["components"] == 8
    # the residual is the cohort's noise (sd 0.1) in the 8 spanned directions left out, not rounding error
    assert params["residual_scale"] > 0.5 * 0.1 ** 2 * 8
    held_out, far = ood.score(params, padded[:50]), ood.score(params, rng.normal(0, 1, (20, 64)))
    assert np.isfinite(far).all() and far.min() > np.quantile(held_out, 0.99)


def test_thresholds_refuse_at_most_one_percent_of_validation():
    scores = np.random.default_rng(2).gamma(2.0, 1.0, 1000)
    chosen = ood.thresholds(scores)
    assert (scores > chosen["refuse"]).mean() <= 0.01 and (scores > chosen["atypical"]).mean() <= 0.05
    assert chosen["atypical"] < chosen["refuse"]


def test_out_of_fold_scores_score_each_sample_without_it():
    features, groups, _ = cohort(n=60)
    scores = ood.out_of_fold_scores(features, groups, seed=0)
    in_sample = ood.score(ood.fit_feature_density(features, groups), features)
    assert scores.shape == (60,) and np.isfinite(scores).all()
    assert np.median(scores) > np.median(in_sample)  # held out: farther than when fitted on


def test_nearest_neighbour_scores_its_training_samples_zero_held_out_ones_low_and_far_ones_high():
    features, groups, rng = cohort()
    params = ood.fit_nearest_neighbour(features[:300], groups[:300], components=16)
    assert params["bank"].shape == (300, 16) and np.allclose(np.linalg.norm(params["bank"], axis=1), 1)
    # the 16 leading directions hold the cohort's signal: a training sample is its own nearest neighbour
    assert np.abs(ood.score(params, features[:300])).max() < 0.01
    held_out = ood.score(params, features[300:])
    # the same values in other channels: another kind of input with the same magnitudes
    far = ood.score(params, features[300:][:, rng.permutation(features.shape[1])])
    assert far.min() > held_out.max()


def test_nearest_neighbour_gives_an_all_zero_feature_vector_the_largest_distance_not_nan():
    features, groups, _ = cohort(d=16)
    params = ood.fit("nearest_neighbour", features, groups)
    assert params["components"] == 16  # never more directions than the features span
    assert ood.score(params, np.zeros((1, 16)))[0] == pytest.approx(1.0)


@pytest.mark.parametrize("method, far", [("nearest_neighbour", 2.0), ("mahalanobis", float("inf"))])
def test_a_one_colour_image_gets_the_farthest_score_in_the_graph(method, far):
    # GIVEN a graph whose score also sees the input pixels, THEN a blank, black or one-colour image
    # (a colour differs between channels, not within one) scores farthest whatever its features, and
    # an image with texture in a single channel keeps its own score
    pytest.importorskip("keras")
    import keras
    from keras import layers

    features, groups, rng = cohort(d=16)
    params = ood.fit(method, features, groups)
    images = keras.Input((4, 4, 3))
    hidden = layers.Dense(16, name="features")(layers.Flatten()(images))
    model = keras.Model(images, ood.score_layer(params, hidden, images=images, name="ood_region_score"))
    one_colour = [np.zeros((4, 4, 3)), np.full((4, 4, 3), 255.0), np.broadcast_to([230.0, 190.0, 160.0], (4, 4, 3)),
                  np.broadcast_to([30.0, 30.0, 200.0], (4, 4, 3)) + rng.normal(0, 1, (4, 4, 3))]
    textured = np.broadcast_to([230.0, 190.0, 160.0], (4, 4, 3)).copy()
    textured[..., 2] += rng.normal(0, 10, (4, 4))
    batch = np.stack([*one_colour, textured]).astype(np.float32)
    got = np.asarray(model(batch))
    assert np.all(got[:4] == far)
    expected = ood.score(params, np.asarray(model.get_layer("features")(layers.Flatten()(batch))))
    assert got[4] == pytest.approx(expected[4], rel=1e-4)
    assert {"ood_region", "ood_region_blank"} <= {layer.name for layer in model.layers}  # float in int8


def test_either_of_is_the_larger_scaled_score_in_numpy_and_in_the_graph():
    pytest.importorskip("keras")
    import keras

    features, groups, rng = cohort(d=16)
    parts = [ood.fit("mahalanobis", features[:300], groups[:300]), ood.fit("nearest_neighbour", features[:300], groups[:300])]
    params = ood.fit_either_of(parts, features[300:])
    held_out = features[300:]
    # each part over its own validation 99% quantile: at most 1% of validation above 1 in either part
    assert params["scales"] == [pytest.approx(np.quantile(ood.score(part, held_out), 0.99)) for part in parts]
    probe = np.concatenate([held_out[:5], 3 * held_out[:5], held_out[:5][:, rng.permutation(16)]])
    expected = np.max([ood.score(part, probe) / scale for part, scale in zip(parts, params["scales"])], axis=0)
    assert np.allclose(ood.score(params, probe), expected)
    inputs = keras.Input((16,))
    model = keras.Model(inputs, ood.score_layer(params, inputs))
    assert np.allclose(np.asarray(model(probe.astype(np.float32))), expected, rtol=1e-4, atol=1e-5)
    assert "larger of 2 scores" in ood.method_text(params)
    assert ood.graph_parameters(params) == sum(ood.graph_parameters(part) for part in parts)


def test_fit_names_its_method_and_refuses_an_unknown_one():
    features, groups, _ = cohort(d=16)
    assert ood.fit("mahalanobis", features, groups)["kind"] == "mahalanobis"
    with pytest.raises(ValueError, match="unknown out-of-distribution method"):
        ood.fit("softmax", features, groups)


@pytest.mark.parametrize("method", ood.METHODS)
@pytest.mark.parametrize("views", [1, 8])
def test_graph_layer_equals_numpy_on_feature_maps(views, method):
    pytest.importorskip("keras")
    import keras

    features, groups, rng = cohort(d=16)
    params = ood.fit(method, features, groups)
    maps = rng.normal(0.5, 1, (3 * views, 2, 2, 16)).astype(np.float32)
    inputs = keras.Input((2, 2, 16))
    model = keras.Model(inputs, ood.score_layer(params, inputs, views=views))
    pooled = maps.mean(axis=(1, 2))
    if views > 1:
        pooled = pooled.reshape(views, 3, 16).mean(axis=0)
    got = np.asarray(model(maps))
    assert got.shape == (3,)
    assert np.allclose(got, ood.score(params, pooled), rtol=1e-4, atol=1e-4)


def test_int8_conversion_keeps_the_score_in_float():
    # Calibrated on in-distribution samples only, an int8 score would be capped at their largest
    # value; the converter keeps the ``ood`` layer float, so an input whose (ReLU6-bounded, as
    # MobileNetV2's) features are unlike training still scores as far as in float.
    pytest.importorskip("tensorflow")
    import keras
    from keras import layers, ops

    from convert.convert import convert_model, run_tflite

    features, groups, _ = cohort(d=16)
    features = np.clip(features - features.min(), 0, None)
    features = (6.0 * features / features.max()).astype(np.float32)  # ID spans ReLU6's range
    params = ood.fit_feature_density(features, groups)
    inputs = keras.Input((16,))
    hidden = layers.ReLU(6.0)(layers.Dense(16, kernel_initializer="identity", name="features")(inputs))
    model = keras.Model(inputs, {"probabilities": layers.Softmax()(ops.stack([hidden[:, 0], hidden[:, 1]], axis=-1)),
                                 "ood_score": ood.score_layer(params, hidden)})
    converted = convert_model(model, features, variants=("float32", "int8"), float_bound=1e-3)
    far = np.tile(np.r_[np.full(8, 6.0), np.zeros(8)], (4, 1)).astype(np.float32)
    far[1:, :] = far[1:, ::-1]  # and its mirror
    expected = ood.score(params, far)
    got = run_tflite(converted["int8"].content, far)["ood_score"]
    typical_max = ood.score(params, features).max()
    assert expected.min() > 100 * typical_max
    # int8 features move the score (a factor below 2 here), but nothing caps it near the typical range
    assert got.min() > 100 * typical_max and np.all(got > expected / 2)


def test_int8_conversion_keeps_the_nearest_neighbour_bank_in_float():
    # The bank is the graph's largest constant; quantised, every similarity would move by its step.
    pytest.importorskip("tensorflow")
    import keras
    from keras import layers

    from convert.convert import convert_model, run_tflite

    features, groups, rng = cohort(d=16)
    features = np.clip(features - features.min(), 0, None).astype(np.float32)
    params = ood.fit_nearest_neighbour(features[:300], groups[:300], components=16)
    inputs = keras.Input((16,))
    hidden = layers.ReLU()(layers.Dense(16, kernel_initializer="identity", name="features")(inputs))
    model = keras.Model(inputs, {"probabilities": layers.Softmax()(layers.Dense(2)(hidden)),
                                 "ood_score": ood.score_layer(params, hidden)})
    converted = convert_model(model, features[:300], variants=("float32", "int8"), float_bound=1e-3)
    probe = np.concatenate([features[300:], rng.uniform(0, features.max(), (20, 16))]).astype(np.float32)
    got = run_tflite(converted["int8"].content, probe)["ood_score"]
    assert np.abs(got - ood.score(params, probe)).max() < 0.02  # only the int8 features' rounding moves it
    assert run_tflite(converted["int8"].content, features[:300])["ood_score"].max() < 0.02


SPEC = SimpleNamespace(tensor="ood_score", refuse_threshold=5.0, atypical_threshold=3.0)


def guarded_model():
    return SimpleNamespace(contract=SimpleNamespace(ood=SPEC))


@pytest.mark.parametrize("score, status", [(1.0, "in_distribution"), (3.5, "atypical"), (5.5, "out_of_distribution"),
                                           (float("nan"), "out_of_distribution")])
def test_assess_maps_a_score_to_its_status(score, status):
    block = runtime_ood.assess(SPEC, score)
    assert block["status"] == status and block["threshold"] == 5.0 and block["atypical_threshold"] == 3.0


def test_guard_refuses_far_inputs_with_the_score_unless_report_is_asked():
    outputs = {"ood_score": np.array([7.25], np.float32)}
    with pytest.raises(UnprocessableEntityError) as refused:
        runtime_ood.guard(guarded_model(), outputs, {})
    assert refused.value.code == "out_of_distribution" and refused.value.details["ood"]["score"] == 7.25
    assert runtime_ood.guard(guarded_model(), outputs, {"ood": "report"})["status"] == "out_of_distribution"
    assert runtime_ood.guard(guarded_model(), {"ood_score": np.array([3.5])}, {})["status"] == "atypical"


def test_a_model_without_a_score_answers_without_an_ood_block():
    model = SimpleNamespace(contract=SimpleNamespace(ood=None))
    assert runtime_ood.guard(model, {"probabilities": np.ones((1, 2))}, {}) is None
    assert runtime_ood.with_ood({"label": "x"}, None) == {"label": "x"}


REGION = SimpleNamespace(refuse_thresholds=(7.0, 5.0, 4.0), atypical_thresholds=(4.0, 3.5, 3.0))


def region_model(region=REGION):
    return SimpleNamespace(contract=SimpleNamespace(ood=SimpleNamespace(**vars(SPEC), region=region)))


def test_a_region_is_judged_by_its_median_tile_not_by_one_odd_tile():
    # GIVEN region thresholds for 1, 2 and 3+ tiles: one far tile among typical ones is that tile's
    # business; most tiles beyond the threshold refuse the image as a whole, with the median and the count
    one_odd = runtime_ood.region_guard(region_model(), np.array([1.0, 1.5, 2.0, 50.0]), {})
    assert one_odd["status"] == "in_distribution" and one_odd["tissue_tiles"] == 4 and one_odd["score"] == 1.75
    with pytest.raises(UnprocessableEntityError) as refused:
        runtime_ood.region_guard(region_model(), np.array([4.5, 5.0, 6.0, 1.0, 1.0]), {})
    assert refused.value.code == "out_of_distribution" and refused.value.details["ood"]["score"] == 4.5
    reported = runtime_ood.region_guard(region_model(), np.array([4.5, 5.0, 6.0]), {"ood": "report"})
    assert reported["status"] == "out_of_distribution" and reported["threshold"] == 4.0
    assert runtime_ood.region_guard(region_model(), np.array([3.5, 3.5, 3.5]), {})["status"] == "atypical"
    # no tissue tile (a blank or all-glass image) is refused too; a model without a region guard: no block
    with pytest.raises(UnprocessableEntityError) as blank:
        runtime_ood.region_guard(region_model(), np.zeros(0), {})
    assert blank.value.details["ood"] == {"score": None, "threshold": 7.0, "atypical_threshold": 4.0,
                                          "status": "out_of_distribution", "tissue_tiles": 0}
    assert runtime_ood.region_guard(region_model(), np.zeros(0), {"ood": "report"})["tissue_tiles"] == 0
    assert runtime_ood.region_guard(region_model(None), np.array([9.0]), {}) is None


def test_fewer_tiles_are_judged_against_their_own_looser_threshold():
    # a median of one or two tiles varies more: 4.5 refuses three tiles but not one or two
    assert runtime_ood.region_assessment(REGION, np.array([4.5]))["status"] == "atypical"
    assert runtime_ood.region_assessment(REGION, np.array([4.5, 4.5]))["status"] == "atypical"
    assert runtime_ood.region_assessment(REGION, np.array([4.5, 4.5, 4.5]))["status"] == "out_of_distribution"
    assert runtime_ood.region_assessment(REGION, np.full(40, 4.5))["threshold"] == 4.0  # the last pair holds above


def test_a_nan_tile_counts_as_out_and_an_infinite_median_is_reported_as_null():
    assert runtime_ood.region_assessment(REGION, np.array([1.0, np.nan, np.nan]))["status"] == "out_of_distribution"
    block = runtime_ood.region_assessment(REGION, np.array([np.inf, np.inf, 1.0]))
    assert block["status"] == "out_of_distribution" and block["score"] is None


def test_region_medians_are_one_patients_nearest_tiles():
    # GIVEN patient 0's tiles on a line scoring their x, patient 1 far away scoring 100, patient 2 too small
    positions = np.r_[np.c_[np.arange(10) * 50, np.zeros(10)], np.c_[np.arange(10) * 50, np.zeros(10)], np.zeros((2, 2))]
    scores = np.r_[np.arange(10.0), np.full(10, 100.0), np.full(2, 1e6)]
    patients = np.r_[np.zeros(10), np.ones(10), np.full(2, 2)]
    medians = ood.neighbour_region_medians(scores, patients, positions, 3)
    # THEN one region around each tile of patients 0 and 1, never mixing them, patient 2 left out
    assert len(medians) == 20 and set(medians[10:]) == {100.0}
    assert medians[0] == 1.0 and medians[5] == 5.0 and medians[9] == 8.0  # ends: the two inward neighbours
    # AND the same regions give any other statistic (the evaluation's "every tile refused": their smallest score)
    smallest = ood.neighbour_region_medians(scores, patients, positions, 3, statistic=np.min)
    assert smallest[0] == 0.0 and smallest[5] == 4.0 and smallest[9] == 7.0 and set(smallest[10:]) == {100.0}


def test_region_thresholds_refuse_at_most_one_percent_of_validation_regions_per_tile_count():
    rng = np.random.default_rng(4)
    scores, patients = rng.gamma(4, 0.5, 3000), rng.integers(0, 30, 3000)
    positions = rng.integers(0, 2000, (3000, 2))
    block = ood.region_block(scores, patients, positions)
    refuse = np.array(block["refuse_thresholds"])
    assert len(refuse) == ood.REGION_MAX_TILES and np.all(np.diff(refuse) <= 0)  # never stricter for fewer tiles
    for n in (1, 4, 16):
        medians = ood.neighbour_region_medians(scores, patients, positions, n)
        assert (medians > refuse[n - 1]).mean() <= 0.01
    assert np.all(np.array(block["atypical_thresholds"]) <= refuse)
    # no patient with enough tiles: no region guard
    assert ood.region_block(scores[:10], patients[:10], positions[:10]) is None
