"""The `fnbackprop` command as a user meets it: real files, real subprocesses, a real SIGKILL.

A test that needs no process of its own runs the command through `run_cli`: by `cli.main` here
in the default run, and in a fresh process too in the full one (tests/conftest.py).

- Every user error is one line on stderr and exit code 2, never a traceback; `--debug` adds the
  traceback; a bug (any other exception) is one line and exit code 1.
- A run that diverges stops at the end of that epoch, naming it and suggesting a smaller η, and
  leaves the last good checkpoint byte for byte as it was.
- A run killed with SIGKILL in the middle of an epoch and resumed ends with exactly the parameters
  of an uninterrupted run.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import cli_in_process

import fnbackprop as fnbackprop_package
from fnbackprop import checkpoint, cli, config, optimizers, runs, training
from fnbackprop.errors import CheckpointError

REPO = Path(__file__).resolve().parents[1]
CHAPTER1 = REPO / "experiments" / "configs" / "chapter1.toml"


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The single stderr line of a user error (exit code 2), checked to hold every fragment."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fnbackprop: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- user errors: one line, exit code 2 ------------------------------------------------------------


def _error_cases(root: Path, mnist_dir: Path) -> dict[str, tuple[list, dict, list[str]]]:
    """name → (arguments, extra environment, fragments the one stderr line must hold)."""
    (root / "empty").mkdir()
    (root / "a_file").write_text("not a folder")
    configs = {
        "invalid.toml": "[network\nsizes = [784, 30, 10]\n",
        "unknown_key.toml": "[network]\nsize = [784, 30, 10]\n",
        "wrong_type.toml": '[training]\neta = "fast"\n',
        "unknown_activation.toml": '[network]\nactivation = "sigmod"\n',
        "wrong_inputs.toml": "[network]\nsizes = [100, 30, 10]\n",
    }
    for name, text in configs.items():
        (root / name).write_text(text)
    # a run folder with a config but no checkpoint (killed before its first epoch ended)
    (root / "no_ckpt").mkdir()
    (root / "no_ckpt" / runs.CONFIG).write_text(config.dumps(config.load(CHAPTER1)))
    # a saved [784, 30, 10] network, and the same checkpoint beside a [784, 20, 10] config
    c = config.load(CHAPTER1)
    net = config.build_network(c)
    params = net.init(jax.random.key(0))
    optimizer = optimizers.make_optimizer()
    for folder, sizes in (("run", [784, 30, 10]), ("other", [784, 20, 10])):
        (root / folder).mkdir()
        text = config.dumps(config.load(CHAPTER1, [f"network.sizes={sizes}"]))
        (root / folder / runs.CONFIG).write_text(text)
        state = training.TrainState(params, optimizer.init(params), 1)
        checkpoint.save(root / folder / runs.CHECKPOINT, net, state, jax.random.key(1), [])
    offline = {"https_proxy": f"http://127.0.0.1:{_closed_port()}", "no_proxy": ""}
    offline |= {k.upper(): v for k, v in offline.items()}
    train = ["train", "--quiet"]
    return {
        "missing config": (
            [*train, root / "nope.toml"],
            {},
            ["config file", "nope.toml not found"],
        ),
        "invalid TOML": ([*train, root / "invalid.toml"], {}, ["is not valid TOML", "line 1"]),
        "unknown key": (
            [*train, root / "unknown_key.toml"],
            {},
            ["unknown key network.size", "valid keys in [network]: sizes, activation, cost"],
        ),
        "wrong type": (
            [*train, root / "wrong_type.toml"],
            {},
            ["training.eta must be a number, got 'fast'"],
        ),
        "unknown activation": (
            [*train, root / "unknown_activation.toml"],
            {},
            [
                "unknown_activation.toml: network.activation: unknown activation 'sigmod' "
                "(did you mean 'sigmoid'?); valid names: sigmoid, tanh, linear, relu",
                "or your own as 'package.module:Name'",
            ],
        ),
        "near-miss name in --set": (
            [*train, CHAPTER1, "--set", "network.cost=Cross-Entropy"],
            {},
            ["network.cost: unknown cost 'Cross-Entropy' (did you mean 'cross_entropy'?)"],
        ),
        "bad --set": (
            [*train, CHAPTER1, "--set", "training.eta"],
            {},
            ["--set 'training.eta': expected section.key=value, e.g. training.eta=0.5"],
        ),
        "unknown --set key": (
            [*train, CHAPTER1, "--set", "training.etta=0.5"],
            {},
            ["unknown key training.etta", "valid keys in [training]: epochs, mini_batch_size"],
        ),
        "network that does not fit the data": (
            [*train, root / "wrong_inputs.toml", "--data-dir", mnist_dir],
            {},
            ["network.sizes = [100, 30, 10] does not fit mnist: it needs 784 inputs"],
        ),
        "resume a folder that is no run": (
            [*train, "--resume", root / "empty"],
            {},
            ["nothing to resume in", "no config.toml there"],
        ),
        "resume a run without a checkpoint": (
            [*train, "--resume", root / "no_ckpt"],
            {},
            [
                f"nothing to resume in {root / 'no_ckpt'}: its run saved no epoch (no "
                f"checkpoint.eqx); start it again with `fnbackprop train "
                f"{root / 'no_ckpt' / 'config.toml'} --out {root / 'no_ckpt'}`"
            ],
        ),
        "evaluate a file that is no checkpoint": (
            ["evaluate", root / "run" / runs.CONFIG],
            {},
            ["config.toml is not a readable fnbackprop checkpoint"],
        ),
        "evaluate a checkpoint of another network": (
            ["evaluate", root / "other"],
            {},
            ["belongs to a different network (sizes [784, 30, 10]", "(sizes [784, 20, 10]"],
        ),
        "verify an empty data folder": (
            ["data", "verify", "--data-dir", root / "empty"],
            {},
            ["4 of 4 mnist files in", "are missing or damaged", "fnbackprop data download"],
        ),
        "verify mnist_pkl in an empty folder": (
            ["data", "verify", "--dataset", "mnist_pkl", "--data-dir", root / "empty"],
            {},
            ["1 of 1 mnist_pkl files in", "are missing or damaged", "put Nielsen's mnist.pkl.gz"],
        ),
        "unknown dataset": (
            ["data", "verify", "--dataset", "fashion-mnist", "--data-dir", root / "empty"],
            {},
            [
                "unknown dataset 'fashion-mnist' (did you mean 'fashion_mnist'?)",
                "valid names: mnist, mnist_pkl, fashion_mnist",
            ],
        ),
        "check an unknown activation": (
            ["check", "--activation", "Leaky-ReLU"],
            {},
            ["unknown activation 'Leaky-ReLU' (did you mean 'leaky_relu'?)"],
        ),
        "check a cost that cannot be imported": (
            ["check", "--cost", "no_such_module:Huber"],
            {},
            ["cost 'no_such_module:Huber': no module named 'no_such_module'"],
        ),
        "missing data while offline": (
            [*train, CHAPTER1, "--data-dir", root / "empty"],
            offline,
            ["could not download train-images-idx3-ubyte.gz", "refused", "--data-dir"],
        ),
        "unwritable --out": (
            [*train, CHAPTER1, "--out", root / "a_file" / "run", "--data-dir", mnist_dir],
            {},
            ["cannot write the run's files in", "a_file/run", "choose another --out"],
        ),
    }


@pytest.fixture(scope="module")
def errors(tmp_path_factory, mnist_dir, run_cli):
    """Every error case run at once (each subprocess spends most of its time importing JAX; in
    this process, one at a time)."""
    cases = _error_cases(tmp_path_factory.mktemp("cli"), mnist_dir)
    assert list(cases) == ERROR_CASES
    with ThreadPoolExecutor(max_workers=1 if run_cli is cli_in_process else 4) as pool:
        futures = {
            name: pool.submit(run_cli, *args, env=env) for name, (args, env, _) in cases.items()
        }
    return {name: (future.result(), cases[name][2]) for name, future in futures.items()}


ERROR_CASES = [
    "missing config",
    "invalid TOML",
    "unknown key",
    "wrong type",
    "unknown activation",
    "near-miss name in --set",
    "bad --set",
    "unknown --set key",
    "network that does not fit the data",
    "resume a folder that is no run",
    "resume a run without a checkpoint",
    "evaluate a file that is no checkpoint",
    "evaluate a checkpoint of another network",
    "verify an empty data folder",
    "verify mnist_pkl in an empty folder",
    "unknown dataset",
    "check an unknown activation",
    "check a cost that cannot be imported",
    "missing data while offline",
    "unwritable --out",
]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_user_errors_are_one_line_and_exit_code_2(errors, case):
    result, fragments = errors[case]
    one_line_error(result, *fragments)


def test_verify_still_lists_every_file_on_stdout(errors):
    result, _ = errors["verify an empty data folder"]
    assert result.stdout.count("BAD ") == 4 and result.stdout.count(": missing") == 4


def test_debug_shows_the_traceback_then_the_line(tmp_path, run_cli):
    result = run_cli("--debug", "train", tmp_path / "nope.toml")
    assert result.returncode == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "fnbackprop.errors.ConfigError" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("fnbackprop: error: config file")


def test_a_bug_is_one_line_and_exit_code_1(monkeypatch, capsys):
    """Any exception that is not a user error is reported as a bug, with the way to see more."""
    monkeypatch.setitem(cli.COMMANDS, "check", lambda args: {}["missing"])
    assert cli.main(["check"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "fnbackprop: internal error: KeyError: 'missing'; rerun with --debug for details"
    ]
    assert cli.main(["--debug", "check"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("fnbackprop: internal error")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"fnbackprop {fnbackprop_package.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", fnbackprop_package.__version__)


def test_import_and_help_do_not_load_jax():
    """`import fnbackprop` is lazy: JAX loads when something needs it, not for --help."""
    code = (
        "import sys, contextlib, io\n"
        "import fnbackprop, fnbackprop.cli\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    fnbackprop.cli.main(['--help'])\n"
        "print('jax' in sys.modules)\n"
        "fnbackprop.Network\n"
        "print('jax' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]


def test_usage_errors_exit_2_without_a_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--no-such-option"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-option" in err and "Traceback" not in err


# -- divergence ------------------------------------------------------------------------------------

# A linear network with a large η: finite for a few epochs, then the cost overflows.
DIVERGING = """\
[network]
sizes = [784, 10]
activation = "linear"
[training]
epochs = 10
mini_batch_size = 100
eta = 0.1
[data]
train_size = 1000
"""


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(tmp_path, mnist_dir, run_cli):
    (tmp_path / "diverging.toml").write_text(DIVERGING)
    run = tmp_path / "run"
    args = ["--data-dir", mnist_dir, "--quiet"]
    line = one_line_error(
        run_cli("train", tmp_path / "diverging.toml", "--out", run, *args),
        "became NaN or infinite; try a smaller learning rate (training.eta)",
    )
    found = re.search(r"diverged in epoch (\d+): .* keeps epoch (\d+), the last good one", line)
    assert found, line
    bad, kept = int(found[1]), int(found[2])
    assert bad >= 1 and kept == bad - 1  # finite for at least one epoch first
    metrics = [json.loads(m) for m in (run / runs.METRICS).read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == list(range(bad))
    assert all(np.isfinite(m[f"{s}_cost"]) for m in metrics for s in ("test", "validation"))
    assert checkpoint.read_header(run / runs.CHECKPOINT)["epoch"] == bad  # epochs done
    _, _, params, _ = runs.load_run(run)
    assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(params))
    # resuming runs the bad epoch again: it diverges again, and the files stay byte for byte
    before = {name: (run / name).read_bytes() for name in (runs.CHECKPOINT, runs.METRICS)}
    again = one_line_error(run_cli("train", "--resume", run, *args))
    assert again == line
    assert {name: (run / name).read_bytes() for name in before} == before
    assert not list(run.glob("*.part"))


# -- crash and resume ------------------------------------------------------------------------------

# The chapter-1 network learning online (mini-batches of one, thousands of steps an epoch) with
# momentum, so the optimizer state must survive the crash too.
CRASH = [
    "--set",
    "training.epochs=3",
    "--set",
    "training.mini_batch_size=1",
    "--set",
    "training.optimizer=momentum",
    "--set",
    "training.eta=0.3",
    "--set",
    "data.train_size=30000",
]


def _saved_state(run: Path):
    """Every array a run's checkpoint holds (parameters, momentum, PRNG key) and its header."""
    c = config.load(run / runs.CONFIG)
    net = config.build_network(c)
    params = net.init(jax.random.key(0))
    optimizer = optimizers.make_optimizer(c.training.optimizer, c.training.eta)
    like = training.TrainState(params, optimizer.init(params), 0)
    state, key, header = checkpoint.load(run / runs.CHECKPOINT, net, like)
    return jax.tree.leaves((state.params, state.opt_state, jax.random.key_data(key))), header


