//! The GPU context: instance, adapter choice, device and queue, read top to bottom.
//!
//! Adapter choice, in order:
//! 1. `WGPU_BACKEND` (e.g. `vulkan`, `gl`, `metal`, `dx12`) limits the backends searched.
//! 2. `WGPU_ADAPTER_NAME` keeps only adapters whose name contains it (case-insensitive);
//!    if none does, [`Gpu::new`] returns [`Error::NoAdapter`] listing what exists.
//! 3. `WGPU_POWER_PREF=high` or `low` puts discrete or integrated GPUs first.
//! 4. Otherwise: discrete > integrated > virtual > CPU (software) > other, and among equals
//!    Vulkan > Metal > DX12 > GL, so the software fallback is lavapipe (Vulkan) before
//!    llvmpipe (GL).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::device::pipeline_cache::{self, DiskPipelineCache};
pub(crate) use crate::device::scope::block_on;
use crate::error::{Error, Result};

static NEXT_GPU_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// What makes a compiled pipeline: the shader file, the entry point and the values of its
/// override constants (as bits). Pipelines are cached by this data, not by which op asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub file: &'static str,
    pub entry: &'static str,
    pub constants: Vec<(&'static str, u64)>,
}

/// A handle to the device every tensor and kernel of a model lives on. Cheap to clone.
///
/// ```no_run
/// let gpu = wgpu_mlp::Gpu::new()?; // the best adapter: a GPU, else the software fallback
/// println!("{} ({:?}), {} MiB per tensor", gpu.adapter_name(), gpu.backend(), gpu.max_binding_bytes() >> 20);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone)]
pub struct Gpu {
    pub(crate) inner: Arc<GpuInner>,
}

pub(crate) struct GpuInner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// Unique in the process: keys state other modules keep per device (matmul tuning).
    pub id: u64,
    pub limits: wgpu::Limits,
    pub features: wgpu::Features,
    pub modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    pub pipelines: Mutex<HashMap<PipelineKey, wgpu::ComputePipeline>>,
    pub stats: Arc<Stats>,
    /// Errors reported by wgpu outside any error scope; surfaced at the next sync.
    pub uncaptured: Arc<Mutex<Vec<String>>>,
    /// Compiled pipelines kept on disk between processes, where the device offers it.
    pub pipeline_cache: Option<DiskPipelineCache>,
}

impl Drop for GpuInner {
    fn drop(&mut self) {
        if let Some(cache) = &self.pipeline_cache {
            cache.save();
        }
    }
}

/// Counters of what the library has asked of the device.
#[derive(Default, Debug)]
pub(crate) struct Stats {
    pub live_buffers: AtomicUsize,
    pub live_bytes: AtomicU64,
    pub submits: AtomicUsize,
    pub dispatches: AtomicU64,
}

/// A snapshot of the library's GPU resource counters (see [`Gpu::stats`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuStats {
    /// Buffers alive right now (tensors, parameter blocks, uniforms).
    pub live_buffers: usize,
    /// Bytes held by those buffers.
    pub live_bytes: u64,
    /// Queue submissions made so far.
    pub submits: usize,
    /// Kernel dispatches recorded so far (counted as each is recorded into a pass, so a
    /// step's launches are measured, not taken from its schedule).
    pub dispatches: u64,
}

/// Which kind of device an adapter is (mirrors `wgpu::DeviceType`).
pub use wgpu::DeviceType;

