//! GPU-resident f32 tensors: a buffer plus a shape. Upload from host slices; `to_vec` is the
//! only read-back path.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wgpu::util::DeviceExt;

use crate::device::gpu::{Gpu, Stats};
use crate::device::scope::Scopes;
use crate::error::{Error, Result};

/// A device buffer the library counts while it is alive (see [`Gpu::stats`]).
pub(crate) struct GpuBuffer {
    pub buffer: wgpu::Buffer,
    stats: Arc<Stats>,
}

impl GpuBuffer {
    /// A storage buffer initialised from `bytes` (must be non-empty, a multiple of 4). Running
    /// out of device memory, or any other error wgpu reports, is an [`Error::Gpu`].
    pub fn storage(gpu: &Gpu, label: &str, bytes: &[u8]) -> Result<Self> {
        let device = gpu.device();
        let scopes = Scopes::push(device, &[wgpu::ErrorFilter::OutOfMemory, wgpu::ErrorFilter::Validation]);
        let buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        });
        if let Some(error) = scopes.pop() {
            return Err(Error::Gpu {
                op: "allocating a buffer",
                message: format!("{} bytes for {label}: {error}", bytes.len()),
            });
        }
        let stats = gpu.inner.stats.clone();
        stats.live_buffers.fetch_add(1, Ordering::Relaxed);
        stats.live_bytes.fetch_add(buffer.size(), Ordering::Relaxed);
        Ok(GpuBuffer { buffer, stats })
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        self.stats.live_buffers.fetch_sub(1, Ordering::Relaxed);
        self.stats.live_bytes.fetch_sub(self.buffer.size(), Ordering::Relaxed);
    }
}

/// An f32 tensor resident on the GPU, stored row-major.
///
/// ```no_run
/// use wgpu_mlp::{Gpu};
/// use wgpu_mlp::raw::{Tensor};
/// let gpu = Gpu::new()?;
/// let x = Tensor::from_slice(&gpu, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])?;
/// assert_eq!(x.to_vec()?, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
pub struct Tensor {
    pub(crate) gpu: Gpu,
    storage: Arc<GpuBuffer>,
    /// First element of this tensor inside `storage` (a view into a shared block).
    offset: usize,
    shape: Vec<usize>,
    /// A stack of `models` tensors of `shape`, model m at `offset + m · stride` (batched
    /// training); 1 for a plain tensor.
    models: usize,
    stride: usize,
}

fn element_count(op: &'static str, shape: &[usize]) -> Result<usize> {
    if shape.is_empty() || shape.contains(&0) {
        return Err(Error::shape(
            op,
            "tensor",
            "a shape with at least one dimension, none of them 0",
            format!("{shape:?}"),
        ));
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::shape(op, "tensor", "an element count that fits usize", format!("{shape:?}")))
}

impl Tensor {
    /// Uploads `data` (row-major) as a tensor of `shape`.
    pub fn from_slice(gpu: &Gpu, shape: &[usize], data: &[f32]) -> Result<Self> {
        let len = element_count("Tensor::from_slice", shape)?;
        if data.len() != len {
            return Err(Error::shape(
                "Tensor::from_slice",
                "data length",
                format!("{len} elements for shape {shape:?}"),
                data.len(),
            ));
        }
        check_binding_size(gpu, "Tensor::from_slice", "tensor", len)?;
        Ok(Tensor {
            gpu: gpu.clone(),
            storage: Arc::new(GpuBuffer::storage(gpu, "tensor", bytemuck::cast_slice(data))?),
            offset: 0,
            shape: shape.to_vec(),
            models: 1,
            stride: 0,
        })
    }

    /// A buffer of u32 values (an index list for the gather kernel) in a tensor's clothing:
    /// kernels read it as `array<u32>`.
    pub(crate) fn from_u32(gpu: &Gpu, shape: &[usize], data: &[u32]) -> Result<Self> {
        Self::from_slice(gpu, shape, bytemuck::cast_slice(data))
    }

    /// Overwrites a tensor made by [`Tensor::from_u32`].
    pub(crate) fn write_u32(&self, data: &[u32]) -> Result<()> {
        self.write(bytemuck::cast_slice(data))
    }

