"""
## The serving graph: both models in one TFLite file

Input ``profile``: the 489 source z-scores, then the seven clinical values in
``clinical.CLINICAL_FIELDS`` order (missing ones already set to their fill value by the function;
without clinical fields the function sends the fill values and reads only the expression outputs).

Outputs, by name:
* ``membership``, ``risk``, ``survival``: the expression-only model (its four soft group
  memberships exactly as before, its centred score, and its curves: endpoints × CURVE_MONTHS);
* ``clinical_membership``, ``clinical_risk``, ``clinical_survival``: the clinical + expression model;
* ``nottingham_prognostic_index``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.breast_survival.clinical import AGE, CLINICAL_FIELDS, GRADE, NODES, SIZE, imputed
from train.breast_survival.data import Metabric
from train.breast_survival.model import GroupModel, band_edges
from train.breast_survival.prognosis import ENDPOINTS, MAX_LOG_HAZARD_RATIO, ExpressionCurves, RiskModel


def serving_rows(data: Metabric, fill_values: np.ndarray) -> np.ndarray:
    """The graph's input for ``data``: expression, then the clinical values with missing ones filled."""
    return np.column_stack([data.expression, imputed(data.clinical, fill_values)]).astype(np.float32)


def _layers():
    """The custom layers, defined on first use so that importing this module needs no Keras."""
    import keras
    from keras import layers, ops

    def listed(a):
        return None if a is None else np.asarray(a).tolist()

    @keras.saving.register_keras_serializable(package="oncoserve")
    class SoftAssignment(layers.Layer):
        """Soft membership: softmax(-distance² / (2 τ)) to centroids (K-Means) or to score bands (Cox)."""

        def __init__(self, method: str, centroids=None, temperature=None, lower=None, upper=None,
                     band_scale=None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.method, self.temperature, self.band_scale = method, temperature, band_scale
            self.centroids = None if centroids is None else np.asarray(centroids, "float32")
            self.lower = None if lower is None else np.asarray(lower, "float32")
            self.upper = None if upper is None else np.asarray(upper, "float32")

        def call(self, projected):
            if self.method == "kmeans":
                squared = (ops.sum(projected * projected, axis=-1, keepdims=True)
                           - 2.0 * ops.matmul(projected, ops.transpose(self.centroids))
                           + ops.sum(self.centroids * self.centroids, axis=-1)[None, :])
                logits = -squared / (2.0 * self.temperature)
            else:
                delta = ops.relu(self.lower[None, :] - projected) + ops.relu(projected - self.upper[None, :])
                logits = -(delta * delta) / (2.0 * self.band_scale**2)
            return ops.softmax(logits, axis=-1)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "method": self.method, "centroids": listed(self.centroids),
                    "temperature": self.temperature, "lower": listed(self.lower), "upper": listed(self.upper),
                    "band_scale": self.band_scale}

    @keras.saving.register_keras_serializable(package="oncoserve")
    class Columns(layers.Layer):
        def __init__(self, start: int, stop: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.start, self.stop = start, stop

        def call(self, x):
            return x[:, self.start : self.stop]

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "start": self.start, "stop": self.stop}

    @keras.saving.register_keras_serializable(package="oncoserve")
    class ClinicalFeatures(layers.Layer):
        """clinical.clinical_features in the graph: the Nottingham index, then the seven (size, nodes on a log scale;
        log(1 + n), not log1p, which ONNX, one of the `make bench` baselines, has no operator for)."""

        def call(self, c):
            size, nodes, grade = c[:, SIZE : SIZE + 1], c[:, NODES : NODES + 1], c[:, GRADE : GRADE + 1]
            node_stage = 1.0 + ops.cast(nodes >= 1.0, "float32") + ops.cast(nodes >= 4.0, "float32")
            return ops.concatenate([0.02 * size + node_stage + grade, c[:, AGE : AGE + 1],
                                    ops.log(ops.maximum(size, 1.0)), ops.log(1.0 + nodes), c[:, GRADE:]], axis=-1)

    @keras.saving.register_keras_serializable(package="oncoserve")
    class SurvivalCurves(layers.Layer):
        """S(t | r) = exp(-H0(t) · exp(β r)) per endpoint: (batch, endpoints, grid). β r is clipped to
        ±MAX_LOG_HAZARD_RATIO so that absurd profiles (z-scores of 1e6) give a flat 0 or 1, never 0 · inf."""

        def __init__(self, coefficients, cumulative_hazard, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.coefficients = np.asarray(coefficients, "float32")  # (endpoints,)
            self.cumulative_hazard = np.asarray(cumulative_hazard, "float32")  # (endpoints, grid)

        def call(self, risk):
            log_ratio = ops.clip(risk[:, :, None] * self.coefficients[None, :, None], -MAX_LOG_HAZARD_RATIO,
                                 MAX_LOG_HAZARD_RATIO)
            relative = ops.exp(log_ratio)  # (batch, endpoints, 1)
            return ops.exp(-self.cumulative_hazard[None] * relative)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "coefficients": listed(self.coefficients),
                    "cumulative_hazard": listed(self.cumulative_hazard)}

    return keras, layers, ops, SoftAssignment, Columns, ClinicalFeatures, SurvivalCurves


