//! Every kernel run over a stack of models gives, bit for bit, what it gives run on each
//! model alone: the same code path per model, only the operands' starts differ. Stacks are
//! laid out with gaps between models (strides past the tensor's length) so a kernel that
//! ignored the stride would read the wrong model. Outputs start from random values (so a
//! model left unwritten shows, and accumulation has something to add to).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::device::dispatch::Dispatch;
use crate::ops::{MatmulKernel, MatmulLayout};
use crate::optim::{Sgd, WeightDecay};

const MODELS: usize = 3;

pub(super) fn gpu() -> Gpu {
    Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)")
}

/// A gap after each model, keeping strides multiples of 4 (the vec4 kernel needs it).
fn stride_of(len: usize) -> usize {
    len.div_ceil(4) * 4 + 8
}

pub(super) struct Operand {
    shape: Vec<usize>,
    shared: bool,
    /// One value list per model (one in all when shared).
    values: Vec<Vec<f32>>,
}

pub(super) fn operand(rng: &mut StdRng, shape: &[usize], shared: bool, low: f32, high: f32) -> Operand {
    let len: usize = shape.iter().product();
    let copies = if shared { 1 } else { MODELS };
    Operand {
        shape: shape.to_vec(),
        shared,
        values: (0..copies)
            .map(|_| (0..len).map(|_| rng.random_range(low..high)).collect())
            .collect(),
    }
}

fn stacked(gpu: &Gpu, op: &Operand) -> Tensor {
    let len: usize = op.shape.iter().product();
    if op.shared {
        return Tensor::from_slice(gpu, &op.shape, &op.values[0]).unwrap();
    }
    let stride = stride_of(len);
    let mut host = vec![f32::NAN; MODELS * stride];
    for (m, values) in op.values.iter().enumerate() {
        host[m * stride..m * stride + len].copy_from_slice(values);
    }
    Tensor::from_slice(gpu, &[MODELS * stride], &host)
        .unwrap()
        .view(0, &op.shape)
        .stack(MODELS, stride)
}

pub(super) fn single(gpu: &Gpu, op: &Operand, m: usize) -> Tensor {
    let values = if op.shared { &op.values[0] } else { &op.values[m] };
    Tensor::from_slice(gpu, &op.shape, values).unwrap()
}

/// Runs `build` once over stacks of `inputs` and `outputs`, and once per model on plain
/// tensors, and compares every output bit for bit.
pub(super) fn check(
    gpu: &Gpu,
    what: &str,
    inputs: &[Operand],
    outputs: &[Operand],
    build: impl Fn(&Gpu, &[Tensor], &[Tensor]) -> Result<Dispatch>,
) {
    let ins: Vec<Tensor> = inputs.iter().map(|op| stacked(gpu, op)).collect();
    let outs: Vec<Tensor> = outputs.iter().map(|op| stacked(gpu, op)).collect();
    gpu.run(&[&build(gpu, &ins, &outs).unwrap()]).unwrap();
    let got: Vec<Vec<f32>> = outs.iter().map(|t| t.to_vec().unwrap()).collect();
    for m in 0..MODELS {
        let ins: Vec<Tensor> = inputs.iter().map(|op| single(gpu, op, m)).collect();
        let outs: Vec<Tensor> = outputs.iter().map(|op| single(gpu, op, m)).collect();
        gpu.run(&[&build(gpu, &ins, &outs).unwrap()]).unwrap();
        for (o, out) in outs.iter().enumerate() {
            let want = out.to_vec().unwrap();
            let len = want.len();
            let got = &got[o][m * len..(m + 1) * len];
            let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{what}: output {o} of model {m} differs from the model run alone");
        }
    }
}

