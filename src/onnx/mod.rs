//! A fitted model as an ONNX model (opset 17, with ONNX-ML's `LabelEncoder` for categories and
//! class names), for ONNX Runtime and whatever reads ONNX: the whole pipeline — the columns'
//! imputation, scaling and one-hot encoding, the network, and the head (class probabilities,
//! class index and name; or a regression's value in its own units).
//!
//! Inputs: a table with a categorical column takes one input per column, named as the column,
//! `float` [N, 1] for numbers (NaN for a missing value) and `string` [N, 1] for categories
//! (empty, `NA`, `N/A`, `NaN`, `nan`, `null` or `?` for a missing one); an all-numeric model
//! takes one `float` [N, features] input named `input`. Outputs: `label` (string class name),
//! `label_index` (int64) and `probabilities` (float [N, classes]) for a classifier;
//! `variable` (float [N, outputs]) for a regression. The batch dimension is dynamic.

mod graph;
/// ONNX's message types, generated from its `onnx-ml.proto` by prost-build: read an exported
/// model back with `prost::Message::decode`.
#[allow(clippy::all)]
pub mod proto;

use graph::{Attr, Graph, value_info};
use proto::tensor_proto::DataType;
use proto::{ModelProto, OperatorSetIdProto, StringStringEntryProto};

use crate::data::{ColumnStep, FeatureKind, Task};
use crate::error::{Error, Result};
use crate::ops::{Activation, OutputLink};
use crate::train::Model;

/// The ONNX opset of the default domain, and ONNX-ML's.
const OPSET: i64 = 17;
const ML_OPSET: i64 = 3;
/// The IR version of ONNX 1.12 (opset 17).
const IR_VERSION: i64 = 8;

fn refuse(what: impl Into<String>) -> Error {
    Error::invalid("Model::to_onnx", "model", "a pipeline ONNX can express", what.into())
}

impl Model {
    /// Writes the fitted pipeline as an ONNX model to `path` (atomically): see
    /// [the module docs](self) for its inputs and outputs.
    ///
    /// ```no_run
    /// # fn demo(gpu: &wgpu_mlp::Gpu) -> wgpu_mlp::Result<()> {
    /// let model = wgpu_mlp::Model::load(gpu, "digits.safetensors")?;
    /// model.to_onnx("digits.onnx")?; // onnxruntime.InferenceSession("digits.onnx")
    /// # Ok(()) }
    /// ```
    pub fn to_onnx(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        crate::checkpoint::write_atomically(path.as_ref(), &self.to_onnx_bytes()?)
    }

    /// The ONNX model's bytes (see [`Model::to_onnx`]).
    pub fn to_onnx_bytes(&self) -> Result<Vec<u8>> {
        use prost::Message;
        Ok(onnx_model(self)?.encode_to_vec())
    }
}

/// The model as an ONNX `ModelProto`.
fn onnx_model(model: &Model) -> Result<ModelProto> {
    let mut g = Graph::default();
    g.proto.name = Some("wgpu-mlp".into());
    let features = preprocessing(model, &mut g)?;
    let logits = network(model, &mut g, &features)?;
    head(model, &mut g, &logits)?;
    let schema = model.schema();
    let mut metadata = vec![("task", format!("{:?}", schema.task).to_lowercase())];
    if let Some(names) = model.class_names() {
        metadata.push(("class_names", serde_json::to_string(names).unwrap_or_default()));
    }
    if let Some(names) = &schema.feature_names {
        metadata.push(("feature_names", serde_json::to_string(names).unwrap_or_default()));
    }
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![
            OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            },
            OperatorSetIdProto {
                domain: Some("ai.onnx.ml".into()),
                version: Some(ML_OPSET),
            },
        ],
        producer_name: Some("wgpu-mlp".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(g.proto),
        metadata_props: metadata
            .into_iter()
            .map(|(k, v)| StringStringEntryProto {
                key: Some(k.into()),
                value: Some(v),
            })
            .collect(),
        ..Default::default()
    })
}

