//! `Model`: a fitted network as a Python object (predict, parameters, history, bytes), and
//! `fit` / `resume` that train one.

use std::sync::{Mutex, MutexGuard};

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use wgpu_mlp::Model;

use crate::{Targets, config::train_config, gpu, to_py, upload};

/// A fitted network on this process's device. Pickles as its model file's bytes (the same
/// format as `Model::save` and the CLI's `-o`), so it unpickles onto whatever device the
/// new process has.
#[pyclass(module = "wgpu_mlp._core", name = "Model", frozen)]
pub struct PyModel {
    inner: Mutex<Model>,
}

impl PyModel {
    pub(crate) fn new(model: Model) -> Self {
        PyModel {
            inner: Mutex::new(model),
        }
    }

    fn model(&self) -> MutexGuard<'_, Model> {
        // A panic never crosses into Python, so the lock is never poisoned; if it were, the
        // model itself is still whole (nothing mutates it in place).
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Rows of `x` as the model's inputs, checked against its width.
    fn rows(&self, x: &PyReadonlyArray2<f32>) -> PyResult<Vec<f32>> {
        let want = self.model().n_features();
        if x.shape()[1] != want {
            return Err(PyValueError::new_err(format!(
                "X has {} features, but the model is expecting {want} features as input",
                x.shape()[1]
            )));
        }
        Ok(x.as_slice()
            .map_err(|_| PyValueError::new_err("X must be a C-contiguous float32 array"))?
            .to_vec())
    }

    /// `values` (rows × width) as a 2-D array.
    fn matrix<'py>(&self, py: Python<'py>, values: Vec<f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let width = self.model().n_outputs();
        let rows = values.len() / width.max(1);
        PyArray1::from_vec(py, values).reshape([rows, width])
    }
}

#[pymethods]
impl PyModel {
    /// The network's outputs for each row of `x` (N,F) float32: (N,O) logits for a
    /// classifier, values for a regressor.
    fn predict<'py>(&self, py: Python<'py>, x: PyReadonlyArray2<'py, f32>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let rows = self.rows(&x)?;
        let outputs = py.detach(|| self.model().predict(&rows)).map_err(to_py)?;
        self.matrix(py, outputs)
    }

    /// Class probabilities (N,O) for each row of `x`: the softmax of the logits.
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let rows = self.rows(&x)?;
        let probabilities = py.detach(|| self.model().predict_proba(&rows)).map_err(to_py)?;
        self.matrix(py, probabilities)
    }

    /// Each layer's (weights (in, out), bias (out,)) as float32 arrays, read from the device.
    fn parameters<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyTuple>>> {
        let layers = py.detach(|| self.model().mlp().parameters()).map_err(to_py)?;
        let sizes = self.model().mlp().sizes().to_vec();
        layers
            .into_iter()
            .zip(sizes.windows(2))
            .map(|(layer, pair)| {
                let weights = PyArray1::from_vec(py, layer.weights).reshape([pair[0], pair[1]])?;
                let bias = PyArray1::from_vec(py, layer.bias);
                PyTuple::new(py, [weights.into_any(), bias.into_any()])
            })
            .collect()
    }

    /// The epochs the last fit trained: lists `train_loss`, `lr`, and `val_loss` /
    /// `val_accuracy` (None where not measured).
    fn history<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let model = self.model();
        let history = model.history();
        let dict = PyDict::new(py);
        dict.set_item("train_loss", history.iter().map(|m| m.train_loss).collect::<Vec<_>>())?;
        dict.set_item("lr", history.iter().map(|m| m.lr).collect::<Vec<_>>())?;
        dict.set_item("val_loss", history.iter().map(|m| m.val_loss).collect::<Vec<_>>())?;
        dict.set_item(
            "val_accuracy",
            history.iter().map(|m| m.val_accuracy).collect::<Vec<_>>(),
        )?;
        Ok(dict)
    }

    /// Epochs trained in all (resumed runs included).
    #[getter]
    fn epochs_done(&self) -> usize {
        self.model().epochs_done()
    }

    /// Input width.
    #[getter]
    fn n_features(&self) -> usize {
        self.model().n_features()
    }

    /// Output width.
    #[getter]
    fn n_outputs(&self) -> usize {
        self.model().n_outputs()
    }

    /// Layer sizes, inputs to outputs.
    #[getter]
    fn sizes(&self) -> Vec<usize> {
        self.model().mlp().sizes().to_vec()
    }

    /// The model file's bytes (checksummed; what `Model::save` writes).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let bytes = py.detach(|| self.model().to_bytes()).map_err(to_py)?;
        Ok(PyBytes::new(py, &bytes))
    }

    /// A model from a model file's bytes, on this process's device.
    #[staticmethod]
    fn from_bytes(py: Python<'_>, bytes: &[u8]) -> PyResult<PyModel> {
        let gpu = gpu()?;
        let bytes = bytes.to_vec();
        let model = py
            .detach(|| Model::from_bytes(&gpu, &bytes, "pickled model"))
            .map_err(to_py)?;
        Ok(PyModel::new(model))
    }

    /// Pickles as `Model.from_bytes(model file bytes)`.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let rebuild = py.get_type::<PyModel>().getattr("from_bytes")?;
        Ok((rebuild, (self.to_bytes(py)?,)))
    }
}

