"""Chapter 5: why deep networks are hard to train, measured with the hand-written pass.

The speed of learning of layer l is ‖∂C/∂b^l‖, the norm of its bias gradient (BP3: the errors
δ^l averaged over the examples). Every figure below comes from `fnbackprop.speeds`, which reads
the δ^l the hand-written pass computes on its way down.

1. Deeper sigmoid networks barely improve (configs/chapter5_{1,2,3,4}_hidden.toml: cross-entropy,
   η = 0.1, λ = 5.0, mini-batch 10, 30 epochs, network2's init). Nielsen's validation
   accuracies: 96.48, 96.90, 96.57, 96.53 %.
2. At initialisation the early layers learn slower: ‖∂C/∂b^l‖ of the mean cost over the first
   1,000 training images, hidden layers first to last. Nielsen (one run each):
   [784, 30, 30, 10] 0.07, 0.31; [784, 30, 30, 30, 10] 0.012, 0.060, 0.283;
   [784, 30, 30, 30, 30, 10] 0.003, 0.017, 0.070, 0.285. Here over 20 seeds.
3. And stay slower while they learn: 500 epochs of full-batch gradient descent on those 1,000
   images (η = 0.1, λ = 5.0), the speed of each hidden layer before every epoch (Nielsen's three
   plots, log axis).
4. The unstable gradient: for a chain of single sigmoid neurons, ∂C/∂b_1 / ∂C/∂b_4 equals the
   product σ′(z_1) w_2 σ′(z_2) w_3 σ′(z_3) w_4 (the chapter's derivation), measured over random
   chains; with w_j = 100 and biases that keep every z_j = 0, each term is 25 and the gradient
   explodes.
5. The chapter's problems: |w σ′(wa + b)| ≥ 1 needs |w| ≥ 4; the width of the set of a where it
   holds is (2/|w|) ln(|w|(1 + √(1 − 4/|w|))/2 − 1), largest (≈ 0.45) at |w| ≈ 6.9.
6. What σ and initialisation change: the 4-hidden-layer network with hidden σ in sigmoid, tanh,
   relu, leaky_relu, softplus (sigmoid outputs, cross-entropy) and init normal (N(0, 1)) or scaled
   (N(0, 1/n_in)): speeds at initialisation and after training, and accuracy; then 6 and 10
   hidden layers of 30.

Settings are at the top. `--quick` uses fewer seeds, epochs and images.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments.common import load_config, train_seeds
from fnbackprop import Network, optimizers
from fnbackprop import config as fconfig
from fnbackprop.backward import backprop_vmap
from fnbackprop.speeds import learning_speeds

DEPTHS = {
    1: "chapter5_1_hidden",
    2: "chapter5_2_hidden",
    3: "chapter5_3_hidden",
    4: "chapter5_4_hidden",
}
BOOK_ACCURACY = {1: 0.9648, 2: 0.9690, 3: 0.9657, 4: 0.9653}
BOOK_SPEEDS = {2: (0.07, 0.31), 3: (0.012, 0.060, 0.283), 4: (0.003, 0.017, 0.070, 0.285)}
SEEDS = (0, 1, 2)
SPEED_SEEDS = tuple(range(20))
PROBE = 1_000  # training images for the speeds (the book's first 1,000)
GD_EPOCHS, GD_ETA, GD_LMBDA = 500, 0.1, 5.0
CHAIN_DRAWS = 1_000
SIGMAS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")
INITS = ("normal", "scaled")
SWEEP_SEEDS, SWEEP_EPOCHS = (0, 1), 10
DEEPER = {6: ("sigmoid", "tanh", "relu"), 10: ("sigmoid", "tanh", "relu")}

QUICK = {
    "seeds": (0,),
    "speed_seeds": (0, 1, 2),
    "gd_epochs": 20,
    "epochs": 1,
    "train_size": 5_000,
    "sigmas": ("sigmoid", "relu"),
    "deeper": {6: ("sigmoid",)},
}


def probe_data(data_dir):
    X, Y, _, _ = common.mnist_arrays(data_dir, PROBE, 1)
    return X, Y


def hidden_sizes(hidden: int) -> list[int]:
    return [784, *([30] * hidden), 10]


@functools.cache
def _speeds_fn(net: Network):
    return jax.jit(functools.partial(learning_speeds, net))


def speeds_at_init(net: Network, seeds, X, Y, init: str = "scaled") -> np.ndarray:
    """(seeds, layers) speeds of the mean cost over (X, Y), each seed's initial parameters."""
    speed = _speeds_fn(net)
    return np.stack([np.asarray(speed(net.init(jax.random.key(s), init), X, Y)) for s in seeds])


