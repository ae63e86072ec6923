//! The optimizers, applied in place on the GPU: SGD (momentum, Nesterov, weight decay in two
//! forms), Adam and AdamW, RMSprop, each with PyTorch's formulas, and [`Optimizer`] to hold
//! any. Adding one: its settings in its own file, its variant and encoding for the kernel
//! (`KIND_*`) here, its update in shaders/optim.wgsl.

pub mod schedule;
pub use schedule::Schedule;

mod adam;
mod rmsprop;
mod sgd;

pub use adam::Adam;
pub use rmsprop::Rmsprop;
pub use sgd::{Sgd, WeightDecay};

use std::collections::BTreeMap;

use crate::device::kernel::{wgsl_consts, wgsl_struct};
use crate::error::{Error, Result};

wgsl_consts! {
    pub(crate) fn kernel_constants;
    /// `OptimizerHyperparams::kind`: which update optim.wgsl applies.
    const KIND_SGD: u32 = 0;
    const KIND_ADAM: u32 = 1;
    const KIND_RMSPROP: u32 = 2;
    /// `OptimizerHyperparams::flags`: weight decay folded into the gradient.
    const FLAG_COUPLED: u32 = 1;
    /// `OptimizerHyperparams::flags`: Nesterov momentum.
    const FLAG_NESTEROV: u32 = 2;
    /// `OptimizerHyperparams::flags`: centered RMSprop.
    const FLAG_CENTERED: u32 = 4;
}

/// One setting's range check: its name, whether it holds, what is expected, the value.
pub(crate) type Check = (&'static str, bool, &'static str, f32);

/// The first failed check of `optimizer`'s settings as an error.
pub(crate) fn check_all(optimizer: &'static str, checks: &[Check]) -> Result<()> {
    match checks.iter().find(|check| !check.1) {
        Some(&(what, _, expected, got)) => Err(Error::invalid(optimizer, what, expected, got)),
        None => Ok(()),
    }
}

pub(crate) fn positive(x: f32) -> bool {
    x.is_finite() && x > 0.0
}

pub(crate) fn non_negative(x: f32) -> bool {
    x.is_finite() && x >= 0.0
}

pub(crate) fn unit(x: f32) -> bool {
    x.is_finite() && (0.0..1.0).contains(&x)
}

/// Any optimizer, for the APIs that take any ([`crate::Mlp`], [`crate::TrainConfig`]).
/// `Sgd`, `Adam` and `Rmsprop` convert into it with `.into()`.
///
/// ```
/// use wgpu_mlp::{Adam, Optimizer};
/// let adamw: Optimizer = Adam::adamw(1e-3).weight_decay(1e-2).into();
/// assert_eq!((adamw.name(), adamw.lr(), adamw.weight_decay()), ("adamw", 1e-3, 1e-2));
/// assert_eq!(Optimizer::from_name("adamw"), Some(Adam::adamw(1e-3).into()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent.
    Sgd(Sgd),
    /// Adam or AdamW.
    Adam(Adam),
    /// RMSprop.
    Rmsprop(Rmsprop),
}

impl Optimizer {
    /// Checks the wrapped optimizer's ranges.
    pub fn validate(&self) -> Result<()> {
        match self {
            Optimizer::Sgd(sgd) => sgd.validate(),
            Optimizer::Adam(adam) => adam.validate(),
            Optimizer::Rmsprop(rmsprop) => rmsprop.validate(),
        }
    }

    /// The learning rate η.
    pub fn lr(&self) -> f32 {
        match self {
            Optimizer::Sgd(sgd) => sgd.lr,
            Optimizer::Adam(adam) => adam.lr,
            Optimizer::Rmsprop(rmsprop) => rmsprop.lr,
        }
    }

    /// SGD's and RMSprop's momentum μ, or Adam's β₁ (the decay of its first moment).
    pub fn momentum(&self) -> f32 {
        match self {
            Optimizer::Sgd(sgd) => sgd.momentum,
            Optimizer::Adam(adam) => adam.beta1,
            Optimizer::Rmsprop(rmsprop) => rmsprop.momentum,
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
            Optimizer::Rmsprop(rmsprop) => rmsprop.weight_decay,
        }
    }

