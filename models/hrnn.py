"""MNIST hierarchical RNN: keras 2.0.8 examples/mnist_hierarchical_rnn.py (199,434 parameters).

An LSTM encodes each row of pixels, a second LSTM encodes the sequence of row encodings.
"""

ROW_HIDDEN = 128
COL_HIDDEN = 128
LOSS = "categorical_crossentropy"
INPUT_LAYOUT = "rows"


def build(api, data):
    inputs = api.Input(data.input_shape)  # (rows, cols, 1)
    encoded_rows = api.TimeDistributed(api.LSTM(ROW_HIDDEN))(inputs)
    encoded_columns = api.LSTM(COL_HIDDEN)(encoded_rows)
    outputs = api.Dense(data.num_classes, activation="softmax")(encoded_columns)
    return api.Model(inputs, outputs)
