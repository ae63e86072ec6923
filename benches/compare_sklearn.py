# `wgpu-mlp fit` with its defaults against scikit-learn's MLPClassifier with its defaults
# (behind a StandardScaler, as `fit` standardises too), on the same stratified 80/20 splits of
# three small real data sets the library was never tuned on (iris, wine, breast cancer; they
# ship with scikit-learn). Three splits each; three seeds of each side per split.
#
#   apt-get install -y python3-sklearn      # Debian 12: scikit-learn 1.2.1
#   cargo build --release && /usr/bin/python3 benches/compare_sklearn.py target/release/wgpu-mlp
#
# The CSV files it writes (to /tmp/skl) use ';', a header and class names, and are read by
# `wgpu-mlp fit TRAIN --test-data TEST`.
import os
os.makedirs("/tmp/skl", exist_ok=True)
import sys, subprocess, re, warnings
import numpy as np
from sklearn import datasets
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.exceptions import ConvergenceWarning
warnings.simplefilter("ignore", ConvergenceWarning)
loaders = {"iris": datasets.load_iris, "wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer}
cli = sys.argv[1]
for name, load in loaders.items():
    X, y = load(return_X_y=True)
    names = load().target_names
    for split_seed in [0, 1, 2]:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=split_seed)
        for part, (A, b) in {"train": (Xtr, ytr), "test": (Xte, yte)}.items():
            with open(f"/tmp/skl/{name}_{split_seed}_{part}.csv", "w") as f:
                f.write(";".join([f"f{i}" for i in range(A.shape[1])] + ["label"]) + "\n")
                for row, label in zip(A, b):
                    f.write(";".join(repr(float(v)) for v in row) + ";" + str(names[label]) + "\n")
        sk = [make_pipeline(StandardScaler(), MLPClassifier(random_state=s)).fit(Xtr, ytr).score(Xte, yte) for s in [0, 1, 2]]
        ours = []
        for s in [0, 1, 2]:
            out = subprocess.run([cli, "fit", f"/tmp/skl/{name}_{split_seed}_train.csv", "--test-data",
                                  f"/tmp/skl/{name}_{split_seed}_test.csv", "--seed", str(s), "-q",
                                  "-o", "/tmp/skl/m.safetensors"], capture_output=True, text=True)
            m = re.search(r"test accuracy ([0-9.]+)%", out.stdout)
            ours.append(float(m.group(1)) / 100 if m else float("nan"))
            if not m: print(out.stdout, out.stderr)
        n = len(yte)
        print(f"{name:14s} split {split_seed}: test rows {n:3d}  sklearn {' '.join(f'{v:.4f}' for v in sk)} (mean {np.mean(sk):.4f})"
              f"  wgpu-mlp {' '.join(f'{v:.4f}' for v in ours)} (mean {np.mean(ours):.4f})  diff in rows {(np.mean(ours)-np.mean(sk))*n:+.1f}", flush=True)
