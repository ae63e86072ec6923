//! Losses as data: the [`Loss`] type, its f64 reference, and the forward and backward
//! dispatch to each loss's kernels (shaders/mse.wgsl, shaders/softmax_xent.wgsl). Every loss
//! is a mean over the batch of a per-sample loss, each row weighted (`w_i = 1/B`; 0 for the
//! padding rows of a partial batch).

use super::Activation;
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

/// The training loss, per sample (a row of outputs `y` against targets `t`).
///
/// ```
/// use wgpu_mlp::Loss;
/// assert_eq!(Loss::from_name("cross_entropy"), Some(Loss::SoftmaxCrossEntropy));
/// let half_squared = Loss::Mse.reference(&[1.0, 2.0], &[0.0, 0.0]);
/// assert_eq!(half_squared, 2.5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Loss {
    /// The seed's `½ Σ_j (y_j − t_j)²` (so `dE/dy = y − t`): PyTorch's
    /// `MSELoss(reduction="sum")` halved, per sample. The default, and the loss for regression.
    #[default]
    Mse,
    /// `−Σ_j t_j log softmax(y)_j` from logits `y` (the output activation must be identity),
    /// the targets class probabilities (one-hot for labels): PyTorch's `CrossEntropyLoss`
    /// with probability targets; the gradient is `softmax(y) − t`. The loss for classification.
    SoftmaxCrossEntropy,
    /// `Σ_j −t_j log σ(y_j) − (1 − t_j) log(1 − σ(y_j))` from logits `y` (the output
    /// activation must be identity), each output its own binary target: PyTorch's
    /// `BCEWithLogitsLoss` summed over the outputs (its default also averages over them; the
    /// same for one output); the gradient is `σ(y) − t`. For multi-label targets.
    BinaryCrossEntropy,
    /// `Σ_j h(y_j − t_j)` with Huber's `h(d) = ½ d²` for `|d| ≤ δ`, `δ(|d| − ½δ)` beyond,
    /// δ = [`Loss::HUBER_DELTA`]: PyTorch's `HuberLoss(delta=1.0)` summed over the outputs (its
    /// default also averages over them; the same for one output); the gradient is
    /// `clamp(y − t, −δ, δ)`. Regression that an outlier cannot pull far.
    Huber,
}

/// How a loss reads the network's outputs, and so how a model turns them into predictions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutputLink {
    /// The outputs are the predictions (regression).
    Identity,
    /// The outputs are logits of one softmax over the classes.
    Softmax,
    /// Each output is the logit of its own sigmoid.
    Sigmoid,
}

impl Loss {
    /// The δ of [`Loss::Huber`]: PyTorch's default, where squared error turns into absolute.
    pub const HUBER_DELTA: f64 = 1.0;

    /// Every loss.
    pub const ALL: [Loss; 4] = [
        Loss::Mse,
        Loss::SoftmaxCrossEntropy,
        Loss::BinaryCrossEntropy,
        Loss::Huber,
    ];

