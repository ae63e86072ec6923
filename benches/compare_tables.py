#!/usr/bin/env python3
# Usage: python3 benches/compare_tables.py [--bin target/release/wgpu-mlp]
#
# Defaults against a scikit-learn pipeline on real-looking tables: `wgpu-mlp fit` / `predict` at
# their default options against scikit-learn's usual ColumnTransformer (median-imputed and
# standardised numbers, most-frequent-imputed and one-hot text categories) + MLPClassifier /
# MLPRegressor at their defaults, on the same fixed 80/20 split (stratified for classes, seed 0).
#
# The tables are built here, deterministically (fixed seeds), from data sets that ship with
# scikit-learn (nothing is downloaded): some numeric columns turned into named bins, a text
# column that correlates with the label, ~10% missing cells ("", "NA", "?") in several columns,
# an id column ("P00017") and a name column (both unique per row: the CLI drops them as
# identifiers, and the peer drops them by the same rule), the label in a middle column, with
# class names. Six tables: breast cancer, wine, iris, a churn table made with
# make_classification (mostly categories), diabetes (regression, sex as text) and Friedman #1
# (regression, with a site offset, a useless weekday and a binned input).
#
#   python3 -m venv /tmp/skvenv && /tmp/skvenv/bin/pip install scikit-learn pandas
#   cargo build --release --bin wgpu-mlp
#   /tmp/skvenv/bin/python3 benches/compare_tables.py [--bin target/release/wgpu-mlp]
#
# `fit` scores its cross-validation and a held-out 20% of train.csv, then saves a model refit on
# every row of train.csv; that saved model predicts test.csv, scored here.
#
# Options: --keep DIR writes the tables there (default: a temporary folder, removed);
# --splits N repeats everything on N splits (seeds 0..N-1) and adds the mean and spread of the
# difference (default 1: the seed-0 split alone).
import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import sklearn
from sklearn import datasets
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

MARKERS = ["", "NA", "?"]  # the missing-value spellings injected (pandas needs na_values=["?"])
FIRST = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kara", "Luis", "Mia", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara",
         "Umar", "Vera", "Wen", "Xavier", "Yara", "Zoe", "Aiko", "Bruno", "Chen", "Dana"]
LAST = ["Smith", "Garcia", "Muller", "Rossi", "Kowalski", "Novak", "Silva", "Jensen", "Dubois",
        "Tanaka", "Khan", "Olsen", "Popescu", "Horvat", "Costa", "Weber", "Nagy", "Lopez",
        "Ivanova", "Berg", "Moreau", "Sato", "Ali", "Fischer", "Romero", "Kim", "Park", "Lee",
        "Baker", "Evans"]


# ---------------------------------------------------------------------------------------------
# Building the tables. Every cell is written as text, as a spreadsheet export would.

def num(v, digits=6):
    return f"{float(v):.{digits}g}"


def bins(values, names):
    """Quantile bins of `values` named by `names` (low → high)."""
    edges = np.quantile(values, np.linspace(0, 1, len(names) + 1)[1:-1])
    return np.array(names, dtype=object)[np.searchsorted(edges, values, side="right")]


def correlated(y_codes, names, strength, rng):
    """A text column whose value is the label's own category with probability `strength`
    (label code modulo the number of names), else one drawn uniformly."""
    own = np.asarray(y_codes) % len(names)
    draw = rng.integers(0, len(names), len(own))
    keep = rng.random(len(own)) < strength
    return np.array(names, dtype=object)[np.where(keep, own, draw)]


def ids(prefix, n, rng, width=5):
    numbers = rng.permutation(np.arange(1, 10 ** width))[:n]
    return np.array([f"{prefix}{k:0{width}d}" for k in numbers], dtype=object)


def names(n, rng):
    full = [f"{f} {m}. {l}" for f in FIRST for m in "ABCDEFGHJKLMNPRSTW" for l in LAST]
    return np.array(full, dtype=object)[rng.choice(len(full), size=n, replace=False)]


def text(column, digits=6):
    return np.array([num(v, digits) for v in column], dtype=object)


