//! The fused training step: two dispatches per layer. Each layer's forward product; the output
//! layer's with the regression loss's gradient and the Adam step count in its store
//! (`matmul_head`); each input gradient `dX = dY·Wᵀ` (through the activation below); then every
//! layer's weight and bias gradient in one dispatch with the optimizer's update applied as
//! each gradient element is stored (`matmul_grouped_update`), after the input gradients that
//! read the weights it moves. The same kernels' products as the unfused step, so the same
//! bits where the grouped dispatch runs the kernel each layer's weight gradient would.
//!
//! The unfused schedule stays for what the fused one does not cover: a step without update
//! (`compute_gradients`), graphs whose parameters are not all dense layers' weights and
//! biases, adapters that bind too few storage buffers, and `WGPU_MLP_FUSED_STEP=0`.

use super::NodeId;
use super::builder::{Node, Op};
use super::optimizer::OptimizerBlock;
use super::schedule::{Backward, Context, Forward, WeightGradPlan};
use crate::device::dispatch::Dispatch;
use crate::device::tensor::Tensor;
use crate::error::Result;
use crate::ops::{self, Activation, MatmulKernel, MatmulLayout};

/// The dispatches a fused step records in place of the unfused ones.
pub(super) struct FusedStep {
    /// The forward dispatch the head stands for.
    pub head_at: usize,
    pub head: Dispatch,
    /// Whether the head computes the loss's gradient (so no loss dispatch does).
    pub head_loss_gradient: bool,
    /// Per backward dispatch: whether the fused step records it (the weight gradients and
    /// the head's loss gradient it does not).
    pub keep_backward: Vec<bool>,
    /// The grouped weight gradients with the update.
    pub update: Vec<Dispatch>,
    /// For a step whose loss is read (regression losses of up to
    /// [`ops::GROUPED_LOSS_MAX_TERMS`] values): the head writing each element's loss term and
    /// the grouped dispatches summing them into the loss, in place of `head`, the loss
    /// dispatch and `update`: still two dispatches per layer.
    pub reading: Option<(Dispatch, Vec<Dispatch>)>,
    /// The loss terms' buffer.
    _terms: Option<Tensor>,
}

/// The flat blocks and their layout (see `Graph`).
pub(super) struct Flat<'a> {
    pub params: &'a Tensor,
    pub grads: &'a Tensor,
    pub offsets: &'a [Option<usize>],
    pub model_stride: usize,
}

/// The fused step of a graph, or None where it does not apply (see the module docs), the
/// builder asks for the unfused step, or `WGPU_MLP_FUSED_STEP=0` (for comparisons).
pub(super) fn plan(
    unfused: bool,
    cx: &Context<'_>,
    (forward, backward): (&Forward, &Backward),
    optimizer: &OptimizerBlock,
    flat: Flat<'_>,
) -> Result<Option<FusedStep>> {
    let disabled = unfused || std::env::var("WGPU_MLP_FUSED_STEP").is_ok_and(|v| v == "0");
    let Some(loss_grad) = backward.loss_grad.as_ref().filter(|_| !disabled) else {
        return Ok(None);
    };
    let y = loss_grad.prediction;
    let (Some((x, w, bias, activation)), Some(head_at)) = (cx.fusion.layer_at[y.0], forward.at[y.0]) else {
        return Ok(None);
    };
    if activation.unwrap_or(Activation::Identity) != loss_grad.activation
        || !every_param_once(cx.nodes, cx.needs_grad, backward)
    {
        return Ok(None);
    }
    let limits = cx.gpu.limits().max_storage_buffers_per_shader_stage;
    let kernel = grouped_kernel(cx, &backward.weight_grads);
    if limits < ops::grouped_storage_buffers(kernel.binds_like()) || limits < ops::head_storage_buffers() {
        return Ok(None);
    }
    let value = |node: NodeId| cx.values[node.0].as_ref().expect("live nodes have values");
    let mut keep_backward = vec![true; backward.dispatches.len()];
    let huber_delta = loss_grad.loss.regression_delta();
    if huber_delta.is_some() {
        keep_backward[loss_grad.at] = false;
    }
    let state = optimizer.state(cx.active);
    let (batch, inputs) = value(x).dims2("GraphBuilder::build", "layer input")?;
    let (models, outputs) = (value(y).models(), value(y).dims2("GraphBuilder::build", "output")?.1);
    let head_kernel = MatmulKernel::choose(cx.gpu, MatmulLayout::AB, batch, inputs, outputs);
    // The output layer, writing each element's loss term too in a step whose loss is read.
    let head = |terms: Option<&Tensor>| {
        let loss = huber_delta.map(|huber_delta| ops::HeadLoss {
            target: value(loss_grad.target),
            row_weights: cx.row_weights,
            d_z: &loss_grad.d_target,
            huber_delta,
            terms,
        });
        let operands = (value(x), value(w), value(bias), value(y));
        ops::matmul_head(cx.gpu, head_kernel, operands, activation, loss, state, optimizer.adam)
    };
    let blocks = ops::FlatBlocks {
        grads: flat.grads,
        params: flat.params,
        model_stride: flat.model_stride,
        state,
    };
    let update = |loss| grouped_updates(cx, &kernel, &backward.weight_grads, (&flat, blocks), loss);
    backward.weight_grads.iter().for_each(|g| keep_backward[g.at] = false);
    let terms = match huber_delta {
        Some(_) if batch * outputs <= ops::GROUPED_LOSS_MAX_TERMS => {
            Some(Tensor::stacked_zeros(cx.gpu, models, &[batch, outputs])?)
        }
        _ => None,
    };
    let reading = match &terms {
        Some(terms) => {
            let loss = ops::GroupedLoss {
                terms,
                out: value(loss_grad.node),
                reduce_threads: ops::reduce_threads(cx.gpu),
            };
            Some((head(Some(terms))?, update(Some(loss))?))
        }
        None => None,
    };
    Ok(Some(FusedStep {
        head_at,
        head: head(None)?,
        head_loss_gradient: huber_delta.is_some(),
        keep_backward,
        update: update(None)?,
        reading,
        _terms: terms,
    }))
}

