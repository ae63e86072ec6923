//! Every matmul kernel against a plain f64 CPU reference (and the naive GPU oracle), on fresh
//! random inputs of awkward shapes, with outputs poisoned with NaN so that an unwritten
//! element fails: each layout, accumulation, the fused epilogues and the bias gradient.
//!
//! Tolerance: relative Frobenius error ≤ 1e-5, measured against ‖|A|·|B|‖. f32 has a unit
//! roundoff of 6e-8; a K-term dot product accumulates error growing like √K·6e-8 ≈ 4e-6 at
//! K = 4099, the largest K here.

mod common;

use common::*;
use wgpu_mlp::Activation;
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};

const TOLERANCE: f64 = 1e-5;

/// Every matmul kernel `gpu` runs: all of them on lavapipe (CI's adapter). An adapter without
/// subgroups of 8 cannot run `Subgroup`, and says so on stderr.
fn kernels_of(gpu: &wgpu_mlp::Gpu) -> Vec<MatmulKernel> {
    let (runs, cannot): (Vec<_>, Vec<_>) = wgpu_mlp::raw::MATMUL_KERNELS
        .into_iter()
        .partition(|k| k.available(gpu));
    if !cannot.is_empty() {
        eprintln!("{} cannot run {cannot:?}: not tested here", gpu.adapter_name());
    }
    runs
}

/// (M, K, N): ones, primes, non-multiples of the 16 and 64 tiles, K up to 4099, and a tall
/// output needing more than 65535 workgroups in one dimension.
const MATMUL_SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 1),
    (1, 7, 1),
    (7, 13, 5),
    (1, 1, 64),
    (17, 1, 33),
    (64, 64, 64),
    (65, 63, 67),
    (97, 129, 65),
    (1, 300, 257),
    (200, 37, 1),
    (128, 4099, 3),
    (3, 4099, 129),
    (4_194_319, 2, 3),
];

fn matmul_case(kernel: MatmulKernel, layout: MatmulLayout, (m, k, n): (usize, usize, usize), accumulate: bool) {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let a = uniform(&mut rng, m * k, -1.0, 1.0);
    let b = uniform(&mut rng, k * n, -1.0, 1.0);
    let (trans_a, trans_b) = match layout {
        MatmulLayout::AB => (false, false),
        MatmulLayout::ABt => (false, true),
        MatmulLayout::AtB => (true, false),
    };
    let a_shape = if trans_a { [k, m] } else { [m, k] };
    let b_shape = if trans_b { [n, k] } else { [k, n] };
    let mut want = matmul_ref(&to_f64(&a), &to_f64(&b), m, k, n, trans_a, trans_b);
    let abs = |v: &[f32]| v.iter().map(|x| x.abs() as f64).collect::<Vec<_>>();
    let mut scale = matmul_ref(&abs(&a), &abs(&b), m, k, n, trans_a, trans_b);
    let c_init = if accumulate {
        let c0 = uniform(&mut rng, m * n, -1.0, 1.0);
        want.iter_mut().zip(&c0).for_each(|(w, &c)| *w += c as f64);
        scale.iter_mut().zip(&c0).for_each(|(s, &c)| *s += c.abs() as f64);
        c0
    } else {
        vec![f32::NAN; m * n]
    };
    let ta = Tensor::from_slice(&gpu, &a_shape, &a).unwrap();
    let tb = Tensor::from_slice(&gpu, &b_shape, &b).unwrap();
    let tc = Tensor::from_slice(&gpu, &[m, n], &c_init).unwrap();
    let dispatch = ops::matmul(&gpu, kernel, layout, &ta, &tb, &tc, accumulate).unwrap();
    gpu.run(&[&dispatch]).unwrap();
    let got = tc.to_vec().unwrap();
    let what = format!("{kernel:?} {layout:?} M={m} K={k} N={n} accumulate={accumulate}");
    assert_close_scaled(&what, seed, &got, &want, &scale, TOLERANCE);
}

fn matmul_all_shapes(kernel: MatmulKernel, layout: MatmulLayout) {
    for &shape in MATMUL_SHAPES {
        matmul_case(kernel, layout, shape, false);
    }
    for &shape in &[(1, 1, 1), (7, 13, 5), (65, 130, 67)] {
        matmul_case(kernel, layout, shape, true);
    }
}

/// Shapes the vec4 kernel takes (K % 4 == 0, N % 4 == 0, M % 4 == 0 for Aᵀ·B): the tile
/// edges, K = 4100, and a tall output past 65535 workgroups.
const VEC4_SHAPES: &[(usize, usize, usize)] = &[
    (4, 4, 4),
    (8, 4, 4),
    (12, 20, 28),
    (64, 64, 64),
    (68, 132, 260),
    (100, 8, 12),
    (132, 64, 68),
    (4, 4100, 8),
    (60, 4100, 4),
    (256, 36, 1028),
    (4_194_320, 4, 4),
];

