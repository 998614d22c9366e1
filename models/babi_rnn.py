"""bAbI QA2 RNN: keras 2.0.8 examples/babi_rnn.py (45,836 parameters with the QA2 vocabulary of 36).

The story and the question are embedded separately; the question's LSTM encoding is repeated along the story
and added to it, and a second LSTM reads the sum.
"""

EMBED_HIDDEN_SIZE = 50
DROPOUT = 0.3
LOSS = "categorical_crossentropy"
INPUT_LAYOUT = "tokens"


def build(api, data):
    story_maxlen, query_maxlen = data.input_shape
    vocab_size = data.num_classes

    sentence = api.Input((story_maxlen,), dtype="int32")
    encoded_sentence = api.Embedding(vocab_size, EMBED_HIDDEN_SIZE)(sentence)
    encoded_sentence = api.Dropout(DROPOUT)(encoded_sentence)

    question = api.Input((query_maxlen,), dtype="int32")
    encoded_question = api.Embedding(vocab_size, EMBED_HIDDEN_SIZE)(question)
    encoded_question = api.Dropout(DROPOUT)(encoded_question)
    encoded_question = api.LSTM(EMBED_HIDDEN_SIZE)(encoded_question)
    encoded_question = api.RepeatVector(story_maxlen)(encoded_question)

    merged = api.add([encoded_sentence, encoded_question])
    merged = api.LSTM(EMBED_HIDDEN_SIZE)(merged)
    merged = api.Dropout(DROPOUT)(merged)
    outputs = api.Dense(vocab_size, activation="softmax")(merged)
    return api.Model([sentence, question], outputs)
