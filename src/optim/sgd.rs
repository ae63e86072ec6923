//! Stochastic gradient descent's settings (the update: shaders/optim.wgsl).

use super::{check_all, non_negative, positive, unit};
use crate::error::Result;

/// Where weight decay enters the update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WeightDecay {
    /// Applied at the update, outside the velocity (this library's default):
    /// `v ← μv + g`, `w ← w − η(v + γw)`; with μ = 0, `w ← w − η(g + γw)`.
    #[default]
    Decoupled,
    /// PyTorch's `torch.optim.SGD` form, folded into the gradient before the momentum:
    /// `g ← g + γw`, `v ← μv + g`, `w ← w − ηv`.
    Coupled,
}

/// SGD hyperparameters, named as in PyTorch.
///
/// ```
/// use wgpu_mlp::{Sgd, optim::WeightDecay};
/// let sgd = Sgd::new(0.1).momentum(0.9).weight_decay(1e-4);
/// assert_eq!(sgd.decay, WeightDecay::Decoupled);
/// let torch_like = sgd.decay(WeightDecay::Coupled);
/// assert!(torch_like.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate η (> 0).
    pub lr: f32,
    /// Momentum μ in [0, 1); 0 is plain SGD.
    pub momentum: f32,
    /// Weight decay γ (≥ 0), applied to weights and biases alike.
    pub weight_decay: f32,
    /// Where weight decay enters; see [`WeightDecay`].
    pub decay: WeightDecay,
    /// Nesterov momentum (PyTorch's `nesterov=True`): the step is `g + μv` instead of `v`.
    pub nesterov: bool,
}

impl Sgd {
    /// Plain SGD with learning rate `lr`, no momentum, no weight decay.
    pub fn new(lr: f32) -> Self {
        Sgd {
            lr,
            momentum: 0.0,
            weight_decay: 0.0,
            decay: WeightDecay::Decoupled,
            nesterov: false,
        }
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Sets the momentum μ.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the weight decay γ.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Sets where weight decay enters the update.
    pub fn decay(mut self, decay: WeightDecay) -> Self {
        self.decay = decay;
        self
    }

    /// Checks the ranges: `lr > 0`, `0 ≤ momentum < 1`, `weight_decay ≥ 0`, all finite.
    pub fn validate(&self) -> Result<()> {
        check_all(
            "Sgd",
            &[
                ("lr", positive(self.lr), "a finite value > 0", self.lr),
                ("momentum", unit(self.momentum), "a value in [0, 1)", self.momentum),
                (
                    "weight_decay",
                    non_negative(self.weight_decay),
                    "a finite value >= 0",
                    self.weight_decay,
                ),
                (
                    "nesterov",
                    !self.nesterov || self.momentum != 0.0,
                    "a momentum > 0 (Nesterov momentum without momentum is plain SGD)",
                    self.momentum,
                ),
            ],
        )
    }
}
