//! The host-side graph: ops over inputs and parameters, a backward schedule derived from the
//! loss, every buffer allocated once, and a whole training step (forward, loss, backward,
//! optimizer update) recorded into one command encoder and one submit.
//!
//! ```no_run
//! use wgpu_mlp::{Gpu, GraphBuilder, Sgd};
//! let gpu = Gpu::new()?;
//! let mut b = GraphBuilder::new();
//! let x = b.input("x", [4, 2])?;                       // x (B,IN)
//! let t = b.input("t", [4, 1])?;                       // t (B,OUT)
//! let w = b.param("w", &[2, 1], &[0.5, -0.5])?;        // w (IN,OUT)
//! let bias = b.param("b", &[1], &[0.0])?;
//! let xw = b.matmul(x, w)?;
//! let z = b.bias_add(xw, bias)?;
//! let y = b.sigmoid(z)?;
//! let loss = b.mse(y, t)?;
//! let mut graph = b.build(&gpu, loss, Sgd::new(0.5))?;
//! graph.write(x, &[0., 0., 0., 1., 1., 0., 1., 1.])?;
//! graph.write(t, &[0., 1., 1., 1.])?;
//! graph.steps(100)?;                                    // one submit for all 100 steps
//! println!("loss {}", graph.loss()?);
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, MatmulKernel, MatmulLayout};
use crate::ops::{self, Activation, Loss};
use crate::optim::Optimizer;
use crate::tensor::{Tensor, check_binding_size};

/// A value in a graph: an input, a parameter or an op's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Input,
    Param,
    /// y (M,N) = a (M,K) · b (K,N)
    MatMul(NodeId, NodeId),
    /// y (B,N) = x (B,N) + bias (N)
    BiasAdd(NodeId, NodeId),
    /// y = act(x)
    Activation(Activation, NodeId),
    /// y = a + b
    Add(NodeId, NodeId),
    /// loss (1) = Σ_i w_i · E(y_i, t_i), w_i the row weights (1/B each unless a trainer
    /// rewrites them: 0 for the padding rows of a partial batch)
    Loss(Loss, NodeId, NodeId),
}

struct Node {
    op: Op,
    name: String,
    shape: Vec<usize>,
}

