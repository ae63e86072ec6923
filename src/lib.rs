#![doc = include_str!("../README.md")]
// Functions stay under 80 lines (clippy.toml); clippy -D warnings enforces it.
#![warn(clippy::too_many_lines)]
#![warn(missing_docs)]
// In a browser wgpu's handles are neither Send nor Sync (a page has one thread), and the
// device and buffers are still shared by Arc between the models and tensors that use them.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
//!
//! # The API at a glance
//!
//! The crate root is the trainer, as scikit-learn users meet one (21 names):
//! - [`Gpu`]: adapter choice and the device (its docs say how it picks);
//! - [`Dataset`] (CSV in; preprocessing in [`data`]) and [`GpuDataset`] (resident on the
//!   device);
//! - [`fit`] with a [`TrainConfig`] ([`Activation`], [`Loss`], an [`Optimizer`] — [`Sgd`],
//!   [`Adam`] or [`Rmsprop`] — and a [`Schedule`]) gives a [`Model`]: `predict`,
//!   `predict_proba`, `score`, `save`, `load`; more ways to train in [`train`] (batched,
//!   with progress, resumed);
//! - [`GridSearchCv`] over a [`ParamGrid`] with [`KFold`] / [`StratifiedKFold`], every fold ×
//!   grid-point model of a shape trained as one stacked GPU job, and
//!   [`HalvingGridSearchCv`] by successive halving; reports, scoring, shards in [`cv`];
//! - [`Mlp`]: the network itself, stepped by hand (its builder and layers in [`mlp`]);
//!   [`Error`] and [`Result`]: every failure.
//!
//! Modules hold the rest, one per layer a user meets: [`data`], [`train`], [`cv`],
//! [`optim`], [`mlp`] and [`onnx`] (the model file as ONNX; `Model::save` and `Mlp::save` write
//! the native file). The
//! `wgpu-mlp` command (`fit`, `predict`, `info`; the default `cli` feature) does the same
//! from a shell.
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

mod checkpoint;
pub mod cv;
pub mod data;
mod device;
mod error;
mod graph;
mod layer;
pub mod mlp;
pub mod onnx;
mod ops;
pub mod optim;
pub mod train;

pub use cv::{GridSearchCv, HalvingGridSearchCv, KFold, ParamGrid, StratifiedKFold};
pub use data::Dataset;
pub use device::Gpu;
pub use error::{Error, Result};
pub use mlp::Mlp;
pub use ops::{Activation, Loss};
pub use optim::{Adam, Optimizer, Rmsprop, Schedule, Sgd};
pub use train::{GpuDataset, Model, TrainConfig, fit};

/// The building blocks under the trainer, for composing your own steps: device tensors, one
/// shape-checked builder per WGSL kernel (forward and backward side by side), the matmul
/// kernels, and the graph that turns ops into a whole training step in one submit.
pub mod raw {
    pub use crate::device::{Dispatch, GpuStats, Tensor};
    pub use crate::graph::{Graph, GraphBuilder, NodeId};
    pub use crate::ops::{CPU_BLOCKED_MIN_WORK, MATMUL_KERNELS, MatmulKernel, MatmulLayout, TILED_MIN_WORK};

    /// One builder per kernel, forward and backward side by side. Each checks its operands'
    /// shapes and returns a [`Dispatch`] to run with [`Gpu::run`](crate::Gpu::run) (or
    /// record many times).
    pub mod ops {
        pub use crate::ops::*;
    }
}
