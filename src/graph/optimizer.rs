//! The optimizer's part of a graph: its state blocks and dispatches, and the accessors that
//! read and write its state (checkpoints, stacks split into models).

use super::{Graph, NodeId};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::ops;
use crate::optim::Optimizer;

impl Graph {
    /// Sets every velocity back to zero.
    pub fn reset_optimizer(&self) -> Result<()> {
        self.optimizer
            .velocity
            .write(&vec![0.0; self.optimizer.velocity.len()])?;
        let second_moment = &self.optimizer.second_moment;
        second_moment.write(&vec![0.0; second_moment.len()])?;
        let grad_average = &self.optimizer.grad_average;
        grad_average.write(&vec![0.0; grad_average.len()])?;
        let model_state = &self.optimizer.model_state;
        model_state.write(&vec![0.0; model_state.len()])
    }

    /// Adam's second moment of a parameter (every stacked model's, back to back).
    pub fn read_second_moment(&self, node: NodeId) -> Result<Vec<f32>> {
        self.second_moment("Graph::read_second_moment", node)?.to_vec()
    }

    /// Overwrites a parameter's Adam second moment (e.g. from a checkpoint).
    pub fn write_second_moment(&self, node: NodeId, data: &[f32]) -> Result<()> {
        const OP: &str = "Graph::write_second_moment";
        let tensor = self.second_moment(OP, node)?;
        self.write_stacked(OP, node, tensor, data)
    }

    pub(crate) fn second_moment(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
        self.second_moments.get(node.0).and_then(Option::as_ref).ok_or_else(|| {
            Error::invalid(
                op,
                "node",
                "a parameter of a graph trained with Adam",
                format!("{node:?} ({})", self.optimizers[0].name()),
            )
        })
    }

    /// Centered RMSprop's gradient average of a parameter (every stacked model's, back to
    /// back).
    pub(crate) fn read_grad_average(&self, node: NodeId) -> Result<Vec<f32>> {
        self.grad_average("Graph::read_grad_average", node)?.to_vec()
    }

    /// Overwrites a parameter's centered-RMSprop gradient average (e.g. from a checkpoint).
    pub(crate) fn write_grad_average(&self, node: NodeId, data: &[f32]) -> Result<()> {
        const OP: &str = "Graph::write_grad_average";
        let tensor = self.grad_average(OP, node)?;
        self.write_stacked(OP, node, tensor, data)
    }

    pub(crate) fn grad_average(&self, op: &'static str, node: NodeId) -> Result<&Tensor> {
        self.grad_averages.get(node.0).and_then(Option::as_ref).ok_or_else(|| {
            Error::invalid(
                op,
                "node",
                "a parameter of a graph trained with centered RMSprop",
                format!("{node:?} ({})", self.optimizers[0].name()),
            )
        })
    }

    /// Optimizer steps each stacked model has taken (Adam counts them for its bias
    /// corrections; 0 with SGD, which needs no count).
    pub fn optimizer_steps(&self) -> Result<Vec<u64>> {
        Ok(steps_of(&self.optimizer.model_state.to_vec()?))
    }

    /// [`Graph::optimizer_steps`] for async code.
    pub(crate) async fn optimizer_steps_async(&self) -> Result<Vec<u64>> {
        Ok(steps_of(&self.optimizer.model_state.to_vec_async().await?))
    }

    /// Sets every stacked model's optimizer step count (e.g. from a checkpoint); the bias
    /// corrections follow from it at the next step.
    pub fn set_optimizer_steps(&self, steps: u64) -> Result<()> {
        let mut state = vec![0.0f32; self.optimizer.model_state.len()];
        state
            .chunks_mut(ops::MODEL_STATE_WORDS)
            .for_each(|model| model[0] = steps as f32);
        self.optimizer.model_state.write(&state)
    }
}

/// Each model's optimizer settings in the update kernel's layout.
pub(super) fn hyperparams_of(optimizers: &[Optimizer]) -> Vec<crate::optim::OptimizerHyperparams> {
    optimizers
        .iter()
        .map(crate::optim::OptimizerHyperparams::from)
        .collect()
}

/// The optimizer's state and its dispatches: velocities (SGD's v, Adam's m) and Adam's second
/// moments in the layout of the parameters, each model's step count and settings.
pub(super) struct OptimizerBlock {
    pub(super) adam: bool,
    pub(super) velocity: Tensor,
    /// A one-element stand-in when no model uses Adam.
    pub(super) second_moment: Tensor,
    /// Whether any model keeps a gradient average (centered RMSprop).
    pub(super) centered: bool,
    /// Centered RMSprop's ḡ; a one-element stand-in when no model keeps one.
    pub(super) grad_average: Tensor,
    pub(super) model_state: Tensor,
    pub(super) hyperparams: Tensor,
    /// Adam: a step count, then the update; SGD: the update.
    pub(super) update: Vec<Dispatch>,
}

impl OptimizerBlock {
    pub(super) fn new(
        gpu: &Gpu,
        optimizers: &[Optimizer],
        flat_grads: &Tensor,
        flat_params: &Tensor,
        active: &Tensor,
    ) -> Result<OptimizerBlock> {
        let models = optimizers.len();
        let adam = optimizers.iter().any(Optimizer::needs_second_moment);
        let velocity = Tensor::zeros(gpu, &[flat_params.len()])?;
        let second_moment = Tensor::zeros(gpu, &[if adam { flat_params.len() } else { 1 }])?;
        let centered = optimizers.iter().any(Optimizer::needs_grad_average);
        let grad_average = Tensor::zeros(gpu, &[if centered { flat_params.len() } else { 1 }])?;
        let model_state = Tensor::zeros(gpu, &[ops::MODEL_STATE_WORDS * models])?;
        let hyperparams = Tensor::from_slice(
            gpu,
            &[ops::HYPERPARAM_WORDS * models],
            bytemuck::cast_slice(&hyperparams_of(optimizers)),
        )?;
        let state = ops::OptimizerState {
            velocity: &velocity,
            second_moment: &second_moment,
            grad_average: &grad_average,
            model_state: &model_state,
            hyperparams: &hyperparams,
            active,
        };
        let update = ops::optimizer_update_stacked(gpu, models, flat_grads, flat_params, state, adam)?;
        Ok(OptimizerBlock {
            adam,
            velocity,
            second_moment,
            centered,
            grad_average,
            model_state,
            hyperparams,
            update,
        })
    }

    /// The state and settings in the kernels' terms, with the models' `active` flags.
    pub(super) fn state<'a>(&'a self, active: &'a Tensor) -> ops::OptimizerState<'a> {
        ops::OptimizerState {
            velocity: &self.velocity,
            second_moment: &self.second_moment,
            grad_average: &self.grad_average,
            model_state: &self.model_state,
            hyperparams: &self.hyperparams,
            active,
        }
    }
}

/// Each model's step count, from the words of its optimizer state.
fn steps_of(state: &[f32]) -> Vec<u64> {
    state
        .chunks(ops::MODEL_STATE_WORDS)
        .map(|model| model[0] as u64)
        .collect()
}
