"""Training-time augmentation; never in a serving graph.

Keras random layers (any backend, so a lent GPU runs them on torch or JAX) for whole-backbone
tuning, one pipeline per kind of image; and TensorFlow ops for the ``tf.data`` input of CancerNet.
Histology: flips and 90° rotations (a slide has no up), and H&E stain jitter in the
haematoxylin-eosin-DAB optical-density space (Ruifrok & Johnston 2001; "HED-light" of Tellez et
al. 2019), which simulates the colour differences between labs and scanners.
"""

from __future__ import annotations

from typing import Any

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
    stain axis), → RGB. Keras ops, so the tf.data jitter here and the Keras layer below
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


def dermoscopy_augmentation(seed: int):
    """Training-only random layers for images without orientation or fixed lighting: flips, any
    rotation (reflected borders), brightness and contrast. Keras layers, so the same code runs on
    the JAX backend of a lent GPU; at inference they pass images through unchanged."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal_and_vertical", seed=seed),
                             layers.RandomRotation(0.5, fill_mode="reflect", seed=seed + 1),
                             layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 2),
                             layers.RandomContrast(0.15, seed=seed + 3)], name="augmentation")


def tissue_augmentation(seed: int):
    """Training-only random layers for H&E patches: flips and any rotation (a slide has no up),
    H&E stain jitter (labs and scanners differ mostly in stain colour), brightness and contrast."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal_and_vertical", seed=seed),
                             layers.RandomRotation(0.5, fill_mode="reflect", seed=seed + 1),
                             hed_jitter_layer(seed=seed + 2),
                             layers.RandomBrightness(0.08, value_range=(0, 255), seed=seed + 3),
                             layers.RandomContrast(0.1, seed=seed + 4)], name="augmentation")


def hed_jitter_layer(scale: float = 0.05, shift: float = 0.05, seed: int | None = None):
    """``augment.hed_jitter`` as a Keras layer (any backend): each image's stain optical densities
    perturbed, od' = od·(1+α) + β with α, β ~ U(±scale), U(±shift) per stain and image."""
    import keras
    from keras import layers, ops


    @keras.saving.register_keras_serializable(package="oncoserve")
    class HedJitter(layers.Layer):
        def __init__(self, scale: float, shift: float, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.scale, self.shift, self.seed = scale, shift, seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            shape = (ops.shape(x)[0], 1, 1, 3)
            alpha = keras.random.uniform(shape, 1.0 - self.scale, 1.0 + self.scale, seed=self.generator)
            beta = keras.random.uniform(shape, -self.shift, self.shift, seed=self.generator)
            return recolour_stains(x, alpha, beta)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "scale": self.scale, "shift": self.shift, "seed": self.seed}

    return HedJitter(scale, shift, seed, name="hed_jitter")


def anatomy_augmentation(seed: int):
    """Training-only random layers for CT/MRI slices: left-right mirroring only (anatomy has an up
    and down), small rotations and zooms with black fill (slices sit on black), the height and width
    zoomed apart (one MRI source is stretched to a square), brightness, contrast, gamma, blur and
    noise (scanners, sequences, windowing and export differ; issue 32)."""
    import keras
    from keras import layers

    return keras.Sequential([layers.RandomFlip("horizontal", seed=seed),
                             layers.RandomRotation(0.03, fill_mode="constant", seed=seed + 1),  # ±11°
                             layers.RandomZoom(0.1, 0.2, fill_mode="constant", seed=seed + 2),
                             layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 3),
                             layers.RandomContrast(0.25, seed=seed + 4),
                             layers.RandomGaussianBlur(0.5, kernel_size=5, sigma=(0.1, 1.5), seed=seed + 5),
                             grey_intensity_layer(seed=seed + 6)], name="augmentation")


def grey_intensity_layer(gamma: float = 1.5, noise: float = 4.0, seed: int | None = None):
    """Each image's grey levels through a random gamma curve, 255·(x/255)^γ with log γ ~ U(±log
    ``gamma``), plus Gaussian noise of standard deviation U(0, ``noise``) grey levels, the same in
    the three channels (the images are greyscale replicated to RGB, in training and serving)."""
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="oncoserve")
    class GreyIntensity(layers.Layer):
        def __init__(self, gamma: float, noise: float, seed: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.gamma, self.noise, self.seed = gamma, noise, seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            batch = ops.shape(x)[0]
            log_gamma = float(np.log(self.gamma))
            exponent = ops.exp(keras.random.uniform((batch, 1, 1, 1), -log_gamma, log_gamma, seed=self.generator))
            curved = 255.0 * ops.power(ops.clip(x, 0.0, 255.0) / 255.0 + 1e-6, exponent)
            spread = keras.random.uniform((batch, 1, 1, 1), 0.0, self.noise, seed=self.generator)
            shape = ops.shape(x)
            grain = keras.random.normal((shape[0], shape[1], shape[2], 1), seed=self.generator) * spread
            return ops.clip(curved + grain, 0.0, 255.0)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "gamma": self.gamma, "noise": self.noise, "seed": self.seed}

    return GreyIntensity(gamma, noise, seed, name="grey_intensity")


def augmentation_text(augmentation) -> str:
    """What a Keras augmentation pipeline does, for model.json and the cards, read off its layers."""
    names = {"RandomFlip": lambda l: f"flips ({l.mode})",
             "RandomRotation": lambda l: f"rotation (±{round(360 * float(np.max(l.factor)))}°)",
             "RandomZoom": zoom_text,
             "RandomGaussianBlur": lambda l: f"Gaussian blur (σ up to {float(np.max(l.sigma)):g} px)",
             "GreyIntensity": lambda l: f"gamma (×/÷{l.gamma:g}), grey noise (σ ≤ {l.noise:g} levels)",
             "RandomBrightness": lambda l: f"brightness (±{round(100 * float(np.max(l.factor)))}%)",
             "RandomContrast": lambda l: f"contrast (±{round(100 * float(np.max(l.factor)))}%)",
             "HedJitter": lambda l: f"H&E stain jitter (±{round(100 * l.scale)}% scale, ±{l.shift:g} shift per stain)"}
    return ", ".join(names[type(layer).__name__](layer) for layer in augmentation.layers) + " (on the fly)"


def zoom_text(layer) -> str:
    height = round(100 * float(np.max(np.abs(layer.height_factor))))
    if layer.width_factor is None:
        return f"zoom (±{height}%)"
    return f"zoom (height ±{height}%, width ±{round(100 * float(np.max(np.abs(layer.width_factor))))}% apart)"