def _curves(SurvivalCurves, calibration: dict[str, dict[str, Any]], name: str):
    return SurvivalCurves([calibration[e]["coefficient"] for e in ENDPOINTS],
                          [calibration[e]["cumulative_hazard"] for e in ENDPOINTS], name=name)


def build_serving_model(expression: GroupModel, curves: ExpressionCurves, prognosis: RiskModel, n_genes: int,
                        density: dict[str, Any] | None = None):
    """Profile (genes, then clinical values) in; groups, risks and curves of both predictors out, and
    with ``density`` (``core.ood`` on the gene z-scores) the out-of-distribution score."""
    keras, layers, ops, SoftAssignment, Columns, ClinicalFeatures, SurvivalCurves = _layers()
    inputs = keras.Input((n_genes + len(CLINICAL_FIELDS),), name="profile")
    genes = Columns(0, n_genes, name="genes")(inputs)

    # Expression only: the group graph as it was, then its score and curves
    x = layers.Normalization(mean=expression.mean, variance=expression.scale**2, name="standardise")(genes)
    projection = layers.Dense(expression.projection.shape[1], name="projection", trainable=False)
    projected = projection(x)
    projection.set_weights([expression.projection.astype("float32"), expression.projection_bias.astype("float32")])
    if expression.method == "kmeans":
        membership = SoftAssignment("kmeans", centroids=expression.centroids, temperature=expression.temperature,
                                    name="membership")(projected)
        score = layers.Dense(1, name="expected_group", trainable=False)
        risk = score(membership)
        score.set_weights([np.arange(4.0, dtype="float32")[:, None], np.array([-curves.centre], "float32")])
    else:
        lower, upper = band_edges(expression.cutpoints)
        membership = SoftAssignment("cox", lower=lower, upper=upper, band_scale=expression.band_scale,
                                    name="membership")(projected)
        risk = layers.Rescaling(1.0, offset=-curves.centre, name="risk")(projected)

    # Clinical + expression: one linear score on the genes and the clinical features
    features = ClinicalFeatures(name="clinical_features")(Columns(n_genes, None, name="clinical")(inputs))
    linear = layers.Dense(1, name="clinical_linear", trainable=False)
    clinical_risk = linear(layers.Concatenate(name="genes_and_clinical")([genes, features]))
    linear.set_weights([np.r_[prognosis.gene_weights, prognosis.clinical_weights].astype("float32")[:, None],
                        np.array([prognosis.bias], "float32")])
    lower, upper = band_edges(prognosis.cutpoints)
    outputs = {
        "membership": membership, "risk": risk, "survival": _curves(SurvivalCurves, curves.calibration, "survival")(risk),
        "clinical_membership": SoftAssignment("cox", lower=lower, upper=upper, band_scale=prognosis.band_scale,
                                              name="clinical_membership")(clinical_risk),
        "clinical_risk": clinical_risk,
        "clinical_survival": _curves(SurvivalCurves, prognosis.calibration, "clinical_survival")(clinical_risk),
        "nottingham_prognostic_index": Columns(0, 1, name="nottingham_prognostic_index")(features),
    }
    if density is not None:
        from train.core.ood import score_layer

        outputs["ood_score"] = score_layer(density, genes)
    return keras.Model(inputs, outputs, name=f"breast_survival_{expression.method}_and_clinical")
