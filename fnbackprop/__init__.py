"""fnbackprop: backpropagation as pure functions in JAX, next to Nielsen's chapters 1–2.

The public surface (one example is a vector (n,); several are the rows of a matrix (m, n)):

- `Network(sizes, activation, cost)`, `net.init(key)`: a network and its parameters;
- `layer`, `weighted_input`, `feedforward`, `forward_pass`, `cost`: the forward computation;
- `backprop`, `backprop_vmap`, `backprop_batch`: the hand-written backward pass (BP1–BP4);
- `cost_with_backprop(net)`: a cost whose `jax.grad` runs the hand-written pass;
- `autodiff_grad`, `finite_difference_grad`, `alternate_presentation_grad`, `path_sum_grad`:
  independent references;
- `Activation`, `Cost` and the modules `activations` and `costs` (`register`, `names`, `get`):
  the built-ins and the door for your own; `check_activation`, `check_cost`, `check_network`;
- `dropout_masks(key, net, p)`: chapter 3's dropout, an optional `masks` argument of the forward
  pass, the cost and every gradient;
- the modules `training` (SGD epochs, `fit`, `evaluate`, schedules), `data`, `config`, `runs`,
  `sweeps`, `sharding`.

Attributes are imported on first use, so `import fnbackprop` (and `fnbackprop --help`) does not
load JAX until something needs it.
"""

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: public name -> the module that defines it
_EXPORTS = {
    "Activation": "activations",
    "neuronwise": "activations",
    "Cost": "costs",
    "Network": "network",
    "Params": "network",
    "cost": "network",
    "dropout_masks": "network",
    "feedforward": "network",
    "forward_pass": "network",
    "layer": "network",
    "weighted_input": "network",
    "backprop": "backward",
    "backprop_batch": "backward",
    "backprop_vmap": "backward",
    "backpropagate_errors": "backward",
    "cost_with_backprop": "backward",
    "alternate_presentation_grad": "references",
    "autodiff_grad": "references",
    "count_paths": "references",
    "finite_difference_grad": "references",
    "path_sum_grad": "references",
    "check_activation": "check",
    "check_cost": "check",
    "check_network": "check",
    "CheckpointError": "errors",
    "ConfigError": "errors",
    "DataError": "errors",
    "FnbackpropError": "errors",
    "ShapeError": "errors",
}
_SUBMODULES = (
    "activations",
    "backward",
    "check",
    "checkpoint",
    "cli",
    "config",
    "costs",
    "data",
    "errors",
    "network",
    "optimizers",
    "references",
    "registry",
    "runs",
    "schedules",
    "sharding",
    "sweeps",
    "training",
    "validation",
)

__all__ = [
    "Activation",
    "CheckpointError",
    "ConfigError",
    "Cost",
    "DataError",
    "FnbackpropError",
    "Network",
    "Params",
    "ShapeError",
    "activations",
    "alternate_presentation_grad",
    "autodiff_grad",
    "backprop",
    "backprop_batch",
    "backprop_vmap",
    "backpropagate_errors",
    "backward",
    "check",
    "check_activation",
    "check_cost",
    "check_network",
    "checkpoint",
    "cli",
    "config",
    "cost",
    "cost_with_backprop",
    "costs",
    "count_paths",
    "data",
    "dropout_masks",
    "errors",
    "feedforward",
    "finite_difference_grad",
    "forward_pass",
    "layer",
    "network",
    "neuronwise",
    "optimizers",
    "path_sum_grad",
    "references",
    "registry",
    "runs",
    "schedules",
    "sharding",
    "sweeps",
    "training",
    "validation",
    "weighted_input",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fnbackprop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from . import (
        activations,
        checkpoint,
        config,
        costs,
        data,
        registry,
        runs,
        sharding,
        sweeps,
        training,
    )
    from .activations import Activation, neuronwise
    from .backward import (
        backprop,
        backprop_batch,
        backprop_vmap,
        backpropagate_errors,
        cost_with_backprop,
    )
    from .check import check_activation, check_cost, check_network
    from .costs import Cost
    from .errors import CheckpointError, ConfigError, DataError, FnbackpropError, ShapeError
    from .network import (
        Network,
        Params,
        cost,
        dropout_masks,
        feedforward,
        forward_pass,
        layer,
        weighted_input,
    )
    from .references import (
        alternate_presentation_grad,
        autodiff_grad,
        count_paths,
        finite_difference_grad,
        path_sum_grad,
    )
