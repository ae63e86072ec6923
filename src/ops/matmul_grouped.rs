//! Every layer's weight and bias gradient in one dispatch with the optimizer's update in the
//! store (shaders/matmul_grouped.wgsl, declared in `matmul_fused.rs`), and in a step whose
//! loss is read, the loss summed from the terms the output layer wrote.

use super::matmul::vec4_stand_in;
use super::matmul_fused::{
    GROUPED, GROUPED_MIXED_KERNEL, GROUPS_MAX, GroupedBindings, MIXED_LANES, MIXED_LANES_DOWN, MIXED_SUBGROUP,
};
use super::matmul_kernels::{MatmulKernel, MatmulLayout, MatmulParams, kernel_in};
use super::optim::OptimizerState;
use super::{check_dims, check_gpu, check_len, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

/// One layer's weight gradient in a grouped dispatch: `dW = xᵀ·d_y` (x (B,IN), d_y
/// (B,OUT)) and, with a bias, `db = Σ_rows d_y`, landing in the flat gradient block at
/// `weight_offset` (IN·OUT values) and `bias_offset` (OUT), where the flat parameter block
/// holds the weights and bias they update.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightGradient<'a> {
    pub x: &'a Tensor,
    pub d_y: &'a Tensor,
    pub weight_offset: usize,
    pub bias_offset: Option<usize>,
}

/// The flat blocks a grouped update writes: gradients and parameters (each stacked model's
/// `model_stride` further on), and the optimizer's state in their layout.
#[derive(Clone, Copy)]
pub(crate) struct FlatBlocks<'a> {
    pub grads: &'a Tensor,
    pub params: &'a Tensor,
    pub model_stride: usize,
    pub state: OptimizerState<'a>,
}

/// The loss of a step whose loss is read, summed by a grouped dispatch's last workgroup (per
/// model) from the terms [`matmul_head`](super::matmul_head::matmul_head) wrote: `count` terms per model into `out` (1 per
/// model), in the order of the loss kernel's reduction over `reduce_threads` invocations.
#[derive(Clone, Copy)]
pub(crate) struct GroupedLoss<'a> {
    pub terms: &'a Tensor,
    pub out: &'a Tensor,
    pub reduce_threads: u32,
}

/// Terms one workgroup's serial sum may take (a step with more keeps its loss dispatch).
pub(crate) const GROUPED_LOSS_MAX_TERMS: usize = 16384;

/// The kernel of a grouped dispatch: one for every product (any but `Vec4`), or each
/// product its own among `Subgroup`, `Lanes` and `LanesDown` (the mixed entry point, on
/// adapters with subgroups), as each runs unfused.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum GroupedKernel {
    One(MatmulKernel),
    PerProduct(Vec<MatmulKernel>),
}

impl GroupedKernel {
    /// Product g's kernel.
    fn of(&self, g: usize) -> MatmulKernel {
        match self {
            GroupedKernel::One(kernel) => *kernel,
            GroupedKernel::PerProduct(kernels) => kernels.get(g).copied().unwrap_or(MatmulKernel::Lanes),
        }
    }

    /// The kernel whose bindings the dispatch takes (the mixed entry point's are the scalar
    /// kernels').
    pub(crate) fn binds_like(&self) -> MatmulKernel {
        match self {
            GroupedKernel::One(kernel) => *kernel,
            GroupedKernel::PerProduct(_) => MatmulKernel::Subgroup,
        }
    }

    fn check(&self, gpu: &Gpu, groups: usize) -> Result<()> {
        const OP: &str = "matmul_grouped_update";
        let mixable = [MatmulKernel::Subgroup, MatmulKernel::Lanes, MatmulKernel::LanesDown];
        let fine = match self {
            GroupedKernel::One(kernel) => *kernel != MatmulKernel::Vec4 && kernel.available(gpu),
            GroupedKernel::PerProduct(kernels) => {
                MatmulKernel::Subgroup.available(gpu)
                    && kernels.len() == groups
                    && kernels.iter().all(|k| mixable.contains(k))
            }
        };
        if !fine {
            return Err(Error::invalid(
                OP,
                "kernel",
                "one the adapter runs, not Vec4; per product one of Subgroup, Lanes, LanesDown with subgroups",
                format!("{self:?}"),
            ));
        }
        Ok(())
    }
}

