//! Moving training data on the device: batch gathers and row copies (shaders/data.wgsl).

use crate::bindings::DataBindings;
use crate::params::{CopyRowsParams, GatherParams};

use super::{ELEMENTWISE_GROUP, check_dims, check_len, model_strides};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel};
use crate::tensor::Tensor;

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
/// `x`, `t` and `row_weights` hold one entry per model; `plan` is u32 pairs.
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
    check_len(OP, "plan", plan, 2 * models)?;
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
        Kernel::GatherBatch,
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
        (batch * (features + outputs + 1)).div_ceil(ELEMENTWISE_GROUP),
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
        Kernel::CopyRows,
        bytemuck::bytes_of(&params),
        &[(DataBindings::SRC_ROWS, src), (DataBindings::DST_ROWS, dst)],
        (count * cols).div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}
