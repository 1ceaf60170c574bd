"""Training-time augmentation as TensorFlow ops (tf.data map functions); never in a serving graph.

Histology: flips and 90° rotations (a slide has no up), and H&E stain jitter in the
haematoxylin-eosin-DAB optical-density space (Ruifrok & Johnston 2001; "HED-light" of Tellez et
al. 2019), which simulates the colour differences between labs and scanners.
"""

from __future__ import annotations

import numpy as np

# Ruifrok & Johnston: optical density of haematoxylin, eosin and DAB in RGB (rows), unit-normalised.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=np.float32)
RGB_FROM_HED /= np.linalg.norm(RGB_FROM_HED, axis=1, keepdims=True)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED).astype(np.float32)


def flips_and_right_angles(image):
    import tensorflow as tf

    image = tf.image.random_flip_left_right(image)
    image = tf.image.random_flip_up_down(image)
    return tf.image.rot90(image, k=tf.random.uniform([], 0, 4, dtype=tf.int32))


def recolour_stains(rgb, alpha, beta):
    """RGB 0..255 → stain optical densities, od' = od·α + β per stain (α, β broadcast over the last,
    stain axis), → RGB. Keras ops, so the tf.data jitter here and the Keras layer of ``train.transfer``
    (any backend) perturb stains with one formula."""
    from keras import ops

    hed = ops.tensordot(-ops.log((rgb + 1.0) / 256.0), HED_FROM_RGB, axes=1)
    return ops.clip(256.0 * ops.exp(-ops.tensordot(hed * alpha + beta, RGB_FROM_HED, axes=1)) - 1.0, 0.0, 255.0)


def hed_jitter(image, scale: float = 0.05, shift: float = 0.05):
    """Perturb each stain's optical density: od' = od·(1+α) + β, α, β ~ U(±scale), U(±shift)."""
    import tensorflow as tf

    alpha = tf.random.uniform([3], 1.0 - scale, 1.0 + scale)
    beta = tf.random.uniform([3], -shift, shift)
    return recolour_stains(tf.cast(image, tf.float32), alpha, beta)


def brightness_contrast(image, brightness: float = 0.08, contrast: float = 0.1):
    import tensorflow as tf

    image = tf.cast(image, tf.float32)
    image = tf.image.random_contrast(image, 1.0 - contrast, 1.0 + contrast)
    image = image + tf.random.uniform([], -brightness, brightness) * 255.0
    return tf.clip_by_value(image, 0.0, 255.0)
