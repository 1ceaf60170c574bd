"""Linear softmax heads on pooled features, the L2 strength chosen on validation.

Linear, because the serving graph applies a linear head to every cell of the feature map: its
pooled logits are the prediction and its positive-class map is an exact CAM (``cam.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.core.metrics import balanced_class_weight
from train.core.reproducibility import seed_everything


def train_linear_head(features: np.ndarray, labels: np.ndarray, n_classes: int, *, val: tuple[np.ndarray, np.ndarray],
                      l2: float, seed: int, epochs: int = 200, class_weighting: bool = True, name: str = "head"):
    """Softmax regression in Keras on pooled features; early stopping on validation loss."""
    import keras
    from keras import layers

    seed_everything(seed)
    inputs = keras.Input((features.shape[1],))
    outputs = layers.Dense(n_classes, activation="softmax", kernel_regularizer=keras.regularizers.l2(l2), name=name)(
        layers.Dropout(0.2)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    class_weight = balanced_class_weight(labels, n_classes) if class_weighting else None
    model.fit(features, labels, validation_data=val, epochs=epochs, batch_size=128, class_weight=class_weight,
              verbose=0, callbacks=[keras.callbacks.EarlyStopping(patience=15, restore_best_weights=True)])
    return model.get_layer(name)


def select_linear_head(features: np.ndarray, labels: np.ndarray, n_classes: int, *,
                       val: tuple[np.ndarray, np.ndarray], score, seed: int, name: str,
                       l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2)) -> dict[str, Any]:
    """``train_linear_head`` for each L2 in the grid; keep the head whose validation softmax
    probabilities ``score`` highest (the task says what counts: AUC, accuracy, a mean over sources)."""
    best = None
    for l2 in l2_grid:
        dense = train_linear_head(features, labels, n_classes, val=val, l2=l2, seed=seed, name=name)
        probabilities = head_probabilities(dense, val[0])
        value = score(probabilities)
        print(f"  {name} l2={l2:g}: validation score {value:.4f}", flush=True)
        if best is None or value > best["score"]:
            best = {"score": value, "l2": l2, "dense": dense, "val_probabilities": probabilities}
    return best


def head_probabilities(dense, features: np.ndarray) -> np.ndarray:
    """A linear softmax head's class probabilities for pooled ``features``, in NumPy."""
    weights, bias = dense.get_weights()
    logits = features @ weights + bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probabilities / probabilities.sum(axis=1, keepdims=True)
