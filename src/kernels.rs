//! The kernel registry: each kernel names its shader file, entry point and pipeline
//! constants. Pipelines are compiled once per device and cached by kernel.
//! A [`Dispatch`] is one kernel bound to its buffers, built once and recorded many times.

use crate::error::{Error, Result};
use crate::gpu::Gpu;
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
    /// 4×4 outputs per invocation in registers, no workgroup memory.
    Blocked,
}

impl MatmulKernel {
    /// The kernel this library picks for `gpu`.
    pub fn for_gpu(_gpu: &Gpu) -> Self {
        MatmulKernel::Blocked
    }

    /// Outputs covered by one workgroup along each side of C.
    pub(crate) fn tile(self) -> usize {
        match self {
            MatmulKernel::Naive => 16,
            MatmulKernel::Blocked => 64,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Matmul(MatmulKernel, MatmulLayout),
    BiasAddForward,
    BiasAddBackward,
    SigmoidForward,
    SigmoidBackward,
    MseForward,
    MseBackward,
    SgdUpdate,
    Add,
    Copy,
}

struct KernelSource {
    file: &'static str,
    source: &'static str,
    entry: &'static str,
    constants: &'static [(&'static str, f64)],
}

const MATMUL: &str = include_str!("../shaders/matmul.wgsl");
const BIAS: &str = include_str!("../shaders/bias.wgsl");
const SIGMOID: &str = include_str!("../shaders/sigmoid.wgsl");
const MSE: &str = include_str!("../shaders/mse.wgsl");
const OPTIM: &str = include_str!("../shaders/optim.wgsl");
const ELEMENTWISE: &str = include_str!("../shaders/elementwise.wgsl");

impl Kernel {
    fn source(self) -> KernelSource {
        let k = |file, source, entry| KernelSource {
            file,
            source,
            entry,
            constants: &[],
        };
        match self {
            Kernel::Matmul(kernel, layout) => KernelSource {
                file: "matmul.wgsl",
                source: MATMUL,
                entry: match kernel {
                    MatmulKernel::Naive => "matmul_naive",
                    MatmulKernel::Blocked => "matmul_blocked",
                },
                constants: match layout {
                    MatmulLayout::AB => &[("TRANS_A", 0.0), ("TRANS_B", 0.0)],
                    MatmulLayout::ABt => &[("TRANS_A", 0.0), ("TRANS_B", 1.0)],
                    MatmulLayout::AtB => &[("TRANS_A", 1.0), ("TRANS_B", 0.0)],
                },
            },
            Kernel::BiasAddForward => k("bias.wgsl", BIAS, "bias_add_forward"),
            Kernel::BiasAddBackward => k("bias.wgsl", BIAS, "bias_add_backward"),
            Kernel::SigmoidForward => k("sigmoid.wgsl", SIGMOID, "sigmoid_forward"),
            Kernel::SigmoidBackward => k("sigmoid.wgsl", SIGMOID, "sigmoid_backward"),
            Kernel::MseForward => k("mse.wgsl", MSE, "mse_forward"),
            Kernel::MseBackward => k("mse.wgsl", MSE, "mse_backward"),
            Kernel::SgdUpdate => k("optim.wgsl", OPTIM, "sgd_update"),
            Kernel::Add => k("elementwise.wgsl", ELEMENTWISE, "add"),
            Kernel::Copy => k("elementwise.wgsl", ELEMENTWISE, "copy"),
        }
    }
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
        let mut pipelines = self.inner.pipelines.lock().map_err(lock_error)?;
        if let Some(pipeline) = pipelines.get(&kernel) {
            return Ok(pipeline.clone());
        }
        let src = kernel.source();
        let device = self.device();
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = {
            let mut modules = self.inner.modules.lock().map_err(lock_error)?;
            modules
                .entry(src.file)
                .or_insert_with(|| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(src.file),
                        source: wgpu::ShaderSource::Wgsl(src.source.into()),
                    })
                })
                .clone()
        };
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(src.entry),
            layout: None,
            module: &module,
            entry_point: Some(src.entry),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: src.constants,
                // Every kernel writes its workgroup memory before reading it.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(error) = pollster::block_on(scope.pop()) {
            return Err(Error::Gpu {
                op: "compiling a kernel",
                message: format!("{} in {}: {error}", src.entry, src.file),
            });
        }
        pipelines.insert(kernel, pipeline.clone());
        Ok(pipeline)
    }

    /// Records `dispatches` in order into one command encoder and submits it once.
    ///
    /// Does not wait: read a tensor back (or call [`Gpu::synchronize`]) to wait.
    pub fn run(&self, dispatches: &[&Dispatch]) -> Result<()> {
        let mut encoder = self
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("run"),
                timestamp_writes: None,
            });
            for dispatch in dispatches {
                dispatch.record(&mut pass);
            }
        }
        self.submit(encoder.finish());
        self.take_errors("run")
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
    /// Binds `params` (a uniform at binding 0) and `buffers` (each at its binding index) to
    /// `kernel`, over `workgroups` workgroups numbered linearly (the shader rebuilds the
    /// linear index as `x + num_workgroups.x * y`).
    pub(crate) fn new(
        gpu: &Gpu,
        kernel: Kernel,
        params: &[u8],
        tensors: &[(u32, &Tensor)],
        workgroups: usize,
    ) -> Result<Self> {
        let pipeline = gpu.pipeline(kernel)?;
        let params = GpuBuffer::uniform(gpu, "params", params);
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
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
            workgroups: grid(gpu, workgroups)?,
            _params: params,
        })
    }

    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        let [x, y, z] = self.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
}

/// Folds a linear workgroup count into an (x, y, 1) grid within the per-dimension limit.
fn grid(gpu: &Gpu, workgroups: usize) -> Result<[u32; 3]> {
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
    Ok([x as u32, y as u32, 1])
}
