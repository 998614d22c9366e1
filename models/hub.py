"""The keras.io benchmark suite's models, built from KerasHub's own classes (README, "Today's models").

keras.io's "Keras 3 benchmarks" page times KerasHub models (BERT, Gemma, ...) on synthetic data; the suite here
builds the same classes from an explicit configuration (`models.<name>.configs` in matrix.yaml, chosen by the
profile's `config`), never from a preset: no download, weights random and recorded as such. A suite model module
(models/bert.py, gemma.py, vit.py) names its task; this module gives them the worker's model interface:
`load_dataset(spec)` (synthetic data of the right shapes: token ids below the vocabulary, images),
`build(api, ds)`, `compile_model(...)`, `fit_callbacks(keras)` (keras.io's ms-per-step window) and, for a causal
LM, `measure_generate(model, ds)` (time to first token, ms per token). KerasHub is imported inside functions
only: models/ stays importable on Python 3.6, where the 2017 environments import it.
"""
import hashlib
import time

from models.data import Dataset

SUITE = "keras-hub"
STEP_WINDOW = 100  # keras.io: ms/step averaged over 100 steps, the first step (build, compile) excluded


def _digest(arrays):
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(array.tobytes())
    return digest.hexdigest()


def keras_hub_version():
    """KerasHub's version; an environment without it (an image built before the suite) skips the cell, saying so."""
    try:
        import keras_hub
    except ImportError as exc:
        from models.errors import RequirementMissing

        raise RequirementMissing("the keras.io suite needs keras-hub, which this environment lacks (%s): it is "
                                 "installed by matrix.yaml's requirements_no_deps (virtualenvs)" % exc) from exc
    return keras_hub.__version__


class StepWindow(object):
    """keras.io's figure: time from the start of training step 1 (the second) to the end of step 1 + window - 1,
    per step, in the first epoch (perf_counter, as keras-benchmarks' callback takes time.time at the same points).
    An epoch shorter than the window gives the steps it has, and says how many (`steps`)."""

    def __init__(self, keras, window=STEP_WINDOW):
        self.window = window
        self.begin = self.end = None
        self.steps = 0
        self.epoch = 0
        outer = self

        class Callback(keras.callbacks.Callback):
            # A batch-end hook switches off Keras 3's asynchronous callback dispatch for the whole fit, which
            # would slow every steady epoch of a suite cell (the harness's cost that issue 28 removed). Declared
            # safe, it runs in Keras' dispatch thread once the step's logs are ready: the window's end is when
            # step 1 + window - 1 finished, out of order calls leave the latest step's time.
            async_safe = True

            def on_epoch_begin(self, epoch, logs=None):
                outer.epoch = epoch

            def on_train_batch_begin(self, batch, logs=None):
                if outer.epoch == 0 and batch == 1:
                    outer.begin = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                if outer.epoch == 0 and outer.steps < batch <= outer.window:
                    outer.end, outer.steps = time.perf_counter(), batch

        self.callback = Callback()

    def summary(self):
        if self.begin is None or self.end is None or not self.steps:
            return {"ms_per_step": None, "steps": 0, "window": self.window, "first_step_excluded": True}
        return {"ms_per_step": (self.end - self.begin) / self.steps * 1e3, "steps": self.steps,
                "window": self.window, "first_step_excluded": True}