def with_gaps(frame, columns, share, rng):
    """About `share` of the cells of each of `columns` replaced by a missing-value marker."""
    for c in columns:
        hit = rng.random(len(frame)) < share
        frame.loc[hit, c] = rng.choice(MARKERS, size=int(hit.sum()))
    return frame


def breast_cancer():
    rng = np.random.default_rng(1)
    d = datasets.load_breast_cancer()
    X, y = d.data, d.target
    n = len(y)
    diagnosis = d.target_names[y]  # malignant / benign
    cols = {"patient_id": ids("P", n, rng), "name": names(n, rng), "diagnosis": diagnosis}
    for j, f in enumerate(d.feature_names):
        if f == "mean texture":
            cols["texture"] = bins(X[:, j], ["low", "mid", "high"])
        elif f == "worst smoothness":
            cols["smoothness grade"] = bins(X[:, j], ["smooth", "average", "rough", "very rough"])
        else:
            cols[f] = text(X[:, j])
    # referred by: malignant cases come more often from a specialist (noisy)
    cols["referral"] = correlated(1 - y, ["gp", "specialist", "screening"], 0.35, rng)
    frame = pd.DataFrame(cols)
    gaps = ["mean radius", "mean area", "mean concavity", "worst radius", "texture", "referral",
            "radius error", "smoothness grade"]
    return "breast_cancer", with_gaps(frame, gaps, 0.10, rng), "diagnosis", "classification"


def wine():
    rng = np.random.default_rng(2)
    d = datasets.load_wine()
    X, y = d.data, d.target
    n = len(y)
    cultivar = np.array(["barolo", "grignolino", "barbera"], dtype=object)[y]
    cols = {"bottle": ids("W", n, rng, 4)}
    feats = list(d.feature_names)
    for j, f in enumerate(feats[:6]):
        cols[f] = bins(X[:, j], ["light", "medium", "strong"]) if f == "alcohol" else text(X[:, j])
    cols["cultivar"] = cultivar
    cols["region"] = correlated(y, ["Piemonte north", "Piemonte south", "Lombardia"], 0.4, rng)
    for j, f in enumerate(feats[6:], start=6):
        cols[f] = bins(X[:, j], ["pale", "ruby", "deep", "opaque"]) if f == "color_intensity" else text(X[:, j])
    frame = pd.DataFrame(cols)
    gaps = ["malic_acid", "magnesium", "flavanoids", "proline", "alcohol", "region", "hue"]
    return "wine", with_gaps(frame, gaps, 0.10, rng), "cultivar", "classification"


def iris():
    rng = np.random.default_rng(3)
    d = datasets.load_iris()
    X, y = d.data, d.target
    n = len(y)
    cols = {"specimen": ids("I", n, rng, 4), "sepal length (cm)": text(X[:, 0]),
            "sepal width": bins(X[:, 1], ["narrow", "medium", "wide"]),
            "species": d.target_names[y],
            "petal length (cm)": text(X[:, 2]), "petal width (cm)": text(X[:, 3]),
            "collector": correlated(y, ["Anderson", "Fisher", "Gray", "Hooker"], 0.2, rng)}
    frame = pd.DataFrame(cols)
    return "iris", with_gaps(frame, ["sepal length (cm)", "petal length (cm)", "sepal width", "collector"], 0.10, rng), \
        "species", "classification"


def diabetes():
    rng = np.random.default_rng(4)
    d = datasets.load_diabetes(scaled=False)
    X, y = d.data, d.target
    n = len(y)
    f = list(d.feature_names)  # age sex bmi bp s1..s6
    cols = {"record": ids("D", n, rng), "age": text(X[:, 0]),
            "sex": np.where(X[:, 1] == 1, "female", "male").astype(object)}
    for j in range(2, 6):
        cols[f[j]] = text(X[:, j])
    cols["progression"] = text(y)
    for j in range(6, 10):
        cols[f[j]] = text(X[:, j])
    frame = pd.DataFrame(cols)
    return "diabetes", with_gaps(frame, ["bmi", "bp", "s3", "s5", "sex"], 0.10, rng), "progression", "regression"


