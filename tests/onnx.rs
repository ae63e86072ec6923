//! ONNX export: models fitted by the command line (a mixed table with text, gaps and an id, a
//! regression with its target scaled, an all-numeric headerless file, GELU, tanh, SiLU and
//! LeakyReLU layers) exported with `wgpu-mlp export`, read back and checked structurally here, then run in ONNX
//! Runtime (tests/onnx/compare.py) against `wgpu-mlp predict` on the same rows: probabilities
//! and values within 1e-5, identical classes.
//!
//! ONNX Runtime comes from PyPI: `WGPU_MLP_PYTHON` names a Python that has `onnxruntime` and
//! `onnx`; otherwise a virtual environment is made once under target/onnx-venv (`pip install
//! onnxruntime onnx numpy`, which needs the network). Without either the test fails saying so.

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use rand::{Rng, SeedableRng};
use wgpu_mlp::onnx::proto::ModelProto;

fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(args)
        .output()
        .expect("wgpu-mlp runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "wgpu-mlp {args:?} failed: {stderr}");
    stdout.into_owned()
}

/// A Python with onnxruntime: `WGPU_MLP_PYTHON`, else a virtual environment made once.
fn python() -> PathBuf {
    // One test makes the environment; the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(python) = std::env::var_os("WGPU_MLP_PYTHON") {
        return python.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("onnx-venv");
    let python = venv.join("bin").join("python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import onnxruntime, onnx, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&python) {
        let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
        assert!(
            made.is_ok_and(|s| s.success()),
            "python3 -m venv {} failed: install python3 (and python3-venv)",
            venv.display()
        );
        let pip = Command::new(venv.join("bin").join("pip"))
            .args(["install", "-q", "onnxruntime", "onnx", "numpy"])
            .status();
        assert!(
            pip.is_ok_and(|s| s.success()) && ready(&python),
            "pip install onnxruntime onnx numpy into {} failed (no network?): set WGPU_MLP_PYTHON to a Python that has them",
            venv.display()
        );
    }
    python
}

