#!/usr/bin/env python3
# Usage: python3 benches/python_grid_search.py [--repeat 3]
#
# wgpu_mlp.GridSearchCV (every fold x grid point of a shape as ONE stacked GPU job) against
# scikit-learn's GridSearchCV over sklearn.neural_network.MLPClassifier (n_jobs=1 and n_jobs=-1),
# on the digits set (1797 rows, 64 pixels scaled to [0, 1]): the same grid, the same folds
# (StratifiedKFold(5), no shuffle), the same estimator parameters. Prints a Markdown table of
# wall-clock seconds (best of --repeat) and the best candidate's mean CV accuracy.
#
#   pip install ./python            # the package, built from this checkout
#   python3 benches/python_grid_search.py
import argparse
import os
import platform
import time
import warnings

import numpy as np
import sklearn
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV as SkGridSearchCV
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

import wgpu_mlp

GRID = {
    "hidden_layer_sizes": [(32,), (64,), (128,)],
    "learning_rate_init": [1e-3, 3e-3, 1e-2],
    "alpha": [1e-4, 1e-2],
}
PARAMS = dict(max_iter=30, random_state=0)


def timed(make, X, y, repeat):
    best, search = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        search = make().fit(X, y)
        best = min(best, time.perf_counter() - start)
    return best, search


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    cv = StratifiedKFold(5)
    n = len(list(__import__("itertools").product(*GRID.values())))
    rows = []
    runs = [
        ("wgpu_mlp.GridSearchCV + wgpu_mlp.MLPClassifier", lambda: wgpu_mlp.GridSearchCV(wgpu_mlp.MLPClassifier(**PARAMS), GRID, cv=cv)),
        ("sklearn GridSearchCV + sklearn MLPClassifier, n_jobs=1", lambda: SkGridSearchCV(SkMLPClassifier(**PARAMS), GRID, cv=cv)),
        ("sklearn GridSearchCV + sklearn MLPClassifier, n_jobs=-1", lambda: SkGridSearchCV(SkMLPClassifier(**PARAMS), GRID, cv=cv, n_jobs=-1)),
    ]
    for name, make in runs:
        seconds, search = timed(make, X, y, args.repeat)
        rows.append((name, seconds, search.best_score_, search.best_params_))
    print(f"digits, {n} grid points x 5 folds = {5 * n} models of {PARAMS['max_iter']} epochs (+ refit); "
          f"adapter: {wgpu_mlp.adapter()}; {os.cpu_count()} CPU cores, {platform.python_version()}, "
          f"scikit-learn {sklearn.__version__}, best of {args.repeat}\n")
    print("| search | seconds | best mean CV accuracy | best params |")
    print("|---|---:|---:|---|")
    for name, seconds, score, params in rows:
        print(f"| {name} | {seconds:.2f} | {score:.4f} | {params} |")


if __name__ == "__main__":
    main()
