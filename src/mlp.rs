//! The multilayer perceptron: dense layers `h_l = act(h_{l−1}·W_l + b_l)` on a [`Graph`].

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::{Graph, GraphBuilder, NodeId};
use crate::ops::{Activation, Loss};
use crate::optim::{Optimizer, Sgd};

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
    loss: Loss,
    seed: u64,
    params: Option<Vec<LayerParams>>,
    step_kernel: StepKernel,
}

/// How [`Mlp::steps`] runs a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepKernel {
    /// The single-dispatch kernel on CPU adapters for nets it can take, else the general path.
    #[default]
    Auto,
    /// The general path: the graph's 3L + 2 dispatches, for any net.
    General,
    /// One dispatch per step, one invocation doing forward, loss, backward and update; for
    /// nets of at most 8 layers of at most 64 units, activations other than GELU, the MSE loss, and
    /// `batch · Σ in·out ≤ 2048`. Building fails for other nets.
    SingleDispatch,
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

    /// The training loss (default [`Loss::Mse`]). [`Loss::SoftmaxCrossEntropy`] takes logits:
    /// set the output activation to [`Activation::Identity`] with it.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Seed of the initialisation: weights uniform(−1/√fan_in, 1/√fan_in), biases 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// How training steps run (default [`StepKernel::Auto`]).
    pub fn step_kernel(mut self, step_kernel: StepKernel) -> Self {
        self.step_kernel = step_kernel;
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
        self.loss.check_output_activation(OP, self.output)
    }

    /// Builds the model on `gpu` for mini-batches of `batch` rows.
    pub fn build(self, gpu: &Gpu, batch: usize, optimizer: impl Into<Optimizer>) -> Result<Mlp> {
        let params = self.starting_params("Mlp::build", batch)?;
        self.build_graph(gpu, batch, &[optimizer.into()], &[params])
    }

    /// The checked builder's starting parameters (given, else drawn from its seed).
    fn starting_params(&self, op: &'static str, batch: usize) -> Result<Vec<LayerParams>> {
        self.validate()?;
        if batch == 0 {
            return Err(Error::invalid(op, "batch size", "at least 1", 0));
        }
        Ok(match &self.params {
            Some(params) => params.clone(),
            None => init_params(&self.sizes, self.seed),
        })
    }

    /// A stack of `optimizers.len()` models of these sizes trained side by side as one GPU
    /// job: every kernel covers all models in one launch. Model m starts from this builder's
    /// parameters (given with [`MlpBuilder::parameters`], else drawn from its seed) and
    /// trains with `optimizers[m]`. [`Mlp::set_batch`] then takes one batch for every
    /// model or one per model; [`Mlp::losses`] and [`Mlp::stacked_parameters`] read each
    /// model back. A model of a stack computes exactly what it would alone (bit for bit,
    /// on the general step path).
    ///
    /// ```no_run
    /// use wgpu_mlp::{Gpu, Mlp, Sgd};
    /// let gpu = Gpu::new()?;
    /// // three learning rates, one launch per kernel for all three
    /// let sgds: Vec<Sgd> = [0.1, 0.5, 1.0].iter().map(|&lr| Sgd::new(lr).momentum(0.9)).collect();
    /// let mut stack = Mlp::builder(&[2, 8, 1]).seed(7).build_stack(&gpu, 4, &sgds)?;
    /// stack.set_batch(&[0., 0., 0., 1., 1., 0., 1., 1.], &[0., 1., 1., 0.])?; // shared by all
    /// stack.steps(1000)?;
    /// stack.evaluate()?;
    /// println!("loss per learning rate: {:?}", stack.losses()?);
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn build_stack<O: Into<Optimizer> + Copy>(self, gpu: &Gpu, batch: usize, optimizers: &[O]) -> Result<Mlp> {
        let params = self.starting_params("Mlp::build_stack", batch)?;
        if optimizers.is_empty() {
            return Err(Error::invalid(
                "Mlp::build_stack",
                "optimizers",
                "one per model, at least 1",
                0,
            ));
        }
        let all = vec![params; optimizers.len()];
        let optimizers: Vec<Optimizer> = optimizers.iter().map(|&o| o.into()).collect();
        self.step_kernel(StepKernel::General)
            .build_graph(gpu, batch, &optimizers, &all)
    }

    /// A stack of models of these sizes trained side by side (see
    /// [`GraphBuilder::build_stacked`]): model m starts from `init_params(sizes, seeds[m])`
    /// and trains with `optimizers[m]`. Always the general step.
    pub(crate) fn build_stacked(self, gpu: &Gpu, batch: usize, seeds: &[u64], optimizers: &[Optimizer]) -> Result<Mlp> {
        self.validate()?;
        if batch == 0 {
            return Err(Error::invalid("Mlp::build", "batch size", "at least 1", 0));
        }
        if seeds.len() != optimizers.len() {
            return Err(Error::shape("Mlp::build", "seeds", optimizers.len(), seeds.len()));
        }
        let params: Vec<Vec<LayerParams>> = seeds.iter().map(|&seed| init_params(&self.sizes, seed)).collect();
        self.step_kernel(StepKernel::General)
            .build_graph(gpu, batch, optimizers, &params)
    }

    /// The graph of one model per entry of `optimizers`, starting from `params[m]`.
    fn build_graph(
        self,
        gpu: &Gpu,
        batch: usize,
        optimizers: &[Optimizer],
        params: &[Vec<LayerParams>],
    ) -> Result<Mlp> {
        let models = optimizers.len();
        let layers = self.sizes.len() - 1;
        let mut g = GraphBuilder::new();
        let x = g.input("x", [batch, self.sizes[0]])?;
        let t = g.input("t", [batch, self.sizes[layers]])?;
        let mut h = x;
        let mut weights = Vec::with_capacity(layers);
        let mut biases = Vec::with_capacity(layers);
        for (l, layer) in params[0].iter().enumerate() {
            let (fan_in, fan_out) = (self.sizes[l], self.sizes[l + 1]);
            let w = g.param(&format!("W{}", l + 1), &[fan_in, fan_out], &layer.weights)?;
            let b = g.param(&format!("b{}", l + 1), &[fan_out], &layer.bias)?;
            let xw = g.matmul(h, w)?;
            h = g.bias_add(xw, b)?;
            let activation = if l + 1 == layers { self.output } else { self.hidden };
            if activation != Activation::Identity {
                h = g.activation(activation, h)?;
            }
            weights.push(w);
            biases.push(b);
        }
        let loss = g.loss(self.loss, h, t)?;
        let graph = g.build_stacked(gpu, loss, optimizers)?;
        if models > 1 {
            for l in 0..layers {
                let stacked = |part: fn(&LayerParams) -> &Vec<f32>| -> Vec<f32> {
                    params
                        .iter()
                        .flat_map(|model| part(&model[l]).iter().copied())
                        .collect()
                };
                graph.write(weights[l], &stacked(|layer| &layer.weights))?;
                graph.write(biases[l], &stacked(|layer| &layer.bias))?;
            }
        }
        // The single-dispatch step does plain or momentum SGD only.
        let tiny_sgd = match optimizers[0] {
            Optimizer::Sgd(sgd) if !sgd.nesterov => Some(sgd),
            _ => None,
        };
        let tiny_fits = self.loss == Loss::Mse
            && tiny_sgd.is_some()
            && tiny_step_fits(&self.sizes, self.hidden, self.output, batch);
        let use_tiny = match self.step_kernel {
            StepKernel::General => false,
            _ if models > 1 => false,
            StepKernel::Auto => tiny_fits && gpu.is_software(),
            StepKernel::SingleDispatch if tiny_fits => true,
            StepKernel::SingleDispatch => {
                return Err(Error::invalid(
                    "Mlp::build",
                    "StepKernel::SingleDispatch",
                    "≤ 8 layers of ≤ 64 units, activations other than gelu, the mse loss, SGD without \
                     Nesterov, batch · Σ in·out ≤ 2048",
                    format!("sizes {:?}, batch {batch}", self.sizes),
                ));
            }
        };
        let mut mlp = Mlp {
            tiny: None,
            step_kernel: self.step_kernel,
            sizes: self.sizes,
            hidden: self.hidden,
            output: self.output,
            loss: self.loss,
            step: 0,
            graph,
            x,
            t,
            y: h,
            weights,
            biases,
            batch,
        };
        if use_tiny && let Some(sgd) = tiny_sgd {
            mlp.tiny = Some(TinyStep::new(&mlp, sgd)?);
        }
        Ok(mlp)
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

/// `data` as one (rows, cols) block per model: given once (repeated for every model) or once
/// per model.
fn per_model<'a>(
    op: &'static str,
    what: &str,
    data: &'a [f32],
    [rows, cols]: [usize; 2],
    models: usize,
) -> Result<std::borrow::Cow<'a, [f32]>> {
    let one = rows * cols;
    if data.len() == one * models {
        Ok(std::borrow::Cow::Borrowed(data))
    } else if data.len() == one {
        Ok(std::borrow::Cow::Owned(data.repeat(models)))
    } else if models == 1 {
        Err(Error::shape(op, what, format!("[{rows}, {cols}]"), data.len()))
    } else {
        Err(Error::shape(
            op,
            what,
            format!("[{rows}, {cols}] (shared) or [{models}, {rows}, {cols}] (one per model)"),
            data.len(),
        ))
    }
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
    /// The single-dispatch step, when [`StepKernel`] chose it.
    tiny: Option<TinyStep>,
    step_kernel: StepKernel,
    sizes: Vec<usize>,
    hidden: Activation,
    output: Activation,
    loss: Loss,
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
            loss: Loss::Mse,
            seed: 0,
            params: None,
            step_kernel: StepKernel::Auto,
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

    /// Changes the optimizer's hyperparameters (of every model of a stack); velocities are
    /// kept. Checked first: a bad value changes nothing.
    ///
    /// ```no_run
    /// # let gpu = wgpu_mlp::Gpu::new()?;
    /// # let mut mlp = wgpu_mlp::Mlp::builder(&[2, 4, 1]).build(&gpu, 4, wgpu_mlp::Sgd::new(1.0))?;
    /// mlp.set_optimizer(wgpu_mlp::Sgd::new(0.1).momentum(0.9))?; // a lower rate from here on
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn set_optimizer(&mut self, optimizer: impl Into<Optimizer>) -> Result<()> {
        let optimizer = optimizer.into();
        if self.tiny.is_some() && !matches!(optimizer, Optimizer::Sgd(sgd) if !sgd.nesterov) {
            return Err(Error::invalid(
                "Mlp::set_optimizer",
                "optimizer",
                "plain or momentum SGD on the single-dispatch step",
                format!("{optimizer:?}: build with StepKernel::General to change it"),
            ));
        }
        self.graph.set_optimizer(optimizer)
    }

    /// Writes the mini-batch: `x` (batch, inputs) and `t` (batch, outputs), row-major. For
    /// a stack ([`MlpBuilder::build_stack`]) either one batch for every model or one per
    /// model, back to back: (models, batch, inputs) and (models, batch, outputs).
    pub fn set_batch(&self, x: &[f32], t: &[f32]) -> Result<()> {
        const OP: &str = "Mlp::set_batch";
        let (inputs, outputs) = (self.sizes[0], self.sizes[self.sizes.len() - 1]);
        let models = self.graph.models();
        let x = per_model(OP, "x", x, [self.batch, inputs], models)?;
        let t = per_model(OP, "t", t, [self.batch, outputs], models)?;
        for (what, data) in [("x", &x), ("t", &t)] {
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(Error::invalid(OP, format!("{what}[{i}]"), "a finite value", data[i]));
            }
        }
        self.graph.write(self.x, &x)?;
        self.graph.write(self.t, &t)
    }

    /// How many models this is a stack of (1 for a single model).
    pub fn models(&self) -> usize {
        self.graph.models()
    }

    /// The loss of the last forward pass for every model of the stack, in order.
    pub fn losses(&self) -> Result<Vec<f32>> {
        self.graph.read(self.graph.loss_node())
    }

    /// One training step on the current batch (one submit).
    pub fn step(&mut self) -> Result<()> {
        self.steps(1)
    }

    /// `k` training steps on the current batch, one submit for all.
    pub fn steps(&mut self, k: usize) -> Result<()> {
        if let Optimizer::Sgd(sgd) = self.graph.optimizer()
            && self.tiny.as_ref().is_some_and(|tiny| tiny.sgd != sgd)
        {
            self.tiny = Some(TinyStep::new(self, sgd)?);
        }
        match &self.tiny {
            Some(tiny) => {
                if k == 0 {
                    return Err(Error::invalid("Mlp::steps", "k", "at least 1", 0));
                }
                let dispatch = &tiny.dispatch;
                self.graph.gpu().record_and_submit("Mlp::steps", |pass| {
                    for _ in 0..k {
                        dispatch.record(pass);
                    }
                })?;
            }
            None => self.graph.steps(k)?,
        }
        self.step += k as u64;
        Ok(())
    }

    /// The step-kernel policy this model was built with (checkpoints keep it, so a resumed
    /// run computes with the same kernels and the same rounding).
    pub fn step_kernel(&self) -> StepKernel {
        self.step_kernel
    }

    /// Kernel launches in one step of [`Mlp::steps`].
    pub fn dispatches_per_step(&self) -> usize {
        if self.tiny.is_some() {
            1
        } else {
            self.graph.dispatches_per_step()
        }
    }

    /// Whether [`Mlp::steps`] runs the single-dispatch step kernel.
    pub fn uses_single_dispatch_step(&self) -> bool {
        self.tiny.is_some()
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

    /// The loss it trains on.
    pub fn loss_function(&self) -> Loss {
        self.loss
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

    /// Adam's second moments, per layer (same shapes as the parameters); an error with SGD.
    pub fn second_moments(&self) -> Result<Vec<LayerParams>> {
        self.read_layers(|node| self.graph.read_second_moment(node))
    }

    /// Overwrites Adam's second moments (all layers are checked before any is written).
    pub fn set_second_moments(&self, moments: &[LayerParams]) -> Result<()> {
        check_params("Mlp::set_second_moments", &self.sizes, moments)?;
        self.write_layers(moments, |node, values| self.graph.write_second_moment(node, values))
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

    /// Every stacked model's parameters, model by model (one entry for a single model).
    pub fn stacked_parameters(&self) -> Result<Vec<Vec<LayerParams>>> {
        self.split_models(self.parameters()?)
    }

    /// Every stacked model's velocities, model by model.
    pub(crate) fn stacked_velocities(&self) -> Result<Vec<Vec<LayerParams>>> {
        self.split_models(self.velocities()?)
    }

    /// Every stacked model's Adam second moments, model by model (None without Adam).
    pub(crate) fn stacked_second_moments(&self) -> Result<Option<Vec<Vec<LayerParams>>>> {
        match self.second_moments() {
            Ok(moments) => self.split_models(moments).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Layers holding every model's values back to back, as one list of layers per model.
    fn split_models(&self, layers: Vec<LayerParams>) -> Result<Vec<Vec<LayerParams>>> {
        let models = self.graph.models();
        let mut split = vec![Vec::with_capacity(layers.len()); models];
        for layer in layers {
            let (w, b) = (layer.weights.len() / models, layer.bias.len() / models);
            for (m, model) in split.iter_mut().enumerate() {
                model.push(LayerParams {
                    weights: layer.weights[m * w..(m + 1) * w].to_vec(),
                    bias: layer.bias[m * b..(m + 1) * b].to_vec(),
                });
            }
        }
        Ok(split)
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

/// Whether the single-dispatch step kernel (`shaders/tiny.wgsl`) can run this net.
fn tiny_step_fits(sizes: &[usize], hidden: Activation, output: Activation, batch: usize) -> bool {
    let macs: usize = sizes.windows(2).map(|p| p[0] * p[1]).sum();
    sizes.len() - 1 <= 8
        && sizes.iter().all(|&s| s <= 64)
        && (hidden.grad_from_output() || sizes.len() == 2)
        && output.grad_from_output()
        && batch * macs <= 2048
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TinyParams {
    layers: u32,
    batch: u32,
    coupled: u32,
    hidden_activation: u32,
    output_activation: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    delta_offset: u32,
    _pad: [u32; 3],
    /// per layer: in, out, weight offset, bias offset
    dims: [[u32; 4]; 8],
    /// start of h_{l+1} in scratch, 4 per row
    act_offset: [[u32; 4]; 2],
}

/// The single-dispatch training step and its scratch memory (activations, two δ buffers).
struct TinyStep {
    dispatch: crate::kernels::Dispatch,
    sgd: Sgd,
    _scratch: crate::tensor::Tensor,
}

impl TinyStep {
    /// The step of `mlp`'s net (its graph holds the parameters and data the kernel binds).
    fn new(mlp: &Mlp, sgd: Sgd) -> Result<Self> {
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
            _pad: [0; 3],
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
        scratch_len += 2 * batch * 64;
        let gpu = graph.gpu();
        let scratch = crate::tensor::Tensor::zeros(gpu, &[scratch_len])?;
        let dispatch = crate::kernels::Dispatch::new(
            gpu,
            crate::kernels::Kernel::TinyStep,
            bytemuck::bytes_of(&params),
            &[
                (1, graph.tensor(x)?),
                (2, graph.tensor(t)?),
                (3, graph.flat_params()),
                (4, graph.flat_velocity()),
                (5, &scratch),
                (6, graph.tensor(graph.loss_node())?),
                (7, graph.row_weights()),
            ],
            1,
        )?;
        Ok(TinyStep {
            dispatch,
            sgd,
            _scratch: scratch,
        })
    }
}
