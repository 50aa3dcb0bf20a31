"""Data-parallel SGD: sharded training equals one-device training, on fake devices and hosts.

The device count is fixed when a process starts, so the sharded runs happen in subprocesses
started with `XLA_FLAGS=--xla_force_host_platform_device_count=...`; this process keeps its one
device. One subprocess does all the four-device work; two more form a two-process run on
127.0.0.1 (gloo collectives over TCP).
"""

import json
import os
import socket
import subprocess
import sys

import jax
import pytest
from conftest import REPO, slow_fixture

from fnbackprop import config, optimizers, runs, sharding, training
from fnbackprop.check import relative_error
from fnbackprop.errors import ConfigError, FnbackpropError
from fnbackprop.network import Network

# Runs with 4 fake CPU devices; prints one JSON object.
FOUR_DEVICES = r"""
import json, re, sys
import jax, jax.numpy as jnp
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")
from fnbackprop.check import relative_error
from fnbackprop import config, optimizers, runs, sharding, training
from fnbackprop.data import load_mnist_idx, one_hot
from fnbackprop.network import Network

splits = load_mnist_idx(sys.argv[1])
X_val, labels_val = splits.validation.images[:2000], splits.validation.labels[:2000]
net = Network([784, 30, 10])
optimizer = optimizers.make_optimizer("sgd", 3.0)
params0 = net.init(jax.random.key(0))
out = {"device_count": jax.device_count()}

def train(n, devices, gradient="backprop", m=20, epochs=2):
    X = jnp.asarray(splits.train.images[:n])
    Y = jnp.asarray(one_hot(splits.train.labels[:n], 10))
    epoch = training.make_epoch(
        net, optimizer, gradient=gradient, mini_batch_size=m, devices=devices
    )
    params, opt_state, correct = params0, optimizer.init(params0), []
    for e in range(epochs):
        params, opt_state = epoch(params, opt_state, jax.random.key(e), X, Y)
        correct.append(training.evaluate(net, params, X_val, labels_val)[0])
    return params, correct, str(params[0][0].sharding)

for gradient in training.GRADIENTS.builtin_names():
    p1, c1, _ = train(1000, 1, gradient)
    p4, c4, s4 = train(1000, 4, gradient)
    out[gradient] = {"error": relative_error(p4, p1), "one": c1, "four": c4, "sharding": s4}
p1, c1, _ = train(1010, 1, epochs=1)  # a last mini-batch of 10: whole on every device
p4, c4, _ = train(1010, 4, epochs=1)
out["remainder"] = {"error": relative_error(p4, p1), "one": c1, "four": c4}

X = jnp.asarray(splits.train.images[:1000])
Y = jnp.asarray(one_hot(splits.train.labels[:1000], 10))
epoch = training.make_epoch(net, optimizer, mini_batch_size=20, devices=4)
hlo = epoch.lower(params0, optimizer.init(params0), jax.random.key(0), X, Y).compile().as_text()
out["hlo"] = {
    "all-reduce": len(re.findall(r"all-reduce\(", hlo)),
    "all-gather": len(re.findall(r"all-gather\(", hlo)),
    "per-device gather": "f32[5,1,784]" in hlo,
}
try:
    training.make_epoch(net, optimizer, mini_batch_size=16, devices=8)
except Exception as err:
    out["too_many"] = f"{type(err).__name__}: {err}"

def metrics(devices):
    c = config.parse({
        "training": {"epochs": 2, "mini_batch_size": 20, "devices": devices},
        "data": {"train_size": 1012},  # a last mini-batch of 12: split 4 ways
    })
    result = runs.run_training(c, data_dir=sys.argv[1], progress=False, echo=None)
    return [(m["validation_correct"], m["test_correct"]) for m in result.metrics], result.params

(m1, p1), (m4, p4) = metrics(1), metrics(4)
out["run_training"] = {"one": m1, "four": m4, "error": relative_error(p4, p1)}
print(json.dumps(out))
"""


def _env(device_count: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={device_count}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")])
    return env


@slow_fixture(scope="module")
def four(mnist_dir):
    """The figures of FOUR_DEVICES, run in a fresh process with 4 fake CPU devices."""
    done = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES, str(mnist_dir)],
        env=_env(4),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_subprocess_has_four_devices_and_this_one_keeps_one(four):
    assert four["device_count"] == 4
    assert jax.device_count() == 1