    /// The same optimizer with a grid point's learning rate, momentum (Adam: β₁) and weight
    /// decay; everything else kept.
    pub fn with(self, lr: f32, momentum: f32, weight_decay: f32) -> Optimizer {
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
            Optimizer::Rmsprop(rmsprop) => Optimizer::Rmsprop(Rmsprop {
                lr,
                momentum,
                weight_decay,
                ..rmsprop
            }),
        }
    }

    /// Every optimizer's name (see [`Optimizer::name`]).
    pub const NAMES: [&'static str; 4] = ["sgd", "adam", "adamw", "rmsprop"];

    /// The optimizer named `name` with PyTorch's defaults (SGD: learning rate 1e-3, its
    /// default, and no momentum), if any.
    ///
    /// ```
    /// use wgpu_mlp::{Optimizer, Rmsprop};
    /// assert_eq!(Optimizer::from_name("rmsprop"), Some(Rmsprop::new(1e-2).into()));
    /// for name in Optimizer::NAMES {
    ///     assert_eq!(Optimizer::from_name(name).map(|o| o.name()), Some(name));
    /// }
    /// ```
    pub fn from_name(name: &str) -> Option<Optimizer> {
        Some(match name {
            "sgd" => Sgd::new(1e-3).into(),
            "adam" => Adam::new(1e-3).into(),
            "adamw" => Adam::adamw(1e-3).into(),
            "rmsprop" => Rmsprop::new(1e-2).into(),
            _ => return None,
        })
    }

    /// Its name in checkpoints and `cv_results` (PyTorch's class names, lower-cased).
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd(_) => "sgd",
            Optimizer::Adam(adam) if adam.decoupled => "adamw",
            Optimizer::Adam(_) => "adam",
            Optimizer::Rmsprop(_) => "rmsprop",
        }
    }

    /// Whether it keeps a second moment per weight (and a step count per model).
    pub(crate) fn needs_second_moment(&self) -> bool {
        match self {
            Optimizer::Sgd(_) => false,
            Optimizer::Adam(_) | Optimizer::Rmsprop(_) => true,
        }
    }

    /// Whether it keeps a running average of the gradient per weight (centered RMSprop).
    pub(crate) fn needs_grad_average(&self) -> bool {
        match self {
            Optimizer::Sgd(_) | Optimizer::Adam(_) => false,
            Optimizer::Rmsprop(rmsprop) => rmsprop.centered,
        }
    }

    /// The settings of its kind that count as "not set" when a grid overrides them: PyTorch's
    /// defaults for Adam, the classic network's for SGD.
    pub(crate) fn unset(&self) -> Optimizer {
        match self {
            Optimizer::Sgd(_) => Optimizer::default(),
            Optimizer::Adam(_) => Optimizer::Adam(Adam::new(1e-3)),
            Optimizer::Rmsprop(_) => Optimizer::Rmsprop(Rmsprop::new(1e-2)),
        }
    }

    /// Its kind and settings as a checkpoint's metadata entries (PyTorch's names).
    pub(crate) fn metadata(&self) -> Vec<(String, String)> {
        let mut entries = vec![("optimizer", self.name().to_string())];
        match self {
            Optimizer::Sgd(sgd) => entries.extend([
                ("lr", sgd.lr.to_string()),
                ("momentum", sgd.momentum.to_string()),
                ("weight_decay", sgd.weight_decay.to_string()),
                ("decay", format!("{:?}", sgd.decay)),
                ("nesterov", sgd.nesterov.to_string()),
            ]),
            Optimizer::Adam(adam) => entries.extend([
                ("lr", adam.lr.to_string()),
                ("beta1", adam.beta1.to_string()),
                ("beta2", adam.beta2.to_string()),
                ("eps", adam.eps.to_string()),
                ("weight_decay", adam.weight_decay.to_string()),
            ]),
            Optimizer::Rmsprop(rmsprop) => entries.extend([
                ("lr", rmsprop.lr.to_string()),
                ("alpha", rmsprop.alpha.to_string()),
                ("eps", rmsprop.eps.to_string()),
                ("weight_decay", rmsprop.weight_decay.to_string()),
                ("momentum", rmsprop.momentum.to_string()),
                ("centered", rmsprop.centered.to_string()),
            ]),
        }
        entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The optimizer [`Optimizer::metadata`] wrote (SGD where it names none: the files from
    /// before Adam): `number` reads a setting, `invalid` words an error about the file.
    pub(crate) fn from_metadata(
        meta: &BTreeMap<String, String>,
        number: &dyn Fn(&str) -> Result<f32>,
        invalid: &dyn Fn(String) -> Error,
    ) -> Result<Optimizer> {
        let kind = meta.get("optimizer").map_or("sgd", String::as_str);
        let optimizer: Optimizer = match kind {
            "sgd" => {
                let decay = match meta.get("decay").map(String::as_str) {
                    Some("Decoupled") => WeightDecay::Decoupled,
                    Some("Coupled") => WeightDecay::Coupled,
                    other => return Err(invalid(format!("unknown decay {other:?}"))),
                };
                let nesterov = meta.get("nesterov").is_some_and(|v| v == "true");
                Sgd::new(number("lr")?)
                    .momentum(number("momentum")?)
                    .weight_decay(number("weight_decay")?)
                    .decay(decay)
                    .nesterov(nesterov)
                    .into()
            }
            "adam" | "adamw" => Adam {
                lr: number("lr")?,
                beta1: number("beta1")?,
                beta2: number("beta2")?,
                eps: number("eps")?,
                weight_decay: number("weight_decay")?,
                decoupled: kind == "adamw",
            }
            .into(),
            "rmsprop" => Rmsprop {
                lr: number("lr")?,
                alpha: number("alpha")?,
                eps: number("eps")?,
                weight_decay: number("weight_decay")?,
                momentum: number("momentum")?,
                centered: meta.get("centered").is_some_and(|v| v == "true"),
            }
            .into(),
            other => return Err(invalid(format!("unknown optimizer {other:?}"))),
        };
        optimizer.validate()?;
        Ok(optimizer)
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

impl From<Rmsprop> for Optimizer {
    fn from(rmsprop: Rmsprop) -> Self {
        Optimizer::Rmsprop(rmsprop)
    }
}

impl PartialEq<Sgd> for Optimizer {
    fn eq(&self, other: &Sgd) -> bool {
        *self == Optimizer::Sgd(*other)
    }
}

wgsl_struct! {
    /// optim.wgsl: one model's optimizer settings.
    struct OptimizerHyperparams {
        /// 0 SGD, 1 Adam.
        kind: u32,
        /// 1: weight decay folded into the gradient; 2: Nesterov momentum.
        flags: u32,
        lr: f32,
        /// SGD's μ, Adam's β₁.
        momentum: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        _pad0: f32,
    }
}

impl From<&Optimizer> for OptimizerHyperparams {
    fn from(optimizer: &Optimizer) -> Self {
        match *optimizer {
            Optimizer::Sgd(sgd) => OptimizerHyperparams {
                kind: KIND_SGD,
                flags: if sgd.decay == WeightDecay::Coupled {
                    FLAG_COUPLED
                } else {
                    0
                } | if sgd.nesterov { FLAG_NESTEROV } else { 0 },
                lr: sgd.lr,
                momentum: sgd.momentum,
                beta2: 0.0,
                eps: 0.0,
                weight_decay: sgd.weight_decay,
                _pad0: 0.0,
            },
            Optimizer::Adam(adam) => OptimizerHyperparams {
                kind: KIND_ADAM,
                flags: if adam.decoupled { 0 } else { FLAG_COUPLED },
                lr: adam.lr,
                momentum: adam.beta1,
                beta2: adam.beta2,
                eps: adam.eps,
                weight_decay: adam.weight_decay,
                _pad0: 0.0,
            },
            // PyTorch's RMSprop folds its weight decay into the gradient; its α takes β₂'s place.
            Optimizer::Rmsprop(rmsprop) => OptimizerHyperparams {
                kind: KIND_RMSPROP,
                flags: FLAG_COUPLED | if rmsprop.centered { FLAG_CENTERED } else { 0 },
                lr: rmsprop.lr,
                momentum: rmsprop.momentum,
                beta2: rmsprop.alpha,
                eps: rmsprop.eps,
                weight_decay: rmsprop.weight_decay,
                _pad0: 0.0,
            },
        }
    }
}
