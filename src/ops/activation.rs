//! Element-wise activations as data: the [`Activation`] type, its f64 reference, and the
//! forward and backward kernels (shaders/activation.wgsl). The WGSL of each activation lives
//! once, in shaders/prelude.wgsl (`act_forward` / `act_grad`), which the matmul epilogues,
//! the loss kernels and the tiny-net step call with [`Activation::code`], emitted into the
//! prelude's header as `ACT_<NAME>` ([`prelude_constants`]). Adding one is a variant here
//! (code, name, reference, derivative), a case in each of those two WGSL functions, and its
//! ONNX node (src/onnx/mod.rs): three files.

use super::{check_gpu, check_len, elementwise_groups, group_constants, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, WgslConst, wgsl_bindings, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

wgsl_struct! {
    /// activation.wgsl: y = act(x), d_x = d_y ⊙ act'(saved).
    struct ActivationParams {
        n: u32,
        accumulate: u32,
        activation: u32,
        input_stride: u32,
        saved_stride: u32,
        output_stride: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_bindings! {
    /// activation.wgsl.
    struct ActivationBindings {
        PARAMS = 0 => "read" params_buffer: "ActivationParams",
        INPUT = 1 => "read" input: "array<f32>",
        SAVED = 2 => "read" saved: "array<f32>",
        OUTPUT = 3 => "read_write" output: "array<f32>",
    }
}

/// The activation functions every kernel that applies or differentiates one includes.
pub(super) const PRELUDE: &str = include_str!("../../shaders/prelude.wgsl");

/// The prelude's header: each activation's code as `ACT_<NAME>` and the constants of their
/// formulas, written once here.
pub(super) fn prelude_constants() -> Vec<(String, WgslConst)> {
    let mut constants: Vec<_> = Activation::ALL
        .into_iter()
        .map(|a| (format!("ACT_{}", a.name().to_uppercase()), WgslConst::U32(a.code())))
        .collect();
    constants.extend([
        ("LEAKY_RELU_SLOPE".to_string(), WgslConst::F32(LEAKY_RELU_SLOPE as f32)),
        ("GELU_SCALE".to_string(), WgslConst::F32(GELU_SCALE as f32)),
        ("GELU_CUBIC".to_string(), WgslConst::F32(GELU_CUBIC as f32)),
    ]);
    constants
}

const SHADER: Shader = Shader {
    file: "activation.wgsl",
    parts: &[
        Part::Consts(group_constants),
        Part::Consts(prelude_constants),
        Part::Text(ActivationParams::WGSL),
        Part::Text(ActivationBindings::WGSL),
        Part::Text(PRELUDE),
        Part::Text(include_str!("../../shaders/activation.wgsl")),
    ],
    trusted: false,
};
const FORWARD: Kernel = Kernel::new(&SHADER, "activation_forward");
const BACKWARD: Kernel = Kernel::new(&SHADER, "activation_backward");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![FORWARD, BACKWARD]
}

/// The function applied after a dense layer, as PyTorch defines it.
///
/// ```
/// use wgpu_mlp::Activation;
/// assert_eq!(Activation::from_name("relu"), Some(Activation::Relu));
/// assert_eq!(Activation::Relu.reference(-2.0), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Activation {
    /// The logistic sigmoid `1 / (1 + e^−x)` (the default, output layer included).
    #[default]
    Sigmoid,
    /// No activation (a linear output for regression).
    Identity,
    /// `max(x, 0)`; slope 0 at 0, as PyTorch's.
    Relu,
    /// The hyperbolic tangent.
    Tanh,
    /// GELU in its tanh approximation, PyTorch's `GELU(approximate="tanh")`:
    /// `½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    Gelu,
    /// SiLU (swish), PyTorch's `SiLU`: `x σ(x)`.
    Silu,
    /// PyTorch's `LeakyReLU` at its default slope: `x` for `x > 0`, else `0.01 x`.
    LeakyRelu,
}

/// The slope of [`Activation::LeakyRelu`] below 0 (PyTorch's default `negative_slope`).
pub const LEAKY_RELU_SLOPE: f64 = 0.01;

impl Activation {
    /// Every activation, in code order.
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Sigmoid,
        Activation::Relu,
        Activation::Tanh,
        Activation::Gelu,
        Activation::Silu,
        Activation::LeakyRelu,
    ];

    /// Whether `y`, an output of this activation, sits within `margin` of a bound it
    /// saturates at (sigmoid's 0 and 1, tanh's ±1), where its slope has all but vanished.
    pub(crate) fn saturated(self, y: f32, margin: f32) -> bool {
        match self {
            Activation::Sigmoid => y <= margin || y >= 1.0 - margin,
            Activation::Tanh => y.abs() >= 1.0 - margin,
            Activation::Identity | Activation::Relu | Activation::Gelu | Activation::Silu | Activation::LeakyRelu => {
                false
            }
        }
    }

    /// The code the kernels switch on (`ACT_*` in shaders/prelude.wgsl).
    pub(crate) fn code(self) -> u32 {
        match self {
            Activation::Identity => 0,
            Activation::Sigmoid => 1,
            Activation::Relu => 2,
            Activation::Tanh => 3,
            Activation::Gelu => 4,
            Activation::Silu => 5,
            Activation::LeakyRelu => 6,
        }
    }

    /// Its name in checkpoints, the CLI and `cv_results` (PyTorch's lower-case names).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Sigmoid => "sigmoid",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::LeakyRelu => "leaky_relu",
        }
    }

    /// The activation named `name` (see [`Activation::name`]), if any.
    pub fn from_name(name: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether the slope can be computed from the forward output alone, so a fused layer
    /// never keeps its pre-activation. GELU's and SiLU's need the input.
    pub fn grad_from_output(self) -> bool {
        !matches!(self, Activation::Gelu | Activation::Silu)
    }

    /// The f64 reference of the forward function: the oracle the kernels are tested against.
    pub fn reference(self, x: f64) -> f64 {
        match self {
            Activation::Identity => x,
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Relu => x.max(0.0),
            Activation::Tanh => x.tanh(),
            // 0.5 x (1 + tanh u) = x σ(2u): no cancellation where tanh u is near −1.
            Activation::Gelu => x * sigmoid_pair(2.0 * gelu_inner(x)).0,
            Activation::Silu => x * sigmoid_pair(x).0,
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    LEAKY_RELU_SLOPE * x
                }
            }
        }
    }

    /// The f64 reference of the slope `dy/dx` at input `x`.
    pub fn reference_grad(self, x: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Sigmoid => {
                let y = 1.0 / (1.0 + (-x).exp());
                y * (1.0 - y)
            }
            Activation::Relu => f64::from(u8::from(x > 0.0)),
            Activation::Tanh => 1.0 - x.tanh().powi(2),
            // 0.5 (1 + tanh u) + 0.5 x (1 − tanh² u) u′ with 1 + tanh u = 2σ(2u) and
            // 1 − tanh² u = 4σ(2u)σ(−2u): every term without cancellation.
            Activation::Gelu => {
                let (s, c) = sigmoid_pair(2.0 * gelu_inner(x));
                let du = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x);
                s + 2.0 * x * s * c * du
            }
            // σ(x) (1 + x (1 − σ(x))) with 1 − σ(x) = σ(−x)
            Activation::Silu => {
                let (s, c) = sigmoid_pair(x);
                s + x * s * c
            }
            // PyTorch's: the slope below 0, and at 0 too
            Activation::LeakyRelu => {
                if x > 0.0 {
                    1.0
                } else {
                    LEAKY_RELU_SLOPE
                }
            }
        }
    }

    /// The f64 reference of the kernels' slope from what they save (`act_grad` in
    /// prelude.wgsl): from the output `y` where [`Activation::grad_from_output`], else from
    /// the input `x`.
    pub fn reference_grad_from_saved(self, saved: f64) -> f64 {
        match self {
            Activation::Identity => 1.0,
            Activation::Sigmoid => saved * (1.0 - saved),
            Activation::Relu => f64::from(u8::from(saved > 0.0)),
            Activation::Tanh => 1.0 - saved * saved,
            Activation::Gelu | Activation::Silu => self.reference_grad(saved),
            // the output has the input's sign
            Activation::LeakyRelu => self.reference_grad(saved),
        }
    }
}