/// The weight gradients with the update, [`ops::GROUPS_MAX`] layers a dispatch; the first
/// also sums the loss, where given.
fn grouped_updates(
    cx: &Context<'_>,
    kernel: &ops::GroupedKernel,
    grads: &[WeightGradPlan],
    (flat, blocks): (&Flat<'_>, ops::FlatBlocks<'_>),
    loss: Option<ops::GroupedLoss<'_>>,
) -> Result<Vec<Dispatch>> {
    grads
        .chunks(ops::GROUPS_MAX)
        .enumerate()
        .map(|(i, chunk)| {
            let groups: Vec<ops::WeightGradient<'_>> = chunk
                .iter()
                .map(|g| ops::WeightGradient {
                    x: &g.x,
                    d_y: &g.d_y,
                    weight_offset: flat.offsets[g.weight.0].expect("parameters have offsets"),
                    bias_offset: g.bias.and_then(|b| flat.offsets[b.0]),
                })
                .collect();
            // each chunk's products' own kernels, where each has its own
            let chunk_kernel = match kernel {
                ops::GroupedKernel::PerProduct(all) => {
                    let first = i * ops::GROUPS_MAX;
                    ops::GroupedKernel::PerProduct(all[first..first + chunk.len()].to_vec())
                }
                one => one.clone(),
            };
            ops::matmul_grouped_update(cx.gpu, &chunk_kernel, &groups, blocks, loss.filter(|_| i == 0))
        })
        .collect()
}

/// Whether every trained parameter gets its whole gradient from exactly one of the weight
/// gradient dispatches the fused step groups (so updating it there sees all of it).
fn every_param_once(nodes: &[Node], needs_grad: &[bool], backward: &Backward) -> bool {
    let mut covered = vec![false; nodes.len()];
    for g in &backward.weight_grads {
        covered[g.weight.0] = true;
        if let Some(bias) = g.bias {
            covered[bias.0] = true;
        }
    }
    !backward.weight_grads.is_empty()
        && nodes.iter().enumerate().all(|(i, node)| {
            !matches!(node.op, Op::Param) || !needs_grad[i] || (covered[i] && backward.contributions[i] == 1)
        })
}

/// The grouped dispatch's kernel: where the adapter has subgroups and each layer's weight
/// gradient runs the subgroup or a lanes kernel unfused (CPU adapters), each its own (the
/// mixed entry point: the same bits as unfused); else the one the largest runs unfused (Tiled
/// where that is Vec4, which cannot add the bias row).
fn grouped_kernel(cx: &Context<'_>, grads: &[WeightGradPlan]) -> ops::GroupedKernel {
    let shapes: Vec<(usize, usize, usize)> = grads
        .iter()
        .filter_map(|g| {
            let (batch, inputs) = g.x.dims2("", "").ok()?;
            let outputs = g.d_y.dims2("", "").ok()?.1;
            Some((inputs + 1, batch, outputs))
        })
        .collect();
    let unfused: Vec<MatmulKernel> = shapes
        .iter()
        .map(|&(rows, k, n)| MatmulKernel::choose_for_bias_grad(cx.gpu, rows, k, n))
        .collect();
    let mixable = [MatmulKernel::Subgroup, MatmulKernel::Lanes, MatmulKernel::LanesDown];
    if MatmulKernel::Subgroup.available(cx.gpu) && unfused.iter().all(|k| mixable.contains(k)) {
        return ops::GroupedKernel::PerProduct(unfused);
    }
    let largest = (0..shapes.len()).max_by_key(|&g| shapes[g].0 * shapes[g].1 * shapes[g].2);
    match largest.map(|g| unfused[g]) {
        Some(MatmulKernel::Vec4) => ops::GroupedKernel::One(MatmulKernel::Tiled),
        Some(kernel) => ops::GroupedKernel::One(kernel),
        None => ops::GroupedKernel::One(MatmulKernel::Naive),
    }
}