/// Composes a graph; [`GraphBuilder::build`] turns it into a [`Graph`] on a device.
#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
    param_init: Vec<(NodeId, Vec<f32>)>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, op: Op, name: String, shape: Vec<usize>) -> NodeId {
        self.nodes.push(Node { op, name, shape });
        NodeId(self.nodes.len() - 1)
    }

    fn node(&self, op: &'static str, id: NodeId) -> Result<&Node> {
        let node = self.nodes.get(id.0).ok_or_else(|| {
            Error::invalid(
                op,
                "node",
                format!("a node of this graph (< {})", self.nodes.len()),
                id.0,
            )
        })?;
        if let Op::Loss(..) = node.op {
            return Err(Error::invalid(
                op,
                "input node",
                "a tensor node",
                format!("the loss `{}`", node.name),
            ));
        }
        Ok(node)
    }

    fn dims2(&self, op: &'static str, id: NodeId) -> Result<(usize, usize)> {
        let node = self.node(op, id)?;
        match node.shape[..] {
            [rows, cols] => Ok((rows, cols)),
            _ => Err(Error::shape(
                op,
                &node.name,
                "a rank-2 shape [rows, cols]",
                format!("{:?}", node.shape),
            )),
        }
    }

    /// A data input of shape `[rows, cols]`, written with [`Graph::write`].
    pub fn input(&mut self, name: &str, shape: [usize; 2]) -> Result<NodeId> {
        if shape.contains(&0) {
            return Err(Error::shape(
                "GraphBuilder::input",
                name,
                "non-zero dimensions",
                format!("{shape:?}"),
            ));
        }
        Ok(self.push(Op::Input, name.to_string(), shape.to_vec()))
    }

    /// A trainable parameter with its initial values (row-major).
    pub fn param(&mut self, name: &str, shape: &[usize], init: &[f32]) -> Result<NodeId> {
        const OP: &str = "GraphBuilder::param";
        if shape.is_empty() || shape.len() > 2 || shape.contains(&0) {
            return Err(Error::shape(
                OP,
                name,
                "rank 1 or 2 with non-zero dimensions",
                format!("{shape:?}"),
            ));
        }
        let len: usize = shape.iter().product();
        if init.len() != len {
            return Err(Error::shape(OP, format!("{name} initial values"), len, init.len()));
        }
        if let Some(i) = init.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(OP, format!("{name}[{i}]"), "a finite value", init[i]));
        }
        let id = self.push(Op::Param, name.to_string(), shape.to_vec());
        self.param_init.push((id, init.to_vec()));
        Ok(id)
    }

    /// `a (M,K) · b (K,N)`.
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        const OP: &str = "GraphBuilder::matmul";
        let (m, k) = self.dims2(OP, a)?;
        let (k_b, n) = self.dims2(OP, b)?;
        if k != k_b {
            let name = &self.nodes[b.0].name;
            return Err(Error::shape(OP, format!("{name} (rows)"), k, k_b));
        }
        let name = format!("{}·{}", self.nodes[a.0].name, self.nodes[b.0].name);
        Ok(self.push(Op::MatMul(a, b), name, vec![m, n]))
    }

    /// `x (B,N) + bias (N)`, broadcast over the rows.
    pub fn bias_add(&mut self, x: NodeId, bias: NodeId) -> Result<NodeId> {
        const OP: &str = "GraphBuilder::bias_add";
        let (rows, cols) = self.dims2(OP, x)?;
        let b = self.node(OP, bias)?;
        let len: usize = b.shape.iter().product();
        if len != cols {
            return Err(Error::shape(
                OP,
                format!("{} (bias)", b.name),
                format!("{cols} elements"),
                len,
            ));
        }
        let name = format!("{}+{}", self.nodes[x.0].name, b.name);
        Ok(self.push(Op::BiasAdd(x, bias), name, vec![rows, cols]))
    }

    /// `act(x)` element-wise.
    pub fn activation(&mut self, activation: Activation, x: NodeId) -> Result<NodeId> {
        let node = self.node("GraphBuilder::activation", x)?;
        let (name, shape) = (format!("{}({})", activation.name(), node.name), node.shape.clone());
        Ok(self.push(Op::Activation(activation, x), name, shape))
    }

    /// `σ(x)` element-wise: [`GraphBuilder::activation`] with [`Activation::Sigmoid`].
    pub fn sigmoid(&mut self, x: NodeId) -> Result<NodeId> {
        self.activation(Activation::Sigmoid, x)
    }

    /// `a + b`, same shapes, distinct nodes.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        const OP: &str = "GraphBuilder::add";
        let (na, nb) = (self.node(OP, a)?, self.node(OP, b)?);
        if na.shape != nb.shape {
            return Err(Error::shape(
                OP,
                &nb.name,
                format!("{:?}", na.shape),
                format!("{:?}", nb.shape),
            ));
        }
        if a == b {
            return Err(Error::invalid(
                OP,
                "operands",
                "two distinct nodes",
                format!("`{}` twice", na.name),
            ));
        }
        let (name, shape) = (format!("{}+{}", na.name, nb.name), na.shape.clone());
        Ok(self.push(Op::Add(a, b), name, shape))
    }

    /// The mean-squared-error loss of prediction `y (B,N)` against targets `t (B,N)`:
    /// [`GraphBuilder::loss`] with [`Loss::Mse`].
    pub fn mse(&mut self, y: NodeId, t: NodeId) -> Result<NodeId> {
        self.loss(Loss::Mse, y, t)
    }

    /// The batch mean of `loss` of prediction `y (B,N)` against targets `t (B,N)`.
    pub fn loss(&mut self, loss: Loss, y: NodeId, t: NodeId) -> Result<NodeId> {
        const OP: &str = "GraphBuilder::loss";
        let shape_y = self.dims2(OP, y)?;
        let shape_t = self.dims2(OP, t)?;
        if shape_y != shape_t {
            return Err(Error::shape(
                OP,
                "targets",
                format!("{shape_y:?}"),
                format!("{shape_t:?}"),
            ));
        }
        let name = format!("{}({})", loss.name(), self.nodes[y.0].name);
        Ok(self.push(Op::Loss(loss, y, t), name, vec![1]))
    }

    /// Plans and allocates everything on `gpu`: node values, gradients, one flat block each
    /// for parameters, their gradients and velocities, and every kernel's bind group.
    pub fn build(self, gpu: &Gpu, loss: NodeId, optimizer: impl Into<Optimizer>) -> Result<Graph> {
        Graph::new(gpu, self, loss, &[optimizer.into()])
    }

    /// [`GraphBuilder::build`] for a stack of models, one per entry of `optimizers`: the
    /// same graph, every value, gradient, parameter and velocity once per model, and every
    /// kernel launched once for all of them. Parameters start from the builder's values in
    /// every model.
    pub(crate) fn build_stacked(self, gpu: &Gpu, loss: NodeId, optimizers: &[Optimizer]) -> Result<Graph> {
        Graph::new(gpu, self, loss, optimizers)
    }
}

