"""The SVM baseline of §1.6: scikit-learn's `SVC` with its default settings on MNIST.

Nielsen, ch. 1, §1.6: "If we run scikit-learn's SVM classifier using the default settings, then it
gets 9,435 of 10,000 test images correct", trained on the book's 50,000 training images
(`mnist_svm.py`: `svm.SVC()`, `clf.fit(training_data[0], training_data[1])`), pixels as the book's
`mnist.pkl.gz` holds them: byte k as k/256, in [0, 1).

The default settings have changed since: in scikit-learn 0.x (2015) `SVC()` meant an RBF kernel
with γ = 1/n_features = 1/784, which is `SVC(gamma="auto")` today; since 0.22 the default is
`gamma="scale"`, γ = 1/(n_features · Var(X)), about 0.0134 for these pixels. Both are run: `SVC()`
as it is now, and `SVC(gamma="auto")`, the settings of the book's run. C = 1.0 in both.

scikit-learn is not a dependency of fnbackprop: `pip install -e ".[experiments]"`.
`--quick`: the first 2,000 training images and the first 500 test images.
"""

import time

import numpy as np

from experiments import common
from fnbackprop.data import load_dataset

BOOK_CORRECT = 9_435
VARIANTS = {  # name: SVC's arguments
    "SVC()": {},
    'SVC(gamma="auto")': {"gamma": "auto"},  # the default of 2015: γ = 1/n_features
}
N_TRAIN, N_TEST = 50_000, 10_000
QUICK_N_TRAIN, QUICK_N_TEST = 2_000, 500


def book_pixels(images) -> np.ndarray:
    """The book's pixel values, k/256 for byte k (fnbackprop's loader gives k/255)."""
    return (np.rint(np.asarray(images, np.float64) * 255) / 256).astype(np.float32)


def run(quick: bool = False, data_dir: str | None = None) -> dict:
    from sklearn.svm import SVC  # the optional extra: pip install -e ".[experiments]"

    n_train, n_test = (QUICK_N_TRAIN, QUICK_N_TEST) if quick else (N_TRAIN, N_TEST)
    splits = load_dataset("mnist", data_dir, progress=False)
    X, labels = book_pixels(splits.train.images[:n_train]), splits.train.labels[:n_train]
    X_test, labels_test = book_pixels(splits.test.images[:n_test]), splits.test.labels[:n_test]
    results: dict = {
        "quick": quick,
        "n_train": n_train,
        "n_test": n_test,
        "pixel_range": [float(X.min()), float(X.max())],
        "pixel_variance": float(X.var()),
        "book": {"test_correct": BOOK_CORRECT, "test_accuracy": BOOK_CORRECT / 10_000},
        "variants": {},
    }
    for name, arguments in VARIANTS.items():
        svc = SVC(**arguments)
        start = time.perf_counter()
        svc.fit(X, labels)
        fitted = time.perf_counter()
        guesses = svc.predict(X_test)
        predicted = time.perf_counter()
        correct = int(np.sum(guesses == labels_test))
        params = svc.get_params()
        results["variants"][name] = {
            "arguments": arguments,
            "kernel": params["kernel"],
            "C": params["C"],
            "gamma": params["gamma"],
            "gamma_value": float(svc._gamma),
            "support_vectors": int(svc.n_support_.sum()),
            "test_correct": correct,
            "test_accuracy": correct / n_test,
            "per_digit_accuracy": [
                float(np.mean(guesses[labels_test == d] == d)) for d in range(10)
            ],
            "fit_seconds": fitted - start,
            "predict_seconds": predicted - fitted,
        }
        if not quick:
            print(f"{name}: {correct} / {n_test} ({fitted - start:.0f} s to fit)", flush=True)
    return results


def plot(results: dict):
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(results["variants"])
    for i, (name, v) in enumerate(results["variants"].items()):
        xs = np.arange(10) + (i - (len(results["variants"]) - 1) / 2) * width
        ax.bar(
            xs,
            [100 * a for a in v["per_digit_accuracy"]],
            width,
            label=f"{name}, γ = {v['gamma_value']:.4g}: {v['test_correct']:,} / "
            f"{results['n_test']:,}",
        )
    book = 100 * results["book"]["test_accuracy"]
    ax.axhline(book, color="k", ls="--", lw=0.8, label=f"the book, SVC() in 2015: {book:.2f} %")
    ax.set_xticks(range(10))
    ax.set_xlabel("digit")
    ax.set_ylabel("test accuracy (%)")
    lowest = min(min(v["per_digit_accuracy"]) for v in results["variants"].values())
    ax.set_ylim(max(0, 100 * lowest - 5), 100)
    ax.set_title(
        f"scikit-learn SVC on {results['n_train']:,} training images, "
        f"{results['n_test']:,} test images",
        fontsize=10,
    )
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def main(argv=None) -> dict:
    return common.cli(
        "svm_baseline",
        __doc__.splitlines()[0],
        run,
        argv,
        plot,
        seeds=[],  # nothing random: libsvm's solver is deterministic
        extra_versions=("scikit-learn", "scipy"),
    )


if __name__ == "__main__":
    main()
