//! Shared test support: the one `Gpu` per test binary (which FAILS, never skips, when no
//! adapter exists), seeded random inputs, and (in `reference.rs`, which the browser tests
//! share) error measures and the f64 references.
#![allow(dead_code)]

mod reference;
#[allow(unused_imports)] // each test binary takes the parts it needs
pub use reference::*;

use std::sync::OnceLock;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgpu_mlp::Gpu;

pub fn gpu() -> Gpu {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    expect_gpu(GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string())).clone())
}

/// A device of its own, for tests that count the library's resources (tests of one binary
/// run in parallel and would see each other's buffers on a shared one).
pub fn own_gpu() -> Gpu {
    expect_gpu(Gpu::new().map_err(|e| e.to_string()))
}

fn expect_gpu(gpu: Result<Gpu, String>) -> Gpu {
    match gpu {
        Ok(gpu) => gpu,
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

/// Every parameter and velocity of `mlp` as raw bits, for bit-exactness checks.
/// (Adam's second moments and step count included.)
pub fn state_bits(mlp: &wgpu_mlp::Mlp) -> Vec<u32> {
    let second = mlp.second_moments().unwrap_or_default();
    let steps = mlp.optimizer_steps().unwrap();
    mlp.parameters()
        .unwrap()
        .iter()
        .chain(&mlp.velocities().unwrap())
        .chain(&second)
        .flat_map(|l| l.weights.iter().chain(&l.bias).map(|v| v.to_bits()).collect::<Vec<_>>())
        .chain(steps.iter().map(|&s| s as u32))
        .collect()
}

/// Trains a small net on the general step path: a 10-step warm-up, then `steps` more. Every
/// 1,000 steps and at the end it asserts that the loss is finite and that the library's live
/// GPU buffers and bytes are those it had after the warm-up.
pub fn assert_resources_constant(steps: usize) {
    let gpu = own_gpu();
    let mut mlp = wgpu_mlp::Mlp::builder(&[6, 10, 3])
        .seed(1)
        .step_kernel(wgpu_mlp::mlp::StepKernel::General)
        .build(&gpu, 8, wgpu_mlp::Sgd::new(0.1).momentum(0.9))
        .unwrap();
    let (_, mut rng) = seeded_rng();
    mlp.set_batch(&uniform(&mut rng, 48, 0.0, 1.0), &uniform(&mut rng, 24, 0.0, 1.0))
        .unwrap();
    mlp.steps(10).unwrap();
    mlp.loss().unwrap();
    let warm = gpu.stats();
    let mut done = 0;
    let mut checks = 0;
    while done < steps {
        let k = 50.min(steps - done);
        mlp.steps(k).unwrap();
        done += k;
        if done % 1000 == 0 || done == steps {
            assert!(mlp.loss().unwrap().is_finite(), "loss after {done} steps");
            mlp.parameters().unwrap();
            let now = gpu.stats();
            assert_eq!(
                (now.live_buffers, now.live_bytes),
                (warm.live_buffers, warm.live_bytes),
                "live GPU buffers/bytes changed between the warm-up and {done} more steps"
            );
            checks += 1;
        }
    }
    assert!(checks >= 1);
}