/// A graph on the device, ready to train. See the [module docs](self) for an example.
pub struct Graph {
    gpu: Gpu,
    ops: Vec<Op>,
    names: Vec<String>,
    values: Vec<Option<Tensor>>,
    grads: Vec<Option<Tensor>>,
    loss: NodeId,
    /// How many models are stacked (1 unless built by `build_stacked`).
    models: usize,
    /// Per-row weights of the loss (1/B each by default).
    row_weights: Tensor,
    /// All parameters back to back (offsets aligned for binding), and the same layout for
    /// their gradients and velocities, so one optimizer dispatch updates them all.
    flat_params: Tensor,
    /// Read and written only by kernels; held so its memory stays counted in the stats.
    _flat_grads: Tensor,
    flat_velocity: Tensor,
    /// Each parameter's velocity: a view of `flat_velocity` (None for other nodes).
    velocities: Vec<Option<Tensor>>,
    /// Where each parameter starts in the flat blocks (model 0's; each further model's
    /// stretch follows the one before).
    param_offsets: Vec<Option<usize>>,
    forward: Vec<Dispatch>,
    backward: Vec<Dispatch>,
    /// The optimizer's dispatches (Adam: a step count, then the update).
    update: Vec<Dispatch>,
    /// Each model's optimizer, and the same as the update kernel reads it.
    optimizers: Vec<Optimizer>,
    /// Adam's second moments in the layout of the parameters (a stand-in without Adam),
    /// and each parameter's view of them.
    flat_second_moment: Tensor,
    second_moments: Vec<Option<Tensor>>,
    /// Per model: its optimizer step count and Adam's bias corrections.
    model_state: Tensor,
    hyperparams: Tensor,
    /// Per model, whether the update moves it (u32; all 1 unless a trainer's gather kernel
    /// rewrites them batch by batch).
    active: Tensor,
}

impl Graph {
    fn new(gpu: &Gpu, builder: GraphBuilder, loss: NodeId, optimizers: &[Optimizer]) -> Result<Graph> {
        const OP: &str = "GraphBuilder::build";
        let models = optimizers.len();
        if models == 0 {
            return Err(Error::invalid(OP, "models", "at least 1", 0));
        }
        for optimizer in optimizers {
            optimizer.validate()?;
        }
        let nodes = builder.nodes;
        let Some(Node { op: Op::Loss(..), .. }) = nodes.get(loss.0) else {
            return Err(Error::invalid(
                OP,
                "loss",
                "a node made by GraphBuilder::loss",
                format!("{loss:?}"),
            ));
        };

        // Which nodes the loss depends on, and which of those need a gradient.
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
        if let Op::Loss(_, _, t) = nodes[loss.0].op
            && needs_grad[t.0]
        {
            return Err(Error::invalid(
                OP,
                "loss targets",
                "a value that depends on no parameter",
                &nodes[t.0].name,
            ));
        }

        // The parameter block: each parameter at an offset aligned for binding.
        let align = gpu.binding_alignment();
        let mut offsets = vec![0usize; n];
        let mut total = 0usize;
        for (id, init) in &builder.param_init {
            offsets[id.0] = total;
            total += init.len().div_ceil(align) * align;
        }
        if total == 0 {
            return Err(Error::invalid(OP, "parameters", "at least one parameter", 0));
        }
        let stacked_total = total.saturating_mul(models);
        check_binding_size(gpu, OP, "the parameter block", stacked_total)?;
        let mut host_params = vec![0.0f32; total];
        for (id, init) in &builder.param_init {
            host_params[offsets[id.0]..offsets[id.0] + init.len()].copy_from_slice(init);
        }
        let flat_params = Tensor::from_slice(gpu, &[stacked_total], &host_params.repeat(models))?;
        let flat_grads = Tensor::zeros(gpu, &[stacked_total])?;
        let flat_velocity = Tensor::zeros(gpu, &[stacked_total])?;
        let adam = optimizers.iter().any(Optimizer::needs_second_moment);
        let flat_second_moment = Tensor::zeros(gpu, &[if adam { stacked_total } else { 1 }])?;
        let model_state = Tensor::zeros(gpu, &[ops::MODEL_STATE_WORDS * models])?;
        // A parameter (or its gradient, or velocity) in every model: `total` apart.
        let param_view = |block: &Tensor, i: usize| block.view(offsets[i], &nodes[i].shape).stack(models, total);

        let fusion = Fusion::plan(&nodes, &live);
        // Per model, whether it takes part in the step: its matmuls and update skip it when 0.
        let active = Tensor::from_u32(gpu, &[models], &vec![1; models])?;
        let matmul = |layout, a: &Tensor, b: &Tensor, c: &Tensor, accumulate, epilogue| {
            gated_matmul(gpu, layout, a, b, c, accumulate, epilogue, &active)
        };

        // Values: parameters are views of the block, everything else its own tensor, but for
        // the intermediates a fused kernel never materialises.
        let mut values: Vec<Option<Tensor>> = Vec::with_capacity(n);
        for (i, node) in nodes.iter().enumerate() {
            values.push(match (live[i] && !fusion.fused_away[i], node.op) {
                (false, _) => None,
                (true, Op::Param) => Some(param_view(&flat_params, i)),
                (true, _) => Some(Tensor::stacked_zeros(gpu, models, &node.shape)?),
            });
        }
        let value = |id: NodeId| values[id.0].as_ref().expect("live nodes have values");
        // The loss weights every row 1/B; a trainer's gather kernel rewrites them for a
        // partial batch (padding rows weigh 0).
        let Op::Loss(_, prediction, _) = nodes[loss.0].op else {
            return Err(Error::invalid(
                OP,
                "loss",
                "a node made by GraphBuilder::loss",
                &nodes[loss.0].name,
            ));
        };
        let batch_rows = nodes[prediction.0].shape[0];
        let row_weights = Tensor::full(gpu, &[models, batch_rows], 1.0 / batch_rows as f32)?
            .view(0, &[batch_rows])
            .stack(models, batch_rows);

        let mut forward = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if !live[i] || fusion.fused_away[i] {
                continue;
            }
            let out = value(NodeId(i));
            if let Some((a, b, bias, activation)) = fusion.layer_at[i] {
                // matmul, bias add (and activation) in one dispatch
                let epilogue = match activation {
                    Some(activation) => ops::Epilogue::BiasAct(value(bias), activation),
                    None => ops::Epilogue::Bias(value(bias)),
                };
                forward.push(matmul(MatmulLayout::AB, value(a), value(b), out, false, epilogue)?);
                continue;
            }
            forward.push(match node.op {
                Op::Input | Op::Param => continue,
                Op::MatMul(a, b) => matmul(MatmulLayout::AB, value(a), value(b), out, false, ops::Epilogue::None)?,
                Op::BiasAdd(x, b) => ops::bias_add_forward(gpu, value(x), value(b), out)?,
                Op::Activation(activation, x) => ops::activation_forward(gpu, activation, value(x), out)?,
                Op::Add(a, b) => ops::add(gpu, value(a), value(b), out)?,
                Op::Loss(loss, y, t) => ops::loss_forward(gpu, loss, value(y), value(t), &row_weights, out)?,
            });
        }

