"""Planning: the matrix expands into model x backend cells; filters and names are checked before anything runs."""

from __future__ import annotations

import pytest

from runner.cells import Cell, Selection, SelectionError, cell_variables, expand, plan, repeat_seed, worker_spec


def test_default_plan_is_five_models_on_all_seven_backends_and_the_native_twins(matrix):
    cells = expand(matrix, Selection())
    # 5 models x (3 Keras 3 backends + tensorflow1 + cntk + theano + mxnet), and the twins of the MNIST models
    assert len(cells) == 35 + 3 + 3 + 2
    assert {c.backend for c in cells} == {"tensorflow", "jax", "torch", "tensorflow1", "cntk", "theano", "mxnet",
                                          "tensorflow-native", "jax-native", "torch-native"}
    assert "keras224-cntk-variant" not in {c.environment for c in cells}  # not the article's: asked for by name
    assert all(c.profile == matrix.defaults.profile for c in cells)
    assert len({c.id for c in cells}) == len(cells)


def test_a_framework_name_selects_every_generation_and_name_at_generation_one(matrix):
    both = expand(matrix, Selection(backends=("tensorflow",), models=("mlp",)))
    assert {(c.backend, c.environment) for c in both} == {("tensorflow", "keras3-tensorflow"),
                                                          ("tensorflow-native", "keras3-tensorflow"),
                                                          ("tensorflow1", "keras2017-tf-cntk")}
    keras3 = expand(matrix, Selection(backends=("tensorflow@keras3",), models=("mlp",)))
    assert {(c.backend, c.environment) for c in keras3} == {("tensorflow", "keras3-tensorflow"),
                                                            ("tensorflow-native", "keras3-tensorflow")}
    (alone,) = expand(matrix, Selection(backends=("tensorflow@keras3@keras",), models=("mlp",)))
    assert (alone.backend, alone.environment) == ("tensorflow", "keras3-tensorflow")
    (keras2,) = expand(matrix, Selection(backends=("tensorflow@keras2",), models=("mlp",)))
    assert (keras2.backend, keras2.environment) == ("tensorflow1", "keras2017-tf-cntk")
    assert expand(matrix, Selection(backends=("tensorflow1",))) == [c for c in expand(matrix, Selection())
                                                                     if c.backend == "tensorflow1"]
    # a backend's every host, the variant outside the defaults included
    cells = expand(matrix, Selection(backends=("cntk",), models=("mlp",)))
    assert {c.environment for c in cells} == set(matrix.environments_for("cntk")) == {
        "keras2017-tf-cntk", "keras224-cntk-variant"}


def test_only_backend_model_env_and_repeats_filter(matrix):
    cells = expand(matrix, Selection(backends=("jax@keras",)))
    assert len(cells) == 5 and {c.backend for c in cells} == {"jax"}
    cells = expand(matrix, Selection(models=("mlp", "cnn"), environments=("keras3-jax",), repeats=3))
    # interleaved: repeat 1 of every cell, then repeat 2, ... (drift on a shared machine hits every cell alike)
    assert [(c.model, c.backend, c.repeat) for c in cells] == [
        (m, b, r) for r in range(3) for m in ("mlp", "cnn") for b in ("jax", "jax-native")]


def test_profiles_override_per_backend_most_specific_last(matrix):
    quick = matrix.profiles["quick"]
    assert quick.limits_for("mlp", "jax").train_samples == 30000  # the model's override
    assert quick.limits_for("mlp", "theano").train_samples == 3000  # the backend's, for that model
    assert quick.limits_for("cnn", "theano").epochs == 6  # the profile's, where nothing narrower says otherwise
    spec = worker_spec(matrix, Cell("cnn", "mxnet", "keras2017-mxnet", "quick", 0, 1337), "real")
    assert spec["run"]["train_samples"] == quick.limits_for("cnn", "mxnet").train_samples < 3000


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
    assert cell.id == "hrnn.jax.keras3-jax.quick.jax-ynn-no-conv.r0"