def speeds_during_training(net: Network, seed: int, X, Y, epochs: int) -> np.ndarray:
    """(epochs, layers): the speeds before each epoch of full-batch gradient descent with L2
    (network2's SGD with one mini-batch of all of X), as Nielsen's generate_gradient.py."""
    optimizer = optimizers.make_optimizer("sgd", GD_ETA, lmbda=GD_LMBDA, n=X.shape[0])
    params = net.init(jax.random.key(seed), "scaled")

    def epoch(carry, _):
        params, state = carry
        grads = backprop_vmap(net, params, X, Y)
        speeds = learning_speeds(net, params, X, Y, lambda *_: grads)
        updates, state = optimizer.update(grads, state, params)
        return (jax.tree.map(jnp.add, params, updates), state), speeds

    run = jax.jit(lambda c: jax.lax.scan(epoch, c, None, length=epochs)[1])
    return np.asarray(run((params, optimizer.init(params))))


def chain(draws: int) -> dict:
    """A chain of four single sigmoid neurons: the measured ratio ∂C/∂b_1 / ∂C/∂b_4 against the
    chapter's product of σ′(z_j) w_j terms, over random chains, and an exploding one."""
    import fnbackprop as fb

    net = fb.Network([1, 1, 1, 1, 1], "sigmoid", "quadratic")
    sigma = net.activations[0]
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)

        def one(ws, bs, x):
            params = tuple(
                (jnp.asarray([[w]]), jnp.asarray([b])) for w, b in zip(ws, bs, strict=True)
            )
            grads = fb.backprop(net, params, jnp.asarray([x]), jnp.asarray([0.0]))
            zs, _ = fb.forward_pass(net, params, jnp.asarray([x]))
            terms = [float(sigma.prime(z)[0]) for z in zs]
            product = terms[0] * ws[1] * terms[1] * ws[2] * terms[2] * ws[3]
            measured = float(grads[0][1][0] / grads[3][1][0])
            return measured, product

        pairs = [
            one(rng.standard_normal(4), rng.standard_normal(4), rng.uniform()) for _ in range(draws)
        ]
        measured, product = np.asarray(pairs).T
        x, w = 0.7, 100.0
        biases = [-w * x, -w / 2, -w / 2, -w / 2]  # z_j = w a_{j−1} + b_j = 0, a_j = 1/2
        big_measured, big_product = one([w] * 4, biases, x)
    relative = np.abs(measured - product) / np.abs(product)
    return {
        "draws": draws,
        "max_relative_difference": float(np.max(relative)),
        "median_abs_ratio": float(np.median(np.abs(measured))),
        "share_below_one_64th": float(np.mean(np.abs(measured) < 1 / 64)),
        "exploding": {
            "w": w,
            "measured_ratio": big_measured,
            "product": big_product,
            "expected": (w / 4) ** 3,  # σ′(0) w = 25 for each of the three w_j σ′(z_j)
        },
    }


