//! The multilayer perceptron: dense layers `h_l = act(h_{l−1}·W_l + b_l)` on a [`Graph`].

mod builder;
#[cfg(test)]
mod fused_step_tests;
mod init;
mod read_async;
mod tiny;

pub use builder::{MlpBuilder, StepKernel};
pub(crate) use init::init_params_with;
pub use init::{Init, init_params};

use tiny::TinyStep;

use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId};
pub use crate::layer::LayerParams;
use crate::ops::{Activation, Loss};
use crate::optim::Optimizer;

/// A multilayer perceptron on the GPU with its optimizer state; trains on fixed-size
/// mini-batches that you write ([`Mlp::set_batch`]), stepped by hand. [`fit`](crate::fit)
/// and [`GridSearchCv`](crate::GridSearchCv) drive one for you and hand back a
/// [`Model`](crate::Model).
///
/// ```no_run
/// use wgpu_mlp::{Activation, Gpu, Mlp, Sgd};
/// let gpu = Gpu::new()?;
/// let mut mlp = Mlp::builder(&[2, 8, 1]).hidden_activation(Activation::Tanh).seed(3).build(&gpu, 4, Sgd::new(0.5))?;
/// mlp.set_batch(&[0., 0., 0., 1., 1., 0., 1., 1.], &[0., 1., 1., 0.])?;
/// mlp.steps(1000)?;
/// println!("loss {}, outputs {:?}", mlp.loss()?, mlp.batch_outputs()?);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
pub struct Mlp {
    /// The single-dispatch step, when [`StepKernel`] chose it.
    tiny: Option<TinyStep>,
    step_kernel: StepKernel,
    sizes: Vec<usize>,
    hidden: Activation,
    output: Activation,
    loss: Loss,
    /// Whether `set_batch` has written a batch to compute on.
    batch_written: std::sync::atomic::AtomicBool,
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
            init: Init::default(),
            unfused: false,
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
    pub(crate) fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The optimizer in use (the first model's, in a stack).
    pub fn optimizer(&self) -> Optimizer {
        self.graph.optimizer()
    }

    /// Optimizer steps each stacked model has taken (Adam counts them for its bias
    /// corrections; 0 with SGD, which needs no count).
    pub fn optimizer_steps(&self) -> Result<Vec<u64>> {
        self.graph.optimizer_steps()
    }

    /// Where a general step's time goes: each of its dispatches run alone, `reps` times, as
    /// (kernel and grid, median milliseconds). The update runs too, so the parameters move:
    /// profile a throwaway model.
    pub fn profile(&self, reps: usize) -> Result<Vec<(String, f64)>> {
        self.graph.profile(reps)
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

    /// Each stacked model's optimizer settings (one model: [`Mlp::set_optimizer`]).
    pub(crate) fn set_optimizers(&mut self, optimizers: &[Optimizer]) -> Result<()> {
        match optimizers {
            [one] => self.set_optimizer(*one),
            _ => self.graph.set_optimizers(optimizers),
        }
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
        self.graph.write(self.t, &t)?;
        self.batch_written.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Refuses to compute on a batch never written: it would train on zeros, silently.
    fn check_batch(&self, op: &'static str) -> Result<()> {
        if self.batch_written.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        Err(Error::invalid(
            op,
            "batch",
            "one written with Mlp::set_batch first",
            "none: the network would compute on zeros",
        ))
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
        self.check_batch("Mlp::steps")?;
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

    /// Kernel launches in one step of [`Mlp::steps`]: 2 per layer
    /// for a dense net with a regression loss, one more with a cross-entropy (see the README).
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

    /// Centered RMSprop's gradient averages ḡ, per layer (same shapes as the parameters);
    /// an error with any other optimizer.
    pub(crate) fn grad_averages(&self) -> Result<Vec<LayerParams>> {
        self.read_layers(|node| self.graph.read_grad_average(node))
    }

    /// Overwrites centered RMSprop's gradient averages (all layers checked first).
    pub(crate) fn set_grad_averages(&self, averages: &[LayerParams]) -> Result<()> {
        check_params("Mlp::set_grad_averages", &self.sizes, averages)?;
        self.write_layers(averages, |node, values| self.graph.write_grad_average(node, values))
    }

    /// Loss of the last forward pass (read back from the GPU).
    pub fn loss(&self) -> Result<f32> {
        self.graph.loss()
    }

    /// Loss of the current parameters on the batch written by [`Mlp::set_batch`] (forward
    /// only, no update). [`Model::evaluate`](crate::Model::evaluate) scores rows of a data set.
    pub fn batch_loss(&self) -> Result<f32> {
        self.check_batch("Mlp::batch_loss")?;
        self.graph.forward()?;
        self.graph.loss()
    }

    /// The network's outputs for the batch written by [`Mlp::set_batch`] (forward only).
    /// [`Model::predict`](crate::Model::predict) takes any rows.
    pub fn batch_outputs(&self) -> Result<Vec<f32>> {
        self.check_batch("Mlp::batch_outputs")?;
        self.graph.forward()?;
        self.graph.read(self.y)
    }

    /// Gradients of the loss on the current batch, per layer, without updating.
    pub fn gradients(&self) -> Result<Vec<LayerParams>> {
        self.check_batch("Mlp::gradients")?;
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

    /// Overwrites every stacked model's parameters, model by model (each checked before any
    /// is written).
    pub(crate) fn set_stacked_parameters(&self, models: &[Vec<LayerParams>]) -> Result<()> {
        const OP: &str = "Mlp::set_stacked_parameters";
        if models.len() != self.graph.models() {
            return Err(Error::shape(OP, "models", self.graph.models(), models.len()));
        }
        for params in models {
            check_params(OP, &self.sizes, params)?;
        }
        let layers: Vec<LayerParams> = (0..self.weights.len())
            .map(|l| LayerParams {
                weights: models.iter().flat_map(|m| m[l].weights.iter().copied()).collect(),
                bias: models.iter().flat_map(|m| m[l].bias.iter().copied()).collect(),
            })
            .collect();
        self.write_layers(&layers, |node, values| self.graph.write(node, values))
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

    /// Every stacked model's gradient averages, model by model (None without centered
    /// RMSprop).
    pub(crate) fn stacked_grad_averages(&self) -> Result<Option<Vec<Vec<LayerParams>>>> {
        match self.grad_averages() {
            Ok(averages) => self.split_models(averages).map(Some),
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
