"""The numerics fingerprint: a short vector of numbers that every committed result rests on.

A result in `experiments/results/` stays valid as long as the numbers under it are the numbers
it was made with. Rather than asking "is the code the same?" (any refactor says no), the results
test asks "does the code compute the same numbers?": `compute()` runs a small, deterministic
computation through every path the experiments take, and each result stores what it gave.

What it exercises, all in float64 so that it holds on any CPU of the same kind (their matmul
kernels round differently in float32; in float64 the differences stay near 1e-15):

- every built-in σ: σ(z), σ′(z) and the BP2 product `backward(z, g)`, on one example and on the
  columns of a matrix; a neuronwise mixture;
- every built-in cost: C_x, ∇_a C, the fused output errors and `from_weighted_input`;
- every init scheme, the dropout masks, the per-epoch shuffle;
- every gradient form (backprop, backprop_vmap, backprop_batch, the custom_vjp rule, jax.grad,
  finite differences, the Σ′ presentation, the sum over paths) on small networks;
- short seeded training runs through the config and run machinery (`run_training`), covering
  every optimizer, L2, L1, dropout, schedules, monitoring and each gradient method, and one
  vmapped sweep epoch;
- reading IDX files into the book's three splits, and one-hot labels.

Each quantity is kept as two numbers, a weighted sum Σ_i x_i cos(i) (which moves when an entry
or the order changes) and the root mean square. Two fingerprints agree when every number does
to `RTOL` relative (plus `ATOL`); a real change (σ′ off by one part in a million, a different
shuffle) moves some of them by far more. They are compared only where `kind()` agrees: the same
jax and jaxlib, the same backend and machine architecture.

    python -m experiments.fingerprint        # print this tree's fingerprint as JSON
"""

import functools
import gzip
import json
import platform
import struct
import sys
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

#: Bump when the computation below changes (what it exercises, not the package under it): the
#: results made with another version are then compared against nothing and must be made again.
VERSION = 1
RTOL = 1e-9
ATOL = 1e-12


def kind() -> dict:
    """What must match for two fingerprints to be comparable."""
    import importlib.metadata

    return {
        "version": VERSION,
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "backend": jax.default_backend(),
        "machine": platform.machine(),
    }


def compute() -> dict:
    """`{"kind": kind(), "values": {name: float}}` for the code imported now.

    In float64 and under JAX's standard dtype promotion (as the experiments run; optax's adam
    mixes its int32 step count with floats, which the test suite's strict promotion refuses).
    """
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        values: dict[str, float] = {}
        for part in (
            _activations,
            _costs,
            _inits_masks_and_shuffles,
            _gradients,
            _references,
            _data,
            _training,
            _sweep_epoch,
        ):
            values |= part()
    return {"kind": kind(), "values": values}


def differences(made: dict, now: dict) -> list[str]:
    """The names of `made` whose values differ now beyond tolerance, or are gone. A name only
    `now` has (a σ, a cost or an init scheme added since) is not a difference: nothing made
    before it rests on it."""
    a, b = made["values"], now["values"]
    changed = sorted(set(a) - set(b))
    for name in sorted(set(a) & set(b)):
        x, y = a[name], b[name]
        if x is None or y is None:
            if x is not y:
                changed.append(name)
        elif abs(x - y) > RTOL * max(abs(x), abs(y)) + ATOL:
            changed.append(name)
    return changed


def comparable(made: dict, now: dict) -> str | None:
    """None when the two fingerprints can be compared, else one line saying why not."""
    theirs, ours = made.get("kind", {}), now["kind"]
    different = [f"{k} {theirs.get(k)} vs {ours[k]}" for k in ours if theirs.get(k) != ours[k]]
    if not different:
        return None
    return "fingerprint not comparable here: " + ", ".join(different)


# -- summaries -----------------------------------------------------------------------------------


