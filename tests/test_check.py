"""`fnbackprop check`: the exactness claim itself, run as a user runs it."""

import json

from fnbackprop import activations, check, cli, costs


def test_fnbackprop_check_finds_every_form_exact(capsys):
    """Every activation × cost, a modified neuron and a linear net: all agree, exit code 0."""
    assert cli.main(["check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    rows = report["rows"]
    labels = " ".join(r["case"] for r in rows)
    assert all(name in labels for name in activations.names())
    assert all(name in labels for name in costs.names())
    assert "modified neuron" in labels and "all linear" in labels
    for row in rows:
        exact = [row[k] for k in ("backprop", "vmap", "batch", "eq35", "eq53")]
        assert max(exact) < check.AUTODIFF_TOLERANCE, row
        assert row["finite_difference"] < check.FD_TOLERANCE, row


def test_a_disagreement_fails_the_check(monkeypatch, capsys):
    bad = check.Row("planted", [2, 2], 1e-3, 0.0, 0.0, 0.0, 0.0, 0.0)
    monkeypatch.setattr(check, "run_check", lambda seed: iter([bad]))
    assert cli.main(["check"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "1 of 1 cases FAIL" in out
