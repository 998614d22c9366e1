"""Planning: the matrix expands into model x backend cells; filters and names are checked before anything runs."""

from __future__ import annotations

import pytest

from runner.cells import Cell, Selection, SelectionError, expand, worker_spec


def test_default_plan_is_five_models_on_the_keras3_backends(matrix):
    cells = expand(matrix, Selection())
    assert len(cells) == 15
    assert {c.backend for c in cells} == {"tensorflow", "jax", "torch"}
    assert all(c.profile == matrix.defaults.profile for c in cells)
    assert len({c.id for c in cells}) == 15


def test_a_backend_outside_the_defaults_brings_its_environments(matrix):
    cells = expand(matrix, Selection(backends=("cntk",), models=("mlp",)))
    assert {c.environment for c in cells} == set(matrix.environments_for("cntk"))
    assert expand(matrix, Selection(backends=("tensorflow",))) == [
        c for c in expand(matrix, Selection()) if c.backend == "tensorflow"
    ]


def test_only_backend_model_env_and_repeats_filter(matrix):
    cells = expand(matrix, Selection(backends=("tensorflow",)))
    assert len(cells) == 5 and {c.backend for c in cells} == {"tensorflow"}
    cells = expand(matrix, Selection(models=("mlp", "cnn"), environments=("keras3-jax",), repeats=3))
    assert [(c.model, c.repeat) for c in cells] == [("mlp", 0), ("mlp", 1), ("mlp", 2), ("cnn", 0), ("cnn", 1),
                                                    ("cnn", 2)]


@pytest.mark.parametrize(("sel", "words"), [
    (Selection(backends=("pytorch",)), "--only pytorch: no such backend"),
    (Selection(models=("mnist_mlp",)), "--model mnist_mlp"),
    (Selection(environments=("keras3-tensorflw",)), "Did you mean 'keras3-tensorflow'"),
    (Selection(profile="smok"), "Did you mean 'smoke'"),
    (Selection(backends=("torch",), environments=("keras3-jax",)), "backend torch is hosted by keras3-torch"),
])
def test_bad_selections_say_what_to_fix(matrix, sel, words):
    with pytest.raises(SelectionError, match=words.replace("(", r"\(")):
        expand(matrix, sel)


def test_cell_round_trips_and_its_id_is_derived(matrix):
    cell = expand(matrix, Selection(models=("hrnn",), backends=("jax",)))[0]
    assert Cell.from_dict(cell.to_dict()) == cell
    assert cell.id == "hrnn.jax.keras3-jax.quick.r0"


def test_spec_resolves_profile_limits_and_hashes_the_experiment(matrix):
    cell = Cell("cnn", "torch", "keras3-torch", "quick", 0, 1337)
    spec = worker_spec(matrix, cell, "real")
    assert spec["run"] == {"epochs": 3, "train_samples": 6000, "test_samples": 1000}
    assert spec["model"]["optimizer"]["learning_rate"] == 1.0  # Adadelta as Keras 2 ran it
    assert spec["backend"]["keras_backend"] == "torch"
    assert spec["spec_hash"] == worker_spec(matrix, cell, "real")["spec_hash"]
    assert spec["spec_hash"] != worker_spec(matrix, cell, "synthetic")["spec_hash"]
    article = worker_spec(matrix, Cell("cnn", "torch", "keras3-torch", "article", 0, 1337), "real")
    assert article["run"] == {"epochs": 12, "train_samples": None, "test_samples": None}
