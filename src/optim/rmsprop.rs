//! RMSprop's settings (the update: shaders/optim.wgsl).

use super::{check_all, non_negative, positive, unit};
use crate::error::Result;

/// RMSprop (Hinton), named and computed as PyTorch's `torch.optim.RMSprop`. Per weight:
/// `g ← g + λw`, `v ← αv + (1 − α)g²`; centered, `ḡ ← αḡ + (1 − α)g` and `ṽ = v − ḡ²`,
/// else `ṽ = v`; with momentum `b ← μb + g / (√ṽ + ε)`, `w ← w − ηb`, else
/// `w ← w − η g / (√ṽ + ε)`. Its state per weight: `v` (the second moment), `b` (the
/// velocity) and, centered, `ḡ`.
///
/// ```
/// use wgpu_mlp::{Optimizer, Rmsprop};
/// let rmsprop = Rmsprop::new(1e-2).momentum(0.9);
/// assert_eq!((rmsprop.alpha, rmsprop.eps), (0.99, 1e-8));
/// assert!(Optimizer::from(rmsprop).validate().is_ok());
/// assert!(Optimizer::from(rmsprop.centered(true)).validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rmsprop {
    /// Learning rate η (> 0).
    pub lr: f32,
    /// Decay α of the squared-gradient average, in [0, 1).
    pub alpha: f32,
    /// ε (> 0) added to the denominator.
    pub eps: f32,
    /// Weight decay λ (≥ 0), added to the gradient.
    pub weight_decay: f32,
    /// Momentum μ in [0, 1).
    pub momentum: f32,
    /// Divide by the variance estimate `v − ḡ²` instead of `v`.
    pub centered: bool,
}

impl Rmsprop {
    /// PyTorch's defaults with learning rate `lr`: α 0.99, ε 1e-8, no decay, no momentum.
    pub fn new(lr: f32) -> Self {
        Rmsprop {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }

    /// With momentum μ.
    pub fn momentum(self, momentum: f32) -> Self {
        Rmsprop { momentum, ..self }
    }

    /// With the squared-gradient decay α.
    pub fn alpha(self, alpha: f32) -> Self {
        Rmsprop { alpha, ..self }
    }

    /// With ε.
    pub fn eps(self, eps: f32) -> Self {
        Rmsprop { eps, ..self }
    }

    /// With weight decay λ.
    pub fn weight_decay(self, weight_decay: f32) -> Self {
        Rmsprop { weight_decay, ..self }
    }

    /// Centered or not.
    pub fn centered(self, centered: bool) -> Self {
        Rmsprop { centered, ..self }
    }

    /// Checks the ranges: `lr > 0`, α and μ in [0, 1), `eps > 0`, `weight_decay ≥ 0`.
    pub fn validate(&self) -> Result<()> {
        check_all(
            "RMSprop",
            &[
                ("lr", positive(self.lr), "a finite value > 0", self.lr),
                ("alpha", unit(self.alpha), "a value in [0, 1)", self.alpha),
                ("eps", positive(self.eps), "a finite value > 0", self.eps),
                (
                    "weight_decay",
                    non_negative(self.weight_decay),
                    "a finite value >= 0",
                    self.weight_decay,
                ),
                ("momentum", unit(self.momentum), "a value in [0, 1)", self.momentum),
            ],
        )
    }
}