class HubModel(object):
    """One suite model: the task (text classifier, causal LM, image classifier) and its configuration."""

    suite = SUITE
    INPUT_LAYOUT = "hub"
    LOSS = "sparse_categorical_crossentropy"

    def __init__(self, task):
        self.task = task  # "text_classifier" | "causal_lm" | "image_classifier": the data, and whether it generates
        self.config = None
        self.classes = None  # matrix.yaml's keras_hub: {backbone: ..., task: ...}
        self.flops = {}  # the configuration's FLOP counts as the host planned them (runner/cells.py)
        self.window = None

    # -- data ---------------------------------------------------------------------------------------------------
    @property
    def generates(self):
        return self.task == "causal_lm"

    def load_dataset(self, spec):
        """Synthetic data of the configuration's shapes, seeded by the cell: speed only, recorded as synthetic."""
        import numpy as np

        cfg = self.config = spec["model"]["config"]
        self.classes = spec["model"]["keras_hub"]
        self.flops = {k: spec["model"][k] for k in ("flop_per_sample", "train_flop_per_sample")
                      if spec["model"].get(k)}
        run = spec["run"]
        n_train, n_test = run["train_samples"] or cfg["train_samples"], run["test_samples"] or cfg["test_samples"]
        rng = np.random.RandomState(spec["cell"]["seed"])
        x_train, y_train = self.synthetic(rng, n_train, cfg)
        x_test, y_test = self.synthetic(rng, n_test, cfg)
        arrays = [x_train[k] for k in sorted(x_train)] if isinstance(x_train, dict) else [x_train]
        info = {"source": "synthetic", "sha256": _digest(arrays + [y_train]), "files": [], "dataset": "synthetic",
                "seed": spec["cell"]["seed"], "train_samples": int(n_train), "test_samples": int(n_test)}
        shape = tuple(x_train.shape[1:]) if not isinstance(x_train, dict) else (cfg["sequence_length"],)
        return Dataset(x_train, y_train, x_test, y_test, shape, cfg.get("num_classes"), info)

    def synthetic(self, rng, n, cfg):
        import numpy as np

        if self.task == "image_classifier":
            x = rng.uniform(0, 1, size=(n,) + tuple(cfg["backbone"]["image_shape"])).astype("float32")
            return x, rng.randint(0, cfg["num_classes"], size=n).astype("int32")
        seq, vocab = cfg["sequence_length"], cfg["backbone"]["vocabulary_size"]
        tokens = rng.randint(1, vocab, size=(n, seq)).astype("int32")  # 0 is padding
        mask = np.ones((n, seq), dtype=bool)
        if self.task == "causal_lm":  # next-token targets: the sequence shifted by one
            targets = np.concatenate([tokens[:, 1:], rng.randint(1, vocab, size=(n, 1)).astype("int32")], axis=1)
            return {"token_ids": tokens, "padding_mask": mask}, targets
        x = {"token_ids": tokens, "segment_ids": np.zeros((n, seq), dtype="int32"), "padding_mask": mask}
        return x, rng.randint(0, cfg["num_classes"], size=n).astype("int32")

    # -- model --------------------------------------------------------------------------------------------------
    def build(self, api, ds):
        """The task on a backbone built from the configuration (random weights, no preset)."""
        cfg = self.config
        model = build_task(self.classes, cfg)
        if self.task == "causal_lm" and cfg.get("lora_rank"):
            model.backbone.enable_lora(rank=cfg["lora_rank"])  # keras.io fine-tunes the LLMs with LoRA
        return plain_keras_loops(api.keras if api is not None else None, model)

    def compile_model(self, keras, model, optimizer, jit_compile, steps_per_execution):
        """keras-benchmarks' compile: logits (the tasks output no softmax), the matrix's optimizer, the variant's
        jit_compile; accuracy so evaluate reports one."""
        kwargs = {"steps_per_execution": steps_per_execution} if steps_per_execution else {}
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(optimizer=optimizer, loss=loss, metrics=["sparse_categorical_accuracy"],
                      jit_compile=jit_compile, **kwargs)
        return bool(model.jit_compile)

    def fit_callbacks(self, keras):
        self.window = StepWindow(keras)
        return [self.window.callback]

    def describe(self, model):
        """What the result records of the suite model: KerasHub's version, the configuration, the weights."""
        out = {"suite": self.suite, "task": self.task, "keras_hub": keras_hub_version(), "weights": "random",
               "classes": dict(self.classes), **self.flops,
               "config_name": self.config.get("name"), "config": self.config,
               "trainable_params": int(sum(int(_size(w)) for w in model.trainable_weights))}
        if self.window is not None:
            out["keras_io_fit"] = self.window.summary()
        return out

    # -- generation ---------------------------------------------------------------------------------------------
    def measure_generate(self, model, ds):
        """Greedy generation from prompts of the test split: time to first token and ms per further token, at
        each of the configuration's generate batch sizes, after one warm-up call of each length."""
        if self.task != "causal_lm":
            return None
        cfg = self.config
        gen = cfg["generate"]
        model.compile(sampler="greedy")  # as keras-benchmarks; training is over
        out = {"prompt_tokens": gen["prompt_tokens"], "max_length": gen["max_length"], "runs": []}
        for batch in gen["batch_sizes"]:
            prompt, repeats = gen["prompt_tokens"], gen.get("repeats", 3)
            first = self._generate_s(model, ds, batch, prompt, prompt + 1, repeats)
            full = self._generate_s(model, ds, batch, prompt, gen["max_length"], repeats)
            tokens = gen["max_length"] - gen["prompt_tokens"]
            out["runs"].append({
                "batch_size": batch, "new_tokens": tokens, "time_to_first_token_ms": first * 1e3,
                "ms_per_token": (full - first) / (tokens - 1) * 1e3 if tokens > 1 else None,
                "generate_call_ms": full * 1e3,  # keras.io's figure: one generate() call, in ms
            })
        return out

    @staticmethod
    def _generate_s(model, ds, batch, prompt, length, repeats):
        """Median seconds of one greedy generate() from `prompt` test tokens to `length` (padding: to generate)."""
        import numpy as np

        rows = np.arange(batch) % len(ds.y_test)
        tokens = np.zeros((batch, length), dtype="int32")
        mask = np.zeros((batch, length), dtype=bool)
        tokens[:, :prompt] = ds.x_test["token_ids"][rows, :prompt]
        mask[:, :prompt] = True
        inputs = {"token_ids": tokens, "padding_mask": mask}
        def call():  # the tokens as host arrays: JAX dispatches asynchronously, so the copy waits for the work
            out = model.generate(inputs, stop_token_ids=None)
            return np.asarray(out["token_ids"] if isinstance(out, dict) else out)

        call()  # warm-up: tracing and compilation for this shape
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)
        return sorted(times)[len(times) // 2]


def plain_keras_loops(keras, model):
    """Keras' own fit/evaluate/predict loops on the task. KerasHub's PipelineModel wraps arrays in a grain or
    tf.data pipeline to run its preprocessor; with no preprocessor (token ids and images go in as they are) that
    pipeline maps nothing, yet it needs grain or TensorFlow, which the JAX and PyTorch environments do not carry.
    Keras' array adapter, which the five classic models use, feeds the same batches on every backend."""
    import types

    if keras is None:
        import keras
    if getattr(model, "preprocessor", None) is None:
        for name in ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch"):
            setattr(model, name, types.MethodType(getattr(keras.Model, name), model))
    return model


def _size(weight):
    size = 1
    for dim in weight.shape:
        size *= int(dim)
    return size


def build_task(classes, cfg):
    """KerasHub's backbone and task named by matrix.yaml (`keras_hub`), for a configuration; KerasHub's own
    count_params is the reference. A classifier's task takes the configuration's num_classes."""
    import keras_hub

    models = keras_hub.models
    backbone_kwargs = dict(cfg["backbone"])
    if cfg.get("dtype"):
        backbone_kwargs["dtype"] = cfg["dtype"]
    if "image_shape" in backbone_kwargs:
        backbone_kwargs["image_shape"] = tuple(backbone_kwargs["image_shape"])
    backbone = getattr(models, classes["backbone"])(**backbone_kwargs)
    task_kwargs = _task_dtype(cfg)
    if cfg.get("num_classes"):
        task_kwargs["num_classes"] = cfg["num_classes"]
    return getattr(models, classes["task"])(backbone, preprocessor=None, **task_kwargs)


def _task_dtype(cfg):
    return {"dtype": cfg["dtype"]} if cfg.get("dtype") else {}
