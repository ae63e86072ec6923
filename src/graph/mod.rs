//! The host-side graph: ops over inputs and parameters, a backward schedule derived from the
//! loss, every buffer allocated once, and a whole training step (forward, loss, backward,
//! optimizer update) recorded into one command encoder and one submit.

mod builder;
mod fused_step;
mod fusion;
mod optimizer;
mod passes;
mod schedule;

pub use builder::GraphBuilder;
use builder::Op;
use fused_step::FusedStep;
use fusion::Fusion;
use optimizer::{OptimizerBlock, hyperparams_of};
use passes::{Liveness, ParamLayout, ParamViews, allocate_values};

use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::optim::Optimizer;

/// The loss's row weights, 1/B each for every model; a trainer's gather kernel rewrites them
/// for a partial batch (padding rows weigh 0).
fn row_weights(gpu: &Gpu, nodes: &[builder::Node], loss: NodeId, models: usize) -> Result<Tensor> {
    let batch_rows = match nodes[loss.0].op {
        Op::Loss(_, prediction, _) => nodes[prediction.0].shape[0],
        _ => 1,
    };
    Ok(Tensor::full(gpu, &[models, batch_rows], 1.0 / batch_rows as f32)?
        .view(0, &[batch_rows])
        .stack(models, batch_rows))
}

/// A value in a graph: an input, a parameter or an op's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

/// A graph on the device, ready to train. See [`GraphBuilder`] for an example.
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
    /// their gradients and optimizer state, so one optimizer dispatch updates them all.
    flat_params: Tensor,
    /// Read and written only by kernels; held so its memory stays counted in the stats.
    _flat_grads: Tensor,
    /// Each parameter's velocity and Adam second moment: views of the optimizer's blocks
    /// (None for other nodes, and for second moments without Adam).
    velocities: Vec<Option<Tensor>>,
    second_moments: Vec<Option<Tensor>>,
    grad_averages: Vec<Option<Tensor>>,
    /// Where each parameter starts in the flat blocks (model 0's; each further model's
    /// stretch follows the one before).
    param_offsets: Vec<Option<usize>>,
    forward: Vec<Dispatch>,
    /// Which forward dispatch computes the loss value.
    loss_forward: Option<usize>,
    /// The loss value and its gradient in one dispatch, for steps that compute both: it
    /// stands for the forward loss dispatch and the backward dispatch at this index.
    loss_with_gradient: Option<(usize, Dispatch)>,
    backward: Vec<Dispatch>,
    /// The step with the loss gradient and the update fused in (two dispatches per layer),
    /// where the graph allows it: what `steps` records.
    fused: Option<FusedStep>,
    /// Each model's optimizer, and its state and dispatches.
    optimizers: Vec<Optimizer>,
    optimizer: OptimizerBlock,
    /// Per model, whether the update moves it (u32; all 1 unless a trainer's gather kernel
    /// rewrites them batch by batch).
    active: Tensor,
}

/// What [`Graph::record`] records of a step: always the forward pass; the loss value,
/// the backward pass and the update where asked.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record {
    pub backward: bool,
    pub update: bool,
    /// Compute the loss value (only the gradient is needed to train).
    pub loss: bool,
}

