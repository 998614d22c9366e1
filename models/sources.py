"""Where each dataset's real files live, in one dependency-free module: the worker's loaders read it, and the
runner checks it before anything starts (so a missing file is reported once, with its fix, up front).
Python 3.6 compatible.
"""
import os

MNIST_FILE = "mnist.npz"
CIFAR_DIRS = ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py")
CIFAR_TARBALL = "cifar-10-python.tar.gz"
CIFAR_BATCHES = ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]
BABI_TARBALL = "babi-tasks-v1-2.tar.gz"

URLS = {
    "mnist": "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "babi_qa2": "https://s3.amazonaws.com/text-datasets/babi_tasks_1-20_v1-2.tar.gz",
}

# what to place where when a dataset is missing: (file name as published, path under the datasets folder)
PLACE = {
    "mnist": ("mnist.npz", MNIST_FILE),
    "cifar10": ("cifar-10-python.tar.gz", CIFAR_TARBALL),
    "babi_qa2": ("babi_tasks_1-20_v1-2.tar.gz", BABI_TARBALL),
}


def keras_datasets_dir():
    """Keras' cache: $KERAS_HOME/datasets, default ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def locate(dataset, root=None):
    """The cached file or folder the loader will read, or None."""
    root = root or keras_datasets_dir()
    if dataset == "mnist":
        candidates = [MNIST_FILE]
    elif dataset == "cifar10":
        candidates = [d for d in CIFAR_DIRS if all(os.path.exists(os.path.join(root, d, b)) for b in CIFAR_BATCHES)]
        candidates.append(CIFAR_TARBALL)
    else:
        candidates = [BABI_TARBALL]
    for rel in candidates:
        path = os.path.join(root, rel)
        if os.path.exists(path):
            return path
    return None


def missing_message(dataset, reason, root=None):
    root = root or keras_datasets_dir()
    published, rel = PLACE[dataset]
    return ("%s: not in the Keras cache and not downloadable (%s). Place %s (from %s) at %s, or run with "
            "--data synthetic." % (dataset, reason, published, URLS[dataset], os.path.join(root, rel)))
