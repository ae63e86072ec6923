//! The optimizers, applied in place on the GPU: SGD (momentum, Nesterov, weight decay in two
//! forms), Adam and AdamW, each with PyTorch's formulas, and [`Optimizer`] to hold either.

pub mod schedule;
pub use schedule::Schedule;

use crate::error::{Error, Result};

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
/// use wgpu_mlp::{Sgd, WeightDecay};
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
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::invalid("Sgd", "lr", "a finite value > 0", self.lr));
        }
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(Error::invalid("Sgd", "momentum", "a value in [0, 1)", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::invalid(
                "Sgd",
                "weight_decay",
                "a finite value >= 0",
                self.weight_decay,
            ));
        }
        if self.nesterov && self.momentum == 0.0 {
            return Err(Error::invalid(
                "Sgd",
                "nesterov",
                "a momentum > 0 (Nesterov momentum without momentum is plain SGD)",
                "momentum 0",
            ));
        }
        Ok(())
    }
}

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
        let check = |what: &str, ok: bool, expected: &str, got: f32| {
            if ok {
                Ok(())
            } else {
                Err(Error::invalid("Adam", what, expected, got))
            }
        };
        let unit = |x: f32| x.is_finite() && (0.0..1.0).contains(&x);
        check(
            "lr",
            self.lr.is_finite() && self.lr > 0.0,
            "a finite value > 0",
            self.lr,
        )?;
        check("beta1", unit(self.beta1), "a value in [0, 1)", self.beta1)?;
        check("beta2", unit(self.beta2), "a value in [0, 1)", self.beta2)?;
        check(
            "eps",
            self.eps.is_finite() && self.eps > 0.0,
            "a finite value > 0",
            self.eps,
        )?;
        let decay = self.weight_decay;
        check(
            "weight_decay",
            decay.is_finite() && decay >= 0.0,
            "a finite value >= 0",
            decay,
        )
    }
}

/// Either optimizer, for the APIs that take any ([`crate::Mlp`], [`crate::TrainConfig`]).
/// `Sgd` and `Adam` convert into it with `.into()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent.
    Sgd(Sgd),
    /// Adam or AdamW.
    Adam(Adam),
}

impl Optimizer {
    /// Checks the wrapped optimizer's ranges.
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(sgd) => sgd.validate(),
            Optimizer::Adam(adam) => adam.validate(),
        }
    }

    /// The learning rate η.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(sgd) => sgd.lr,
            Optimizer::Adam(adam) => adam.lr,
        }
    }

    /// SGD's momentum μ, or Adam's β₁ (the decay of its first moment, Adam's momentum).
    pub fn momentum(&self) -> f32 {
        match self {
            Optimizer::Sgd(sgd) => sgd.momentum,
            Optimizer::Adam(adam) => adam.beta1,
        }
    }

    /// The same optimizer with learning rate `lr`.
    pub(crate) fn with_lr(self, lr: f32) -> Optimizer {
        self.with(lr, self.momentum(), self.weight_decay())
    }

    /// The weight decay.
    pub fn weight_decay(&self) -> f32 {
        match self {
            Optimizer::Sgd(sgd) => sgd.weight_decay,
            Optimizer::Adam(adam) => adam.weight_decay,
        }
    }

    /// The same optimizer with a grid point's learning rate, momentum (Adam: β₁) and weight
    /// decay; everything else kept.
    pub(crate) fn with(self, lr: f32, momentum: f32, weight_decay: f32) -> Optimizer {
        match self {
            Optimizer::Sgd(sgd) => Optimizer::Sgd(Sgd {
                lr,
                momentum,
                weight_decay,
                ..sgd
            }),
            Optimizer::Adam(adam) => Optimizer::Adam(Adam {
                lr,
                beta1: momentum,
                weight_decay,
                ..adam
            }),
        }
    }

    /// Its name in checkpoints and `cv_results` (PyTorch's class names, lower-cased).
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(adam) if adam.decoupled => "adamw",
            Optimizer::Adam(_) => "adam",
        }
    }

    /// Whether it keeps a second moment per weight (and a step count per model).
    pub(crate) fn needs_second_moment(&self) -> bool {
        matches!(self, Optimizer::Adam(_))
    }
}

impl Default for Optimizer {
    fn default() -> Self {
        Optimizer::Sgd(Sgd::new(0.5).momentum(0.9))
    }
}

impl From<Sgd> for Optimizer {
    fn from(sgd: Sgd) -> Self {
        Optimizer::Sgd(sgd)
    }
}

impl From<Adam> for Optimizer {
    fn from(adam: Adam) -> Self {
        Optimizer::Adam(adam)
    }
}

impl PartialEq<Sgd> for Optimizer {
    fn eq(&self, other: &Sgd) -> bool {
        *self == Optimizer::Sgd(*other)
    }
}