#[test]
fn stacked_matmuls_equal_per_model_runs() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(11);
    let kernels: Vec<MatmulKernel> = crate::ops::MATMUL_KERNELS
        .into_iter()
        .filter(|k| k.available(&gpu))
        .collect();
    let layouts = [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB];
    // (M, K, N): one shape every kernel supports, one awkward one for the scalar kernels
    for (m, k, n) in [(8, 12, 20), (7, 13, 5)] {
        for &kernel in &kernels {
            for layout in layouts {
                if !kernel.supports(layout, m, k, n) {
                    continue;
                }
                let (a_shape, b_shape) = match layout {
                    MatmulLayout::AB => ([m, k], [k, n]),
                    MatmulLayout::ABt => ([m, k], [n, k]),
                    MatmulLayout::AtB => ([k, m], [k, n]),
                };
                for (epilogue, accumulate, shared_a) in [
                    (0, false, false),
                    (0, true, true),
                    (1, false, false),
                    (2, false, true),
                    (3, true, false),
                ] {
                    let inputs = [
                        operand(&mut rng, &a_shape, shared_a, -1.0, 1.0),
                        operand(&mut rng, &b_shape, false, -1.0, 1.0),
                        operand(&mut rng, &[n], false, -1.0, 1.0),
                        operand(&mut rng, &[m, n], false, 0.0, 1.0),
                    ];
                    let outputs = [operand(&mut rng, &[m, n], false, -1.0, 1.0)];
                    let what = format!("{kernel:?} {layout:?} M={m} K={k} N={n} epilogue {epilogue} acc {accumulate}");
                    check(&gpu, &what, &inputs, &outputs, |gpu, ins, outs| {
                        let epilogue = match epilogue {
                            1 => Epilogue::Bias(&ins[2]),
                            2 => Epilogue::BiasAct(&ins[2], Activation::Gelu),
                            3 => Epilogue::ActGrad(&ins[3], Activation::Tanh),
                            _ => Epilogue::None,
                        };
                        let options = MatmulOptions::new(kernel, layout)
                            .accumulate(accumulate)
                            .epilogue(epilogue);
                        matmul_with(gpu, &ins[0], &ins[1], &outs[0], options)
                    });
                }
            }
        }
    }
    for kernel in crate::ops::MATMUL_KERNELS.into_iter().filter(|k| k.available(&gpu)) {
        if kernel == MatmulKernel::Vec4 {
            continue; // cannot add the row of ones (refused: tests/kernels.rs)
        }
        for accumulate in [false, true] {
            let (b, i, o) = (7, 5, 11);
            let inputs = [
                operand(&mut rng, &[b, i], false, -1.0, 1.0),
                operand(&mut rng, &[b, o], false, -1.0, 1.0),
            ];
            let outputs = [
                operand(&mut rng, &[i, o], false, -1.0, 1.0),
                operand(&mut rng, &[o], false, -1.0, 1.0),
            ];
            check(
                &gpu,
                &format!("bias grad {kernel:?} acc {accumulate}"),
                &inputs,
                &outputs,
                |gpu, ins, outs| matmul_bias_grad(gpu, kernel, &ins[0], &ins[1], &outs[0], &outs[1], accumulate),
            );
        }
    }
}

/// A gated model (flag 0) keeps its output as it was; the others compute as usual.
#[test]
fn gated_matmuls_skip_inactive_models() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(15);
    let (m, k, n) = (9, 8, 12);
    let flags = Tensor::from_u32(&gpu, &[MODELS], &[1, 0, 1]).unwrap();
    for kernel in crate::ops::MATMUL_KERNELS.into_iter().filter(|k| k.available(&gpu)) {
        let inputs = [
            operand(&mut rng, &[m, k], false, -1.0, 1.0),
            operand(&mut rng, &[k, n], false, -1.0, 1.0),
        ];
        let c0 = operand(&mut rng, &[m, n], false, -1.0, 1.0);
        let (a, b, c) = (stacked(&gpu, &inputs[0]), stacked(&gpu, &inputs[1]), stacked(&gpu, &c0));
        let options = MatmulOptions::new(kernel, MatmulLayout::AB).gated(&flags);
        let dispatch = matmul_with(&gpu, &a, &b, &c, options);
        gpu.run(&[&dispatch.unwrap()]).unwrap();
        let got = c.to_vec().unwrap();
        let len = m * n;
        assert_eq!(
            &got[len..2 * len],
            &c0.values[1][..],
            "{kernel:?}: the gated model's output moved"
        );
        for model in [0, 2] {
            let (a1, b1) = (single(&gpu, &inputs[0], model), single(&gpu, &inputs[1], model));
            let c1 = Tensor::zeros(&gpu, &[m, n]).unwrap();
            gpu.run(&[&matmul(&gpu, kernel, MatmulLayout::AB, &a1, &b1, &c1, false).unwrap()])
                .unwrap();
            assert_eq!(
                &got[model * len..(model + 1) * len],
                &c1.to_vec().unwrap()[..],
                "{kernel:?}: model {model}"
            );
        }
    }
}

