//! Prints the adapter wgpu-mlp picks and checks one matmul against the CPU.
//!
//! `cargo run --release --example adapter`

use wgpu_mlp::Gpu;
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};

fn main() -> Result<(), wgpu_mlp::Error> {
    let gpu = Gpu::new()?;
    println!(
        "adapter: {} ({:?}, {:?}), subgroups: {}",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type(),
        gpu.has_subgroups()
    );
    // a (M,K) · b (K,N) with small exact integers, so the CPU answer is exact too
    let (m, k, n) = (37, 53, 29);
    let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
    let ta = Tensor::from_slice(&gpu, &[m, k], &a)?;
    let tb = Tensor::from_slice(&gpu, &[k, n], &b)?;
    let tc = Tensor::full(&gpu, &[m, n], f32::NAN)?;
    let kernel = MatmulKernel::choose(&gpu, MatmulLayout::AB, m, k, n);
    gpu.run(&[&ops::matmul(&gpu, kernel, MatmulLayout::AB, &ta, &tb, &tc, false)?])?;
    let got = tc.to_vec()?;
    let mut max_diff = 0.0f32;
    for row in 0..m {
        for col in 0..n {
            let want: f32 = (0..k).map(|kk| a[row * k + kk] * b[kk * n + col]).sum();
            max_diff = max_diff.max((got[row * n + col] - want).abs());
        }
    }
    println!("matmul {m}x{k} · {k}x{n} with the {kernel:?} kernel: max |GPU − CPU| = {max_diff}");
    if max_diff != 0.0 {
        eprintln!("mismatch against the CPU");
        std::process::exit(1);
    }
    Ok(())
}
