"""FLOP per sample of the keras.io suite's architectures, counted from a configuration (no model built).

The share of peak needs the work a step does; a configuration as large as keras.io's (Gemma 7B) cannot be built on
a CPU to ask XLA, so the count is a formula per KerasHub backbone: the matrix multiplications (2 FLOP per
multiply-add), which are all but a few percent of the work. tests/test_keras_hub.py holds each formula against
XLA's cost analysis of the real KerasHub model at the small configurations (models/probe_model.py --suite).

Training: a step is forward, activation gradients and weight gradients, each about one forward (3x). With LoRA the
frozen weights get no gradient, so a step is about 2x forward (the adapters' own work is a rank-r sliver).
Attention is counted over the full sequence, causal or not: the kernels compute the masked half. Pure Python, no
imports: the host plans with it, and models/ stays Python 3.6 compatible.
"""


def _encoder_layer(tokens, hidden, ffn):
    """One transformer encoder layer per sample: Q, K, V, output projections, scores and weighted sum, the MLP."""
    return tokens * (8 * hidden * hidden + 4 * hidden * ffn + 4 * tokens * hidden)


def bert(cfg):
    """BertBackbone + BertTextClassifier: encoder layers over the sequence, the pooler on [CLS], the logits."""
    b = cfg["backbone"]
    h, seq = b["hidden_dim"], cfg["sequence_length"]
    return b["num_layers"] * _encoder_layer(seq, h, b["intermediate_dim"]) + 2 * h * h + 2 * h * cfg["num_classes"]


def vit(cfg):
    """ViTBackbone + ViTImageClassifier: the patch embedding (a strided convolution), encoder layers over the
    patches and the class token, the logits from the class token."""
    b = cfg["backbone"]
    height, width, channels = b["image_shape"]
    p, h = b["patch_size"], b["hidden_dim"]
    patches = (height // p) * (width // p)
    tokens = patches + 1
    embed = patches * 2 * p * p * channels * h
    return embed + b["num_layers"] * _encoder_layer(tokens, h, b["mlp_dim"]) + 2 * h * cfg["num_classes"]


def _decoder(cfg, ffn_matmul):
    """A decoder-only LM per sample: grouped-query attention projections, scores over the sequence, a gated MLP
    (`ffn_matmul` FLOP per token: gate, up and down), the vocabulary logits at every position."""
    b = cfg["backbone"]
    h, seq = b["hidden_dim"], cfg["sequence_length"]
    nq, nkv = b["num_query_heads"], b["num_key_value_heads"]
    hd = b.get("head_dim") or h // nq
    attention = 2 * h * hd * (2 * nq + 2 * nkv) + 4 * seq * nq * hd
    return seq * (b["num_layers"] * (attention + ffn_matmul) + 2 * h * b["vocabulary_size"])


def gemma(cfg):
    """GemmaBackbone + GemmaCausalLM: the gated MLP's width is intermediate_dim / 2 (KerasHub's convention)."""
    b = cfg["backbone"]
    return _decoder(cfg, 3 * 2 * b["hidden_dim"] * (b["intermediate_dim"] // 2))


def mistral(cfg):
    """MistralBackbone + MistralCausalLM: the gated MLP's width is intermediate_dim."""
    b = cfg["backbone"]
    return _decoder(cfg, 3 * 2 * b["hidden_dim"] * b["intermediate_dim"])


FORMULAS = {"BertBackbone": bert, "ViTBackbone": vit, "GemmaBackbone": gemma, "MistralBackbone": mistral}
METHOD = "hand count of the matrix multiplications (models/hub_flops.py), checked against XLA's cost analysis"


def count(backbone_class, cfg):
    """(forward FLOP per sample, training-step FLOP per sample), or None for a backbone without a formula."""
    formula = FORMULAS.get(backbone_class)
    if formula is None:
        return None
    forward = float(formula(cfg))
    return forward, (2.0 if cfg.get("lora_rank") else 3.0) * forward
