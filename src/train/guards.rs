//! What watches the epochs of `train_epochs`: early stopping, the divergence guard's roll-back,
//! and each model's learning-rate schedule.

use crate::error::{Error, Result};
use crate::mlp::{LayerParams, Mlp};
use crate::optim::Optimizer;
use crate::schedule::{Schedule, ScheduleState};
use crate::tensor::Tensor;

use super::Lane;

/// Early stopping on the validation loss: the best epoch's parameters, and the epochs since.
pub(super) struct EarlyStop {
    patience: Option<usize>,
    best: Option<(f32, Vec<LayerParams>)>,
    since_best: usize,
}

impl EarlyStop {
    pub(super) fn new(patience: Option<usize>) -> Self {
        EarlyStop {
            patience,
            best: None,
            since_best: 0,
        }
    }

    /// After an epoch with validation loss `loss`: keeps the parameters if they are the best
    /// yet; true once `patience` epochs passed without improving.
    pub(super) fn should_stop(&mut self, loss: f32, mlp: &Mlp) -> Result<bool> {
        let Some(patience) = self.patience else {
            return Ok(false);
        };
        if self.best.as_ref().is_none_or(|(best, _)| loss < *best) {
            self.best = Some((loss, mlp.parameters()?));
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        Ok(self.since_best >= patience)
    }

    /// Puts the best epoch's parameters back (if early stopping kept any).
    pub(super) fn restore_best(self, mlp: &Mlp) -> Result<()> {
        match self.best {
            Some((_, params)) => mlp.set_parameters(&params),
            None => Ok(()),
        }
    }
}

/// Rolls the parameters back to `last_good` (from before the epoch that diverged) and resets
/// the optimizer: the caller never sees NaN weights. The error for model `m`, with its
/// parameters, at (epoch, batch, loss).
pub(super) fn roll_back(mlp: &Mlp, last_good: &Tensor, m: usize, (epoch, batch, loss): (usize, usize, f32)) -> Error {
    let rolled_back = (|| -> Result<Vec<LayerParams>> {
        let graph = mlp.graph();
        graph.gpu().record_and_submit_after(
            "roll back",
            |encoder| last_good.copy_to(graph.flat_params(), encoder),
            |_| {},
        )?;
        graph.reset_optimizer()?;
        Ok(if graph.models() == 1 {
            mlp.parameters()?
        } else {
            mlp.stacked_parameters()?.swap_remove(m)
        })
    })();
    match rolled_back {
        Ok(last_good) => Error::Diverged {
            epoch,
            batch: batch + 1,
            loss,
            last_good,
        },
        Err(error) => error,
    }
}

/// Each lane's learning-rate schedule, applied to the stack before every epoch.
pub(super) struct Schedules<'a> {
    lanes: &'a [Lane<'a>],
    pub(super) states: Vec<ScheduleState>,
    scheduled: bool,
}

impl<'a> Schedules<'a> {
    pub(super) fn new(lanes: &'a [Lane<'a>], epochs_done: usize, mlp: &Mlp) -> Self {
        let states = lanes
            .iter()
            .map(|lane| {
                let state = ScheduleState::new(lane.config.schedule, lane.config.optimizer.lr());
                // Resuming: reduce-on-plateau carries on from the rate the run had reached.
                if epochs_done > 0 {
                    state.resumed_at(mlp.graph().optimizer().lr())
                } else {
                    state
                }
            })
            .collect();
        let scheduled = lanes.iter().any(|lane| lane.config.schedule != Schedule::Constant);
        Schedules {
            lanes,
            states,
            scheduled,
        }
    }

    /// Each lane's rate for `epoch`, written to the stack's optimizers when any schedules.
    pub(super) fn apply(&self, epoch: usize, mlp: &mut Mlp) -> Result<Vec<f32>> {
        let rates: Vec<f32> = self.states.iter().map(|s| s.rate(epoch)).collect();
        if self.scheduled {
            let optimizers: Vec<Optimizer> = self
                .lanes
                .iter()
                .zip(&rates)
                .map(|(lane, &lr)| lane.config.optimizer.with_lr(lr))
                .collect();
            mlp.set_optimizers(&optimizers)?;
        }
        Ok(rates)
    }
}
