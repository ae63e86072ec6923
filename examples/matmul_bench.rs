//! Matmul throughput per kernel, layout and shape on the current adapter: one JSON line
//! each, GFLOP/s from wall time over many dispatches in one submit (after warm-up).
//!
//! `cargo run --release --example matmul_bench -- [--shapes 4096x4096x4096,256x1024x1024]
//!  [--kernels Tiled,Vec4] [--seconds 0.3]`
//! A shape is M×K×N of `C (M,N) = op(A)·op(B)`; every layout is run for each.

#[allow(dead_code)] // each user takes the parts it needs
#[path = "support/workloads.rs"]
mod workloads;

use std::time::Instant;

use wgpu_mlp::Gpu;
use wgpu_mlp::raw::MATMUL_KERNELS;
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn parse_shape(text: &str) -> Result<(usize, usize, usize), String> {
    let dims: Vec<usize> = text
        .split('x')
        .map(|d| d.parse().map_err(|e| format!("shape {text:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match dims[..] {
        [m, k, n] => Ok((m, k, n)),
        _ => Err(format!("shape {text:?}: expected MxKxN")),
    }
}

/// `len` values in [-1, 1) from the workloads' counter-based generator.
fn noise(len: usize, seed: u64) -> Vec<f32> {
    (0..len as u64)
        .map(|i| (2.0 * workloads::splitmix_uniform(seed, i + 1) - 1.0) as f32)
        .collect()
}

/// Seconds for `reps` back-to-back dispatches in one submit, synchronised.
fn time_reps(gpu: &Gpu, dispatch: &wgpu_mlp::raw::Dispatch, reps: usize) -> Result<f64, wgpu_mlp::Error> {
    let batch: Vec<&wgpu_mlp::raw::Dispatch> = vec![dispatch; reps];
    let t = Instant::now();
    gpu.run(&batch)?;
    gpu.synchronize()?;
    Ok(t.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gpu = Gpu::new()?;
    let shapes: Vec<(usize, usize, usize)> = arg("--shapes")
        .unwrap_or_else(|| "128x784x256,256x1024x1024,4096x4096x4096".into())
        .split(',')
        .map(parse_shape)
        .collect::<Result<_, _>>()?;
    let named = arg("--kernels");
    let seconds: f64 = arg("--seconds").map(|s| s.parse()).transpose()?.unwrap_or(0.3);
    let kernels: Vec<MatmulKernel> = MATMUL_KERNELS
        .into_iter()
        .filter(|k| k.available(&gpu))
        .filter(|k| match &named {
            Some(list) => list.split(',').any(|n| n.eq_ignore_ascii_case(&format!("{k:?}"))),
            None => *k != MatmulKernel::Naive,
        })
        .collect();
    for &(m, k, n) in &shapes {
        for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
            let (a_shape, b_shape) = match layout {
                MatmulLayout::AB => ([m, k], [k, n]),
                MatmulLayout::ABt => ([m, k], [n, k]),
                MatmulLayout::AtB => ([k, m], [k, n]),
            };
            // Random operands: constant ones would flatter kernels whose clocks depend on
            // the data (toggling bits cost power).
            let a = Tensor::from_slice(&gpu, &a_shape, &noise(m * k, 1))?;
            let b = Tensor::from_slice(&gpu, &b_shape, &noise(k * n, 2))?;
            let c = Tensor::zeros(&gpu, &[m, n])?;
            let chosen = MatmulKernel::choose(&gpu, layout, m, k, n);
            for &kernel in &kernels {
                if !kernel.supports(layout, m, k, n) {
                    continue;
                }
                let dispatch = ops::matmul(&gpu, kernel, layout, &a, &b, &c, false)?;
                time_reps(&gpu, &dispatch, 2)?; // compile and warm up
                let once = time_reps(&gpu, &dispatch, 1)?.max(1e-6);
                let reps = ((seconds / once).ceil() as usize).clamp(1, 2000);
                let total = time_reps(&gpu, &dispatch, reps)?;
                let gflops = 2.0 * (m * k * n) as f64 * reps as f64 / total / 1e9;
                println!(
                    "{{\"bench\":\"matmul\",\"adapter\":{:?},\"kernel\":\"{kernel:?}\",\"chosen\":{},\"layout\":\"{layout:?}\",\"m\":{m},\"k\":{k},\"n\":{n},\"ms\":{:.4},\"gflops\":{:.1}}}",
                    gpu.adapter_name(),
                    kernel == chosen,
                    total / reps as f64 * 1e3,
                    gflops
                );
            }
        }
    }
    Ok(())
}
