"""BERT text classifier of the keras.io suite: KerasHub's BertBackbone + BertTextClassifier (keras.io: bert_base_en,
fit at batch 32 and sequence 512, predict at batch 256), from matrix.yaml's configuration, random weights."""
from models.hub import HubModel

MODEL = HubModel("text_classifier")
INPUT_LAYOUT = MODEL.INPUT_LAYOUT
LOSS = MODEL.LOSS
build = MODEL.build
