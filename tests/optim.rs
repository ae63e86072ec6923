//! The optimizer kernel (shaders/optim.wgsl, src/ops/optim.rs) for Adam, AdamW, Nesterov SGD
//! and RMSprop, step by step against PyTorch's documented algorithms computed in f64
//! (torch.optim.Adam, AdamW, SGD with nesterov=True, RMSprop with momentum or centered), on
//! awkward lengths, and Adam's bias corrections at step counts from 1 to 10⁶.
//!
//! Tolerance: relative error ≤ 1e-5, scaled by the magnitudes each step combines (a weight
//! may land near 0). Each step is a handful of f32 operations (a few ulps); Adam's division
//! by √ŝ + ε keeps relative error because ŝ ~ g² ≫ ε² for these gradients, and five steps
//! compound the ulps barely.

mod common;

use common::*;
use wgpu_mlp::raw::{Tensor, ops};
use wgpu_mlp::{Adam, Optimizer, Rmsprop, Sgd, optim::WeightDecay};

const TOLERANCE: f64 = 1e-5;

#[test]
fn adam_adamw_nesterov_and_rmsprop_match_pytorch_over_five_steps() {
    let gpu = gpu();
    let optimizers: [Optimizer; 11] = [
        Rmsprop::new(1e-2).into(),
        Rmsprop::new(1e-2).momentum(0.9).weight_decay(1e-2).into(),
        Rmsprop::new(3e-3).alpha(0.9).eps(1e-6).centered(true).into(),
        Rmsprop::new(1e-2)
            .centered(true)
            .momentum(0.8)
            .weight_decay(1e-2)
            .into(),
        Rmsprop::new(1e-2).alpha(0.5).centered(true).weight_decay(1e-3).into(),
        Adam::new(1e-2).into(),
        Adam::new(3e-3).weight_decay(1e-2).into(),
        Adam::adamw(1e-2).betas(0.8, 0.99).eps(1e-6).into(),
        Adam::new(1e-2).betas(0.0, 0.5).into(), // β₁ = 0 (RMSprop-like) and a small β₂
        Sgd::new(0.1).momentum(0.9).nesterov(true).weight_decay(1e-3).into(),
        Sgd::new(0.1)
            .momentum(0.9)
            .nesterov(true)
            .weight_decay(1e-3)
            .decay(WeightDecay::Coupled)
            .into(),
    ];
    for optimizer in &optimizers {
        for &n in &[1usize, 257, 70_001] {
            let (seed, mut rng) = seeded_rng();
            let w0 = uniform(&mut rng, n, -1.0, 1.0);
            let weight = Tensor::from_slice(&gpu, &[n], &w0).unwrap();
            let velocity = Tensor::full(&gpu, &[n], 0.0).unwrap();
            let second = Tensor::full(&gpu, &[n], 0.0).unwrap();
            let state = Tensor::zeros(&gpu, &[4]).unwrap();
            let grad = Tensor::zeros(&gpu, &[n]).unwrap();
            let step = ops::optimizer_update(&gpu, optimizer, &grad, &weight, &velocity, &second, &state).unwrap();
            let (mut w, mut m, mut s): (Vec<f64>, Vec<f64>, Vec<f64>) = (to_f64(&w0), vec![0.0; n], vec![0.0; n]);
            let mut scale = vec![0.0f64; n];
            // The first moment sums β·m and a share of g, which can cancel: its error is
            // measured against the magnitudes summed, as the weights' against |w| + 2·lr.
            let mut gbar = vec![0.0f64; n]; // centered RMSprop's ḡ
            let mut m_scale = vec![0.0f64; n];
            for t in 1..=5 {
                let g = uniform(&mut rng, n, -1.0, 1.0);
                grad.write(&g).unwrap();
                gpu.run(&step.iter().collect::<Vec<_>>()).unwrap();
                for i in 0..n {
                    let before = w[i].abs();
                    m_scale[i] = m[i].abs() + (g[i] as f64).abs() + optimizer.weight_decay() as f64 * before;
                    (w[i], m[i], s[i]) = match optimizer {
                        Optimizer::Rmsprop(rmsprop) => {
                            let next = rmsprop_step(rmsprop, w[i], g[i] as f64, m[i], s[i], gbar[i]);
                            gbar[i] = next.3;
                            (next.0, next.1, next.2)
                        }
                        _ => reference_step(optimizer, t, w[i], g[i] as f64, m[i], s[i]),
                    };
                    // RMSprop's momentum buffer adds g / √v, which can outgrow g
                    m_scale[i] += m[i].abs();
                    scale[i] = scale[i].max(before) + optimizer.lr() as f64 * 2.0;
                }
                let what = format!("{} {optimizer:?} n={n} step {t}", optimizer.name());
                assert_close_scaled(&what, seed, &weight.to_vec().unwrap(), &w, &scale, TOLERANCE);
                let first = velocity.to_vec().unwrap();
                assert_close_scaled(&format!("{what} first moment"), seed, &first, &m, &m_scale, TOLERANCE);
                if optimizer.name() != "sgd" {
                    let got = second.to_vec().unwrap();
                    assert_close(&format!("{what} second moment"), seed, &got, &s, TOLERANCE);
                }
            }
        }
    }
}

