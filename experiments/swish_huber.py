"""Your own σ and cost: a swish activation and a Huber cost, written outside fnbackprop.

Everything a user's σ or cost needs is here: a subclass of `fnbackprop.Activation` (or `Cost`)
with a `name`, σ (or C) acting along axis 0, the neuron axis, and its derivative by hand. Use it
three ways, none of which touches fnbackprop's own code:

    # 1. Python
    import fnbackprop as fb
    from experiments.swish_huber import Swish, Huber
    net = fb.Network([784, 30, 10], activation=Swish(), cost=Huber())

    # 2. a TOML config or --set, by import path (a class is built with no arguments)
    fnbackprop train experiments/configs/chapter1.toml \
        --set network.activation=experiments.swish_huber:Swish \
        --set network.cost=experiments.swish_huber:Huber --out runs/swish

    # 3. the check: σ′ and ∇C against jax.grad, the contract, networks beside every partner
    fnbackprop check --activation experiments.swish_huber:Swish --cost experiments.swish_huber:Huber

`python -m experiments.swish_huber` runs the check of (3) and exits 1 if anything disagrees.
"""

import sys
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

import fnbackprop as fb

# settings
BETA = 1.0  # swish's slope: σ(z) = z · sigmoid(βz)
DELTA = 1.0  # Huber's threshold between the quadratic and the linear part


class Swish(fb.Activation):
    """σ(z) = z · s(βz), s the logistic function; σ′(z) = s(βz) + βz · s(βz)(1 − s(βz))."""

    beta: float = eqx.field(static=True, default=BETA)  # a plain number, not a learnable array
    name: ClassVar[str] = "swish"

    def __call__(self, z):
        return z * jax.nn.sigmoid(self.beta * z)

    def prime(self, z):
        s = jax.nn.sigmoid(self.beta * z)
        return s + self.beta * z * s * (1 - s)


class Huber(fb.Cost):
    """C_x = Σ_j h(a_j − y_j), h(r) = r²/2 for |r| ≤ δ, else δ(|r| − δ/2); ∇_a C = clip(a − y).

    Sums over axis 0 only, so a matrix with one example per column gives one cost per example.
    """

    delta: float = eqx.field(static=True, default=DELTA)
    name: ClassVar[str] = "huber"

    def __call__(self, a, y):
        r = jnp.abs(a - y)
        h = jnp.where(r <= self.delta, 0.5 * r**2, self.delta * (r - 0.5 * self.delta))
        return jnp.sum(h, axis=0)

    def gradient(self, a, y):
        return jnp.clip(a - y, -self.delta, self.delta)


def main() -> int:
    from fnbackprop.check import format_table, run_check

    rows = list(run_check(activation=Swish(), cost=Huber()))
    print(format_table(rows))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