def friedman():
    """Friedman #1 (y = 10 sin(π x1 x2) + 20 (x3 − ½)² + 10 x4 + 5 x5 + noise, five
    uninformative columns) with a plant site adding its own offset, a weekday column that does
    nothing, x4 given as named bins only, gaps, a batch id, the target in the middle."""
    rng = np.random.default_rng(5)
    X, y = datasets.make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
    n = len(y)
    sites = np.array(["north", "south", "east", "west", "harbour"], dtype=object)
    site = rng.integers(0, len(sites), n)
    y = y + np.array([0.0, 2.0, -2.0, 4.0, -4.0])[site]
    cols = {"batch": ids("B", n, rng, 6), "site": sites[site],
            "weekday": np.array(["mon", "tue", "wed", "thu", "fri"], dtype=object)[rng.integers(0, 5, n)]}
    for j in range(5):
        cols[f"x{j + 1}"] = bins(X[:, j], ["very low", "low", "mid", "high", "very high"]) if j == 3 else text(X[:, j], 5)
    cols["yield"] = text(y, 6)
    for j in range(5, 10):
        cols[f"x{j + 1}"] = text(X[:, j], 5)
    frame = pd.DataFrame(cols)
    return "friedman1", with_gaps(frame, ["x1", "x2", "x4", "x5", "x7", "site"], 0.10, rng), "yield", "regression"


def churn():
    """A customer table, mostly categories: make_classification's informative columns turned
    into a plan, a region among 12, a contract length, a payment method; 20% churners."""
    rng = np.random.default_rng(6)
    X, y = datasets.make_classification(n_samples=1500, n_features=8, n_informative=6, n_redundant=0,
                                        weights=[0.8, 0.2], flip_y=0.03, random_state=6)
    n = len(y)
    regions = [f"region {k:02d}" for k in range(12)]
    cols = {"customer": ids("C", n, rng, 6), "name": names(n, rng),
            "plan": bins(X[:, 0], ["basic", "standard", "plus", "premium"]),
            "contract": bins(X[:, 1], ["monthly", "yearly", "two-year"]),
            "region": np.array(regions, dtype=object)[np.clip(((X[:, 2] + 3) * 2).astype(int), 0, 11)],
            "payment": bins(X[:, 3], ["card", "transfer", "cash"]),
            "churned": np.where(y == 1, "yes", "no").astype(object),
            "tenure months": text(np.round(np.clip(24 + 10 * X[:, 4], 0, None))),
            "monthly charges": text(np.round(60 + 15 * X[:, 5], 2)),
            "support calls": text(np.clip(np.round(2 + X[:, 6]), 0, None)),
            "satisfaction": text(np.round(X[:, 7], 3))}
    frame = pd.DataFrame(cols)
    gaps = ["plan", "payment", "tenure months", "monthly charges", "region"]
    return "churn", with_gaps(frame, gaps, 0.10, rng), "churned", "classification"


TABLES = [breast_cancer, wine, iris, churn, diabetes, friedman]


# ---------------------------------------------------------------------------------------------

def id_like(frame, column):
    """The CLI's rule (src/data/columns.rs): a text column with a distinct value in 90% or more
    of its (at least 20) present cells names or identifies rows."""
    present = frame[column].dropna()
    return is_text(frame, column) and len(present) >= 20 and present.nunique() >= 0.9 * len(present)


def is_text(frame, column):
    """pandas' inference: a column with any cell that is not a number (pandas 3 gives such a
    column its `str` dtype, earlier versions `object`)."""
    return not pd.api.types.is_numeric_dtype(frame[column])


def read(path):
    """A CSV as pandas reads it ("?" added to its missing-value markers); text columns as
    `object` with NaN gaps, which every scikit-learn version takes."""
    frame = pd.read_csv(path, na_values=["?"], keep_default_na=True)
    for c in frame.columns:
        if is_text(frame, c):
            frame[c] = frame[c].astype(object).where(frame[c].notna(), np.nan)
    return frame


