//! The element-wise kernels (bias add, MSE, the SGD update, add and copy) against a plain f64
//! CPU reference, on fresh random inputs of awkward shapes, with outputs poisoned with NaN so
//! that an unwritten element fails; bad shapes refused. (The matmul kernels: tests/matmul.rs.)
//!
//! Tolerance: relative Frobenius error ≤ 1e-5; the element-wise kernels sit within a few ulps
//! (≤ 1e-6). The MSE forward sums up to 196 611 terms in blocks (shaders/sum.wgsl): over 300
//! seeds of the (3, 65537) case on 8 CPU lanes its worst error was 4.0e-7, where a plain running
//! sum reached 2.4e-5 (it failed this test once, in CI).

mod common;

use common::*;
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::{Sgd, optim::WeightDecay};

const TOLERANCE: f64 = 1e-5;

const BIAS_SHAPES: &[(usize, usize)] = &[
    (1, 1),
    (1, 7),
    (7, 1),
    (13, 257),
    (256, 256),
    (1000, 17),
    (4099, 3),
    (3, 4099),
];

#[test]
fn bias_add_forward_matches_reference() {
    let gpu = gpu();
    for &(rows, cols) in BIAS_SHAPES {
        let (seed, mut rng) = seeded_rng();
        let x = uniform(&mut rng, rows * cols, -1.0, 1.0);
        let bias = uniform(&mut rng, cols, -1.0, 1.0);
        let want: Vec<f64> = (0..rows * cols).map(|i| x[i] as f64 + bias[i % cols] as f64).collect();
        let tx = Tensor::from_slice(&gpu, &[rows, cols], &x).unwrap();
        let tb = Tensor::from_slice(&gpu, &[cols], &bias).unwrap();
        let ty = Tensor::full(&gpu, &[rows, cols], f32::NAN).unwrap();
        gpu.run(&[&ops::bias_add_forward(&gpu, &tx, &tb, &ty).unwrap()])
            .unwrap();
        assert_close(
            &format!("bias forward {rows}x{cols}"),
            seed,
            &ty.to_vec().unwrap(),
            &want,
            TOLERANCE,
        );
    }
}

#[test]
fn bias_add_backward_matches_reference() {
    let gpu = gpu();
    for &(rows, cols) in BIAS_SHAPES {
        for accumulate in [false, true] {
            let (seed, mut rng) = seeded_rng();
            let d_y = uniform(&mut rng, rows * cols, -1.0, 1.0);
            let init = if accumulate {
                uniform(&mut rng, cols, -1.0, 1.0)
            } else {
                vec![f32::NAN; cols]
            };
            let want: Vec<f64> = (0..cols)
                .map(|c| {
                    let base = if accumulate { init[c] as f64 } else { 0.0 };
                    base + (0..rows).map(|r| d_y[r * cols + c] as f64).sum::<f64>()
                })
                .collect();
            // Rounding error follows the magnitudes summed (start value included), not the result.
            let scale: Vec<f64> = (0..cols)
                .map(|c| {
                    let base = if accumulate { init[c].abs() as f64 } else { 0.0 };
                    base + (0..rows).map(|r| d_y[r * cols + c].abs() as f64).sum::<f64>()
                })
                .collect();
            let td = Tensor::from_slice(&gpu, &[rows, cols], &d_y).unwrap();
            let tb = Tensor::from_slice(&gpu, &[cols], &init).unwrap();
            gpu.run(&[&ops::bias_add_backward(&gpu, &td, &tb, accumulate).unwrap()])
                .unwrap();
            assert_close_scaled(
                &format!("bias backward {rows}x{cols} accumulate={accumulate}"),
                seed,
                &tb.to_vec().unwrap(),
                &want,
                &scale,
                TOLERANCE,
            );
        }
    }
}

/// Element counts: 1, around the 256-wide workgroup, and past 65535 workgroups.
const ELEMENTWISE_LENS: &[usize] = &[1, 7, 255, 256, 257, 1000, 65_537, 16_777_259];

const MSE_SHAPES: &[(usize, usize)] = &[(1, 1), (4, 1), (7, 13), (128, 10), (257, 3), (4099, 17), (3, 65_537)];

/// Row weights: the batch mean (1/B each) and arbitrary weights (a partial batch's padding
/// rows weigh 0).
fn row_weight_cases(rng: &mut rand::rngs::StdRng, rows: usize) -> [Vec<f32>; 2] {
    let mut arbitrary = uniform(rng, rows, 0.0, 1.0);
    arbitrary[rows - 1] = 0.0;
    [vec![1.0 / rows as f32; rows], arbitrary]
}