/// What a training call works on: the config, the data on the device, and the training
/// rows (default all).
fn job(
    x: &PyReadonlyArray2<'_, f32>,
    config: &Bound<'_, PyDict>,
    targets: Targets,
    train_rows: Option<Vec<usize>>,
) -> PyResult<(wgpu_mlp::TrainConfig, wgpu_mlp::GpuDataset, Vec<usize>)> {
    let config = train_config(config)?;
    let data = upload(x, targets)?;
    let rows = train_rows.unwrap_or_else(|| (0..data.len()).collect());
    Ok((config, data, rows))
}

/// Trains a new model on `x` (N,F) float32 and its targets: `y_codes` (N,) int64 class codes
/// in 0..n_classes, or `y_values` (N,O) float32. `train_rows` (default all) and
/// `validation_rows` (watched for early stopping, if given) index `x`.
#[pyfunction]
#[pyo3(signature = (x, config, y_codes=None, y_values=None, n_classes=0, train_rows=None, validation_rows=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f32>,
    config: &Bound<'_, PyDict>,
    y_codes: Option<PyReadonlyArray1<'_, i64>>,
    y_values: Option<PyReadonlyArray2<'_, f32>>,
    n_classes: usize,
    train_rows: Option<Vec<usize>>,
    validation_rows: Option<Vec<usize>>,
) -> PyResult<PyModel> {
    let (config, data, rows) = job(&x, config, Targets::read(y_codes, y_values, n_classes)?, train_rows)?;
    let model = py
        .detach(|| wgpu_mlp::fit(&data, &rows, validation_rows.as_deref(), &config))
        .map_err(to_py)?;
    Ok(PyModel::new(model))
}

/// Trains a copy of `model` on through epoch `config["epochs"]` (scikit-learn's
/// `partial_fit` and `warm_start`); `model` itself is left as it was.
#[pyfunction]
#[pyo3(signature = (model, x, config, y_codes=None, y_values=None, n_classes=0, train_rows=None, validation_rows=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn resume(
    py: Python<'_>,
    model: &PyModel,
    x: PyReadonlyArray2<'_, f32>,
    config: &Bound<'_, PyDict>,
    y_codes: Option<PyReadonlyArray1<'_, i64>>,
    y_values: Option<PyReadonlyArray2<'_, f32>>,
    n_classes: usize,
    train_rows: Option<Vec<usize>>,
    validation_rows: Option<Vec<usize>>,
) -> PyResult<PyModel> {
    let (config, data, rows) = job(&x, config, Targets::read(y_codes, y_values, n_classes)?, train_rows)?;
    let gpu = gpu()?;
    let resumed = py
        .detach(|| {
            let copy = Model::from_bytes(&gpu, &model.model().to_bytes()?, "model")?;
            wgpu_mlp::train::resume_model(copy, &data, &rows, validation_rows.as_deref(), &config, &mut |_| {})
        })
        .map_err(to_py)?;
    Ok(PyModel::new(resumed))
}