fn compare(dir: &Path, onnx: &Path, rows: &Path, predictions: &str, header: bool) {
    let expected = dir.join("expected.csv");
    std::fs::write(&expected, predictions).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("onnx")
        .join("compare.py");
    let mut command = Command::new(python());
    command.arg(script).arg(onnx).arg(rows).arg(&expected);
    if !header {
        command.arg("--no-header");
    }
    let out = command.output().expect("python runs");
    assert!(
        out.status.success(),
        "ONNX Runtime disagrees with wgpu-mlp: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Reads an exported model back: opset, inputs, outputs, and every node's operator known.
fn check_structure(onnx: &Path, inputs: &[&str], outputs: &[&str]) {
    let model = ModelProto::decode(std::fs::read(onnx).unwrap().as_slice()).expect("a ModelProto");
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.as_deref().unwrap_or("").is_empty())
        .unwrap();
    assert!(opset.version.unwrap() >= 17);
    let graph = model.graph.unwrap();
    let names =
        |v: &[wgpu_mlp::onnx::proto::ValueInfoProto]| v.iter().map(|i| i.name.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!(names(&graph.input), inputs);
    assert_eq!(names(&graph.output), outputs);
    let known = [
        "Gather",
        "IsNaN",
        "Where",
        "Sub",
        "Mul",
        "Concat",
        "LabelEncoder",
        "Equal",
        "Cast",
        "MatMul",
        "Add",
        "Relu",
        "Tanh",
        "Sigmoid",
        "Softmax",
        "ArgMax",
        "Div",
        "Identity",
    ];
    for node in &graph.node {
        assert!(known.contains(&node.op_type.as_deref().unwrap()), "{:?}", node.op_type);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-onnx-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A table with an id, text categories, gaps, the label in the middle (classes) or first
/// (a target around 1000).
fn table(regression: bool) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut text = String::from("id,colour,size,label,weight,grade\n");
    if regression {
        text = String::from("price,id,colour,size,weight,grade\n");
    }
    for i in 0..300 {
        let colour = ["red", "green", "blue", "violet"][rng.random_range(0..4)];
        let size: f32 = rng.random_range(0.0..10.0);
        let weight: f32 = rng.random_range(-3.0..3.0);
        let grade = ["A", "B", "", "NA"][rng.random_range(0..4)];
        let size_cell = if rng.random_range(0..10) == 0 {
            String::new()
        } else {
            format!("{size:.2}")
        };
        let score = size - 4.0 * weight.abs() + if colour == "red" { 3.0 } else { 0.0 };
        match regression {
            false => {
                let label = if score > 2.0 {
                    "high"
                } else if score > -4.0 {
                    "mid"
                } else {
                    "low"
                };
                text += &format!("P{i:05},{colour},{size_cell},{label},{weight:.3},{grade}\n");
            }
            true => {
                text += &format!(
                    "{:.2},P{i:05},{colour},{size_cell},{weight:.3},{grade}\n",
                    1000.0 + 30.0 * score
                )
            }
        }
    }
    text
}

#[test]
fn a_mixed_table_classifier_runs_the_same_in_onnx_runtime() {
    let dir = temp_dir("mixed");
    let data = dir.join("table.csv");
    std::fs::write(&data, table(false)).unwrap();
    let (model, onnx) = (dir.join("m.safetensors"), dir.join("m.onnx"));
    let (d, m, o) = (data.to_str().unwrap(), model.to_str().unwrap(), onnx.to_str().unwrap());
    cli(&[
        "fit",
        d,
        "--label",
        "label",
        "--epochs",
        "40",
        "--folds",
        "2",
        "--activation",
        "gelu",
        "--add-indicator",
        "-q",
        "-o",
        m,
    ]);
    cli(&["export", m, "--onnx", o]);
    check_structure(
        &onnx,
        &["colour", "size", "weight", "grade"],
        &["label", "label_index", "probabilities"],
    );
    compare(&dir, &onnx, &data, &cli(&["predict", m, d, "--proba"]), true);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_regression_runs_the_same_in_onnx_runtime() {
    let dir = temp_dir("regression");
    let data = dir.join("table.csv");
    std::fs::write(&data, table(true)).unwrap();
    let (model, onnx) = (dir.join("r.safetensors"), dir.join("r.onnx"));
    let (d, m, o) = (data.to_str().unwrap(), model.to_str().unwrap(), onnx.to_str().unwrap());
    cli(&[
        "fit",
        d,
        "--label",
        "price",
        "--regression",
        "--epochs",
        "40",
        "--folds",
        "2",
        "--activation",
        "tanh",
        "-q",
        "-o",
        m,
    ]);
    cli(&["export", m, "--onnx", o]);
    check_structure(&onnx, &["colour", "size", "weight", "grade"], &["variable"]);
    compare(&dir, &onnx, &data, &cli(&["predict", m, d]), true);
    std::fs::remove_dir_all(&dir).ok();
}

/// SiLU (Sigmoid then Mul) and LeakyReLU (max(x, 0.01 x)) as exported.
#[test]
fn silu_and_leaky_relu_layers_run_the_same_in_onnx_runtime() {
    for activation in ["silu", "leaky_relu"] {
        let dir = temp_dir(activation);
        let data = dir.join("table.csv");
        std::fs::write(&data, table(true)).unwrap();
        let (model, onnx) = (dir.join("r.safetensors"), dir.join("r.onnx"));
        let (d, m, o) = (data.to_str().unwrap(), model.to_str().unwrap(), onnx.to_str().unwrap());
        let args = [
            "fit",
            d,
            "--label",
            "price",
            "--regression",
            "--epochs",
            "20",
            "--folds",
            "2",
        ];
        cli(&[&args[..], &["--activation", activation, "-q", "-o", m]].concat());
        cli(&["export", m, "--onnx", o]);
        compare(&dir, &onnx, &data, &cli(&["predict", m, d]), true);
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn an_all_numeric_headerless_model_runs_the_same_in_onnx_runtime() {
    let dir = temp_dir("numeric");
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut text = String::new();
    for _ in 0..300 {
        let x: Vec<f32> = (0..5).map(|_| rng.random_range(-2.0..2.0)).collect();
        let class = usize::from(x[0] + x[1] > 0.0) + usize::from(x[2] > 1.0);
        text += &format!("{:.3},{:.3},{:.3},{:.3},{:.3},{class}\n", x[0], x[1], x[2], x[3], x[4]);
    }
    let data = dir.join("numeric.csv");
    std::fs::write(&data, text).unwrap();
    let (model, onnx) = (dir.join("n.safetensors"), dir.join("n.onnx"));
    let (d, m, o) = (data.to_str().unwrap(), model.to_str().unwrap(), onnx.to_str().unwrap());
    cli(&[
        "fit",
        d,
        "--epochs",
        "40",
        "--folds",
        "2",
        "--activation",
        "sigmoid",
        "-q",
        "-o",
        m,
    ]);
    cli(&["export", m, "--onnx", o]);
    check_structure(&onnx, &["input"], &["label", "label_index", "probabilities"]);
    compare(&dir, &onnx, &data, &cli(&["predict", m, d, "--proba"]), false);
    std::fs::remove_dir_all(&dir).ok();
}
