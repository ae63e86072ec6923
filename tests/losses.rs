//! Huber's loss (`Loss::Huber`, shaders/mse.wgsl) against PyTorch's documented formula in f64
//! (`torch.nn.HuberLoss(delta=1.0)`, summed over a row's outputs and weighted per row), on
//! awkward shapes with differences on both sides of δ, outputs poisoned with NaN, through an
//! output activation, and in training: a model fitted with it and with MSE on data with
//! outliers.
//!
//! Tolerance: relative error ≤ 1e-5 (the forward sums in blocks, shaders/sum.wgsl; each element
//! is a few f32 operations).

mod common;

use common::*;
use wgpu_mlp::raw::{Tensor, ops};
use wgpu_mlp::{Activation, Loss};

const HUBER_DELTA: f64 = Loss::HUBER_DELTA;

const TOLERANCE: f64 = 1e-5;

/// PyTorch's HuberLoss of one difference, written from its documentation.
fn huber(d: f64) -> f64 {
    if d.abs() < HUBER_DELTA {
        0.5 * d * d
    } else {
        HUBER_DELTA * (d.abs() - 0.5 * HUBER_DELTA)
    }
}

#[test]
fn huber_forward_and_backward_match_pytorch() {
    let gpu = gpu();
    for (rows, cols) in [(1, 1), (7, 3), (64, 1), (33, 17), (1000, 5)] {
        let (seed, mut rng) = seeded_rng();
        let y = uniform(&mut rng, rows * cols, -3.0, 3.0);
        let t = uniform(&mut rng, rows * cols, -1.0, 1.0);
        let mut weights = uniform(&mut rng, rows, 0.0, 1.0);
        weights[rows - 1] = 0.0; // a padding row
        let (ty, tt) = (
            Tensor::from_slice(&gpu, &[rows, cols], &y).unwrap(),
            Tensor::from_slice(&gpu, &[rows, cols], &t).unwrap(),
        );
        let tw = Tensor::from_slice(&gpu, &[rows], &weights).unwrap();
        let diff = |i: usize| y[i] as f64 - t[i] as f64;
        let want: f64 = (0..rows * cols)
            .map(|i| weights[i / cols] as f64 * huber(diff(i)))
            .sum();
        let loss = Tensor::full(&gpu, &[1], f32::NAN).unwrap();
        let forward = ops::loss_forward(&gpu, Loss::Huber, &ty, &tt, &tw, &loss).unwrap();
        gpu.run(&[&forward]).unwrap();
        assert_close(
            &format!("huber {rows}x{cols}"),
            seed,
            &loss.to_vec().unwrap(),
            &[want],
            TOLERANCE,
        );
        // the library's own reference agrees with PyTorch's formula, row by row
        for r in 0..rows {
            let (yr, tr) = (&to_f64(&y[r * cols..][..cols]), &to_f64(&t[r * cols..][..cols]));
            let mine = Loss::Huber.reference(yr, tr);
            let torch: f64 = yr.iter().zip(tr).map(|(a, b)| huber(a - b)).sum();
            assert!(
                (mine - torch).abs() <= 1e-12 * torch.abs().max(1.0),
                "row {r}: {mine} vs {torch}"
            );
        }
        for activation in [Activation::Identity, Activation::Sigmoid] {
            let d = Tensor::full(&gpu, &[rows, cols], f32::NAN).unwrap();
            let backward = ops::loss_backward(&gpu, Loss::Huber, activation, &ty, &tt, &tw, &d).unwrap();
            gpu.run(&[&backward]).unwrap();
            let want: Vec<f64> = (0..rows * cols)
                .map(|i| {
                    let slope = match activation {
                        Activation::Sigmoid => y[i] as f64 * (1.0 - y[i] as f64),
                        _ => 1.0,
                    };
                    weights[i / cols] as f64 * diff(i).clamp(-HUBER_DELTA, HUBER_DELTA) * slope
                })
                .collect();
            let what = format!("huber backward {rows}x{cols} through {activation:?}");
            assert_close(&what, seed, &d.to_vec().unwrap(), &want, TOLERANCE);
        }
    }
}

/// Fitted on a line with a tenth of its targets thrown far off, Huber's model stays near the
/// line and MSE's is pulled away: the loss reaches training end to end, and does its job.
#[test]
fn huber_resists_outliers_where_mse_does_not() {
    use wgpu_mlp::{Adam, Dataset, GpuDataset, TrainConfig, fit};
    let gpu = gpu();
    let n = 200;
    let x: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 * 2.0 - 1.0).collect();
    let clean: Vec<f32> = x.iter().map(|&v| 0.5 * v).collect();
    let noisy: Vec<f32> = clean
        .iter()
        .enumerate()
        .map(|(i, &v)| if i % 10 == 0 { v + 20.0 } else { v })
        .collect();
    let data = Dataset::regression("line with outliers", x.clone(), 1, noisy).unwrap();
    let data = GpuDataset::upload(&gpu, &data).unwrap();
    let rows: Vec<usize> = (0..n).collect();
    let error = |loss: Loss| {
        let config = TrainConfig {
            hidden: vec![],
            loss,
            optimizer: Adam::new(0.05).into(),
            epochs: 200,
            batch_size: 50,
            ..TrainConfig::regressor()
        };
        let model = fit(&data, &rows, None, &config).unwrap();
        let predicted = model.predict(&x).unwrap();
        predicted
            .iter()
            .zip(&clean)
            .map(|(p, c)| (p - c).abs() as f64)
            .sum::<f64>()
            / n as f64
    };
    let (huber_error, mse_error) = (error(Loss::Huber), error(Loss::Mse));
    assert!(huber_error < 0.5 * mse_error, "huber {huber_error} vs mse {mse_error}");
    assert!(huber_error < 0.3, "huber {huber_error}");
}
