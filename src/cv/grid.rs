//! The hyperparameter grid and its points.

use std::fmt;

use crate::ops::Activation;
use crate::optim::Optimizer;
use crate::optim::schedule::Schedule;
use crate::train::TrainConfig;

/// The values to try for each hyperparameter; every combination is one grid point. A list
/// left empty keeps the search's base value (so `ParamGrid { lr: vec![1e-3, 1e-2],
/// ..ParamGrid::default() }` searches the learning rate alone).
///
/// ```
/// use wgpu_mlp::{Activation, ParamGrid, TrainConfig};
/// let grid = ParamGrid {
///     lr: vec![0.01, 0.1],
///     activation: vec![Activation::Relu, Activation::Tanh],
///     ..ParamGrid::default()
/// };
/// assert_eq!(grid.points_over(&TrainConfig::classic()).len(), 4);
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ParamGrid {
    /// Optimizers (their own settings, under the lr, momentum and weight decay below).
    pub optimizer: Vec<Optimizer>,
    /// Learning rates.
    pub lr: Vec<f32>,
    /// Momenta (Adam's β₁).
    pub momentum: Vec<f32>,
    /// Weight decays.
    pub weight_decay: Vec<f32>,
    /// Hidden layer sizes.
    pub hidden: Vec<Vec<usize>>,
    /// Epoch counts.
    pub epochs: Vec<usize>,
    /// Batch sizes.
    pub batch_size: Vec<usize>,
    /// Hidden-layer activations (scikit-learn's `activation`).
    pub activation: Vec<Activation>,
    /// Learning-rate schedules.
    pub schedule: Vec<Schedule>,
}

/// One grid point: every value it trains with.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyperparams {
    /// The optimizer (its lr, momentum and weight decay are the fields below).
    pub optimizer: Optimizer,
    /// Learning rate.
    pub lr: f32,
    /// Momentum (Adam's β₁).
    pub momentum: f32,
    /// Weight decay.
    pub weight_decay: f32,
    /// Hidden layer sizes.
    pub hidden: Vec<usize>,
    /// Epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Hidden-layer activation.
    pub activation: Activation,
    /// Learning-rate schedule.
    pub schedule: Schedule,
}

impl Hyperparams {
    /// The optimizer with this point's lr, momentum and weight decay.
    pub(crate) fn optimizer_settings(&self) -> Optimizer {
        self.optimizer.with(self.lr, self.momentum, self.weight_decay)
    }
}

impl fmt::Display for Hyperparams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !matches!(self.optimizer, Optimizer::Sgd(_)) {
            write!(f, "optimizer={} ", self.optimizer.name())?;
        }
        write!(
            f,
            "lr={} momentum={} weight_decay={} hidden={:?} epochs={} batch_size={} activation={}",
            self.lr,
            self.momentum,
            self.weight_decay,
            self.hidden,
            self.epochs,
            self.batch_size,
            self.activation.name()
        )?;
        if self.schedule != Schedule::Constant {
            write!(f, " schedule={}", self.schedule.label())?;
        }
        Ok(())
    }
}

impl ParamGrid {
    /// Every combination over `base` (empty lists take its values), in a fixed order: the
    /// optimizer varies slowest, then lr, ..., the schedule fastest.
    pub fn points_over(&self, base: &TrainConfig) -> Vec<Hyperparams> {
        fn or<T: Clone>(list: &[T], base: T) -> Vec<T> {
            if list.is_empty() { vec![base] } else { list.to_vec() }
        }
        // lr, momentum and weight decay: None takes the optimizer's own.
        fn or_own(list: &[f32]) -> Vec<Option<f32>> {
            if list.is_empty() {
                vec![None]
            } else {
                list.iter().copied().map(Some).collect()
            }
        }
        let optimizers = or(&self.optimizer, base.optimizer);
        let (lrs, momenta, decays) = (or_own(&self.lr), or_own(&self.momentum), or_own(&self.weight_decay));
        let hiddens = or(&self.hidden, base.hidden.clone());
        let epochs = or(&self.epochs, base.epochs);
        let batches = or(&self.batch_size, base.batch_size);
        let activations = or(&self.activation, base.hidden_activation);
        let schedules = or(&self.schedule, base.schedule);
        let radix = [
            optimizers.len(),
            lrs.len(),
            momenta.len(),
            decays.len(),
            hiddens.len(),
            epochs.len(),
            batches.len(),
            activations.len(),
            schedules.len(),
        ];
        (0..radix.iter().product())
            .map(|mut index| {
                // mixed-radix digits, the last list fastest
                let mut digit = [0; 9];
                for (d, &r) in digit.iter_mut().zip(&radix).rev() {
                    *d = index % r;
                    index /= r;
                }
                let optimizer = optimizers[digit[0]];
                Hyperparams {
                    optimizer,
                    lr: lrs[digit[1]].unwrap_or(optimizer.lr()),
                    momentum: momenta[digit[2]].unwrap_or(optimizer.momentum()),
                    weight_decay: decays[digit[3]].unwrap_or(optimizer.weight_decay()),
                    hidden: hiddens[digit[4]].clone(),
                    epochs: epochs[digit[5]],
                    batch_size: batches[digit[6]],
                    activation: activations[digit[7]],
                    schedule: schedules[digit[8]],
                }
            })
            .collect()
    }

    /// [`ParamGrid::points_over`] the default [`TrainConfig`].
    pub fn points(&self) -> Vec<Hyperparams> {
        self.points_over(&TrainConfig::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{Adam, Sgd};

    /// Empty lists take the base's values; an optimizer's own lr, momentum and weight decay
    /// apply unless the grid lists others; the last list varies fastest.
    #[test]
    fn empty_lists_take_the_base_and_optimizers_keep_their_settings() {
        let base = TrainConfig {
            epochs: 7,
            ..TrainConfig::classic()
        };
        let grid = ParamGrid {
            optimizer: vec![Sgd::new(0.2).momentum(0.5).into(), Adam::new(3e-3).into()],
            activation: vec![Activation::Relu, Activation::Tanh],
            ..ParamGrid::default()
        };
        let points = grid.points_over(&base);
        assert_eq!(points.len(), 4);
        assert_eq!((points[0].lr, points[0].momentum, points[0].epochs), (0.2, 0.5, 7));
        assert_eq!(points[1].activation, Activation::Tanh);
        assert_eq!((points[2].lr, points[2].momentum), (3e-3, 0.9));
        assert_eq!(points[3].optimizer_settings(), Optimizer::Adam(Adam::new(3e-3)));
        let one = ParamGrid::default().points_over(&base);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].optimizer_settings(), base.optimizer);
        assert_eq!(one[0].hidden, base.hidden);
    }
}
