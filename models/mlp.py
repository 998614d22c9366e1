"""MNIST MLP: keras 2.0.8 examples/mnist_mlp.py, layer for layer (669,706 parameters)."""

HIDDEN = 512
DROPOUT = 0.2
LOSS = "categorical_crossentropy"
INPUT_LAYOUT = "flat"


def build(api, data):
    inputs = api.Input(data.input_shape)
    x = api.Dense(HIDDEN, activation="relu")(inputs)
    x = api.Dropout(DROPOUT)(x)
    x = api.Dense(HIDDEN, activation="relu")(x)
    x = api.Dropout(DROPOUT)(x)
    outputs = api.Dense(data.num_classes, activation="softmax")(x)
    return api.Model(inputs, outputs)
