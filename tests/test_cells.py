"""Planning: the matrix expands into model x backend cells; filters and names are checked before anything runs."""

from __future__ import annotations

import pytest

from runner.cells import Cell, Selection, SelectionError, expand, worker_spec


def test_default_plan_is_five_models_on_all_seven_backends(matrix):
    cells = expand(matrix, Selection())
    assert len(cells) == 35  # 5 models x (3 Keras 3 backends + tensorflow1 + cntk + theano + mxnet)
    assert {c.backend for c in cells} == {"tensorflow", "jax", "torch", "tensorflow1", "cntk", "theano", "mxnet"}
    assert "keras224-cntk-variant" not in {c.environment for c in cells}  # not the article's: asked for by name
    assert all(c.profile == matrix.defaults.profile for c in cells)
    assert len({c.id for c in cells}) == 35


def test_a_framework_name_selects_every_generation_and_name_at_generation_one(matrix):
    both = expand(matrix, Selection(backends=("tensorflow",), models=("mlp",)))
    assert {(c.backend, c.environment) for c in both} == {("tensorflow", "keras3-tensorflow"),
                                                          ("tensorflow1", "keras2017-tf-cntk")}
    (keras3,) = expand(matrix, Selection(backends=("tensorflow@keras3",), models=("mlp",)))
    assert keras3.environment == "keras3-tensorflow"
    (keras2,) = expand(matrix, Selection(backends=("tensorflow@keras2",), models=("mlp",)))
    assert (keras2.backend, keras2.environment) == ("tensorflow1", "keras2017-tf-cntk")
    assert expand(matrix, Selection(backends=("tensorflow1",))) == [c for c in expand(matrix, Selection())
                                                                     if c.backend == "tensorflow1"]
    # a backend's every host, the variant outside the defaults included
    cells = expand(matrix, Selection(backends=("cntk",), models=("mlp",)))
    assert {c.environment for c in cells} == set(matrix.environments_for("cntk")) == {
        "keras2017-tf-cntk", "keras224-cntk-variant"}


def test_only_backend_model_env_and_repeats_filter(matrix):
    cells = expand(matrix, Selection(backends=("jax",)))
    assert len(cells) == 5 and {c.backend for c in cells} == {"jax"}
    cells = expand(matrix, Selection(models=("mlp", "cnn"), environments=("keras3-jax",), repeats=3))
    assert [(c.model, c.repeat) for c in cells] == [("mlp", 0), ("mlp", 1), ("mlp", 2), ("cnn", 0), ("cnn", 1),
                                                    ("cnn", 2)]


def test_profiles_override_per_backend_most_specific_last(matrix):
    quick = matrix.profiles["quick"]
    assert quick.limits_for("mlp", "jax").train_samples == 60000  # the model's override
    assert quick.limits_for("mlp", "theano").train_samples == 6000  # the backend's, for that model
    assert quick.limits_for("cnn", "theano").epochs == 3  # the profile's, where nothing narrower says otherwise
    spec = worker_spec(matrix, Cell("cnn", "mxnet", "keras2017-mxnet", "quick", 0, 1337), "real")
    assert spec["run"]["train_samples"] == quick.limits_for("cnn", "mxnet").train_samples < 6000


@pytest.mark.parametrize(("sel", "words"), [
    (Selection(backends=("pytorch",)), "--only pytorch: no such backend or framework family"),
    (Selection(backends=("jax@keras2",)), "backend jax is hosted by keras3-jax"),
    (Selection(backends=("tensorflow@keras9",)), "no such Keras generation"),
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
