"""matrix.yaml validation: the real file loads, and each kind of mistake names file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from runner.cells import Selection, SelectionError, plan
from runner.matrix import MatrixError, load_matrix
from runner.paths import REPO_ROOT

REAL = (REPO_ROOT / "matrix.yaml").read_text()


def test_real_matrix_declares_the_five_models_on_three_keras3_backends(matrix):
    classic = [name for name, spec in matrix.models.items() if not spec.opt_in]  # the keras.io suite is opt-in
    assert classic == ["mlp", "cnn", "cifar10_cnn", "hrnn", "babi_rnn"]
    assert {"tensorflow", "jax", "torch"} <= set(matrix.backends)
    assert {"smoke", "quick", "article"} <= set(matrix.profiles)
    defaults = matrix.defaults.environments
    twins = {"tensorflow-native", "jax-native", "torch-native"}
    assert {b for name in defaults for b in matrix.environments[name].backends} == {
        "tensorflow", "jax", "torch", "tensorflow1", "cntk", "theano", "mxnet", *twins}  # `make matrix`: all seven
    keras3 = [name for name in defaults if name.startswith("keras3-")]
    assert {b for name in keras3 for b in matrix.environments[name].backends} == {"tensorflow", "jax", "torch",
                                                                                  *twins}
    for name in keras3:
        env = matrix.environments[name]
        assert env.python == ">=3.11,<3.14" and env.docker.python == "3.11" and env.keras.startswith("3.15")
        assert env.image_python == "3.11"  # what images, the pin check and the GPU recipes build with
        # one environment per Keras 3 backend, their dependencies never fight; it also hosts that framework's twin
        (keras_side,) = [b for b in env.backends if matrix.backends[b].driver == "keras"]
        assert env.backends == [keras_side, f"{keras_side}-native"]
    assert matrix.environments["keras2017-theano"].image_python == "3.6"  # a plain version serves both
    torch_env = matrix.environments[matrix.environments_for("torch")[0]]
    assert "torch==2.13.0+cpu" in torch_env.requirements  # the CPU build, never PyPI's CUDA one
    assert torch_env.extra_index_urls == ["https://download.pytorch.org/whl/cpu"]


def test_profile_overrides_apply_per_model(matrix):
    quick = matrix.profiles["quick"]
    assert quick.limits_for("mlp").train_samples == 30000
    assert quick.limits_for("cnn").train_samples == 3000
    assert quick.limits_for("babi_rnn").train_samples is None  # explicit null: the whole (small) set
    assert matrix.profiles["article"].limits_for("cnn").epochs is None  # falls back to the model's 12


def _broken(tmp_path: Path, old: str, new: str) -> str:
    assert old in REAL, old
    path = tmp_path / "matrix.yaml"
    path.write_text(REAL.replace(old, new, 1))
    with pytest.raises(MatrixError) as err:
        load_matrix(path)
    return str(err.value)


def _line_of(text: str, needle: str) -> int:
    return REAL[: REAL.index(needle)].count("\n") + 1


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("    epochs: 20\n", "    epoks: 20\n", "models.mlp.epoks", "unknown key"),
        ("    batch_size: 32\n    epochs: 5\n", "    batch_size: thirty-two\n    epochs: 5\n", "models.hrnn.batch_size",
         "integer"),
        ("    backends: [jax, jax-native]", "    backends: [jaxx, jax-native]", "environments.keras3-jax.backends.0",
         "did you mean 'jax'"),
        ("      hrnn: {train_samples: 1000}", "      hrn: {train_samples: 1000}", "profiles.quick.models.hrn",
         "did you mean 'hrnn'"),
        ("    dataset: babi_qa2", "    dataset: babi\n", "models.babi_rnn.dataset", "babi_qa2"),
        ("  profile: quick ", "  profile: quik ", "defaults.profile", "did you mean 'quick'"),
        # variants
        ("    applies_to: {backends: [torch, torch-native]}\n    env: {OMP_WAIT_POLICY",
         "    applies_to: {backends: [pytorch, torch-native]}\n"
         "    env: {OMP_WAIT_POLICY", "variants.torch-omp-passive.applies_to.backends.0", "did you mean 'torch'"),
        ("    steps_per_execution: 8\n", "    steps_per_exec: 8\n", "variants.steps-8.steps_per_exec", "unknown key"),
        ("    env: {OMP_WAIT_POLICY: PASSIVE}", "    env: {OMP-WAIT-POLICY: PASSIVE}",
         "variants.torch-omp-passive.env.OMP-WAIT-POLICY", "not an environment variable name"),
        ("    env: {OMP_WAIT_POLICY: PASSIVE}", "    env: {KERAS_BACKEND: jax}",
         "variants.torch-omp-passive.env.KERAS_BACKEND", "set by the runner itself"),
        ("  default_variant: stock ", "  default_variant: stokc ", "defaults.default_variant", "did you mean 'stock'"),
        ("    inference: {warmup: 10, calls: 100, batch_sizes: [model, 256, 1024], passes: 3}",
         "    inference: {warmup: 10, calls: 100, batch_sizes: [model, -256, 1024], passes: 3}",
         "profiles.quick.inference.batch_sizes.1", "greater than or equal to 1"),
        ("    inference: {warmup: 10, calls: 100, batch_sizes: [model, 256, 1024], passes: 3}",
         "    inference: {warmup: 10, calls: 0, batch_sizes: [model, 256, 1024], passes: 3}",
         "profiles.quick.inference.calls", "greater than or equal to 1"),
        ("    default_variant: faithful-2017   #", "    default_variant: stock   #",
         "environments.keras2017-tf-cntk.default_variant", "must apply to its backend tensorflow1"),
        ("    default_variant: faithful-2017   #", "    default_variant: faithful   #",
         "environments.keras2017-tf-cntk.default_variant", "did you mean 'faithful-2017'"),
        ("    recurrent_activation: hard_sigmoid_keras2\n", "    recurrent_activation: hard_sigmoid\n",
         "variants.faithful-2017.recurrent_activation", "hard_sigmoid_keras2"),
        ('    applies_to: {backends: [jax, jax-native], keras: ["3."], device: cpu, '
         'versions: {jaxlib: ">=0.10.2,<0.11"}}\n',
         '    applies_to: {backends: [jax, jax-native], keras: ["3."], device: cpu, versions: {jaxlib: "0.10.2"}}\n',
         "variants.jax-no-ynn.applies_to.versions", "not a version range"),  # the first of the CPU flags
    ],
)
def test_mistakes_name_file_line_and_key(tmp_path, old, new, key, words):
    message = _broken(tmp_path, old, new)
    matches = [re.match(r"(.+):(\d+): (\S+): (.*)", line) for line in message.splitlines()]
    assert all(matches), message
    match = next((m for m in matches if m.group(3) == key), matches[0])
    assert match.group(1).endswith("matrix.yaml")
    assert match.group(3) == key
    assert words in match.group(4)
    # the reported line is the one that was edited
    changed = next(line for line in new.splitlines() if line not in old.splitlines())
    assert (tmp_path / "matrix.yaml").read_text().splitlines()[int(match.group(2)) - 1].startswith(changed)


def test_missing_required_key_is_reported_at_its_parent(tmp_path):
    message = _broken(tmp_path, "    batch_size: 128\n", "")
    assert "models.mlp.batch_size: Field required" in message
    assert f":{_line_of(REAL, '  mlp:')}:" in message


def test_invalid_yaml_names_the_line(tmp_path):
    message = _broken(tmp_path, "  quick:\n", "  quick: [\n")
    assert "not valid YAML" in message and re.search(r"matrix.yaml:\d+", message)


def test_unreadable_matrix_says_which_flag_fixes_it(tmp_path):
    with pytest.raises(MatrixError, match="--matrix"):
        load_matrix(tmp_path / "nope.yaml")


def test_keras3_only_settings_need_a_keras3_scope(tmp_path):
    old = '    applies_to: {backends: [tensorflow, jax], keras: ["3."]}\n    steps_per_execution: 8\n'
    message = _broken(tmp_path, old, old.replace(', keras: ["3."]', "").replace("jax]", "jax, tensorflow1]"))
    line = _line_of(REAL, old) + 1
    assert f"matrix.yaml:{line}: variants.steps-8.steps_per_execution: steps_per_execution needs Keras 3" in message
    assert "keras2017-tf-cntk" in message and 'keras: ["3."]' in message


def test_a_variant_stays_on_the_versions_it_was_verified_with(tmp_path, matrix):
    """A jaxlib bump must not carry XLA flags to a jaxlib that may abort on them: the environment's default
    variant stops fitting its pins (an error at default_variant), and an unpinned package cannot be checked."""
    message = _broken(tmp_path, "      - jaxlib==0.10.2\n", "      - jaxlib==0.11.0\n")
    assert f"matrix.yaml:{_line_of(REAL, '    default_variant: {cpu: jax-ynn-no-conv')}: " \
           "environments.keras3-jax.default_variant.cpu: " in message
    assert "variant jax-ynn-no-conv was verified with jaxlib >=0.10.2,<0.11; keras3-jax has jaxlib 0.11.0" in message
    message = _broken(tmp_path, "      - jaxlib==0.10.2\n", "")
    line = _line_of(REAL, "  jax-ynn-no-conv:") + 6 - 1  # its applies_to, one line up without the pin
    assert f"matrix.yaml:{line}: variants.jax-ynn-no-conv.applies_to.versions.jaxlib: jaxlib has no exact pin (==) " \
           "in keras3-jax" in message
    # the pins decide for a built environment; an interpreter's own versions (`--python`) decide for it
    assert matrix.variant_misfit("jax-ynn-no-conv", "jax", "keras3-jax") is None
    assert matrix.variant_misfit("jax-ynn-no-conv", "jax", "keras3-jax", found={"jaxlib": "0.10.2+cuda12"}) is None
    assert "the interpreter of keras3-jax has jaxlib 0.4.30" in matrix.variant_misfit(
        "jax-ynn-no-conv", "jax", "keras3-jax", found={"jaxlib": "0.4.30"})
    # such an interpreter runs the plain default instead of the environment's, and is told why
    old_jaxlib = {"keras3-jax": {"jaxlib": "0.4.30"}}
    cells, notes = plan(matrix, Selection(backends=("jax@keras",), models=("mlp",), found=old_jaxlib))
    assert [c.variant for c in cells] == ["stock"]
    assert notes == ["variant jax-ynn-no-conv was verified with jaxlib >=0.10.2,<0.11; the interpreter of keras3-jax "
                     "has jaxlib 0.4.30: jax's cells run variant stock instead"]
    with pytest.raises(SelectionError, match="the interpreter of keras3-jax has jaxlib 0.4.30"):
        plan(matrix, Selection(backends=("jax",), variants=("jax-no-ynn",), found=old_jaxlib))


def test_real_variants_cover_the_keras3_backends_and_the_2017_defaults(matrix):
    v = matrix.variants
    assert matrix.defaults.default_variant == "stock"
    # the twins beside their Keras backends; the PyTorch twin's own layout is torch-channels-first's, not stock's
    assert set(v["stock"].applies_to.backends) == {"tensorflow", "jax", "torch", "tensorflow-native", "jax-native"}
    assert v["faithful-2017"].data_format == "channels_last"
    assert v["faithful-2017"].recurrent_activation == "hard_sigmoid_keras2"
    assert "mxnet" in v["faithful-2017"].applies_to.backends  # the fork trains 'tf' too (README)
    assert {b for name in v if name.startswith(("jax-", "tf-", "torch-")) for b in v[name].applies_to.backends} \
        == {"jax", "tensorflow", "torch", "jax-native", "tensorflow-native", "torch-native"}
    for name in ("keras2017-tf-cntk", "keras2017-theano", "keras2017-mxnet", "keras224-cntk-variant"):
        assert matrix.default_variant(name) == "faithful-2017"


def test_a_key_defined_twice_names_both_lines(tmp_path):
    """YAML keeps the last of two equal keys without a word; two branches that each add a variant of one name must
    not end with one of them silently gone."""
    text = (REPO_ROOT / "matrix.yaml").read_text()
    block = text[text.index("  tf32:\n"):text.index("  mixed-bf16:\n")]
    bad = tmp_path / "matrix.yaml"
    bad.write_text(text.replace(block, block + block, 1))
    first = text[:text.index("  tf32:\n")].count("\n") + 1
    with pytest.raises(MatrixError) as err:
        load_matrix(bad)
    again = first + block.count("\n")
    assert f"{bad}:{again}: variants.tf32: defined twice (first on line {first})" in str(err.value)
