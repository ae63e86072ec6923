//! The fused step's kernels against the unfused ones they stand for, bit for bit (the same
//! products and the same update arithmetic), and their gradients against f64.
//!
//! - `matmul_grouped_update` = each layer's `matmul_bias_grad` (or plain `AtB` matmul) then
//!   `optimizer_update_stacked`, for every kernel, three products of awkward shapes (one
//!   without a bias) in a stack of two models with different optimizers, one model sitting the
//!   step out; gaps in the flat blocks start NaN and must stay untouched.
//! - `matmul_head` = the forward matmul with its bias-activation epilogue, then the regression
//!   loss's backward, and its step count = `optimizer_steps`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::matmul_grouped::{FlatBlocks, GroupedKernel, WeightGradient, matmul_grouped_update};
use super::matmul_head::{HeadLoss, matmul_head};
use super::mse::regression_backward;
use super::stacked_tests::gpu;
use super::*;
use crate::optim::{Adam, Optimizer, OptimizerHyperparams, Rmsprop, Sgd};

const MODELS: usize = 2;
const BATCH: usize = 13;

fn random(rng: &mut StdRng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(low..high)).collect()
}

/// A stack of `MODELS` tensors of `shape`, back to back.
fn stack(gpu: &Gpu, shape: &[usize], values: &[f32]) -> Tensor {
    let len: usize = shape.iter().product();
    Tensor::from_slice(gpu, &[MODELS * len], values)
        .unwrap()
        .view(0, shape)
        .stack(MODELS, len)
}

/// (inputs, outputs, with a bias) of the three products, and their offsets in a model's
/// flat block of `STRIDE` values: gaps between them, and every start aligned for a binding
/// of its own (the unfused kernels bind each as a view; 64 floats = 256 bytes suit every
/// adapter).
const LAYERS: [(usize, usize, bool); 3] = [(7, 5, true), (5, 3, true), (9, 4, false)];
const OFFSETS: [(usize, Option<usize>); 3] = [(0, Some(64)), (128, Some(192)), (256, None)];
const STRIDE: usize = 320;

/// Host copies of everything a grouped update reads and writes.
#[derive(Clone)]
struct Host {
    xs: Vec<Vec<f32>>,
    d_ys: Vec<Vec<f32>>,
    params: Vec<f32>,
    velocity: Vec<f32>,
    second_moment: Vec<f32>,
    grad_average: Vec<f32>,
    model_state: Vec<f32>,
}

fn host(rng: &mut StdRng) -> Host {
    let n = MODELS * STRIDE;
    Host {
        xs: LAYERS
            .iter()
            .map(|&(i, _, _)| random(rng, MODELS * BATCH * i, -1.0, 1.0))
            .collect(),
        d_ys: LAYERS
            .iter()
            .map(|&(_, o, _)| random(rng, MODELS * BATCH * o, -1.0, 1.0))
            .collect(),
        params: random(rng, n, -1.0, 1.0),
        velocity: random(rng, n, -0.1, 0.1),
        second_moment: random(rng, n, 0.0, 0.1),
        grad_average: random(rng, n, -0.01, 0.01),
        // steps, c1, c2 of a model 3 steps in (any positive values serve)
        model_state: [3.0, 0.271, 0.002997, 0.0].repeat(MODELS),
    }
}

/// The device copies of a [`Host`], and the flat gradients (NaN to start).
struct Device {
    xs: Vec<Tensor>,
    d_ys: Vec<Tensor>,
    grads: Tensor,
    params: Tensor,
    velocity: Tensor,
    second_moment: Tensor,
    grad_average: Tensor,
    model_state: Tensor,
    hyperparams: Tensor,
    active: Tensor,
}

fn device(gpu: &Gpu, h: &Host, optimizers: &[Optimizer], active: &[u32]) -> Device {
    let n = MODELS * STRIDE;
    let hyper: Vec<OptimizerHyperparams> = optimizers.iter().map(OptimizerHyperparams::from).collect();
    let flat = |v: &[f32]| Tensor::from_slice(gpu, &[n], v).unwrap();
    Device {
        xs: (0..3).map(|l| stack(gpu, &[BATCH, LAYERS[l].0], &h.xs[l])).collect(),
        d_ys: (0..3).map(|l| stack(gpu, &[BATCH, LAYERS[l].1], &h.d_ys[l])).collect(),
        grads: flat(&vec![f32::NAN; n]),
        params: flat(&h.params),
        velocity: flat(&h.velocity),
        second_moment: flat(&h.second_moment),
        grad_average: flat(&h.grad_average),
        model_state: Tensor::from_slice(gpu, &[h.model_state.len()], &h.model_state).unwrap(),
        hyperparams: Tensor::from_slice(gpu, &[HYPERPARAM_WORDS * MODELS], bytemuck::cast_slice(&hyper)).unwrap(),
        active: Tensor::from_u32(gpu, &[MODELS], active).unwrap(),
    }
}

