//! The schedule passes: the forward dispatches in node order, then the backward ones from the
//! loss to the front, each op turning its output gradient into its inputs' gradients.

use super::NodeId;
use super::builder::{Node, Op};
use super::fusion::Fusion;
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::Result;
use crate::ops::{self, Activation};
use crate::ops::{MatmulKernel, MatmulLayout};

/// What the schedule passes read: the nodes and their analysis, every node's value, and the
/// loss's row weights and the models' `active` flags that every step shares.
pub(super) struct Context<'a> {
    pub gpu: &'a Gpu,
    pub nodes: &'a [Node],
    pub live: &'a [bool],
    pub needs_grad: &'a [bool],
    pub fusion: &'a Fusion,
    pub values: &'a [Option<Tensor>],
    pub row_weights: &'a Tensor,
    pub active: &'a Tensor,
}

/// The arguments of a matmul with its follow-up fused in.
struct Product<'a> {
    layout: MatmulLayout,
    a: &'a Tensor,
    b: &'a Tensor,
    c: &'a Tensor,
    accumulate: bool,
    epilogue: ops::Epilogue<'a>,
}

fn product<'a>(
    layout: MatmulLayout,
    a: &'a Tensor,
    b: &'a Tensor,
    c: &'a Tensor,
    accumulate: bool,
    epilogue: ops::Epilogue<'a>,
) -> Product<'a> {
    Product {
        layout,
        a,
        b,
        c,
        accumulate,
        epilogue,
    }
}

impl Context<'_> {
    fn value(&self, id: NodeId) -> &Tensor {
        self.values[id.0].as_ref().expect("live nodes have values")
    }

    fn needs_grad(&self, id: NodeId) -> bool {
        self.needs_grad[id.0]
    }

    /// A matmul with the kernel [`MatmulKernel::choose`] picks for its shape, skipping the
    /// models whose `active` flag is 0.
    fn matmul(&self, p: Product<'_>) -> Result<Dispatch> {
        let (rows, cols) = p.c.dims2("matmul", "c")?;
        let (a_rows, a_cols) = p.a.dims2("matmul", "a")?;
        let k = if p.layout == MatmulLayout::AtB { a_rows } else { a_cols };
        let kernel = MatmulKernel::choose(self.gpu, p.layout, rows, k, cols);
        let options = ops::MatmulOptions::new(kernel, p.layout)
            .accumulate(p.accumulate)
            .epilogue(p.epilogue)
            .gated(self.active);
        ops::matmul_with(self.gpu, p.a, p.b, p.c, options)
    }
}

/// The forward pass: one dispatch per live op (a fused layer's in one), which of them
/// computes the loss value (a step whose loss nobody reads can skip it), and per node the
/// dispatch that computes it.
pub(super) struct Forward {
    pub dispatches: Vec<Dispatch>,
    pub loss_at: Option<usize>,
    pub at: Vec<Option<usize>>,
}

/// The forward pass's dispatches (see [`Forward`]).
pub(super) fn forward(cx: &Context<'_>) -> Result<Forward> {
    let mut forward = Vec::new();
    let mut loss_at = None;
    let mut at = vec![None; cx.nodes.len()];
    for (i, node) in cx.nodes.iter().enumerate() {
        if !cx.live[i] || cx.fusion.fused_away[i] {
            continue;
        }
        at[i] = Some(forward.len());
        let out = cx.value(NodeId(i));
        let forward_product =
            |a, b, epilogue| product(MatmulLayout::AB, cx.value(a), cx.value(b), out, false, epilogue);
        if let Some((a, b, bias, activation)) = cx.fusion.layer_at[i] {
            // matmul, bias add (and activation) in one dispatch
            let epilogue = match activation {
                Some(activation) => ops::Epilogue::BiasAct(cx.value(bias), activation),
                None => ops::Epilogue::Bias(cx.value(bias)),
            };
            forward.push(cx.matmul(forward_product(a, b, epilogue))?);
            continue;
        }
        let (gpu, rows) = (cx.gpu, cx.row_weights);
        forward.push(match node.op {
            Op::Input | Op::Param => continue,
            Op::MatMul(a, b) => cx.matmul(forward_product(a, b, ops::Epilogue::None))?,
            Op::BiasAdd(x, b) => ops::bias_add_forward(gpu, cx.value(x), cx.value(b), out)?,
            Op::Activation(activation, x) => ops::activation_forward(gpu, activation, cx.value(x), out)?,
            Op::Add(a, b) => ops::add(gpu, cx.value(a), cx.value(b), out)?,
            Op::Loss(loss, y, t) => {
                loss_at = Some(forward.len());
                ops::loss_forward(gpu, loss, cx.value(y), cx.value(t), rows, out)?
            }
        });
    }
    Ok(Forward {
        dispatches: forward,
        loss_at,
        at,
    })
}