#[test]
fn stacked_elementwise_kernels_equal_per_model_runs() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(12);
    let (rows, cols) = (9, 7);
    let x = |rng: &mut StdRng| operand(rng, &[rows, cols], false, -2.0, 2.0);
    let out = |rng: &mut StdRng| operand(rng, &[rows, cols], false, -1.0, 1.0);
    let bias = operand(&mut rng, &[cols], false, -1.0, 1.0);
    check(
        &gpu,
        "bias_add_forward",
        &[x(&mut rng), bias],
        &[out(&mut rng)],
        |gpu, i, o| bias_add_forward(gpu, &i[0], &i[1], &o[0]),
    );
    for accumulate in [false, true] {
        let d_bias = operand(&mut rng, &[cols], false, -1.0, 1.0);
        check(&gpu, "bias_add_backward", &[x(&mut rng)], &[d_bias], |gpu, i, o| {
            bias_add_backward(gpu, &i[0], &o[0], accumulate)
        });
        for activation in Activation::ALL {
            let saved = operand(&mut rng, &[rows, cols], false, -1.0, 1.0);
            check(
                &gpu,
                &format!("activation_backward {activation:?}"),
                &[x(&mut rng), saved],
                &[out(&mut rng)],
                |gpu, i, o| activation_backward(gpu, activation, &i[0], &i[1], &o[0], accumulate),
            );
        }
        check(&gpu, "copy", &[x(&mut rng)], &[out(&mut rng)], |gpu, i, o| {
            copy(gpu, &i[0], &o[0], accumulate)
        });
    }
    for activation in Activation::ALL {
        check(
            &gpu,
            &format!("activation_forward {activation:?}"),
            &[x(&mut rng)],
            &[out(&mut rng)],
            |gpu, i, o| activation_forward(gpu, activation, &i[0], &o[0]),
        );
    }
    let shared = operand(&mut rng, &[rows, cols], true, -1.0, 1.0);
    check(
        &gpu,
        "add (one operand shared)",
        &[x(&mut rng), shared],
        &[out(&mut rng)],
        |gpu, i, o| add(gpu, &i[0], &i[1], &o[0]),
    );
}

/// The loss kernels (forward reductions and gradients) and the row copy, stacked against
/// alone, as above.
#[test]
fn stacked_loss_kernels_equal_per_model_runs() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(13);
    let (rows, cols) = (9, 7);
    let x = |rng: &mut StdRng| operand(rng, &[rows, cols], false, -2.0, 2.0);
    let out = |rng: &mut StdRng| operand(rng, &[rows, cols], false, -1.0, 1.0);
    let mse_inputs = |rng: &mut StdRng| {
        [
            operand(rng, &[rows, cols], false, 0.0, 1.0),
            operand(rng, &[rows, cols], false, 0.0, 1.0),
            operand(rng, &[rows], false, 0.0, 0.2),
        ]
    };
    let loss = operand(&mut rng, &[1], false, -1.0, 1.0);
    check(&gpu, "mse_forward", &mse_inputs(&mut rng), &[loss], |gpu, i, o| {
        mse_forward(gpu, &i[0], &i[1], &i[2], &o[0])
    });
    check(
        &gpu,
        "mse_backward",
        &mse_inputs(&mut rng),
        &[out(&mut rng)],
        |gpu, i, o| mse_backward(gpu, &i[0], &i[1], &i[2], &o[0]),
    );
    for activation in [Activation::Sigmoid, Activation::Relu] {
        check(
            &gpu,
            &format!("mse_backward_through {activation:?}"),
            &mse_inputs(&mut rng),
            &[out(&mut rng)],
            |gpu, i, o| mse_backward_through(gpu, activation, &i[0], &i[1], &i[2], &o[0]),
        );
    }
    let loss = operand(&mut rng, &[1], false, -1.0, 1.0);
    check(&gpu, "xent_forward", &mse_inputs(&mut rng), &[loss], |gpu, i, o| {
        xent_forward(gpu, &i[0], &i[1], &i[2], &o[0])
    });
    check(
        &gpu,
        "xent_backward",
        &mse_inputs(&mut rng),
        &[out(&mut rng)],
        |gpu, i, o| xent_backward(gpu, &i[0], &i[1], &i[2], &o[0]),
    );
    let loss = operand(&mut rng, &[1], false, -1.0, 1.0);
    check(&gpu, "bce_forward", &mse_inputs(&mut rng), &[loss], |gpu, i, o| {
        bce_forward(gpu, &i[0], &i[1], &i[2], &o[0])
    });
    check(
        &gpu,
        "bce_backward",
        &mse_inputs(&mut rng),
        &[out(&mut rng)],
        |gpu, i, o| bce_backward(gpu, &i[0], &i[1], &i[2], &o[0]),
    );
    let dst = operand(&mut rng, &[20, cols], false, -1.0, 1.0);
    check(&gpu, "copy_rows", &[x(&mut rng)], &[dst], |gpu, i, o| {
        copy_rows(gpu, &i[0], &o[0], 6, 8)
    });
}

