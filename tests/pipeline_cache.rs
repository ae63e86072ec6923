//! Compiled pipelines persist on disk between `Gpu`s (and processes); a damaged cache file is
//! ignored and rewritten, never an error. Its own test binary: it sets the cache folder
//! through the environment, which no other test reads.

mod common;

use wgpu_mlp::Gpu;
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};

/// One small matmul through `gpu`, checked (so the kernel really compiled and ran).
fn run_matmul(gpu: &Gpu) {
    let a = Tensor::from_slice(gpu, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
    let b = Tensor::from_slice(gpu, &[3, 1], &[1., 0., -1.]).unwrap();
    let c = Tensor::full(gpu, &[2, 1], f32::NAN).unwrap();
    let dispatch = ops::matmul(gpu, MatmulKernel::Naive, MatmulLayout::AB, &a, &b, &c, false).unwrap();
    gpu.run(&[&dispatch]).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![-2.0, -2.0]);
}

#[test]
fn pipeline_cache_persists_and_survives_damage() {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: this binary's only test; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("WGPU_MLP_CACHE_DIR", &dir) };
    let gpu = common::own_gpu();
    let Some(file) = gpu.pipeline_cache_file().map(|p| p.to_path_buf()) else {
        // Not a skip: an adapter without wgpu's pipeline cache (not Vulkan) must say so.
        assert_ne!(
            gpu.backend(),
            wgpu::Backend::Vulkan,
            "Vulkan adapters keep a pipeline cache"
        );
        return;
    };
    assert!(file.starts_with(&dir), "{file:?} is not under {dir:?}");
    run_matmul(&gpu);
    drop(gpu);
    let saved = std::fs::read(&file).expect("the cache is written when the Gpu is dropped");
    assert!(saved.len() > 24 && saved.starts_with(b"WMLPC"), "{} bytes", saved.len());

    // A damaged file: ignored, the device works, and the file is rewritten whole.
    let mut damaged = saved.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    damaged.truncate(damaged.len() - 3);
    std::fs::write(&file, &damaged).unwrap();
    let gpu = common::own_gpu();
    run_matmul(&gpu);
    drop(gpu);
    let rewritten = std::fs::read(&file).unwrap();
    assert!(rewritten.starts_with(b"WMLPC") && rewritten != damaged);

    // Garbage of another origin, then the good file again: both load without error.
    std::fs::write(&file, b"not a pipeline cache").unwrap();
    run_matmul(&common::own_gpu());
    run_matmul(&common::own_gpu());
    let _ = std::fs::remove_dir_all(&dir);
}
