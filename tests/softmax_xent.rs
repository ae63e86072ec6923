//! The softmax cross-entropy kernels (shaders/softmax_xent.wgsl, src/ops/softmax_xent.rs)
//! against the f64 reference `Loss::SoftmaxCrossEntropy`, on awkward shapes (one class, one
//! row, rows past a workgroup, wide rows), hard and soft targets, weighted rows, huge logits,
//! with outputs poisoned with NaN.
//!
//! Tolerance: relative error ≤ 1e-5. Per row the kernel takes a max, a sum of C
//! exponentials and a log (a few ulps each, the sum's error growing like √C·6e-8 ≈ 2e-6 at
//! C = 1031), and the forward sums rows in blocks (shaders/sum.wgsl); the backward's
//! `softmax · Σt − t` is a few ulps of its largest term, so it is scaled by `|p Σt| + |t|`.

mod common;

use common::*;
use rand::Rng;
use wgpu_mlp::Loss;
use wgpu_mlp::raw::{Tensor, ops};

const TOLERANCE: f64 = 1e-5;

/// (rows, classes): one of each, a class count of 1, rows past the 64-row workgroups and
/// past the reduction's 256 threads, and a wide row.
const SHAPES: &[(usize, usize)] = &[(1, 1), (1, 3), (5, 1), (7, 10), (65, 13), (1000, 4), (3, 1031)];

/// Logits in [−8, 8] and targets: one-hot rows, and soft rows summing to any total.
fn case(rng: &mut rand::rngs::StdRng, rows: usize, cols: usize, hard: bool) -> (Vec<f32>, Vec<f32>) {
    let y = uniform(rng, rows * cols, -8.0, 8.0);
    let t = if hard {
        let mut t = vec![0.0; rows * cols];
        for r in 0..rows {
            t[r * cols + rng.random_range(0..cols)] = 1.0;
        }
        t
    } else {
        uniform(rng, rows * cols, 0.0, 1.0)
    };
    (y, t)
}

fn per_row<T>(rows: usize, cols: usize, y: &[f32], t: &[f32], f: impl Fn(&[f64], &[f64]) -> T) -> Vec<T> {
    (0..rows)
        .map(|r| {
            f(
                &to_f64(&y[r * cols..(r + 1) * cols]),
                &to_f64(&t[r * cols..(r + 1) * cols]),
            )
        })
        .collect()
}

#[test]
fn forward_matches_reference_and_is_deterministic() {
    let gpu = gpu();
    for &(rows, cols) in SHAPES {
        for hard in [true, false] {
            let (seed, mut rng) = seeded_rng();
            let (y, t) = case(&mut rng, rows, cols, hard);
            let mut weights = uniform(&mut rng, rows, 0.0, 1.0);
            weights[rows - 1] = 0.0; // a padding row
            let row_losses = per_row(rows, cols, &y, &t, |y, t| Loss::SoftmaxCrossEntropy.reference(y, t));
            let want: f64 = row_losses.iter().zip(&weights).map(|(l, &w)| l * w as f64).sum();
            let scale: f64 = row_losses
                .iter()
                .zip(&weights)
                .map(|(l, &w)| (l * w as f64).abs())
                .sum();
            let ty = Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap();
            let tt = Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap();
            let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
            let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
            let dispatch = ops::xent_forward(&gpu, &ty, &tt, &tw, &loss).unwrap();
            gpu.run(&[&dispatch]).unwrap();
            let first = loss.to_vec().unwrap();
            let what = format!("xent forward {rows}x{cols} hard={hard}");
            assert_close_scaled(&what, seed, &first, &[want], &[scale], TOLERANCE);
            gpu.run(&[&dispatch]).unwrap();
            assert_eq!(
                loss.to_vec().unwrap()[0].to_bits(),
                first[0].to_bits(),
                "{what} changed bits (TEST_SEED={seed})"
            );
        }
    }
}