/// The backward pass: each node's gradient buffer, the dispatches, and the loss fused with
/// its gradient where the loss kernel can do both.
pub(super) struct Backward {
    pub grads: Vec<Option<Tensor>>,
    pub dispatches: Vec<Dispatch>,
    /// The loss value and its gradient in one dispatch, standing for the forward pass's loss
    /// dispatch and the backward dispatch at this index, in a step that computes both.
    pub loss_with_gradient: Option<(usize, Dispatch)>,
    /// Each layer's weight (and bias) gradient dispatch, for the fused step to group.
    pub weight_grads: Vec<WeightGradPlan>,
    /// The loss's gradient dispatch, for the fused step to fold into the output layer.
    pub loss_grad: Option<LossGradPlan>,
    /// Per node, how many dispatches write or add to its gradient.
    pub contributions: Vec<u32>,
}

/// A layer's `dW = xᵀ·dY` (with `db = Σ dY` when `bias`) at backward dispatch `at`.
pub(super) struct WeightGradPlan {
    pub at: usize,
    pub x: Tensor,
    pub d_y: Tensor,
    pub weight: NodeId,
    pub bias: Option<NodeId>,
}

/// The loss's gradient at backward dispatch `at`: of `loss` at prediction `y = act(z)`
/// (`activation`, identity when none is folded in) into `d_target`, z's gradient (y's).
pub(super) struct LossGradPlan {
    pub at: usize,
    pub loss: crate::ops::Loss,
    /// The loss node (its value is the loss).
    pub node: NodeId,
    pub prediction: NodeId,
    pub target: NodeId,
    pub activation: Activation,
    pub d_target: Tensor,
}

/// The backward pass, from the loss to the front: each node's gradient buffer (parameters'
/// are `param_grads`, views of the flat block) and the dispatches. The first contribution
/// to a gradient writes it, later ones (forks) accumulate into it.
pub(super) fn backward(cx: &Context<'_>, param_grads: Vec<Option<Tensor>>, models: usize) -> Result<Backward> {
    let n = cx.nodes.len();
    let mut plan = BackwardPlan {
        gpu: cx.gpu,
        grads: (0..n).map(|_| None).collect(),
        written: vec![false; n],
        param_grads,
        shapes: cx.nodes.iter().map(|node| node.shape.clone()).collect(),
        models,
        dispatches: Vec::new(),
        loss_with_gradient: None,
        weight_grads: Vec::new(),
        loss_grad: None,
        contributions: vec![0; n],
    };
    for i in (0..n).rev() {
        if !cx.needs_grad[i] {
            continue;
        }
        let out = NodeId(i);
        match cx.nodes[i].op {
            Op::Input | Op::Param => {}
            Op::Loss(..) => loss_backward(cx, &mut plan, out)?,
            Op::MatMul(a, b) => matmul_backward(cx, &mut plan, out, a, b)?,
            Op::BiasAdd(x, bias) => {
                let d_out = plan.grad(out);
                // A fused layer's bias gradient rides on its weight gradient (below).
                let deferred = cx.fusion.weights_of(cx.nodes, x).is_some_and(|w| cx.needs_grad(w));
                if cx.needs_grad(bias) && !deferred {
                    plan.contribute(bias, |d_b, acc| ops::bias_add_backward(cx.gpu, &d_out, d_b, acc))?;
                }
                if cx.needs_grad(x) {
                    plan.pass_through(x, &d_out)?;
                }
            }
            Op::Activation(..) if cx.fusion.activation_folded[i] => {} // done by its consumer
            Op::Activation(activation, x) => {
                let d_out = plan.grad(out);
                let saved = cx.value(if activation.grad_from_output() { out } else { x });
                plan.contribute(x, |d_x, acc| {
                    ops::activation_backward(cx.gpu, activation, &d_out, saved, d_x, acc)
                })?;
            }
            Op::Add(a, b) => {
                let d_out = plan.grad(out);
                if cx.needs_grad(b) {
                    plan.contribute(b, |d_b, acc| ops::copy(cx.gpu, &d_out, d_b, acc))?;
                }
                if cx.needs_grad(a) {
                    plan.pass_through(a, &d_out)?;
                }
            }
        }
    }
    Ok(Backward {
        grads: plan.grads,
        dispatches: plan.dispatches,
        loss_with_gradient: plan.loss_with_gradient,
        weight_grads: plan.weight_grads,
        loss_grad: plan.loss_grad,
        contributions: plan.contributions,
    })
}