impl Graph {
    fn new(gpu: &Gpu, builder: GraphBuilder, loss: NodeId, optimizers: &[Optimizer]) -> Result<Graph> {
        let models = optimizers.len();
        if models == 0 {
            return Err(Error::invalid("GraphBuilder::build", "models", "at least 1", 0));
        }
        for optimizer in optimizers {
            optimizer.validate()?;
        }
        let nodes = builder.nodes;
        let n = nodes.len();
        let Liveness { live, needs_grad } = Liveness::analyze(&nodes, loss)?;
        let layout = ParamLayout::plan(gpu, n, &builder.param_init, models)?;
        let fusion = Fusion::plan(&nodes, &live);
        let stacked_total = layout.total * models;
        let flat_params = Tensor::from_slice(gpu, &[stacked_total], &layout.initial.repeat(models))?;
        let flat_grads = Tensor::zeros(gpu, &[stacked_total])?;
        let views = ParamViews {
            layout: &layout,
            nodes: &nodes,
            models,
        };
        let values = allocate_values(gpu, &nodes, &live, &fusion, views.of(&flat_params), models)?;
        let row_weights = row_weights(gpu, &nodes, loss, models)?;
        // Per model, whether it takes part in the step: its matmuls and update skip it when 0.
        let active = Tensor::from_u32(gpu, &[models], &vec![1; models])?;
        let cx = schedule::Context {
            gpu,
            nodes: &nodes,
            live: &live,
            needs_grad: &needs_grad,
            fusion: &fusion,
            values: &values,
            row_weights: &row_weights,
            active: &active,
        };
        let forward = schedule::forward(&cx)?;
        let backward = schedule::backward(&cx, views.of(&flat_grads), models)?;
        let optimizer = OptimizerBlock::new(gpu, optimizers, &flat_grads, &flat_params, &active)?;
        let flat = fused_step::Flat {
            params: &flat_params,
            grads: &flat_grads,
            offsets: &layout.offsets,
            model_stride: layout.total,
        };
        let fused = fused_step::plan(builder.unfused, &cx, (&forward, &backward), &optimizer, flat)?;
        let schedule::Forward {
            dispatches: forward,
            loss_at: loss_forward,
            ..
        } = forward;
        let schedule::Backward {
            grads,
            dispatches: backward,
            loss_with_gradient,
            ..
        } = backward;
        Ok(Graph {
            gpu: gpu.clone(),
            ops: nodes.iter().map(|node| node.op).collect(),
            names: nodes.iter().map(|node| node.name.clone()).collect(),
            values,
            grads,
            loss,
            models,
            row_weights,
            velocities: views.of(&optimizer.velocity),
            second_moments: views.of_if(optimizer.adam, &optimizer.second_moment),
            grad_averages: views.of_if(optimizer.centered, &optimizer.grad_average),
            flat_params,
            _flat_grads: flat_grads,
            param_offsets: layout.offsets,
            forward,
            loss_forward,
            loss_with_gradient,
            backward,
            fused,
            optimizers: optimizers.to_vec(),
            optimizer,
            active,
        })
    }