        // Backward, from the loss to the front. The first contribution to a gradient
        // writes it, later ones (forks) accumulate into it.
        let mut plan = BackwardPlan {
            gpu,
            grads: (0..n).map(|_| None).collect(),
            written: vec![false; n],
            param_grads: (0..n)
                .map(|i| (nodes[i].op == Op::Param).then(|| param_view(&flat_grads, i)))
                .collect(),
            shapes: nodes.iter().map(|node| node.shape.clone()).collect(),
            models,
            dispatches: Vec::new(),
        };
        for i in (0..n).rev() {
            if !needs_grad[i] {
                continue;
            }
            let out = NodeId(i);
            match nodes[i].op {
                Op::Input | Op::Param => {}
                Op::Loss(loss, y, t) => match fusion.folded_activation(&nodes, y) {
                    // The loss is the first node planned: its contribution is the first.
                    Some((z, activation)) if needs_grad[z.0] => {
                        let d_z = plan.target(z)?;
                        let dispatch =
                            ops::loss_backward(gpu, loss, activation, value(y), value(t), &row_weights, &d_z)?;
                        plan.dispatches.push(dispatch);
                        plan.written[z.0] = true;
                    }
                    Some(_) => {}
                    None => {
                        let d_y = plan.target(y)?;
                        let identity = Activation::Identity;
                        plan.dispatches.push(ops::loss_backward(
                            gpu,
                            loss,
                            identity,
                            value(y),
                            value(t),
                            &row_weights,
                            &d_y,
                        )?);
                        plan.written[y.0] = true;
                    }
                },
                Op::MatMul(a, b) => {
                    let d_out = plan.grad(out);
                    let bias = fusion.bias_of[i].filter(|bias| needs_grad[bias.0]);
                    match bias {
                        // dW = Aᵀ·dY and db = Σ_rows dY in one dispatch, when both start
                        // (or both accumulate) here.
                        Some(bias) if needs_grad[b.0] && plan.written[b.0] == plan.written[bias.0] => {
                            let (d_w, d_bias) = (plan.target(b)?, plan.target(bias)?);
                            let accumulate = plan.written[b.0];
                            // d_w (IN,OUT) and its row of bias gradients: IN + 1 rows
                            let (_, inputs) = value(a).dims2(OP, "layer input")?;
                            let (_, outputs) = d_out.dims2(OP, "output gradient")?;
                            plan.dispatches.push(ops::matmul_bias_grad_gated(
                                gpu,
                                MatmulKernel::choose_for_bias_grad(gpu, inputs + 1, outputs),
                                value(a),
                                &d_out,
                                &d_w,
                                &d_bias,
                                accumulate,
                                &active,
                            )?);
                            plan.written[b.0] = true;
                            plan.written[bias.0] = true;
                        }
                        _ => {
                            if needs_grad[b.0] {
                                // dW (K,N) = Aᵀ (K,M) · dY (M,N)
                                plan.contribute(b, |d_b, acc| {
                                    matmul(MatmulLayout::AtB, value(a), &d_out, d_b, acc, ops::Epilogue::None)
                                })?;
                            }
                            if let Some(bias) = bias.filter(|_| needs_grad[b.0]) {
                                // deferred by the bias add: dY is its gradient too
                                plan.contribute(bias, |d_bias, acc| ops::bias_add_backward(gpu, &d_out, d_bias, acc))?;
                            }
                        }
                    }
                    match fusion.folded_activation(&nodes, a) {
                        // A = act(Z): dZ = (dY · Wᵀ) ⊙ act'(A) in one dispatch
                        Some((z, activation)) if needs_grad[z.0] => plan.contribute(z, |d_z, acc| {
                            let epilogue = ops::Epilogue::ActGrad(value(a), activation);
                            matmul(MatmulLayout::ABt, &d_out, value(b), d_z, acc, epilogue)
                        })?,
                        Some(_) => {}
                        // dX (M,K) = dY (M,N) · Wᵀ (N,K)
                        None if needs_grad[a.0] => plan.contribute(a, |d_a, acc| {
                            matmul(MatmulLayout::ABt, &d_out, value(b), d_a, acc, ops::Epilogue::None)
                        })?,
                        None => {}
                    }
                }
                Op::BiasAdd(x, bias) => {
                    let d_out = plan.grad(out);
                    // A fused layer's bias gradient rides on its weight gradient (below).
                    let deferred = fusion.weights_of(&nodes, x).is_some_and(|w| needs_grad[w.0]);
                    if needs_grad[bias.0] && !deferred {
                        plan.contribute(bias, |d_b, acc| ops::bias_add_backward(gpu, &d_out, d_b, acc))?;
                    }
                    if needs_grad[x.0] {
                        plan.pass_through(x, &d_out)?;
                    }
                }
                Op::Activation(..) if fusion.activation_folded[i] => {} // done by its consumer
                Op::Activation(activation, x) => {
                    let d_out = plan.grad(out);
                    let saved = if activation.grad_from_output() {
                        value(out)
                    } else {
                        value(x)
                    };
                    plan.contribute(x, |d_x, acc| {
                        ops::activation_backward(gpu, activation, &d_out, saved, d_x, acc)
                    })?;
                }
                Op::Add(a, b) => {
                    let d_out = plan.grad(out);
                    if needs_grad[b.0] {
                        plan.contribute(b, |d_b, acc| ops::copy(gpu, &d_out, d_b, acc))?;
                    }
                    if needs_grad[a.0] {
                        plan.pass_through(a, &d_out)?;
                    }
                }
            }
        }
        let grads = plan.grads;
        let backward = plan.dispatches;
        let hyperparams = Tensor::from_slice(
            gpu,
            &[ops::HYPERPARAM_WORDS * models],
            bytemuck::cast_slice(&hyperparams_of(optimizers)),
        )?;
        let state = ops::OptimizerState {
            velocity: &flat_velocity,
            second_moment: &flat_second_moment,
            model_state: &model_state,
            hyperparams: &hyperparams,
            active: &active,
        };
        let update = ops::optimizer_update_stacked(gpu, models, &flat_grads, &flat_params, state, adam)?;
        let velocities = (0..n)
            .map(|i| (nodes[i].op == Op::Param).then(|| param_view(&flat_velocity, i)))
            .collect();
        let second_moments = (0..n)
            .map(|i| (adam && nodes[i].op == Op::Param).then(|| param_view(&flat_second_moment, i)))
            .collect();
        let param_offsets = (0..n)
            .map(|i| (nodes[i].op == Op::Param).then_some(offsets[i]))
            .collect();

