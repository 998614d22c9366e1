"""An image model of your own, for `./kbm --model-file examples/image_classifier.py`.

A small residual CNN written with keras.layers and keras.ops only, so it runs on every Keras 3 backend. It has no
load_data(): the cells train on synthetic images of INPUT_SHAPE (recorded as synthetic, speed only); give
`--data-file images.npz` (x_train, y_train, x_test, y_test) to train on your own, or add a load_data() here.
"""

import keras
from keras import layers, ops

TITLE = "Residual CNN (example)"
INPUT_SHAPE = (32, 32, 3)
NUM_CLASSES = 10
BATCH_SIZE = 64
EPOCHS = 5


class Standardize(layers.Layer):
    """Each image to zero mean and unit variance, with keras.ops (no framework call: any backend runs it)."""

    def call(self, x):
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = ops.std(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) / (std + 1e-6)


def residual(x, filters):
    shortcut = layers.Conv2D(filters, 1, padding="same")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(filters, 3, padding="same")(x)
    return layers.Activation("relu")(layers.add([x, shortcut]))


def build():
    inputs = keras.Input(INPUT_SHAPE)
    x = Standardize()(inputs)
    x = residual(x, 32)
    x = layers.MaxPooling2D()(x)
    x = residual(x, 64)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs)
