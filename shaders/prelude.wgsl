// Shared by every kernel that applies or differentiates an activation: the activation kernels,
// the matmul epilogues, the loss kernels (through an output layer) and the tiny-net step. The
// codes are `Activation::code` in src/ops/activation.rs, which also holds the f64 references.

// Emitted ahead of this file from src/ops/activation.rs (`prelude_constants`): ACT_<NAME>
// (`Activation::code`), LEAKY_RELU_SLOPE (PyTorch's default negative_slope), GELU_SCALE
// (sqrt(2 / pi)) and GELU_CUBIC of GELU's tanh approximation (PyTorch's approximate="tanh").

// tanh without the inf/inf of exp-based formulas at large |x|, and with full relative precision
// near 0 (where 1 − e^(−2|x|) cancels): a Taylor series there.
fn tanh_stable(x: f32) -> f32 {
    let ax = abs(x);
    if ax < 0.125 {
        let x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
    }
    let t = exp(-2.0 * ax);
    return sign(x) * (1.0 - t) / (1.0 + t);
}

// (σ(v), σ(−v)), each without the cancellation of 1 − σ(v).
fn sigmoid_pair(v: f32) -> vec2<f32> {
    let e = exp(-abs(v));
    let big = 1.0 / (1.0 + e);
    let small = e / (1.0 + e);
    return select(vec2<f32>(small, big), vec2<f32>(big, small), v >= 0.0);
}

// y = act(x)
fn act_forward(code: u32, x: f32) -> f32 {
    switch code {
        case ACT_SIGMOID: {
            return 1.0 / (1.0 + exp(-x));
        }
        case ACT_RELU: {
            return max(x, 0.0);
        }
        case ACT_TANH: {
            return tanh_stable(x);
        }
        case ACT_GELU: {
            // 0.5 x (1 + tanh u) = x σ(2u): no cancellation where tanh u is near −1.
            return x * sigmoid_pair(2.0 * GELU_SCALE * (x + GELU_CUBIC * x * x * x)).x;
        }
        case ACT_SILU: {
            return x * sigmoid_pair(x).x;
        }
        case ACT_LEAKY_RELU: {
            return select(LEAKY_RELU_SLOPE * x, x, x > 0.0);
        }
        default: {
            return x;
        }
    }
}

// dy/dx from `saved`: the forward OUTPUT y for identity, sigmoid, ReLU, tanh and LeakyReLU (so a fused
// layer never has to keep its pre-activation), the forward INPUT x for GELU and SiLU
// (`Activation::grad_from_output` says which).
fn act_grad(code: u32, saved: f32) -> f32 {
    switch code {
        case ACT_SIGMOID: {
            return saved * (1.0 - saved);
        }
        case ACT_RELU: {
            return select(0.0, 1.0, saved > 0.0);
        }
        case ACT_TANH: {
            return 1.0 - saved * saved;
        }
        case ACT_GELU: {
            let x = saved;
            // Past |x| = 10 the tanh is exactly ±1 in f32 and the slope exactly 1 or 0; the
            // formula would compute 0 · ∞ there once x³ overflows.
            if abs(x) > 10.0 {
                return select(0.0, 1.0, x > 0.0);
            }
            // 1 + tanh u = 2σ(2u) and 1 − tanh² u = 4σ(2u)σ(−2u): no cancellation for x < −3.
            let s = sigmoid_pair(2.0 * GELU_SCALE * (x + GELU_CUBIC * x * x * x));
            let du = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x);
            return s.x + 2.0 * x * s.x * s.y * du;
        }
        case ACT_SILU: {
            // σ(x) (1 + x σ(−x)): the input is saved, as for GELU
            let s = sigmoid_pair(saved);
            return s.x + saved * s.x * s.y;
        }
        case ACT_LEAKY_RELU: {
            // the output has the input's sign
            return select(LEAKY_RELU_SLOPE, 1.0, saved > 0.0);
        }
        default: {
            return 1.0;
        }
    }
}
