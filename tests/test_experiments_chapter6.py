"""experiments/chapter6_ladder.py: network3's figure, resumable rungs, the quick run."""

import pytest

from experiments import chapter6_ladder
from fnbackprop import runs

pytestmark = pytest.mark.usefixtures("results_untouched")


def test_network3_figure_is_the_test_accuracy_at_the_last_best_validation_epoch():
    metrics = [
        {"epoch": e, "validation_accuracy": v, "test_accuracy": t}
        for e, (v, t) in enumerate([(0.90, 0.91), (0.95, 0.94), (0.93, 0.96), (0.95, 0.97)])
    ]
    figure = chapter6_ladder.network3_figure(metrics)
    assert figure == {"best_epoch": 3, "validation": 0.95, "test": 0.97, "final_test": 0.97}
    figure = chapter6_ladder.network3_figure(metrics[:3])
    assert (figure["best_epoch"], figure["test"], figure["final_test"]) == (1, 0.94, 0.96)


def test_an_unknown_rung_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        chapter6_ladder.main(["--rungs", "1,9", "--quick"])
    assert exit_info.value.code == 2
    assert "unknown rung '9'; the rungs: " in capsys.readouterr().err


@pytest.mark.mnist
def test_the_quick_ladder_trains_and_resumes(mnist_dir, tmp_path):
    argv = ["--quick", "--out", str(tmp_path), "--data-dir", str(mnist_dir), "--rungs", "1"]
    first = chapter6_ladder.main(argv)["rungs"]["1"]["runs"][0]
    assert first["epochs_done"] == chapter6_ladder.QUICK["epochs"] and first["complete"]
    assert 0.5 < first["test"] <= 1 and first["best_epoch"] == 0
    again = chapter6_ladder.main(argv)["rungs"]["1"]["runs"][0]  # a finished run is kept
    assert again["resumed"] and again["test"] == first["test"]
    assert (tmp_path / "chapter6_ladder.json").is_file()
    reported = chapter6_ladder.main([*argv, "--report"])
    assert reported["report"] and reported["rungs"]["1"]["runs"][0]["test"] == first["test"]


def test_report_shows_a_run_not_started_without_a_figure(tmp_path):
    assert runs.saved_metrics(tmp_path) == []
    (tmp_path / "6" / "seed0").mkdir(parents=True)
    (tmp_path / "6" / "seed0" / "metrics.jsonl").write_text("")  # a run before its first epoch
    entry = chapter6_ladder.train_rung("6", (0,), tmp_path, False, None, report=True)
    assert entry["runs"][0]["epochs_done"] == 0 and entry["runs"][0]["test"] is None
    assert entry["summary"] is None and not entry["runs"][0]["complete"]


def test_a_report_is_not_taken_for_the_time_the_ladder_takes():
    """The committed result was read from run folders (--report): `all` plans with ESTIMATE."""
    from experiments import __main__ as runner

    assert runner.recorded_seconds("chapter6_ladder") is None
    assert (
        dict((n, s) for n, s, _ in runner.plan(["chapter6_ladder"]))["chapter6_ladder"]
        == (runner.ESTIMATE["chapter6_ladder"])
    )
