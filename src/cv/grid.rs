//! The hyperparameter grid and its points.

use std::fmt;

use crate::ops::Activation;

/// The values to try for each hyperparameter; every combination is one grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGrid {
    /// Learning rates.
    pub lr: Vec<f32>,
    /// Momenta.
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
}

/// One grid point.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyperparams {
    /// Learning rate.
    pub lr: f32,
    /// Momentum.
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
}

impl fmt::Display for Hyperparams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        )
    }
}

impl ParamGrid {
    /// Every combination, in a fixed order (lr varies slowest).
    pub fn points(&self) -> Vec<Hyperparams> {
        let mut points = Vec::new();
        for &lr in &self.lr {
            for &momentum in &self.momentum {
                for &weight_decay in &self.weight_decay {
                    for hidden in &self.hidden {
                        for &epochs in &self.epochs {
                            for &batch_size in &self.batch_size {
                                for &activation in &self.activation {
                                    points.push(Hyperparams {
                                        lr,
                                        momentum,
                                        weight_decay,
                                        hidden: hidden.clone(),
                                        epochs,
                                        batch_size,
                                        activation,
                                    });
                                }
                            }
                        }
                    }
                }
            }
        }
        points
    }
}