#[cfg(not(target_arch = "wasm32"))]
fn type_rank(device_type: DeviceType, power: Option<wgpu::PowerPreference>) -> u32 {
    use wgpu::PowerPreference as P;
    match (power, device_type) {
        (Some(P::LowPower), DeviceType::IntegratedGpu) => 0,
        (Some(P::LowPower), DeviceType::DiscreteGpu) => 1,
        (_, DeviceType::DiscreteGpu) => 0,
        (_, DeviceType::IntegratedGpu) => 1,
        (_, DeviceType::VirtualGpu) => 2,
        (_, DeviceType::Cpu) => 3,
        (_, DeviceType::Other) => 4,
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn backend_rank(backend: wgpu::Backend) -> u32 {
    match backend {
        wgpu::Backend::Vulkan => 0,
        wgpu::Backend::Metal => 1,
        wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 3,
        _ => 4,
    }
}

/// The adapters of `backends`, from an instance that starts only those backends.
#[cfg(not(target_arch = "wasm32"))]
async fn enumerate(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    if backends.is_empty() {
        return Vec::new();
    }
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.backends = backends;
    wgpu::Instance::new(descriptor).enumerate_adapters(backends).await
}

/// In a browser, the page's one WebGPU adapter (browsers do not enumerate adapters; a high
/// performance one is asked for, as a page that trains wants the discrete GPU).
#[cfg(target_arch = "wasm32")]
async fn candidates() -> Result<Vec<wgpu::Adapter>> {
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wgpu::Backends::BROWSER_WEBGPU;
    let adapter = wgpu::Instance::new(descriptor)
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| Error::NoAdapter {
            detail: format!("this browser offers no WebGPU adapter ({e}): use a browser with WebGPU enabled"),
        })?;
    Ok(vec![adapter])
}

/// The adapters of the environment's backends that match its filters, best first (see the
/// module docs); never empty.
#[cfg(not(target_arch = "wasm32"))]
async fn candidates() -> Result<Vec<wgpu::Adapter>> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    // GL last, and only when nothing else answered: there is no reason to start EGL when
    // Vulkan offers an adapter. (The "XDG_RUNTIME_DIR is invalid" lines seen on headless
    // machines come from Mesa 22's Vulkan device-select layer, not from us: see README.)
    let mut adapters = enumerate(backends - wgpu::Backends::GL).await;
    if adapters.is_empty() && backends.contains(wgpu::Backends::GL) {
        adapters = enumerate(wgpu::Backends::GL).await;
    }
    if adapters.is_empty() {
        return Err(Error::NoAdapter {
            detail: format!("wgpu enumerated no adapter for backends {backends:?}"),
        });
    }
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted_lc = wanted.to_lowercase();
        let seen: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        adapters.retain(|a| a.get_info().name.to_lowercase().contains(&wanted_lc));
        if adapters.is_empty() {
            return Err(Error::NoAdapter {
                detail: format!("WGPU_ADAPTER_NAME={wanted:?} matches none of the adapters {seen:?}"),
            });
        }
    }

    let power = wgpu::PowerPreference::from_env();
    adapters.sort_by_key(|a| {
        let info = a.get_info();
        (type_rank(info.device_type, power), backend_rank(info.backend))
    });
    Ok(adapters)
}

impl Gpu {
    /// Opens the best adapter as described in the module docs.
    ///
    /// ```no_run
    /// let gpu = wgpu_mlp::Gpu::new()?;
    /// println!("{} ({:?}, {:?})", gpu.adapter_name(), gpu.backend(), gpu.device_type());
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn new() -> Result<Self> {
        block_on("opening the adapter", Self::new_async())
    }

    /// Every adapter [`Gpu::new`] would consider (the environment's filters applied), best
    /// first: the first is the one it opens.
    ///
    /// ```no_run
    /// for info in wgpu_mlp::Gpu::adapters()? {
    ///     println!("{} ({:?}, {:?}, driver {})", info.name, info.backend, info.device_type, info.driver_info);
    /// }
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn adapters() -> Result<Vec<wgpu::AdapterInfo>> {
        let adapters = block_on("listing adapters", candidates())?;
        Ok(adapters.iter().map(wgpu::Adapter::get_info).collect())
    }

