//! Learning-rate schedules, stepped once per epoch as PyTorch's schedulers are: the rate an
//! epoch trains with follows from the optimizer's rate (the base) and the epoch, or, for
//! reduce-on-plateau, from the losses seen so far. Each model of a stack keeps its own.

use crate::error::{Error, Result};

/// How the learning rate changes from epoch to epoch.
///
/// ```
/// use wgpu_mlp::Schedule;
/// let step = Schedule::StepDecay { step_size: 10, gamma: 0.5 };
/// assert_eq!(step.rate(0.1, 1), 0.1);   // epochs 1–10
/// assert_eq!(step.rate(0.1, 11), 0.05); // epochs 11–20
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Schedule {
    /// The optimizer's rate throughout.
    #[default]
    Constant,
    /// PyTorch's `StepLR`: `lr · γ^⌊(epoch − 1) / step_size⌋`.
    StepDecay {
        /// Epochs per step.
        step_size: usize,
        /// Factor per step, in (0, 1].
        gamma: f32,
    },
    /// PyTorch's `CosineAnnealingLR` (its closed form):
    /// `eta_min + (lr − eta_min) (1 + cos(π (epoch − 1) / t_max)) / 2`.
    Cosine {
        /// Epochs of the half period.
        t_max: usize,
        /// The rate at the bottom.
        eta_min: f32,
    },
    /// PyTorch's `ReduceLROnPlateau` (mode min, relative threshold, no cooldown): when the
    /// watched loss — the validation loss, or the epoch's training loss without validation
    /// rows — has not improved on the best by the relative `threshold` for more than
    /// `patience` epochs, the rate becomes `max(rate · factor, min_lr)`.
    ReduceOnPlateau {
        /// Factor per reduction, in (0, 1).
        factor: f32,
        /// Epochs without improvement tolerated.
        patience: usize,
        /// Relative improvement that counts (PyTorch's default 1e-4).
        threshold: f32,
        /// The rate never goes below this.
        min_lr: f32,
    },
}

impl Schedule {
    /// PyTorch's `ReduceLROnPlateau` defaults: factor 0.1, patience 10, threshold 1e-4.
    pub fn reduce_on_plateau() -> Self {
        Schedule::ReduceOnPlateau {
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            min_lr: 0.0,
        }
    }

    /// A short text for reports and `cv_results`, e.g. `step(3, 0.5)`.
    pub fn label(&self) -> String {
        match *self {
            Schedule::Constant => "constant".into(),
            Schedule::StepDecay { step_size, gamma } => format!("step({step_size}, {gamma})"),
            Schedule::Cosine { t_max, eta_min } => format!("cosine({t_max}, {eta_min})"),
            Schedule::ReduceOnPlateau { factor, patience, .. } => format!("plateau({factor}, {patience})"),
        }
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str, expected: &str, got: String| Err(Error::invalid("Schedule", what, expected, got));
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::StepDecay { step_size: 0, .. } => bad("step_size", "at least 1", "0".into()),
            Schedule::StepDecay { gamma, .. } if !(gamma > 0.0 && gamma <= 1.0) => {
                bad("gamma", "a value in (0, 1]", gamma.to_string())
            }
            Schedule::Cosine { t_max: 0, .. } => bad("t_max", "at least 1", "0".into()),
            Schedule::Cosine { eta_min, .. } if !(eta_min.is_finite() && eta_min >= 0.0) => {
                bad("eta_min", "a finite value >= 0", eta_min.to_string())
            }
            Schedule::ReduceOnPlateau { factor, .. } if !(factor > 0.0 && factor < 1.0) => {
                bad("factor", "a value in (0, 1)", factor.to_string())
            }
            Schedule::ReduceOnPlateau { threshold, min_lr, .. }
                if !(threshold.is_finite() && threshold >= 0.0 && min_lr.is_finite() && min_lr >= 0.0) =>
            {
                bad(
                    "threshold and min_lr",
                    "finite values >= 0",
                    format!("{threshold}, {min_lr}"),
                )
            }
            _ => Ok(()),
        }
    }

    /// The rate of 1-based `epoch` from the base rate `lr`, for the schedules that depend on
    /// the epoch alone (reduce-on-plateau gives `lr`: it follows the losses, see
    /// [`Schedule::ReduceOnPlateau`]). Computed in f64, rounded once.
    pub fn rate(&self, lr: f32, epoch: usize) -> f32 {
        let (base, e) = (lr as f64, epoch.saturating_sub(1) as f64);
        match *self {
            Schedule::StepDecay { step_size, gamma } => {
                (base * (gamma as f64).powf((e / step_size as f64).floor())) as f32
            }
            Schedule::Cosine { t_max, eta_min } => {
                let low = eta_min as f64;
                (low + (base - low) * (1.0 + (std::f64::consts::PI * e / t_max as f64).cos()) / 2.0) as f32
            }
            Schedule::Constant | Schedule::ReduceOnPlateau { .. } => lr,
        }
    }
}