/// Each model's own row list and row count: the gather of a stack equals each model's
/// gather alone (who trains on the batch: `step_plan`'s test).
#[test]
fn stacked_gather_follows_each_models_plan() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(13);
    let (n, features, outputs, batch, longest) = (40, 5, 3, 4, 10);
    let mut random = |cols: usize| {
        let values: Vec<f32> = (0..n * cols).map(|_| rng.random()).collect();
        Tensor::from_slice(&gpu, &[n, cols], &values).unwrap()
    };
    let (all_x, all_t) = (random(features), random(outputs));
    // model 0: 10 rows, 3 batches; model 1: 6 rows (its 3rd batch is empty); model 2: 10
    // rows, 0 steps planned (the gather fills its batch all the same)
    let rows = [10u32, 6, 10];
    let steps = [3u32, 2, 0];
    let indices: Vec<u32> = (0..MODELS * longest).map(|_| rng.random_range(0..n as u32)).collect();
    let plan: Vec<u32> = (0..MODELS).flat_map(|m| [rows[m], steps[m]]).collect();
    let stacked_indices = Tensor::from_u32(&gpu, &[MODELS * longest], &indices)
        .unwrap()
        .view(0, &[longest])
        .stack(MODELS, longest);
    let plan = Tensor::from_u32(&gpu, &[2 * MODELS], &plan).unwrap();
    let x = Tensor::stacked_zeros(&gpu, MODELS, &[batch, features]).unwrap();
    let t = Tensor::stacked_zeros(&gpu, MODELS, &[batch, outputs]).unwrap();
    let w = Tensor::stacked_zeros(&gpu, MODELS, &[batch]).unwrap();
    for j in 0..3 {
        let offset = j * batch;
        let operands = Gather {
            all_x: &all_x,
            all_t: &all_t,
            indices: &stacked_indices,
            plan: &plan,
            x: &x,
            t: &t,
            row_weights: &w,
        };
        let gather = gather_batch(&gpu, &operands, offset).unwrap();
        gpu.run(&[&gather]).unwrap();
        let (got_x, got_t, got_w) = (x.to_vec().unwrap(), t.to_vec().unwrap(), w.to_vec().unwrap());
        for m in 0..MODELS {
            let count = (rows[m] as usize).saturating_sub(offset).min(batch);
            let one_plan = Tensor::from_u32(&gpu, &[2], &[rows[m], steps[m]]).unwrap();
            let one_indices = Tensor::from_u32(&gpu, &[longest], &indices[m * longest..(m + 1) * longest]).unwrap();
            let (x1, t1, w1) = (
                Tensor::full(&gpu, &[batch, features], f32::NAN).unwrap(),
                Tensor::full(&gpu, &[batch, outputs], f32::NAN).unwrap(),
                Tensor::full(&gpu, &[batch], f32::NAN).unwrap(),
            );
            let operands = Gather {
                all_x: &all_x,
                all_t: &all_t,
                indices: &one_indices,
                plan: &one_plan,
                x: &x1,
                t: &t1,
                row_weights: &w1,
            };
            let gather = gather_batch(&gpu, &operands, offset).unwrap();
            gpu.run(&[&gather]).unwrap();
            let want_w = w1.to_vec().unwrap();
            for (i, &weight) in want_w.iter().enumerate() {
                let expected = if i < count { 1.0 / count as f32 } else { 0.0 };
                assert_eq!(weight, expected, "batch {j}, model {m}: row weight {i}");
            }
            assert_eq!(
                &got_x[m * batch * features..(m + 1) * batch * features],
                &x1.to_vec().unwrap()[..]
            );
            assert_eq!(
                &got_t[m * batch * outputs..(m + 1) * batch * outputs],
                &t1.to_vec().unwrap()[..]
            );
            assert_eq!(&got_w[m * batch..(m + 1) * batch], &want_w[..]);
        }
    }
}