/// The graph inputs and the preprocessing: the network's input, [N, inputs].
fn preprocessing(model: &Model, g: &mut Graph) -> Result<String> {
    let schema = model.schema();
    let n = model.n_features();
    let kinds: Vec<FeatureKind> = match schema.feature_kinds.len() == n {
        true => schema.feature_kinds.clone(),
        false => vec![FeatureKind::Numeric; n],
    };
    let all_numeric = kinds.iter().all(|k| *k == FeatureKind::Numeric);
    let Some(preprocessor) = model.preprocessor() else {
        g.proto
            .input
            .push(value_info("input", DataType::Float, &[None, Some(n as i64)]));
        return Ok(match model.scaler() {
            Some(scaler) => {
                let shift = g.floats("shift", &[n as i64], scaler.shift());
                let scale = g.floats("scale", &[n as i64], scaler.scale());
                let centred = g.op("Sub", &["input", &shift], vec![]);
                g.op("Mul", &[&centred, &scale], vec![])
            }
            None => "input".into(),
        });
    };
    let names: Vec<String> = match &schema.feature_names {
        Some(names) if !all_numeric => names.clone(),
        _ => (0..n).map(|j| format!("column_{}", j + 1)).collect(),
    };
    if all_numeric {
        g.proto
            .input
            .push(value_info("input", DataType::Float, &[None, Some(n as i64)]));
    }
    let mut blocks = Vec::new();
    for (j, (step, kind)) in preprocessor.columns.iter().zip(&kinds).enumerate() {
        let column = match all_numeric {
            true => {
                let index = g.ints("column", &[1], &[j as i64]);
                g.op("Gather", &["input", &index], vec![("axis", Attr::Int(1))])
            }
            false => {
                let element = if *kind == FeatureKind::Numeric {
                    DataType::Float
                } else {
                    DataType::String
                };
                g.proto.input.push(value_info(&names[j], element, &[None, Some(1)]));
                names[j].clone()
            }
        };
        match (step, kind) {
            (ColumnStep::Numeric { .. }, FeatureKind::Numeric) => numeric_column(g, step, &column, &mut blocks),
            (ColumnStep::Categorical { .. }, FeatureKind::Categorical(values)) => {
                categorical_column(g, step, values, &column, schema.na_values.as_deref(), &mut blocks)
            }
            _ => {
                return Err(refuse(format!(
                    "column {} has a step of another kind than its data",
                    j + 1
                )));
            }
        }
    }
    Ok(g.op(
        "Concat",
        &blocks.iter().map(String::as_str).collect::<Vec<_>>(),
        vec![("axis", Attr::Int(1))],
    ))
}

/// A numeric column [N, 1]: missing filled, then `(x − shift) · scale`; its indicator.
fn numeric_column(g: &mut Graph, step: &ColumnStep, x: &str, blocks: &mut Vec<String>) {
    let ColumnStep::Numeric {
        fill,
        shift,
        scale,
        indicator,
    } = *step
    else {
        return;
    };
    let missing = g.op("IsNaN", &[x], vec![]);
    let fill = g.floats("fill", &[1], &[fill]);
    let filled = g.op("Where", &[&missing, &fill, x], vec![]);
    let shift = g.floats("shift", &[1], &[shift]);
    let scale = g.floats("scale", &[1], &[scale]);
    let centred = g.op("Sub", &[&filled, &shift], vec![]);
    blocks.push(g.op("Mul", &[&centred, &scale], vec![]));
    if indicator {
        blocks.push(g.op("Cast", &[&missing], vec![("to", Attr::Int(DataType::Float as i64))]));
    }
}

/// A categorical column of strings [N, 1]: each category to its one-hot column (missing to
/// the fill's, unseen to none) through a `LabelEncoder`, then compared with 0..width.
fn categorical_column(
    g: &mut Graph,
    step: &ColumnStep,
    values: &[String],
    x: &str,
    na_values: Option<&[String]>,
    blocks: &mut Vec<String>,
) {
    // The model's missing markers (the training file's `--na-values`), else the defaults.
    let markers: Vec<&str> = match na_values {
        Some(given) => std::iter::once("").chain(given.iter().map(String::as_str)).collect(),
        None => crate::data::MISSING.to_vec(), // the CSV reader's defaults
    };
    let ColumnStep::Categorical {
        slots,
        infrequent,
        fill,
        indicator,
    } = step
    else {
        return;
    };
    let slot_of = |code: u32| match slots.iter().position(|&s| s == code) {
        Some(i) => i as i64,
        None if infrequent.contains(&code) => slots.len() as i64,
        None => -1,
    };
    let mut keys: Vec<String> = values.to_vec();
    let mut slot: Vec<i64> = (0..values.len()).map(|c| slot_of(c as u32)).collect();
    for marker in markers.iter().filter(|m| !values.iter().any(|v| v == *m)) {
        keys.push(marker.to_string());
        slot.push(slot_of(*fill));
    }
    let index = g.ml(
        "LabelEncoder",
        &[x],
        vec![
            ("keys_strings", Attr::Strings(keys.clone())),
            ("values_int64s", Attr::Ints(slot)),
            ("default_int64", Attr::Int(-1)),
        ],
    );
    let width = slots.len() + usize::from(!infrequent.is_empty());
    let range = g.ints("slots", &[1, width as i64], &(0..width as i64).collect::<Vec<_>>());
    let hot = g.op("Equal", &[&index, &range], vec![]);
    blocks.push(g.op("Cast", &[&hot], vec![("to", Attr::Int(DataType::Float as i64))]));
    if *indicator {
        let flags: Vec<i64> = keys.iter().map(|k| i64::from(markers.contains(&k.as_str()))).collect();
        let missing = g.ml(
            "LabelEncoder",
            &[x],
            vec![
                ("keys_strings", Attr::Strings(keys)),
                ("values_int64s", Attr::Ints(flags)),
                ("default_int64", Attr::Int(0)),
            ],
        );
        blocks.push(g.op("Cast", &[&missing], vec![("to", Attr::Int(DataType::Float as i64))]));
    }
}