fn matmul_vec4_shapes(layout: MatmulLayout) {
    for &shape in VEC4_SHAPES {
        matmul_case(MatmulKernel::Vec4, layout, shape, false);
    }
    for &shape in &[(4, 4, 4), (68, 132, 260)] {
        matmul_case(MatmulKernel::Vec4, layout, shape, true);
    }
    // Shapes it cannot take are refused, not computed wrongly.
    let gpu = gpu();
    let a = Tensor::zeros(&gpu, &[6, 6]).unwrap();
    let c = Tensor::zeros(&gpu, &[6, 6]).unwrap();
    let err = ops::matmul(&gpu, MatmulKernel::Vec4, layout, &a, &a, &c, false).unwrap_err();
    assert!(matches!(err, wgpu_mlp::Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn matmul_vec4_ab() {
    matmul_vec4_shapes(MatmulLayout::AB);
}
#[test]
fn matmul_vec4_abt() {
    matmul_vec4_shapes(MatmulLayout::ABt);
    // A·Bᵀ only needs K % 4 == 0: odd M and N are fine.
    matmul_case(MatmulKernel::Vec4, MatmulLayout::ABt, (7, 12, 13), false);
    matmul_case(MatmulKernel::Vec4, MatmulLayout::ABt, (1, 4, 1), false);
}
#[test]
fn matmul_vec4_atb() {
    matmul_vec4_shapes(MatmulLayout::AtB);
}

#[test]
fn matmul_tiled_ab() {
    matmul_all_shapes(MatmulKernel::Tiled, MatmulLayout::AB);
}
#[test]
fn matmul_tiled_abt() {
    matmul_all_shapes(MatmulKernel::Tiled, MatmulLayout::ABt);
}
#[test]
fn matmul_tiled_atb() {
    matmul_all_shapes(MatmulKernel::Tiled, MatmulLayout::AtB);
}

#[test]
fn matmul_naive_ab() {
    matmul_all_shapes(MatmulKernel::Naive, MatmulLayout::AB);
}
#[test]
fn matmul_naive_abt() {
    matmul_all_shapes(MatmulKernel::Naive, MatmulLayout::ABt);
}
#[test]
fn matmul_naive_atb() {
    matmul_all_shapes(MatmulKernel::Naive, MatmulLayout::AtB);
}
#[test]
fn matmul_lanes_all_layouts() {
    for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
        matmul_all_shapes(MatmulKernel::Lanes, layout);
    }
}
#[test]
fn matmul_subgroup_all_layouts() {
    let gpu = gpu();
    if !MatmulKernel::Subgroup.available(&gpu) {
        eprintln!(
            "{} has no subgroups of 8 or more: Subgroup not tested here",
            gpu.adapter_name()
        );
        assert!(
            !gpu.is_software() || !gpu.has_subgroups(),
            "lavapipe with subgroups runs it"
        );
        return;
    }
    for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
        matmul_all_shapes(MatmulKernel::Subgroup, layout);
    }
}
#[test]
fn matmul_lanes_down_all_layouts() {
    for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
        matmul_all_shapes(MatmulKernel::LanesDown, layout);
    }
}

/// The fast kernels against the naive GPU oracle directly, on a larger case.
#[test]
fn matmul_fast_kernels_match_naive_oracle() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let (m, k, n) = (300, 256, 264);
    let a = Tensor::from_slice(&gpu, &[m, k], &uniform(&mut rng, m * k, -1.0, 1.0)).unwrap();
    let b = Tensor::from_slice(&gpu, &[k, n], &uniform(&mut rng, k * n, -1.0, 1.0)).unwrap();
    let product = |kernel: MatmulKernel| {
        let c = Tensor::full(&gpu, &[m, n], f32::NAN).unwrap();
        gpu.run(&[&ops::matmul(&gpu, kernel, MatmulLayout::AB, &a, &b, &c, false).unwrap()])
            .unwrap();
        c.to_vec().unwrap()
    };
    let want = to_f64(&product(MatmulKernel::Naive));
    for kernel in kernels_of(&gpu).into_iter().filter(|&k| k != MatmulKernel::Naive) {
        assert_close(
            &format!("{kernel:?} vs naive"),
            seed,
            &product(kernel),
            &want,
            TOLERANCE,
        );
    }
}

fn fused(kernel: MatmulKernel, layout: MatmulLayout, accumulate: bool, epilogue: ops::Epilogue) -> ops::MatmulOptions {
    ops::MatmulOptions::new(kernel, layout)
        .accumulate(accumulate)
        .epilogue(epilogue)
}

