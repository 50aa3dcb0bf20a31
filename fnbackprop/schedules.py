"""Learning-rate schedules and stopping rules, stepped once per epoch (chapter 3).

A schedule is called before each epoch with the metrics so far and returns (η for the next
epoch, a reason to stop or None); `fit` writes that η into the optimizer state, so changing it
compiles nothing. `SCHEDULES` holds them by name: "constant", "halve_on_plateau" (the chapter's
exercise: halve η after `patience` epochs without a better validation accuracy, stop at η/128),
and optax's schedules counted in epochs ("cosine_decay", "exponential_decay", "linear",
"warmup_cosine_decay"; any optax schedule factory by import path, e.g.
"optax:sgdr_schedule"). `stop_reason` adds early stopping (network2's no-improvement-in-n).
A new schedule goes into `SCHEDULES` (or is named by import path).
"""

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import optax

from .errors import FnbackpropError
from .registry import Registry, functions, is_import_path, parameter_names

__all__ = [
    "LENGTH_FREE_SCHEDULES",
    "SCHEDULES",
    "EpochSchedule",
    "HalveOnPlateau",
    "best_epoch",
    "is_length_free",
    "make_schedule",
    "stop_reason",
]


class EpochSchedule(NamedTuple):
    """η(e) for epoch e from a function of the epoch number (an optax schedule counted in
    epochs); it never stops a run."""

    fn: Callable[[int], Any]

    def __call__(self, history: Sequence[dict]) -> tuple[float, str | None]:
        return float(self.fn(len(history))), None


class HalveOnPlateau(NamedTuple):
    """Chapter 3's exercise: halve η each time `patience` epochs pass without a better
    validation accuracy (since the best epoch or the last halving), and stop once η has dropped
    to η/2^halvings (η/128 for the default 7).

    A pure function of the metrics so far, so a resumed run replays it exactly.
    """

    eta: float
    patience: int = 10
    halvings: int = 7

    def __call__(self, history: Sequence[dict]) -> tuple[float, str | None]:
        best, since, halved = -math.inf, 0, 0
        for m in history:
            if m["validation_accuracy"] > best:
                best, since = m["validation_accuracy"], 0
            else:
                since += 1
            if since >= self.patience:
                halved, since = halved + 1, 0
        eta = self.eta / 2**halved
        if halved >= self.halvings:
            return eta, (
                f"halve_on_plateau: η fell to η/{2**self.halvings} = {eta:g} after "
                f"{self.halvings} plateaus of {self.patience} epochs"
            )
        return eta, None


def constant(eta: float, epochs: int) -> EpochSchedule:
    """η in every epoch."""
    return EpochSchedule(lambda e: eta)


def halve_on_plateau(
    eta: float, epochs: int, patience: int = 10, halvings: int = 7
) -> HalveOnPlateau:
    """See `HalveOnPlateau`; `patience` and `halvings` are whole numbers of at least 1."""
    for key, value in (("patience", patience), ("halvings", halvings)):
        whole = isinstance(value, int | float) and float(value).is_integer()
        if isinstance(value, bool) or not whole or value < 1:
            raise FnbackpropError(
                f"halve_on_plateau: {key} must be a whole number, at least 1, got {value!r}"
            )
    return HalveOnPlateau(eta, int(patience), int(halvings))


def cosine_decay(eta: float, epochs: int, alpha: float = 0.0) -> EpochSchedule:
    """optax.cosine_decay_schedule(η, epochs, alpha): η → αη along half a cosine."""
    return EpochSchedule(optax.cosine_decay_schedule(eta, epochs, alpha))


def exponential_decay(
    eta: float, epochs: int, decay_rate: float = 0.9, transition_epochs: int = 1
) -> EpochSchedule:
    """optax.exponential_decay: η · rate^(e / transition_epochs)."""
    return EpochSchedule(optax.exponential_decay(eta, transition_epochs, decay_rate))


def linear(eta: float, epochs: int, end_value: float = 0.0) -> EpochSchedule:
    """optax.linear_schedule: η → end_value over the run's epochs."""
    return EpochSchedule(optax.linear_schedule(eta, end_value, epochs))


