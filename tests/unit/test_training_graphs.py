"""Training smoke tests on tiny synthetic data: each in-graph preprocessing equals its NumPy twin,
and conversion keeps it (float32 TFLite within the parity bound)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from convert.convert import ParityError, convert_model, run_tflite  # noqa: E402


def test_leukemia_graph_matches_numpy_and_survives_conversion():
    from train import leukemia

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


@pytest.mark.parametrize("method", ["kmeans", "cox"])
def test_survival_group_graph_matches_numpy(method):
    from train import breast_survival as bs

    rng = np.random.default_rng(1)
    n, genes = 120, 12
    expression = rng.normal(size=(n, genes))
    risk = expression[:, 0] - expression[:, 1]
    months = rng.exponential(100 * np.exp(-risk))
    events = (rng.random(n) < 0.7).astype(int)
    data = bs.Metabric([f"g{i}" for i in range(genes)], expression, months, events, events, np.array(["train"] * n))
    model = bs.fit_kmeans(data, 3, seed=0) if method == "kmeans" else bs.fit_cox(data, "overall", 1.0)
    keras_model = bs.build_serving_model(model, genes)
    converted = convert_model(keras_model, expression.astype(np.float32))["float32"]
    tflite = run_tflite(converted.content, expression.astype(np.float32))["output_0"]
    assert np.allclose(tflite, model.memberships(expression), atol=1e-4)
    assert (tflite.argmax(1) == model.groups(expression)).all()


def test_parity_failure_is_loud():
    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ParityError):
        convert_model(model, np.ones((4, 3), np.float32), float_bound=-1.0)
