//! Shared test support: the one `Gpu` per test binary (which FAILS, never skips, when no
//! adapter exists), seeded random inputs, and error measures against f64 references.
#![allow(dead_code)]

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgpu_mlp::Gpu;

pub fn gpu() -> Gpu {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string())) {
        Ok(gpu) => gpu.clone(),
        Err(e) => panic!(
            "GPU tests need an adapter and none was found: {e}\n\
             On Debian/Ubuntu: sudo apt-get install -y mesa-vulkan-drivers libvulkan1"
        ),
    }
}

/// A fresh seed per call (or `TEST_SEED` to replay one); print it in every assertion.
pub fn seeded_rng() -> (u64, StdRng) {
    let seed = std::env::var("TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    (seed, StdRng::seed_from_u64(seed))
}

pub fn uniform(rng: &mut StdRng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(low..high)).collect()
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// ‖got − want‖_F / ‖want‖_F (absolute when `want` is all zeros); infinite when `got` has
/// a non-finite value or the lengths differ, so poisoned (unwritten) outputs always fail.
pub fn rel_error(got: &[f32], want: &[f64]) -> f64 {
    if got.len() != want.len() || got.iter().any(|x| !x.is_finite()) {
        return f64::INFINITY;
    }
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = want.iter().map(|w| w * w).sum::<f64>().sqrt();
    if norm == 0.0 { diff } else { diff / norm }
}

#[track_caller]
pub fn assert_close(what: &str, seed: u64, got: &[f32], want: &[f64], tolerance: f64) {
    let error = rel_error(got, want);
    assert!(
        error <= tolerance,
        "{what}: relative Frobenius error {error:e} > {tolerance:e} (replay with TEST_SEED={seed}); \
         first values got {:?} want {:?}",
        &got[..got.len().min(4)],
        &want[..want.len().min(4)]
    );
}

// ------------------------------------------------------------------ f64 references

pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// c (m,n) = op(a)·op(b): `trans_a` means a is stored (k,m), `trans_b` b stored (n,k).
pub fn matmul_ref(a: &[f64], b: &[f64], m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for row in 0..m {
        for col in 0..n {
            let mut sum = 0.0;
            for kk in 0..k {
                let av = if trans_a { a[kk * m + row] } else { a[row * k + kk] };
                let bv = if trans_b { b[col * k + kk] } else { b[kk * n + col] };
                sum += av * bv;
            }
            c[row * n + col] = sum;
        }
    }
    c
}