    /// The device this graph lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub(crate) fn live_value(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
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
        self.write_stacked(OP, node, tensor, data)
    }

    /// Writes `data`, one block per stacked model, into `tensor`, `node`'s value or state.
    fn write_stacked(&self, op: &'static str, node: NodeId, tensor: &Tensor, data: &[f32]) -> Result<()> {
        if data.len() != tensor.len() * self.models {
            return Err(Error::shape(
                op,
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

    pub(crate) fn velocity(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
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
        self.write_stacked(OP, node, tensor, data)
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

    /// Kernel launches in one training step whose loss value is not read. A step that reads
    /// it (the last of [`Graph::steps`]) takes as many where the fused step sums the loss in
    /// its grouped dispatch (regression losses of up to 16384 values), else one more.
    pub fn dispatches_per_step(&self) -> usize {
        self.step_dispatches(Record {
            backward: true,
            update: true,
            loss: false,
        })
        .len()
    }

    /// Whether the step runs fused: the loss gradient in the output layer's forward, the
    /// update in the grouped weight gradients (two dispatches per layer).
    #[cfg(test)]
    pub(crate) fn is_fused(&self) -> bool {
        self.fused.is_some()
    }

    /// Where a step's time goes: each of its dispatches run alone, `reps` times with a
    /// sync after each, as (kernel and grid, median milliseconds). Runs the update too, so
    /// the parameters move: profile a throwaway graph.
    pub fn profile(&self, reps: usize) -> Result<Vec<(String, f64)>> {
        let steps = self.step_dispatches(Record {
            backward: true,
            update: true,
            loss: true,
        });
        steps
            .into_iter()
            .map(|dispatch| {
                let mut times = Vec::with_capacity(reps.max(1));
                for _ in 0..reps.max(1) {
                    let started = web_time::Instant::now();
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
    /// keep the values last written. The loss value is computed in the last step only
    /// (nothing reads the others'; no gradient needs it), one dispatch fewer per step.
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
            for step in 1..=k {
                self.record(
                    pass,
                    Record {
                        backward,
                        update,
                        loss: step == k,
                    },
                );
            }
        })
    }

    /// Records the forward pass (the loss value where `what.loss`), then optionally backward
    /// and the update, into `pass`.
    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>, what: Record) {
        self.step_dispatches(what)
            .into_iter()
            .for_each(|dispatch| dispatch.record(pass));
    }

    /// The dispatches [`Graph::record`] records for `what`, in order.
    fn step_dispatches(&self, what: Record) -> Vec<&Dispatch> {
        let Record { backward, update, loss } = what;
        let fused_step = self.fused.as_ref().filter(|_| backward && update);
        // The fused step's head and grouped update, those that also sum the loss where it is
        // read and they can (so the loss needs no dispatch of its own).
        let reading = fused_step.and_then(|step| step.reading.as_ref()).filter(|_| loss);
        let fused = fused_step.map(|step| match reading {
            Some((head, update)) => (step, head, update),
            None => (step, &step.head, &step.update),
        });
        // The loss value with its gradient in one dispatch, where a step computes both and
        // the output layer does not compute the gradient already.
        let loss_both = self
            .loss_with_gradient
            .as_ref()
            .filter(|_| backward && loss && fused_step.is_none_or(|step| !step.head_loss_gradient));
        let loss_value = loss && reading.is_none();
        let mut list = Vec::new();
        for (i, dispatch) in self.forward.iter().enumerate() {
            match (fused, loss_both) {
                (Some((step, head, _)), _) if i == step.head_at => list.push(head),
                _ if Some(i) != self.loss_forward => list.push(dispatch),
                (_, Some((_, both))) => list.push(both),
                _ if loss_value => list.push(dispatch),
                _ => {}
            }
        }
        if backward {
            for (i, dispatch) in self.backward.iter().enumerate() {
                let kept = fused_step.is_none_or(|step| step.keep_backward[i]);
                if kept && loss_both.is_none_or(|&(at, _)| at != i) {
                    list.push(dispatch);
                }
            }
        }
        match fused {
            Some((_, _, grouped)) => list.extend(grouped),
            None if update => list.extend(&self.optimizer.update),
            None => {}
        }
        list
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
        &self.optimizer.velocity
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
        let before = self.optimizers[0];
        if optimizer.needs_second_moment() != before.needs_second_moment()
            || optimizer.needs_grad_average() != before.needs_grad_average()
        {
            return Err(Error::invalid(
                "Graph::set_optimizer",
                "optimizer",
                format!("another {} (the state this graph keeps)", self.optimizers[0].name()),
                format!("{}: build a new model to switch", optimizer.name()),
            ));
        }
        self.set_optimizers(&vec![optimizer; self.models])
    }

    /// Each stacked model's own optimizer settings (the trainer's schedules); the state is
    /// kept, so a model may only take Adam where the graph keeps second moments.
    pub(crate) fn set_optimizers(&mut self, optimizers: &[Optimizer]) -> Result<()> {
        const OP: &str = "Graph::set_optimizers";
        if optimizers.len() != self.models {
            return Err(Error::shape(OP, "optimizers", self.models, optimizers.len()));
        }
        for optimizer in optimizers {
            optimizer.validate()?;
            if optimizer.needs_second_moment() && !self.optimizer.adam {
                return Err(Error::invalid(
                    OP,
                    "optimizer",
                    "SGD (no second moments kept)",
                    optimizer.name(),
                ));
            }
            if optimizer.needs_grad_average() && !self.optimizer.centered {
                return Err(Error::invalid(
                    OP,
                    "optimizer",
                    "one that keeps no gradient average (this graph keeps none)",
                    "centered RMSprop",
                ));
            }
        }
        self.optimizer
            .hyperparams
            .write(bytemuck::cast_slice(&hyperparams_of(optimizers)))?;
        self.optimizers = optimizers.to_vec();
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
}
