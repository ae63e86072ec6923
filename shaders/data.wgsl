// Moving training data on the GPU: a mini-batch gathered from the resident data set by an
// index list, and rows of a batch's output copied into a larger result.
//
// gather_batch, per stacked model m (the grid's z), with rows_m = plan[m].rows:
//   count = min(B, rows_m − offset), 0 when offset ≥ rows_m
//   for row < count:  x (B,F) row = features (N,F) row indices[m][offset + row]
//                     t (B,O) row = targets (N,O) row indices[m][offset + row]
//                     row_weight (B) = 1 / count
//   for count ≤ row < B (a partial last batch): zeros, so padded rows add nothing to the
//   loss or to any gradient
//   (whether model m trains on this batch is the trainer's plan: step_plan.wgsl)
// copy_rows:    out (R,C) rows dst_row0 .. dst_row0 + count = src (B,C) rows 0 .. count


// ModelPlan (per model: its row count and how many batches of this epoch it trains), the
// parameter structs and the bindings are declared in src/ops/step_plan.rs and src/ops/data.rs.

// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `gather` first.
var<private> gather: GatherParams;

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn gather_batch(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    gather = gather_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    let m = wid.z;
    let rows = plan[m].rows;
    let count = select(0u, min(gather.batch, rows - gather.offset), rows > gather.offset);
    let first = m * gather.index_stride + gather.offset;
    let x_len = gather.batch * gather.features;
    let t_len = gather.batch * gather.outputs;
    if i < x_len {
        let row = i / gather.features;
        var value = 0.0;
        if row < count {
            value = all_features[indices[first + row] * gather.features + i % gather.features];
        }
        x[m * gather.x_stride + i] = value;
    } else if i < x_len + t_len {
        let j = i - x_len;
        let row = j / gather.outputs;
        var value = 0.0;
        if row < count {
            value = all_targets[indices[first + row] * gather.outputs + j % gather.outputs];
        }
        t[m * gather.t_stride + j] = value;
    } else if i < x_len + t_len + gather.batch {
        let row = i - x_len - t_len;
        row_weight[m * gather.weight_stride + row] = select(0.0, 1.0 / f32(count), row < count);
    }
}


// Parameters come in a storage buffer, not a uniform one: lavapipe re-specialises and
// recompiles a shader whenever the uniform values its loops depend on change, which
// costs milliseconds per dispatch. Each entry point copies them into `copy_rows_params` first.
var<private> copy_rows_params: CopyRowsParams;

@compute @workgroup_size(ELEMENTWISE_GROUP)
fn copy_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    copy_rows_params = copy_rows_params_buffer;
    let i = (wid.x + nwg.x * wid.y) * ELEMENTWISE_GROUP + lid;
    let p = copy_rows_params;
    if i >= p.count * p.cols {
        return;
    }
    dst_rows[wid.z * p.dst_stride + p.dst_row0 * p.cols + i] = src_rows[wid.z * p.src_stride + i];
}
