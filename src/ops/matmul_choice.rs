//! The matmul kernels and which one runs a product: fixed rules measured on lavapipe for CPU
//! adapters, timing (`autotune`) on GPUs. Apart from the kernels' builders (`matmul.rs`),
//! which the timing calls, so neither module needs the other.

use super::autotune;
use crate::device::gpu::Gpu;
use crate::device::kernel::wgsl_consts;

wgsl_consts! {
    pub(super) fn tile_constants;
    /// Outputs each way of a `matmul_naive` workgroup (one per invocation).
    const NAIVE_TILE: u32 = 16;
    /// Outputs each way of a `matmul_tiled` workgroup (its invocations hold 8×8 each).
    const TILED_TILE: u32 = 128;
    /// Invocations across a `matmul_lanes`, `matmul_subgroup` or `matmul_vec4` workgroup:
    /// one SIMD group on lavapipe, each lane 4 (lanes, subgroup) or 8 (vec4) columns wide.
    const LANES: u32 = 8;
}

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
            MatmulKernel::Naive => (NAIVE_TILE as usize, NAIVE_TILE as usize),
            MatmulKernel::Vec4 => (8 * vec4_workgroup_rows(gpu) as usize, 8 * LANES as usize),
            MatmulKernel::Tiled => (TILED_TILE as usize, TILED_TILE as usize),
            MatmulKernel::Lanes => (4, 4 * LANES as usize),
            MatmulKernel::LanesDown => (4 * LANES as usize, 4),
            MatmulKernel::Subgroup => (4 * LANES as usize, 8 * LANES as usize),
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

/// Rows of invocations in a `matmul_vec4` workgroup: 2 on CPU adapters, where each
/// workgroup runs on one core and small layers must still spread over the cores; 8 on GPUs.
pub(super) fn vec4_workgroup_rows(gpu: &Gpu) -> u32 {
    if gpu.is_software() { 2 } else { 8 }
}

impl MatmulKernel {
    /// The kernel for `C (M,N) = op(A)·op(B)` on `gpu`, chosen with compile time in mind
    /// as well as run time:
    /// - CPU adapters: [`MatmulKernel::Subgroup`] for outputs 32 or more columns wide where
    ///   the adapter has subgroups of 8 or more (lavapipe does); without subgroups
    ///   [`MatmulKernel::Vec4`] for products of at least [`CPU_BLOCKED_MIN_WORK`]
    ///   multiply-adds where the shape allows; the rest [`MatmulKernel::Lanes`]
    ///   ([`MatmulKernel::LanesDown`] for outputs narrower than 32 columns). Measured on
    ///   lavapipe (Mesa 25, 2 cores; BENCHMARKS.md): on 128×784×256 `Subgroup` runs ~38
    ///   GFLOP/s, `Vec4` ~20, `Lanes` ~9, and on a cold shader cache they compile in ~1.0,
    ///   ~0.7 and ~0.15 s per layout: mnist's step 13.4 → 4.7 ms, wide's 501 → 142 ms, 40
    ///   stacked digits-sized nets 5.2 → 3.8 ms, for about two seconds more on a first run.
    ///   The choice goes by one model's shape, so a model stacked runs the kernel it runs
    ///   alone, to the bit. (Until their stores were rolled into a loop, the unrolled
    ///   kernels took 25 s to minutes per layout to compile there, and `Lanes` alone was the
    ///   right choice.)
    /// - GPUs: by measurement (`autotune`): the first product of each shape bucket (the
    ///   layout and each dimension rounded up to a power of two) times `Vec4` and `Tiled` on
    ///   scratch operands and keeps the faster, in memory and in a file per adapter and driver
    ///   beside the pipeline cache, so later runs on the machine choose alike without timing.
    ///   With `WGPU_MLP_AUTOTUNE=0`, the fixed rule measured on an H100 (BENCHMARKS.md):
    ///   [`MatmulKernel::Tiled`] for A·Bᵀ with 128 or more outputs each way and for products
    ///   of at least [`TILED_MIN_WORK`] multiply-adds, `Vec4` for the rest where the shape
    ///   allows, `Tiled` otherwise. (`WGPU_MLP_AUTOTUNE=1` tunes on CPU adapters too.)
    ///
    /// `WGPU_MLP_MATMUL=<kernel name>` (e.g. `Vec4`) forces a kernel wherever it supports
    /// the shape, for benchmarking.
    pub fn choose(gpu: &Gpu, layout: MatmulLayout, m: usize, k: usize, n: usize) -> Self {
        if let Some(forced) = forced_kernel().filter(|f| f.available(gpu) && f.supports(layout, m, k, n)) {
            return forced;
        }
        if gpu.is_software() && !autotune::enabled(gpu) {
            return Self::for_cpu_adapter(gpu, layout, m, k, n);
        }
        if autotune::enabled(gpu) {
            return autotune::choose(gpu, layout, (m, k, n), &[MatmulKernel::Vec4, MatmulKernel::Tiled]);
        }
        let wide_abt = layout == MatmulLayout::ABt && m >= 128 && n >= 128;
        if !wide_abt && m * n * k < TILED_MIN_WORK && MatmulKernel::Vec4.supports(layout, m, k, n) {
            MatmulKernel::Vec4
        } else {
            MatmulKernel::Tiled
        }
    }

    pub(crate) fn for_cpu_adapter(gpu: &Gpu, layout: MatmulLayout, m: usize, k: usize, n: usize) -> Self {
        // By the shape of one model's product, never the stack's: a model stacked runs the
        // kernel it runs alone, so the two give the same bits.
        if n >= 32 && MatmulKernel::Subgroup.available(gpu) {
            return MatmulKernel::Subgroup;
        }
        if m * k * n >= CPU_BLOCKED_MIN_WORK && MatmulKernel::Vec4.supports(layout, m, k, n) {
            return MatmulKernel::Vec4;
        }
        if n < 32 && m > n {
            MatmulKernel::LanesDown
        } else {
            MatmulKernel::Lanes
        }
    }

    /// The kernel for a weight gradient with its bias gradient (`rows` = M + 1 outputs
    /// down, N across, K summed): as [`MatmulKernel::choose`], with `Tiled` where that would
    /// fall back to `Lanes` for a large product (on an adapter without subgroups: `Vec4`
    /// cannot add the row of ones); `Tiled` runs mnist's 785×128×256 at ~13 GFLOP/s on
    /// lavapipe against ~9 for `Lanes`.
    pub(crate) fn choose_for_bias_grad(gpu: &Gpu, rows: usize, k: usize, n: usize) -> Self {
        if let Some(forced) = forced_kernel().filter(|&f| f != MatmulKernel::Vec4 && f.available(gpu)) {
            return forced;
        }
        if gpu.is_software() {
            match Self::for_cpu_adapter(gpu, MatmulLayout::AtB, rows, k, n) {
                MatmulKernel::Lanes | MatmulKernel::LanesDown if rows * k * n >= CPU_BLOCKED_MIN_WORK => {
                    MatmulKernel::Tiled
                }
                kernel => kernel,
            }
        } else {
            MatmulKernel::Tiled
        }
    }
}
