//! The activation kernels (shaders/activation.wgsl, src/ops/activation.rs) and the loss's
//! gradient through an output activation, for every [`Activation`], against the f64
//! references in `Activation`, on awkward lengths with outputs poisoned with NaN.
//!
//! Tolerance: relative Frobenius error ≤ 1e-5, scaled by the magnitudes summed (the start
//! value of an accumulation included). The kernels are a few f32 operations per element
//! (exp, a division, a Taylor series or a product), within a few ulps (≤ 1e-6) of the
//! reference; the saved values handed to the backward kernels are f32-rounded outputs, which
//! moves a slope by at most about one ulp of the output.

mod common;

use common::*;
use wgpu_mlp::Activation;
use wgpu_mlp::raw::{Tensor, ops};

const TOLERANCE: f64 = 1e-5;

/// Element counts: 1, around the 256-wide workgroup, and past 65535 workgroups.
const LENS: &[usize] = &[1, 7, 255, 256, 257, 1000, 65_537];

/// Inputs spanning the interesting ranges: both saturations, the kink at 0 and the
/// small-|x| Taylor branch of tanh, and GELU's |x| > 10 guard.
fn inputs(rng: &mut rand::rngs::StdRng, n: usize) -> Vec<f32> {
    let mut x = uniform(rng, n, -12.0, 12.0);
    for (i, v) in x.iter_mut().enumerate() {
        match i % 4 {
            1 => *v /= 64.0, // |x| < 0.19: around the Taylor branch of tanh
            2 if i % 8 == 2 => *v = 0.0,
            _ => {}
        }
    }
    x
}

/// The f32 value a layer would save for input x: its output, or the input itself.
fn saved_value(activation: Activation, x: f32) -> f32 {
    if activation.grad_from_output() {
        activation.reference(x as f64) as f32
    } else {
        x
    }
}

#[test]
fn activation_forward_matches_reference() {
    let gpu = gpu();
    for activation in Activation::ALL {
        for &n in LENS {
            let (seed, mut rng) = seeded_rng();
            let x = inputs(&mut rng, n);
            let want: Vec<f64> = x.iter().map(|&v| activation.reference(v as f64)).collect();
            // Rounding follows the input's size where the output is near 0 (GELU, tanh).
            let scale: Vec<f64> = x
                .iter()
                .zip(&want)
                .map(|(&v, w)| w.abs() + (v as f64).abs().min(1.0))
                .collect();
            let tx = Tensor::from_slice(&gpu, &[n], &x).unwrap();
            let ty = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
            gpu.run(&[&ops::activation_forward(&gpu, activation, &tx, &ty).unwrap()])
                .unwrap();
            let what = format!("{activation:?} forward n={n}");
            assert_close_scaled(&what, seed, &ty.to_vec().unwrap(), &want, &scale, TOLERANCE);
        }
    }
}

#[test]
fn activation_backward_matches_reference() {
    let gpu = gpu();
    for activation in Activation::ALL {
        for &n in LENS {
            for accumulate in [false, true] {
                let (seed, mut rng) = seeded_rng();
                let x = inputs(&mut rng, n);
                let saved: Vec<f32> = x.iter().map(|&v| saved_value(activation, v)).collect();
                let d_y = uniform(&mut rng, n, -1.0, 1.0);
                let start = if accumulate {
                    uniform(&mut rng, n, -1.0, 1.0)
                } else {
                    vec![f32::NAN; n]
                };
                let base = |i: usize| if accumulate { start[i] as f64 } else { 0.0 };
                let slope = |i: usize| activation.reference_grad_from_saved(saved[i] as f64);
                let want: Vec<f64> = (0..n).map(|i| base(i) + d_y[i] as f64 * slope(i)).collect();
                // A slope is a difference of terms of size ≤ 1 (1 − y² for tanh near ±1 cancels
                // to far below its rounding), so its error is ulps of 1, not of itself.
                let scale: Vec<f64> = (0..n)
                    .map(|i| base(i).abs() + (d_y[i] as f64).abs() * (slope(i).abs() + 1.0))
                    .collect();
                let td = Tensor::from_slice(&gpu, &[n], &d_y).unwrap();
                let ts = Tensor::from_slice(&gpu, &[n], &saved).unwrap();
                let tx = Tensor::from_slice(&gpu, &[n], &start).unwrap();
                let dispatch = ops::activation_backward(&gpu, activation, &td, &ts, &tx, accumulate).unwrap();
                gpu.run(&[&dispatch]).unwrap();
                let what = format!("{activation:?} backward n={n} accumulate={accumulate}");
                assert_close_scaled(&what, seed, &tx.to_vec().unwrap(), &want, &scale, TOLERANCE);
            }
        }
    }
}