/// `MatmulParams::mixed_kernel` of a kernel the mixed entry point runs.
fn mixed_code(kernel: MatmulKernel) -> u32 {
    match kernel {
        MatmulKernel::Subgroup => MIXED_SUBGROUP,
        MatmulKernel::LanesDown => MIXED_LANES_DOWN,
        MatmulKernel::Lanes | MatmulKernel::Naive | MatmulKernel::Vec4 | MatmulKernel::Tiled => MIXED_LANES,
    }
}

/// Up to [`GROUPS_MAX`] weight gradients in one dispatch with `kernel`,
/// each element of each gradient updating its parameter by its model's optimizer as it is
/// stored. Adam's step counts must already be advanced (by [`matmul_head`](super::matmul_head::matmul_head)'s `count_steps`).
pub(crate) fn matmul_grouped_update(
    gpu: &Gpu,
    kernel: &GroupedKernel,
    groups: &[WeightGradient<'_>],
    flat: FlatBlocks<'_>,
    loss: Option<GroupedLoss<'_>>,
) -> Result<Dispatch> {
    const OP: &str = "matmul_grouped_update";
    if groups.is_empty() || groups.len() > GROUPS_MAX {
        return Err(Error::invalid(OP, "groups", format!("1 to {GROUPS_MAX}"), groups.len()));
    }
    kernel.check(gpu, groups.len())?;
    let models = flat.state.active.len();
    check_len(OP, "flat grads", flat.grads, models * flat.model_stride)?;
    check_len(OP, "flat params", flat.params, models * flat.model_stride)?;
    let mut params = vec![<MatmulParams as bytemuck::Zeroable>::zeroed(); GROUPS_MAX];
    let mut tile_start = 0;
    for (g, group) in groups.iter().enumerate() {
        params[g] = group_params(gpu, kernel.of(g), group, &flat, tile_start)?;
        params[g].groups = groups.len() as u32;
        params[g].mixed_kernel = mixed_code(kernel.of(g));
        tile_start += params[g].tiles as usize;
    }
    if let Some(loss) = loss {
        let count = loss.terms.len();
        let threads = loss.reduce_threads;
        if loss.terms.models() != models || loss.out.models() != models || loss.out.len() != 1 {
            return Err(Error::shape(
                OP,
                "loss terms and value (stacked models)",
                models,
                loss.out.models(),
            ));
        }
        if count > GROUPED_LOSS_MAX_TERMS || !threads.is_power_of_two() || threads > 1024 {
            return Err(Error::invalid(OP, "loss", "≤ 16384 terms, ≤ 1024 threads", count));
        }
        params[0].loss_terms = count as u32;
        params[0].loss_terms_stride = loss.terms.model_stride() as u32;
        params[0].loss_stride = loss.out.model_stride() as u32;
        params[0].reduce_threads = threads;
    }
    let bindings = grouped_bindings(gpu, kernel.binds_like(), groups, flat, loss)?;
    let bindings: Vec<(u32, &Tensor)> = bindings.iter().map(|(b, t)| (*b, t)).collect();
    Dispatch::stacked(
        gpu,
        match kernel {
            GroupedKernel::One(kernel) => kernel_in(&GROUPED, *kernel, MatmulLayout::AtB),
            GroupedKernel::PerProduct(_) => GROUPED_MIXED_KERNEL,
        },
        bytemuck::cast_slice(&params),
        &bindings,
        tile_start + usize::from(loss.is_some()),
        models,
    )
}

/// One product's block of the grouped parameters, its tiles starting at `tile_start`, after
/// checking its operands and that its weight and bias lie inside one model's flat block.
fn group_params(
    gpu: &Gpu,
    kernel: MatmulKernel,
    group: &WeightGradient<'_>,
    flat: &FlatBlocks<'_>,
    tile_start: usize,
) -> Result<MatmulParams> {
    const OP: &str = "matmul_grouped_update";
    check_gpu(gpu, OP, &[("x", group.x), ("d_y", group.d_y)])?;
    let (batch, inputs) = group.x.dims2(OP, "x")?;
    let (_, outputs) = group.d_y.dims2(OP, "d_y")?;
    check_dims(OP, "d_y", group.d_y, batch, outputs)?;
    let ends = [
        Some(group.weight_offset + inputs * outputs),
        group.bias_offset.map(|b| b + outputs),
    ];
    if ends.into_iter().flatten().any(|end| end > flat.model_stride) {
        return Err(Error::invalid(
            OP,
            "offsets",
            "inside one model's flat block",
            flat.model_stride,
        ));
    }
    let (models, strides) = model_strides(OP, group.x, &[("x", group.x, true), ("d_y", group.d_y, true)])?;
    if models != flat.state.active.len() {
        return Err(Error::shape(
            OP,
            "x and d_y (stacked models)",
            flat.state.active.len(),
            models,
        ));
    }
    let rows = inputs + usize::from(group.bias_offset.is_some());
    let (tiles_n, tiles) = kernel.grid(gpu, inputs, outputs, group.bias_offset.is_some());
    Ok(MatmulParams {
        m: inputs as u32,
        n: outputs as u32,
        k: batch as u32,
        tiles_n: tiles_n as u32,
        tiles: tiles as u32,
        rows: rows as u32,
        a_stride: strides[0],
        b_stride: strides[1],
        c_stride: flat.model_stride as u32,
        gated: 1,
        tile_start: tile_start as u32,
        c_offset: group.weight_offset as u32,
        d_bias_offset: group.bias_offset.unwrap_or(0) as u32,
        ..bytemuck::Zeroable::zeroed()
    })
}

/// The grouped dispatch's bindings: each product's operands (unused slots repeat product
/// 0's, which the shader never reads there), vec4 views for the tiled kernel, the flat blocks.
fn grouped_bindings(
    gpu: &Gpu,
    kernel: MatmulKernel,
    groups: &[WeightGradient<'_>],
    flat: FlatBlocks<'_>,
    loss: Option<GroupedLoss<'_>>,
) -> Result<Vec<(u32, Tensor)>> {
    type G = GroupedBindings;
    let a_slots = [G::A, G::A_1, G::A_2, G::A_3];
    let b_slots = [G::B, G::B_1, G::B_2, G::B_3];
    let a4_slots = [G::A4, G::A4_1, G::A4_2, G::A4_3];
    let b4_slots = [G::B4, G::B4_1, G::B4_2, G::B4_3];
    let operands: Vec<&Tensor> = groups.iter().flat_map(|g| [g.x, g.d_y]).collect();
    let stand_in = vec4_stand_in(gpu, kernel, &operands)?;
    let view = |t: &Tensor| -> Tensor {
        match &stand_in {
            Some(s) if t.span() < 4 => s.alias(),
            _ => t.alias(),
        }
    };
    let mut bindings = Vec::new();
    for slot in 0..GROUPS_MAX {
        let group = groups.get(slot).unwrap_or(&groups[0]);
        bindings.push((a_slots[slot], group.x.alias()));
        bindings.push((b_slots[slot], group.d_y.alias()));
        if kernel == MatmulKernel::Tiled {
            bindings.push((a4_slots[slot], view(group.x)));
            bindings.push((b4_slots[slot], view(group.d_y)));
        }
    }
    let state = flat.state;
    bindings.extend([
        (G::C, flat.grads.alias()),
        (G::ACTIVE, state.active.alias()),
        (G::WEIGHT, flat.params.alias()),
        (G::VELOCITY, state.velocity.alias()),
        (G::SECOND_MOMENT, state.second_moment.alias()),
        (G::GRAD_AVERAGE, state.grad_average.alias()),
        (G::HYPERPARAMS, state.hyperparams.alias()),
        (G::MODEL_STATE, state.model_state.alias()),
        // without a loss: stand-ins the shader never reads or writes
        (G::LOSS_TERMS, loss.map_or(groups[0].x, |l| l.terms).alias()),
    ]);
    let loss_out = match loss {
        Some(l) => l.out.alias(),
        None => Tensor::scratch(gpu)?,
    };
    bindings.push((G::LOSS_OUT, loss_out));
    Ok(bindings)
}