/// The bias corrections 1 − βᵗ at step counts where `1 − pow(β, t)` in f32 would cancel
/// (β₂ = 0.9999 loses 4 digits that way): one step from zero moments and zero weights at
/// step t moves each weight by `lr · (1 − β₁) g / c₁ / (√((1 − β₂) g² / c₂) + ε)`, compared
/// with the f64 reference at each t, to 1e-5 relative (the careful form gives ≤ 3e-7).
#[test]
fn bias_corrections_hold_precision_at_every_step_count() {
    let gpu = gpu();
    for (beta1, beta2) in [(0.9, 0.999), (0.3, 0.6), (0.99, 0.9999), (0.0, 0.0)] {
        for t in [1u32, 2, 3, 10, 100, 1_000, 10_000, 100_000, 1_000_000] {
            let adam = Adam::new(1e-2).betas(beta1, beta2);
            let optimizer = Optimizer::from(adam);
            let g = [0.3f32, -0.7, 1e-3];
            // from w = 0 the new weight is the move itself, with no rounding of a larger w
            let weight = Tensor::zeros(&gpu, &[3]).unwrap();
            let zeros = || Tensor::zeros(&gpu, &[3]).unwrap();
            let (velocity, second, grad) = (zeros(), zeros(), Tensor::from_slice(&gpu, &[3], &g).unwrap());
            // the state as after t − 1 steps (the kernel counts this one)
            let state = Tensor::from_slice(&gpu, &[4], &[(t - 1) as f32, 0.0, 0.0, 0.0]).unwrap();
            let step = ops::optimizer_update(&gpu, &optimizer, &grad, &weight, &velocity, &second, &state).unwrap();
            gpu.run(&step.iter().collect::<Vec<_>>()).unwrap();
            let moves: Vec<f64> = g
                .iter()
                .map(|&gi| reference_step(&optimizer, t, 0.0, gi as f64, 0.0, 0.0).0)
                .collect();
            let got = weight.to_vec().unwrap();
            let what = format!("betas ({beta1}, {beta2}) t={t}");
            // relative to the move itself: ≤ 3e-7 here, where 1 − pow(β, t) gives 1.5e-4
            for (i, (&got, &want)) in got.iter().zip(&moves).enumerate() {
                let error = (got as f64 - want).abs() / want.abs();
                assert!(error < 1e-5, "{what} weight {i}: moved {got}, want {want} ({error:e})");
            }
            assert_eq!(state.to_vec().unwrap()[0], t as f32, "{what}: step count");
        }
    }
}

#[test]
fn bad_settings_are_errors() {
    for (optimizer, field) in [
        (Optimizer::from(Adam::new(0.0)), "lr"),
        (Adam::new(1e-3).betas(1.0, 0.999).into(), "beta1"),
        (Adam::new(1e-3).betas(0.9, -0.1).into(), "beta2"),
        (Adam::new(1e-3).eps(0.0).into(), "eps"),
        (Adam::new(1e-3).weight_decay(f32::NAN).into(), "weight_decay"),
        (Sgd::new(0.1).nesterov(true).into(), "nesterov"),
        (Rmsprop::new(-1.0).into(), "lr"),
        (Rmsprop::new(1e-2).alpha(1.0).into(), "alpha"),
        (Rmsprop::new(1e-2).eps(0.0).into(), "eps"),
        (Rmsprop::new(1e-2).momentum(1.0).into(), "momentum"),
    ] {
        let err = optimizer.validate().unwrap_err();
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}
