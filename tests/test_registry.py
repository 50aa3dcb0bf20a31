"""The doors: your own σ and cost by registered name, by import path and by entry point, used
everywhere a built-in name is, and one-line errors that say what to write instead."""

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest
from conftest import REGISTRIES

import fnbackprop as fb
from fnbackprop import activations, config, costs, data, optimizers, registry
from fnbackprop.errors import ConfigError, FnbackpropError

REPO = Path(__file__).resolve().parents[1]
SWISH = "experiments.swish_huber:Swish"
HUBER = "experiments.swish_huber:Huber"


class Cube(fb.Activation):
    name: ClassVar[str] = "cube"

    def __call__(self, z):
        return z**3

    def prime(self, z):
        return 3 * z**2


class Absolute(fb.Cost):
    name: ClassVar[str] = "absolute"

    def __call__(self, a, y):
        return jnp.sum(jnp.abs(a - y), axis=0)

    def gradient(self, a, y):
        return jnp.sign(a - y)


@pytest.fixture
def registered():
    """Cube and Absolute registered for one test, forgotten after it."""
    yield activations.register(Cube()), costs.register(Absolute)
    activations.ACTIVATIONS.unregister("cube")
    costs.COSTS.unregister("absolute")


def test_a_registered_name_works_everywhere_a_builtin_name_does(registered):
    cube, absolute = registered
    assert "cube" in activations.names() and "absolute" in costs.names()
    net = fb.Network([3, 4, 2], "cube", "absolute")
    assert net.activations == (cube, cube) and net.cost == absolute
    raw = {"network": {"sizes": [784, 30, 10], "activation": "cube", "cost": "absolute"}}
    parsed = config.parse(raw)
    assert config.build_network(parsed).activations[0] == cube
    overridden = config.parse(config.apply_overrides({}, ["network.activation=cube"]))
    assert overridden.network.activation == "cube"
    rows = fb.check_activation("cube", cost="absolute")
    assert all(r.ok for r in rows), [r for r in rows if not r.ok]


def test_builtin_names_cannot_be_taken_and_taken_names_need_replace(registered):
    class Impostor(Cube):
        name: ClassVar[str] = "sigmoid"

    with pytest.raises(FnbackpropError, match="'sigmoid' is a built-in activation"):
        activations.register(Impostor())

    class OtherCube(Cube):  # another class under the taken name
        def prime(self, z):
            return 3.0 * z * z

    with pytest.raises(FnbackpropError, match=r"already registered as 'cube'.*replace=True"):
        activations.register(OtherCube())
    activations.register(Cube())  # the same definition again (a module run twice): fine
    assert activations.register(OtherCube(), replace=True) == activations.get("cube")


@pytest.mark.parametrize("spec", ["Leaky-ReLU", "leaky-relu", "LEAKY_RELU"])
def test_one_name_rule_in_python_and_in_configs(spec):
    with pytest.raises(FnbackpropError, match="did you mean 'leaky_relu'"):
        fb.Network([2, 2], spec)
    with pytest.raises(ConfigError, match=r"network.activation.*did you mean 'leaky_relu'"):
        config.parse({"network": {"activation": spec}})


@pytest.mark.parametrize("name", ["Swish", "my-swish", "2swish", ""])
def test_registered_names_follow_the_rule(name):
    class Named(Cube):
        pass

    Named.name = name
    with pytest.raises(FnbackpropError, match="not a valid activation name"):
        activations.register(Named())


def test_import_paths_in_python_for_an_instance_or_a_class():
    swish = activations.get(SWISH)  # a class: built with no arguments
    assert swish.name == "swish" and swish.beta == 1.0
    net = fb.Network([3, 4, 2], SWISH, HUBER)
    assert net.activations[0] == swish and net.cost.name == "huber"
    assert activations.get("fnbackprop.activations:Tanh") == activations.get("tanh")


@pytest.mark.parametrize(
    "spec, needles",
    [
        ("no_such_module_xyz:Swish", ["no module named 'no_such_module_xyz'", "PYTHONPATH"]),
        ("experiments.swish_huber:Swoosh", ["has no 'Swoosh'", "swish_huber"]),
        ("experiments.swish_huber:", ["an import path is 'package.module:Name'"]),
        ("fnbackprop.network:Network", ["is a class but not a subclass of fnbackprop.Activation"]),
        ("jax.nn:swish", ["plain function", "fnbackprop.Activation", "def prime"]),
    ],
)
def test_import_path_errors_name_the_module_and_the_fix(spec, needles):
    with pytest.raises(FnbackpropError) as excinfo:
        activations.get(spec)
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


