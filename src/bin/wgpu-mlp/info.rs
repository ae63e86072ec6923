//! `wgpu-mlp info`: the adapters, the one chosen, what it can do.

use wgpu_mlp::Gpu;
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout};

pub fn run() -> super::Outcome {
    println!("wgpu-mlp {}", env!("CARGO_PKG_VERSION"));
    println!("adapters, best first (* the one used):");
    for (i, info) in Gpu::adapters()?.iter().enumerate() {
        println!(
            "{} {} ({:?}, {:?}), driver {} {}",
            if i == 0 { "*" } else { " " },
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info
        );
    }
    let gpu = Gpu::new()?;
    let limits = gpu.limits();
    const MIB: u64 = 1 << 20;
    println!(
        "largest tensor one kernel binds: {} MiB (storage binding {} MiB, buffer {} MiB)",
        gpu.max_binding_bytes() / MIB,
        limits.max_storage_buffer_binding_size / MIB,
        limits.max_buffer_size / MIB
    );
    println!(
        "workgroups per dimension: {}; invocations per workgroup: {}; workgroup memory: {} KiB",
        limits.max_compute_workgroups_per_dimension,
        limits.max_compute_invocations_per_workgroup,
        limits.max_compute_workgroup_storage_size / 1024
    );
    let features = gpu.features();
    println!(
        "subgroups: {}; timestamp queries: {}; pipeline cache: {}",
        features.contains(wgpu::Features::SUBGROUP),
        features.contains(wgpu::Features::TIMESTAMP_QUERY),
        gpu.pipeline_cache_file()
            .map_or("none".to_string(), |path| path.display().to_string())
    );
    let (m, k, n) = (256, 256, 256);
    let kernel = MatmulKernel::choose(&gpu, MatmulLayout::AB, m, k, n);
    println!("matmul kernel for a {m}×{k}·{k}×{n} product: {kernel:?}");
    Ok(())
}