def problems() -> dict:
    """|w σ′(wa + b)| ≥ 1 needs |w| ≥ 4, and the width of the set of a where it holds."""
    from fnbackprop.activations import get

    prime = get("sigmoid").prime
    with jax.enable_x64(True):
        a = jnp.linspace(-3.0, 3.0, 600_001)
        ws = np.linspace(0.5, 20.0, 40)
        peak = [float(jnp.max(jnp.abs(w * prime(w * a)))) for w in ws]
        widths_w = np.linspace(4.05, 20.0, 320)
        step = float(a[1] - a[0])
        measured = [float(jnp.sum(jnp.abs(w * prime(w * a)) >= 1)) * step for w in widths_w]
    formula = [2 / w * np.log(w * (1 + np.sqrt(1 - 4 / w)) / 2 - 1) for w in widths_w]
    best = int(np.argmax(measured))
    return {
        "peak_is_w_over_4": float(np.max(np.abs(np.asarray(peak) - ws / 4))),
        "smallest_w_reaching_1": float(min(w for w, p in zip(ws, peak, strict=True) if p >= 1)),
        "width_max_difference": float(np.max(np.abs(np.asarray(measured) - formula))),
        "width_grid_step": step,
        "widest": {"w": float(widths_w[best]), "width": measured[best]},
        "widths": {"w": widths_w.tolist(), "measured": measured, "formula": formula},
    }


def network_config(hidden: int, sigma: str, init: str, epochs: int, train_size: int):
    base = load_config("chapter5_1_hidden")
    return common.replace(
        base,
        network={
            "sizes": tuple(hidden_sizes(hidden)),
            "activation": tuple([sigma] * hidden + ["sigmoid"]),
            "init": init,
        },
        training={"epochs": epochs},
        data={"train_size": train_size},
    )