impl Device {
    fn state(&self) -> OptimizerState<'_> {
        OptimizerState {
            velocity: &self.velocity,
            second_moment: &self.second_moment,
            grad_average: &self.grad_average,
            model_state: &self.model_state,
            hyperparams: &self.hyperparams,
            active: &self.active,
        }
    }

    /// Every flat block, read back: grads, params, velocity, second moment, average.
    fn read(&self) -> Vec<Vec<f32>> {
        [
            &self.grads,
            &self.params,
            &self.velocity,
            &self.second_moment,
            &self.grad_average,
        ]
        .iter()
        .map(|t| t.to_vec().unwrap())
        .collect()
    }
}

/// A view of model 0's `len` values at `offset` of a flat block, stacked like the params.
fn flat_view(flat: &Tensor, offset: usize, shape: &[usize]) -> Tensor {
    flat.view(offset, shape).stack(MODELS, STRIDE)
}

/// The unfused step: each layer's weight (and bias) gradient, then the update kernel.
fn unfused(gpu: &Gpu, d: &Device, kernel: &GroupedKernel) {
    let mut dispatches = Vec::new();
    for (l, &(inputs, outputs, _)) in LAYERS.iter().enumerate() {
        let (w_at, b_at) = OFFSETS[l];
        let d_w = flat_view(&d.grads, w_at, &[inputs, outputs]);
        let layer_kernel = match kernel {
            GroupedKernel::One(one) => *one,
            GroupedKernel::PerProduct(each) => each[l],
        };
        let options = MatmulOptions::new(layer_kernel, MatmulLayout::AtB).gated(&d.active);
        dispatches.push(match b_at {
            Some(b_at) => {
                let d_b = flat_view(&d.grads, b_at, &[outputs]);
                matmul_bias_grad_with(gpu, &d.xs[l], &d.d_ys[l], &d_w, &d_b, options).unwrap()
            }
            None => matmul_with(gpu, &d.xs[l], &d.d_ys[l], &d_w, options).unwrap(),
        });
    }
    dispatches.extend(optimizer_update_stacked(gpu, MODELS, &d.grads, &d.params, d.state(), false).unwrap());
    gpu.run(&dispatches.iter().collect::<Vec<_>>()).unwrap();
}

fn fused(gpu: &Gpu, d: &Device, kernel: &GroupedKernel) {
    let groups: Vec<WeightGradient<'_>> = (0..3)
        .map(|l| WeightGradient {
            x: &d.xs[l],
            d_y: &d.d_ys[l],
            weight_offset: OFFSETS[l].0,
            bias_offset: OFFSETS[l].1,
        })
        .collect();
    let flat = FlatBlocks {
        grads: &d.grads,
        params: &d.params,
        model_stride: STRIDE,
        state: d.state(),
    };
    let dispatch = matmul_grouped_update(gpu, kernel, &groups, flat, None).unwrap();
    gpu.run(&[&dispatch]).unwrap();
}

/// Whether flat index i (model m's) holds a parameter.
fn covered(i: usize) -> bool {
    let at = i % STRIDE;
    (0..3).any(|l| {
        let (inputs, outputs, _) = LAYERS[l];
        let (w_at, b_at) = OFFSETS[l];
        (w_at..w_at + inputs * outputs).contains(&at) || b_at.is_some_and(|b| (b..b + outputs).contains(&at))
    })
}

/// f64 `dW = xᵀ·dY` and `db = Σ dY` of layer l, model m, at flat index `at`.
fn reference_gradient(h: &Host, m: usize, at: usize) -> Option<f64> {
    (0..3).find_map(|l| {
        let (inputs, outputs, _) = LAYERS[l];
        let (w_at, b_at) = OFFSETS[l];
        let x = &h.xs[l][m * BATCH * inputs..];
        let d_y = &h.d_ys[l][m * BATCH * outputs..];
        if (w_at..w_at + inputs * outputs).contains(&at) {
            let (i, j) = ((at - w_at) / outputs, (at - w_at) % outputs);
            return Some(
                (0..BATCH)
                    .map(|r| x[r * inputs + i] as f64 * d_y[r * outputs + j] as f64)
                    .sum(),
            );
        }
        let b_at = b_at.filter(|b| (*b..b + outputs).contains(&at))?;
        Some((0..BATCH).map(|r| d_y[r * outputs + at - b_at] as f64).sum())
    })
}