/// The loss's gradient: at its prediction, or through the prediction's activation when the
/// loss kernel applies that activation's slope itself.
fn loss_backward(cx: &Context<'_>, plan: &mut BackwardPlan<'_>, loss_node: NodeId) -> Result<()> {
    let Op::Loss(loss, y, t) = cx.nodes[loss_node.0].op else {
        return Ok(());
    };
    let (prediction, target_node) = (y, t);
    // The loss is the first node planned: its contribution is the first.
    let (target, activation) = match cx.fusion.folded_activation(cx.nodes, y) {
        Some((z, activation)) => (z, activation),
        None => (y, Activation::Identity),
    };
    if !cx.needs_grad(target) {
        return Ok(());
    }
    let d_target = plan.target(target)?;
    let (y, t) = (cx.value(y), cx.value(t));
    let dispatch = ops::loss_backward(cx.gpu, loss, activation, y, t, cx.row_weights, &d_target)?;
    let out = cx.value(loss_node);
    let fused = ops::loss_with_gradient(cx.gpu, loss, activation, y, t, cx.row_weights, out, &d_target)?;
    plan.loss_with_gradient = fused.map(|fused| (plan.dispatches.len(), fused));
    plan.loss_grad = Some(LossGradPlan {
        at: plan.dispatches.len(),
        loss,
        node: loss_node,
        prediction,
        target: target_node,
        activation,
        d_target: d_target.alias(),
    });
    plan.dispatches.push(dispatch);
    plan.written[target.0] = true;
    plan.contributions[target.0] += 1;
    Ok(())
}

/// `Y = A·W`: `dW = Aᵀ·dY` (with a fused layer's bias gradient in the same dispatch) and
/// `dA = dY·Wᵀ` (through A's activation when that is folded in).
fn matmul_backward(cx: &Context<'_>, plan: &mut BackwardPlan<'_>, out: NodeId, a: NodeId, w: NodeId) -> Result<()> {
    let d_out = plan.grad(out);
    let bias = cx.fusion.bias_of[out.0].filter(|&bias| cx.needs_grad(bias));
    match bias {
        // dW = Aᵀ·dY and db = Σ_rows dY in one dispatch, when both start (or both
        // accumulate) here.
        Some(bias) if cx.needs_grad(w) && plan.written[w.0] == plan.written[bias.0] => {
            let (d_w, d_bias) = (plan.target(w)?, plan.target(bias)?);
            // d_w (IN,OUT) and its row of bias gradients: IN + 1 rows
            let (batch, inputs) = cx.value(a).dims2("GraphBuilder::build", "layer input")?;
            let (_, outputs) = d_out.dims2("GraphBuilder::build", "output gradient")?;
            let kernel = MatmulKernel::choose_for_bias_grad(cx.gpu, inputs + 1, batch, outputs);
            let options = ops::MatmulOptions::new(kernel, MatmulLayout::AtB)
                .accumulate(plan.written[w.0])
                .gated(cx.active);
            let dispatch = ops::matmul_bias_grad_with(cx.gpu, cx.value(a), &d_out, &d_w, &d_bias, options)?;
            plan.weight_grads.push(WeightGradPlan {
                at: plan.dispatches.len(),
                x: cx.value(a).alias(),
                d_y: d_out.alias(),
                weight: w,
                bias: Some(bias),
            });
            plan.dispatches.push(dispatch);
            plan.contributions[w.0] += 1;
            plan.contributions[bias.0] += 1;
            plan.written[w.0] = true;
            plan.written[bias.0] = true;
        }
        _ => {
            if cx.needs_grad(w) {
                // dW (K,N) = Aᵀ (K,M) · dY (M,N)
                plan.contribute(w, |d_w, acc| {
                    cx.matmul(product(
                        MatmulLayout::AtB,
                        cx.value(a),
                        &d_out,
                        d_w,
                        acc,
                        ops::Epilogue::None,
                    ))
                })?;
            }
            if let Some(bias) = bias.filter(|_| cx.needs_grad(w)) {
                // deferred by the bias add: dY is its gradient too
                plan.contribute(bias, |d_bias, acc| ops::bias_add_backward(cx.gpu, &d_out, d_bias, acc))?;
            }
        }
    }
    match cx.fusion.folded_activation(cx.nodes, a) {
        // A = act(Z): dZ = (dY · Wᵀ) ⊙ act'(A) in one dispatch
        Some((z, activation)) if cx.needs_grad(z) => plan.contribute(z, |d_z, acc| {
            let epilogue = ops::Epilogue::ActGrad(cx.value(a), activation);
            cx.matmul(product(MatmulLayout::ABt, &d_out, cx.value(w), d_z, acc, epilogue))
        }),
        Some(_) => Ok(()),
        // dX (M,K) = dY (M,N) · Wᵀ (N,K)
        None if cx.needs_grad(a) => plan.contribute(a, |d_a, acc| {
            cx.matmul(product(
                MatmulLayout::ABt,
                &d_out,
                cx.value(w),
                d_a,
                acc,
                ops::Epilogue::None,
            ))
        }),
        None => Ok(()),
    }
}

