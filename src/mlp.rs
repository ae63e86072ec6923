//! The multilayer perceptron: dense layers `h_l = act(h_{l−1}·W_l + b_l)` on a [`Graph`].

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::optim::Sgd;

/// The function applied after a dense layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Activation {
    /// The logistic sigmoid `1 / (1 + e^−x)` (the default, output layer included).
    #[default]
    Sigmoid,
    /// No activation (a linear output for regression).
    Identity,
}

/// One dense layer's parameters, row-major: `weights` (in, out) and `bias` (out).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// `W` of shape `[in, out]`, used as `x·W`.
    pub weights: Vec<f32>,
    /// `b` of length `out`.
    pub bias: Vec<f32>,
}

/// How to build an [`Mlp`]: layer sizes, activations, initialisation.
///
/// ```no_run
/// use wgpu_mlp::{Gpu, Mlp, Sgd};
/// let gpu = Gpu::new()?;
/// let mut mlp = Mlp::builder(&[2, 8, 1]).seed(1).build(&gpu, 4, Sgd::new(0.5).momentum(0.9))?;
/// mlp.set_batch(&[0., 0., 0., 1., 1., 0., 1., 1.], &[0., 1., 1., 0.])?;
/// mlp.steps(500)?;
/// println!("loss {}", mlp.loss()?);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MlpBuilder {
    sizes: Vec<usize>,
    hidden: Activation,
    output: Activation,
    seed: u64,
    params: Option<Vec<LayerParams>>,
}

impl MlpBuilder {
    /// Activation after every hidden layer (default sigmoid).
    pub fn hidden_activation(mut self, activation: Activation) -> Self {
        self.hidden = activation;
        self
    }

    /// Activation after the output layer (default sigmoid).
    pub fn output_activation(mut self, activation: Activation) -> Self {
        self.output = activation;
        self
    }

    /// Seed of the initialisation: weights uniform(−1/√fan_in, 1/√fan_in), biases 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Start from these parameters instead of a random initialisation.
    pub fn parameters(mut self, params: Vec<LayerParams>) -> Self {
        self.params = Some(params);
        self
    }

    /// Checks the sizes (and given parameters) without touching a device.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "Mlp::build";
        if self.sizes.len() < 2 {
            return Err(Error::invalid(
                OP,
                "layer sizes",
                "at least [inputs, outputs]",
                format!("{:?}", self.sizes),
            ));
        }
        if let Some(i) = self.sizes.iter().position(|&s| s == 0) {
            return Err(Error::invalid(OP, format!("size of layer {i}"), "at least 1", 0));
        }
        if let Some(params) = &self.params {
            check_params(OP, &self.sizes, params)?;
        }
        Ok(())
    }

    /// Builds the model on `gpu` for mini-batches of `batch` rows.
    pub fn build(self, gpu: &Gpu, batch: usize, sgd: Sgd) -> Result<Mlp> {
        self.validate()?;
        if batch == 0 {
            return Err(Error::invalid("Mlp::build", "batch size", "at least 1", 0));
        }
        let params = match self.params.clone() {
            Some(params) => params,
            None => init_params(&self.sizes, self.seed),
        };
        let layers = self.sizes.len() - 1;
        let mut g = GraphBuilder::new();
        let x = g.input("x", [batch, self.sizes[0]])?;
        let t = g.input("t", [batch, self.sizes[layers]])?;
        let mut h = x;
        let mut weights = Vec::with_capacity(layers);
        let mut biases = Vec::with_capacity(layers);
        for (l, layer) in params.iter().enumerate() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let w = g.param(&format!("W{}", l + 1), &[fan_in, fan_out], &layer.weights)?;
            let b = g.param(&format!("b{}", l + 1), &[fan_out], &layer.bias)?;
            let xw = g.matmul(h, w)?;
            h = g.bias_add(xw, b)?;
            let activation = if l + 1 == layers { self.output } else { self.hidden };
            if activation == Activation::Sigmoid {
                h = g.sigmoid(h)?;
            }
            weights.push(w);
            biases.push(b);
        }
        let loss = g.mse(h, t)?;
        let graph = g.build(gpu, loss, sgd)?;
        Ok(Mlp {
            sizes: self.sizes,
            hidden: self.hidden,
            output: self.output,
            step: 0,
            graph,
            x,
            t,
            y: h,
            weights,
            biases,
            batch,
        })
    }
}