def sklearn_peer(train_path, test_path, label, task):
    train, test = read(train_path), read(test_path)
    features = [c for c in train.columns if c != label and not id_like(train, c)]
    categorical = [c for c in features if is_text(train, c)]
    numeric = [c for c in features if c not in categorical]
    prep = ColumnTransformer([
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
         categorical)])
    if task == "classification":
        model = make_pipeline(prep, MLPClassifier(random_state=0))
    else:
        model = make_pipeline(prep, TransformedTargetRegressor(MLPRegressor(random_state=0), transformer=StandardScaler()))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train[features], train[label])
        predicted = model.predict(test[features])
    seconds = time.perf_counter() - start
    converge = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return score(test[label].to_numpy(), predicted, task), seconds, converge


def score(truth, predicted, task):
    if task == "classification":
        return float(np.mean(np.asarray(truth).astype(str) == np.asarray(predicted).astype(str)))
    truth, predicted = np.asarray(truth, float), np.asarray(predicted, float)
    return float(1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean()) ** 2))


def cli(binary, args, retries=5):
    """Runs the CLI; waits a minute and retries while the binary is missing or being rebuilt."""
    for attempt in range(retries + 1):
        try:
            out = subprocess.run([binary] + args, capture_output=True, text=True)
        except OSError as e:  # missing, or text file busy while cargo writes it
            if attempt == retries:
                raise
            print(f"  ({binary}: {e}; retrying in 60 s)", file=sys.stderr, flush=True)
            time.sleep(60)
            continue
        return out


def snapshot(binary, root, retries=5):
    """A private copy of the binary, so that a rebuild during the run cannot mix two versions."""
    copy = os.path.join(root, "wgpu-mlp")
    for attempt in range(retries + 1):
        try:
            shutil.copy2(binary, copy)
            if subprocess.run([copy, "--version"], capture_output=True).returncode == 0:
                return copy
        except OSError as e:
            if attempt == retries:
                raise
            print(f"  ({binary}: {e}; retrying in 60 s)", file=sys.stderr, flush=True)
        time.sleep(60)
    raise SystemExit(f"{binary} does not run")


FAILED = ("fit exit", "predict exit", "predict printed")


def wgpu_mlp(binary, folder, label, task, extra=()):
    model = os.path.join(folder, "model.safetensors")
    train, test = os.path.join(folder, "train.csv"), os.path.join(folder, "test.csv")
    regression = ["--regression"] if task == "regression" else []
    start = time.perf_counter()
    fit = cli(binary, ["fit", train, "--label", label, *regression, "-q", "-o", model, *extra])
    messages = fit.stderr.strip()
    if fit.returncode != 0:
        return float("nan"), time.perf_counter() - start, f"fit exit {fit.returncode}: {messages}"
    pred = cli(binary, ["predict", model, test])
    seconds = time.perf_counter() - start
    messages = "\n".join(m for m in [messages, pred.stderr.strip()] if m)
    if pred.returncode != 0:
        return float("nan"), seconds, f"predict exit {pred.returncode}: {messages}"
    out = pd.read_csv(io.StringIO(pred.stdout), keep_default_na=False)
    column = "class" if task == "classification" else label
    if column not in out.columns:
        return float("nan"), seconds, f"predict printed no {column!r} column: {list(out.columns)}\n{messages}"
    truth = read(test)[label].to_numpy()
    if len(out) != len(truth):
        return float("nan"), seconds, f"predict printed {len(out)} rows for {len(truth)}\n{messages}"
    return score(truth, out[column].to_numpy(), task), seconds, messages