/// The expected output at flat index i given the f64 product there.
type Expected<'a> = Box<dyn Fn(usize, f64) -> f64 + 'a>;

/// The fused epilogues of every matmul kernel against the reference: bias, bias + each
/// activation, and each output-derived activation slope (with and without accumulation).
/// GELU's slope needs the layer's input, so it is refused as a gradient epilogue.
#[test]
fn matmul_epilogues_match_reference() {
    let gpu = gpu();
    for kernel in kernels_of(&gpu) {
        for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
            for &(m, k, n) in &[(1, 4, 4), (12, 20, 28), (68, 132, 260)] {
                let (seed, mut rng) = seeded_rng();
                let (trans_a, trans_b) = (layout == MatmulLayout::AtB, layout == MatmulLayout::ABt);
                let a = uniform(&mut rng, m * k, -1.0, 1.0);
                let b = uniform(&mut rng, k * n, -1.0, 1.0);
                let bias = uniform(&mut rng, n, -1.0, 1.0);
                let saved = uniform(&mut rng, m * n, 0.0, 1.0);
                let start = uniform(&mut rng, m * n, -1.0, 1.0);
                let product = matmul_ref(&to_f64(&a), &to_f64(&b), m, k, n, trans_a, trans_b);
                let abs = |v: &[f32]| v.iter().map(|x| x.abs() as f64).collect::<Vec<_>>();
                let product_abs = matmul_ref(&abs(&a), &abs(&b), m, k, n, trans_a, trans_b);
                if !kernel.supports(layout, m, k, n) {
                    continue;
                }
                let ta = Tensor::from_slice(&gpu, &if trans_a { [k, m] } else { [m, k] }, &a).unwrap();
                let tb = Tensor::from_slice(&gpu, &if trans_b { [n, k] } else { [k, n] }, &b).unwrap();
                let t_bias = Tensor::from_slice(&gpu, &[n], &bias).unwrap();
                let t_saved = Tensor::from_slice(&gpu, &[m, n], &saved).unwrap();
                let mut cases: Vec<(String, ops::Epilogue, bool, Expected)> = vec![(
                    "bias".into(),
                    ops::Epilogue::Bias(&t_bias),
                    false,
                    Box::new(|i, p| p + bias[i % n] as f64),
                )];
                let (bias_ref, saved_ref, start_ref) = (&bias, &saved, &start);
                for activation in Activation::ALL {
                    cases.push((
                        format!("bias+{}", activation.name()),
                        ops::Epilogue::BiasAct(&t_bias, activation),
                        false,
                        Box::new(move |i, p| activation.reference(p + bias_ref[i % n] as f64)),
                    ));
                }
                for activation in Activation::ALL.into_iter().filter(|a| a.grad_from_output()) {
                    let slope = move |i: usize| activation.reference_grad_from_saved(saved_ref[i] as f64);
                    cases.push((
                        format!("{} grad", activation.name()),
                        ops::Epilogue::ActGrad(&t_saved, activation),
                        false,
                        Box::new(move |i, p| p * slope(i)),
                    ));
                    cases.push((
                        format!("{} grad, accumulated", activation.name()),
                        ops::Epilogue::ActGrad(&t_saved, activation),
                        true,
                        Box::new(move |i, p| start_ref[i] as f64 + p * slope(i)),
                    ));
                }
                for (what, epilogue, accumulate, reference) in cases {
                    let init = if accumulate {
                        start.clone()
                    } else {
                        vec![f32::NAN; m * n]
                    };
                    let tc = Tensor::from_slice(&gpu, &[m, n], &init).unwrap();
                    let options = fused(kernel, layout, accumulate, epilogue);
                    let dispatch = ops::matmul_with(&gpu, &ta, &tb, &tc, options).unwrap();
                    gpu.run(&[&dispatch]).unwrap();
                    let want: Vec<f64> = product.iter().enumerate().map(|(i, &p)| reference(i, p)).collect();
                    // Bounds every rounding step: the result's own, the product's terms, the bias
                    // and the accumulated start value (the epilogues' slopes are at most 1).
                    let scale: Vec<f64> = (0..m * n)
                        .map(|i| {
                            let start_abs = if accumulate { start[i].abs() as f64 } else { 0.0 };
                            want[i].abs() + product_abs[i] + bias[i % n].abs() as f64 + start_abs
                        })
                        .collect();
                    let label = format!("{kernel:?} {layout:?} {m}x{k}x{n} {what}");
                    assert_close_scaled(&label, seed, &tc.to_vec().unwrap(), &want, &scale, TOLERANCE);
                }
                // A bias epilogue cannot accumulate; a bias of the wrong length is refused.
                let tc = Tensor::zeros(&gpu, &[m, n]).unwrap();
                let bias_epilogue = ops::Epilogue::Bias(&t_bias);
                assert!(ops::matmul_with(&gpu, &ta, &tb, &tc, fused(kernel, layout, true, bias_epilogue)).is_err());
                let short = Tensor::zeros(&gpu, &[n + 1]).unwrap();
                let short_epilogue = ops::Epilogue::BiasAct(&short, Activation::Sigmoid);
                assert!(ops::matmul_with(&gpu, &ta, &tb, &tc, fused(kernel, layout, false, short_epilogue)).is_err());
                let gelu_grad = ops::Epilogue::ActGrad(&t_saved, Activation::Gelu);
                assert!(ops::matmul_with(&gpu, &ta, &tb, &tc, fused(kernel, layout, false, gelu_grad)).is_err());
            }
        }
    }
}

