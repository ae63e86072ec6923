//! Kernel compile cost on the current adapter: for every matmul kernel × layout (and the
//! element-wise kernels), the time to create its pipeline and the time of its first dispatch
//! (lavapipe compiles a shader's machine code at its first dispatch), then a second dispatch
//! for comparison. One line per kernel, tab-separated, to stdout.
//!
//! Cold: `MESA_SHADER_CACHE_DIR=$(mktemp -d) cargo run --release --example compile_times`
//! Warm: run it again with the same cache folder.
//! `-- --kernels chosen` times only the kernels `MatmulKernel::choose` picks for the
//! digits, mnist and wide shapes on this adapter; `-- --kernels all` (default) every one;
//! `-- --kernels Lanes,Tiled` those named.

use std::time::Instant;

use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::{Activation, Gpu};

const LAYOUTS: [MatmulLayout; 3] = [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB];

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Builds `build`'s dispatch and runs it twice; prints create / first / second times.
fn time_one(
    gpu: &Gpu,
    name: &str,
    build: impl FnOnce() -> Result<wgpu_mlp::raw::Dispatch, wgpu_mlp::Error>,
) -> Result<f64, wgpu_mlp::Error> {
    let t = Instant::now();
    let dispatch = build()?;
    let create = ms(t);
    let t = Instant::now();
    gpu.run(&[&dispatch])?;
    gpu.synchronize()?;
    let first = ms(t);
    let t = Instant::now();
    gpu.run(&[&dispatch])?;
    gpu.synchronize()?;
    let second = ms(t);
    println!("{name}\t{create:.1}\t{first:.1}\t{second:.2}");
    Ok(create + first)
}

fn main() -> Result<(), wgpu_mlp::Error> {
    let args: Vec<String> = std::env::args().collect();
    let which = args
        .iter()
        .position(|a| a == "--kernels")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "all".into());
    let chosen_only = which == "chosen";
    let named: Vec<&str> = if which == "all" || chosen_only {
        Vec::new()
    } else {
        which.split(',').collect()
    };
    let gpu = Gpu::new()?;
    eprintln!(
        "adapter: {} ({:?}, {:?})",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type()
    );
    println!("kernel\tcreate_ms\tfirst_dispatch_ms\tsecond_dispatch_ms");
    // Shapes divisible by 4 so every kernel (Vec4 included) supports them.
    let (m, k, n) = (64, 64, 64);
    let mut wanted: Vec<(MatmulKernel, MatmulLayout)> = Vec::new();
    if chosen_only {
        for (rows, fan_in, fan_out) in [
            (32, 64, 64),
            (32, 64, 10),
            (128, 784, 128),
            (128, 128, 10),
            (64, 1024, 1024),
        ] {
            for layout in LAYOUTS {
                let (mm, kk, nn) = match layout {
                    MatmulLayout::AB => (rows, fan_in, fan_out),
                    MatmulLayout::ABt => (rows, fan_out, fan_in),
                    MatmulLayout::AtB => (fan_in, rows, fan_out),
                };
                let kernel = MatmulKernel::choose(&gpu, layout, mm, kk, nn);
                if !wanted.contains(&(kernel, layout)) {
                    wanted.push((kernel, layout));
                }
            }
        }
    } else {
        for kernel in wgpu_mlp::raw::MATMUL_KERNELS {
            if !kernel.available(&gpu) || !named.is_empty() && !named.contains(&format!("{kernel:?}").as_str()) {
                continue;
            }
            for layout in LAYOUTS {
                wanted.push((kernel, layout));
            }
        }
    }
    let mut total = 0.0;
    for (kernel, layout) in wanted {
        let a = Tensor::full(&gpu, &[m, k], 0.5)?;
        let b = Tensor::full(&gpu, &[k, n], 0.25)?;
        let c = Tensor::zeros(&gpu, &[m, n])?;
        total += time_one(&gpu, &format!("matmul {kernel:?} {layout:?}"), || {
            ops::matmul(&gpu, kernel, layout, &a, &b, &c, false)
        })?;
    }
    let x = Tensor::full(&gpu, &[m, n], 0.5)?;
    let y = Tensor::zeros(&gpu, &[m, n])?;
    let bias = Tensor::zeros(&gpu, &[n])?;
    let weights = Tensor::full(&gpu, &[m], 1.0 / m as f32)?;
    let loss = Tensor::zeros(&gpu, &[1])?;
    total += time_one(&gpu, "bias_add_forward", || ops::bias_add_forward(&gpu, &x, &bias, &y))?;
    total += time_one(&gpu, "activation_forward", || {
        ops::activation_forward(&gpu, Activation::Sigmoid, &x, &y)
    })?;
    total += time_one(&gpu, "mse_forward", || ops::mse_forward(&gpu, &x, &y, &weights, &loss))?;
    let d_z = Tensor::zeros(&gpu, &[m, n])?;
    total += time_one(&gpu, "mse_backward_through", || {
        ops::mse_backward_through(&gpu, Activation::Sigmoid, &x, &y, &weights, &d_z)
    })?;
    eprintln!("total create + first dispatch: {:.1} s", total / 1e3);
    Ok(())
}