def warmup_cosine_decay(
    eta: float, epochs: int, warmup_epochs: int = 1, end_value: float = 0.0
) -> EpochSchedule:
    """optax.warmup_cosine_decay_schedule: 0 → η over the warm-up, then a cosine to end_value."""
    return EpochSchedule(
        optax.warmup_cosine_decay_schedule(0.0, eta, warmup_epochs, epochs, end_value)
    )


#: Learning-rate schedules by name: builders (η, epochs, **args) -> a schedule, called with the
#: metrics so far and returning (η for the next epoch, a reason to stop or None). Schedules are
#: stepped once per epoch. An optax schedule factory by import path ("optax:sgdr_schedule") is
#: called with init_value = η (and decay_steps / transition_steps = epochs unless given).
SCHEDULES: Registry[Callable] = Registry(
    "schedule",
    functions(
        "a schedule is a function (eta, epochs, **args) -> schedule, or an optax schedule "
        "factory such as optax:cosine_decay_schedule"
    ),
    {
        "constant": constant,
        "halve_on_plateau": halve_on_plateau,
        "cosine_decay": cosine_decay,
        "exponential_decay": exponential_decay,
        "linear": linear,
        "warmup_cosine_decay": warmup_cosine_decay,
    },
    name_of=lambda f: f.__name__,
)

#: Schedules whose η in an epoch does not depend on the run's length: a finished run of these
#: may be extended with more epochs and equal a run that was that long from the start.
LENGTH_FREE_SCHEDULES = ("constant", "halve_on_plateau", "exponential_decay")


def make_schedule(spec: "str | Callable", eta: float, epochs: int, **args) -> Callable:
    """The schedule `spec` names, for a run of `epochs` epochs starting at η; `args` are its
    options (e.g. patience = 5 for halve_on_plateau, alpha = 0.1 for cosine_decay)."""
    build = SCHEDULES.get(spec)
    try:
        if "init_value" in parameter_names(build):  # an optax schedule factory, counted in epochs
            defaults = {k: epochs for k in ("decay_steps", "transition_steps")}
            wanted = {k: v for k, v in defaults.items() if k in parameter_names(build)}
            return EpochSchedule(build(init_value=eta, **(wanted | args)))
        schedule = build(eta, epochs, **args)
    except TypeError as err:
        raise FnbackpropError(f"schedule {spec!r}: {err}") from None
    if not callable(schedule):
        raise FnbackpropError(f"schedule {spec!r} built {type(schedule).__name__}, not a callable")
    return schedule


def best_epoch(history: Sequence[dict]) -> int | None:
    """The first epoch with the highest validation accuracy so far (None without validation)."""
    scores = [m.get("validation_accuracy") for m in history]
    if not scores or any(s is None for s in scores):
        return None
    return int(history[int(np.argmax(scores))]["epoch"])


def stop_reason(
    history: Sequence[dict], early_stopping: int = 0, schedule: Callable | None = None
) -> str | None:
    """Why training stops after the epochs in `history`, or None to go on.

    Early stopping (n > 0): n epochs have passed without a better validation accuracy than the
    best one (network2's "no-improvement-in-n" rule). A schedule may stop a run too
    (`HalveOnPlateau` at η/128).
    """
    if early_stopping and history:
        best = best_epoch(history)
        since = int(history[-1]["epoch"]) - best
        if since >= early_stopping:
            accuracy = 100 * history[best]["validation_accuracy"]
            return (
                f"early stopping: no better validation accuracy in {since} epochs since epoch "
                f"{best} ({accuracy:.2f} %)"
            )
    if schedule is not None:
        return schedule(history)[1]
    return None


def is_length_free(spec) -> bool:
    """Whether a schedule's η in an epoch is independent of the run's length (see
    `LENGTH_FREE_SCHEDULES`); import paths are assumed not to be."""
    return isinstance(spec, str) and not is_import_path(spec) and spec in LENGTH_FREE_SCHEDULES
