//! The matmul family declared in one place (shaders/matmul*.wgsl): its kernels and layouts,
//! the tiles the shaders cover, the parameter block, bindings and epilogue codes they share
//! with WGSL, and their shader modules and entry points. The builder is `matmul.rs`; which
//! kernel runs a shape, `matmul_choice.rs`.

use super::activation::{PRELUDE, prelude_constants};
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_consts, wgsl_struct};

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

    /// The grid of a product with M rows and N columns (and, with `bias_row`, the bias
    /// gradient's row of ones below them): (tiles across a row of C, tiles in all). The
    /// subgroup kernel stores the bias row from its first row of tiles, so it needs no row of
    /// tiles for it: a row more of tiles would compute a whole tile and store nothing.
    pub(crate) fn grid(self, gpu: &Gpu, m: usize, n: usize, bias_row: bool) -> (usize, usize) {
        let (tile_rows, tile_cols) = self.tile(gpu);
        let rows = match self {
            MatmulKernel::Subgroup => m.max(1),
            _ => m + usize::from(bias_row),
        };
        let tiles_n = n.div_ceil(tile_cols);
        (tiles_n, rows.div_ceil(tile_rows) * tiles_n)
    }

    /// Whether `gpu` can run this kernel: [`MatmulKernel::Subgroup`] needs subgroup
    /// operations with subgroups of at least 8 invocations; the others run anywhere.
    pub fn available(self, gpu: &Gpu) -> bool {
        match self {
            MatmulKernel::Subgroup => gpu.has_subgroups() && gpu.adapter_min_subgroup_size() >= 8,
            MatmulKernel::Naive
            | MatmulKernel::Vec4
            | MatmulKernel::Tiled
            | MatmulKernel::Lanes
            | MatmulKernel::LanesDown => true,
        }
    }
}

/// Multiply-adds from which [`MatmulKernel::choose`] takes the tiled kernel on GPUs for
/// every layout (xl's 4096³ products: 2³⁶).
pub const TILED_MIN_WORK: u64 = 1 << 32;

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

wgsl_struct! {
    /// matmul*.wgsl: C (M,N) = epilogue(op(A)·op(B)) [+ C].
    struct MatmulParams {
        m: u32,
        n: u32,
        k: u32,
        accumulate: u32,
        /// Tiles across a row of C, and in all.
        tiles_n: u32,
        tiles: u32,
        epilogue: u32,
        /// Rows of C: m, or m + 1 with the row of ones whose products are the bias gradient.
        rows: u32,
        /// Where each binding's model m starts: m · stride (0 for an operand all share).
        a_stride: u32,
        b_stride: u32,
        c_stride: u32,
        bias_stride: u32,
        saved_stride: u32,
        d_bias_stride: u32,
        /// Whether `model_active` gates the models.
        gated: u32,
        /// `Activation::code` of an activation epilogue.
        activation: u32,
        /// Grouped weight gradients (matmul_grouped.wgsl): the products in the dispatch (in
        /// the first product's block), this product's first tile, and where its weight and
        /// bias start in the flat parameter block.
        groups: u32,
        tile_start: u32,
        c_offset: u32,
        d_bias_offset: u32,
        /// A training step's output layer (matmul_head.wgsl): whether it writes the loss
        /// gradient, Huber's δ (0 for the squared error), the row weights' model stride, and
        /// whether it advances the Adam step counts.
        loss_gradient: u32,
        huber_delta: f32,
        row_weight_stride: u32,
        count_steps: u32,
        /// The step whose loss is read: the head writes each element's weighted loss term
        /// (model stride `loss_terms_stride`), and a grouped dispatch's last workgroup per
        /// model sums `loss_terms` of them into the loss (model stride `loss_stride`) in the
        /// order of the loss kernel's `reduce_threads` invocations and tree (reduce.wgsl).
        write_loss_terms: u32,
        loss_terms: u32,
        loss_terms_stride: u32,
        loss_stride: u32,
        reduce_threads: u32,
        /// The grouped dispatch's mixed entry point: this product's kernel (`MIXED_*`).
        mixed_kernel: u32,
        /// The plain store: the bias gradient's row lands in `c` (at `d_bias_offset`, with
        /// the weight gradient at `c_offset`), whose binding then spans both: a stack's weight
        /// and bias gradients interleave in one block, and WebGPU refuses two bindings that
        /// overlap when one is written.
        bias_in_c: u32,
    }
}

