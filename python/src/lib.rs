//! `wgpu_mlp._core`: the thin native layer under the Python package. Every function here
//! turns Python values into the public Rust API's types, calls it with the GIL released, and
//! turns the result (or the error, as the Python exception of the right type) back. The
//! scikit-learn estimators themselves live in Python (`wgpu_mlp/_estimators.py`).
#![warn(clippy::too_many_lines)]

mod config;
mod model;
mod search;

use std::sync::OnceLock;

use numpy::{PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use wgpu_mlp::{Dataset, Error, Gpu, GpuDataset};

pyo3::create_exception!(
    _core,
    TrainingError,
    PyRuntimeError,
    "Training failed: the loss diverged to NaN/inf or stopped moving (lower the learning rate)."
);

/// The process's device, created on first use (each process picks its own adapter: a model
/// unpickled elsewhere lands on whatever device that process has).
fn gpu() -> PyResult<Gpu> {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string()))
        .clone()
        .map_err(|message| PyRuntimeError::new_err(format!("no GPU adapter for wgpu_mlp: {message}")))
}

/// A Rust error as the Python exception of its kind, with the Rust message.
pub(crate) fn to_py(error: Error) -> PyErr {
    let message = error.to_string();
    match error {
        Error::Shape { .. }
        | Error::InvalidArgument { .. }
        | Error::TooLarge { .. }
        | Error::Data { .. }
        | Error::Checkpoint { .. } => PyValueError::new_err(message),
        Error::Io { .. } => PyOSError::new_err(message),
        Error::Diverged { .. } | Error::Stalled { .. } => TrainingError::new_err(message),
        _ => PyRuntimeError::new_err(message),
    }
}

/// Rows (N,F) as the library's row-major features; refuses a non-contiguous array (the
/// Python layer passes C-contiguous float32).
fn features(x: &PyReadonlyArray2<f32>) -> PyResult<(Vec<f32>, usize)> {
    let n_features = x.shape()[1];
    let rows = x
        .as_slice()
        .map_err(|_| PyValueError::new_err("X must be a C-contiguous float32 array"))?;
    Ok((rows.to_vec(), n_features))
}

/// The targets a data set is built from: class codes 0..n_classes, or (N,O) real values.
pub(crate) enum Targets {
    Classes { codes: Vec<usize>, n_classes: usize },
    Values { values: Vec<f32>, n_outputs: usize },
}

impl Targets {
    pub(crate) fn read(
        y_codes: Option<PyReadonlyArray1<i64>>,
        y_values: Option<PyReadonlyArray2<f32>>,
        n_classes: usize,
    ) -> PyResult<Targets> {
        match (y_codes, y_values) {
            (Some(codes), None) => {
                let codes = codes
                    .as_slice()
                    .map_err(|_| PyValueError::new_err("class codes must be a contiguous int64 array"))?;
                let codes = codes
                    .iter()
                    .map(|&c| usize::try_from(c).ok().filter(|&c| c < n_classes))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| PyValueError::new_err(format!("class codes must lie in 0..{n_classes}")))?;
                Ok(Targets::Classes { codes, n_classes })
            }
            (None, Some(values)) => Ok(Targets::Values {
                n_outputs: values.shape()[1],
                values: values
                    .as_slice()
                    .map_err(|_| PyValueError::new_err("y must be a C-contiguous float32 array"))?
                    .to_vec(),
            }),
            _ => Err(PyValueError::new_err("give class codes or target values, not both")),
        }
    }
}

/// A data set resident on the process's device, from `x` and its targets.
pub(crate) fn upload(x: &PyReadonlyArray2<f32>, targets: Targets) -> PyResult<GpuDataset> {
    let (rows, n_features) = features(x)?;
    let data = match targets {
        Targets::Classes { codes, n_classes } => Dataset::classification("X", rows, n_features, codes, n_classes),
        Targets::Values { values, n_outputs } => {
            Dataset::multi_output_regression("X", rows, n_features, values, n_outputs)
        }
    }
    .map_err(to_py)?;
    GpuDataset::upload(&gpu()?, &data).map_err(to_py)
}

/// The adapter this process trains on, in words (name, backend, device type).
#[pyfunction]
fn adapter() -> PyResult<String> {
    let gpu = gpu()?;
    let info = gpu.adapter_info();
    Ok(format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type))
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("TrainingError", m.py().get_type::<TrainingError>())?;
    m.add_function(wrap_pyfunction!(adapter, m)?)?;
    m.add_function(wrap_pyfunction!(model::fit, m)?)?;
    m.add_function(wrap_pyfunction!(model::resume, m)?)?;
    m.add_function(wrap_pyfunction!(search::grid_search, m)?)?;
    m.add_class::<model::PyModel>()?;
    Ok(())
}