/// One dispatch updates every model with its own optimizer and settings (SGD with and
/// without Nesterov, Adam, AdamW, side by side), two steps running; an inactive model's
/// weights and state stay as they were, bit for bit.
#[test]
fn stacked_optimizers_use_each_models_settings_and_skip_inactive_ones() {
    use crate::optim::{Adam, Optimizer, Rmsprop};
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(14);
    let n = 37;
    let optimizers: [Optimizer; 8] = [
        Rmsprop::new(0.01).momentum(0.9).into(),
        Rmsprop::new(0.01).centered(true).momentum(0.5).into(),
        Sgd::new(0.1).momentum(0.9).weight_decay(1e-3).into(),
        Sgd::new(0.05).weight_decay(1e-2).decay(WeightDecay::Coupled).into(),
        Sgd::new(0.5).momentum(0.5).nesterov(true).into(),
        Adam::new(0.01).weight_decay(1e-2).into(),
        Adam::adamw(0.02).betas(0.8, 0.99).into(),
        Adam::new(0.03).into(),
    ];
    let models = optimizers.len();
    let active = [1u32, 1, 1, 1, 1, 1, 1, 0];
    let random = |rng: &mut StdRng| -> Vec<f32> { (0..models * n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let (grad, weight, velocity) = (random(&mut rng), random(&mut rng), random(&mut rng));
    let moment: Vec<f32> = random(&mut rng).iter().map(|v| v.abs()).collect();
    let hyper: Vec<crate::optim::OptimizerHyperparams> = optimizers
        .iter()
        .map(crate::optim::OptimizerHyperparams::from)
        .collect();
    let stacked = |v: &[f32]| Tensor::from_slice(&gpu, &[models * n], v).unwrap();
    let (g, w, v, s2) = (stacked(&grad), stacked(&weight), stacked(&velocity), stacked(&moment));
    let hyper = Tensor::from_slice(&gpu, &[HYPERPARAM_WORDS * models], bytemuck::cast_slice(&hyper)).unwrap();
    let flags = Tensor::from_u32(&gpu, &[models], &active).unwrap();
    let model_state = Tensor::zeros(&gpu, &[MODEL_STATE_WORDS * models]).unwrap();
    let grad_average = Tensor::zeros(&gpu, &[models * n]).unwrap();
    let state = OptimizerState {
        velocity: &v,
        second_moment: &s2,
        grad_average: &grad_average,
        model_state: &model_state,
        hyperparams: &hyper,
        active: &flags,
    };
    let update = optimizer_update_stacked(&gpu, models, &g, &w, state, true).unwrap();
    for _ in 0..2 {
        gpu.run(&update.iter().collect::<Vec<_>>()).unwrap();
    }
    let (got_w, got_v, got_s) = (w.to_vec().unwrap(), v.to_vec().unwrap(), s2.to_vec().unwrap());
    for m in 0..models {
        let part = |all: &[f32]| all[m * n..(m + 1) * n].to_vec();
        let one = |values: &[f32]| Tensor::from_slice(&gpu, &[n], values).unwrap();
        let (g1, w1, v1, s1) = (
            one(&part(&grad)),
            one(&part(&weight)),
            one(&part(&velocity)),
            one(&part(&moment)),
        );
        let state1 = Tensor::zeros(&gpu, &[MODEL_STATE_WORDS]).unwrap();
        if active[m] == 1 {
            let alone = optimizer_update(&gpu, &optimizers[m], &g1, &w1, &v1, &s1, &state1).unwrap();
            for _ in 0..2 {
                gpu.run(&alone.iter().collect::<Vec<_>>()).unwrap();
            }
        }
        assert_eq!(part(&got_w), w1.to_vec().unwrap(), "model {m}: weights");
        assert_eq!(part(&got_v), v1.to_vec().unwrap(), "model {m}: velocity");
        assert_eq!(part(&got_s), s1.to_vec().unwrap(), "model {m}: second moment");
    }
}