fn check_params(op: &'static str, sizes: &[usize], params: &[LayerParams]) -> Result<()> {
    if params.len() != sizes.len() - 1 {
        return Err(Error::shape(
            op,
            "parameters",
            format!("{} layers", sizes.len() - 1),
            params.len(),
        ));
    }
    for (l, layer) in params.iter().enumerate() {
        let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
        if layer.weights.len() != fan_in * fan_out {
            return Err(Error::shape(
                op,
                format!("W{}", l + 1),
                format!("[{fan_in}, {fan_out}] = {} values", fan_in * fan_out),
                layer.weights.len(),
            ));
        }
        if layer.bias.len() != fan_out {
            return Err(Error::shape(op, format!("b{}", l + 1), fan_out, layer.bias.len()));
        }
        for (what, values) in [("W", &layer.weights), ("b", &layer.bias)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    op,
                    format!("{what}{}[{i}]", l + 1),
                    "a finite value",
                    values[i],
                ));
            }
        }
    }
    Ok(())
}

/// Weights uniform(−1/√fan_in, 1/√fan_in) from a seeded generator, biases 0.
pub fn init_params(sizes: &[usize], seed: u64) -> Vec<LayerParams> {
    let mut rng = StdRng::seed_from_u64(seed);
    sizes
        .windows(2)
        .map(|pair| {
            let bound = 1.0 / (pair[0] as f32).sqrt();
            LayerParams {
                weights: (0..pair[0] * pair[1])
                    .map(|_| rng.random_range(-bound..bound))
                    .collect(),
                bias: vec![0.0; pair[1]],
            }
        })
        .collect()
}

/// A multilayer perceptron on the GPU with its optimizer state; trains on fixed-size
/// mini-batches.
pub struct Mlp {
    sizes: Vec<usize>,
    hidden: Activation,
    output: Activation,
    /// Training steps taken (restored from checkpoints).
    step: u64,
    graph: Graph,
    x: NodeId,
    t: NodeId,
    y: NodeId,
    weights: Vec<NodeId>,
    biases: Vec<NodeId>,
    batch: usize,
}

impl Mlp {
    /// Starts describing an MLP with these layer sizes, inputs first, outputs last.
    pub fn builder(sizes: &[usize]) -> MlpBuilder {
        MlpBuilder {
            sizes: sizes.to_vec(),
            hidden: Activation::Sigmoid,
            output: Activation::Sigmoid,
            seed: 0,
            params: None,
        }
    }

    pub(crate) fn input_node(&self) -> NodeId {
        self.x
    }

    pub(crate) fn target_node(&self) -> NodeId {
        self.t
    }

    pub(crate) fn output_node(&self) -> NodeId {
        self.y
    }