@pytest.mark.parametrize("gradient", ["backprop", "backprop_batch", "autodiff", "backprop_vjp"])
def test_sharded_training_equals_one_device(four, gradient):
    """Same parameters after two epochs (float32 rounding apart), same accuracy each epoch."""
    result = four[gradient]
    assert result["error"] < 1e-5
    assert result["four"] == result["one"]
    assert result["one"][-1] > 600  # it learns: 3 times chance on 2,000 images
    assert "NamedSharding" in result["sharding"] and "spec=P()" in result["sharding"]


def test_a_last_mini_batch_that_does_not_split_is_computed_whole(four):
    result = four["remainder"]
    assert result["error"] < 1e-5
    assert result["four"] == result["one"]


def test_xla_reduces_the_per_device_gradients(four):
    """Each device gathers its own 20/4 = 5 examples; gradients meet in an all-reduce."""
    assert four["hlo"]["per-device gather"]
    assert four["hlo"]["all-reduce"] >= 1
    assert four["hlo"]["all-gather"] == 0


def test_run_training_with_four_devices_equals_one(four):
    """The CLI's path (`training.devices = 4`), its last mini-batch of 12 split 4 ways."""
    result = four["run_training"]
    assert result["four"] == result["one"]
    assert result["error"] < 1e-5


def test_more_devices_than_exist_are_rejected(four):
    assert "training.devices = 8, but only 4 cpu devices exist: choose 1 to 4" in four["too_many"]
    with pytest.raises(FnbackpropError, match="but only 1 cpu device exists"):
        training.make_epoch(
            Network([4, 2]), optimizers.make_optimizer(), mini_batch_size=8, devices=2
        )


def test_a_mini_batch_not_divisible_by_the_devices_is_rejected():
    with pytest.raises(
        ConfigError, match=r"mini_batch_size = 10 is not divisible by .*devices = 4"
    ):
        config.parse({"training": {"mini_batch_size": 10, "devices": 4}})
    with pytest.raises(ConfigError, match="devices among 1, 3, 9"):
        training.make_epoch(
            Network([4, 2]), optimizers.make_optimizer(), mini_batch_size=9, devices=2
        )
    assert config.parse({"training": {"mini_batch_size": 12, "devices": 4}}).training.devices == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("127.0.0.1:1234", None, 0), "needs all three"),
        (("127.0.0.1", 2, 0), "expected HOST:PORT"),
        (("127.0.0.1:1234", 2, 2), "must be one of 0..1"),
    ],
)
def test_bad_multi_process_settings_are_rejected(args, message, monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(FnbackpropError, match=message):
        sharding.initialize(*args)
    assert sharding.initialize() is False  # nothing given: one process, nothing started


def test_two_processes_on_localhost_train_like_one_device(mnist_dir, tmp_path, spawn):
    """`fnbackprop train --coordinator ...` twice, 2 fake devices each: 4 devices, 2 hosts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    overrides = ["training.epochs=1", "training.mini_batch_size=20", "data.train_size=1000"]
    settings = [*(a for o in overrides for a in ("--set", o)), "--data-dir", str(mnist_dir)]
    config_path = str(REPO / "experiments" / "configs" / "chapter1.toml")
    processes = [
        spawn(
            *("-m", "fnbackprop.cli", "train", config_path, *settings),
            *("--quiet", "--set", "training.devices=4", "--out", str(tmp_path / f"p{i}")),
            *("--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"),
            *("--process-id", str(i)),
            env=_env(2),
            stderr=subprocess.STDOUT,
        )
        for i in (0, 1)
    ]
    try:  # meanwhile, the same run here on one device
        one_device = config.load(config_path, overrides)
        expected = runs.run_training(one_device, data_dir=mnist_dir, progress=False, echo=None)
        logs = [p.communicate(timeout=240)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0, 0], logs
    assert not (tmp_path / "p1").exists()  # process 0 alone writes
    _, _, params, header = runs.load_run(tmp_path / "p0")
    assert [m["test_correct"] for m in header["metrics"]] == [
        m["test_correct"] for m in expected.metrics
    ]
    assert relative_error(params, expected.params) < 1e-5
    assert all(f"Epoch 0: {expected.metrics[0]['test_correct']} / 10000" in log for log in logs)