def _without_seconds(run: Path) -> list[dict]:
    lines = (run / runs.METRICS).read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]


def test_a_run_killed_mid_epoch_resumes_to_exactly_the_uninterrupted_result(
    tmp_path, mnist_dir, spawn, cli_process
):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    args = [CHAPTER1, *CRASH, "--data-dir", mnist_dir, "--quiet"]
    uninterrupted = spawn("-m", "fnbackprop.cli", "train", *args, "--out", whole)
    victim = spawn("-m", "fnbackprop.cli", "train", *args, "--out", killed)
    deadline = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < deadline:
        try:
            if checkpoint.read_header(killed / runs.CHECKPOINT)["epoch"] >= 1:
                os.kill(victim.pid, signal.SIGKILL)  # in epoch 1, thousands of steps from its end
                break
        except CheckpointError:
            pass  # no checkpoint yet
        time.sleep(0.005)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert checkpoint.read_header(killed / runs.CHECKPOINT)["epoch"] == 1
    # a temporary file as a kill during a write leaves it: resuming must clear it away
    (killed / ".checkpoint.eqx.crashed.part").write_bytes(b"half a checkpoint")

    resumed = cli_process("train", "--resume", killed, "--data-dir", mnist_dir, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "Epoch 0:" not in resumed.stdout and "Epoch 2:" in resumed.stdout
    uninterrupted.communicate(timeout=300)
    assert uninterrupted.returncode == 0

    arrays, header = _saved_state(killed)
    expected, expected_header = _saved_state(whole)
    assert header["epoch"] == expected_header["epoch"] == 3
    # w, b of 2 layers, their 4 momenta, the step count, η and μ (held in the state), the key
    assert len(arrays) == len(expected) == 12
    for got, want in zip(arrays, expected, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert _without_seconds(killed) == _without_seconds(whole)
    assert len(_without_seconds(killed)) == 3
    assert not list(killed.glob("*.part")) and not list(killed.glob(".*.part"))


# -- a run that behaves: folders, locks, --set, --resume, no --out ---------------------------------

SMALL_RUN = """\
[network]
sizes = [784, 6, 10]
cost = "cross_entropy"
init = "scaled"
[training]
epochs = 1
mini_batch_size = 50
eta = 0.5
[data]
train_size = 500
"""


def test_a_set_error_names_the_command_line(capsys):
    assert cli.main(["train", str(CHAPTER1), "--set", "training.eta=abc"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        "fnbackprop: error: --set training.eta=abc: training.eta must be a number, got 'abc'"
    )


def test_without_out_the_run_is_saved_under_runs_and_a_finished_run_says_so(
    tmp_path, mnist_dir, monkeypatch, capsys
):
    (tmp_path / "small.toml").write_text(SMALL_RUN)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "small.toml", "--quiet", "--data-dir", str(mnist_dir)]) == 0
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "runs").iterdir()
    assert f"fnbackprop: no --out given: saving in runs/{folder.name}" in out
    assert folder.name.startswith("small-") and (folder / runs.CHECKPOINT).is_file()
    data = ["--quiet", "--data-dir", str(mnist_dir)]
    assert cli.main(["train", "--resume", str(folder), *data]) == 0
    assert "finished: all 1 epochs are done" in capsys.readouterr().out
    args = ["train", "--resume", str(folder), "--set", "training.epochs=2", "--quiet"]
    assert cli.main([*args, "--data-dir", str(mnist_dir)]) == 0
    assert "Epoch 1: " in capsys.readouterr().out
    assert checkpoint.read_header(folder / runs.CHECKPOINT)["epoch"] == 2