/// A layer's weight and bias gradients in one dispatch: d_w = xᵀ·d_y, d_bias = Σ_rows d_y.
#[test]
fn matmul_bias_grad_matches_reference() {
    let gpu = gpu();
    for kernel in kernels_of(&gpu).into_iter().filter(|&k| k != MatmulKernel::Vec4) {
        for &(batch, inputs, outputs) in &[(1, 1, 1), (4, 2, 8), (7, 13, 5), (130, 63, 67), (4099, 3, 2)] {
            for accumulate in [false, true] {
                let (seed, mut rng) = seeded_rng();
                let x = uniform(&mut rng, batch * inputs, -1.0, 1.0);
                let d_y = uniform(&mut rng, batch * outputs, -1.0, 1.0);
                let (w0, b0) = if accumulate {
                    (
                        uniform(&mut rng, inputs * outputs, -1.0, 1.0),
                        uniform(&mut rng, outputs, -1.0, 1.0),
                    )
                } else {
                    (vec![f32::NAN; inputs * outputs], vec![f32::NAN; outputs])
                };
                let abs = |v: &[f32]| v.iter().map(|x| x.abs() as f64).collect::<Vec<_>>();
                let base = |v: &[f32], i: usize| if accumulate { v[i] as f64 } else { 0.0 };
                let product = matmul_ref(&to_f64(&x), &to_f64(&d_y), inputs, batch, outputs, true, false);
                let want_w: Vec<f64> = product.iter().enumerate().map(|(i, p)| p + base(&w0, i)).collect();
                // The scale is the sum of the magnitudes of every term added, the accumulated start value
                // included: a small product added to a larger start rounds at the start's ulp.
                let scale_w: Vec<f64> = matmul_ref(&abs(&x), &abs(&d_y), inputs, batch, outputs, true, false)
                    .iter()
                    .enumerate()
                    .map(|(i, s)| s + base(&w0, i).abs())
                    .collect();
                let want_b: Vec<f64> = (0..outputs)
                    .map(|c| base(&b0, c) + (0..batch).map(|r| d_y[r * outputs + c] as f64).sum::<f64>())
                    .collect();
                let scale_b: Vec<f64> = (0..outputs)
                    .map(|c| base(&b0, c).abs() + (0..batch).map(|r| d_y[r * outputs + c].abs() as f64).sum::<f64>())
                    .collect();
                let tx = Tensor::from_slice(&gpu, &[batch, inputs], &x).unwrap();
                let td = Tensor::from_slice(&gpu, &[batch, outputs], &d_y).unwrap();
                let tw = Tensor::from_slice(&gpu, &[inputs, outputs], &w0).unwrap();
                let tb = Tensor::from_slice(&gpu, &[outputs], &b0).unwrap();
                let dispatch = ops::matmul_bias_grad(&gpu, kernel, &tx, &td, &tw, &tb, accumulate).unwrap();
                gpu.run(&[&dispatch]).unwrap();
                let what = format!("{kernel:?} bias grad B={batch} IN={inputs} OUT={outputs} accumulate={accumulate}");
                assert_close_scaled(
                    &format!("{what} d_w"),
                    seed,
                    &tw.to_vec().unwrap(),
                    &want_w,
                    &scale_w,
                    TOLERANCE,
                );
                assert_close_scaled(
                    &format!("{what} d_b"),
                    seed,
                    &tb.to_vec().unwrap(),
                    &want_b,
                    &scale_b,
                    TOLERANCE,
                );
            }
        }
    }
    let a = Tensor::zeros(&gpu, &[4, 4]).unwrap();
    let b = Tensor::zeros(&gpu, &[4]).unwrap();
    assert!(ops::matmul_bias_grad(&gpu, MatmulKernel::Vec4, &a, &a, &a, &b, false).is_err());
}