def main():
    parser = argparse.ArgumentParser(description="wgpu-mlp's defaults against a scikit-learn pipeline on real-looking tables")
    parser.add_argument("--bin", default="target/release/wgpu-mlp")
    parser.add_argument("--keep", help="write the tables to this folder and keep them")
    parser.add_argument("--splits", type=int, default=1, help="80/20 splits (seeds 0..N-1); the table shows seed 0")
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="compare_tables_")
    os.makedirs(root, exist_ok=True)
    binary = snapshot(os.path.abspath(args.bin), root)

    version = cli(binary, ["--version"]).stdout.strip()
    info = cli(binary, ["info"]).stdout
    adapter = next((l[2:].strip() for l in info.splitlines() if l.startswith("* ")), info.strip())
    print(f"{version}; adapter: {adapter}")
    print(f"scikit-learn {sklearn.__version__}, pandas {pd.__version__}, numpy {np.__version__}, "
          f"Python {sys.version.split()[0]}")
    print(flush=True)

    rows, notes = [], {}
    total_warnings = 0
    for build in TABLES:
        name, frame, label, task = build()
        runs = []
        for split in range(args.splits):
            folder = os.path.join(root, name if split == 0 else f"{name}_split{split}")
            os.makedirs(folder, exist_ok=True)
            stratify = frame[label] if task == "classification" else None
            train, test = train_test_split(frame, test_size=0.2, stratify=stratify, random_state=split)
            train_path, test_path = os.path.join(folder, "train.csv"), os.path.join(folder, "test.csv")
            train.to_csv(train_path, index=False)
            test.to_csv(test_path, index=False)
            ours, ours_s, messages = wgpu_mlp(binary, folder, label, task)
            if messages and split == 0:
                notes[name] = messages
            theirs, theirs_s, conv = sklearn_peer(train_path, test_path, label, task)
            total_warnings += conv
            runs.append((ours, theirs, ours_s, theirs_s, conv))
            print(f"{name} split {split}: wgpu-mlp {ours:.4f} [{ours_s:.1f} s], scikit-learn {theirs:.4f} "
                  f"[{theirs_s:.2f} s, {conv} ConvergenceWarning]" + (f"  <- {messages.splitlines()[0]}"
                                                                       if messages.startswith(FAILED) else ""), flush=True)

        seen = read(os.path.join(root, name, "train.csv"))
        dropped = [c for c in seen.columns if c != label and id_like(seen, c)]
        features = [c for c in seen.columns if c != label and c not in dropped]
        n_cat = sum(is_text(seen, c) for c in features)
        missing = int(sum(read(os.path.join(root, name, f))[features].isna().sum().sum() for f in ["train.csv", "test.csv"]))
        metric = "accuracy" if task == "classification" else "R²"
        kind = f"{frame[label].nunique()} classes" if task == "classification" else "regression"
        rows.append(dict(name=name, n=len(frame), n_test=len(test), cols=f"{len(features) - n_cat}/{n_cat}/{missing}",
                         task=f"{kind} ({metric})", label=label, dropped=dropped, runs=runs))

    print()
    many = args.splits > 1
    print("| data set | rows (test) | columns num/cat, missing cells | task | wgpu-mlp | scikit-learn | difference | "
          "wgpu-mlp s (fit+predict) | scikit-learn s |" + (f" mean difference over {args.splits} splits (min, max) |" if many else ""))
    print("|---|---|---|---|---|---|---|---|---|" + ("---|" if many else ""))
    for r in rows:
        ours, theirs, ours_s, theirs_s, conv = r["runs"][0]
        line = (f"| {r['name']} | {r['n']} ({r['n_test']}) | {r['cols'].rsplit('/', 1)[0]}, {r['cols'].rsplit('/', 1)[1]} | "
                f"{r['task']} | {ours:.4f} | {theirs:.4f} | {ours - theirs:+.4f} | {ours_s:.1f} | {theirs_s:.2f} |")
        if many:
            d = np.array([o - t for o, t, *_ in r["runs"]])
            line += f" {d.mean():+.4f} ({d.min():+.4f}, {d.max():+.4f}) |"
        print(line)
    print()
    print("labels: " + "; ".join(f"{r['name']}: {r['label']}" for r in rows))
    print("id-like columns dropped (both sides): " + "; ".join(f"{r['name']}: {', '.join(r['dropped'])}" for r in rows))
    print(f"scikit-learn ConvergenceWarnings (max_iter=200 reached), suppressed: {total_warnings} "
          f"in {len(rows) * args.splits} fits")
    if notes:
        print("\nwgpu-mlp's messages on stderr (split 0):")
        for name, messages in notes.items():
            print(f"  {name}:\n    " + messages.replace("\n", "\n    "))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"\ntables kept in {root}")


if __name__ == "__main__":
    main()
