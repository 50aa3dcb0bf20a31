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
    "Layer": "layers",
    "Dense": "layers",
    "layer_errors": "speeds",
    "learning_speeds": "speeds",
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
    "conv",
    "costs",
    "data",
    "errors",
    "layers",
    "network",
    "optimizers",
    "references",
    "registry",
    "runs",
    "schedules",
    "sharding",
    "speeds",
    "sweeps",
    "training",
    "validation",
)

#: every public name, read from the two tables above (the TYPE_CHECKING block below imports the
#: same names for type checkers; tests/test_package.py holds it to them)
__all__ = sorted([*_EXPORTS, *_SUBMODULES])


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
    # (`name as name` marks a re-export, as a py.typed package must: __all__ is built at run time);
    # isort: off
    from . import (
        activations as activations,
        backward as backward,
        check as check,
        checkpoint as checkpoint,
        cli as cli,
        config as config,
        conv as conv,
        costs as costs,
        data as data,
        errors as errors,
        layers as layers,
        network as network,
        optimizers as optimizers,
        references as references,
        registry as registry,
        runs as runs,
        schedules as schedules,
        sharding as sharding,
        speeds as speeds,
        sweeps as sweeps,
        training as training,
        validation as validation,
    )
    from .activations import (
        Activation as Activation,
        neuronwise as neuronwise,
    )
    from .backward import (
        backprop as backprop,
        backprop_batch as backprop_batch,
        backprop_vmap as backprop_vmap,
        backpropagate_errors as backpropagate_errors,
        cost_with_backprop as cost_with_backprop,
    )
    from .check import (
        check_activation as check_activation,
        check_cost as check_cost,
        check_network as check_network,
    )
    from .costs import (
        Cost as Cost,
    )
    from .layers import (
        Dense as Dense,
        Layer as Layer,
    )
    from .speeds import (
        layer_errors as layer_errors,
        learning_speeds as learning_speeds,
    )
    from .errors import (
        CheckpointError as CheckpointError,
        ConfigError as ConfigError,
        DataError as DataError,
        FnbackpropError as FnbackpropError,
        ShapeError as ShapeError,
    )
    from .network import (
        Network as Network,
        Params as Params,
        cost as cost,
        dropout_masks as dropout_masks,
        feedforward as feedforward,
        forward_pass as forward_pass,
        layer as layer,
        weighted_input as weighted_input,
    )
    from .references import (
        alternate_presentation_grad as alternate_presentation_grad,
        autodiff_grad as autodiff_grad,
        count_paths as count_paths,
        finite_difference_grad as finite_difference_grad,
        path_sum_grad as path_sum_grad,
    )
    # isort: on
