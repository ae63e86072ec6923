//! The single-dispatch training step of small nets (shaders/tiny.wgsl).

use super::Mlp;
use crate::device::dispatch::Dispatch;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::graph::NodeId;
use crate::ops::{Activation, TINY_MAX_LAYERS, TINY_MAX_WIDTH, TinyBindings, TinyParams, tiny_step};
use crate::optim::Sgd;

/// Whether the single-dispatch step kernel (`shaders/tiny.wgsl`) can run this net.
pub(super) fn tiny_step_fits(sizes: &[usize], hidden: Activation, output: Activation, batch: usize) -> bool {
    let macs: usize = sizes.windows(2).map(|p| p[0] * p[1]).sum();
    sizes.len() - 1 <= TINY_MAX_LAYERS as usize
        && sizes.iter().all(|&s| s <= TINY_MAX_WIDTH as usize)
        && (hidden.grad_from_output() || sizes.len() == 2)
        && output.grad_from_output()
        && batch * macs <= 2048
}

/// The single-dispatch training step and its scratch memory (activations, two δ buffers).
pub(super) struct TinyStep {
    pub(super) dispatch: Dispatch,
    pub(super) sgd: Sgd,
    _scratch: Tensor,
}

impl TinyStep {
    /// The step of `mlp`'s net (its graph holds the parameters and data the kernel binds).
    pub(super) fn new(mlp: &Mlp, sgd: Sgd) -> Result<Self> {
        let Mlp {
            graph,
            sizes,
            hidden,
            output,
            weights,
            biases,
            x,
            t,
            ..
        } = mlp;
        let (x, t) = (*x, *t);
        let batch = graph.tensor(x)?.shape()[0];
        let mut params = TinyParams {
            layers: (sizes.len() - 1) as u32,
            batch: batch as u32,
            coupled: (sgd.decay == crate::optim::WeightDecay::Coupled) as u32,
            hidden_activation: hidden.code(),
            output_activation: output.code(),
            lr: sgd.lr,
            momentum: sgd.momentum,
            weight_decay: sgd.weight_decay,
            delta_offset: 0,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
            dims: [[0; 4]; 8],
            act_offset: [[0; 4]; 2],
        };
        let mut scratch_len = 0;
        for l in 0..sizes.len() - 1 {
            let offset = |node: NodeId| {
                graph
                    .param_offset(node)
                    .ok_or_else(|| Error::invalid("TinyStep", "parameter", "a parameter node", format!("{node:?}")))
            };
            params.dims[l] = [
                sizes[l] as u32,
                sizes[l + 1] as u32,
                offset(weights[l])? as u32,
                offset(biases[l])? as u32,
            ];
            params.act_offset[l / 4][l % 4] = scratch_len as u32;
            scratch_len += batch * sizes[l + 1];
        }
        params.delta_offset = scratch_len as u32;
        scratch_len += 2 * batch * TINY_MAX_WIDTH as usize;
        let gpu = graph.gpu();
        let scratch = Tensor::zeros(gpu, &[scratch_len])?;
        let dispatch = tiny_step(
            gpu,
            &params,
            &[
                (TinyBindings::X, graph.tensor(x)?),
                (TinyBindings::T, graph.tensor(t)?),
                (TinyBindings::WEIGHTS, graph.flat_params()),
                (TinyBindings::VELOCITY, graph.flat_velocity()),
                (TinyBindings::SCRATCH, &scratch),
                (TinyBindings::LOSS, graph.tensor(graph.loss_node())?),
                (TinyBindings::ROW_WEIGHT, graph.row_weights()),
            ],
        )?;
        Ok(TinyStep {
            dispatch,
            sgd,
            _scratch: scratch,
        })
    }
}
