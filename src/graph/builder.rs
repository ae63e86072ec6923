//! Composing a graph: its nodes and the ops between them, each checked as it is added.

use super::{Graph, NodeId};
use crate::device::gpu::Gpu;
use crate::error::{Error, Result};
use crate::ops::{Activation, Loss};
use crate::optim::Optimizer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Op {
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

pub(super) struct Node {
    pub(super) op: Op,
    pub(super) name: String,
    pub(super) shape: Vec<usize>,
}

/// Composes a graph; [`GraphBuilder::build`] turns it into a [`Graph`] on a device.
///
/// ```no_run
/// use wgpu_mlp::{Gpu, Sgd};
/// use wgpu_mlp::raw::GraphBuilder;
/// let gpu = Gpu::new()?;
/// let mut b = GraphBuilder::new();
/// let x = b.input("x", [4, 2])?;                       // x (B,IN)
/// let t = b.input("t", [4, 1])?;                       // t (B,OUT)
/// let w = b.param("w", &[2, 1], &[0.5, -0.5])?;        // w (IN,OUT)
/// let bias = b.param("b", &[1], &[0.0])?;
/// let xw = b.matmul(x, w)?;
/// let z = b.bias_add(xw, bias)?;
/// let y = b.sigmoid(z)?;
/// let loss = b.mse(y, t)?;
/// let mut graph = b.build(&gpu, loss, Sgd::new(0.5))?;
/// graph.write(x, &[0., 0., 0., 1., 1., 0., 1., 1.])?;
/// graph.write(t, &[0., 1., 1., 1.])?;
/// graph.steps(100)?;                                    // one submit for all 100 steps
/// println!("loss {}", graph.loss()?);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Default)]
pub struct GraphBuilder {
    pub(super) nodes: Vec<Node>,
    pub(super) param_init: Vec<(NodeId, Vec<f32>)>,
    /// Build the unfused step only (tests compare the two).
    pub(super) unfused: bool,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the graph without the fused step (see `graph/fused_step.rs`): the same
    /// training, in more dispatches. For tests that compare the two.
    pub(crate) fn unfused_step(mut self) -> Self {
        self.unfused = true;
        self
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

/// The nodes an op reads.
pub(super) fn operands(op: Op) -> Vec<NodeId> {
    match op {
        Op::Input | Op::Param => vec![],
        Op::Activation(_, x) => vec![x],
        Op::MatMul(a, b) | Op::BiasAdd(a, b) | Op::Add(a, b) | Op::Loss(_, a, b) => vec![a, b],
    }
}