/// The layers: `act(h · W + b)`, the hidden activation between them, the output one last.
fn network(model: &Model, g: &mut Graph, input: &str) -> Result<String> {
    let mlp = model.mlp();
    let sizes = mlp.sizes().to_vec();
    let (hidden, output) = mlp.activations();
    let mut h = input.to_string();
    for (l, layer) in mlp.parameters()?.iter().enumerate() {
        let (fan_in, fan_out) = (sizes[l] as i64, sizes[l + 1] as i64);
        let w = g.floats(&format!("layers.{l}.weight"), &[fan_in, fan_out], &layer.weights);
        let b = g.floats(&format!("layers.{l}.bias"), &[fan_out], &layer.bias);
        let product = g.op("MatMul", &[&h, &w], vec![]);
        let z = g.op("Add", &[&product, &b], vec![]);
        let activation = if l + 2 == sizes.len() { output } else { hidden };
        h = activate(g, activation, &z);
    }
    Ok(h)
}

/// `activation` of `x`; GELU in its tanh approximation, written x σ(2u) as the kernels do.
fn activate(g: &mut Graph, activation: Activation, x: &str) -> String {
    match activation {
        Activation::Identity => x.to_string(),
        Activation::Sigmoid => g.op("Sigmoid", &[x], vec![]),
        Activation::Relu => g.op("Relu", &[x], vec![]),
        Activation::Tanh => g.op("Tanh", &[x], vec![]),
        Activation::Gelu => {
            // 0.5 x (1 + tanh u) = x σ(2u), u = √(2/π) (x + 0.044715 x³), as the kernels
            let square = g.op("Mul", &[x, x], vec![]);
            let cube = g.op("Mul", &[&square, x], vec![]);
            let k = g.floats("gelu_k", &[1], &[0.044715]);
            let scaled_cube = g.op("Mul", &[&cube, &k], vec![]);
            let inner = g.op("Add", &[x, &scaled_cube], vec![]);
            let c = g.floats("gelu_2c", &[1], &[2.0 * (2.0f64 / std::f64::consts::PI).sqrt() as f32]);
            let two_u = g.op("Mul", &[&inner, &c], vec![]);
            let s = g.op("Sigmoid", &[&two_u], vec![]);
            g.op("Mul", &[x, &s], vec![])
        }
        Activation::Silu => {
            let s = g.op("Sigmoid", &[x], vec![]);
            g.op("Mul", &[x, &s], vec![])
        }
        // max(x, 0.01 x): x above 0, 0.01 x below, as the kernels
        Activation::LeakyRelu => {
            let slope = g.floats("leaky_relu_slope", &[1], &[crate::ops::LEAKY_RELU_SLOPE as f32]);
            let scaled = g.op("Mul", &[x, &slope], vec![]);
            g.op("Max", &[x, &scaled], vec![])
        }
    }
}

/// The outputs: class probabilities, index and name; or the regression's values.
fn head(model: &Model, g: &mut Graph, y: &str) -> Result<()> {
    let width = model.n_outputs() as i64;
    if model.task() == Task::Regression {
        match model.target_scaler() {
            Some(target) => {
                let scale = g.floats("target_scale", &[width], target.scale());
                let shift = g.floats("target_shift", &[width], target.shift());
                let unscaled = g.op("Div", &[y, &scale], vec![]);
                g.op_into("Add", "", &[&unscaled, &shift], vec![], "variable");
            }
            None => g.op_into("Identity", "", &[y], vec![], "variable"),
        }
        g.proto
            .output
            .push(value_info("variable", DataType::Float, &[None, Some(width)]));
        return Ok(());
    }
    match model.mlp().loss_function().link() {
        OutputLink::Softmax => g.op_into("Softmax", "", &[y], vec![("axis", Attr::Int(1))], "probabilities"),
        OutputLink::Sigmoid => g.op_into("Sigmoid", "", &[y], vec![], "probabilities"),
        OutputLink::Identity => g.op_into("Identity", "", &[y], vec![], "probabilities"),
    }
    g.op_into(
        "ArgMax",
        "",
        &[y],
        vec![
            ("axis", Attr::Int(1)),
            ("keepdims", Attr::Int(0)),
            ("select_last_index", Attr::Int(0)),
        ],
        "label_index",
    );
    let names: Vec<String> = match model.class_names() {
        Some(names) => names.to_vec(),
        None => (0..width).map(|c| c.to_string()).collect(),
    };
    g.op_into(
        "LabelEncoder",
        "ai.onnx.ml",
        &["label_index"],
        vec![
            ("keys_int64s", Attr::Ints((0..width).collect())),
            ("values_strings", Attr::Strings(names)),
            ("default_string", Attr::String(String::new())),
        ],
        "label",
    );
    g.proto.output.push(value_info("label", DataType::String, &[None]));
    g.proto.output.push(value_info("label_index", DataType::Int64, &[None]));
    g.proto
        .output
        .push(value_info("probabilities", DataType::Float, &[None, Some(width)]));
    Ok(())
}
