"""fnbackprop's benchmark suite: `python -m benchmarks [--quick] [--json PATH]`.

- `suite`: the cases (peak, epochs, NumPy baselines, evaluation, gradients, the chapter-1 run);
- `timing`: interleaved rounds, wall and CPU seconds;
- `numpy_baselines`: the book's SGD in NumPy, per example and fully matrix-based;
- `report`: the tables and the issue's bars (every table drawn by `tables.markdown_table`);
- `sharding`: the sharded-epoch rows (one process per device count).
"""

import os

# OpenBLAS's threads spin for about 0.1 s of CPU after every NumPy product, taking a core from the
# case timed next; a short timeout puts them to sleep at once. Read when NumPy loads, so set here.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