#[test]
fn backward_matches_reference() {
    let gpu = gpu();
    for &(rows, cols) in SHAPES {
        for hard in [true, false] {
            let (seed, mut rng) = seeded_rng();
            let (y, t) = case(&mut rng, rows, cols, hard);
            let weights = uniform(&mut rng, rows, 0.0, 1.0);
            let grads = per_row(rows, cols, &y, &t, |y, t| {
                Loss::SoftmaxCrossEntropy.reference_grad(y, t)
            });
            let want: Vec<f64> = (0..rows * cols)
                .map(|i| weights[i / cols] as f64 * grads[i / cols][i % cols])
                .collect();
            let scale: Vec<f64> = (0..rows * cols)
                .map(|i| weights[i / cols] as f64 * ((grads[i / cols][i % cols] + t[i] as f64).abs() + t[i] as f64))
                .collect();
            let ty = Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap();
            let tt = Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap();
            let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
            let td = Tensor::full(&gpu, &[rows, cols], f32::NAN).unwrap();
            gpu.run(&[&ops::xent_backward(&gpu, &ty, &tt, &tw, &td).unwrap()])
                .unwrap();
            let what = format!("xent backward {rows}x{cols} hard={hard}");
            assert_close_scaled(&what, seed, &td.to_vec().unwrap(), &want, &scale, TOLERANCE);
        }
    }
}