/// Gradient buffers and dispatches while the backward schedule is being planned.
struct BackwardPlan<'a> {
    gpu: &'a Gpu,
    grads: Vec<Option<Tensor>>,
    written: Vec<bool>,
    param_grads: Vec<Option<Tensor>>,
    shapes: Vec<Vec<usize>>,
    models: usize,
    dispatches: Vec<Dispatch>,
    loss_with_gradient: Option<(usize, Dispatch)>,
    weight_grads: Vec<WeightGradPlan>,
    loss_grad: Option<LossGradPlan>,
    contributions: Vec<u32>,
}

impl BackwardPlan<'_> {
    /// The gradient buffer of `node`, allocated on first use (a view of the flat block for
    /// parameters).
    fn target(&mut self, node: NodeId) -> Result<Tensor> {
        if self.grads[node.0].is_none() {
            let tensor = match self.param_grads[node.0].take() {
                Some(view) => view,
                None => Tensor::stacked_zeros(self.gpu, self.models, &self.shapes[node.0])?,
            };
            self.grads[node.0] = Some(tensor);
        }
        Ok(self.grads[node.0].as_ref().expect("just set").alias())
    }

    /// The finished gradient of `node` (all its consumers were planned before it).
    fn grad(&self, node: NodeId) -> Tensor {
        self.grads[node.0]
            .as_ref()
            .expect("consumers are planned first")
            .alias()
    }

    /// Adds `make(d_target, accumulate)` to the schedule.
    fn contribute(&mut self, target: NodeId, make: impl FnOnce(&Tensor, bool) -> Result<Dispatch>) -> Result<()> {
        let d_target = self.target(target)?;
        self.dispatches.push(make(&d_target, self.written[target.0])?);
        self.written[target.0] = true;
        self.contributions[target.0] += 1;
        Ok(())
    }

    /// `d_target += d_out` for an op whose local derivative is the identity. When this is the
    /// first contribution the gradient simply IS `d_out` (no dispatch): every read of
    /// `d_out` was planned already, so later accumulation into it harms nothing.
    fn pass_through(&mut self, target: NodeId, d_out: &Tensor) -> Result<()> {
        if !self.written[target.0] && self.param_grads[target.0].is_none() && self.grads[target.0].is_none() {
            self.grads[target.0] = Some(d_out.alias());
            self.written[target.0] = true;
            return Ok(());
        }
        let gpu = self.gpu;
        self.contribute(target, |d_target, acc| ops::copy(gpu, d_out, d_target, acc))
    }
}
