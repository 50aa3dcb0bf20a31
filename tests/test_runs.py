"""A run that behaves: its folder is never lost by accident, a finished run is extended exactly,
early stopping keeps the best checkpoint, and the output reads well without a terminal."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import REPO

from fnbackprop import config, runs
from fnbackprop.check import relative_error
from fnbackprop.errors import ConfigError, FnbackpropError

SMALL = {
    "network": {"sizes": [784, 8, 10], "cost": "cross_entropy", "init": "scaled"},
    "training": {"epochs": 2, "mini_batch_size": 50, "eta": 0.5},
    "data": {"train_size": 500},
}


def small(**training) -> config.Config:
    return config.parse(SMALL | {"training": SMALL["training"] | training})


@pytest.fixture(scope="module")
def data(mnist_dir):
    train, evaluation, _ = runs.prepare_data(small(), mnist_dir, progress=False)
    return train, evaluation


def train(c, out, data, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("echo", None)
    return runs.run_training(c, out, data=data, **kw)


def _without_seconds(metrics):
    return [{k: v for k, v in m.items() if k != "seconds"} for m in metrics]


def test_a_second_run_into_a_finished_folder_is_refused_and_overwrite_replaces_it(tmp_path, data):
    out = tmp_path / "run"
    first = train(small(), out, data)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"config.toml", "metrics.jsonl", "checkpoint.eqx", "best.eqx",
                           "learning_curve.png"}  # fmt: skip
    with pytest.raises(FnbackpropError, match=r"holds a run \(2 of 2 epochs done\): give "
                       r"--overwrite to replace it, --resume .* to continue it"):  # fmt: skip
        train(small(eta=0.1), out, data)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    second = train(small(eta=0.1, epochs=1), out, data, overwrite=True)
    assert config.load(out / runs.CONFIG).training.eta == 0.1
    assert len(second.metrics) == 1 and second.metrics != first.metrics
    assert runs.checkpoint.read_header(out / runs.CHECKPOINT)["epoch"] == 1
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no lock left


def test_a_finished_run_says_so_and_more_epochs_equal_a_longer_run(tmp_path, data):
    short, long = tmp_path / "short", tmp_path / "long"
    train(small(dropout=0.3, schedule="halve_on_plateau"), short, data)
    whole = train(small(epochs=3, dropout=0.3, schedule="halve_on_plateau"), long, data)
    said = []
    again = train(runs.resumed_config(short), short, data, resume=True, echo=said.append)
    assert said == [
        f"{short}: finished: all 2 epochs are done (best test accuracy "
        f"{100 * max(m['test_accuracy'] for m in again.metrics):.2f} %); to train further, "
        "resume with --set training.epochs=N, N > 2"
    ]
    extended = runs.resumed_config(short, ["training.epochs=3"])
    result = train(extended, short, data, resume=True)
    assert _without_seconds(result.metrics) == _without_seconds(whole.metrics)
    assert relative_error(result.params, whole.params) == 0.0
    assert config.load(short / runs.CONFIG).training.epochs == 3


def test_resume_refuses_any_other_change_with_the_reason(tmp_path, data):
    out = tmp_path / "run"
    train(small(epochs=2), out, data)
    with pytest.raises(FnbackpropError, match=r"--set training.eta=1: --resume continues the "
                       r"run in .* only training.epochs may change .* training.eta would make "
                       r"the resumed run differ"):  # fmt: skip
        runs.resumed_config(out, ["training.eta=1"])
    with pytest.raises(FnbackpropError, match="has 2 epochs done already; give more than 2"):
        runs.resumed_config(out, ["training.epochs=1"])
    with pytest.raises(FnbackpropError, match=r"another config \(training.eta differ\)"):
        train(small(epochs=3, eta=0.1), out, data, resume=True)
    cosine = tmp_path / "cosine"
    train(small(epochs=1, schedule="cosine_decay"), cosine, data)
    with pytest.raises(FnbackpropError, match="whose η depends on the number of epochs"):
        runs.resumed_config(cosine, ["training.epochs=4"])


def test_a_sweep_run_not_started_yet_takes_any_length_and_nothing_else(tmp_path):
    """`--resume SWEEP --set training.epochs=N` for a run of the sweep that has no folder yet:
    the sweep's config for it, with the new length (no epoch done, so even a schedule that
    depends on the length may change it); any other change is refused as for a saved run."""
    missing, cosine = tmp_path / "seed=2", small(schedule="cosine_decay")
    assert runs.resumed_config(missing, ["training.epochs=5"], saved=cosine) == small(
        schedule="cosine_decay", epochs=5
    )
    with pytest.raises(FnbackpropError, match=r"--set training.eta=1: --resume continues the "
                       r"run in .*seed=2 as it was configured; only training.epochs"):  # fmt: skip
        runs.resumed_config(missing, ["training.eta=1"], saved=cosine)
    with pytest.raises(FnbackpropError, match=r"training.epochs must be an integer, got 'x'"):
        runs.resumed_config(missing, ["training.epochs=x"], saved=cosine)
    with pytest.raises(FnbackpropError, match=r"nothing to resume in .*seed=2: no config.toml"):
        runs.resumed_config(missing, ["training.epochs=5"])


def test_a_resumed_run_keeps_its_label_and_exponential_decay_extends(tmp_path, data, monkeypatch):
    titles = []
    plot = runs.plot_learning_curve

    def seen(metrics, path, title=""):
        titles.append(title)
        return plot(metrics, path, title)

    monkeypatch.setattr(runs, "plot_learning_curve", seen)
    out, whole = tmp_path / "run", tmp_path / "whole"
    train(small(epochs=1, schedule="exponential_decay"), out, data, label="--set training.eta=0.5")
    more = runs.resumed_config(out, ["training.epochs=2"])  # η per epoch: not the run's length
    extended = train(more, out, data, resume=True, label="--set training.epochs=2")
    label = "--set training.eta=0.5 --set training.epochs=2"
    assert titles[-1].endswith("\n" + label)
    assert (out / runs.CONFIG).read_text().startswith(f"# label: {label}\n")
    assert config.load(out / runs.CONFIG) == more
    longer = train(small(epochs=2, schedule="exponential_decay"), whole, data)
    assert _without_seconds(extended.metrics) == _without_seconds(longer.metrics)


def test_a_train_size_above_the_training_set_is_refused(mnist_dir):
    too_many = config.parse(SMALL | {"data": {"train_size": 60_001}})
    with pytest.raises(ConfigError, match=r"^data.train_size = 60,001 is more than the 50,000 "
                       r"training images of mnist"):  # fmt: skip
        runs.prepare_data(too_many, mnist_dir, progress=False)


def test_expanded_data_is_each_image_then_its_shifts_and_counts_in_lambda_over_n(mnist_dir):
    plain = small(lmbda=5.0)
    grown = config.parse(SMALL | {"training": SMALL["training"] | {"lmbda": 5.0},
                                  "data": {"train_size": 500, "expand": True}})  # fmt: skip
    (X, Y), _, _ = runs.prepare_data(plain, mnist_dir, progress=False)
    (X5, Y5), _, _ = runs.prepare_data(grown, mnist_dir, progress=False)
    assert X5.shape == (2_500, 784) and np.array_equal(X5[::5], X) and np.array_equal(Y5[::5], Y)
    shifted_down = np.asarray(X5[2]).reshape(28, 28)  # up, down, left, right follow the image
    assert np.array_equal(shifted_down[1:], np.asarray(X[0]).reshape(28, 28)[:-1])
    assert not shifted_down[0].any()
    run = runs.prepare_run(grown, data=((X5, Y5), {}))
    params = run.state.params
    zero = jax.tree.map(jnp.zeros_like, params)
    step, _ = run.options.optimizer.update(zero, run.state.opt_state, params)
    w = params[0][0]  # no gradient: the step is the weight decay, −ηλ/n·w with n = 5 · 500
    np.testing.assert_allclose(step[0][0], -0.5 * 5.0 / 2_500 * w, rtol=1e-5)
    assert "n=2,500 (expanded)" in runs._title(grown)


def test_early_stopping_keeps_the_best_checkpoint_beside_the_last(tmp_path, data):
    """η = 0: the validation accuracy never improves on epoch 0, so the run stops after epoch 2;
    best.eqx keeps the state after epoch 0, checkpoint.eqx the last."""
    out = tmp_path / "run"
    result = train(small(epochs=10, eta=0.0, early_stopping=2), out, data)
    assert [m["epoch"] for m in result.metrics] == [0, 1, 2]
    last = result.metrics[-1]
    assert last["best_epoch"] == 0 and last["stopped"].startswith("early stopping: no better")
    saved = [json.loads(line) for line in (out / runs.METRICS).read_text().splitlines()]
    assert saved == result.metrics
    assert runs.load_run(out / runs.BEST)[3]["epoch"] == 1  # the state after epoch 0
    assert runs.load_run(out)[3]["epoch"] == 3
    said = []
    train(small(epochs=10, eta=0.0, early_stopping=2), out, data, resume=True, echo=said.append)
    assert "finished: stopped early after epoch 2 (early stopping" in said[0]


def test_a_folder_in_use_is_refused_at_once_and_the_lock_goes_with_the_run(tmp_path):
    folder = tmp_path / "run"
    with runs.RunLock(folder):
        with pytest.raises(
            FnbackpropError,
            match=rf"{folder} is in use by another training run \(process {os.getpid()}, "
            r"started .*\): wait for it to finish, or choose another --out",
        ):
            runs.RunLock(folder).acquire()
        assert (folder / runs.LOCK).is_file()
    assert not (folder / runs.LOCK).exists()
    with runs.RunLock(folder):  # free again
        pass


def test_a_killed_run_leaves_no_stuck_lock(tmp_path, spawn):
    folder = tmp_path / "run"
    holder = spawn(
        "-c",
        "import sys, time\nfrom fnbackprop.runs import RunLock\n"
        f"RunLock({str(folder)!r}).acquire()\nprint('locked', flush=True)\ntime.sleep(300)",
        stderr=None, cwd=REPO,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FnbackpropError, match=f"process {holder.pid},"):
            runs.RunLock(folder).acquire()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.communicate()
    assert (folder / runs.LOCK).is_file()  # the file is left behind, unlocked
    with runs.RunLock(folder):
        pass


def test_without_a_terminal_each_epoch_is_one_plain_line(tmp_path, data, capsys):
    lines = []
    train(small(epochs=2), tmp_path / "run", data, progress=True, echo=lines.append)
    captured = capsys.readouterr()
    assert "\r" not in captured.err + captured.out  # stderr is not a terminal here: no bar
    assert [line.split(":")[0] for line in lines] == ["Epoch 0", "Epoch 1"]
    assert all(" / 10000  (validation " in line and "\n" not in line for line in lines)


@pytest.mark.parametrize(
    "monitored, shown",
    [
        ({}, []),
        ({"training_correct": 812, "training_total": 1000}, ["training 812 / 1000"]),
        ({"training_cost": 0.25}, ["training cost 0.2500"]),
        (
            {"training_correct": 812, "training_total": 1000, "training_cost": 0.25},
            ["training 812 / 1000", "training cost 0.2500"],
        ),
    ],
)
def test_the_book_line_shows_each_monitored_figure_on_its_own_switch(monitored, shown):
    # network2 monitors the training cost and accuracy on separate switches: either alone
    metrics = {
        "epoch": 3,
        "test_correct": 9100,
        "test_total": 10000,
        "validation_correct": 9200,
        "validation_total": 10000,
        "validation_cost": 0.1345,
        "seconds": 0.2,
        **monitored,
    }
    line = runs.book_line(metrics)
    assert line.startswith("Epoch 3: 9100 / 10000  (validation 9200 / 10000, cost 0.1345")
    assert [part for part in line.split(", ") if part.startswith("training")] == shown


@pytest.mark.parametrize("epochs", [1, 2, 5])
def test_the_learning_curve_has_whole_epoch_ticks(tmp_path, epochs):
    metrics = [
        {
            "epoch": e,
            **{f"{s}_accuracy": 0.5 + 0.1 * e for s in ("training", "validation", "test")},
            **{f"{s}_cost": 1.0 - 0.1 * e for s in ("training", "validation", "test")},
            "best_epoch": e,
        }
        for e in range(epochs)
    ]
    title = runs._title(small(), "--set training.eta=0.5")
    fig = runs.plot_learning_curve(metrics, tmp_path / "c.png", title=title)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    top, bottom = fig.axes
    ticks = [t for t in bottom.get_xticks() if bottom.get_xlim()[0] <= t <= bottom.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    if epochs <= 2:
        assert bottom.get_xlim() == (-0.5, epochs - 0.5) and list(ticks) == list(range(epochs))
    assert [line.get_label() for line in top.get_lines()][:3] == ["training", "validation", "test"]
    heading = top.get_title()
    assert "n=500" in heading and "--set training.eta=0.5" in heading


def test_runs_without_out_get_a_new_folder_each(tmp_path):
    a = runs.default_out("experiments/configs/chapter1.toml", tmp_path)
    b = runs.default_out("experiments/configs/chapter1.toml", tmp_path)
    assert a != b and a.is_dir() and b.is_dir() and a.name.startswith("chapter1-")
    assert np.all([p.parent == tmp_path for p in (a, b)])


def test_a_killed_overwrite_never_mixes_two_runs(tmp_path, data, monkeypatch):
    """Overwriting deletes the old run's files, checkpoints first, and writes the new config
    last: a crash in between leaves no checkpoint beside a config it does not belong to."""
    out = tmp_path / "run"
    train(small(epochs=1), out, data)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "write_text_atomic", crash)
    with pytest.raises(KeyboardInterrupt):
        train(small(epochs=1, eta=0.1), out, data, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == []  # everything of the old run is gone


# -- a folder without a finished epoch (issue 17) ------------------------------------------------


def _contents(folder):
    """Every file under `folder` with its bytes (None if the folder does not exist)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_folder_without_a_finished_epoch_is_not_a_run_and_the_advice_leads_out(tmp_path, data):
    """What a run killed before its first epoch leaves (its config.toml and an empty
    metrics.jsonl) is no run: a new run goes in without --overwrite; `--resume` says so and
    names the command that starts it again, which works."""
    out = tmp_path / "run"
    out.mkdir()
    (out / runs.CONFIG).write_text(config.dumps(small(epochs=1)))
    (out / runs.METRICS).write_text("")
    assert not runs.holds_run(out)
    with pytest.raises(FnbackpropError) as info:
        train(small(epochs=1), out, data, resume=True)
    advice = (
        f"nothing to resume in {out}: its run saved no epoch (no checkpoint.eqx); start it "
        f"again with `fnbackprop train {out / runs.CONFIG} --out {out}`"
    )
    assert str(info.value) == advice
    assert sorted(p.name for p in out.iterdir()) == [runs.CONFIG, runs.METRICS]  # untouched
    again = train(config.load(out / runs.CONFIG), out, data)  # what the advice says
    assert len(again.metrics) == 1 and runs.holds_run(out)
    assert runs.checkpoint.read_header(out / runs.CHECKPOINT)["epoch"] == 1


