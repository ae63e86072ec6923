//! Adam's and AdamW's settings (the update: shaders/optim.wgsl).

use super::{check_all, non_negative, positive, unit};
use crate::error::Result;

/// Adam (Kingma & Ba), named and computed as PyTorch's `torch.optim.Adam` and, with
/// [`Adam::adamw`], `torch.optim.AdamW`. Per weight, at step t (counted per model):
/// `g ← g + λw` (Adam's coupled weight decay), `m ← β₁m + (1 − β₁)g`,
/// `v ← β₂v + (1 − β₂)g²`, `w ← w − η (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)`; AdamW
/// instead first decays `w ← w − ηλw` and leaves `g` alone.
///
/// ```
/// use wgpu_mlp::{Adam, Optimizer};
/// let adam = Adam::new(1e-3);
/// assert_eq!((adam.beta1, adam.beta2, adam.eps), (0.9, 0.999, 1e-8));
/// let adamw: Optimizer = Adam::adamw(1e-3).weight_decay(1e-2).into();
/// assert!(adamw.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate η (> 0).
    pub lr: f32,
    /// Decay of the first moment, β₁ in [0, 1).
    pub beta1: f32,
    /// Decay of the second moment, β₂ in [0, 1).
    pub beta2: f32,
    /// ε (> 0) added to the denominator.
    pub eps: f32,
    /// Weight decay λ (≥ 0): added to the gradient (Adam) or decoupled (AdamW).
    pub weight_decay: f32,
    /// AdamW's decoupled weight decay instead of Adam's.
    pub decoupled: bool,
}

impl Adam {
    /// Adam with learning rate `lr` and PyTorch's defaults: β = (0.9, 0.999), ε = 1e-8, no
    /// weight decay.
    pub fn new(lr: f32) -> Self {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
        }
    }

    /// AdamW with learning rate `lr` and PyTorch's defaults (weight decay 0.01).
    pub fn adamw(lr: f32) -> Self {
        Adam {
            weight_decay: 0.01,
            decoupled: true,
            ..Adam::new(lr)
        }
    }

    /// Sets (β₁, β₂).
    pub fn betas(mut self, beta1: f32, beta2: f32) -> Self {
        (self.beta1, self.beta2) = (beta1, beta2);
        self
    }

    /// Sets ε.
    pub fn eps(mut self, eps: f32) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the weight decay λ.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Checks the ranges: `lr > 0`, β₁ and β₂ in [0, 1), `eps > 0`, `weight_decay ≥ 0`.
    pub fn validate(&self) -> Result<()> {
        check_all(
            "Adam",
            &[
                ("lr", positive(self.lr), "a finite value > 0", self.lr),
                ("beta1", unit(self.beta1), "a value in [0, 1)", self.beta1),
                ("beta2", unit(self.beta2), "a value in [0, 1)", self.beta2),
                ("eps", positive(self.eps), "a finite value > 0", self.eps),
                (
                    "weight_decay",
                    non_negative(self.weight_decay),
                    "a finite value >= 0",
                    self.weight_decay,
                ),
            ],
        )
    }
}