def test_spec_resolves_profile_limits_and_hashes_the_experiment(matrix):
    cell = Cell("cnn", "torch", "keras3-torch", "quick", 0, 1337)
    spec = worker_spec(matrix, cell, "real")
    assert spec["run"] == {"epochs": 6, "train_samples": 3000, "test_samples": 500}
    assert spec["model"]["optimizer"]["learning_rate"] == 1.0  # Adadelta as Keras 2 ran it
    assert spec["backend"]["keras_backend"] == "torch"
    assert spec["spec_hash"] == worker_spec(matrix, cell, "real")["spec_hash"]
    assert spec["spec_hash"] != worker_spec(matrix, cell, "synthetic")["spec_hash"]
    article = worker_spec(matrix, Cell("cnn", "torch", "keras3-torch", "article", 0, 1337), "real")
    assert article["run"] == {"epochs": 12, "train_samples": None, "test_samples": None}


def test_repeats_interleave_round_robin_with_a_seed_each(matrix):
    sel = Selection(models=("mlp", "cnn"), backends=("jax@keras", "torch@keras"), repeats=3, seed=7,
                    variants=("stock", "faithful-2017"))
    cells = expand(matrix, sel)
    per_repeat = len(cells) // 3
    assert per_repeat == 2 * 2 * 2  # models x backends x variants
    # every cell's repeat r comes before any cell's repeat r+1
    assert [c.repeat for c in cells] == sorted(c.repeat for c in cells)
    first = [(c.model, c.backend, c.variant) for c in cells[:per_repeat]]
    for r in (1, 2):
        assert [(c.model, c.backend, c.variant) for c in cells[r * per_repeat:(r + 1) * per_repeat]] == first
    # one seed per repeat, the same for every cell of that repeat; derived from the base seed, deterministic
    seeds = {r: {c.seed for c in cells if c.repeat == r} for r in range(3)}
    assert all(len(s) == 1 for s in seeds.values())
    assert seeds[0] == {7} and len({s.pop() for s in seeds.values()}) == 3
    assert [c.seed for c in expand(matrix, sel)] == [c.seed for c in cells]
    assert repeat_seed(7, 1) != repeat_seed(8, 1) and repeat_seed(7, 1) == repeat_seed(7, 1) < 2**31


def test_variants_multiply_cells_and_enter_id_and_spec_hash(matrix):
    one = expand(matrix, Selection(models=("hrnn",), backends=("tensorflow@keras3",)))
    assert [c.variant for c in one] == ["stock"]  # no --variant: the environment's default
    two = expand(matrix, Selection(models=("hrnn",), backends=("tensorflow@keras3",),
                                   variants=("stock", "faithful-2017")))
    assert [c.variant for c in two] == ["stock", "faithful-2017"]
    assert two[1].id == "hrnn.tensorflow.keras3-tensorflow.quick.faithful-2017.r0"
    specs = [worker_spec(matrix, c, "real") for c in two]
    assert specs[0]["spec_hash"] != specs[1]["spec_hash"]
    assert specs[0]["cell"]["variant"] == "stock" and specs[1]["cell"]["variant"] == "faithful-2017"
    assert specs[1]["variant"]["recurrent_activation"] == "hard_sigmoid_keras2"
    assert specs[1]["variant"]["data_format"] == "channels_last" and specs[1]["variant"]["changes_numerics"]
    assert specs[0]["variant"]["is_default"] and not specs[1]["variant"]["is_default"]
    # the variant's settings change the hash, the default flag (a fact of the day's matrix) does not
    assert worker_spec(matrix, two[0], "real")["spec_hash"] == specs[0]["spec_hash"]


def test_all_plans_every_applicable_variant_and_nothing_else(matrix):
    cells = expand(matrix, Selection(models=("mlp",), backends=("jax",), variants=("all",)))
    names = [c.variant for c in cells]
    assert "stock" in names and "jax-onednn" in names and "faithful-2017" in names
    assert not any(n.startswith(("tf-", "torch-")) for n in names)
    assert "mixed-float16" not in names  # GPU cells only
    assert "mixed-float16" in [c.variant for c in expand(
        matrix, Selection(models=("mlp",), backends=("jax",), variants=("all",), gpus=1))]