def test_best_eqx_alone_is_kept_and_the_advice_does_not_offer_resume(tmp_path, data):
    out = tmp_path / "run"
    train(small(epochs=1), out, data)
    (out / runs.CHECKPOINT).unlink()  # as if killed between best.eqx and checkpoint.eqx
    before = _contents(out)
    with pytest.raises(FnbackpropError) as info:
        train(small(epochs=1), out, data)
    assert str(info.value) == (
        f"{out} holds a run's best.eqx but no checkpoint.eqx to resume from: give --overwrite "
        "to replace it, or choose another --out"
    )
    assert _contents(out) == before


@pytest.mark.parametrize("where", ["new folder", "folder with the user's file"])
@pytest.mark.parametrize("failure", ["train_size", "interrupted", "plug-in"])
def test_a_run_that_fails_before_its_first_epoch_leaves_the_folder_as_it_was(
    tmp_path, mnist_dir, monkeypatch, failure, where
):
    """Data that do not fit and a broken plug-in are found before anything is written; Ctrl-C
    in the first epoch removes what the run wrote: the folder is as it was, or not there."""
    out = tmp_path / "run"
    if where != "new folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = _contents(out)
    c, error = small(epochs=1), FnbackpropError
    if failure == "train_size":
        c = config.parse(SMALL | {"data": {"train_size": 50_001}})
    elif failure == "plug-in":
        monkeypatch.syspath_prepend(str(REPO / "tests"))
        c = config.parse(SMALL | {"network": SMALL["network"] | {"activation": [
            "broken_plugins:WrongShape", "sigmoid"]}})  # fmt: skip
    else:

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt
            yield

        monkeypatch.setattr(runs, "fit", interrupted)
        error = KeyboardInterrupt
    with pytest.raises(error):
        runs.run_training(c, out, data_dir=mnist_dir, progress=False, echo=None)
    assert _contents(out) == before


def test_a_resumed_run_s_label_shows_its_new_length(tmp_path, data):
    out = tmp_path / "run"
    label = "--set training.epochs=1 --set training.eta=0.5"
    train(small(epochs=1, eta=0.5), out, data, label=label)
    more = runs.resumed_config(out, ["training.epochs=2"])
    train(more, out, data, resume=True, label="--set training.epochs=2")
    first = (out / runs.CONFIG).read_text().splitlines()[0]
    assert first == "# label: --set training.eta=0.5 --set training.epochs=2"
    assert config.load(out / runs.CONFIG).training.epochs == 2
    # a sweep's run: its name once, the old length gone
    saved = "--set training.epochs=2 --set training.seed=[0,1] seed=0"
    assert runs._resumed_label(saved, "--set training.epochs=4 seed=0") == (
        "--set training.seed=[0,1] seed=0 --set training.epochs=4"
    )
    assert runs._resumed_label("seed=0", "seed=0") == "seed=0"
