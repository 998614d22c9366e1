"""CIFAR-10 CNN: keras 2.0.8 examples/cifar10_cnn.py with its augmentation (1,250,858 parameters).

The example fed an ImageDataGenerator (shifts of 0.1, horizontal flips, all else off) to fit_generator; here the
same augmentation runs as preprocessing layers at the model's input, active in training only.
"""

LOSS = "categorical_crossentropy"
INPUT_LAYOUT = "image"
SHIFT = 0.1
HORIZONTAL_FLIP = True


def build(api, data):
    inputs = api.Input(data.input_shape)
    x = inputs
    for layer in api.image_augmentation(SHIFT, HORIZONTAL_FLIP):
        x = layer(x)
    for filters in (32, 64):
        x = api.Conv2D(filters, (3, 3), padding="same")(x)
        x = api.Activation("relu")(x)
        x = api.Conv2D(filters, (3, 3))(x)
        x = api.Activation("relu")(x)
        x = api.MaxPooling2D((2, 2))(x)
        x = api.Dropout(0.25)(x)
    x = api.Flatten()(x)
    x = api.Dense(512)(x)
    x = api.Activation("relu")(x)
    x = api.Dropout(0.5)(x)
    x = api.Dense(data.num_classes)(x)
    outputs = api.Activation("softmax")(x)
    return api.Model(inputs, outputs)