#[test]
fn mse_forward_matches_reference_and_is_deterministic() {
    let gpu = gpu();
    for &(rows, cols) in MSE_SHAPES {
        let (seed, mut rng) = seeded_rng();
        let y = uniform(&mut rng, rows * cols, 0.0, 1.0);
        let t = uniform(&mut rng, rows * cols, 0.0, 1.0);
        for weights in row_weight_cases(&mut rng, rows) {
            let want: f64 = (0..rows * cols)
                .map(|i| weights[i / cols] as f64 * 0.5 * (y[i] as f64 - t[i] as f64).powi(2))
                .sum();
            let ty = Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap();
            let tt = Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap();
            let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
            let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
            let dispatch = ops::mse_forward(&gpu, &ty, &tt, &tw, &loss).unwrap();
            gpu.run(&[&dispatch]).unwrap();
            let first = loss.to_vec().unwrap();
            let what = format!("mse forward {rows}x{cols}");
            assert_close(&what, seed, &first, &[want], TOLERANCE);
            for _ in 0..3 {
                gpu.run(&[&dispatch]).unwrap();
                let again = loss.to_vec().unwrap()[0];
                assert_eq!(
                    again.to_bits(),
                    first[0].to_bits(),
                    "{what} changed bits (TEST_SEED={seed})"
                );
            }
        }
    }
}

#[test]
fn mse_backward_matches_reference() {
    let gpu = gpu();
    for &(rows, cols) in MSE_SHAPES {
        let (seed, mut rng) = seeded_rng();
        let y = uniform(&mut rng, rows * cols, 0.0, 1.0);
        let t = uniform(&mut rng, rows * cols, 0.0, 1.0);
        for weights in row_weight_cases(&mut rng, rows) {
            let want: Vec<f64> = (0..rows * cols)
                .map(|i| weights[i / cols] as f64 * (y[i] as f64 - t[i] as f64))
                .collect();
            let ty = Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap();
            let tt = Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap();
            let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
            let td = Tensor::full(&gpu, &[rows, cols], f32::NAN).unwrap();
            gpu.run(&[&ops::mse_backward(&gpu, &ty, &tt, &tw, &td).unwrap()])
                .unwrap();
            let what = format!("mse backward {rows}x{cols}");
            assert_close(&what, seed, &td.to_vec().unwrap(), &want, TOLERANCE);
        }
    }
}

/// Five consecutive steps against the formulas in f64, for each (momentum, weight decay)
/// pair and both weight-decay forms.
#[test]
fn sgd_update_matches_formulas_over_five_steps() {
    let gpu = gpu();
    for decay in [WeightDecay::Decoupled, WeightDecay::Coupled] {
        for &(momentum, weight_decay) in &[(0.0, 0.0), (0.9, 0.0), (0.0, 1e-4), (0.9, 1e-4)] {
            for &n in &[1usize, 257, 70_001] {
                let (seed, mut rng) = seeded_rng();
                let sgd = Sgd::new(0.5).momentum(momentum).weight_decay(weight_decay).decay(decay);
                let w0 = uniform(&mut rng, n, -1.0, 1.0);
                let weight = Tensor::from_slice(&gpu, &[n], &w0).unwrap();
                let velocity = Tensor::zeros(&gpu, &[n]).unwrap();
                let grad = Tensor::zeros(&gpu, &[n]).unwrap();
                let dispatch = ops::sgd_update(&gpu, &sgd, &grad, &weight, &velocity).unwrap();
                let mut w = to_f64(&w0);
                let mut v = vec![0.0f64; n];
                let (lr, mu, wd) = (sgd.lr as f64, momentum as f64, weight_decay as f64);
                // Rounding bounds: each step adds error in proportion to the magnitudes it
                // combines (a weight can land near zero, so the result is no measure).
                let mut w_scale = vec![0.0f64; n];
                let mut v_scale = vec![0.0f64; n];
                for step in 0..5 {
                    let g = uniform(&mut rng, n, -1.0, 1.0);
                    grad.write(&g).unwrap();
                    gpu.run(&[&dispatch]).unwrap();
                    for i in 0..n {
                        let gi = g[i] as f64;
                        match decay {
                            WeightDecay::Decoupled => {
                                v[i] = mu * v[i] + gi;
                                w[i] -= lr * (v[i] + wd * w[i]);
                            }
                            WeightDecay::Coupled => {
                                v[i] = mu * v[i] + gi + wd * w[i];
                                w[i] -= lr * v[i];
                            }
                        }
                        v_scale[i] += v[i].abs() + gi.abs();
                        w_scale[i] += w[i].abs() + lr * v[i].abs();
                    }
                    let what = format!("sgd {decay:?} mu={momentum} wd={weight_decay} n={n} step={step}");
                    let got_w = weight.to_vec().unwrap();
                    assert_close_scaled(&format!("{what} weight"), seed, &got_w, &w, &w_scale, TOLERANCE);
                    let got_v = velocity.to_vec().unwrap();
                    assert_close_scaled(&format!("{what} velocity"), seed, &got_v, &v, &v_scale, TOLERANCE);
                }
            }
        }
    }
}

