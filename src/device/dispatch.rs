//! Running kernels: each [`Kernel`] (declared in its op's home, `src/ops/X.rs`) is compiled
//! once per device into a pipeline, cached by its shader file, entry point and constants.
//! A [`Dispatch`] is one kernel bound to its buffers, built once and recorded many times.

use crate::device::gpu::{Gpu, PipelineKey};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::device::kernel::{Kernel, PARAMS_BINDING, Shader};
use crate::device::scope::Scopes;
use crate::device::tensor::{GpuBuffer, Tensor};
use crate::error::{Error, Result};

fn lock_error<T>(_: T) -> Error {
    Error::Gpu {
        op: "pipeline cache",
        message: "cache lock poisoned".into(),
    }
}

impl Gpu {
    /// A shader's WGSL as this device's compiler wants it: a browser's (Chrome's Tint)
    /// compiles subgroup operations only after `enable subgroups;`, a directive naga does not
    /// need (it takes the feature from the device), and which a device without the feature
    /// refuses (where no subgroup kernel is ever chosen).
    fn wgsl_for_device(&self, source: String) -> String {
        let browser = self.backend() == wgpu::Backend::BrowserWebGpu;
        if browser && self.has_subgroups() && source.contains("subgroup") {
            return format!("enable subgroups;\n{source}");
        }
        source
    }

    /// The compiled pipeline for `kernel`, compiling its shader file on first use.
    pub(crate) fn pipeline(&self, kernel: Kernel) -> Result<wgpu::ComputePipeline> {
        let shader = kernel.shader;
        let constants = kernel.constants_for(self);
        let key = PipelineKey {
            file: shader.file,
            entry: kernel.entry,
            constants: constants.iter().map(|&(name, value)| (name, value.to_bits())).collect(),
        };
        let mut pipelines = self.inner.pipelines.lock().map_err(lock_error)?;
        if let Some(pipeline) = pipelines.get(&key) {
            return Ok(pipeline.clone());
        }
        let device = self.device();
        let scope = Scopes::push(device, &[wgpu::ErrorFilter::Validation]);
        let module = {
            let mut modules = self.inner.modules.lock().map_err(lock_error)?;
            modules
                .entry(shader.file)
                .or_insert_with(|| {
                    let descriptor = wgpu::ShaderModuleDescriptor {
                        label: Some(shader.file),
                        source: wgpu::ShaderSource::Wgsl(self.wgsl_for_device(shader.source()).into()),
                    };
                    if shader.trusted {
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
            label: Some(kernel.entry),
            layout: None,
            module: &module,
            entry_point: Some(kernel.entry),
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
        if let Some(error) = scope.pop() {
            return Err(Error::Gpu {
                op: "compiling a kernel",
                message: format!("{} in {}: {error}", kernel.entry, shader.file),
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
        check_writable_aliasing(kernel, tensors)?;
        let pipeline = gpu.pipeline(kernel)?;
        let params = GpuBuffer::storage(gpu, "params", params)?;
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: PARAMS_BINDING,
            resource: params.buffer.as_entire_binding(),
        }];
        entries.extend(tensors.iter().map(|&(binding, tensor)| wgpu::BindGroupEntry {
            binding,
            resource: tensor.binding(),
        }));
        let device = gpu.device();
        let scope = Scopes::push(device, &[wgpu::ErrorFilter::Validation]);
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("dispatch"),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        if let Some(error) = scope.pop() {
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

/// WebGPU refuses a dispatch whose writable storage binding overlaps another of its bindings
/// (native drivers take it): checked here on every adapter, so the native tests keep every
/// kernel runnable in a browser.
fn check_writable_aliasing(kernel: Kernel, tensors: &[(u32, &Tensor)]) -> Result<()> {
    let writable = writable_bindings(kernel.shader);
    for (i, &(binding, tensor)) in tensors.iter().enumerate() {
        if !writable.contains(&binding) {
            continue;
        }
        if let Some(&(other, _)) = tensors
            .iter()
            .enumerate()
            .find(|&(j, (_, t))| j != i && tensor.overlaps(t))
            .map(|(_, pair)| pair)
        {
            return Err(Error::Gpu {
                op: "binding a kernel",
                message: format!(
                    "{} in {}: writable binding {binding} overlaps binding {other} (the same buffer), \
                     which WebGPU refuses",
                    kernel.entry, kernel.shader.file
                ),
            });
        }
    }
    Ok(())
}

/// The bindings a shader declares `read_write`, read from its source once per file.
fn writable_bindings(shader: &'static Shader) -> Vec<u32> {
    static SEEN: Mutex<Option<HashMap<&'static str, Vec<u32>>>> = Mutex::new(None);
    let parse = || {
        let source = shader.source();
        source
            .split("@binding(")
            .skip(1)
            .filter_map(|rest| {
                let (number, declaration) = rest.split_once(')')?;
                let declaration = declaration.split(';').next()?;
                declaration.contains("read_write").then(|| number.trim().parse().ok())?
            })
            .collect::<Vec<u32>>()
    };
    match SEEN.lock() {
        Ok(mut seen) => seen
            .get_or_insert_default()
            .entry(shader.file)
            .or_insert_with(parse)
            .clone(),
        Err(_) => parse(),
    }
}
