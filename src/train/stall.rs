//! Catching a run that stopped learning. A learning rate too large for sigmoid units pushes
//! every pre-activation far out, where σ is exactly 0 or 1 in f32 and its slope exactly 0;
//! ReLUs pushed below zero die the same way. The gradients are then zero, the parameters
//! stop moving, and the loss sits at a constant. The per-epoch loss that training reads back
//! anyway shows the symptom for free; only then does one evaluation read the outputs, and a
//! network whose outputs are the same, to the bit, for every row, or all pinned at the flat
//! ends of the output activation, has collapsed.

use crate::error::{Error, Result};
use crate::mlp::Mlp;
use crate::ops::Activation;

use super::batches::Evaluation;
use super::{GpuDataset, TrainConfig};

/// Epochs the loss must stay put before the outputs are looked at.
const STILL_EPOCHS: usize = 5;
/// "Put": each epoch's loss within this relative distance of the one before (a stalled run
/// moves only by the rounding of sums taken in another shuffle order).
const STILL_RELATIVE: f32 = 1e-6;
/// Rows whose outputs are compared.
const PROBE_ROWS: usize = 256;
/// An output this close to a flat end of its activation has (next to) no slope.
const SATURATED: f32 = 1e-6;
/// Pinned outputs are a failure above this loss: one wrong row in a hundred costs MSE ~5e-3.
const PINNED_LOSS: f32 = 1e-4;

/// Watches one model's per-epoch training loss (see the module docs).
pub(super) struct StallWatch {
    enabled: bool,
    recent: Vec<f32>,
}

impl StallWatch {
    pub(super) fn new(enabled: bool) -> Self {
        StallWatch {
            enabled,
            recent: Vec::new(),
        }
    }

    /// After epoch `epoch` trained `mlp` on `rows` with `config` to `loss`: an
    /// [`Error::Stalled`] once the loss has stayed put and the outputs are all alike.
    pub(super) async fn observe(
        &mut self,
        (epoch, loss): (usize, f32),
        mlp: &Mlp,
        data: &GpuDataset,
        rows: &[usize],
        config: &TrainConfig,
    ) -> Result<()> {
        if !self.enabled || rows.len() < 2 {
            return Ok(());
        }
        self.recent.push(loss);
        if self.recent.len() <= STILL_EPOCHS {
            return Ok(());
        }
        let still = self
            .recent
            .windows(2)
            .all(|w| (w[1] - w[0]).abs() <= STILL_RELATIVE * w[0].abs().max(w[1].abs()));
        self.recent.remove(0);
        if !still {
            return Ok(());
        }
        // Looked at once per still window: a converged run whose loss rests is not read
        // back every epoch.
        self.recent.clear();
        let probe = &rows[..rows.len().min(PROBE_ROWS)];
        let outputs = Evaluation::new(data, mlp, &[probe])?.run_one(mlp).await?.1;
        let width = outputs.len() / probe.len();
        if collapsed(&outputs, width, config.output_activation, loss) {
            return Err(Error::Stalled {
                epoch,
                epochs: STILL_EPOCHS,
                loss,
                settings: settings(config),
            });
        }
        Ok(())
    }
}

/// Whether a network's `outputs` (rows of `width`) show a collapse: the same outputs for
/// every row, or every output pinned where its activation is flat (a sigmoid at 0 or 1, a
/// tanh at ±1) with a loss to show for it (a model that fits every row pins its outputs too,
/// at a loss of ~0).
fn collapsed(outputs: &[f32], width: usize, activation: Activation, loss: f32) -> bool {
    let first = &outputs[..width];
    let pinned = |v: f32| activation.saturated(v, SATURATED);
    outputs.chunks(width).all(|row| row == first) || (loss > PINNED_LOSS && outputs.iter().all(|&v| pinned(v)))
}

/// The hyperparameters of `config`, for the error message.
fn settings(config: &TrainConfig) -> String {
    let optimizer = &config.optimizer;
    format!(
        "{} lr={} momentum={} weight_decay={}, hidden={:?} {}, output {}, loss {}, batch_size={}",
        optimizer.name(),
        optimizer.lr(),
        optimizer.momentum(),
        optimizer.weight_decay(),
        config.hidden,
        config.hidden_activation.name(),
        config.output_activation.name(),
        config.loss.name(),
        config.batch_size
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_is_alike_rows_or_pinned_outputs_with_a_loss() {
        let sigmoid = Activation::Sigmoid;
        assert!(
            collapsed(&[0.3, 0.7, 0.3, 0.7], 2, Activation::Identity, 0.2),
            "alike rows"
        );
        assert!(collapsed(&[1.0, 0.0, 0.0, 1.0], 2, sigmoid, 0.25), "pinned, rows wrong");
        assert!(
            !collapsed(&[1.0, 0.0, 0.0, 1.0], 2, sigmoid, 1e-9),
            "pinned, every row right"
        );
        assert!(!collapsed(&[0.9, 0.1, 0.2, 0.8], 2, sigmoid, 0.25), "still sloped");
        assert!(
            !collapsed(&[1.0, 0.0, 0.0, 1.0], 2, Activation::Identity, 0.25),
            "identity never pins"
        );
        assert!(
            collapsed(&[-1.0, 1.0, 1.0, -1.0], 2, Activation::Tanh, 0.5),
            "tanh at ±1"
        );
    }
}
