"""ViT image classifier, the suite's vision model: KerasHub's ViTBackbone + ViTImageClassifier (keras.io timed
SegmentAnything, which needs a download-free prompt pipeline this suite does not have yet; its `keras-io`
configuration is ViT-B/16 at 224 x 224, with no keras.io figure beside it), random weights."""
from models.hub import HubModel

MODEL = HubModel("image_classifier")
INPUT_LAYOUT = MODEL.INPUT_LAYOUT
LOSS = MODEL.LOSS
build = MODEL.build