        Ok(Graph {
            gpu: gpu.clone(),
            ops: nodes.iter().map(|node| node.op).collect(),
            names: nodes.into_iter().map(|node| node.name).collect(),
            values,
            grads,
            loss,
            models,
            row_weights,
            flat_params,
            _flat_grads: flat_grads,
            flat_velocity,
            velocities,
            param_offsets,
            forward,
            backward,
            update,
            optimizers: optimizers.to_vec(),
            flat_second_moment,
            second_moments,
            model_state,
            hyperparams,
            active,
        })
    }

    /// The device this graph lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    fn live_value(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
        self.values.get(node.0).and_then(Option::as_ref).ok_or_else(|| {
            Error::invalid(
                op,
                "node",
                "a node the loss depends on that is not fused into another op's kernel",
                format!("{node:?}"),
            )
        })
    }

    /// Overwrites an input's or a parameter's values (row-major).
    pub fn write(&self, node: NodeId, data: &[f32]) -> Result<()> {
        const OP: &str = "Graph::write";
        let tensor = self.live_value(OP, node)?;
        if !matches!(self.ops[node.0], Op::Input | Op::Param) {
            return Err(Error::invalid(
                OP,
                "node",
                "an input or a parameter",
                &self.names[node.0],
            ));
        }
        if data.len() != tensor.len() * self.models {
            return Err(Error::shape(
                OP,
                &self.names[node.0],
                tensor.len() * self.models,
                data.len(),
            ));
        }
        tensor.write(data)
    }

    /// Reads a node's current value (every model's, one after the other, in a stack).
    pub fn read(&self, node: NodeId) -> Result<Vec<f32>> {
        self.live_value("Graph::read", node)?.to_vec()
    }

    fn velocity(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
        self.velocities
            .get(node.0)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::invalid(op, "node", "a parameter", format!("{node:?}")))
    }

    /// Reads a parameter's optimizer velocity.
    pub fn read_velocity(&self, node: NodeId) -> Result<Vec<f32>> {
        self.velocity("Graph::read_velocity", node)?.to_vec()
    }

    /// Overwrites a parameter's optimizer velocity (e.g. from a checkpoint).
    pub fn write_velocity(&self, node: NodeId, data: &[f32]) -> Result<()> {
        const OP: &str = "Graph::write_velocity";
        let tensor = self.velocity(OP, node)?;
        if data.len() != tensor.len() * self.models {
            return Err(Error::shape(
                OP,
                &self.names[node.0],
                tensor.len() * self.models,
                data.len(),
            ));
        }
        tensor.write(data)
    }

    /// Reads the loss' gradient with respect to `node` from the last step (or
    /// [`Graph::compute_gradients`]).
    pub fn read_grad(&self, node: NodeId) -> Result<Vec<f32>> {
        self.grads
            .get(node.0)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                Error::invalid(
                    "Graph::read_grad",
                    "node",
                    "a node with a gradient",
                    format!("{node:?}"),
                )
            })?
            .to_vec()
    }

    /// The loss computed by the last forward pass (before that step's update).
    pub fn loss(&self) -> Result<f32> {
        Ok(self.read(self.loss)?[0])
    }

    /// Kernel launches in one training step.
    pub fn dispatches_per_step(&self) -> usize {
        self.forward.len() + self.backward.len() + self.update.len()
    }

    /// Where a step's time goes: each of its dispatches run alone, `reps` times with a
    /// sync after each, as (kernel and grid, median milliseconds). Runs the update too, so
    /// the parameters move: profile a throwaway graph.
    pub fn profile(&self, reps: usize) -> Result<Vec<(String, f64)>> {
        let steps = self.forward.iter().chain(&self.backward).chain(&self.update);
        steps
            .map(|dispatch| {
                let mut times = Vec::with_capacity(reps.max(1));
                for _ in 0..reps.max(1) {
                    let started = std::time::Instant::now();
                    self.gpu.run(&[dispatch])?;
                    self.gpu.synchronize()?;
                    times.push(started.elapsed().as_secs_f64() * 1e3);
                }
                times.sort_by(f64::total_cmp);
                Ok((format!("{dispatch:?}"), times[times.len() / 2]))
            })
            .collect()
    }

    /// One training step: forward, loss, backward, update, in one submit.
    pub fn step(&mut self) -> Result<()> {
        self.steps(1)
    }

    /// `k` training steps recorded into one command encoder and submitted once. Inputs
    /// keep the values last written.
    pub fn steps(&mut self, k: usize) -> Result<()> {
        if k == 0 {
            return Err(Error::invalid("Graph::steps", "k", "at least 1", 0));
        }
        self.submit(k, true, true)
    }

    /// Forward and loss only: no gradients, no update.
    pub fn forward(&self) -> Result<()> {
        self.submit(1, false, false)
    }

    /// Forward, loss and backward, without updating the parameters.
    pub fn compute_gradients(&self) -> Result<()> {
        self.submit(1, true, false)
    }

    fn submit(&self, k: usize, backward: bool, update: bool) -> Result<()> {
        self.gpu.record_and_submit("Graph step", |pass| {
            for _ in 0..k {
                self.record(pass, backward, update);
            }
        })
    }

    /// Records forward and loss, then optionally backward and the update, into `pass`.
    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>, backward: bool, update: bool) {
        self.forward.iter().for_each(|d| d.record(pass));
        if backward {
            self.backward.iter().for_each(|d| d.record(pass));
        }
        if update {
            self.update.iter().for_each(|dispatch| dispatch.record(pass));
        }
    }

    /// The tensor holding a live node's value.
    pub(crate) fn tensor(&self, node: NodeId) -> Result<&Tensor> {
        self.live_value("Graph::tensor", node)
    }

    /// The loss' per-row weights (B).
    pub(crate) fn row_weights(&self) -> &Tensor {
        &self.row_weights
    }

    /// The loss node.
    pub(crate) fn loss_node(&self) -> NodeId {
        self.loss
    }

    /// Every parameter, back to back (for snapshots).
    pub(crate) fn flat_params(&self) -> &Tensor {
        &self.flat_params
    }

    /// The velocities, in the layout of [`Graph::flat_params`].
    pub(crate) fn flat_velocity(&self) -> &Tensor {
        &self.flat_velocity
    }

    /// Where a parameter starts in the flat blocks.
    pub(crate) fn param_offset(&self, node: NodeId) -> Option<usize> {
        self.param_offsets.get(node.0).copied().flatten()
    }

    /// The optimizer in use (the first model's, in a stack).
    pub fn optimizer(&self) -> Optimizer {
        self.optimizers[0]
    }

    /// Changes the optimizer's hyperparameters (of every stacked model); its state is kept.
    /// It may change between SGD and Adam only where the graph was built with the state the
    /// new one needs (Adam's second moments): else build a new graph.
    pub fn set_optimizer(&mut self, optimizer: impl Into<Optimizer>) -> Result<()> {
        let optimizer = optimizer.into();
        optimizer.validate()?;
        if optimizer.needs_second_moment() != self.optimizers[0].needs_second_moment() {
            return Err(Error::invalid(
                "Graph::set_optimizer",
                "optimizer",
                format!("another {} (the state this graph keeps)", self.optimizers[0].name()),
                format!("{}: build a new model to switch", optimizer.name()),
            ));
        }
        let optimizers = vec![optimizer; self.models];
        self.hyperparams
            .write(bytemuck::cast_slice(&hyperparams_of(&optimizers)))?;
        self.optimizers = optimizers;
        Ok(())
    }

    /// How many models are stacked.
    pub(crate) fn models(&self) -> usize {
        self.models
    }

    /// Per model, whether the next update moves it (u32), for a trainer's gather kernel.
    pub(crate) fn active(&self) -> &Tensor {
        &self.active
    }

    /// Sets every velocity back to zero.
    pub fn reset_optimizer(&self) -> Result<()> {
        self.flat_velocity.write(&vec![0.0; self.flat_velocity.len()])?;
        self.flat_second_moment
            .write(&vec![0.0; self.flat_second_moment.len()])?;
        self.model_state.write(&vec![0.0; self.model_state.len()])
    }

    /// Adam's second moment of a parameter (every stacked model's, back to back).
    pub fn read_second_moment(&self, node: NodeId) -> Result<Vec<f32>> {
        self.second_moment("Graph::read_second_moment", node)?.to_vec()
    }

    /// Overwrites a parameter's Adam second moment (e.g. from a checkpoint).
    pub fn write_second_moment(&self, node: NodeId, data: &[f32]) -> Result<()> {
        const OP: &str = "Graph::write_second_moment";
        let tensor = self.second_moment(OP, node)?;
        if data.len() != tensor.len() * self.models {
            return Err(Error::shape(
                OP,
                &self.names[node.0],
                tensor.len() * self.models,
                data.len(),
            ));
        }
        tensor.write(data)
    }

    fn second_moment(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
        self.second_moments.get(node.0).and_then(Option::as_ref).ok_or_else(|| {
            Error::invalid(
                op,
                "node",
                "a parameter of a graph trained with Adam",
                format!("{node:?} ({})", self.optimizers[0].name()),
            )
        })
    }

    /// Optimizer steps each stacked model has taken (Adam counts them for its bias
    /// corrections; 0 with SGD, which needs no count).
    pub fn optimizer_steps(&self) -> Result<Vec<u64>> {
        let state = self.model_state.to_vec()?;
        Ok(state
            .chunks(ops::MODEL_STATE_WORDS)
            .map(|model| model[0] as u64)
            .collect())
    }

    /// Sets every stacked model's optimizer step count (e.g. from a checkpoint); the bias
    /// corrections follow from it at the next step.
    pub fn set_optimizer_steps(&self, steps: u64) -> Result<()> {
        let mut state = vec![0.0f32; self.model_state.len()];
        state
            .chunks_mut(ops::MODEL_STATE_WORDS)
            .for_each(|model| model[0] = steps as f32);
        self.model_state.write(&state)
    }
}

