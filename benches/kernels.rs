//! Kernel throughput: matmul GFLOP/s per layout and size, element-wise GB/s.
//! `cargo bench --bench kernels`. Every timed iteration waits for the GPU to finish.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::{Activation, Gpu};

fn matmul(c: &mut Criterion) {
    let gpu = Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)");
    println!(
        "adapter: {} ({:?}, {:?})",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type()
    );
    // 2048³ takes ~10 s per product on a 2-core software adapter: real GPUs only.
    let sizes: &[usize] = if gpu.is_software() {
        &[256, 512, 1024]
    } else {
        &[256, 512, 1024, 2048]
    };
    let mut group = c.benchmark_group("matmul");
    group.sample_size(10);
    for layout in [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB] {
        for &n in sizes {
            let a = Tensor::full(&gpu, &[n, n], 0.5).unwrap();
            let b = Tensor::full(&gpu, &[n, n], 0.25).unwrap();
            let out = Tensor::zeros(&gpu, &[n, n]).unwrap();
            let kernel = MatmulKernel::choose(&gpu, layout, n, n, n);
            let dispatch = ops::matmul(&gpu, kernel, layout, &a, &b, &out, false).unwrap();
            group.throughput(Throughput::Elements(2 * (n * n * n) as u64)); // FLOPs
            group.bench_function(BenchmarkId::new(format!("{layout:?}/{kernel:?}"), n), |bench| {
                bench.iter(|| {
                    gpu.run(&[&dispatch]).unwrap();
                    gpu.synchronize().unwrap();
                })
            });
        }
    }
    group.finish();
}

/// Each activation forward and backward on 4M elements: their costs side by side.
fn elementwise(c: &mut Criterion) {
    let gpu = Gpu::new().expect("an adapter");
    let n = 1 << 22;
    let x = Tensor::full(&gpu, &[n], 0.5).unwrap();
    let d_y = Tensor::full(&gpu, &[n], 0.25).unwrap();
    let y = Tensor::zeros(&gpu, &[n]).unwrap();
    let mut group = c.benchmark_group("elementwise");
    group.sample_size(20);
    for activation in Activation::ALL {
        let forward = ops::activation_forward(&gpu, activation, &x, &y).unwrap();
        let backward = ops::activation_backward(&gpu, activation, &d_y, &x, &y, false).unwrap();
        for (what, dispatch, bytes) in [("forward", &forward, 8), ("backward", &backward, 12)] {
            group.throughput(Throughput::Bytes(bytes * n as u64)); // reads and writes per element
            group.bench_function(format!("{}_{what}/4M", activation.name()), |bench| {
                bench.iter(|| {
                    gpu.run(&[dispatch]).unwrap();
                    gpu.synchronize().unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, matmul, elementwise);
criterion_main!(benches);