def test_two_trainings_into_one_folder_the_second_fails_at_once(
    tmp_path, mnist_dir, spawn, cli_process
):
    """The first holds the folder's lock; the second exits 2 with one line; once the first is
    killed, the lock is gone with it, and the folder (now holding a run) needs --overwrite."""
    (tmp_path / "long.toml").write_text(SMALL_RUN.replace("epochs = 1", "epochs = 10000"))
    run = tmp_path / "run"
    args = [tmp_path / "long.toml", "--out", run, "--data-dir", mnist_dir]
    first = spawn("-m", "fnbackprop.cli", "train", *args)
    try:
        deadline = time.monotonic() + 120
        while not (run / runs.METRICS).is_file() and time.monotonic() < deadline:
            time.sleep(0.05)  # the first epoch is done: the run is well under way
        second = cli_process("train", *args, "--quiet")
        line = one_line_error(second, f"{run} is in use by another training run (process "
                              f"{first.pid}, started ")  # fmt: skip
        assert line.endswith("wait for it to finish, or choose another --out")
    finally:
        os.kill(first.pid, signal.SIGKILL)
    out, err = first.communicate()
    lines = out.splitlines()
    assert lines and all(line.startswith(f"Epoch {i}: ") for i, line in enumerate(lines))
    assert "\r" not in out + err  # not a terminal: no progress bar, one line per epoch
    third = cli_process("train", *args, "--quiet")
    one_line_error(third, f"{run} holds a run (", "give --overwrite to replace it")


