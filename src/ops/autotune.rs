//! Matmul kernel choice by measurement on GPUs (after CubeCL/Burn's tuning, written here):
//! the first time a shape bucket is met, each candidate kernel runs the product a few times
//! on scratch operands of that exact shape and the fastest is kept, in memory and in a small
//! text file per adapter, driver and crate version next to the pipeline cache, so later
//! processes on the same machine choose the same kernel without timing. The naive kernel is
//! the fallback when no candidate can run. CPU adapters keep the fixed choice (tests and CI
//! stay reproducible there); `WGPU_MLP_AUTOTUNE=0` turns tuning off, `=1` forces it on
//! (also on CPU adapters, for testing).
//!
//! In a browser every adapter is tuned (no fixed rule was measured for browsers' adapters),
//! but timing means awaiting the GPU, which choosing a kernel while a model is built cannot
//! do: a product met for the first time gets the fixed rule's kernel and is noted, and
//! [`Gpu::tune_kernels_async`] measures what was noted; `fit_async` and the search do so
//! after building a model, and build it again when anything was measured.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};
use web_time::Instant;

use super::{MATMUL_KERNELS, MatmulKernel, MatmulLayout};
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::Result;

/// A shape bucket: the layout and each dimension rounded up to a power of two.
pub(crate) type Key = (MatmulLayout, usize, usize, usize);

/// The tuned choices of one device, and where they are kept.
#[derive(Default)]
pub(crate) struct Tuning {
    pub table: HashMap<Key, MatmulKernel>,
    pub file: Option<PathBuf>,
    /// Products met in a browser before their bucket was measured.
    pub pending: Vec<Pending>,
}

/// A product to measure: its bucket, shape and candidate kernels.
pub(crate) struct Pending {
    key: Key,
    layout: MatmulLayout,
    dims: (usize, usize, usize),
    candidates: Vec<MatmulKernel>,
}

/// Whether kernel choice on `gpu` is by measurement: on GPUs, and on every adapter in a
/// browser (see the module docs).
pub(crate) fn enabled(gpu: &Gpu) -> bool {
    if cfg!(target_arch = "wasm32") {
        return true;
    }
    match std::env::var("WGPU_MLP_AUTOTUNE").as_deref() {
        Ok("0") => false,
        Ok("1") => true,
        _ => !gpu.is_software(),
    }
}

pub(crate) fn key(layout: MatmulLayout, m: usize, k: usize, n: usize) -> Key {
    (
        layout,
        m.next_power_of_two(),
        k.next_power_of_two(),
        n.next_power_of_two(),
    )
}

fn layout_name(layout: MatmulLayout) -> &'static str {
    match layout {
        MatmulLayout::AB => "AB",
        MatmulLayout::ABt => "ABt",
        MatmulLayout::AtB => "AtB",
    }
}

/// One line per entry: `AB 128 1024 256 Vec4`.
fn format_table(table: &HashMap<Key, MatmulKernel>) -> String {
    let mut lines: Vec<String> = table
        .iter()
        .map(|(&(layout, m, k, n), kernel)| format!("{} {m} {k} {n} {kernel:?}\n", layout_name(layout)))
        .collect();
    lines.sort();
    lines.concat()
}

/// The entries of a tuning file; lines that do not parse are skipped (a damaged file only
/// costs a re-tune).
pub(crate) fn parse_table(text: &str) -> HashMap<Key, MatmulKernel> {
    let layout_of = |s: &str| {
        [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB]
            .into_iter()
            .find(|&l| layout_name(l) == s)
    };
    let kernel_of = |s: &str| MATMUL_KERNELS.into_iter().find(|k| format!("{k:?}") == s);
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [layout, m, k, n, kernel] = f[..] else { return None };
            let dim = |s: &str| s.parse::<usize>().ok().filter(|d| d.is_power_of_two());
            Some(((layout_of(layout)?, dim(m)?, dim(k)?, dim(n)?), kernel_of(kernel)?))
        })
        .collect()
}

/// Loads the tuning file for this device (an empty table where there is none).
pub(crate) fn load(info: &wgpu::AdapterInfo) -> Tuning {
    let file = crate::device::pipeline_cache::file_for(info, "autotune", "txt");
    let table = file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|text| parse_table(&text))
        .unwrap_or_default();
    Tuning {
        table,
        file,
        pending: Vec::new(),
    }
}

