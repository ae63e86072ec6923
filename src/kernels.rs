//! The kernel registry: each kernel names its shader file, entry point and pipeline
//! constants. Pipelines are compiled once per device and cached by kernel.
//! A [`Dispatch`] is one kernel bound to its buffers, built once and recorded many times.

use crate::error::{Error, Result};
use crate::gpu::{Gpu, PipelineKey};
use crate::tensor::{GpuBuffer, Tensor};

/// Which operands of a matmul are stored transposed. `C = op(A)·op(B)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulLayout {
    /// `C = A·B`: the forward pass `Y = X·W`.
    AB,
    /// `C = A·Bᵀ`: the input gradient `dX = dY·Wᵀ`.
    ABt,
    /// `C = Aᵀ·B`: the weight gradient `dW = Xᵀ·dY`.
    AtB,
}

/// Which matmul implementation to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulKernel {
    /// One output per invocation: the reference every other kernel is tested against.
    Naive,
    /// vec4 loads, 8×8 outputs per invocation in registers, no workgroup memory. Needs
    /// K % 4 == 0, N % 4 == 0 (layouts AB, AtB) and M % 4 == 0 (AtB); see
    /// [`MatmulKernel::supports`].
    Vec4,
    /// Workgroup-memory tiles of 128×128 (K staged 16 at a time, op(A) transposed so the
    /// inner loop reads vec4s), 8×8 outputs per invocation, vec4 global loads where the
    /// layout allows, the next slice loaded while the current one is multiplied: for real
    /// GPUs and large products. Any shape.
    Tiled,
    /// For CPU adapters: a workgroup of 8 invocations (one SIMD group on lavapipe), each a
    /// 4×4 block over a plain loop on K, lanes across the columns (tiles of 4×32). Compiles
    /// in a fraction of a second where the unrolled kernels take tens of seconds to minutes
    /// on a cold shader cache. Any shape.
    Lanes,
    /// [`MatmulKernel::Lanes`] with the lanes down the rows (tiles of 32×4), for outputs
    /// narrower than 32 columns. Any shape.
    LanesDown,
    /// For CPU adapters with subgroups of 8 or more: a workgroup of 8 (one subgroup)
    /// computes 32×64 outputs, each invocation loading a quarter of op(A)'s column and
    /// `subgroupBroadcast` sharing it, 12 loads per 256 FMAs. Any shape; only where
    /// [`MatmulKernel::available`] says so.
    Subgroup,
}

impl MatmulKernel {
    /// Whether this kernel can run `C (M,N) = op(A)·op(B)` with inner dimension K.
    pub fn supports(self, layout: MatmulLayout, m: usize, k: usize, n: usize) -> bool {
        match self {
            MatmulKernel::Naive
            | MatmulKernel::Tiled
            | MatmulKernel::Lanes
            | MatmulKernel::LanesDown
            | MatmulKernel::Subgroup => true,
            MatmulKernel::Vec4 => {
                k.is_multiple_of(4)
                    && match layout {
                        MatmulLayout::AB => n.is_multiple_of(4),
                        MatmulLayout::ABt => true,
                        MatmulLayout::AtB => m.is_multiple_of(4) && n.is_multiple_of(4),
                    }
            }
        }
    }

    /// Outputs covered by one workgroup: (rows, columns) of C.
    pub(crate) fn tile(self, gpu: &Gpu) -> (usize, usize) {
        match self {
            MatmulKernel::Naive => (16, 16),
            MatmulKernel::Vec4 => (8 * vec4_workgroup_rows(gpu) as usize, 64),
            MatmulKernel::Tiled => (128, 128),
            MatmulKernel::Lanes => (4, 32),
            MatmulKernel::LanesDown => (32, 4),
            MatmulKernel::Subgroup => (32, 64),
        }
    }

    /// Whether `gpu` can run this kernel: [`MatmulKernel::Subgroup`] needs subgroup
    /// operations with subgroups of at least 8 invocations; the others run anywhere.
    pub fn available(self, gpu: &Gpu) -> bool {
        match self {
            MatmulKernel::Subgroup => gpu.has_subgroups() && gpu.adapter_min_subgroup_size() >= 8,
            _ => true,
        }
    }
}

/// Multiply-adds from which [`MatmulKernel::choose`] takes the tiled kernel on GPUs for
/// every layout (xl's 4096³ products: 2³⁶).
pub const TILED_MIN_WORK: usize = 1 << 32;

