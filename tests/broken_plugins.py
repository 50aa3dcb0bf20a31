"""A user's plug-ins with the mistakes issue 17 met, for the tests of what `fnbackprop train` says.

Each breaks the contract of README's "Your own σ and cost" in one way; `fnbackprop check`
finds each. Used by import path (`broken_plugins:WrongShape`) with `tests/` on PYTHONPATH.
"""

from typing import ClassVar

import jax
import jax.numpy as jnp

import fnbackprop as fb


class WrongShape(fb.Activation):
    """Sums over the neurons: σ(z) has one entry per example, not one per neuron."""

    name: ClassVar[str] = "wrong_shape"

    def __call__(self, z):
        return jnp.sum(jax.nn.sigmoid(z), axis=0, keepdims=True)

    def prime(self, z):
        return jnp.ones_like(z)


class BadPrime(fb.Activation):
    """Swish with the second term of σ′ scaled by 0.8: trains, to a plausible accuracy."""

    name: ClassVar[str] = "bad_prime"

    def __call__(self, z):
        return z * jax.nn.sigmoid(z)

    def prime(self, z):
        s = jax.nn.sigmoid(z)
        return s + 0.8 * z * s * (1 - s)


class SumsEverything(fb.Cost):
    """The quadratic cost summed over every axis: one number for a matrix of examples."""

    name: ClassVar[str] = "sums_everything"

    def __call__(self, a, y):
        return 0.5 * jnp.sum((a - y) ** 2)

    def gradient(self, a, y):
        return a - y