def swap(hidden: int, sigmas, inits, seeds, epochs, train_size, X, Y, data_dir) -> dict:
    """Each σ × init: speeds at initialisation (over `SPEED_SEEDS`-many seeds), and the runs
    with the speeds of their trained networks and their accuracy."""
    table = {}
    for sigma in sigmas:
        for init in inits:
            config = network_config(hidden, sigma, init, epochs, train_size)
            net = fconfig.build_network(config)
            at_init = speeds_at_init(net, range(len(seeds) * 5), X, Y, init)

            def trained(net, params):
                return {"speeds": np.asarray(_speeds_fn(net)(params, X, Y)).tolist()}

            label = f"{hidden} hidden, {sigma}, {init}"
            runs = train_seeds(config, seeds, data_dir, label=label, measure=trained)
            table[f"{sigma}, {init}"] = {
                "sigma": sigma,
                "init": init,
                "speeds_at_init_median": np.median(at_init, axis=0).tolist(),
                "speeds_at_init": at_init.tolist(),
                **runs,
            }
    return table


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    q = QUICK if quick else {}
    seeds = q.get("seeds", SEEDS)
    train_size = q.get("train_size", 50_000)
    X, Y = probe_data(data_dir)
    results: dict = {"quick": quick, "probe_images": PROBE}

    results["speeds_at_init"] = {}
    for hidden, book in BOOK_SPEEDS.items():
        net = Network(hidden_sizes(hidden), "sigmoid", "cross_entropy")
        s = speeds_at_init(net, q.get("speed_seeds", SPEED_SEEDS), X, Y)[:, :-1]  # hidden only
        results["speeds_at_init"][str(hidden)] = {
            "book": list(book),
            "median": np.median(s, axis=0).tolist(),
            "min": s.min(axis=0).tolist(),
            "max": s.max(axis=0).tolist(),
            "seeds": s.tolist(),
            "earlier_slower_share": float(np.mean(np.all(np.diff(s, axis=1) > 0, axis=1))),
        }

    results["speeds_during_training"] = {}
    for hidden in BOOK_SPEEDS:
        net = Network(hidden_sizes(hidden), "sigmoid", "cross_entropy")
        curves = speeds_during_training(net, 0, X, Y, q.get("gd_epochs", GD_EPOCHS))
        results["speeds_during_training"][str(hidden)] = curves[:, :-1].tolist()

    results["chain"] = chain(100 if quick else CHAIN_DRAWS)
    results["problems"] = problems()

    results["depths"] = {}
    for hidden, name in DEPTHS.items():
        config = load_config(name)
        if quick:
            changes = {"training": {"epochs": q["epochs"]}, "data": {"train_size": train_size}}
            config = load_config(name, **changes)
        results["depths"][str(hidden)] = {
            "book_validation": BOOK_ACCURACY[hidden],
            "config": fconfig.dumps(config),
            **train_seeds(config, seeds, data_dir, label=name, echo=not quick),
        }

    epochs = q.get("epochs", SWEEP_EPOCHS)
    sweep_seeds = q.get("seeds", SWEEP_SEEDS)
    results["sigma_init"] = {
        "hidden": 4,
        "epochs": epochs,
        "table": swap(
            4, q.get("sigmas", SIGMAS), INITS, sweep_seeds, epochs, train_size, X, Y, data_dir
        ),
    }
    results["deeper"] = {
        str(hidden): swap(
            hidden, sigmas, ("scaled",), sweep_seeds, epochs, train_size, X, Y, data_dir
        )
        for hidden, sigmas in q.get("deeper", DEEPER).items()
    }
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    ax = axes[0, 0]
    for i, (hidden, entry) in enumerate(results["speeds_at_init"].items()):
        layers = np.arange(1, int(hidden) + 1)
        ax.plot(layers, entry["median"], "o-", color=f"C{i}", label=f"{hidden} hidden: median")
        ax.fill_between(layers, entry["min"], entry["max"], color=f"C{i}", alpha=0.15)
        ax.plot(layers, entry["book"], "x--", color=f"C{i}", label=f"{hidden} hidden: book")
    ax.set_yscale("log")
    ax.set_xlabel("hidden layer")
    ax.set_ylabel("‖∂C/∂b^l‖ at initialisation")
    ax.set_title("speed at initialisation (band: min–max over seeds)", fontsize=10)
    ax.legend(fontsize=7)
    for ax, (hidden, curves) in zip(
        [*axes[0, 1:].tolist(), axes[1, 0]], results["speeds_during_training"].items(), strict=False
    ):
        curves = np.asarray(curves)
        for j in range(curves.shape[1]):
            ax.plot(curves[:, j], label=f"hidden layer {j + 1}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch of full-batch gradient descent")
        ax.set_title(f"speed of learning: {hidden} hidden layers", fontsize=10)
        ax.legend(fontsize=7)
    ax = axes[1, 1]
    depths = sorted(results["depths"], key=int)
    for d in depths:
        entry = results["depths"][d]
        finals = [100 * r["final_validation"] for r in entry["runs"] if "final_validation" in r]
        ax.plot([int(d)] * len(finals), finals, "o", color="C0", alpha=0.6)
        ax.plot(int(d), 100 * entry["book_validation"], "x", color="C3", markersize=10)
    ax.set_xlabel("hidden layers of 30")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("deeper sigmoid networks (o ours, final epoch; x book)", fontsize=10)
    ax = axes[1, 2]
    table = results["sigma_init"]["table"]
    names = list(table)
    ratio = [
        np.asarray(table[n]["speeds_at_init_median"][0])
        / np.asarray(table[n]["speeds_at_init_median"][3])
        for n in names
    ]
    ax.barh(range(len(names)), ratio)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1, color="k", lw=0.8)
    ax.set_xlabel("speed of hidden layer 1 / hidden layer 4, at initialisation (median)")
    ax.set_title("4 hidden layers: what σ and init change", fontsize=10)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "chapter5_unstable",
        __doc__.splitlines()[0],
        run,
        argv,
        plot=plot,
        seeds=lambda quick: {
            "training": list(QUICK["seeds"] if quick else SEEDS),
            "speeds": list(QUICK["speed_seeds"] if quick else SPEED_SEEDS),
        },
    )


if __name__ == "__main__":
    main()
