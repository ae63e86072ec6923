//! # wgpu-mlp
//!
//! Train multilayer perceptrons on any GPU through wgpu (Vulkan, Metal, DX12, GL) with
//! hand-written WGSL compute kernels, falling back to a software adapter (Mesa lavapipe)
//! where no GPU exists.
//!
//! The layers of the crate, bottom up:
//! - [`Gpu`]: adapter choice and the device ([`gpu`] module docs say how it picks);
//! - [`Tensor`]: f32 buffers resident on the device;
//! - [`ops`]: one shape-checked builder per WGSL kernel, returning a [`Dispatch`];
//! - [`GraphBuilder`] / [`Graph`]: ops composed into a training step, one submit per step;
//! - [`Sgd`]: the optimizer's hyperparameters.

pub mod checkpoint;
pub mod cv;
mod cv_results;
pub mod data;
pub mod error;
pub mod gpu;
pub mod graph;
pub mod kernels;
mod layer;
pub mod mlp;
pub mod ops;
pub mod optim;
mod pipeline_cache;
pub mod schedule;
pub mod tensor;
pub mod train;
pub mod workloads;

pub use cv::{
    CvExecution, CvJob, CvProgress, CvReport, CvResult, Folds, GridSearchCv, Hyperparams, KFold, ParamGrid, Scoring,
    StratifiedKFold,
};
pub use data::{CsvOptions, Dataset, LabelColumn, Scaler, Scaling, Task};
pub use error::{Error, Result};
pub use gpu::{Gpu, GpuStats};
pub use graph::{Graph, GraphBuilder, NodeId};
pub use kernels::{Dispatch, MatmulKernel, MatmulLayout};
pub use mlp::{LayerParams, Mlp, MlpBuilder, StepKernel};
pub use ops::{Activation, Loss};
pub use optim::{Adam, Optimizer, Sgd, WeightDecay};
pub use schedule::Schedule;
pub use tensor::Tensor;
pub use train::{EpochMetrics, FitJob, GpuDataset, Model, Scores, TrainConfig, fit, fit_batched, resume};

/// The README's examples, compiled as doctests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