#[test]
fn grouped_update_equals_gradients_then_update() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(26);
    let settings: [[Optimizer; MODELS]; 3] = [
        [
            Adam::new(0.01).weight_decay(0.1).into(),
            Sgd::new(0.1).momentum(0.9).nesterov(true).into(),
        ],
        [
            Adam::adamw(0.02).into(),
            Rmsprop::new(0.01).momentum(0.5).centered(true).into(),
        ],
        [Sgd::new(0.05).weight_decay(0.01).into(), Rmsprop::new(0.01).into()],
    ];
    let mut kernels: Vec<GroupedKernel> = MATMUL_KERNELS
        .into_iter()
        .filter(|&k| k != MatmulKernel::Vec4 && k.available(&gpu))
        .map(GroupedKernel::One)
        .collect();
    // each product its own kernel (the mixed entry point), where the adapter has subgroups
    if MatmulKernel::Subgroup.available(&gpu) {
        let each = vec![MatmulKernel::Subgroup, MatmulKernel::LanesDown, MatmulKernel::Lanes];
        kernels.push(GroupedKernel::PerProduct(each));
    }
    for kernel in &kernels {
        for (optimizers, active) in settings.iter().zip([[1, 1], [1, 0], [0, 1]]) {
            let h = host(&mut rng);
            let (a, b) = (
                device(&gpu, &h, optimizers, &active),
                device(&gpu, &h, optimizers, &active),
            );
            unfused(&gpu, &a, kernel);
            fused(&gpu, &b, kernel);
            let (want, got) = (a.read(), b.read());
            for (block, name) in ["grads", "params", "velocity", "second moment", "grad average"]
                .iter()
                .enumerate()
            {
                for i in (0..MODELS * STRIDE).filter(|&i| covered(i)) {
                    assert_eq!(
                        want[block][i].to_bits(),
                        got[block][i].to_bits(),
                        "{kernel:?} {optimizers:?} active {active:?}: {name}[{i}] {} vs {}",
                        want[block][i],
                        got[block][i]
                    );
                }
            }
            for (i, (&grad, &param)) in got[0].iter().zip(&got[1]).enumerate() {
                let m = i / STRIDE;
                if !covered(i) || active[m] == 0 {
                    // a gap, or a model sitting out: nothing written, nothing moved
                    assert!(grad.is_nan(), "{kernel:?}: grads[{i}] written");
                    assert_eq!(param.to_bits(), h.params[i].to_bits(), "{kernel:?}: params[{i}] moved");
                    continue;
                }
                // The product is a sum of 13 terms of |·| < 1: f32 rounds it to ~1e-6.
                let reference = reference_gradient(&h, m, i % STRIDE).expect("covered");
                assert!(
                    (grad as f64 - reference).abs() < 1e-5,
                    "{kernel:?}: grad[{i}] {grad} vs {reference}"
                );
            }
        }
    }
}

#[test]
fn grouped_update_rejects_what_it_cannot_fuse() {
    let gpu = gpu();
    let h = host(&mut StdRng::seed_from_u64(1));
    let optimizers = [Optimizer::from(Sgd::new(0.1)); MODELS];
    let d = device(&gpu, &h, &optimizers, &[1, 1]);
    let flat = FlatBlocks {
        grads: &d.grads,
        params: &d.params,
        model_stride: STRIDE,
        state: d.state(),
    };
    let group = |weight_offset| WeightGradient {
        x: &d.xs[0],
        d_y: &d.d_ys[0],
        weight_offset,
        bias_offset: None,
    };
    let naive = &GroupedKernel::One(MatmulKernel::Naive);
    assert!(matmul_grouped_update(&gpu, naive, &[], flat, None).is_err());
    assert!(matmul_grouped_update(&gpu, naive, &[group(0); GROUPS_MAX + 1], flat, None).is_err());
    let vec4 = &GroupedKernel::One(MatmulKernel::Vec4);
    assert!(matmul_grouped_update(&gpu, vec4, &[group(0)], flat, None).is_err());
    // per product: one kernel each, among those the mixed entry point runs
    let tiled_each = &GroupedKernel::PerProduct(vec![MatmulKernel::Tiled]);
    assert!(matmul_grouped_update(&gpu, tiled_each, &[group(0)], flat, None).is_err());
    let too_few = &GroupedKernel::PerProduct(vec![MatmulKernel::Lanes]);
    assert!(matmul_grouped_update(&gpu, too_few, &[group(0), group(64)], flat, None).is_err());
    // a weight running past its model's block
    assert!(matmul_grouped_update(&gpu, naive, &[group(STRIDE - 10)], flat, None).is_err());
}