/// `d_z = w_i (y − t) ⊙ act'(y)` for each activation a loss kernel can take, and a clear
/// error for GELU (its slope needs the input, which the loss never sees).
#[test]
fn mse_backward_through_output_activation_matches_reference() {
    let gpu = gpu();
    for activation in Activation::ALL.into_iter().filter(|a| a.grad_from_output()) {
        for &(rows, cols) in &[(1, 1), (7, 13), (257, 3), (3, 65_537)] {
            let (seed, mut rng) = seeded_rng();
            let x = inputs(&mut rng, rows * cols);
            let y: Vec<f32> = x.iter().map(|&v| saved_value(activation, v)).collect();
            let t = uniform(&mut rng, rows * cols, 0.0, 1.0);
            let weights = uniform(&mut rng, rows, 0.0, 1.0);
            let want: Vec<f64> = (0..rows * cols)
                .map(|i| {
                    let yi = y[i] as f64;
                    weights[i / cols] as f64 * (yi - t[i] as f64) * activation.reference_grad_from_saved(yi)
                })
                .collect();
            let ty = Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap();
            let tt = Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap();
            let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
            let td = Tensor::full(&gpu, &[rows, cols], f32::NAN).unwrap();
            gpu.run(&[&ops::mse_backward_through(&gpu, activation, &ty, &tt, &tw, &td).unwrap()])
                .unwrap();
            // The slope's rounding is ulps of 1 (see the backward test), times w (y − t).
            let scale: Vec<f64> = (0..rows * cols)
                .map(|i| {
                    let yi = y[i] as f64;
                    let slope = activation.reference_grad_from_saved(yi).abs() + 1.0;
                    (weights[i / cols] as f64 * (yi - t[i] as f64)).abs() * slope
                })
                .collect();
            let what = format!("mse backward through {activation:?} {rows}x{cols}");
            assert_close_scaled(&what, seed, &td.to_vec().unwrap(), &want, &scale, TOLERANCE);
        }
    }
    let y = Tensor::zeros(&gpu, &[2, 2]).unwrap();
    let w = Tensor::zeros(&gpu, &[2]).unwrap();
    let err = ops::mse_backward_through(&gpu, Activation::Gelu, &y, &y, &w, &y).unwrap_err();
    assert!(err.to_string().contains("gelu"), "{err}");
}