# -- your own σ and cost, as a new user meets them (issue 17) -------------------------------------


def _folder(path: Path):
    """Every file under `path` with its bytes (None if there is no such folder)."""
    if not path.exists():
        return None
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def test_a_broken_plug_in_is_named_before_anything_is_written(tmp_path, mnist_dir, cli_process):
    """A σ of the wrong shape, a wrong σ′ and a cost summed over every axis (tests/
    broken_plugins.py): each is refused before the first epoch with one line naming the plug-in,
    what it gave against what was expected and the `fnbackprop check` command, exit code 2; the
    --out folder is as it was. `--no-check` trains the wrong σ′ anyway (its shapes are right)."""
    small = tmp_path / "small.toml"
    small.write_text(
        "[network]\nsizes = [784, 8, 10]\n[training]\nepochs = 1\nmini_batch_size = 50\n"
        "[data]\ntrain_size = 500\n"
    )
    kept, other = tmp_path / "kept", tmp_path / "other"  # one folder per run: they run at once
    for folder in (kept, other):
        folder.mkdir()
        (folder / "notes.txt").write_text("mine")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])}
    sigma = "--set=network.activation=['broken_plugins:{}', 'sigmoid']".format
    cost = "--set=network.cost=broken_plugins:SumsEverything"
    common = ["train", small, "--quiet", "--data-dir", mnist_dir]
    cases = {
        "wrong shape": ([sigma("WrongShape"), "--out", tmp_path / "new"], tmp_path / "new", [
            "fnbackprop: error: activation 'broken_plugins:WrongShape' in layer 2 (8 neurons): "
            "σ(z) returned shape (1,) for z of shape (8,), expected (8,) (σ acts on axis 0, the "
            "neurons, and keeps the shape)",
            "check it with `fnbackprop check --activation broken_plugins:WrongShape`",
        ]),
        "wrong σ′": ([sigma("BadPrime"), "--out", kept], kept, [
            "fnbackprop: error: activation 'broken_plugins:BadPrime' fails its contract check "
            "before training (3 of 5 rows): σ′ = jax.grad of σ: relative error 4.1e-02 at "
            "z = -1.66: σ′ -0.018455, jax.grad -0.0630235; see every row with `fnbackprop check "
            "--activation broken_plugins:BadPrime`, or give --no-check to train anyway",
        ]),
        "cost over every axis, --no-check": ([cost, "--no-check", "--out", other], other, [
            "fnbackprop: error: cost 'broken_plugins:SumsEverything' on the output layer (10 "
            "neurons): C(a, y) returned shape () for a and y of shape (10, 3), expected (3,) (C "
            "sums over axis 0 only, one cost per example)",
            "`fnbackprop check --cost broken_plugins:SumsEverything`",
        ]),
    }  # fmt: skip
    before = {name: _folder(out) for name, (_, out, _) in cases.items()}
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = {
            name: pool.submit(cli_process, *common, *args, env=env)
            for name, (args, _, _) in cases.items()
        }
    for name, (_, out, fragments) in cases.items():
        one_line_error(done[name].result(), *fragments)
        assert _folder(out) == before[name], name  # nothing written, nothing lost
    assert before["wrong shape"] is None and _folder(other) == {"notes.txt": b"mine"}
    anyway = cli_process(*common, sigma("BadPrime"), "--no-check", "--out", kept, env=env)
    assert anyway.returncode == 0, anyway.stderr
    assert "Epoch 0: " in anyway.stdout and (kept / "notes.txt").read_text() == "mine"
    assert runs.holds_run(kept)
