//! The device layer: the [`Gpu`] (adapter choice, device, queue, statistics), device
//! [`Tensor`]s, the on-disk pipeline cache, the kernel declarations (`kernel`) and their
//! compiled pipelines and dispatches (`dispatch`). Nothing here knows what a kernel computes.

pub(crate) mod dispatch;
pub(crate) mod gpu;
pub(crate) mod kernel;
pub(crate) mod pipeline_cache;
pub(crate) mod scope;
pub(crate) mod tensor;

pub use dispatch::Dispatch;
pub use gpu::{Gpu, GpuStats};
pub use tensor::Tensor;