    /// Its name in checkpoints, the CLI and `cv_results`.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::SoftmaxCrossEntropy => "cross_entropy",
            Loss::BinaryCrossEntropy => "binary_cross_entropy",
            Loss::Huber => "huber",
        }
    }

    /// How the network's outputs are read under this loss.
    pub(crate) fn link(self) -> OutputLink {
        match self {
            Loss::Mse | Loss::Huber => OutputLink::Identity,
            Loss::SoftmaxCrossEntropy => OutputLink::Softmax,
            Loss::BinaryCrossEntropy => OutputLink::Sigmoid,
        }
    }

    /// Whether its kernel takes the gradient on through the output layer's activation (the
    /// regression losses: mse.wgsl), so the graph can fold that activation's backward in.
    pub(crate) fn takes_output_activation(self) -> bool {
        self.link() == OutputLink::Identity
    }

    /// The loss named `name` (see [`Loss::name`]), if any.
    pub fn from_name(name: &str) -> Option<Loss> {
        Loss::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The f64 reference of one sample's loss: the oracle the kernels are tested against.
    pub fn reference(self, y: &[f64], t: &[f64]) -> f64 {
        match self {
            Loss::Mse => y.iter().zip(t).map(|(y, t)| 0.5 * (y - t).powi(2)).sum(),
            Loss::SoftmaxCrossEntropy => {
                let lse = log_sum_exp(y);
                y.iter().zip(t).map(|(y, t)| t * (lse - y)).sum()
            }
            Loss::BinaryCrossEntropy => y
                .iter()
                .zip(t)
                .map(|(&y, t)| y.max(0.0) - y * t + (-y.abs()).exp().ln_1p())
                .sum(),
            Loss::Huber => y
                .iter()
                .zip(t)
                .map(|(y, t)| match (y - t).abs() {
                    d if d <= Loss::HUBER_DELTA => 0.5 * d * d,
                    d => Loss::HUBER_DELTA * (d - 0.5 * Loss::HUBER_DELTA),
                })
                .sum(),
        }
    }

    /// The f64 reference of one sample's loss gradient `dE/dy`.
    pub fn reference_grad(self, y: &[f64], t: &[f64]) -> Vec<f64> {
        match self {
            Loss::Mse => y.iter().zip(t).map(|(y, t)| y - t).collect(),
            Loss::SoftmaxCrossEntropy => {
                let (lse, t_sum) = (log_sum_exp(y), t.iter().sum::<f64>());
                y.iter().zip(t).map(|(y, t)| (y - lse).exp() * t_sum - t).collect()
            }
            Loss::BinaryCrossEntropy => y.iter().zip(t).map(|(&y, t)| 1.0 / (1.0 + (-y).exp()) - t).collect(),
            Loss::Huber => y
                .iter()
                .zip(t)
                .map(|(y, t)| (y - t).clamp(-Loss::HUBER_DELTA, Loss::HUBER_DELTA))
                .collect(),
        }
    }

    /// Whether this loss can take the network's outputs through `activation` (softmax cross
    /// entropy takes raw logits: its softmax is part of the loss).
    pub(crate) fn check_output_activation(self, op: &'static str, activation: Activation) -> Result<()> {
        if !self.takes_output_activation() && activation != Activation::Identity {
            return Err(Error::invalid(
                op,
                format!("output activation for the {} loss", self.name()),
                "identity (the loss applies its softmax or sigmoid to the logits itself)",
                format!("{}: set output_activation(Activation::Identity)", activation.name()),
            ));
        }
        Ok(())
    }
}

fn log_sum_exp(y: &[f64]) -> f64 {
    let top = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    top + y.iter().map(|v| (v - top).exp()).sum::<f64>().ln()
}

/// `loss = Σ_i w_i · E(y_i, t_i)` into `loss` (1 element), reduced deterministically.
pub fn loss_forward(
    gpu: &Gpu,
    loss: Loss,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    out: &Tensor,
) -> Result<Dispatch> {
    match loss {
        Loss::Mse => super::mse_forward(gpu, y, t, row_weights, out),
        Loss::SoftmaxCrossEntropy => super::xent_forward(gpu, y, t, row_weights, out),
        Loss::BinaryCrossEntropy => super::bce_forward(gpu, y, t, row_weights, out),
        Loss::Huber => super::mse::regression_forward(gpu, Loss::HUBER_DELTA as f32, y, t, row_weights, out),
    }
}

