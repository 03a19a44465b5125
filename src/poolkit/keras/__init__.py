"""A Keras-compatible subset on NumPy, so the tutorial's model runs with ``tf.keras`` ->
``keras``::

    from poolkit import keras
    model = keras.Sequential([
        keras.layers.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
        keras.layers.MaxPooling2D(pool_size=(2, 2), strides=2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
"""

from . import callbacks, datasets, layers, losses, models, optimizers, saving, utils
from .models import Input, Sequential, load_model

__all__ = [
    "Sequential",
    "Input",
    "load_model",
    "layers",
    "models",
    "optimizers",
    "losses",
    "utils",
    "datasets",
    "callbacks",
    "saving",
]