    /// A tensor of `shape` with every element equal to `value` (NaN to poison outputs in tests).
    pub fn full(gpu: &Gpu, shape: &[usize], value: f32) -> Result<Self> {
        let len = element_count("Tensor::full", shape)?;
        check_binding_size(gpu, "Tensor::full", "tensor", len)?;
        Self::from_slice(gpu, shape, &vec![value; len])
    }

    /// A tensor of zeros.
    pub fn zeros(gpu: &Gpu, shape: &[usize]) -> Result<Self> {
        Self::full(gpu, shape, 0.0)
    }

    /// Four zeros for a binding its kernel never touches in this dispatch (large enough for a
    /// vec4 view): a buffer of its own, because WebGPU refuses a writable binding that
    /// overlaps another binding of the same dispatch.
    pub(crate) fn scratch(gpu: &Gpu) -> Result<Self> {
        Self::zeros(gpu, &[4])
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Always false: zero-sized tensors are rejected at creation.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Overwrites the contents from `data` (same element count), without reallocating.
    pub fn write(&self, data: &[f32]) -> Result<()> {
        let (len, total) = (self.len(), self.len() * self.models);
        if data.len() != total {
            return Err(Error::shape(
                "Tensor::write",
                "data length",
                format!("{total} elements for {} × shape {:?}", self.models, self.shape),
                data.len(),
            ));
        }
        for (m, chunk) in data.chunks(len).enumerate() {
            self.gpu.queue().write_buffer(
                &self.storage.buffer,
                ((self.offset + m * self.stride) * 4) as u64,
                bytemuck::cast_slice(chunk),
            );
        }
        Ok(())
    }

    /// Reads the values back (every model's, model after model, for a stack). In a browser
    /// this is [`Error::Blocking`]: await [`Tensor::to_vec_async`] there.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        crate::device::gpu::block_on("Tensor::to_vec", self.to_vec_async())
    }

    /// [`Tensor::to_vec`] for async code (the way to read back in a browser).
    ///
    /// ```no_run
    /// # async fn read() -> wgpu_mlp::Result<()> {
    /// let gpu = wgpu_mlp::Gpu::new_async().await?;
    /// let x = wgpu_mlp::raw::Tensor::from_slice(&gpu, &[2], &[1.0, 2.0])?;
    /// assert_eq!(x.to_vec_async().await?, [1.0, 2.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn to_vec_async(&self) -> Result<Vec<f32>> {
        let span = read_buffer_async(&self.gpu, &self.storage.buffer, self.offset, self.span()).await?;
        if self.models == 1 || self.stride == self.len() {
            return Ok(span);
        }
        Ok((0..self.models)
            .flat_map(|m| span[m * self.stride..m * self.stride + self.len()].iter().copied())
            .collect())
    }

    /// Records a buffer copy of this tensor's span into `dst`'s (as much as both hold).
    pub(crate) fn copy_to(&self, dst: &Tensor, encoder: &mut wgpu::CommandEncoder) {
        encoder.copy_buffer_to_buffer(
            &self.storage.buffer,
            (self.offset * 4) as u64,
            &dst.storage.buffer,
            (dst.offset * 4) as u64,
            (self.span().min(dst.span()) * 4) as u64,
        );
    }

    /// Whether this tensor's binding range and `other`'s share an element of one buffer.
    pub(crate) fn overlaps(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
            && self.offset < other.offset + other.span()
            && other.offset < self.offset + self.span()
    }

    /// The tensor as a kernel binding (its own range of the underlying buffer).
    pub(crate) fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.storage.buffer,
            offset: (self.offset * 4) as u64,
            size: std::num::NonZeroU64::new((self.span() * 4) as u64),
        })
    }

    /// A view of `shape` starting `offset` elements into this tensor's buffer; the caller
    /// keeps `offset` aligned to [`Gpu::binding_alignment`] and in range.
    pub(crate) fn view(&self, offset: usize, shape: &[usize]) -> Tensor {
        Tensor {
            gpu: self.gpu.clone(),
            storage: self.storage.clone(),
            offset: self.offset + offset,
            shape: shape.to_vec(),
            models: 1,
            stride: 0,
        }
    }

    /// The same start seen as a stack of `models` tensors of this shape, `stride` elements
    /// apart (the caller keeps the stack inside the buffer).
    pub(crate) fn stack(&self, models: usize, stride: usize) -> Tensor {
        Tensor {
            models,
            stride: if models > 1 { stride } else { 0 },
            ..self.view(0, &self.shape)
        }
    }

    /// A zero stack of `models` contiguous tensors of `shape`.
    pub(crate) fn stacked_zeros(gpu: &Gpu, models: usize, shape: &[usize]) -> Result<Self> {
        let len = element_count("Tensor::stacked_zeros", shape)?;
        let all = Tensor::zeros(gpu, &[models.max(1), len])?;
        Ok(all.view(0, shape).stack(models, len))
    }

    /// The same elements (per model) seen with another shape of the same length, stacking
    /// included.
    pub(crate) fn reshape(&self, shape: &[usize]) -> Tensor {
        self.view(0, shape).stack(self.models, self.stride)
    }

    /// One plain view over this tensor's binding range and `other`'s (views of one buffer),
    /// with where each starts inside it: one binding for two ranges that overlap, as WebGPU
    /// wants when either is written.
    pub(crate) fn covering(&self, other: &Tensor) -> (Tensor, usize, usize) {
        let start = self.offset.min(other.offset);
        let end = (self.offset + self.span()).max(other.offset + other.span());
        let view = Tensor {
            offset: start,
            ..self.view(0, &[end - start])
        };
        (view, self.offset - start, other.offset - start)
    }

    /// Another handle on the same elements, stacking included.
    pub(crate) fn alias(&self) -> Tensor {
        self.stack(self.models, self.stride)
    }

    /// How many tensors this stack holds (1 for a plain tensor).
    pub(crate) fn models(&self) -> usize {
        self.models
    }

    /// Elements from one model's start to the next (0 for a plain tensor).
    pub(crate) fn model_stride(&self) -> usize {
        self.stride
    }

    /// Elements from the first model's start to the end of the last.
    pub(crate) fn span(&self) -> usize {
        (self.models - 1) * self.stride + self.len()
    }

    /// `(rows, cols)` of a rank-2 tensor, or an error naming `op` and `what`.
    pub(crate) fn dims2(&self, op: &'static str, what: &str) -> Result<(usize, usize)> {
        match self.shape[..] {
            [rows, cols] => Ok((rows, cols)),
            _ => Err(Error::shape(
                op,
                what,
                "a rank-2 shape [rows, cols]",
                format!("{:?}", self.shape),
            )),
        }
    }

    pub(crate) fn same_gpu(&self, gpu: &Gpu) -> bool {
        Arc::ptr_eq(&self.gpu.inner, &gpu.inner)
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor").field("shape", &self.shape).finish()
    }
}

