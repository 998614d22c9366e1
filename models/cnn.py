"""MNIST CNN: keras 2.0.8 examples/mnist_cnn.py, layer for layer (1,199,882 parameters)."""

LOSS = "categorical_crossentropy"
INPUT_LAYOUT = "image"


def build(api, data):
    inputs = api.Input(data.input_shape)
    x = api.Conv2D(32, (3, 3), activation="relu")(inputs)
    x = api.Conv2D(64, (3, 3), activation="relu")(x)
    x = api.MaxPooling2D((2, 2))(x)
    x = api.Dropout(0.25)(x)
    x = api.Flatten()(x)
    x = api.Dense(128, activation="relu")(x)
    x = api.Dropout(0.5)(x)
    outputs = api.Dense(data.num_classes, activation="softmax")(x)
    return api.Model(inputs, outputs)
