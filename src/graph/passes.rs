//! The analysis passes that run before anything is allocated: which nodes the loss depends
//! on and which need gradients (liveness), and where each parameter sits in the flat blocks
//! (layout).

use super::NodeId;
use super::builder::{Node, Op, operands};
use crate::device::gpu::Gpu;
use crate::device::tensor::check_binding_size;
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
