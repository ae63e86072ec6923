//! Moving training data on the device: batch gathers and row copies (shaders/data.wgsl).

use super::step_plan::ModelPlan;
use super::{check_dims, check_len, elementwise_groups, group_constants, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::kernel::{Kernel, Part, Shader, wgsl_bindings, wgsl_struct};
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

wgsl_struct! {
    /// data.wgsl: one batch of each stacked model gathered from the resident data set.
    struct GatherParams {
        offset: u32,
        batch: u32,
        features: u32,
        outputs: u32,
        index_stride: u32,
        x_stride: u32,
        t_stride: u32,
        weight_stride: u32,
    }
}

wgsl_struct! {
    /// data.wgsl: rows of one tensor into another.
    struct CopyRowsParams {
        dst_row0: u32,
        count: u32,
        cols: u32,
        src_stride: u32,
        dst_stride: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

wgsl_bindings! {
    /// data.wgsl: gather_batch and copy_rows (each with its own parameter block at 0).
    struct DataBindings {
        GATHER_PARAMS = 0 => "read" gather_buffer: "GatherParams",
        COPY_ROWS_PARAMS = 0 => "read" copy_rows_params_buffer: "CopyRowsParams",
        ALL_FEATURES = 1 => "read" all_features: "array<f32>",
        ALL_TARGETS = 2 => "read" all_targets: "array<f32>",
        INDICES = 3 => "read" indices: "array<u32>",
        X = 4 => "read_write" x: "array<f32>",
        T = 5 => "read_write" t: "array<f32>",
        ROW_WEIGHT = 6 => "read_write" row_weight: "array<f32>",
        SRC_ROWS = 7 => "read" src_rows: "array<f32>",
        DST_ROWS = 8 => "read_write" dst_rows: "array<f32>",
        PLAN = 9 => "read" plan: "array<ModelPlan>",
    }
}

const SHADER: Shader = Shader {
    file: "data.wgsl",
    parts: &[
        Part::Consts(group_constants),
        Part::Text(ModelPlan::WGSL),
        Part::Text(GatherParams::WGSL),
        Part::Text(CopyRowsParams::WGSL),
        Part::Text(DataBindings::WGSL),
        Part::Text(include_str!("../../shaders/data.wgsl")),
    ],
    trusted: false,
};
const GATHER_BATCH: Kernel = Kernel::new(&SHADER, "gather_batch");
const COPY_ROWS: Kernel = Kernel::new(&SHADER, "copy_rows");

#[cfg(test)]
pub(super) fn kernels() -> Vec<Kernel> {
    vec![GATHER_BATCH, COPY_ROWS]
}

/// What [`gather_batch`] reads and writes.
#[derive(Clone, Copy)]
pub(crate) struct Gather<'a> {
    pub all_x: &'a Tensor,
    pub all_t: &'a Tensor,
    pub indices: &'a Tensor,
    pub plan: &'a Tensor,
    pub x: &'a Tensor,
    pub t: &'a Tensor,
    pub row_weights: &'a Tensor,
}

/// Batch `offset / B` of each stacked model, gathered from the resident data set: for model
/// m, with `count = min(B, rows_m − offset)` (`rows_m = plan[2m]`), the rows listed in
/// `indices[m][offset..offset + count]` of `all_x` (N,F) into `x` (B,F), of `all_t` (N,O)
/// into `t` (B,O), and the loss weights `row_weights` (B) = 1/count; rows count..B are
/// zeroed (a partial last batch). Whether the model trains on this batch is the trainer's
/// plan ([`models_to_step`](super::step_plan::models_to_step)), not the loader's. `indices`,
/// `x`, `t` and `row_weights` hold one entry per model; `plan` one [`ModelPlan`] each.
pub(crate) fn gather_batch(gpu: &Gpu, operands: &Gather<'_>, offset: usize) -> Result<Dispatch> {
    const OP: &str = "gather_batch";
    let Gather {
        all_x,
        all_t,
        indices,
        plan,
        x,
        t,
        row_weights,
    } = *operands;
    let (batch, features) = x.dims2(OP, "x")?;
    let (_, outputs) = t.dims2(OP, "t")?;
    check_dims(OP, "t", t, batch, outputs)?;
    check_dims(OP, "all_t", all_t, all_x.dims2(OP, "all_x")?.0, outputs)?;
    check_dims(OP, "all_x", all_x, all_t.dims2(OP, "all_t")?.0, features)?;
    check_len(OP, "row_weights", row_weights, batch)?;
    let (models, strides) = model_strides(
        OP,
        x,
        &[
            ("all_x", all_x, false),
            ("all_t", all_t, false),
            ("indices", indices, true),
            ("x", x, true),
            ("t", t, true),
            ("row_weights", row_weights, true),
        ],
    )?;
    check_len(OP, "plan", plan, models * size_of::<ModelPlan>() / 4)?;
    if offset >= indices.len() {
        return Err(Error::invalid(
            OP,
            "offset",
            format!("within the {} indices per model", indices.len()),
            offset,
        ));
    }
    let params = GatherParams {
        offset: offset as u32,
        batch: batch as u32,
        features: features as u32,
        outputs: outputs as u32,
        index_stride: strides[2],
        x_stride: strides[3],
        t_stride: strides[4],
        weight_stride: strides[5],
    };
    Dispatch::stacked(
        gpu,
        GATHER_BATCH,
        bytemuck::bytes_of(&params),
        &[
            (DataBindings::ALL_FEATURES, all_x),
            (DataBindings::ALL_TARGETS, all_t),
            (DataBindings::INDICES, indices),
            (DataBindings::X, x),
            (DataBindings::T, t),
            (DataBindings::ROW_WEIGHT, row_weights),
            (DataBindings::PLAN, plan),
        ],
elementwise_groups(batch * (features + outputs + 1)),
        models,
    )
}

/// Rows `0..count` of `src` (B,C) into rows `dst_row0..dst_row0 + count` of `dst` (R,C).
pub(crate) fn copy_rows(gpu: &Gpu, src: &Tensor, dst: &Tensor, dst_row0: usize, count: usize) -> Result<Dispatch> {
    const OP: &str = "copy_rows";
    let (src_rows, cols) = src.dims2(OP, "src")?;
    let (dst_rows, dst_cols) = dst.dims2(OP, "dst")?;
    if dst_cols != cols || count > src_rows || dst_row0 + count > dst_rows {
        return Err(Error::shape(
            OP,
            "rows",
            format!("{count} rows of {cols} columns fitting [{dst_rows}, {dst_cols}] from row {dst_row0}"),
            format!("src {:?}", src.shape()),
        ));
    }
    let (models, strides) = model_strides(OP, dst, &[("src", src, false), ("dst", dst, true)])?;
    let params = CopyRowsParams {
        dst_row0: dst_row0 as u32,
        count: count as u32,
        cols: cols as u32,
        src_stride: strides[0],
        dst_stride: strides[1],
        _pad0: 0,
        _pad1: 0,
        _pad2: 0,
    };
    Dispatch::stacked(
        gpu,
        COPY_ROWS,
        bytemuck::bytes_of(&params),
        &[(DataBindings::SRC_ROWS, src), (DataBindings::DST_ROWS, dst)],
elementwise_groups(count * cols),
        models,
    )
}