_MYPLUG = """
import jax
import jax.numpy as jnp
import fnbackprop as fb

class Swish(fb.Activation):
    name = "myplug_swish"
    def __call__(self, z):
        return z * jax.nn.sigmoid(z)
    def prime(self, z):
        s = jax.nn.sigmoid(z)
        return s + z * s * (1 - s)

class Cube(fb.Activation):
    name = "myplug_cube"
    def __call__(self, z):
        return z**3
    def prime(self, z):
        return 3 * z**2

def helper(z):
    return jnp.tanh(z)
"""


@pytest.mark.parametrize(
    "spec, needles",
    [
        ("myplug:Nope", ["has no 'Nope'; its activations: Cube, Swish"]),
        ("myplug:Swsh", ["has no 'Swsh' (did you mean 'Swish'?); its activations: Cube, Swish"]),
        ("myplug:swish", ["has no 'swish' (did you mean 'Swish'?)"]),
    ],
)
def test_a_name_a_plugin_module_lacks_is_answered_with_what_it_has(
    tmp_path, monkeypatch, capsys, spec, needles
):
    """`fnbackprop check --activation myplug:Nope`: one line listing the module's activations
    (not its helper function, nor the modules it imports), with the nearest name."""
    from fnbackprop import cli

    (tmp_path / "myplug.py").write_text(_MYPLUG, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["check", "--activation", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"activation {spec!r}: module 'myplug'" in err
    for needle in needles:
        assert needle in err, err
    assert "helper" not in err and "jnp" not in err


def test_a_module_without_any_of_the_kind_lists_its_public_names(tmp_path, monkeypatch):
    (tmp_path / "myplug_costs.py").write_text(_MYPLUG, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FnbackpropError) as excinfo:
        costs.get("myplug_costs:Huber")
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.endswith(
        "has no 'Huber'; its public names (none is one of the costs): Cube, Swish, helper"
    )


def test_did_you_mean_compares_names_and_keeps_the_choice_as_written():
    assert registry.did_you_mean("Leaky-ReLU", ["relu", "leaky_relu"]) == (
        " (did you mean 'leaky_relu'?)"
    )
    assert registry.did_you_mean("swsh", ["Swish", "Cube"]) == " (did you mean 'Swish'?)"
    assert registry.did_you_mean("xavier", ["normal", "scaled"]) == ""


def test_a_module_that_fails_to_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken_sigmas.py").write_text("import not_installed_anywhere\n")
    (tmp_path / "raising_sigmas.py").write_text("raise RuntimeError('half written')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(FnbackpropError, match=r"importing 'broken_sigmas' failed.*not_installed"):
        activations.get("broken_sigmas:Swish")
    with pytest.raises(FnbackpropError, match="raised RuntimeError: half written"):
        activations.get("raising_sigmas:Swish")


def test_a_module_in_the_current_folder_is_found(tmp_path, monkeypatch):
    (tmp_path / "here_sigmas.py").write_text(
        "from tests.test_registry import Cube as Here\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.syspath_prepend(str(REPO))
    assert activations.get("here_sigmas:Here").name == "cube"


def test_an_installed_package_declares_its_sigma_by_entry_point(tmp_path, monkeypatch):
    (tmp_path / "plug_sigmas.py").write_text(
        "from tests.test_registry import Cube as PlugCube\n", encoding="utf-8"
    )
    dist = tmp_path / "plug_sigmas-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug-sigmas\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[fnbackprop.activations]\nplug_cube = plug_sigmas:PlugCube\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert fb.Network([2, 3, 2], "plug_cube").activations[0].name == "cube"
        assert "plug_cube" in activations.names()
    finally:
        activations.ACTIVATIONS.unregister("plug_cube")


# -- errors that teach, raised where the object is first given ----------------------------------


class NoPrime(fb.Activation):
    name: ClassVar[str] = "no_prime"

    def __call__(self, z):
        return z


class NoName(fb.Activation):
    def __call__(self, z):
        return z

    def prime(self, z):
        return jnp.ones_like(z)


class Learnable(Cube):
    scale: jax.Array = eqx.field(default_factory=lambda: jnp.ones(3))


class NoGradient(fb.Cost):
    name: ClassVar[str] = "no_gradient"

    def __call__(self, a, y):
        return jnp.sum((a - y) ** 2, axis=0)


class BackwardOnly(fb.Activation):
    name: ClassVar[str] = "backward_only"

    def __call__(self, z):
        return z

    def backward(self, z, nabla_a):
        return nabla_a


@pytest.mark.parametrize(
    "activation, needles",
    [
        (jax.nn.swish, ["plain function", "class Swish(fnbackprop.Activation)", "def prime"]),
        (lambda z: z, ["plain function"]),
        (NoPrime(), ["NoPrime defines no prime", "prime(self, z)", "elementwise = False"]),
        (NoName(), ["NoName has no name", "name = 'swish'"]),
        (Learnable(), ["holds arrays (field scale)", "learnable", "not supported", "static"]),
        (BackwardOnly(), ["defines backward but not prime", "elementwise = False"]),
        (3, ["not int"]),
    ],
)
def test_mistakes_in_a_sigma_are_one_line_at_the_network(activation, needles):
    with pytest.raises(FnbackpropError) as excinfo:
        fb.Network([2, 3, 2], activation)  # raised here, not later inside jit
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    "cost, needles",
    [
        (lambda a, y: a, ["plain function", "fnbackprop.Cost", "def gradient"]),
        (NoGradient(), ["NoGradient defines no gradient", "gradient(self, a, y)"]),
    ],
)
def test_mistakes_in_a_cost_are_one_line_at_the_network(cost, needles):
    with pytest.raises(FnbackpropError) as excinfo:
        fb.Network([2, 3, 2], "sigmoid", cost)
    for needle in needles:
        assert needle in str(excinfo.value)


def test_every_named_choice_uses_the_same_registry():
    """Activations, costs, init schemes, gradient methods, optimizers, schedules and data sets:
    one mechanism, the same messages, import paths everywhere."""
    for kind in REGISTRIES:
        assert isinstance(kind, registry.Registry)
        with pytest.raises(FnbackpropError, match=f"unknown {kind.kind} 'nope'.*valid names"):
            kind.get("nope")
    assert optimizers.OPTIMIZERS.get("optax:rmsprop") is __import__("optax").rmsprop
    assert data.DATASETS.get("fnbackprop.data:MNIST") is data.MNIST
    rule = optimizers.make_optimizer("optax:rmsprop", 0.1)
    assert hasattr(rule, "update")


# -- the command line, with a module fnbackprop does not ship -----------------------------------


@pytest.fixture
def fnbackprop(cli_process):
    """`fnbackprop(*args, cwd, env=None, check=True)`: the command in a fresh process (a user's
    module is found on its PYTHONPATH), checked to succeed unless `check` is false."""

    def run(*args, cwd, env=None, check=True):
        result = cli_process(*args, cwd=cwd, env=env)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run


@pytest.mark.mnist
def test_the_shipped_example_module_through_the_command(mnist_dir, tmp_path, fnbackprop):
    """experiments/swish_huber.py, as the README uses it: check, train on a subset, evaluate."""
    run = tmp_path / "swish"
    checked = fnbackprop("check", "--activation", SWISH, "--cost", HUBER, cwd=REPO)
    assert "all agree" in checked.stdout
    fnbackprop(
        "train",
        "experiments/configs/swish_huber.toml",
        "--set", "training.epochs=1",
        "--set", "data.train_size=5000",
        "--out", str(run), "--quiet",
        cwd=REPO,
    )  # fmt: skip
    assert config.load(run / "config.toml").network.activation == (SWISH, "sigmoid")
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["test_accuracy"] > 0.8  # it learns
    evaluated = json.loads(fnbackprop("evaluate", str(run), "--json", cwd=REPO).stdout)
    assert evaluated["test"]["correct"] == last["test_correct"]


@pytest.mark.mnist
def test_a_users_module_in_a_config_trains_evaluates_and_resumes(mnist_dir, tmp_path, fnbackprop):
    """A module written here, not in fnbackprop, on PYTHONPATH; elsewhere it cannot be found,
    and the error says how to make it importable."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "user_parts.py").write_text(
        textwrap.dedent(
            """
            from typing import ClassVar
            import jax, jax.numpy as jnp
            import fnbackprop as fb

            class Softsign(fb.Activation):
                name: ClassVar[str] = "softsign"
                def __call__(self, z):
                    return z / (1 + jnp.abs(z))
                def prime(self, z):
                    return 1 / (1 + jnp.abs(z)) ** 2
            """
        )
    )
    cfg = tmp_path / "softsign.toml"
    cfg.write_text(
        '[network]\nsizes = [784, 30, 10]\nactivation = ["user_parts:Softsign", "sigmoid"]\n'
        'init = "scaled"\n[training]\nepochs = 1\neta = 1.0\n[data]\ntrain_size = 3000\n'
    )
    env = {"PYTHONPATH": f"{plugins}{os.pathsep}{REPO}"}
    run = tmp_path / "run"
    fnbackprop("train", str(cfg), "--out", str(run), "--quiet", cwd=tmp_path, env=env)
    evaluated = json.loads(fnbackprop("evaluate", str(run), "--json", cwd=tmp_path, env=env).stdout)
    assert evaluated["test"]["accuracy"] > 0.5
    resumed = fnbackprop("train", "--resume", str(run), "--quiet", cwd=tmp_path, env=env)
    assert resumed.returncode == 0
    lost = fnbackprop(
        "evaluate", str(run), cwd=tmp_path, env={"PYTHONPATH": str(REPO)}, check=False
    )
    assert lost.returncode == 2
    assert len(lost.stderr.strip().splitlines()) == 1
    assert "no module named 'user_parts'" in lost.stderr and "PYTHONPATH" in lost.stderr
