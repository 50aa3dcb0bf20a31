"""fnbackprop: backpropagation as pure functions in JAX, next to Nielsen's chapters 1–2.

The public surface:

- `Network(sizes, activation, cost)`, `net.init(key)`: a network and its parameters;
- `layer`, `weighted_input`, `feedforward`, `forward_pass`, `cost`: the forward computation;
- `backprop`, `backprop_vmap`, `backprop_batch`: the hand-written backward pass (BP1–BP4);
- `autodiff_grad`, `finite_difference_grad`, `alternate_presentation_grad`, `path_sum_grad`:
  independent references;
- the modules `activations` and `costs`, each with `names()` and `get(name)`.
"""

from . import activations as activations
from . import costs as costs
from .activations import Activation as Activation
from .activations import neuronwise as neuronwise
from .backprop import backprop as backprop
from .backprop import backprop_batch as backprop_batch
from .backprop import backprop_vmap as backprop_vmap
from .backprop import backpropagate_errors as backpropagate_errors
from .costs import Cost as Cost
from .errors import CheckpointError as CheckpointError
from .errors import ConfigError as ConfigError
from .errors import DataError as DataError
from .errors import FnbackpropError as FnbackpropError
from .errors import ShapeError as ShapeError
from .network import Network as Network
from .network import Params as Params
from .network import cost as cost
from .network import feedforward as feedforward
from .network import forward_pass as forward_pass
from .network import layer as layer
from .network import weighted_input as weighted_input
from .references import alternate_presentation_grad as alternate_presentation_grad
from .references import autodiff_grad as autodiff_grad
from .references import autodiff_grad_batch as autodiff_grad_batch
from .references import finite_difference_grad as finite_difference_grad
from .references import path_sum_grad as path_sum_grad

__version__ = "0.1.0"
