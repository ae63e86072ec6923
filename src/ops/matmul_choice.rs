//! Which matmul kernel runs a product: fixed rules measured on lavapipe for CPU adapters,
//! timing (`autotune`) on GPUs. Apart from the kernels' builders (`matmul.rs`), which the
//! timing calls, so neither module needs the other.

use super::autotune;
use super::matmul_kernels::{
    CPU_BLOCKED_MIN_WORK, MatmulKernel, MatmulLayout, TILED_MIN_WORK, TILED_TILE, forced_kernel,
};
use crate::device::gpu::Gpu;

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
    ///   Products that `Tiled` covers with fewer than 256 of its 128×128 tiles (batch-sized
    ///   ones: mnist's forward is 2 tiles, its weight gradient 14) also time the small-tile
    ///   kernels (`Naive`, `Lanes`, `LanesDown`, and `Subgroup` where the adapter has
    ///   subgroups): two workgroups leave a GPU of a hundred cores idle.
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
        if autotune::enabled(gpu)
            && let Some(kernel) = autotune::choose(gpu, layout, (m, k, n), &Self::tuned_candidates(gpu, (m, n), false))
        {
            return kernel;
        }
        if gpu.is_software() {
            return Self::for_cpu_adapter(gpu, layout, m, k, n);
        }
        let wide_abt = layout == MatmulLayout::ABt && m >= 128 && n >= 128;
        if !wide_abt
            && (m as u64) * (n as u64) * (k as u64) < TILED_MIN_WORK
            && MatmulKernel::Vec4.supports(layout, m, k, n)
        {
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
    /// lavapipe against ~9 for `Lanes`. Where kernels are tuned (GPUs), by measurement among
    /// the kernels that add the bias row (every one but `Vec4`).
    pub fn choose_for_bias_grad(gpu: &Gpu, rows: usize, k: usize, n: usize) -> Self {
        if let Some(forced) = forced_kernel().filter(|&f| f != MatmulKernel::Vec4 && f.available(gpu)) {
            return forced;
        }
        let candidates = Self::tuned_candidates(gpu, (rows, n), true);
        if autotune::enabled(gpu)
            && let Some(kernel) = autotune::choose(gpu, MatmulLayout::AtB, (rows, k, n), &candidates)
        {
            // a bucket tuned for a plain product may hold Vec4, which has no bias row
            return if kernel == MatmulKernel::Vec4 {
                MatmulKernel::Tiled
            } else {
                kernel
            };
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

    /// The kernels the autotuner times for an (M, N) output: the large-tile GPU kernels, and
    /// where those leave most of a GPU idle the small-tile ones; without `Vec4` for a bias
    /// gradient.
    fn tuned_candidates(gpu: &Gpu, (m, n): (usize, usize), bias_row: bool) -> Vec<MatmulKernel> {
        let mut candidates = vec![MatmulKernel::Tiled];
        if !bias_row {
            candidates.push(MatmulKernel::Vec4);
        }
        let large_tiles = m.div_ceil(TILED_TILE as usize) * n.div_ceil(TILED_TILE as usize);
        if large_tiles < SMALL_GRID {
            candidates.extend([MatmulKernel::Naive, MatmulKernel::Lanes, MatmulKernel::LanesDown]);
            if MatmulKernel::Subgroup.available(gpu) {
                candidates.push(MatmulKernel::Subgroup);
            }
        }
        candidates
    }
}

/// Large tiles below which the autotuner also times the small-tile kernels.
const SMALL_GRID: usize = 256;
