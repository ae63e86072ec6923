"""Runs an exported ONNX model in ONNX Runtime on rows of a CSV file and compares it with
`wgpu-mlp predict` on the same rows.

usage: compare.py MODEL.onnx ROWS.csv PREDICTIONS.csv [--no-header]

ROWS.csv holds the model's columns (by header name; without a header, the features first);
PREDICTIONS.csv is `wgpu-mlp predict --proba` (a classifier: class, p_*) or `predict` (a
regression: one column per output). Exits 1 with the first disagreement: probabilities or
values beyond 1e-5 absolute (relative for values above 1), or a different class."""
import csv
import json
import math
import sys

import numpy as np
import onnx
import onnxruntime as ort

MISSING = {"", "NA", "N/A", "NaN", "nan", "null", "?"}


def number(cell):
    return math.nan if cell.strip() in MISSING else float(cell)


def main():
    model_path, rows_path, predictions_path = sys.argv[1:4]
    header = "--no-header" not in sys.argv
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    with open(rows_path, newline="") as f:
        rows = list(csv.reader(f))
    names = rows.pop(0) if header else None
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feeds = {}
    for spec in session.get_inputs():
        if spec.name == "input":
            width = spec.shape[1]
            wanted = json.loads(meta["feature_names"]) if "feature_names" in meta and names else None
            columns = [names.index(n) for n in wanted] if wanted else list(range(width))
            feeds["input"] = np.array([[number(r[c]) for c in columns] for r in rows], dtype=np.float32)
        else:
            c = names.index(spec.name)
            if spec.type == "tensor(string)":
                feeds[spec.name] = np.array([[r[c].strip()] for r in rows], dtype=object)
            else:
                feeds[spec.name] = np.array([[number(r[c])] for r in rows], dtype=np.float32)
    outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    with open(predictions_path, newline="") as f:
        predicted = list(csv.reader(f))
    head, predicted = predicted[0], predicted[1:]
    assert len(predicted) == len(rows), f"{len(predicted)} predictions for {len(rows)} rows"
    worst = 0.0
    for i, row in enumerate(predicted):
        if "label" in outputs:
            label = outputs["label"][i]
            label = label.decode() if isinstance(label, bytes) else str(label)
            if label != row[0]:
                sys.exit(f"row {i + 1}: ONNX says class {label!r}, wgpu-mlp {row[0]!r}")
            want = [float(v) for v in row[1:]]
            got = outputs["probabilities"][i]
        else:
            want = [float(v) for v in row]
            got = outputs["variable"][i]
        for g, w in zip(got, want):
            gap = abs(float(g) - w) / max(1.0, abs(w))
            worst = max(worst, gap)
            if gap > 1e-5:
                sys.exit(f"row {i + 1}: ONNX {float(g)!r}, wgpu-mlp {w!r} ({head})")
    print(f"{len(rows)} rows agree; largest difference {worst:.2e}")


main()
