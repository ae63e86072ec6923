//! The analysis passes that run before anything is allocated: which nodes the loss depends
//! on and which need gradients (liveness), and where each parameter sits in the flat blocks
//! (layout).

use super::NodeId;
use super::builder::{Node, Op, operands};
use super::fusion::Fusion;
use crate::device::gpu::Gpu;
use crate::device::tensor::{Tensor, check_binding_size};
use crate::error::{Error, Result};

const OP: &str = "GraphBuilder::build";

/// Per node: whether the loss depends on it (`live`) and whether it needs a gradient (it is
/// a parameter, or depends on one).
pub(super) struct Liveness {
    pub live: Vec<bool>,
    pub needs_grad: Vec<bool>,
}

impl Liveness {
    /// Checks that `loss` is a loss node whose targets depend on no parameter.
    pub(super) fn analyze(nodes: &[Node], loss: NodeId) -> Result<Liveness> {
        let Some(Node {
            op: Op::Loss(_, _, targets),
            ..
        }) = nodes.get(loss.0)
        else {
            return Err(Error::invalid(
                OP,
                "loss",
                "a node made by GraphBuilder::loss",
                format!("{loss:?}"),
            ));
        };
        let n = nodes.len();
        let mut live = vec![false; n];
        live[loss.0] = true;
        for i in (0..n).rev() {
            if live[i] {
                for input in operands(nodes[i].op) {
                    live[input.0] = true;
                }
            }
        }
        let mut needs_grad = vec![false; n];
        for i in 0..n {
            needs_grad[i] = live[i]
                && match nodes[i].op {
                    Op::Param => true,
                    Op::Input => false,
                    op => operands(op).iter().any(|x| needs_grad[x.0]),
                };
        }
        if needs_grad[targets.0] {
            return Err(Error::invalid(
                OP,
                "loss targets",
                "a value that depends on no parameter",
                &nodes[targets.0].name,
            ));
        }
        Ok(Liveness { live, needs_grad })
    }
}

/// Where each parameter starts in one model's stretch of the flat blocks (offsets aligned
/// for binding), the stretch's length, and its starting values.
pub(super) struct ParamLayout {
    pub offsets: Vec<Option<usize>>,
    pub total: usize,
    pub initial: Vec<f32>,
}

impl ParamLayout {
    /// Lays out `param_init` for `models` stacked models, checking the stack fits a binding.
    pub(super) fn plan(
        gpu: &Gpu,
        nodes: usize,
        param_init: &[(NodeId, Vec<f32>)],
        models: usize,
    ) -> Result<ParamLayout> {
        let align = gpu.binding_alignment();
        let mut offsets = vec![None; nodes];
        let mut total = 0usize;
        for (id, init) in param_init {
            offsets[id.0] = Some(total);
            total += init.len().div_ceil(align) * align;
        }
        if total == 0 {
            return Err(Error::invalid(OP, "parameters", "at least one parameter", 0));
        }
        check_binding_size(gpu, OP, "the parameter block", total.saturating_mul(models))?;
        let mut initial = vec![0.0f32; total];
        for (id, init) in param_init {
            let start = offsets[id.0].unwrap_or_default();
            initial[start..start + init.len()].copy_from_slice(init);
        }
        Ok(ParamLayout {
            offsets,
            total,
            initial,
        })
    }
}

/// Each parameter's view of a block laid out like the flat parameters (its gradients, its
/// optimizer state): in every model, `layout.total` apart.
pub(super) struct ParamViews<'a> {
    pub layout: &'a ParamLayout,
    pub nodes: &'a [Node],
    pub models: usize,
}

impl ParamViews<'_> {
    pub(super) fn of(&self, block: &Tensor) -> Vec<Option<Tensor>> {
        (0..self.nodes.len())
            .map(|i| {
                self.layout.offsets[i].map(|offset| {
                    block
                        .view(offset, &self.nodes[i].shape)
                        .stack(self.models, self.layout.total)
                })
            })
            .collect()
    }

    /// [`ParamViews::of`] where the block is kept, else no views.
    pub(super) fn of_if(&self, kept: bool, block: &Tensor) -> Vec<Option<Tensor>> {
        match kept {
            true => self.of(block),
            false => (0..self.nodes.len()).map(|_| None).collect(),
        }
    }
}

/// Every node's value: parameters are views of the flat block (`params`), everything else its
/// own tensor, but for the intermediates a fused kernel never materialises.
pub(super) fn allocate_values(
    gpu: &Gpu,
    nodes: &[Node],
    live: &[bool],
    fusion: &Fusion,
    mut params: Vec<Option<Tensor>>,
    models: usize,
) -> Result<Vec<Option<Tensor>>> {
    let mut values = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        values.push(match (live[i] && !fusion.fused_away[i], node.op) {
            (false, _) => None,
            (true, Op::Param) => params[i].take(),
            (true, _) => Some(Tensor::stacked_zeros(gpu, models, &node.shape)?),
        });
    }
    Ok(values)
}