#[test]
fn head_equals_forward_then_loss_gradient_then_step_count() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(27);
    // (inputs, outputs): awkward, and a vec4-friendly one
    for (inputs, outputs) in [(7, 5), (8, 12)] {
        let x = stack(
            &gpu,
            &[BATCH, inputs],
            &random(&mut rng, MODELS * BATCH * inputs, -1.0, 1.0),
        );
        let w = stack(
            &gpu,
            &[inputs, outputs],
            &random(&mut rng, MODELS * inputs * outputs, -1.0, 1.0),
        );
        let bias = stack(&gpu, &[outputs], &random(&mut rng, MODELS * outputs, -1.0, 1.0));
        let t = stack(
            &gpu,
            &[BATCH, outputs],
            &random(&mut rng, MODELS * BATCH * outputs, 0.0, 1.0),
        );
        let rows = stack(&gpu, &[BATCH], &[1.0 / BATCH as f32; MODELS * BATCH]);
        let cases = [
            (Some(Activation::Sigmoid), 0.0),
            (None, 1.0),
            (Some(Activation::Tanh), 0.5),
        ];
        for kernel in MATMUL_KERNELS.into_iter().filter(|k| k.available(&gpu)) {
            if !kernel.supports(MatmulLayout::AB, BATCH, inputs, outputs) {
                continue;
            }
            for (activation, huber_delta) in cases {
                let operands = HeadOperands {
                    x: &x,
                    w: &w,
                    bias: &bias,
                    t: &t,
                    rows: &rows,
                };
                check_head(&gpu, &mut rng, kernel, operands, activation, huber_delta);
            }
        }
    }
}

/// The operands of a head check: x (B,IN), w (IN,OUT), bias, targets and row weights.
#[derive(Clone, Copy)]
struct HeadOperands<'a> {
    x: &'a Tensor,
    w: &'a Tensor,
    bias: &'a Tensor,
    t: &'a Tensor,
    rows: &'a Tensor,
}

/// One kernel, activation and δ: the head against its three unfused dispatches.
fn check_head(
    gpu: &Gpu,
    rng: &mut StdRng,
    kernel: MatmulKernel,
    operands: HeadOperands<'_>,
    activation: Option<Activation>,
    huber_delta: f32,
) {
    let HeadOperands { x, w, bias, t, rows } = operands;
    let outputs = w.shape()[1];
    let poison = vec![f32::NAN; MODELS * BATCH * outputs];
    let (y_want, d_want) = (
        stack(gpu, &[BATCH, outputs], &poison),
        stack(gpu, &[BATCH, outputs], &poison),
    );
    let (y_got, d_got) = (
        stack(gpu, &[BATCH, outputs], &poison),
        stack(gpu, &[BATCH, outputs], &poison),
    );
    let adam = [Optimizer::from(Adam::new(0.01)), Sgd::new(0.1).into()];
    let h = host(rng);
    let (a, b) = (device(gpu, &h, &adam, &[1, 1]), device(gpu, &h, &adam, &[1, 1]));
    let epilogue = match activation {
        Some(act) => Epilogue::BiasAct(bias, act),
        None => Epilogue::Bias(bias),
    };
    let options = MatmulOptions::new(kernel, MatmulLayout::AB)
        .epilogue(epilogue)
        .gated(&a.active);
    let act = activation.unwrap_or(Activation::Identity);
    let mut want = vec![
        matmul_with(gpu, x, w, &y_want, options).unwrap(),
        regression_backward(gpu, huber_delta, act, &y_want, t, rows, &d_want).unwrap(),
    ];
    // the step counter alone: an update of nothing but the count
    let steps = optimizer_update_stacked(gpu, MODELS, &a.grads, &a.params, a.state(), true).unwrap();
    want.push(steps.into_iter().next().unwrap());
    gpu.run(&want.iter().collect::<Vec<_>>()).unwrap();
    let loss = HeadLoss {
        target: t,
        row_weights: rows,
        d_z: &d_got,
        huber_delta,
        terms: None,
    };
    let head = matmul_head(
        gpu,
        kernel,
        (x, w, bias, &y_got),
        activation,
        Some(loss),
        b.state(),
        true,
    );
    gpu.run(&[&head.unwrap()]).unwrap();
    let case = format!("{kernel:?} {activation:?} δ {huber_delta}");
    for (what, want, got) in [
        ("y", &y_want, &y_got),
        ("d_z", &d_want, &d_got),
        ("model state", &a.model_state, &b.model_state),
    ] {
        let (want, got) = (want.to_vec().unwrap(), got.to_vec().unwrap());
        assert!(want.iter().all(|v| v.is_finite()), "{case}: {what} unwritten");
        let same = want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{case}: {what} {want:?} vs {got:?}");
    }
}
