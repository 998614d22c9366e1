"""The native twins: the MNIST models trained by one framework alone (PyTorch, JAX + optax, TensorFlow), no Keras.

Each twin reads the model's own definition (models/mlp.py, cnn.py, hrnn.py) through a recording api
(`layers.NativeAPI`), draws Keras 3's initial weights (`init`), trains with Keras 3's optimizer arithmetic, and runs
through the same worker stages, EpochClock and result as a Keras cell (`base.NativeDriver`). The worker imports this
package only for a backend with `driver: native`, inside a Keras 3 environment (Python >= 3.11): unlike the rest of
models/, it need not import on Python 3.6, and it never imports runner/, reports/ or tooling/ (nor Keras, except
through the data loader when a dataset must be downloaded).
"""

from __future__ import annotations

import importlib

TWINS = {"torch": "models.native.torch_twin", "jax": "models.native.jax_twin",
         "tensorflow": "models.native.tf_twin"}


def driver(spec, variant, gpus):
    """The twin of the cell's framework (`backend.framework`), implementing models/keras_driver.py's interface."""
    framework = spec["backend"]["framework"]
    if framework not in TWINS:
        raise NotImplementedError(f"no native twin for framework {framework!r} (known: {', '.join(TWINS)})")
    return importlib.import_module(TWINS[framework]).Twin(spec, variant, gpus)
