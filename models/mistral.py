"""Mistral causal LM of the keras.io suite: KerasHub's MistralBackbone + MistralCausalLM, fine-tuned with LoRA
(backbone.enable_lora) and timed generating (keras.io: mistral_7b_en in bfloat16, LoRA rank 4, fit at batch 8 and
sequence 128, generate at batches 32 and 1 to 50 tokens), from matrix.yaml's configuration, random weights."""
from models.hub import HubModel

MODEL = HubModel("causal_lm")
INPUT_LAYOUT = MODEL.INPUT_LAYOUT
LOSS = MODEL.LOSS
build = MODEL.build
