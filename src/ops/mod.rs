//! One builder per kernel, forward and backward side by side. Each checks its operands'
//! shapes and returns a [`Dispatch`](crate::Dispatch) to run with [`Gpu::run`](crate::Gpu::run) (or record many times).

use crate::device::gpu::Gpu;
#[cfg(test)]
use crate::device::kernel::Kernel;
use crate::device::kernel::wgsl_consts;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

/// The kernels' homes: each `X.rs` (with `shaders/X.wgsl`) declares everything about its
/// kernels — parameter block, bindings, the constants it shares with WGSL, shader parts,
/// entry points (`kernels()`), builders, f64 reference and tests — and the registry is the
/// list of those declarations.
macro_rules! kernel_homes {
    ($($module:ident),* $(,)?) => {
        $(mod $module;)*

        /// Every kernel the library runs, from each home's declarations.
        #[cfg(test)]
        pub(crate) fn all_kernels() -> Vec<Kernel> {
            let mut all = Vec::new();
            $(all.extend($module::kernels());)*
            all
        }
    };
}

kernel_homes!(
    activation,
    bias,
    data,
    elementwise,
    matmul_fused,
    matmul_kernels,
    mse,
    optim,
    softmax_xent,
    step_plan,
    tiny
);

pub(crate) mod autotune;
#[cfg(test)]
mod fused_tests;
mod loss;
mod loss_kernels;
mod matmul;
mod matmul_choice;
#[cfg(test)]
mod matmul_fused_tests;
mod matmul_grouped;
mod matmul_head;
#[cfg(test)]
mod registry_tests;
#[cfg(test)]
mod stacked_tests;
mod sum;

pub(crate) use activation::check_grad_from_output;
pub use activation::{Activation, LEAKY_RELU_SLOPE, activation_backward, activation_forward};
pub use bias::{bias_add_backward, bias_add_forward};
pub(crate) use data::{Gather, copy_rows, gather_batch};
pub use elementwise::{add, copy};
pub(crate) use loss::OutputLink;
pub(crate) use loss::loss_with_gradient;
pub use loss::{Loss, loss_backward, loss_forward};
pub(crate) use loss_kernels::reduce_threads;
pub(crate) use matmul::matmul_bias_grad_with;
pub use matmul::{Epilogue, MatmulOptions, matmul, matmul_bias_grad, matmul_with};
pub(crate) use matmul_fused::{GROUPS_MAX, grouped_storage_buffers, head_storage_buffers};
pub(crate) use matmul_grouped::{
    FlatBlocks, GROUPED_LOSS_MAX_TERMS, GroupedKernel, GroupedLoss, WeightGradient, matmul_grouped_update,
};
pub(crate) use matmul_head::{HeadLoss, matmul_head};
pub use matmul_kernels::{CPU_BLOCKED_MIN_WORK, MATMUL_KERNELS, MatmulKernel, MatmulLayout, TILED_MIN_WORK};
pub use mse::{mse_backward, mse_backward_through, mse_forward};
pub(crate) use optim::{HYPERPARAM_WORDS, MODEL_STATE_WORDS, OptimizerState, optimizer_update_stacked};
pub use optim::{optimizer_update, sgd_update};
pub use softmax_xent::{bce_backward, bce_forward, xent_backward, xent_forward};
pub(crate) use step_plan::{ModelPlan, models_to_step};
pub(crate) use tiny::{TINY_MAX_LAYERS, TINY_MAX_WIDTH, TinyBindings, TinyParams, tiny_step};

wgsl_consts! {
    fn group_constants;
    /// Invocations per workgroup of the element-wise kernels.
    const ELEMENTWISE_GROUP: u32 = 256;
}

/// Workgroups of [`ELEMENTWISE_GROUP`] invocations that cover `n` elements.
fn elementwise_groups(n: usize) -> usize {
    n.div_ceil(ELEMENTWISE_GROUP as usize)
}

fn check_gpu(gpu: &Gpu, op: &'static str, tensors: &[(&str, &Tensor)]) -> Result<()> {
    for (name, tensor) in tensors {
        if !tensor.same_gpu(gpu) {
            return Err(Error::invalid(
                op,
                *name,
                "a tensor on this Gpu",
                "a tensor made on another Gpu",
            ));
        }
    }
    Ok(())
}

fn check_len(op: &'static str, what: &str, tensor: &Tensor, len: usize) -> Result<()> {
    if tensor.len() != len {
        return Err(Error::shape(
            op,
            what,
            format!("{len} elements"),
            format!("{:?} ({} elements)", tensor.shape(), tensor.len()),
        ));
    }
    Ok(())
}

fn check_dims(op: &'static str, what: &str, tensor: &Tensor, rows: usize, cols: usize) -> Result<()> {
    let got = tensor.dims2(op, what)?;
    if got != (rows, cols) {
        return Err(Error::shape(
            op,
            what,
            format!("[{rows}, {cols}]"),
            format!("{:?}", tensor.shape()),
        ));
    }
    Ok(())
}

/// Every op runs over a stack of models at once (see `Tensor::stack`): the output's model
/// count, and each operand's model stride in the order given: 0 for a plain tensor that all
/// models share (read-only operands only), its stride for one stacked like the output.
fn model_strides(op: &'static str, output: &Tensor, operands: &[(&str, &Tensor, bool)]) -> Result<(usize, Vec<u32>)> {
    let models = output.models();
    operands
        .iter()
        .map(|&(what, tensor, written)| {
            if tensor.models() == models || (tensor.models() == 1 && !written) {
                Ok(tensor.model_stride() as u32)
            } else {
                Err(Error::shape(
                    op,
                    format!("{what} (stacked models)"),
                    format!("{models}{}", if written { "" } else { ", or 1 shared" }),
                    tensor.models(),
                ))
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(|strides| (models, strides))
}