const GELU_SCALE: f64 = 0.797_884_560_802_865_4; // √(2/π)
const GELU_CUBIC: f64 = 0.044715;

/// (σ(v), σ(−v)), each without the cancellation of 1 − σ(v).
fn sigmoid_pair(v: f64) -> (f64, f64) {
    let e = (-v.abs()).exp();
    let (big, small) = (1.0 / (1.0 + e), e / (1.0 + e));
    if v >= 0.0 { (big, small) } else { (small, big) }
}

fn gelu_inner(x: f64) -> f64 {
    GELU_SCALE * (x + GELU_CUBIC * x * x * x)
}

/// `y = act(x)` element-wise; x and y have the same element count.
pub fn activation_forward(gpu: &Gpu, activation: Activation, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "activation_forward";
    check_gpu(gpu, OP, &[("x", x), ("y", y)])?;
    check_len(OP, "y", y, x.len())?;
    let (models, strides) = model_strides(OP, y, &[("x", x, false), ("y", y, true)])?;
    let params = ActivationParams {
        n: x.len() as u32,
        accumulate: 0,
        activation: activation.code(),
        input_stride: strides[0],
        saved_stride: 0,
        output_stride: strides[1],
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::stacked(
        gpu,
        FORWARD,
        bytemuck::bytes_of(&params),
        &[(ActivationBindings::INPUT, x), (ActivationBindings::OUTPUT, y)],
elementwise_groups(x.len()),
        models,
    )
}

/// `d_x = d_y ⊙ act'(·)` (or `+=` with `accumulate`), the slope taken from `saved`: the
/// forward output y, or the forward input x where [`Activation::grad_from_output`] is false.
pub fn activation_backward(
    gpu: &Gpu,
    activation: Activation,
    d_y: &Tensor,
    saved: &Tensor,
    d_x: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    const OP: &str = "activation_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("saved", saved), ("d_x", d_x)])?;
    check_len(OP, "saved", saved, d_y.len())?;
    check_len(OP, "d_x", d_x, d_y.len())?;
    let (models, strides) = model_strides(
        OP,
        d_x,
        &[("d_y", d_y, false), ("saved", saved, false), ("d_x", d_x, true)],
    )?;
    let params = ActivationParams {
        n: d_y.len() as u32,
        accumulate: accumulate as u32,
        activation: activation.code(),
        input_stride: strides[0],
        saved_stride: strides[1],
        output_stride: strides[2],
        _pad0: 0,
        _pad1: 0,
    };
    Dispatch::stacked(
        gpu,
        BACKWARD,
        bytemuck::bytes_of(&params),
        &[
            (ActivationBindings::INPUT, d_y),
            (ActivationBindings::SAVED, saved),
            (ActivationBindings::OUTPUT, d_x),
        ],
elementwise_groups(d_y.len()),
        models,
    )
}

/// An activation fused into a kernel that can only differentiate it from its output.
pub(crate) fn check_grad_from_output(op: &'static str, activation: Activation) -> Result<()> {
    if activation.grad_from_output() {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            "fused activation",
            "one whose slope follows from its output (identity, sigmoid, relu, tanh)",
            activation.name(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The f64 slopes agree with central differences of the f64 forward functions
    /// (step 1e-6: truncation ~1e-12, rounding ~1e-10; ReLU away from its kink).
    #[test]
    fn reference_slopes_match_finite_differences() {
        for activation in Activation::ALL {
            for &x in &[-7.3, -2.0, -0.4, -1e-3, 1e-3, 0.3, 1.7, 6.1] {
                let h = 1e-6;
                let numeric = (activation.reference(x + h) - activation.reference(x - h)) / (2.0 * h);
                let analytic = activation.reference_grad(x);
                assert!(
                    (numeric - analytic).abs() < 1e-7,
                    "{activation:?} at {x}: finite difference {numeric}, slope {analytic}"
                );
            }
        }
    }

    /// The slope from the saved value equals the slope at the input that produced it.
    #[test]
    fn slopes_from_saved_values_match_slopes_at_inputs() {
        for activation in Activation::ALL {
            for &x in &[-5.0, -0.7, -1e-4, 2e-4, 0.9, 4.2] {
                let saved = if activation.grad_from_output() {
                    activation.reference(x)
                } else {
                    x
                };
                let (from_saved, at_input) = (
                    activation.reference_grad_from_saved(saved),
                    activation.reference_grad(x),
                );
                assert!(
                    (from_saved - at_input).abs() < 1e-12,
                    "{activation:?} at {x}: from saved {from_saved}, at input {at_input}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip_and_codes_are_distinct() {
        for (i, activation) in Activation::ALL.into_iter().enumerate() {
            assert_eq!(Activation::from_name(activation.name()), Some(activation));
            assert_eq!(activation.code(), i as u32);
        }
        assert_eq!(Activation::from_name("swish"), None);
    }
}
