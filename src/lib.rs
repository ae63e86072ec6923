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
//! - [`Sgd`]: the optimizer's hyperparameters.

pub mod error;
pub mod gpu;
pub mod kernels;
pub mod ops;
pub mod optim;
pub mod tensor;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuStats};
pub use kernels::{Dispatch, MatmulKernel, MatmulLayout};
pub use optim::{Sgd, WeightDecay};
pub use tensor::Tensor;