/// GELU across its range, forward and slope, against the f64 reference: the tanh form's
/// 1 + tanh(u) cancelled for x < −3 (the slope lost all its digits near x = −6); written
/// 2σ(2u) it keeps its relative precision. Tolerance: 1e-5 relative, with an absolute floor of
/// 1e-7 where the value crosses 0 (the forward at x = 0, the slope near x = −0.75), where
/// relative error is meaningless.
#[test]
fn gelu_is_precise_across_its_range() {
    let gpu = gpu();
    let x: Vec<f32> = (0..=2000).map(|i| -10.0 + i as f32 * 0.01).collect();
    let n = x.len();
    let tx = Tensor::from_slice(&gpu, &[n], &x).unwrap();
    let ty = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
    gpu.run(&[&ops::activation_forward(&gpu, Activation::Gelu, &tx, &ty).unwrap()])
        .unwrap();
    let ones = Tensor::from_slice(&gpu, &[n], &vec![1.0; n]).unwrap();
    let slope = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
    gpu.run(&[&ops::activation_backward(&gpu, Activation::Gelu, &ones, &tx, &slope, false).unwrap()])
        .unwrap();
    for (what, got, want) in [
        (
            "forward",
            ty.to_vec().unwrap(),
            x.iter()
                .map(|&v| Activation::Gelu.reference(v as f64))
                .collect::<Vec<_>>(),
        ),
        (
            "slope",
            slope.to_vec().unwrap(),
            x.iter().map(|&v| Activation::Gelu.reference_grad(v as f64)).collect(),
        ),
    ] {
        for i in 0..n {
            let error = (got[i] as f64 - want[i]).abs();
            assert!(
                error <= 1e-5 * want[i].abs() + 1e-7,
                "GELU {what} at x = {}: {} against {} (relative {:e})",
                x[i],
                got[i],
                want[i],
                error / want[i].abs()
            );
        }
    }
}

/// SiLU and LeakyReLU: the f64 references the kernels are checked against are PyTorch's
/// documented formulas (`SiLU(x) = x σ(x)`, its slope `σ(x)(1 + x(1 − σ(x)))`;
/// `LeakyReLU(x) = max(0, x) + 0.01 min(0, x)`, slope 0.01 at and below 0), across −20..20
/// to 1e-12 relative; and the GPU forward and slope follow them over that range to float
/// rounding (4e-6 relative, a few ulps through exp).
#[test]
fn silu_and_leaky_relu_follow_pytorchs_formulas() {
    let xs: Vec<f64> = (-400..=400).map(|i| i as f64 / 20.0).collect();
    for &x in &xs {
        let sigma = 1.0 / (1.0 + (-x).exp());
        let torch = [
            (Activation::Silu, x * sigma, sigma * (1.0 + x * (1.0 - sigma))),
            (
                Activation::LeakyRelu,
                x.max(0.0) + 0.01 * x.min(0.0),
                if x > 0.0 { 1.0 } else { 0.01 },
            ),
        ];
        for (activation, value, slope) in torch {
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-300) + 1e-300;
            assert!(close(activation.reference(x), value), "{activation:?}({x})");
            assert!(close(activation.reference_grad(x), slope), "{activation:?}'({x})");
        }
    }
    let gpu = gpu();
    let x32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
    let n = x32.len();
    for activation in [Activation::Silu, Activation::LeakyRelu] {
        let tx = Tensor::from_slice(&gpu, &[n], &x32).unwrap();
        let ty = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
        gpu.run(&[&ops::activation_forward(&gpu, activation, &tx, &ty).unwrap()])
            .unwrap();
        let want: Vec<f64> = x32.iter().map(|&v| activation.reference(v as f64)).collect();
        assert_close(
            &format!("{activation:?} forward"),
            0,
            &ty.to_vec().unwrap(),
            &want,
            4e-6,
        );
        // the slope from what a layer saves: the output for LeakyReLU, the input for SiLU
        let saved = if activation.grad_from_output() { &ty } else { &tx };
        let ones = Tensor::from_slice(&gpu, &[n], &vec![1.0; n]).unwrap();
        let slope = Tensor::full(&gpu, &[n], f32::NAN).unwrap();
        gpu.run(&[&ops::activation_backward(&gpu, activation, &ones, saved, &slope, false).unwrap()])
            .unwrap();
        let want: Vec<f64> = x32.iter().map(|&v| activation.reference_grad(v as f64)).collect();
        assert_close(
            &format!("{activation:?} slope"),
            0,
            &slope.to_vec().unwrap(),
            &want,
            4e-6,
        );
    }
}