/// One model's schedule as training runs: the rate of the coming epoch.
#[derive(Clone, Debug)]
pub(crate) struct ScheduleState {
    schedule: Schedule,
    base: f32,
    /// Reduce-on-plateau: the current rate, the best loss, epochs since it.
    rate: f32,
    best: f32,
    bad_epochs: usize,
}

impl ScheduleState {
    pub(crate) fn new(schedule: Schedule, base: f32) -> Self {
        ScheduleState {
            schedule,
            base,
            rate: base,
            best: f32::INFINITY,
            bad_epochs: 0,
        }
    }

    /// The state of a resumed run whose last epoch trained at `rate`.
    pub(crate) fn resumed_at(mut self, rate: f32) -> Self {
        self.rate = rate;
        self
    }

    /// The rate `epoch` (1-based) trains with.
    pub(crate) fn rate(&self, epoch: usize) -> f32 {
        match self.schedule {
            Schedule::ReduceOnPlateau { .. } => self.rate,
            schedule => schedule.rate(self.base, epoch),
        }
    }

    /// After an epoch: the loss reduce-on-plateau watches.
    pub(crate) fn observe(&mut self, loss: f32) {
        let Schedule::ReduceOnPlateau {
            factor,
            patience,
            threshold,
            min_lr,
        } = self.schedule
        else {
            return;
        };
        if loss < self.best * (1.0 - threshold) {
            self.best = loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > patience {
            let reduced = (self.rate * factor).max(min_lr);
            // PyTorch skips reductions smaller than its eps (1e-8).
            if self.rate - reduced > 1e-8 {
                self.rate = reduced;
            }
            self.bad_epochs = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's StepLR and CosineAnnealingLR, epoch by epoch (their formulas in f64).
    #[test]
    fn epoch_schedules_follow_pytorch() {
        let step = Schedule::StepDecay {
            step_size: 3,
            gamma: 0.5,
        };
        let rates: Vec<f32> = (1..=8).map(|e| step.rate(0.2, e)).collect();
        assert_eq!(rates, [0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05]);
        let cosine = Schedule::Cosine {
            t_max: 4,
            eta_min: 0.01,
        };
        for epoch in 1..=9 {
            let e = (epoch - 1) as f64;
            let want = 0.01 + (0.1 - 0.01) * (1.0 + (std::f64::consts::PI * e / 4.0).cos()) / 2.0;
            let got = cosine.rate(0.1, epoch) as f64;
            assert!((got - want).abs() <= 1e-8, "epoch {epoch}: {got} vs {want}");
        }
        assert_eq!(cosine.rate(0.1, 5), 0.01);
    }

    /// ReduceLROnPlateau on a made-up loss curve: improves, stalls past patience, reduces
    /// (the stall counter restarting), stalls again, floors at min_lr.
    #[test]
    fn plateau_reduces_after_patience_and_floors() {
        let schedule = Schedule::ReduceOnPlateau {
            factor: 0.5,
            patience: 2,
            threshold: 0.01,
            min_lr: 0.02,
        };
        let mut state = ScheduleState::new(schedule, 0.1);
        // 1.0 best; 0.995 is within the 1% threshold: no improvement
        let losses = [1.0, 0.9, 0.895, 0.899, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8];
        let mut rates = Vec::new();
        for (i, &loss) in losses.iter().enumerate() {
            rates.push(state.rate(i + 1));
            state.observe(loss);
        }
        let want = [
            0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02, 0.02,
        ];
        assert_eq!(rates, want);
    }

    #[test]
    fn bad_settings_are_errors() {
        for (schedule, field) in [
            (
                Schedule::StepDecay {
                    step_size: 0,
                    gamma: 0.5,
                },
                "step_size",
            ),
            (
                Schedule::StepDecay {
                    step_size: 2,
                    gamma: 1.5,
                },
                "gamma",
            ),
            (Schedule::Cosine { t_max: 0, eta_min: 0.0 }, "t_max"),
            (
                Schedule::ReduceOnPlateau {
                    factor: 1.0,
                    patience: 1,
                    threshold: 0.0,
                    min_lr: 0.0,
                },
                "factor",
            ),
        ] {
            let err = schedule.validate().unwrap_err();
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
        assert!(Schedule::reduce_on_plateau().validate().is_ok());
    }
}
