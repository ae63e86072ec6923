// The store of a training step's output layer (after matmul_one.wgsl): the forward product
// through its epilogue, y = act(x·W + b) (or x·W + b), and in the same store
//   - with params.loss_gradient, the regression loss's gradient at the input of the output
//     activation, w_row · h'(y − t) · act'(y) (mse_rules.wgsl, as mse.wgsl computes it), into
//     d_z: the loss's backward dispatch is not needed;
//     With params.write_loss_terms (a step whose loss is read) it also writes each element's
//     weighted loss term (twice its loss, as mse.wgsl sums them) into loss_terms, which the
//     step's grouped weight-gradient dispatch sums (matmul_grouped.wgsl);
//   - with params.count_steps, the model's Adam step count and bias corrections
//     (optim_rules.wgsl), by the one store of C[0][0]: the update, fused into the weight
//     gradients later in the step, reads them, and nothing in this dispatch does.
// The target t sits at `target_values` (model stride params.saved_stride), d_z at model stride
// params.d_bias_stride, the row weights at params.row_weight_stride.

fn store(row: u32, col: u32, product: f32) {
    let at = row * params.n + col;
    let y = forward_value(col, product);
    c[c_base + at] = y;
    if params.loss_gradient != 0u {
        let diff = y - target_values[saved_base + at];
        let w = row_weight[current_model * params.row_weight_stride + row];
        d_z[d_bias_base + at] = regression_gradient(y, diff, w, params.huber_delta, params.activation);
        if params.write_loss_terms != 0u {
            loss_terms[current_model * params.loss_terms_stride + at] = regression_twice_loss(diff, w, params.huber_delta);
        }
    }
    if params.count_steps != 0u && row == 0u && col == 0u {
        count_step(current_model);
    }
}
