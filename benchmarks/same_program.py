"""Whether a refactor left the compiled SGD epochs exactly as they were.

    python -m benchmarks.same_program REV [--sizes 784,30,10]

Timings on a shared 2-core machine move by ±50 % from one minute to the next; two programs that
XLA compiles to the same optimised HLO run at the same speed by construction. This compiles one
epoch of the chapter-1 network for every gradient method, mini-batch 10 and 100, with and without
dropout, once with the working tree and once with the tree of REV (checked out into a temporary
folder), and compares the optimised HLO text of each pair (debug tables, source locations and
module names left out). It prints one line per program and exits 1 if any differs.
"""

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
METHODS = ("backprop", "backprop_batch", "autodiff", "backprop_vjp")
MINI_BATCHES = (10, 100)

#: Run in a fresh interpreter with the tree to measure first on the path.
DUMP = """
import json, sys
import jax, jax.numpy as jnp
import fnbackprop as fb
from fnbackprop import optimizers, training
sizes, methods, mini_batches = json.loads(sys.argv[1])
net = fb.Network(sizes, "sigmoid", "quadratic")
params = net.init(jax.random.key(0))
optimizer = optimizers.make_optimizer("sgd", 3.0)
X, Y = jnp.zeros((1000, sizes[0])), jnp.zeros((1000, sizes[-1]))
programs = {}
for method in methods:
    for m in mini_batches:
        for dropout in (False, True):
            epoch = training.make_epoch(
                net, optimizer, gradient=method, mini_batch_size=m, dropout=dropout
            )
            lowered = epoch.lower(params, optimizer.init(params), jax.random.key(1), X, Y)
            programs[f"{method}, mb {m}, dropout {dropout}"] = lowered.compile().as_text()
json.dump(programs, sys.stdout)
"""

_TABLES = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")


def normalised(hlo: str) -> str:
    """The program without what names its source: debug tables, locations, module names."""
    kept, in_table = [], False
    for line in hlo.split("\n"):
        if line in _TABLES:
            in_table = True
            continue
        if in_table and (not line or re.match(r"\d+ ", line)):
            continue
        in_table = False
        line = re.sub(r",?\s*(stack_frame_id=\d+|metadata=\{[^}]*\})", "", line)
        kept.append(re.sub(r"^HloModule [^ ,]+", "HloModule", line))
    return "\n".join(kept)


def programs(tree: Path, sizes: list[int]) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", DUMP, json.dumps([sizes, METHODS, MINI_BATCHES])],
        capture_output=True,
        text=True,
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"compiling in {tree} failed: {done.stderr.strip().splitlines()[-1]}")
    return {name: normalised(text) for name, text in json.loads(done.stdout).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the commit to compare the working tree with")
    parser.add_argument("--sizes", default="784,30,10", help="the network (default 784,30,10)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        old = Path(folder) / "tree"
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", args.rev, "fnbackprop"],
            capture_output=True,
            check=False,
        )
        if archive.returncode:
            raise SystemExit(f"git archive {args.rev} failed: {archive.stderr.decode().strip()}")
        old.mkdir()
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        before = programs(old, sizes)
    after = programs(REPO, sizes)
    differ = 0
    for name in before:
        a, b = before[name], after.get(name, "")
        same = a == b
        differ += not same
        digest = hashlib.sha256(b.encode()).hexdigest()[:12]
        print(f"{'same' if same else 'DIFFERS'}  {name}  ({digest})")
    print(f"{len(before) - differ} of {len(before)} compiled epochs identical to {args.rev}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