/// On CPU adapters without subgroups, products smaller than this many multiply-adds use
/// `Lanes` even where `Vec4` would take them: they run alike there, and `Lanes` compiles
/// faster (see [`MatmulKernel::choose`]).
pub const CPU_BLOCKED_MIN_WORK: usize = 1 << 22;

/// Every matmul kernel.
pub const MATMUL_KERNELS: [MatmulKernel; 6] = [
    MatmulKernel::Naive,
    MatmulKernel::Vec4,
    MatmulKernel::Tiled,
    MatmulKernel::Lanes,
    MatmulKernel::LanesDown,
    MatmulKernel::Subgroup,
];

/// The kernel `WGPU_MLP_MATMUL` names, if it names one.
pub(crate) fn forced_kernel() -> Option<MatmulKernel> {
    let name = std::env::var("WGPU_MLP_MATMUL").ok()?;
    MATMUL_KERNELS
        .into_iter()
        .find(|k| format!("{k:?}").eq_ignore_ascii_case(&name))
}

/// Invocations of the single-workgroup MSE reduction: 8 on CPU adapters (each barrier
/// switches every SIMD group in and out); on GPUs the largest power of two up to 1024 the
/// device allows, since that one workgroup streams the whole batch (xl: 16.8M outputs took
/// 29.7 ms with 256 on an H100).
fn mse_threads(gpu: &Gpu) -> u32 {
    if gpu.is_software() {
        return 8;
    }
    let limit = gpu
        .inner
        .limits
        .max_compute_invocations_per_workgroup
        .min(gpu.inner.limits.max_compute_workgroup_size_x)
        .clamp(1, 1024);
    1 << (31 - limit.leading_zeros())
}

/// Rows of invocations in a `matmul_vec4` workgroup: 2 on CPU adapters, where each
/// workgroup runs on one core and small layers must still spread over the cores; 8 on GPUs.
fn vec4_workgroup_rows(gpu: &Gpu) -> u32 {
    if gpu.is_software() { 2 } else { 8 }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul(MatmulKernel, MatmulLayout),
    BiasAddForward,
    BiasAddBackward,
    ActivationForward,
    ActivationBackward,
    MseForward,
    MseBackward,
    XentForward,
    XentBackward,
    OptimizerUpdate,
    OptimizerSteps,
    Add,
    GatherBatch,
    ModelsToStep,
    CopyRows,
    Copy,
    TinyStep,
}

fn lock_error<T>(_: T) -> Error {
    Error::Gpu {
        op: "pipeline cache",
        message: "cache lock poisoned".into(),
    }
}

impl Gpu {
    /// The compiled pipeline for `kernel`, compiling its shader file on first use.
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Result<wgpu::ComputePipeline> {
        let src = kernel.source();
        let mut constants = src.constants.to_vec();
        // Sizes that suit the adapter: CPU adapters run a workgroup on one core, one SIMD
        // group after another.
        match kernel {
            Kernel::Matmul(MatmulKernel::Vec4, _) => {
                constants.push(("VEC4_WG_ROWS", vec4_workgroup_rows(self) as f64));
            }
            Kernel::Matmul(MatmulKernel::LanesDown, _) => constants.push(("LANES_DOWN_ROWS", 1.0)),
            Kernel::MseForward => constants.push(("MSE_THREADS", mse_threads(self) as f64)),
            Kernel::XentForward => constants.push(("XENT_THREADS", mse_threads(self) as f64)),
            _ => {}
        }
        let key = PipelineKey {
            file: src.file,
            entry: src.entry,
            constants: constants.iter().map(|&(name, value)| (name, value.to_bits())).collect(),
        };
        let mut pipelines = self.inner.pipelines.lock().map_err(lock_error)?;
        if let Some(pipeline) = pipelines.get(&key) {
            return Ok(pipeline.clone());
        }
        let device = self.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = self.inner.modules.lock().map_err(lock_error)?;
            modules
                .entry(src.file)
                .or_insert_with(|| {
                    let descriptor = wgpu::ShaderModuleDescriptor {
                        label: Some(src.file),
                        source: wgpu::ShaderSource::Wgsl(src.source.concat().into()),
                    };
                    if src.trusted {
                        // SAFETY: `trusted` shaders clamp every storage index into the
                        // bounds their (host-validated) shape parameters give, and every
                        // loop runs to a bound from those parameters. Dropping naga's
                        // checks halves the matmul time on lavapipe.
                        unsafe {
                            device.create_shader_module_trusted(descriptor, wgpu::ShaderRuntimeChecks::unchecked())
                        }
                    } else {
                        device.create_shader_module(descriptor)
                    }
                })
                .clone()
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(src.entry),
            layout: None,
            module: &module,
            entry_point: Some(src.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: self.inner.pipeline_cache.as_ref().map(|c| &c.cache),
        });
        if let Some(cache) = &self.inner.pipeline_cache {
            cache.compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                op: "compiling a kernel",
                message: format!("{} in {}: {error}", src.entry, src.file),
            });
        }
        pipelines.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Records `dispatches` in order into one command encoder and submits it once.
    ///
    /// Does not wait: read a tensor back (or call [`Gpu::synchronize`]) to wait.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        self.record_and_submit("run", |pass| {
            for dispatch in dispatches {
                dispatch.record(pass);
            }
        })
    }

    /// One command encoder, one compute pass filled by `record`, one submit.
    pub(crate) fn record_and_submit(
        &self,
        op: &'static str,
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) -> Result<()> {
        self.record_and_submit_after(op, |_| {}, record)
    }

    /// Like [`Gpu::record_and_submit`], with `before` recording copies ahead of the pass.
    pub(crate) fn record_and_submit_after(
        &self,
        op: &'static str,
        before: impl FnOnce(&mut wgpu::CommandEncoder),
        record: impl FnOnce(&mut wgpu::ComputePass<'_>),
    ) -> Result<()> {
        let mut encoder = self
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(op) });
        before(&mut encoder);
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(op),
                timestamp_writes: None,
            });
            record(&mut pass);
        }
        self.submit(encoder.finish());
        self.take_errors(op)
    }
}