/// Each model's optimizer settings in the update kernel's layout.
fn hyperparams_of(optimizers: &[Optimizer]) -> Vec<ops::OptimizerHyperparams> {
    optimizers.iter().map(ops::OptimizerHyperparams::from).collect()
}

/// A matmul with the kernel [`MatmulKernel::choose`] picks for its shape, skipping the
/// models whose `active` flag is 0.
#[allow(clippy::too_many_arguments)]
fn gated_matmul(
    gpu: &Gpu,
    layout: MatmulLayout,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    accumulate: bool,
    epilogue: ops::Epilogue<'_>,
    active: &Tensor,
) -> Result<Dispatch> {
    let (rows, cols) = c.dims2("matmul", "c")?;
    let (a_rows, a_cols) = a.dims2("matmul", "a")?;
    let k = if layout == MatmulLayout::AtB { a_rows } else { a_cols };
    let kernel = MatmulKernel::choose(gpu, layout, rows, k, cols);
    ops::matmul_fused_gated(gpu, kernel, layout, a, b, c, accumulate, epilogue, active)
}

/// A dense layer run as one matmul: (A, W, bias, its activation if fused too).
type FusedLayer = (NodeId, NodeId, NodeId, Option<Activation>);

/// Which ops run fused, to save dispatches:
/// - forward: `MatMul → BiasAdd (→ Activation)` whose intermediates feed nothing else run as
///   one matmul with a bias (+ activation) epilogue; the intermediates are never materialised
///   (an activation whose slope needs its input, GELU, keeps its own dispatch and input);
/// - backward: an activation whose slope follows from its output and whose only consumer is
///   a matmul (as its left operand) or the loss has no dispatch of its own: that consumer's
///   gradient kernel applies `act'(y)`.
struct Fusion {
    fused_away: Vec<bool>,
    /// At a fused layer's MatMul: its bias, whose gradient the weight-gradient kernel also
    /// computes.
    bias_of: Vec<Option<NodeId>>,
    /// At the node that holds a fused layer's output: the layer.
    layer_at: Vec<Option<FusedLayer>>,
    activation_folded: Vec<bool>,
}