wgsl_bindings! {
    /// matmul*.wgsl.
    struct MatmulBindings {
        PARAMS = 0 => "read" params_buffer: "MatmulParams",
        A = 1 => "read" a: "array<f32>",
        B = 2 => "read" b: "array<f32>",
        C = 3 => "read_write" c: "array<f32>",
        /// A and B seen as vec4s (matmul_vec4 and matmul_tiled).
        A4 = 4 => "read" a4: "array<vec4<f32>>",
        B4 = 5 => "read" b4: "array<vec4<f32>>",
        /// The epilogue's operands (bound to A when unused).
        BIAS = 6 => "read" bias: "array<f32>",
        SAVED = 7 => "read" saved: "array<f32>",
        /// The bias gradient's row of ones lands here (a scratch buffer when unused).
        D_BIAS = 8 => "read_write" d_bias: "array<f32>",
        /// Per model: 0 when it sits this step out (read only when `params.gated`).
        ACTIVE = 9 => "read" model_active: "array<u32>",
    }
}

wgsl_consts! {
    pub(super) fn epilogue_constants;
    /// `MatmulParams::epilogue`: store the product.
    const EPILOGUE_NONE: u32 = 0;
    /// `+ bias[col]`.
    const EPILOGUE_BIAS: u32 = 1;
    /// `act(· + bias[col])`.
    const EPILOGUE_BIAS_ACT: u32 = 2;
    /// `· act'(saved)`.
    const EPILOGUE_ACT_GRAD: u32 = 3;
}

/// The parts every matmul module starts with; each family adds its own file (its own module:
/// only devices with subgroups accept the subgroup kernel's builtins).
macro_rules! matmul_shader {
    ($file:literal) => {
        Shader {
            file: $file,
            parts: &[
                Part::Consts(epilogue_constants),
                Part::Consts(tile_constants),
                Part::Consts(prelude_constants),
                Part::Text(MatmulParams::WGSL),
                Part::Text(MatmulBindings::WGSL),
                Part::Text(PRELUDE),
                Part::Text(include_str!("../../shaders/matmul_common.wgsl")),
                Part::Text(include_str!("../../shaders/matmul_one.wgsl")),
                Part::Text(include_str!("../../shaders/matmul_store.wgsl")),
                Part::Text(include_str!(concat!("../../shaders/", $file))),
            ],
            trusted: true,
        }
    };
}

/// One variant of the matmul modules: the module of each kernel family (naive, vec4 and
/// lanes share one file; the tiled and subgroup kernels have theirs).
pub(super) struct MatmulShaders {
    pub main: Shader,
    pub tiled: Shader,
    pub subgroup: Shader,
}

/// The plain matmuls: one product, every epilogue (matmul_store.wgsl).
const PLAIN: MatmulShaders = MatmulShaders {
    main: matmul_shader!("matmul.wgsl"),
    tiled: matmul_shader!("matmul_tiled.wgsl"),
    subgroup: matmul_shader!("matmul_subgroup.wgsl"),
};

/// The kernel that runs `kernel` in `layout`.
pub(super) fn kernel_for(kernel: MatmulKernel, layout: MatmulLayout) -> Kernel {
    kernel_in(&PLAIN, kernel, layout)
}

/// The kernel that runs `kernel` in `layout` from the module variant `shaders`.
pub(super) fn kernel_in(shaders: &'static MatmulShaders, kernel: MatmulKernel, layout: MatmulLayout) -> Kernel {
    let (shader, entry): (&'static Shader, _) = match kernel {
        MatmulKernel::Naive => (&shaders.main, "matmul_naive"),
        MatmulKernel::Vec4 => (&shaders.main, "matmul_vec4"),
        MatmulKernel::Lanes | MatmulKernel::LanesDown => (&shaders.main, "matmul_lanes"),
        MatmulKernel::Tiled => (&shaders.tiled, "matmul_tiled"),
        MatmulKernel::Subgroup => (&shaders.subgroup, "matmul_subgroup"),
    };
    let declared = Kernel::new(shader, entry).with_constants(match layout {
        MatmulLayout::AB => &[("TRANS_A", 0.0), ("TRANS_B", 0.0)],
        MatmulLayout::ABt => &[("TRANS_A", 0.0), ("TRANS_B", 1.0)],
        MatmulLayout::AtB => &[("TRANS_A", 1.0), ("TRANS_B", 0.0)],
    });
    // Sizes that suit the adapter: CPU adapters run a workgroup on one core.
    match kernel {
        MatmulKernel::Vec4 => {
            declared.with_adapter_constants(|gpu| vec![("VEC4_WG_ROWS", f64::from(vec4_workgroup_rows(gpu)))])
        }
        MatmulKernel::LanesDown => declared.with_adapter_constants(|_| vec![("LANES_DOWN_ROWS", 1.0)]),
        MatmulKernel::Naive | MatmulKernel::Tiled | MatmulKernel::Lanes | MatmulKernel::Subgroup => declared,
    }
}

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    let layouts = [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB];
    super::MATMUL_KERNELS
        .into_iter()
        .flat_map(|kernel| layouts.map(|layout| kernel_for(kernel, layout)))
        .collect()
}