#[test]
fn add_and_copy_match_reference() {
    let gpu = gpu();
    for &n in ELEMENTWISE_LENS {
        let (seed, mut rng) = seeded_rng();
        let a = uniform(&mut rng, n, -1.0, 1.0);
        let b = uniform(&mut rng, n, -1.0, 1.0);
        let ta = Tensor::from_slice(&gpu, &[n], &a).unwrap();
        let tb = Tensor::from_slice(&gpu, &[n], &b).unwrap();
        let out = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
        gpu.run(&[&ops::add(&gpu, &ta, &tb, &out).unwrap()]).unwrap();
        let sum: Vec<f64> = a.iter().zip(&b).map(|(&x, &y)| x as f64 + y as f64).collect();
        assert_close(&format!("add n={n}"), seed, &out.to_vec().unwrap(), &sum, TOLERANCE);
        // out += a, twice
        let acc = ops::copy(&gpu, &ta, &out, true).unwrap();
        gpu.run(&[&acc, &acc]).unwrap();
        let want: Vec<f64> = sum.iter().zip(&a).map(|(&s, &x)| s + 2.0 * x as f64).collect();
        assert_close(
            &format!("copy accumulate n={n}"),
            seed,
            &out.to_vec().unwrap(),
            &want,
            TOLERANCE,
        );
        // out = b over a poisoned output
        let poisoned = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
        gpu.run(&[&ops::copy(&gpu, &tb, &poisoned, false).unwrap()]).unwrap();
        assert_close(
            &format!("copy n={n}"),
            seed,
            &poisoned.to_vec().unwrap(),
            &to_f64(&b),
            0.0,
        );
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let gpu = gpu();
    let a = Tensor::zeros(&gpu, &[3, 4]).unwrap();
    let b = Tensor::zeros(&gpu, &[5, 6]).unwrap();
    let c = Tensor::zeros(&gpu, &[3, 6]).unwrap();
    let err = ops::matmul(&gpu, MatmulKernel::Naive, MatmulLayout::AB, &a, &b, &c, false).unwrap_err();
    assert!(err.to_string().contains("K = 4"), "{err}");
    let b_ok = Tensor::zeros(&gpu, &[4, 6]).unwrap();
    let c_bad = Tensor::zeros(&gpu, &[3, 5]).unwrap();
    assert!(ops::matmul(&gpu, MatmulKernel::Lanes, MatmulLayout::AB, &a, &b_ok, &c_bad, false).is_err());
    assert!(ops::bias_add_forward(&gpu, &a, &Tensor::zeros(&gpu, &[3]).unwrap(), &a).is_err());
    let weights = Tensor::zeros(&gpu, &[3]).unwrap();
    let loss = Tensor::zeros(&gpu, &[1]).unwrap();
    assert!(ops::mse_forward(&gpu, &a, &c, &weights, &loss).is_err());
    assert!(ops::mse_forward(&gpu, &a, &a, &Tensor::zeros(&gpu, &[4]).unwrap(), &loss).is_err());
    assert!(Tensor::zeros(&gpu, &[0, 3]).is_err());
    assert!(Tensor::zeros(&gpu, &[]).is_err());
    assert!(Tensor::from_slice(&gpu, &[2, 2], &[1.0; 3]).is_err());
    let too_many = (gpu.max_binding_bytes() / 4 + 1) as usize;
    let err = Tensor::zeros(&gpu, &[too_many]).unwrap_err();
    assert!(matches!(err, wgpu_mlp::Error::TooLarge { .. }), "{err}");
    assert!(ops::sgd_update(&gpu, &Sgd::new(-1.0), &a, &a, &a).is_err());
}