    /// Layer sizes, inputs first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Rows per mini-batch.
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// The underlying graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Mutable access to the graph (e.g. to change the optimizer).
    pub fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }

    /// Writes the mini-batch: `x` (batch, inputs) and `t` (batch, outputs), row-major.
    pub fn set_batch(&self, x: &[f32], t: &[f32]) -> Result<()> {
        const OP: &str = "Mlp::set_batch";
        let (inputs, outputs) = (self.sizes[0], self.sizes[self.sizes.len() - 1]);
        if x.len() != self.batch * inputs {
            return Err(Error::shape(OP, "x", format!("[{}, {inputs}]", self.batch), x.len()));
        }
        if t.len() != self.batch * outputs {
            return Err(Error::shape(OP, "t", format!("[{}, {outputs}]", self.batch), t.len()));
        }
        for (what, data) in [("x", x), ("t", t)] {
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(OP, format!("{what}[{i}]"), "a finite value", data[i]));
            }
        }
        self.graph.write(self.x, x)?;
        self.graph.write(self.t, t)
    }

    /// One training step on the current batch (one submit).
    pub fn step(&mut self) -> Result<()> {
        self.steps(1)
    }

    /// `k` training steps on the current batch, one submit for all.
    pub fn steps(&mut self, k: usize) -> Result<()> {
        self.graph.steps(k)?;
        self.step += k as u64;
        Ok(())
    }

    /// Training steps taken so far (by [`Mlp::steps`] and the trainer, and restored by
    /// checkpoints).
    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    pub(crate) fn add_steps(&mut self, k: u64) {
        self.step += k;
    }

    pub(crate) fn set_steps_taken(&mut self, step: u64) {
        self.step = step;
    }

    /// Activations of the hidden layers and of the output layer.
    pub fn activations(&self) -> (Activation, Activation) {
        (self.hidden, self.output)
    }

    /// The optimizer's velocities, per layer (same shapes as the parameters).
    pub fn velocities(&self) -> Result<Vec<LayerParams>> {
        self.read_layers(|node| self.graph.read_velocity(node))
    }

    /// Overwrites the velocities (all layers are checked before any is written).
    pub fn set_velocities(&self, velocities: &[LayerParams]) -> Result<()> {
        check_params("Mlp::set_velocities", &self.sizes, velocities)?;
        self.write_layers(velocities, |node, values| self.graph.write_velocity(node, values))
    }

    /// Loss of the last forward pass (read back from the GPU).
    pub fn loss(&self) -> Result<f32> {
        self.graph.loss()
    }

    /// Loss of the current parameters on the current batch (forward only, no update).
    pub fn evaluate(&self) -> Result<f32> {
        self.graph.forward()?;
        self.graph.loss()
    }

    /// The network's output for the current batch (forward only).
    pub fn forward(&self) -> Result<Vec<f32>> {
        self.graph.forward()?;
        self.graph.read(self.y)
    }

    /// Gradients of the loss on the current batch, per layer, without updating.
    pub fn gradients(&self) -> Result<Vec<LayerParams>> {
        self.graph.compute_gradients()?;
        self.read_layers(|node| self.graph.read_grad(node))
    }

    /// The current parameters, per layer.
    pub fn parameters(&self) -> Result<Vec<LayerParams>> {
        self.read_layers(|node| self.graph.read(node))
    }

    /// Overwrites the parameters (all layers are checked before any is written).
    pub fn set_parameters(&self, params: &[LayerParams]) -> Result<()> {
        check_params("Mlp::set_parameters", &self.sizes, params)?;
        self.write_layers(params, |node, values| self.graph.write(node, values))
    }

    /// `read` of every layer's weight node and bias node.
    fn read_layers(&self, read: impl Fn(NodeId) -> Result<Vec<f32>>) -> Result<Vec<LayerParams>> {
        self.weights
            .iter()
            .zip(&self.biases)
            .map(|(&w, &b)| {
                Ok(LayerParams {
                    weights: read(w)?,
                    bias: read(b)?,
                })
            })
            .collect()
    }

    /// `write` of every layer's values to its weight node and bias node (already checked).
    fn write_layers(&self, layers: &[LayerParams], write: impl Fn(NodeId, &[f32]) -> Result<()>) -> Result<()> {
        for ((&w, &b), layer) in self.weights.iter().zip(&self.biases).zip(layers) {
            write(w, &layer.weights)?;
            write(b, &layer.bias)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Mlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mlp")
            .field("sizes", &self.sizes)
            .field("activations", &(self.hidden, self.output))
            .field("batch", &self.batch)
            .field("steps_taken", &self.step)
            .finish()
    }
}