/// One kernel launch with its pipeline, bound buffers, parameters and grid, ready to be
/// recorded any number of times (see [`Gpu::run`]).
pub struct Dispatch {
    kernel: Kernel,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    _params: GpuBuffer,
    /// The device whose dispatch counter [`Dispatch::record`] advances.
    gpu: Gpu,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("kernel", &self.kernel)
            .field("workgroups", &self.workgroups)
            .finish()
    }
}

impl Dispatch {
    /// Binds `params` (a read-only storage buffer at binding 0) and `buffers` (each at its binding index) to
    /// `kernel`, over `workgroups` workgroups numbered linearly (the shader rebuilds the
    /// linear index as `x + num_workgroups.x * y`).
    pub(crate) fn new(
        gpu: &Gpu,
        kernel: Kernel,
        params: &[u8],
        tensors: &[(u32, &Tensor)],
        workgroups: usize,
    ) -> Result<Self> {
        Self::stacked(gpu, kernel, params, tensors, workgroups, 1)
    }

    /// [`Dispatch::new`] repeated for each of `models` stacked models in one launch: the
    /// grid's z dimension is the model, whose operands the shader finds by the per-binding
    /// model strides in `params`.
    pub(crate) fn stacked(
        gpu: &Gpu,
        kernel: Kernel,
        params: &[u8],
        tensors: &[(u32, &Tensor)],
        workgroups: usize,
        models: usize,
    ) -> Result<Self> {
        let pipeline = gpu.pipeline(kernel)?;
        let params = GpuBuffer::storage(gpu, "params", params)?;
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: crate::bindings::PARAMS_BINDING,
            resource: params.buffer.as_entire_binding(),
        }];
        entries.extend(tensors.iter().map(|&(binding, tensor)| wgpu::BindGroupEntry {
            binding,
            resource: tensor.binding(),
        }));
        let device = gpu.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("dispatch"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                op: "binding a kernel",
                message: format!("{kernel:?}: {error}"),
            });
        }
        Ok(Dispatch {
            kernel,
            pipeline,
            bind_group,
            workgroups: grid(gpu, workgroups, models)?,
            _params: params,
            gpu: gpu.clone(),
        })
    }

    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
        self.gpu.count_dispatch();
    }
}

/// Folds a linear workgroup count into an (x, y, models) grid within the per-dimension limit.
fn grid(gpu: &Gpu, workgroups: usize, models: usize) -> Result<[u32; 3]> {
    let max = gpu.max_workgroups_per_dim().max(1) as usize;
    let x = workgroups.clamp(1, max);
    let y = workgroups.div_ceil(x).max(1);
    if y > max {
        return Err(Error::invalid(
            "dispatch",
            "workgroup count",
            format!("at most {} workgroups", max * max),
            workgroups,
        ));
    }
    if models == 0 || models > max {
        return Err(Error::invalid(
            "dispatch",
            "stacked models",
            format!("1..={max} (the adapter's workgroups per dimension)"),
            models,
        ));
    }
    Ok([x as u32, y as u32, models as u32])
}
