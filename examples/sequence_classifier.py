"""A sequence model of your own, for `./kbm --model-file examples/sequence_classifier.py`.

A one-block transformer over token ids, written with keras.layers and keras.ops only, so it runs on every Keras 3
backend. Synthetic data: integer tokens below INPUT_MAX in sequences of INPUT_SHAPE. Its compile() takes the
settings the variants set (jit_compile, steps_per_execution), so `--variant tf-xla` or `steps-8` reach it.
"""

import keras
from keras import layers, ops

TITLE = "Transformer block (example)"
INPUT_SHAPE = (64,)
INPUT_DTYPE = "int32"
INPUT_MAX = 1000  # the vocabulary: token ids are below it
NUM_CLASSES = 4
BATCH_SIZE = 32
EPOCHS = 5
WIDTH = 64


class TokenAndPosition(layers.Layer):
    """Token embeddings plus learned position embeddings; positions come from keras.ops.arange."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tokens = layers.Embedding(INPUT_MAX, WIDTH)
        self.positions = layers.Embedding(INPUT_SHAPE[0], WIDTH)

    def call(self, x):
        return self.tokens(x) + self.positions(ops.arange(0, ops.shape(x)[-1]))


def build():
    inputs = keras.Input(INPUT_SHAPE, dtype=INPUT_DTYPE)
    x = TokenAndPosition()(inputs)
    attended = layers.MultiHeadAttention(num_heads=4, key_dim=WIDTH // 4)(x, x)
    x = layers.LayerNormalization()(x + attended)
    x = layers.LayerNormalization()(x + layers.Dense(WIDTH, activation="relu")(x))
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def compile(model, jit_compile="auto", steps_per_execution=1):
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=jit_compile, steps_per_execution=steps_per_execution)