pub(crate) fn check_binding_size(gpu: &Gpu, op: &'static str, what: &str, elements: usize) -> Result<()> {
    let bytes = (elements as u64).saturating_mul(4);
    let limit = gpu.max_binding_bytes();
    if bytes > limit {
        return Err(Error::TooLarge {
            op,
            what: what.to_string(),
            bytes,
            limit,
        });
    }
    Ok(())
}

/// Copies `len` f32 values starting at element `offset` of `source` into a fresh staging
/// buffer, maps it and returns them; the staging buffer is dropped before it resolves.
/// Natively the device is polled until the copy is done, so the map is ready at the first
/// poll; in a browser the map resolves from the page's event loop.
pub(crate) async fn read_buffer_async(gpu: &Gpu, source: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
    let bytes = (len * 4) as u64;
    let staging = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("read-back"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device().create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("read-back"),
    });
    encoder.copy_buffer_to_buffer(source, (offset * 4) as u64, &staging, 0, bytes);
    gpu.submit(encoder.finish());

    let slice = staging.slice(..);
    let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        sender.send(result).ok();
    });
    if !cfg!(target_arch = "wasm32") {
        gpu.wait("read-back")?;
    }
    let mapped = receiver.receive().await;
    gpu.take_errors("read-back")?;
    match mapped {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            return Err(Error::Gpu {
                op: "read-back",
                message: e.to_string(),
            });
        }
        None => {
            return Err(Error::Gpu {
                op: "read-back",
                message: "the map callback never ran".into(),
            });
        }
    }
    let values = {
        let view = slice.get_mapped_range().map_err(|e| Error::Gpu {
            op: "read-back",
            message: e.to_string(),
        })?;
        bytemuck::pod_collect_to_vec::<u8, f32>(&view)
    };
    staging.unmap();
    Ok(values)
}
