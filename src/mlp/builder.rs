//! Building an [`Mlp`]: sizes, activations, loss, initialisation, and its graph.

use super::tiny::{TinyStep, tiny_step_fits};
use super::{Init, LayerParams, Mlp, check_params, init_params_with};
use crate::device::gpu::Gpu;
use crate::error::{Error, Result};
use crate::graph::GraphBuilder;
use crate::ops::{Activation, Loss};
use crate::optim::Optimizer;

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
    pub(super) sizes: Vec<usize>,
    pub(super) hidden: Activation,
    pub(super) output: Activation,
    pub(super) loss: Loss,
    pub(super) seed: u64,
    pub(super) params: Option<Vec<LayerParams>>,
    pub(super) step_kernel: StepKernel,
    pub(super) init: Init,
    /// The general path without its fused step (tests compare the two).
    pub(super) unfused: bool,
}

/// How [`Mlp::steps`] runs a training step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StepKernel {
    /// The single-dispatch kernel on CPU adapters for nets it can take, else the general path.
    #[default]
    Auto,
    /// The general path: the graph's dispatches, two per layer for dense nets (see
    /// [`Mlp::dispatches_per_step`](crate::Mlp::dispatches_per_step)), for any net.
    General,
    /// One dispatch per step, one invocation doing forward, loss, backward and update; for
    /// nets of at most 8 layers of at most 64 units, activations other than GELU, the MSE loss, and
    /// `batch · Σ in·out ≤ 2048`. Building fails for other nets.
    SingleDispatch,
}

impl MlpBuilder {
    /// How the parameters are drawn from the seed (default [`Init::FanIn`]; ignored when
    /// [`MlpBuilder::parameters`] gives them).
    pub fn init(mut self, init: Init) -> Self {
        self.init = init;
        self
    }

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

    /// The general path's step without its fusions (the loss gradient in the output layer,
    /// the update in the grouped weight gradients): the same training in more dispatches.
    #[cfg(test)]
    pub(crate) fn unfused_step(mut self) -> Self {
        self.unfused = true;
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
        self.check_fits(gpu, "Mlp::build")?;
        let params = self.starting_params("Mlp::build", batch)?;
        self.build_graph(gpu, batch, &[optimizer.into()], &[params])
    }

    /// Every layer's weights within one binding of `gpu`, checked before any host memory is
    /// taken for them (a layer of a billion units is refused, not allocated).
    fn check_fits(&self, gpu: &Gpu, op: &'static str) -> Result<()> {
        for (l, pair) in self.sizes.windows(2).enumerate() {
            let bytes = (pair[0] as u64)
                .checked_mul(pair[1] as u64)
                .and_then(|n| n.checked_mul(4));
            let limit = gpu.max_binding_bytes();
            if bytes.is_none_or(|b| b > limit) {
                return Err(Error::TooLarge {
                    op,
                    what: format!("layer {} weights ({}×{})", l + 1, pair[0], pair[1]),
                    bytes: bytes.unwrap_or(u64::MAX),
                    limit,
                });
            }
        }
        Ok(())
    }

    /// The checked builder's starting parameters (given, else drawn from its seed).
    fn starting_params(&self, op: &'static str, batch: usize) -> Result<Vec<LayerParams>> {
        self.validate()?;
        if batch == 0 {
            return Err(Error::invalid(op, "batch size", "at least 1", 0));
        }
        Ok(match &self.params {
            Some(params) => params.clone(),
            None => init_params_with(&self.sizes, self.seed, self.init),
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
    /// stack.batch_loss()?;
    /// println!("loss per learning rate: {:?}", stack.losses()?);
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn build_stack<O: Into<Optimizer> + Copy>(self, gpu: &Gpu, batch: usize, optimizers: &[O]) -> Result<Mlp> {
        self.check_fits(gpu, "Mlp::build_stack")?;
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
        self.check_fits(gpu, "Mlp::build")?;
        if batch == 0 {
            return Err(Error::invalid("Mlp::build", "batch size", "at least 1", 0));
        }
        if seeds.len() != optimizers.len() {
            return Err(Error::shape("Mlp::build", "seeds", optimizers.len(), seeds.len()));
        }
        let params: Vec<Vec<LayerParams>> = seeds
            .iter()
            .map(|&seed| init_params_with(&self.sizes, seed, self.init))
            .collect();
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
        if self.unfused {
            g = g.unfused_step();
        }
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
            write_stacked(&graph, (&weights, &biases), params)?;
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
            batch_written: Default::default(),
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

/// Each model's own starting parameters into a stack's graph, layer by layer.
fn write_stacked(
    graph: &crate::graph::Graph,
    (weights, biases): (&[crate::graph::NodeId], &[crate::graph::NodeId]),
    params: &[Vec<LayerParams>],
) -> Result<()> {
    for l in 0..weights.len() {
        let stacked = |part: fn(&LayerParams) -> &Vec<f32>| -> Vec<f32> {
            params
                .iter()
                .flat_map(|model| part(&model[l]).iter().copied())
                .collect()
        };
        graph.write(weights[l], &stacked(|layer| &layer.weights))?;
        graph.write(biases[l], &stacked(|layer| &layer.bias))?;
    }
    Ok(())
}