def test_a_variant_that_does_not_apply_is_not_planned_and_says_so(matrix):
    cells, notes = plan(matrix, Selection(models=("mlp",), backends=("jax@keras", "torch@keras"),
                                          variants=("jax-onednn",)))
    assert {c.backend for c in cells} == {"jax"}
    assert notes == ["variant jax-onednn applies to jax, jax-native, not torch"]
    with pytest.raises(SelectionError, match="variant tf-xla applies to tensorflow, tensorflow-native, not jax"):
        expand(matrix, Selection(backends=("jax@keras",), variants=("tf-xla",)))
    with pytest.raises(SelectionError, match="--variant faithful: no such variant.*Did you mean 'faithful-2017'"):
        expand(matrix, Selection(variants=("faithful",)))


def test_the_2017_environments_default_to_the_article_settings(matrix):
    cells = expand(matrix, Selection(models=("cnn",), environments=("keras2017-tf-cntk", "keras2017-theano",
                                                                    "keras2017-mxnet")))
    by_backend = {c.backend: c for c in cells}
    assert {b: c.variant for b, c in by_backend.items()} == {
        "tensorflow1": "faithful-2017", "cntk": "faithful-2017", "theano": "faithful-2017", "mxnet": "faithful-2017"}
    formats = {b: worker_spec(matrix, c, "real")["variant"]["data_format"] for b, c in by_backend.items()}
    assert set(formats.values()) == {"channels_last"}  # as 2017 ran
    # their gates are the generation's own, so the article's settings change no numerics there (only on Keras 3)
    assert not any(worker_spec(matrix, c, "real")["variant"]["changes_numerics"] for c in by_backend.values())
    native = expand(matrix, Selection(models=("cnn",), backends=("cntk",), variants=("native-layout",)))
    assert {worker_spec(matrix, c, "real")["variant"]["data_format"] for c in native} == {"channels_first"}


def test_a_longer_time_limit_is_the_same_experiment(matrix):
    """--timeout is kept in the spec (the worker and the scheduler read it) but not in its hash: a resume with more
    time keeps the finished cells."""
    cell = Cell("mlp", "jax", "keras3-jax", "smoke", 0, 1)
    short, long = worker_spec(matrix, cell, "real", 60), worker_spec(matrix, cell, "real", 3600)
    assert (short["timeout_s"], long["timeout_s"]) == (60, 3600)
    assert short["spec_hash"] == long["spec_hash"]
    assert worker_spec(matrix, cell, "synthetic", 60)["spec_hash"] != short["spec_hash"]  # what is measured counts


def test_the_worker_records_every_variable_the_cell_runs_with(matrix, monkeypatch):
    """The environment's own variables (CNTK's library path) are recorded too, read back from the process."""
    from models.worker import record_settings

    cell = expand(matrix, Selection(models=("mlp",), backends=("cntk@keras2",),
                                    environments=("keras2017-tf-cntk",)))[0]
    spec = worker_spec(matrix, cell, "real")
    assert spec["variables"] == cell_variables(matrix, cell) and "OPAL_PREFIX" in spec["variables"]
    monkeypatch.setenv("OPAL_PREFIX", "/cache/env/debian/usr")  # what an executor sets, {env_dir} expanded
    monkeypatch.setenv("KERAS_BACKEND", "cntk")
    result = {"settings": {}}
    record_settings(spec, result)
    assert result["settings"]["env"]["OPAL_PREFIX"] == "{env_dir}/debian/usr"
    assert result["settings"]["env_applied"]["OPAL_PREFIX"] == "/cache/env/debian/usr"
    assert result["settings"]["env_applied"]["KERAS_BACKEND"] == "cntk"
