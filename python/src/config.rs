//! A Python dict of the Rust [`TrainConfig`]'s own settings (the estimators translate
//! scikit-learn's parameter names into these) as a `TrainConfig`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wgpu_mlp::{
    Activation, Adam, Optimizer, Schedule, Sgd, TrainConfig, mlp::Init, optim::WeightDecay, train::Monitor,
};

/// `dict[key]` as a `T`, or `default` when absent or None.
fn get<'py, T>(dict: &Bound<'py, PyDict>, key: &str, default: T) -> PyResult<T>
where
    T: for<'a> FromPyObject<'a, 'py, Error = PyErr>,
{
    match dict.get_item(key)? {
        Some(value) if !value.is_none() => value
            .extract::<T>()
            .map_err(|e| PyValueError::new_err(format!("config[{key:?}]: {e}"))),
        _ => Ok(default),
    }
}

pub(crate) fn activation(name: &str) -> PyResult<Activation> {
    Activation::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "activation {name:?} is not known: use 'identity', 'sigmoid', 'tanh', 'relu' or 'gelu'"
        ))
    })
}

/// The optimizer a config names: "adam" (Adam, L2 penalty coupled into the gradient as
/// scikit-learn's `alpha` is) or "sgd" (momentum, Nesterov, the same coupled penalty).
pub(crate) fn optimizer(dict: &Bound<'_, PyDict>, lr: f32) -> PyResult<Optimizer> {
    let solver: String = get(dict, "solver", "adam".to_string())?;
    let weight_decay: f32 = get(dict, "weight_decay", 0.0)?;
    match solver.as_str() {
        "adam" => Ok(Adam::new(lr)
            .betas(get(dict, "beta1", 0.9)?, get(dict, "beta2", 0.999)?)
            .eps(get(dict, "eps", 1e-8)?)
            .weight_decay(weight_decay)
            .into()),
        "sgd" => {
            // scikit-learn's nesterovs_momentum with no momentum is plain SGD
            let momentum: f32 = get(dict, "momentum", 0.9)?;
            Ok(Sgd::new(lr)
                .momentum(momentum)
                .nesterov(get(dict, "nesterov", true)? && momentum > 0.0)
                .weight_decay(weight_decay)
                .decay(WeightDecay::Coupled)
                .into())
        }
        other => Err(PyValueError::new_err(format!(
            "solver {other:?} is not available on the GPU: use 'adam' or 'sgd'"
        ))),
    }
}

/// The learning-rate schedule: "constant", or "adaptive" (scikit-learn's: the rate divided
/// by 5 when the training loss has stopped falling for `plateau_patience` epochs, down to
/// 1e-6, here as a plateau schedule with a relative threshold of `tol`).
fn schedule(dict: &Bound<'_, PyDict>) -> PyResult<Schedule> {
    let name: String = get(dict, "schedule", "constant".to_string())?;
    match name.as_str() {
        "constant" => Ok(Schedule::Constant),
        "adaptive" => Ok(Schedule::ReduceOnPlateau {
            factor: 0.2,
            patience: get(dict, "plateau_patience", 10)?,
            threshold: get(dict, "tol", 1e-4)?,
            min_lr: 1e-6,
        }),
        other => Err(PyValueError::new_err(format!(
            "learning_rate {other:?} is not available: use 'constant' or 'adaptive'"
        ))),
    }
}

/// The whole config. `task` "classifier" starts from [`TrainConfig::classifier`], else
/// [`TrainConfig::regressor`].
pub(crate) fn train_config(dict: &Bound<'_, PyDict>) -> PyResult<TrainConfig> {
    let task: String = get(dict, "task", "classifier".to_string())?;
    let base = if task == "classifier" {
        TrainConfig::classifier()
    } else {
        TrainConfig::regressor()
    };
    let lr: f32 = get(dict, "lr", 1e-3)?;
    let monitor: String = get(dict, "monitor", "training".to_string())?;
    // scikit-learn's initialisation (Glorot uniform, weights and biases) when a gain is given.
    let init = match get::<Option<f32>>(dict, "init_gain", None)? {
        Some(gain) => Init::GlorotUniform { gain },
        None => Init::FanIn,
    };
    let config = TrainConfig {
        hidden: get(dict, "hidden", base.hidden.clone())?,
        hidden_activation: activation(&get(dict, "activation", "relu".to_string())?)?,
        optimizer: optimizer(dict, lr)?,
        schedule: schedule(dict)?,
        epochs: get(dict, "epochs", base.epochs)?,
        batch_size: get(dict, "batch_size", base.batch_size)?,
        seed: get(dict, "seed", 0)?,
        init,
        shuffle: get(dict, "shuffle", true)?,
        early_stopping: get(dict, "early_stopping", None)?,
        monitor: if monitor == "validation" {
            Monitor::ValidationLoss
        } else {
            Monitor::TrainingLoss
        },
        tol: get(dict, "tol", 0.0)?,
        validation_fraction: get(dict, "validation_fraction", base.validation_fraction)?,
        ..base
    };
    config.validate().map_err(crate::to_py)?;
    Ok(config)
}