    /// [`Gpu::new`] for async code: the way to open the device in a browser (wasm32 with
    /// the `web` feature), where nothing may block.
    ///
    /// ```no_run
    /// # async fn open() -> wgpu_mlp::Result<()> {
    /// let gpu = wgpu_mlp::Gpu::new_async().await?;
    /// println!("{}", gpu.adapter_name());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn new_async() -> Result<Self> {
        let adapter = candidates().await?.swap_remove(0);
        let info = adapter.get_info();

        // Ask for what the adapter really offers, not the downlevel defaults: bigger
        // bindings and workgroups matter for large layers.
        let mut wanted_features = wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY;
        if pipeline_cache::wanted(&info) {
            wanted_features |= wgpu::Features::PIPELINE_CACHE;
        }
        let features = adapter.features() & wanted_features;
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-mlp"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::DeviceRequest {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;

        // Without a handler wgpu panics on an uncaptured error; keep it for the next sync.
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut errors) = sink.lock() {
                errors.push(e.to_string());
            }
        }));
        let lost = uncaptured.clone();
        device.set_device_lost_callback(move |reason, message| {
            if let Ok(mut errors) = lost.lock() {
                errors.push(format!("device lost ({reason:?}): {message}"));
            }
        });

        let pipeline_cache = DiskPipelineCache::open(&device, &info);
        Ok(Gpu {
            inner: Arc::new(GpuInner {
                pipeline_cache,
                device,
                queue,
                info,
                id: NEXT_GPU_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                limits,
                features,
                modules: Mutex::new(HashMap::new()),
                pipelines: Mutex::new(HashMap::new()),
                stats: Arc::new(Stats::default()),
                uncaptured,
            }),
        })
    }

    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `NVIDIA H100`.
    pub fn adapter_name(&self) -> &str {
        &self.inner.info.name
    }

    /// The backend in use (Vulkan, Metal, DX12, GL).
    pub fn backend(&self) -> wgpu::Backend {
        self.inner.info.backend
    }

    /// Discrete, integrated, virtual, CPU (software) or other.
    pub fn device_type(&self) -> DeviceType {
        self.inner.info.device_type
    }

    /// Whether the adapter is a software rasterizer running on the CPU (lavapipe, llvmpipe).
    pub fn is_software(&self) -> bool {
        self.inner.info.device_type == DeviceType::Cpu
    }

    /// What the driver says of the adapter: name, vendor, device, type, driver and version.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    /// The limits the device was opened with: the adapter's own.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// The optional features enabled on the device (subgroups, timestamps, pipeline cache).
    pub fn features(&self) -> wgpu::Features {
        self.inner.features
    }

    /// The smallest subgroup the adapter may run (0 where it does not say).
    pub(crate) fn adapter_min_subgroup_size(&self) -> u32 {
        self.inner.info.subgroup_min_size
    }

    /// Whether subgroup operations were enabled on this device.
    pub fn has_subgroups(&self) -> bool {
        self.inner.features.contains(wgpu::Features::SUBGROUP)
    }

    /// The file where this device's compiled pipelines are kept between processes, if it
    /// keeps them (Vulkan adapters; `WGPU_MLP_PIPELINE_CACHE=0` turns it off). Written when
    /// the last handle to this `Gpu` is dropped, if new kernels were compiled.
    ///
    /// ```no_run
    /// let gpu = wgpu_mlp::Gpu::new()?;
    /// println!("pipeline cache: {:?}", gpu.pipeline_cache_file());
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn pipeline_cache_file(&self) -> Option<&std::path::Path> {
        self.inner.pipeline_cache.as_ref().map(|c| c.path.as_path())
    }

    /// The largest tensor, in bytes, one kernel can bind.
    pub fn max_binding_bytes(&self) -> u64 {
        self.inner
            .limits
            .max_storage_buffer_binding_size
            .min(self.inner.limits.max_buffer_size)
    }

    /// Offsets of tensors packed into one buffer are multiples of this many f32 elements.
    pub(crate) fn binding_alignment(&self) -> usize {
        (self.inner.limits.min_storage_buffer_offset_alignment as usize / 4).max(1)
    }

    /// The library's resource counters: live buffers and bytes, submits and dispatches so far.
    pub fn stats(&self) -> GpuStats {
        let s = &self.inner.stats;
        GpuStats {
            live_buffers: s.live_buffers.load(Ordering::Relaxed),
            live_bytes: s.live_bytes.load(Ordering::Relaxed),
            submits: s.submits.load(Ordering::Relaxed),
            dispatches: s.dispatches.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    /// Counts one recorded kernel dispatch.
    pub(crate) fn count_dispatch(&self) {
        self.inner.stats.dispatches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub(crate) fn max_workgroups_per_dim(&self) -> u32 {
        self.inner.limits.max_compute_workgroups_per_dimension
    }

    /// Submits one command buffer and counts it.
    pub(crate) fn submit(&self, commands: wgpu::CommandBuffer) {
        self.inner.queue.submit(Some(commands));
        self.inner.stats.submits.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits for all submitted work and turns any error wgpu reported since the last
    /// check into an [`Error::Gpu`].
    pub fn synchronize(&self) -> Result<()> {
        self.wait("synchronize")
    }

    /// [`Gpu::synchronize`] for async code: resolves when the work submitted so far has
    /// finished (in a browser, when the page's GPU says so), then reports any error wgpu
    /// raised since the last check.
    pub async fn synchronize_async(&self) -> Result<()> {
        self.work_done("synchronize").await?;
        self.take_errors("synchronize")
    }

    /// Resolves when the queue's submitted work is done. Natively the device is polled
    /// until it is; in a browser the browser runs the callback from its event loop.
    pub(crate) async fn work_done(&self, op: &'static str) -> Result<()> {
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        self.inner.queue.on_submitted_work_done(move || {
            sender.send(()).ok();
        });
        if !cfg!(target_arch = "wasm32") {
            self.poll_until_idle(op)?;
        }
        receiver.receive().await.ok_or_else(|| Error::Gpu {
            op,
            message: "the device was lost before its work finished".into(),
        })
    }

    /// Waits for the submitted work (natively; in a browser, [`Error::Blocking`]) and reports
    /// any error wgpu raised since the last check.
    pub(crate) fn wait(&self, op: &'static str) -> Result<()> {
        if cfg!(target_arch = "wasm32") {
            return Err(Error::Blocking { op });
        }
        self.poll_until_idle(op)?;
        self.take_errors(op)
    }

    /// Polls the device until the work submitted so far is done (natively; a browser's
    /// device is polled by the browser).
    fn poll_until_idle(&self, op: &'static str) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(drop)
            .map_err(|e| Error::Gpu {
                op,
                message: e.to_string(),
            })
    }

    pub(crate) fn take_errors(&self, op: &'static str) -> Result<()> {
        let mut errors = self.inner.uncaptured.lock().map_err(|_| Error::Gpu {
            op,
            message: "error log poisoned".into(),
        })?;
        if errors.is_empty() {
            return Ok(());
        }
        let message = errors.join("; ");
        errors.clear();
        Err(Error::Gpu { op, message })
    }
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("device_type", &self.inner.info.device_type)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wgpu validation error outside any error scope reaches the uncaptured-error handler
    /// and comes out of the next sync as `Error::Gpu`, not as a panic.
    #[test]
    fn uncaptured_device_errors_become_errors() {
        let gpu = Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)");
        // MAP_READ together with MAP_WRITE is invalid: wgpu reports a validation error.
        let _bad = gpu.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("deliberately invalid"),
            size: 6,
            usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::MAP_READ,
            mapped_at_creation: true,
        });
        match gpu.synchronize() {
            Err(Error::Gpu { op, message }) => {
                assert_eq!(op, "synchronize");
                assert!(!message.is_empty());
            }
            other => panic!("expected Error::Gpu, got {other:?}"),
        }
        // The error was consumed: the device keeps working.
        assert!(gpu.synchronize().is_ok());
    }
}
