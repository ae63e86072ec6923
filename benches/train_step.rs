//! A full training step (forward, loss, backward, update; one submit) for each benchmark
//! workload, waiting for the GPU each time. `cargo bench --bench train_step`.

#[allow(dead_code)] // each user takes the parts it needs
#[path = "../examples/support/workloads.rs"]
mod workloads;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgpu_mlp::{Gpu, Mlp, Sgd};
use workloads::WORKLOADS;

fn train_step(c: &mut Criterion) {
    let gpu = Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)");
    println!(
        "adapter: {} ({:?}, {:?})",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type()
    );
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for workload in WORKLOADS {
        let data = workload.generate();
        let sgd = Sgd::new(0.1).momentum(0.9).weight_decay(1e-4);
        let mut mlp = Mlp::builder(workload.sizes)
            .parameters(data.params)
            .build(&gpu, workload.batch, sgd)
            .unwrap();
        mlp.set_batch(&data.x, &data.t).unwrap();
        let before = gpu.stats().dispatches;
        mlp.steps(10).unwrap();
        let counted = (gpu.stats().dispatches - before) as f64 / 10.0;
        println!(
            "{}: {counted} dispatches per step counted ({} scheduled)",
            workload.name,
            mlp.dispatches_per_step()
        );
        group.throughput(Throughput::Elements(workload.flops_per_step() as u64)); // FLOPs
        group.bench_function(workload.name, |bench| {
            bench.iter(|| {
                mlp.step().unwrap();
                gpu.synchronize().unwrap();
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_step);
criterion_main!(benches);
