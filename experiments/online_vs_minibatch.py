"""Online learning against mini-batches of 20 (the chapter-1 exercise), and Gordon's offline claim.

1. Nielsen, §1.5, exercise: "An extreme version of gradient descent is to use a mini-batch size of
   just 1 [...] known as online, on-line, or incremental learning. [...] Name one advantage and
   one disadvantage of online learning, compared to stochastic gradient descent with a mini-batch
   size of, say, 20." The chapter-1 network [784, 30, 10] (sigmoid, quadratic cost, N(0, 1)
   weights) on the 50,000 training images, from the same start: mini-batch 20 with the book's
   η = 3.0, and mini-batch 1 with η = 3.0/20 = 0.15. Eqs. 20–21 weigh every ∇C_x by η/m, and the
   book notes that leaving out the 1/m "is equivalent to rescaling the learning rate η"; keeping
   η/m = 0.15 for both, an epoch applies every example's gradient with the same weight and the two
   differ only in when the weights move: after each example, or after each 20. Online at the
   book's own η = 3.0 (`configs/chapter1_online.toml`: each ∇C_x weighed 20 times more) runs too.
   Test accuracy after every epoch, against epochs and against seconds of training (compilation
   and evaluation excluded).
2. Gordon: "Apparently online learning converges faster, but offline learning results in a
   network that makes fewer errors." His online learning applies each example's delta
   Δp_i = −η∇C_{x_i} at once; offline learning averages the n deltas and applies them once an
   epoch. On the same data (the first 1,000 training images, the same start, one η = 3.0 for
   every mode, as his deltas are defined) online (n updates an epoch), mini-batches of 20
   (n/20 updates) and offline (one update) train for the same number of epochs, long enough for
   offline learning to level off; errors on those training images and on the 10,000 test images
   at checkpoints spaced evenly in log(epoch).

`--quick`: part 1 for one epoch on 20,000 images, one seed, without online at η = 3; part 2 on
300 images for 300 epochs, errors counted on 2,000 test images.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fnbackprop as fb
from experiments import common
from fnbackprop.data import load_dataset, one_hot
from fnbackprop.training import make_epoch

SIZES = [784, 30, 10]
# 1. the exercise: (name, mini-batch size, η)
MODES = (
    ("mini-batch 20, η = 3", 20, 3.0),
    ("online, η = 0.15", 1, 0.15),
    ("online, η = 3", 1, 3.0),
)
SEEDS, EPOCHS, N_TRAIN = (0, 1, 2), 30, 50_000
QUICK_MODES = MODES[:2]
QUICK_SEEDS, QUICK_EPOCHS, QUICK_N_TRAIN = (0,), 1, 20_000
# 2. Gordon: online, mini-batches and offline on the same images, one η
GORDON_ETA, GORDON_N, GORDON_EPOCHS, GORDON_SEEDS = 3.0, 1_000, 10_000, (0, 1, 2)
QUICK_GORDON_N, QUICK_GORDON_EPOCHS, QUICK_GORDON_SEEDS = 300, 300, (0,)
CHECKPOINTS, N_TEST = 40, 10_000  # evaluations, evenly spaced in log(epoch); test images
QUICK_CHECKPOINTS, QUICK_N_TEST = 12, 2_000


@jax.jit
def errors_and_cost(net, params, X, labels):
    """Misclassified examples and mean quadratic cost on (X, labels)."""
    outputs = fb.feedforward(net, params, X)
    wrong = jnp.sum(jnp.argmax(outputs, axis=1) != labels)
    return wrong, fb.cost(net, params, X, jax.nn.one_hot(labels, 10, dtype=X.dtype))


def train_timed(net, params, X, Y, m, eta, epochs, key, evaluate_at, evaluate) -> dict:
    """SGD with mini-batches of m; `evaluate(params)` after the epochs in `evaluate_at`.

    The epoch is compiled (by one epoch run and thrown away) before the clock starts, and
    evaluation is outside the clock, so that `seconds` is training alone.
    """
    optimizer = optax.sgd(eta)
    opt_state = optimizer.init(params)
    epoch = make_epoch(net, optimizer, gradient="backprop", mini_batch_size=m)
    start = time.perf_counter()  # compile (and run one epoch, thrown away) before the clock
    jax.block_until_ready(epoch(params, opt_state, jax.random.fold_in(key, 2**31), X, Y))
    compile_seconds = time.perf_counter() - start
    trained, history = 0.0, [{"epoch": 0, "seconds": 0.0, **evaluate(params)}]
    for e in range(epochs):
        start = time.perf_counter()
        params, opt_state = jax.block_until_ready(
            epoch(params, opt_state, jax.random.fold_in(key, e), X, Y)
        )
        trained += time.perf_counter() - start
        if e + 1 in evaluate_at:
            history.append({"epoch": e + 1, "seconds": trained, **evaluate(params)})
    return {
        "mini_batch_size": m,
        "eta": eta,
        "updates_per_epoch": -(-X.shape[0] // m),
        "compile_seconds": compile_seconds,
        "train_seconds": trained,
        "history": history,
    }


def exercise(net, splits, modes, n_train, epochs, seeds) -> dict:
    X = jnp.asarray(splits.train.images[:n_train])
    Y = jnp.asarray(one_hot(splits.train.labels[:n_train], 10))
    X_test, labels_test = jnp.asarray(splits.test.images), jnp.asarray(splits.test.labels)

    def evaluate(params):
        wrong, _ = errors_and_cost(net, params, X_test, labels_test)
        return {"test_accuracy": 1 - int(wrong) / len(labels_test)}

    results = {}
    for name, m, eta in modes:
        runs = []
        for seed in seeds:
            key_init, key_train = jax.random.split(jax.random.key(seed))
            run = train_timed(
                net,
                net.init(key_init),
                X,
                Y,
                m,
                eta,
                epochs,
                key_train,
                range(1, epochs + 1),
                evaluate,
            )
            accuracy = [h["test_accuracy"] for h in run["history"][1:]]
            runs.append(
                {
                    "seed": seed,
                    **run,
                    "best_test": max(accuracy),
                    "final_test": accuracy[-1],
                    "examples_per_second": n_train * epochs / run["train_seconds"],
                }
            )
        results[name] = {
            "mini_batch_size": m,
            "eta": eta,
            "runs": runs,
            "best_test_mean": float(np.mean([r["best_test"] for r in runs])),
            "final_test_mean": float(np.mean([r["final_test"] for r in runs])),
            "first_epoch_test_mean": float(
                np.mean([r["history"][1]["test_accuracy"] for r in runs])
            ),
            "seconds_per_epoch_mean": float(np.mean([r["train_seconds"] / epochs for r in runs])),
        }
        print(
            f"{name}: final test accuracy {results[name]['final_test_mean']:.4f}, "
            f"{results[name]['seconds_per_epoch_mean']:.2f} s per epoch",
            flush=True,
        )
    return results


def gordon(net, splits, n, epochs, seeds, checkpoints: int, n_test: int) -> dict:
    X = jnp.asarray(splits.train.images[:n])
    labels = jnp.asarray(splits.train.labels[:n])
    Y = jnp.asarray(one_hot(splits.train.labels[:n], 10))
    X_test, labels_test = (
        jnp.asarray(a[:n_test]) for a in (splits.test.images, splits.test.labels)
    )
    equal = max(1, epochs // n)  # online's epoch with as many updates as offline's last
    spaced = np.geomspace(1, epochs, checkpoints).round().astype(int).tolist()
    checkpoints = sorted({*spaced, equal})

    def evaluate(params):
        train_wrong, train_cost = errors_and_cost(net, params, X, labels)
        test_wrong, _ = errors_and_cost(net, params, X_test, labels_test)
        return {
            "train_errors": int(train_wrong),
            "train_cost": float(train_cost),
            "test_errors": int(test_wrong),
        }

    modes = {"online": 1, "mini-batch 20": 20, "offline": n}
    results: dict = {"n": n, "n_test": n_test, "eta": GORDON_ETA, "epochs": epochs, "modes": {}}
    for mode, m in modes.items():
        runs = []
        for seed in seeds:
            key_init, key_train = jax.random.split(jax.random.key(seed))
            params = net.init(key_init)
            run = train_timed(
                net, params, X, Y, m, GORDON_ETA, epochs, key_train, checkpoints, evaluate
            )
            history = run["history"]
            tail = history[-max(1, len(history) // 10) :]  # the last tenth of the checkpoints
            runs.append(
                {
                    "seed": seed,
                    **run,
                    "final_train_errors": history[-1]["train_errors"],
                    "final_test_errors": history[-1]["test_errors"],
                    "final_train_cost": history[-1]["train_cost"],
                    "tail_train_errors_mean": float(np.mean([h["train_errors"] for h in tail])),
                    "tail_test_errors_mean": float(np.mean([h["test_errors"] for h in tail])),
                    "best_test_errors": min(h["test_errors"] for h in history),
                }
            )
        results["modes"][mode] = {
            "mini_batch_size": m,
            "updates_per_epoch": -(-n // m),
            "runs": runs,
            **{
                f"{key}_mean": float(np.mean([r[key] for r in runs]))
                for key in (
                    "final_train_errors",
                    "final_test_errors",
                    "final_train_cost",
                    "tail_train_errors_mean",
                    "tail_test_errors_mean",
                    "best_test_errors",
                )
            },
        }
    online, offline = results["modes"]["online"], results["modes"]["offline"]

    def cost_at(mode, epoch):  # mean over seeds of the training cost after `epoch` epochs
        return float(
            np.mean(
                [h["train_cost"] for r in mode["runs"] for h in r["history"] if h["epoch"] == epoch]
            )
        )

    # is offline still learning at the end? its cost against that of a fifth of the epochs before
    late = [h["epoch"] for h in offline["runs"][0]["history"] if h["epoch"] <= 0.8 * epochs][-1]
    results["equal_updates"] = {
        "updates": epochs,
        "online_epoch": equal,  # × n updates = offline's updates when n divides the epochs
        "online_train_cost": cost_at(online, equal),
        "offline_train_cost": cost_at(offline, epochs),
    }
    results["offline_cost_drop_over_last_fifth"] = 1 - cost_at(offline, epochs) / cost_at(
        offline, late
    )
    results["verdict"] = {
        "online_converges_faster": bool(cost_at(online, 1) < cost_at(offline, 1)),  # per epoch
        "offline_lower_cost_per_update": bool(
            results["equal_updates"]["offline_train_cost"]
            < results["equal_updates"]["online_train_cost"]
        ),
        "offline_levelled_off": bool(results["offline_cost_drop_over_last_fifth"] < 0.05),
        "offline_fewer_train_errors": bool(
            offline["final_train_errors_mean"] < online["final_train_errors_mean"]
        ),
        "offline_fewer_test_errors": bool(
            offline["final_test_errors_mean"] < online["final_test_errors_mean"]
        ),
        "offline_lower_train_cost": bool(
            offline["final_train_cost_mean"] < online["final_train_cost_mean"]
        ),
    }
    return results


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    splits = load_dataset("mnist", data_dir, progress=False)
    net = fb.Network(SIZES, "sigmoid", "quadratic")
    if quick:
        exercise_args = (QUICK_MODES, QUICK_N_TRAIN, QUICK_EPOCHS, QUICK_SEEDS)
        gordon_args = (
            QUICK_GORDON_N,
            QUICK_GORDON_EPOCHS,
            QUICK_GORDON_SEEDS,
            QUICK_CHECKPOINTS,
            QUICK_N_TEST,
        )
    else:
        exercise_args = (MODES, N_TRAIN, EPOCHS, SEEDS)
        gordon_args = (GORDON_N, GORDON_EPOCHS, GORDON_SEEDS, CHECKPOINTS, N_TEST)
    return {
        "quick": quick,
        "sizes": SIZES,
        "n_train": exercise_args[1],
        "epochs": exercise_args[2],
        "seeds": list(exercise_args[3]),
        "exercise": exercise(net, splits, *exercise_args),
        "gordon": gordon(net, splits, *gordon_args),
    }


def plot(results: dict):
    plt = common.pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (ax_epoch, ax_second), (ax_train, ax_test) = axes
    for (name, entry), color in zip(results["exercise"].items(), ("C0", "C1", "C2"), strict=False):
        for i, r in enumerate(entry["runs"]):
            h = r["history"][1:]
            label = name if i == 0 else None
            ax_epoch.plot(
                [p["epoch"] for p in h],
                [100 * p["test_accuracy"] for p in h],
                color=color,
                marker=".",
                lw=1,
                label=label,
            )
            ax_second.plot(
                [p["seconds"] for p in h],
                [100 * p["test_accuracy"] for p in h],
                color=color,
                marker=".",
                lw=1,
                label=label,
            )
    ax_epoch.set_xlabel("epoch")
    ax_second.set_xlabel("seconds of training (compilation and evaluation excluded)")
    for ax in (ax_epoch, ax_second):
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(
            f"{results['sizes']} on {results['n_train']:,} images, same start", fontsize=10
        )
    g = results["gordon"]
    for (mode, entry), color in zip(g["modes"].items(), ("C0", "C1", "C3"), strict=True):
        for i, r in enumerate(entry["runs"]):
            h = r["history"][1:]
            label = f"{mode} ({entry['updates_per_epoch']} updates/epoch)" if i == 0 else None
            ax_train.loglog(
                [p["epoch"] for p in h],
                [p["train_cost"] for p in h],
                color=color,
                lw=1,
                label=label,
            )
            ax_test.semilogx(
                [p["epoch"] for p in h],
                [p["test_errors"] for p in h],
                color=color,
                lw=1,
                label=label,
            )
    ax_train.set_ylabel(f"cost on the {g['n']:,} training images")
    ax_test.set_ylabel(f"errors on {g['n_test']:,} test images")
    for ax in (ax_train, ax_test):
        ax.set_xlabel("epoch")
        ax.set_title(f"Gordon: online vs offline, η = {g['eta']}, {g['n']:,} images", fontsize=10)
    for ax in axes.flat:
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv=None) -> dict:
    seeds = lambda quick: {  # noqa: E731
        "exercise": list(QUICK_SEEDS if quick else SEEDS),
        "gordon": list(QUICK_GORDON_SEEDS if quick else GORDON_SEEDS),
    }
    return common.cli("online_vs_minibatch", __doc__.splitlines()[0], run, argv, plot, seeds=seeds)


if __name__ == "__main__":
    main()
