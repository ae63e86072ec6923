// The plain matmul's store: the product through its epilogue, or the bias gradient's row.
//
// What happens to each product before it is stored, the fusions that save whole dispatches
// (EPILOGUE_* in src/ops/matmul.rs, emitted ahead of this file):
//   EPILOGUE_NONE       the product
//   EPILOGUE_BIAS       + bias[col]                     a linear layer
//   EPILOGUE_BIAS_ACT   act(· + bias[col])              a whole dense layer
//   EPILOGUE_ACT_GRAD   · act'(y), y = saved (M,N)      dX through an activation

fn store(row: u32, col: u32, product: f32) {
    if row >= params.m {
        let j = d_bias_base + col;
        if params.bias_in_c != 0u {
            c[j] = select(product, c[j] + product, params.accumulate != 0u);
        } else if params.accumulate != 0u {
            d_bias[j] = d_bias[j] + product;
        } else {
            d_bias[j] = product;
        }
        return;
    }
    let i = c_base + row * params.n + col;
    var value = forward_value(col, product);
    if params.epilogue == EPILOGUE_ACT_GRAD {
        value *= act_grad(params.activation, saved[saved_base + row * params.n + col]);
    }
    if params.accumulate != 0u {
        c[i] = c[i] + value;
    } else {
        c[i] = value;
    }
}