/// The loss into `out` and its gradient into `d` (as [`loss_backward`]) in one dispatch, for
/// batch-sized outputs (`None` above: one workgroup writing every gradient would be slow).
#[allow(clippy::too_many_arguments)] // loss_forward's and loss_backward's operands together
pub(crate) fn loss_with_gradient(
    gpu: &Gpu,
    loss: Loss,
    activation: Activation,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    out: &Tensor,
    d: &Tensor,
) -> Result<Option<Dispatch>> {
    if y.len() > super::loss_kernels::FUSED_MAX_OUTPUTS {
        return Ok(None);
    }
    let operands = [y, t, row_weights];
    let regression =
        |delta| super::mse::regression_forward_with_gradient(gpu, delta, activation, y, t, row_weights, out, d);
    match loss {
        Loss::Mse => regression(0.0),
        Loss::Huber => regression(Loss::HUBER_DELTA as f32),
        Loss::SoftmaxCrossEntropy => super::softmax_xent::forward_with_gradient(gpu, true, operands, out, d),
        Loss::BinaryCrossEntropy => super::softmax_xent::forward_with_gradient(gpu, false, operands, out, d),
    }
    .map(Some)
}

/// `d = w_i · dE/dy_i`, taken on through the output layer's `activation` when it is not
/// identity (MSE only; its slope must follow from its output).
pub fn loss_backward(
    gpu: &Gpu,
    loss: Loss,
    activation: Activation,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    d: &Tensor,
) -> Result<Dispatch> {
    loss.check_output_activation("loss_backward", activation)?;
    match loss {
        Loss::Mse => super::mse_backward_through(gpu, activation, y, t, row_weights, d),
        Loss::SoftmaxCrossEntropy => super::xent_backward(gpu, y, t, row_weights, d),
        Loss::BinaryCrossEntropy => super::bce_backward(gpu, y, t, row_weights, d),
        Loss::Huber => super::mse::regression_backward(gpu, Loss::HUBER_DELTA as f32, activation, y, t, row_weights, d),
    }
}

impl Loss {
    /// For the regression losses, whose gradient is element-wise (`mse_rules.wgsl`), the
    /// Huber δ their gradient clamps at (0: the squared error); `None` for the others.
    pub(crate) fn regression_delta(self) -> Option<f32> {
        match self {
            Loss::Mse => Some(0.0),
            Loss::Huber => Some(Loss::HUBER_DELTA as f32),
            Loss::SoftmaxCrossEntropy | Loss::BinaryCrossEntropy => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f64 gradients agree with central differences of the f64 losses.
    #[test]
    fn reference_gradients_match_finite_differences() {
        let y = [0.3, -1.2, 2.5, 0.0];
        for (loss, t) in [
            (Loss::Mse, [0.1, 0.7, -0.4, 1.0]),
            (Loss::SoftmaxCrossEntropy, [0.0, 0.0, 1.0, 0.0]),
            (Loss::SoftmaxCrossEntropy, [0.2, 0.1, 0.3, 0.1]), // soft targets summing to 0.7
            (Loss::BinaryCrossEntropy, [0.0, 1.0, 0.3, 1.0]),
            (Loss::Huber, [0.1, 0.7, -0.4, 1.5]), // differences inside and outside δ (not at it)
        ] {
            let grad = loss.reference_grad(&y, &t);
            for j in 0..y.len() {
                let h = 1e-6;
                let (mut up, mut down) = (y, y);
                up[j] += h;
                down[j] -= h;
                let numeric = (loss.reference(&up, &t) - loss.reference(&down, &t)) / (2.0 * h);
                assert!(
                    (numeric - grad[j]).abs() < 1e-7,
                    "{loss:?} d/dy{j}: {numeric} vs {}",
                    grad[j]
                );
            }
        }
    }

    /// Huge logits do not overflow: the row maximum is subtracted first.
    #[test]
    fn cross_entropy_reference_is_stable() {
        let loss = Loss::SoftmaxCrossEntropy.reference(&[1000.0, 0.0], &[0.0, 1.0]);
        assert!((loss - 1000.0).abs() < 1e-9, "{loss}");
        let loss = Loss::BinaryCrossEntropy.reference(&[-1000.0, 1000.0], &[1.0, 1.0]);
        assert!((loss - 1000.0).abs() < 1e-9, "{loss}");
    }

    #[test]
    fn names_round_trip() {
        for loss in Loss::ALL {
            assert_eq!(Loss::from_name(loss.name()), Some(loss));
        }
    }
}