/// Seconds for one run of `dispatch`: the best of three after a warm-up.
async fn time_kernel(gpu: &Gpu, dispatch: &crate::device::dispatch::Dispatch) -> Result<f64> {
    gpu.run(&[dispatch])?;
    gpu.synchronize_async().await?;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let started = Instant::now();
        gpu.run(&[dispatch])?;
        gpu.synchronize_async().await?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// The fastest of `candidates` for `C (M,N) = op(A)·op(B)`, measured on scratch operands
/// of this shape; `Naive` when none of them runs.
async fn measure(
    gpu: &Gpu,
    layout: MatmulLayout,
    (m, k, n): (usize, usize, usize),
    candidates: &[MatmulKernel],
) -> MatmulKernel {
    let (a_shape, b_shape) = match layout {
        MatmulLayout::AB => ([m, k], [k, n]),
        MatmulLayout::ABt => ([m, k], [n, k]),
        MatmulLayout::AtB => ([k, m], [k, n]),
    };
    let mut best: Option<(MatmulKernel, f64)> = None;
    for &kernel in candidates.iter().filter(|kernel| kernel.supports(layout, m, k, n)) {
        let timed = async {
            let a = Tensor::full(gpu, &a_shape, 0.5)?;
            let b = Tensor::full(gpu, &b_shape, -0.25)?;
            let c = Tensor::zeros(gpu, &[m, n])?;
            time_kernel(gpu, &crate::ops::matmul(gpu, kernel, layout, &a, &b, &c, false)?).await
        };
        if let Ok(seconds) = timed.await
            && best.is_none_or(|(_, fastest)| seconds < fastest)
        {
            best = Some((kernel, seconds));
        }
    }
    best.map_or(MatmulKernel::Naive, |(kernel, _)| kernel)
}

/// The tuned kernel for this product among `candidates`, measuring it on first use; in a
/// browser `None` on first use, the product noted for [`Gpu::tune_kernels_async`].
pub(crate) fn choose(
    gpu: &Gpu,
    layout: MatmulLayout,
    (m, k, n): (usize, usize, usize),
    candidates: &[MatmulKernel],
) -> Option<MatmulKernel> {
    let key = key(layout, m, k, n);
    let known = with_tuning(gpu, |tuning| tuning.table.get(&key).copied()).flatten();
    if let Some(kernel) = known.filter(|kernel| kernel.supports(layout, m, k, n)) {
        return Some(kernel);
    }
    if cfg!(target_arch = "wasm32") {
        with_tuning(gpu, |tuning| {
            if !tuning.pending.iter().any(|p| p.key == key) {
                tuning.pending.push(Pending {
                    key,
                    layout,
                    dims: (m, k, n),
                    candidates: candidates.to_vec(),
                });
            }
        });
        return None;
    }
    let kernel = crate::device::gpu::block_on("tuning a matmul", async {
        Ok(measure(gpu, layout, (m, k, n), candidates).await)
    })
    .ok()?;
    keep(gpu, key, kernel);
    Some(kernel)
}

/// Keeps a measured choice, in memory and in the tuning file.
fn keep(gpu: &Gpu, key: Key, kernel: MatmulKernel) {
    with_tuning(gpu, |tuning| {
        tuning.table.insert(key, kernel);
        if let Some(file) = &tuning.file {
            // A table that cannot be written is only a re-tune next time.
            let _ = crate::device::pipeline_cache::write_atomically(file, format_table(&tuning.table).as_bytes());
        }
    });
}

impl Gpu {
    /// In a browser, measures the matmul kernels of every product a model built on this
    /// device met for the first time (built meanwhile with the fixed rule's kernels), so that
    /// models built afterwards run the fastest measured; returns how many were measured.
    /// `fit_async` and `GridSearchCv::fit_async` call it and build again. Natively products
    /// are measured as they are met, and this returns 0.
    pub async fn tune_kernels_async(&self) -> Result<usize> {
        let pending = with_tuning(self, |tuning| std::mem::take(&mut tuning.pending)).unwrap_or_default();
        for product in &pending {
            let kernel = measure(self, product.layout, product.dims, &product.candidates).await;
            keep(self, product.key, kernel);
        }
        Ok(pending.len())
    }
}

/// Each `Gpu`'s table (by its id), loaded from its adapter's file when the `Gpu` first
/// needs it: a new `Gpu` reads what earlier runs wrote.
static TUNINGS: LazyLock<Mutex<HashMap<u64, Tuning>>> = LazyLock::new(Default::default);

/// `f` on `gpu`'s table (None if the lock was poisoned: no tuning, no harm).
fn with_tuning<R>(gpu: &Gpu, f: impl FnOnce(&mut Tuning) -> R) -> Option<R> {
    let mut tables = TUNINGS.lock().ok()?;
    Some(f(tables.entry(gpu.inner.id).or_insert_with(|| load(&gpu.inner.info))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_files_round_trip_and_skip_damage() {
        let mut table = HashMap::new();
        table.insert(key(MatmulLayout::AB, 100, 784, 256), MatmulKernel::Vec4);
        table.insert(key(MatmulLayout::ABt, 4096, 4096, 4096), MatmulKernel::Tiled);
        let text = format_table(&table);
        assert_eq!(parse_table(&text), table);
        let damaged = format!("{text}AB 3 4 8 Vec4\nXY 4 4 4 Vec4\nAB 4 4 4 Nonsense\nAB 4 4\n\u{0}\u{1}");
        assert_eq!(parse_table(&damaged), table, "bad lines are skipped");
    }
}
