//! What watches the epochs of `train_epochs`: early stopping, the divergence guard's roll-back,
//! and each model's learning-rate schedule.

use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::mlp::{LayerParams, Mlp};
use crate::optim::Optimizer;
use crate::optim::schedule::{Schedule, ScheduleState};

use super::Lane;

/// Early stopping on the watched loss (validation or training), one per model of a stack:
/// the best epoch's loss and (watching validation rows) parameters, and the epochs since one
/// improved on the best by more than `tol`.
pub(super) struct EarlyStop {
    patience: Option<usize>,
    tol: f32,
    keeps_best: bool,
    best_loss: Option<f32>,
    best: Option<Vec<LayerParams>>,
    since_best: usize,
}

impl EarlyStop {
    pub(super) fn new(config: &super::TrainConfig) -> Self {
        EarlyStop {
            patience: config.early_stopping,
            tol: config.tol,
            keeps_best: config.monitor == super::Monitor::ValidationLoss,
            best_loss: None,
            best: None,
            since_best: 0,
        }
    }

    /// After an epoch with watched loss `loss`: whether it is the best yet and its
    /// parameters are to be kept ([`EarlyStop::keep`]). Counts the epochs that did not
    /// improve on the best by more than `tol` (scikit-learn's rule).
    pub(super) fn improves(&mut self, loss: f32) -> bool {
        if self.patience.is_none() {
            return false;
        }
        if self.best_loss.is_none_or(|best| loss < best - self.tol) {
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        let best = self.best_loss.is_none_or(|best| loss < best);
        if best {
            self.best_loss = Some(loss);
        }
        best && self.keeps_best
    }

    /// The best epoch's parameters (this model's).
    pub(super) fn keep(&mut self, params: Vec<LayerParams>) {
        self.best = Some(params);
    }

    /// Whether `patience` epochs passed without improving.
    pub(super) fn should_stop(&self) -> bool {
        self.patience.is_some_and(|patience| self.since_best >= patience)
    }

    /// The best epoch's parameters, if early stopping kept any.
    pub(super) fn into_best(self) -> Option<Vec<LayerParams>> {
        self.best
    }
}

/// After an epoch with validation losses `val` (per model; None for a model not training
/// or without validation rows): keeps each improved model's parameters (one read-back for
/// all of them) and says which models are to stop.
pub(super) async fn watch_early_stops(stops: &mut [EarlyStop], val: &[Option<f32>], mlp: &Mlp) -> Result<Vec<bool>> {
    let improved: Vec<usize> = (0..stops.len())
        .filter(|&m| val[m].is_some_and(|loss| stops[m].improves(loss)))
        .collect();
    if !improved.is_empty() {
        let mut params = match stops.len() {
            1 => vec![mlp.parameters_async().await?],
            _ => mlp.stacked_parameters_async().await?,
        };
        for &m in &improved {
            stops[m].keep(std::mem::take(&mut params[m]));
        }
    }
    Ok((0..stops.len())
        .map(|m| val[m].is_some() && stops[m].should_stop())
        .collect())
}

/// Puts each model's best epoch's parameters back, where early stopping kept any.
pub(super) async fn restore_best(stops: Vec<EarlyStop>, mlp: &Mlp) -> Result<()> {
    let best: Vec<Option<Vec<LayerParams>>> = stops.into_iter().map(EarlyStop::into_best).collect();
    if best.iter().all(Option::is_none) {
        return Ok(());
    }
    if best.len() == 1 {
        return best[0].as_ref().map_or(Ok(()), |params| mlp.set_parameters(params));
    }
    let mut all = mlp.stacked_parameters_async().await?;
    for (m, params) in best.into_iter().enumerate() {
        if let Some(params) = params {
            all[m] = params;
        }
    }
    mlp.set_stacked_parameters(&all)
}

/// Rolls the parameters back to `last_good` (from before the epoch that diverged) and resets
/// the optimizer: the caller never sees NaN weights. The error for model `m`, with its
/// parameters, at (epoch, batch, loss).
pub(super) async fn roll_back(
    mlp: &Mlp,
    last_good: &Tensor,
    m: usize,
    (epoch, batch, loss): (usize, usize, f32),
) -> Error {
    let rolled_back = async {
        let graph = mlp.graph();
        graph.gpu().record_and_submit_after(
            "roll back",
            |encoder| last_good.copy_to(graph.flat_params(), encoder),
            |_| {},
        )?;
        graph.reset_optimizer()?;
        Ok::<_, Error>(if graph.models() == 1 {
            mlp.parameters_async().await?
        } else {
            mlp.stacked_parameters_async().await?.swap_remove(m)
        })
    }
    .await;
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
