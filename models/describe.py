"""Build models without training them and report their parameter counts: `python -m models.describe OUT.json
DATA_FORMAT MODEL:DATASET [...]`. Used by the tests to check every port against the example's count on every
installed backend. Python 3.6 compatible.
"""
import importlib
import json
import sys


def main(argv):
    out, data_format, pairs = argv[0], argv[1], [p.split(":") for p in argv[2:]]
    import keras

    from models import compat, data

    api = compat.KerasAPI(keras, data_format=data_format)
    counts = {}
    for name, dataset in pairs:
        module = importlib.import_module("models." + name)
        ds = data.load(keras, dataset, module.INPUT_LAYOUT, data_format, "synthetic", 2, 2, 0)
        counts[name] = api.count_params(module.build(api, ds))
    with open(out, "w") as handle:
        json.dump({"backend": api.backend_name(), "keras": keras.__version__, "params": counts}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