def _flat(tree) -> np.ndarray:
    leaves = [np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def _summary(name: str, tree) -> dict[str, float]:
    x = _flat(tree)
    weights = np.cos(np.arange(x.size, dtype=np.float64))
    return {
        f"{name}.sum": float(x @ weights),
        f"{name}.rms": float(np.sqrt(np.mean(x**2))) if x.size else 0.0,
    }


def _normal(seed: int, shape) -> jax.Array:
    """Inputs from numpy's PCG64, whose stream is fixed across versions and machines."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def _one_hot(seed: int, m: int, n: int) -> jax.Array:
    labels = np.random.default_rng(seed).integers(0, n, m)
    return jnp.asarray(np.eye(n)[labels])


# -- the parts -----------------------------------------------------------------------------------


def _activations() -> dict[str, float]:
    from fnbackprop import activations

    z = jnp.concatenate([jnp.linspace(-8.0, 8.0, 33), jnp.asarray([-50.0, -1e3, 50.0, 1e3])])
    Z = _normal(0, (7, 3)) * 3
    sigmas = {name: activations.get(name) for name in activations.ACTIVATIONS.builtin_names()}
    sigmas["neuronwise"] = activations.neuronwise("sigmoid", {1: "tanh", 4: "relu"})
    out = {}
    for name, sigma in sigmas.items():
        for part, value in _activation_parts(sigma, z, Z).items():
            out |= _summary(f"activation.{name}.{part}", value)
    return out


@functools.partial(jax.jit, static_argnums=0)
def _activation_parts(sigma, z, Z) -> dict:
    g = jnp.cos(jnp.arange(z.size, dtype=z.dtype))
    parts = {"sigma": sigma(z), "backward": sigma.backward(z, g), "columns": sigma(Z)}
    parts["columns_backward"] = sigma.backward(Z, jnp.sin(Z))
    if sigma.elementwise:
        parts["prime"] = sigma.prime(z)
    return parts


def _costs() -> dict[str, float]:
    from fnbackprop import activations, costs

    z = _normal(1, (6,)) * 2
    Z = _normal(2, (6, 4)) * 2
    y, Y = _one_hot(3, 1, 6)[0], _one_hot(4, 4, 6).T
    out = {}
    for name in costs.COSTS.builtin_names():
        cost = costs.get(name)
        outputs = [s for s in ("sigmoid", "softmax", "linear") if cost.accepts(activations.get(s))]
        for s in outputs:
            parts = _cost_parts(cost, activations.get(s), (z, Z), (y, Y))
            for part, value in parts.items():
                out |= _summary(f"cost.{name}.{s}.{part}", value)
    return out


@functools.partial(jax.jit, static_argnums=(0, 1))
def _cost_parts(cost, sigma, zs, ys) -> dict:
    parts = {}
    for label, z, y in zip(("one", "columns"), zs, ys, strict=True):
        a = sigma(z)
        parts[f"{label}.value"] = cost(a, y)
        parts[f"{label}.gradient"] = cost.gradient(a, y)
        parts[f"{label}.output_error"] = cost.output_error(sigma, z, a, y)
        parts[f"{label}.from_weighted_input"] = cost.from_weighted_input(sigma, z, y)
    return parts


def _inits_masks_and_shuffles() -> dict[str, float]:
    from fnbackprop import network, training

    net = network.Network([5, 4, 4, 3])
    out = {}
    for scheme in network.INITS.builtin_names():
        params = net.init(jax.random.key(7), scheme, jnp.float64)
        out |= _summary(f"init.{scheme}", params)
    masks = network.dropout_masks(jax.random.key(8), net, 0.3, 6, jnp.float64)
    out |= _summary("dropout_masks", masks)
    key = jax.random.key(9)
    for e in range(3):
        batches, rest = training.shuffle(jax.random.fold_in(key, e), 23, 5)
        out |= _summary(f"shuffle.epoch{e}", (batches, rest))
    return out


def _networks():
    """Small networks covering the σ/cost pairs and init schemes the experiments use."""
    from fnbackprop import Network

    return {
        "sigmoid_quadratic": (Network([5, 4, 3], "sigmoid", "quadratic"), "normal"),
        "deep_cross_entropy": (
            Network([5, 4, 4, 3], ["tanh", "relu", "sigmoid"], "cross_entropy"),
            "scaled",
        ),
        "softmax_log_likelihood": (
            Network([5, 6, 3], ["leaky_relu", "softmax"], "log_likelihood"),
            "scaled",
        ),
        "softplus_linear": (Network([5, 4, 3], ["softplus", "linear"], "quadratic"), "normal"),
    }


def _gradients() -> dict[str, float]:
    import fnbackprop as fb

    X, Y = _normal(10, (7, 5)), _one_hot(11, 7, 3)
    out = {}
    for name, (net, scheme) in _networks().items():
        params = net.init(jax.random.key(12), scheme, jnp.float64)
        masks = None
        if len(net.sizes) > 3:
            masks = fb.dropout_masks(jax.random.key(13), net, 0.25, 7, jnp.float64)
        forms = jax.jit(functools.partial(_forms, net))(params, X, Y, masks)
        for form, value in forms.items():
            out |= _summary(f"gradient.{name}.{form}", value)
    return out


def _forms(net, params, X, Y, masks) -> dict:
    """Every gradient form of `net` on (X, Y), and with dropout `masks` where given."""
    import fnbackprop as fb

    forms = {
        "feedforward": fb.feedforward(net, params, X),
        "cost": fb.cost(net, params, X, Y),
        "backprop": fb.backprop(net, params, X[0], Y[0]),
        "backprop_vmap": fb.backprop_vmap(net, params, X, Y),
        "backprop_batch": fb.backprop_batch(net, params, X, Y),
        "backprop_vjp": jax.grad(fb.cost_with_backprop(net))(params, X, Y),
        "autodiff": fb.autodiff_grad(net, params, X, Y),
    }
    if masks is not None:
        forms["backprop_vmap_dropout"] = fb.backprop_vmap(net, params, X, Y, masks)
        forms["backprop_batch_dropout"] = fb.backprop_batch(net, params, X, Y, masks)
    return forms


def _references() -> dict[str, float]:
    import fnbackprop as fb

    net = fb.Network([3, 3, 2], "sigmoid", "quadratic")
    params = net.init(jax.random.key(14), "normal", jnp.float64)
    x, y = _normal(15, (3,)), _one_hot(16, 1, 2)[0]
    return {
        **_summary("reference.finite_difference", fb.finite_difference_grad(net, params, x, y)),
        **_summary(
            "reference.central_difference",
            fb.finite_difference_grad(net, params, x, y, central=True),
        ),
        **_summary("reference.alternate", fb.alternate_presentation_grad(net, params, x, y)),
        **_summary("reference.path_sum", fb.path_sum_grad(net, params, x, y)),
    }


def _write_idx(path: Path, array: np.ndarray) -> None:
    code = {np.dtype(np.uint8): 0x08}[array.dtype]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(header + array.tobytes())


def _data() -> dict[str, float]:
    from fnbackprop import data

    rng = np.random.default_rng(17)
    n_train, n_test = data.VALIDATION_SIZE + 12, 9
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for prefix, n in (("train", n_train), ("t10k", n_test)):
            images = np.zeros((n, 28, 28), np.uint8)
            images[:, 10:13, 9:15] = rng.integers(0, 256, (n, 3, 6), dtype=np.uint8)
            _write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
            labels = rng.integers(0, 10, n).astype(np.uint8)
            _write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
        splits = data.load_mnist_idx(root)
    for name, split in splits._asdict().items():
        out |= _summary(f"data.{name}.images", split.images)
        out |= _summary(f"data.{name}.labels", split.labels)
    out |= _summary("data.one_hot", data.one_hot(splits.test.labels, 10))
    return out


#: Short runs through `run_training`: each a [network] and [training] table over the defaults.
RUNS = {
    "chapter1": ({"sizes": [6, 5, 3]}, {"epochs": 3, "mini_batch_size": 7}),
    "chapter3_controls": (
        {
            "sizes": [6, 5, 4, 3],
            "activation": ["tanh", "sigmoid", "softmax"],
            "cost": "log_likelihood",
            "init": "scaled",
        },
        {
            "epochs": 4,
            "mini_batch_size": 6,
            "eta": 0.5,
            "lmbda": 0.5,
            "l1": 0.1,
            "dropout": 0.2,
            "optimizer": "momentum",
            "gradient": "backprop_batch",
            "schedule": "halve_on_plateau",
            "schedule_args": {"patience": 1},
            "early_stopping": 3,
            "monitor_training_cost": True,
            "monitor_training_accuracy": True,
            "seed": 1,
        },
    ),
    "adam_autodiff": (
        {"sizes": [6, 4, 3], "activation": ["relu", "sigmoid"], "cost": "cross_entropy"},
        {
            "epochs": 2,
            "mini_batch_size": 8,
            "eta": 0.01,
            "optimizer": "adam",
            "gradient": "autodiff",
        },
    ),
    "vjp_cosine": (
        {"sizes": [6, 4, 3], "activation": ["softplus", "sigmoid"], "cost": "cross_entropy"},
        {"epochs": 3, "eta": 0.3, "gradient": "backprop_vjp", "schedule": "cosine_decay"},
    ),
}


def _synthetic_sets(n_in: int, n_out: int):
    X, labels = _normal(20, (40, n_in)), np.random.default_rng(21).integers(0, n_out, 40)
    X = jax.nn.sigmoid(X)  # pixel-like inputs in (0, 1)
    train = (X[:28], jnp.asarray(np.eye(n_out)[labels[:28]]))
    evaluation = {
        "validation": (X[28:34], jnp.asarray(labels[28:34])),
        "test": (X[34:], jnp.asarray(labels[34:])),
    }
    return train, evaluation


def _training() -> dict[str, float]:
    from fnbackprop import config, runs

    out = {}
    for name, (network, training) in RUNS.items():
        raw = {"network": network, "training": {**training, "dtype": "float64"}}
        cfg = config.parse(raw, source=f"fingerprint run {name}")
        data = _synthetic_sets(network["sizes"][0], network["sizes"][-1])
        result = runs.run_training(cfg, data=data, progress=False, echo=None)
        out |= _summary(f"train.{name}.params", result.params)
        curves = {
            key: [m[key] for m in result.metrics]
            for key in sorted(result.metrics[0])
            if key.endswith(("_cost", "_accuracy")) or key == "eta"
        }
        out[f"train.{name}.epochs"] = float(len(result.metrics))
        for key, values in curves.items():
            out |= _summary(f"train.{name}.{key}", values)
    return out


def _sweep_epoch() -> dict[str, float]:
    from fnbackprop import Network, optimizers, training

    net = Network([6, 5, 3], "sigmoid", "cross_entropy")
    optimizer = optimizers.make_optimizer("sgd", 0.5, lmbda=0.1, n=28)
    (X, Y), _ = _synthetic_sets(6, 3)
    runs = [net.init(jax.random.key(seed), "scaled", jnp.float64) for seed in (0, 1)]
    P = jax.tree.map(lambda *x: jnp.stack(x), *runs)
    S = jax.tree.map(lambda *x: jnp.stack(x), *[optimizer.init(p) for p in runs])
    epoch = training.make_vmapped_epoch(net, optimizer, mini_batch_size=5, dropout=True)
    P, S = epoch(P, S, jax.random.key(22), X, Y, jnp.asarray([0.0, 0.3]))
    return _summary("sweep.vmapped_epoch", P)


def main() -> None:
    json.dump(compute(), sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
