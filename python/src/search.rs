//! `grid_search`: one [`GridSearchCv`] (or [`HalvingGridSearchCv`]) over given folds, every
//! fold × grid point of a shape trained as one stacked GPU job; the scores come back per
//! point and fold, and the Python side ranks, reports and refits as scikit-learn does.

use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wgpu_mlp::cv::Fold;
use wgpu_mlp::{
    GridSearchCv, ParamGrid,
    cv::{CvResult, Folds, Scoring},
};

use crate::config::{activation, train_config};
use crate::{Targets, to_py, upload};

/// `grid[key]` as a list of `T` (empty when absent: the base's value).
fn axis<'py, T>(grid: &Bound<'py, PyDict>, key: &str) -> PyResult<Vec<T>>
where
    T: for<'a> FromPyObject<'a, 'py, Error = PyErr>,
{
    match grid.get_item(key)? {
        Some(values) => values
            .extract::<Vec<T>>()
            .map_err(|e| PyValueError::new_err(format!("grid[{key:?}]: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// The grid's axes: lists under `lr`, `momentum`, `weight_decay`, `hidden`, `epochs`,
/// `batch_size`, `activation` (absent: the base's value).
fn param_grid(grid: &Bound<'_, PyDict>) -> PyResult<ParamGrid> {
    Ok(ParamGrid {
        lr: axis(grid, "lr")?,
        momentum: axis(grid, "momentum")?,
        weight_decay: axis(grid, "weight_decay")?,
        hidden: axis(grid, "hidden")?,
        epochs: axis(grid, "epochs")?,
        batch_size: axis(grid, "batch_size")?,
        activation: axis::<String>(grid, "activation")?
            .iter()
            .map(|name| activation(name))
            .collect::<PyResult<_>>()?,
        ..ParamGrid::default()
    })
}

/// One result row: the point's values and its per-fold scores.
fn result_dict<'py>(py: Python<'py>, result: &CvResult) -> PyResult<Bound<'py, PyDict>> {
    let params = PyDict::new(py);
    let point = &result.params;
    params.set_item("lr", point.lr)?;
    params.set_item("momentum", point.momentum)?;
    params.set_item("weight_decay", point.weight_decay)?;
    params.set_item("hidden", point.hidden.clone())?;
    params.set_item("epochs", point.epochs)?;
    params.set_item("batch_size", point.batch_size)?;
    params.set_item("activation", point.activation.name())?;
    let row = PyDict::new(py);
    row.set_item("params", params)?;
    row.set_item("fold_scores", result.fold_scores.clone())?;
    row.set_item("mean_fit_time", result.mean_fit_time)?;
    Ok(row)
}

/// Cross-validates every point of `grid` over `config` on the given `folds` ((train, test)
/// positions into `x`), scored by `scoring` (scikit-learn's name; None: accuracy or R²).
/// Nothing is refit. Returns {"scoring", "results": [{"params", "fold_scores",
/// "mean_fit_time"}]} in grid order.
#[pyfunction]
#[pyo3(signature = (x, config, grid, folds, scoring=None, y_codes=None, y_values=None, n_classes=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn grid_search<'py>(
    py: Python<'py>,
    x: PyReadonlyArray2<'py, f32>,
    config: &Bound<'py, PyDict>,
    grid: &Bound<'py, PyDict>,
    folds: Vec<(Vec<usize>, Vec<usize>)>,
    scoring: Option<String>,
    y_codes: Option<PyReadonlyArray1<'py, i64>>,
    y_values: Option<PyReadonlyArray2<'py, f32>>,
    n_classes: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let scoring = scoring
        .map(|name| {
            Scoring::from_name(&name).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "scoring {name:?} is not computed on the GPU: use 'accuracy', 'balanced_accuracy', 'f1_macro', \
                     'neg_log_loss', 'roc_auc', 'r2', 'neg_mean_squared_error' or 'neg_mean_absolute_error'"
                ))
            })
        })
        .transpose()?;
    let search = GridSearchCv {
        grid: param_grid(grid)?,
        folds: Folds::Explicit(
            folds
                .into_iter()
                .map(|(train, validation)| Fold { train, validation })
                .collect(),
        ),
        refit: false,
        base: train_config(config)?,
        scoring,
        ..GridSearchCv::default()
    };
    let data = upload(&x, Targets::read(y_codes, y_values, n_classes)?)?;
    let rows: Vec<usize> = (0..data.len()).collect();
    let report = py.detach(|| search.fit(&data, &rows)).map_err(to_py)?;
    let out = PyDict::new(py);
    out.set_item("scoring", report.scoring.name())?;
    let results = (report.results.iter())
        .map(|r| result_dict(py, r))
        .collect::<PyResult<Vec<_>>>()?;
    out.set_item("results", results)?;
    Ok(out)
}