/// Logits of ±1e4 (exp would overflow f32 without the row maximum subtracted): finite and
/// right, forward and backward.
#[test]
fn huge_logits_stay_finite() {
    let gpu = gpu();
    let y = [1e4, 0.0, -1e4, 3.0, 1e4, 1e4 - 1.0];
    let t = [0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let weights = [0.5, 0.5];
    let ty = Tensor::from_slice(&gpu, &[2, 3], &y).unwrap();
    let tt = Tensor::from_slice(&gpu, &[2, 3], &t).unwrap();
    let tw = Tensor::from_slice(&gpu, &[2], &weights).unwrap();
    let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
    let d_y = Tensor::full(&gpu, &[2, 3], f32::NAN).unwrap();
    gpu.run(&[
        &ops::xent_forward(&gpu, &ty, &tt, &tw, &loss).unwrap(),
        &ops::xent_backward(&gpu, &ty, &tt, &tw, &d_y).unwrap(),
    ])
    .unwrap();
    let rows = per_row(2, 3, &y, &t, |y, t| {
        (
            Loss::SoftmaxCrossEntropy.reference(y, t),
            Loss::SoftmaxCrossEntropy.reference_grad(y, t),
        )
    });
    let want_loss = 0.5 * (rows[0].0 + rows[1].0);
    let want_grad: Vec<f64> = rows.iter().flat_map(|(_, g)| g.iter().map(|g| 0.5 * g)).collect();
    let (seed, _) = seeded_rng();
    assert_close(
        "huge logits loss",
        seed,
        &loss.to_vec().unwrap(),
        &[want_loss],
        TOLERANCE,
    );
    assert_close("huge logits grad", seed, &d_y.to_vec().unwrap(), &want_grad, TOLERANCE);
}

/// Misuse is refused with errors: mismatched targets, a loss buffer of the wrong size, and a
/// fused output activation before the softmax.
#[test]
fn bad_operands_are_errors() {
    let gpu = gpu();
    let y = Tensor::zeros(&gpu, &[4, 3]).unwrap();
    let t = Tensor::zeros(&gpu, &[4, 2]).unwrap();
    let w = Tensor::zeros(&gpu, &[4]).unwrap();
    let loss = Tensor::zeros(&gpu, &[2]).unwrap();
    assert!(ops::xent_forward(&gpu, &y, &t, &w, &loss).is_err());
    assert!(ops::xent_forward(&gpu, &y, &y, &w, &loss).is_err());
    assert!(ops::xent_backward(&gpu, &y, &t, &w, &y).is_err());
    let sigmoid = wgpu_mlp::Activation::Sigmoid;
    let err = ops::loss_backward(&gpu, Loss::SoftmaxCrossEntropy, sigmoid, &y, &y, &w, &y).unwrap_err();
    assert!(err.to_string().contains("identity"), "{err}");
}

/// Binary cross-entropy from logits (the sigmoid kind of the same kernels), forward and
/// backward, binary and soft targets, logits up to ±40 (where exp(y) alone would overflow
/// f32 at ±89 and 1 − σ(y) would round to 0 long before). Tolerance as above.
#[test]
fn binary_cross_entropy_matches_reference() {
    let gpu = gpu();
    for &(rows, cols) in SHAPES {
        let (seed, mut rng) = seeded_rng();
        let y: Vec<f32> = uniform(&mut rng, rows * cols, -40.0, 40.0);
        let t: Vec<f32> = (0..rows * cols)
            .map(|i| {
                if i % 3 == 0 {
                    rng.random_range(0.0..1.0)
                } else {
                    (i % 2) as f32
                }
            })
            .collect();
        let weights = uniform(&mut rng, rows, 0.0, 1.0);
        let loss_ref = Loss::BinaryCrossEntropy;
        let rows_loss = per_row(rows, cols, &y, &t, |y, t| loss_ref.reference(y, t));
        let want_loss: f64 = rows_loss.iter().zip(&weights).map(|(l, &w)| l * w as f64).sum();
        let grads = per_row(rows, cols, &y, &t, |y, t| loss_ref.reference_grad(y, t));
        let want_grad: Vec<f64> = (0..rows * cols)
            .map(|i| weights[i / cols] as f64 * grads[i / cols][i % cols])
            .collect();
        let grad_scale: Vec<f64> = (0..rows * cols)
            .map(|i| weights[i / cols] as f64 * (1.0 + t[i] as f64))
            .collect();
        let ty = Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap();
        let tt = Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap();
        let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
        let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
        let d_y = Tensor::full(&gpu, &[rows, cols], f32::NAN).unwrap();
        gpu.run(&[
            &ops::bce_forward(&gpu, &ty, &tt, &tw, &loss).unwrap(),
            &ops::bce_backward(&gpu, &ty, &tt, &tw, &d_y).unwrap(),
        ])
        .unwrap();
        let what = format!("bce {rows}x{cols}");
        assert_close(
            &format!("{what} loss"),
            seed,
            &loss.to_vec().unwrap(),
            &[want_loss],
            TOLERANCE,
        );
        let got = d_y.to_vec().unwrap();
        assert_close_scaled(&format!("{what} grad"), seed, &got, &want_grad, &grad_scale, TOLERANCE);
    }
}

/// Binary cross-entropy per logit from −80 to 80, targets 0 and 1, against the f64
/// reference: log(1 + e^−|y|) was 0.9% off at a logit of 12 and exactly 0 from 18 on (the true
/// loss is ~1e-8 there, down to 1.8e-35 at 80); with log1p it keeps its relative precision.
/// Tolerance: 1e-5 relative.
#[test]
fn binary_cross_entropy_is_precise_at_large_logits() {
    let gpu = gpu();
    for target in [0.0f32, 1.0] {
        for step in 0..=320 {
            let y = -80.0 + step as f32 * 0.5;
            let ty = Tensor::from_slice(&gpu, &[1, 1], &[y]).unwrap();
            let tt = Tensor::from_slice(&gpu, &[1, 1], &[target]).unwrap();
            let tw = Tensor::from_slice(&gpu, &[1], &[1.0]).unwrap();
            let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
            gpu.run(&[&ops::bce_forward(&gpu, &ty, &tt, &tw, &loss).unwrap()])
                .unwrap();
            let got = loss.to_vec().unwrap()[0] as f64;
            let want = Loss::BinaryCrossEntropy.reference(&[y as f64], &[target as f64]);
            assert!(
                (got - want).abs() <= 1e-5 * want.abs(),
                "BCE at logit {y}, target {target}: {got:e} against {want:e}"
            );
        }
    }
}