impl Fusion {
    fn plan(nodes: &[Node], live: &[bool]) -> Fusion {
        let n = nodes.len();
        let mut consumers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, node) in nodes.iter().enumerate() {
            if live[i] {
                for input in operands(node.op) {
                    consumers[input.0].push(i);
                }
            }
        }
        let only = |node: usize, consumer: usize| consumers[node] == [consumer];
        let mut fusion = Fusion {
            fused_away: vec![false; n],
            bias_of: vec![None; n],
            layer_at: vec![None; n],
            activation_folded: vec![false; n],
        };
        for (i, node) in nodes.iter().enumerate() {
            if !live[i] {
                continue;
            }
            // A BiasAdd of a MatMul that feeds nothing else, and perhaps its sole activation.
            let Op::BiasAdd(mm, bias) = node.op else { continue };
            let Op::MatMul(a, w) = nodes[mm.0].op else { continue };
            if !only(mm.0, i) {
                continue;
            }
            fusion.fused_away[mm.0] = true;
            fusion.bias_of[mm.0] = Some(bias);
            match consumers[i][..] {
                [s] => match nodes[s].op {
                    Op::Activation(activation, z) if z.0 == i && activation.grad_from_output() => {
                        fusion.fused_away[i] = true;
                        fusion.layer_at[s] = Some((a, w, bias, Some(activation)));
                    }
                    _ => fusion.layer_at[i] = Some((a, w, bias, None)),
                },
                _ => fusion.layer_at[i] = Some((a, w, bias, None)),
            }
        }
        for (i, node) in nodes.iter().enumerate() {
            let Op::Activation(activation, _) = node.op else {
                continue;
            };
            if !live[i] || !activation.grad_from_output() {
                continue;
            }
            fusion.activation_folded[i] = match consumers[i][..] {
                [c] => match nodes[c].op {
                    Op::MatMul(a, w) => a.0 == i && w.0 != i,
                    // Only MSE takes the slope of an output activation in its own kernel.
                    Op::Loss(Loss::Mse, y, t) => y.0 == i && t.0 != i,
                    _ => false,
                },
                _ => false,
            };
        }
        fusion
    }

    /// The weight W of `node` when `node = A·W` is a fused layer's product (its bias add's
    /// backward then leaves the bias gradient to the weight-gradient kernel).
    fn weights_of(&self, nodes: &[Node], node: NodeId) -> Option<NodeId> {
        match nodes[node.0].op {
            Op::MatMul(_, w) if self.bias_of[node.0].is_some() => Some(w),
            _ => None,
        }
    }

    /// The input Z of `node` and its activation when `node = act(Z)` and its backward is
    /// folded into its consumer.
    fn folded_activation(&self, nodes: &[Node], node: NodeId) -> Option<(NodeId, Activation)> {
        match nodes[node.0].op {
            Op::Activation(activation, z) if self.activation_folded[node.0] => Some((z, activation)),
            _ => None,
        }
    }
}

fn operands(op: Op) -> Vec<NodeId> {
    match op {
        Op::Input | Op::Param => vec![],
        Op::Activation(_, x) => vec![x],
        Op::MatMul(a, b) | Op::BiasAdd(a, b) | Op::Add(a, b) | Op::Loss(_, a, b) => vec![a, b],
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
