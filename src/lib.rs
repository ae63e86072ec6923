#![doc = include_str!("../README.md")]
// Functions stay under 80 lines (clippy.toml); clippy -D warnings enforces it.
#![warn(clippy::too_many_lines)]
//!
//! # The API at a glance
//!
//! The crate root is the trainer, as scikit-learn users meet one:
//! - [`Gpu`]: adapter choice and the device ([`gpu`] module docs say how it picks);
//! - [`Dataset`] (CSV in, [`Scaler`]) and [`GpuDataset`] (resident on the device);
//! - [`fit`] / [`fit_batched`] with a [`TrainConfig`] ([`Activation`], [`Loss`], [`Sgd`] or
//!   [`Adam`], [`Schedule`]) give a [`Model`]: `predict`, `predict_proba`, `save`, `load`;
//!   [`Model::score`] on host rows; [`fit_with_progress`] shows each epoch;
//! - [`GridSearchCv`] over a [`ParamGrid`] with [`KFold`] / [`StratifiedKFold`], every fold ×
//!   grid-point model of a shape trained as one stacked GPU job; `fit_dataset` from a host
//!   [`Dataset`] to a fitted pipeline; [`HalvingGridSearchCv`] by successive halving;
//!   [`Shard`] / [`ShardScores`] to spread a search over machines and merge it;
//! - [`Mlp`]: the network itself, stepped by hand; [`Error`]: every failure.
//!
//! The `wgpu-mlp` command (`fit`, `predict`, `info`; the default `cli` feature) does the
//! same from a shell.
//!
//! The building blocks under it are in [`raw`]: [`raw::Tensor`], one shape-checked builder
//! per WGSL kernel in [`raw::ops`], and [`raw::GraphBuilder`] / [`raw::Graph`] composing
//! them into a training step recorded as one submit.
//!
//! ```no_run
//! use wgpu_mlp::{Adam, Gpu, Mlp};
//! let gpu = Gpu::new()?;
//! let mut mlp = Mlp::builder(&[2, 8, 1]).seed(1).build(&gpu, 4, Adam::new(0.05))?;
//! mlp.set_batch(&[0., 0., 0., 1., 1., 0., 1., 1.], &[0., 1., 1., 0.])?;
//! mlp.steps(500)?; // one submit, nothing read back
//! println!("loss {}", mlp.loss()?);
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```

pub mod checkpoint;
pub mod cv;
pub mod data;
mod device;
pub mod error;
mod graph;
pub mod mlp;
pub mod onnx;
mod ops;
pub mod optim;
pub mod train;
/// The peers' benchmark workloads (`../shared/bench/workloads.md`): scaffolding for the
/// examples, tests and benches, not part of the library's API.
#[doc(hidden)]
pub mod workloads;

pub use cv::{
    ClassWeight, CvExecution, CvJob, CvProgress, CvReport, CvResult, Folds, GridSearchCv, HalvingGridSearchCv,
    HalvingReport, HalvingRound, Hyperparams, KFold, ParamGrid, Scoring, Shard, ShardScores, StratifiedKFold,
};
pub use data::{CsvOptions, Dataset, FeatureRows, LabelColumn, Scaler, Scaling, Schema, Task};
pub use device::{Gpu, GpuStats};
pub use error::{Error, Result};
pub use mlp::{Init, LayerParams, Mlp, MlpBuilder, StepKernel};
pub use ops::{Activation, Loss};
pub use optim::Schedule;
pub use optim::{Adam, Optimizer, Rmsprop, Sgd, WeightDecay};
pub use train::{
    EpochMetrics, FitJob, GpuDataset, Model, Monitor, Scores, TrainConfig, fit, fit_batched, fit_with_progress, resume,
    resume_model,
};

/// The building blocks under the trainer, for composing your own steps: device tensors, one
/// shape-checked builder per WGSL kernel (forward and backward side by side), the matmul
/// kernels, and the graph that turns ops into a whole training step in one submit.
pub mod raw {
    pub use crate::device::{Dispatch, Tensor};
    pub use crate::graph::{Graph, GraphBuilder, NodeId};
    pub use crate::ops::{CPU_BLOCKED_MIN_WORK, MATMUL_KERNELS, MatmulKernel, MatmulLayout, TILED_MIN_WORK};

    /// One builder per kernel, forward and backward side by side. Each checks its operands'
    /// shapes and returns a [`Dispatch`] to run with [`Gpu::run`](crate::Gpu::run) (or
    /// record many times).
    pub mod ops {
        pub use crate::ops::*;
    }
}
