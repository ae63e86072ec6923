//! One builder per kernel, forward and backward side by side. Each checks its operands'
//! shapes and returns a [`Dispatch`] to run with [`Gpu::run`] (or record many times).

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel, MatmulKernel, MatmulLayout};
use crate::optim::{Sgd, WeightDecay};
use crate::tensor::Tensor;

const ELEMENTWISE_GROUP: usize = 256;

fn check_gpu(gpu: &Gpu, op: &'static str, tensors: &[(&str, &Tensor)]) -> Result<()> {
    for (name, tensor) in tensors {
        if !tensor.same_gpu(gpu) {
            return Err(Error::invalid(
                op,
                *name,
                "a tensor on this Gpu",
                "a tensor made on another Gpu",
            ));
        }
    }
    Ok(())
}

fn check_len(op: &'static str, what: &str, tensor: &Tensor, len: usize) -> Result<()> {
    if tensor.len() != len {
        return Err(Error::shape(
            op,
            what,
            format!("{len} elements"),
            format!("{:?} ({} elements)", tensor.shape(), tensor.len()),
        ));
    }
    Ok(())
}

fn check_dims(op: &'static str, what: &str, tensor: &Tensor, rows: usize, cols: usize) -> Result<()> {
    let got = tensor.dims2(op, what)?;
    if got != (rows, cols) {
        return Err(Error::shape(
            op,
            what,
            format!("[{rows}, {cols}]"),
            format!("{:?}", tensor.shape()),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- matmul

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    accumulate: u32,
    tiles_n: u32,
    tiles: u32,
    epilogue: u32,
    rows: u32,
}

/// What a matmul does to each product before storing it: a fused follow-up op.
#[derive(Clone, Copy, Debug, Default)]
pub enum Epilogue<'a> {
    /// Store the product.
    #[default]
    None,
    /// `+ bias[col]`, bias N elements: a linear layer in one dispatch.
    Bias(&'a Tensor),
    /// `σ(· + bias[col])`: a sigmoid layer in one dispatch.
    BiasSigmoid(&'a Tensor),
    /// `· ⊙ y ⊙ (1 − y)`, y (M,N) the saved output of a sigmoid: the input gradient through
    /// that sigmoid, in the dispatch that computes the gradient at its output.
    SigmoidGrad(&'a Tensor),
}

/// `c = op(a)·op(b)` (or `c += ...` with `accumulate`), `op` per `layout`:
/// - `AB`:  a (M,K), b (K,N)
/// - `ABt`: a (M,K), b (N,K)
/// - `AtB`: a (K,M), b (K,N)
///
/// and c (M,N) in each case.
pub fn matmul(
    gpu: &Gpu,
    kernel: MatmulKernel,
    layout: MatmulLayout,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    matmul_fused(gpu, kernel, layout, a, b, c, accumulate, Epilogue::None)
}

/// [`matmul`] followed by `epilogue` on every output, in the same dispatch.
#[allow(clippy::too_many_arguments)]
pub fn matmul_fused(
    gpu: &Gpu,
    kernel: MatmulKernel,
    layout: MatmulLayout,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    accumulate: bool,
    epilogue: Epilogue<'_>,
) -> Result<Dispatch> {
    matmul_inner(gpu, kernel, layout, a, b, c, accumulate, epilogue, None)
}

/// A dense layer's two parameter gradients in one dispatch: `d_w = xᵀ·d_y` (x (B,IN),
/// d_y (B,OUT), d_w (IN,OUT)) and `d_bias = Σ_rows d_y` (OUT), computed as the product of
/// xᵀ extended by a row of ones (`+=` both with `accumulate`). Naive and blocked kernels.
pub fn matmul_bias_grad(
    gpu: &Gpu,
    kernel: MatmulKernel,
    x: &Tensor,
    d_y: &Tensor,
    d_w: &Tensor,
    d_bias: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    matmul_inner(
        gpu,
        kernel,
        MatmulLayout::AtB,
        x,
        d_y,
        d_w,
        accumulate,
        Epilogue::None,
        Some(d_bias),
    )
}

#[allow(clippy::too_many_arguments)]
fn matmul_inner(
    gpu: &Gpu,
    kernel: MatmulKernel,
    layout: MatmulLayout,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    bias_grad: Option<&Tensor>,
) -> Result<Dispatch> {
    const OP: &str = "matmul";
    check_gpu(gpu, OP, &[("a", a), ("b", b), ("c", c)])?;
    let (a_rows, a_cols) = a.dims2(OP, "a")?;
    let (b_rows, b_cols) = b.dims2(OP, "b")?;
    let (m, k, k_b, n) = match layout {
        MatmulLayout::AB => (a_rows, a_cols, b_rows, b_cols),
        MatmulLayout::ABt => (a_rows, a_cols, b_cols, b_rows),
        MatmulLayout::AtB => (a_cols, a_rows, b_rows, b_cols),
    };
    if k != k_b {
        return Err(Error::shape(
            OP,
            format!("b (inner dimension, layout {layout:?})"),
            format!("K = {k} from a {:?}", a.shape()),
            format!("K = {k_b} from b {:?}", b.shape()),
        ));
    }
    check_dims(OP, "c", c, m, n)?;
    if let Some(d_bias) = bias_grad {
        check_gpu(gpu, OP, &[("d_bias", d_bias)])?;
        check_len(OP, "d_bias", d_bias, n)?;
        if !matches!(kernel, MatmulKernel::Naive | MatmulKernel::Blocked) {
            return Err(Error::invalid(
                OP,
                "kernel for a bias gradient",
                "Naive or Blocked",
                format!("{kernel:?}"),
            ));
        }
    }
    // With a bias gradient, C gets one more row: op(A)'s row of ones.
    let rows = m + usize::from(bias_grad.is_some());
    let (tile_rows, tile_cols) = kernel.tile(gpu);
    let tiles_n = n.div_ceil(tile_cols);
    let tiles = rows.div_ceil(tile_rows) * tiles_n;
    if !kernel.supports(layout, m, k, n) {
        return Err(Error::invalid(
            OP,
            format!("shape for the {kernel:?} kernel ({layout:?})"),
            "K % 4 == 0, N % 4 == 0 unless ABt, M % 4 == 0 for AtB",
            format!("M = {m}, K = {k}, N = {n}"),
        ));
    }
    let (code, bias, saved) = match epilogue {
        Epilogue::None => (0, a, a),
        Epilogue::Bias(bias) => (1, bias, a),
        Epilogue::BiasSigmoid(bias) => (2, bias, a),
        Epilogue::SigmoidGrad(saved) => (3, a, saved),
    };
    match epilogue {
        Epilogue::Bias(bias) | Epilogue::BiasSigmoid(bias) => {
            check_gpu(gpu, OP, &[("bias", bias)])?;
            check_len(OP, "bias", bias, n)?;
            if accumulate {
                return Err(Error::invalid(OP, "accumulate", "false with a bias epilogue", true));
            }
        }
        Epilogue::SigmoidGrad(saved) => {
            check_gpu(gpu, OP, &[("saved", saved)])?;
            check_dims(OP, "saved output", saved, m, n)?;
        }
        Epilogue::None => {}
    }
    // matmul_vec4 reads A and B through their vec4 views (bindings 4 and 5); unused epilogue
    // operands are bound to A.
    let d_bias = bias_grad.unwrap_or(c);
    let bindings = match kernel {
        MatmulKernel::Vec4 => [(4, a), (5, b), (3, c), (6, bias), (7, saved), (8, d_bias)],
        _ => [(1, a), (2, b), (3, c), (6, bias), (7, saved), (8, d_bias)],
    };
    let params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        accumulate: accumulate as u32,
        tiles_n: tiles_n as u32,
        tiles: tiles as u32,
        epilogue: code,
        rows: rows as u32,
    };
    Dispatch::new(
        gpu,
        Kernel::Matmul(kernel, layout),
        bytemuck::bytes_of(&params),
        &bindings,
        tiles,
    )
}

// ---------------------------------------------------------------- bias add

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BiasParams {
    rows: u32,
    cols: u32,
    accumulate: u32,
    _pad: u32,
}

/// `y = x + bias`, bias broadcast over the rows. x, y (B,N); bias N elements.
pub fn bias_add_forward(gpu: &Gpu, x: &Tensor, bias: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "bias_add_forward";
    check_gpu(gpu, OP, &[("x", x), ("bias", bias), ("y", y)])?;
    let (rows, cols) = x.dims2(OP, "x")?;
    check_len(OP, "bias", bias, cols)?;
    check_dims(OP, "y", y, rows, cols)?;
    let params = BiasParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: 0,
        _pad: 0,
    };
    Dispatch::new(
        gpu,
        Kernel::BiasAddForward,
        bytemuck::bytes_of(&params),
        &[(1, x), (2, bias), (3, y)],
        (rows * cols).div_ceil(ELEMENTWISE_GROUP),
    )
}

/// `d_bias = Σ_rows d_y` (or `+=` with `accumulate`). d_y (B,N); d_bias N elements.
/// The input gradient of a bias add is `d_y` itself.
pub fn bias_add_backward(gpu: &Gpu, d_y: &Tensor, d_bias: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "bias_add_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("d_bias", d_bias)])?;
    let (rows, cols) = d_y.dims2(OP, "d_y")?;
    check_len(OP, "d_bias", d_bias, cols)?;
    let params = BiasParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: accumulate as u32,
        _pad: 0,
    };
    Dispatch::new(
        gpu,
        Kernel::BiasAddBackward,
        bytemuck::bytes_of(&params),
        &[(1, d_y), (3, d_bias)],
        cols.div_ceil(ELEMENTWISE_GROUP),
    )
}

// ---------------------------------------------------------------- sigmoid

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SigmoidParams {
    n: u32,
    accumulate: u32,
    _pad: [u32; 2],
}

/// `y = σ(x)` element-wise; x and y have the same element count.
pub fn sigmoid_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "sigmoid_forward";
    check_gpu(gpu, OP, &[("x", x), ("y", y)])?;
    check_len(OP, "y", y, x.len())?;
    let params = SigmoidParams {
        n: x.len() as u32,
        accumulate: 0,
        _pad: [0; 2],
    };
    Dispatch::new(
        gpu,
        Kernel::SigmoidForward,
        bytemuck::bytes_of(&params),
        &[(1, x), (3, y)],
        x.len().div_ceil(ELEMENTWISE_GROUP),
    )
}

/// `d_x = d_y ⊙ y ⊙ (1 − y)` from the saved forward output `y` (or `+=` with `accumulate`).
pub fn sigmoid_backward(gpu: &Gpu, d_y: &Tensor, y: &Tensor, d_x: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "sigmoid_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("y", y), ("d_x", d_x)])?;
    check_len(OP, "y", y, d_y.len())?;
    check_len(OP, "d_x", d_x, d_y.len())?;
    let params = SigmoidParams {
        n: d_y.len() as u32,
        accumulate: accumulate as u32,
        _pad: [0; 2],
    };
    Dispatch::new(
        gpu,
        Kernel::SigmoidBackward,
        bytemuck::bytes_of(&params),
        &[(1, d_y), (2, y), (3, d_x)],
        d_y.len().div_ceil(ELEMENTWISE_GROUP),
    )
}

// ---------------------------------------------------------------- mean squared error

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MseParams {
    rows: u32,
    cols: u32,
    sigmoid_grad: u32,
    _pad: u32,
}

fn mse_dims(
    op: &'static str,
    gpu: &Gpu,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    out: &Tensor,
) -> Result<MseParams> {
    check_gpu(
        gpu,
        op,
        &[("y", y), ("t", t), ("row_weights", row_weights), ("output", out)],
    )?;
    let (rows, cols) = y.dims2(op, "y")?;
    check_dims(op, "t", t, rows, cols)?;
    check_len(op, "row_weights", row_weights, rows)?;
    Ok(MseParams {
        rows: rows as u32,
        cols: cols as u32,
        sigmoid_grad: 0,
        _pad: 0,
    })
}

/// `loss = Σ_i w_i · ½ Σ_j (y_ij − t_ij)²`, one scalar, reduced deterministically. With
/// `w_i = 1/B` this is the mean over the batch. y, t (B,N); row_weights B; loss 1 element.
pub fn mse_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    const OP: &str = "mse_forward";
    let params = mse_dims(OP, gpu, y, t, row_weights, loss)?;
    check_len(OP, "loss", loss, 1)?;
    Dispatch::new(
        gpu,
        Kernel::MseForward,
        bytemuck::bytes_of(&params),
        &[(1, y), (2, t), (3, loss), (4, row_weights)],
        1,
    )
}

/// `d_y = w_i · (y − t)` (`(y − t)/B` with `w_i = 1/B`). y, t, d_y (B,N); row_weights B.
pub fn mse_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_y: &Tensor) -> Result<Dispatch> {
    mse_backward_inner(gpu, y, t, row_weights, d_y, false)
}

/// [`mse_backward`] through a sigmoid output layer `y = σ(z)` in one dispatch:
/// `d_z = w_i · (y − t) ⊙ y ⊙ (1 − y)`.
pub fn mse_sigmoid_backward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, d_z: &Tensor) -> Result<Dispatch> {
    mse_backward_inner(gpu, y, t, row_weights, d_z, true)
}

fn mse_backward_inner(
    gpu: &Gpu,
    y: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    d_y: &Tensor,
    sigmoid_grad: bool,
) -> Result<Dispatch> {
    const OP: &str = "mse_backward";
    let mut params = mse_dims(OP, gpu, y, t, row_weights, d_y)?;
    params.sigmoid_grad = sigmoid_grad as u32;
    check_len(OP, "d_y", d_y, y.len())?;
    Dispatch::new(
        gpu,
        Kernel::MseBackward,
        bytemuck::bytes_of(&params),
        &[(1, y), (2, t), (3, d_y), (4, row_weights)],
        y.len().div_ceil(ELEMENTWISE_GROUP),
    )
}

// ---------------------------------------------------------------- optimizer

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SgdParams {
    n: u32,
    coupled: u32,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    _pad: [u32; 3],
}

/// One in-place [`Sgd`] step of `weight` and `velocity` from `grad` (all the same length).
pub fn sgd_update(gpu: &Gpu, sgd: &Sgd, grad: &Tensor, weight: &Tensor, velocity: &Tensor) -> Result<Dispatch> {
    const OP: &str = "sgd_update";
    sgd.validate()?;
    check_gpu(gpu, OP, &[("grad", grad), ("weight", weight), ("velocity", velocity)])?;
    check_len(OP, "weight", weight, grad.len())?;
    check_len(OP, "velocity", velocity, grad.len())?;
    let params = SgdParams {
        n: grad.len() as u32,
        coupled: (sgd.decay == WeightDecay::Coupled) as u32,
        lr: sgd.lr,
        momentum: sgd.momentum,
        weight_decay: sgd.weight_decay,
        _pad: [0; 3],
    };
    Dispatch::new(
        gpu,
        Kernel::SgdUpdate,
        bytemuck::bytes_of(&params),
        &[(1, grad), (2, weight), (3, velocity)],
        grad.len().div_ceil(ELEMENTWISE_GROUP),
    )
}

// ---------------------------------------------------------------- element-wise sums

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ElementwiseParams {
    n: u32,
    accumulate: u32,
    _pad: [u32; 2],
}

/// `out = a + b`, all the same length.
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor, out: &Tensor) -> Result<Dispatch> {
    const OP: &str = "add";
    check_gpu(gpu, OP, &[("a", a), ("b", b), ("out", out)])?;
    check_len(OP, "b", b, a.len())?;
    check_len(OP, "out", out, a.len())?;
    let params = ElementwiseParams {
        n: a.len() as u32,
        accumulate: 0,
        _pad: [0; 2],
    };
    Dispatch::new(
        gpu,
        Kernel::Add,
        bytemuck::bytes_of(&params),
        &[(1, a), (2, b), (3, out)],
        a.len().div_ceil(ELEMENTWISE_GROUP),
    )
}

/// `out = a`, or `out += a` with `accumulate`; both the same length. This is how a
/// gradient passes through an add or a bias add.
pub fn copy(gpu: &Gpu, a: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "copy";
    check_gpu(gpu, OP, &[("a", a), ("out", out)])?;
    check_len(OP, "out", out, a.len())?;
    let params = ElementwiseParams {
        n: a.len() as u32,
        accumulate: accumulate as u32,
        _pad: [0; 2],
    };
    Dispatch::new(
        gpu,
        Kernel::Copy,
        bytemuck::bytes_of(&params),
        &[(1, a), (3, out)],
        a.len().div_ceil(ELEMENTWISE_GROUP),
    )
}

// ---------------------------------------------------------------- data movement

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct GatherParams {
    offset: u32,
    count: u32,
    batch: u32,
    features: u32,
    outputs: u32,
    _pad: [u32; 3],
}

/// The mini-batch of `count` rows listed in `indices[offset..offset + count]`, gathered from
/// the resident data set: rows of `all_x` (N,F) into `x` (B,F), of `all_t` (N,O) into `t`
/// (B,O), and the loss weights `row_weights` (B) = 1/count; rows count..B are zeroed (a
/// partial last batch).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gather_batch(
    gpu: &Gpu,
    all_x: &Tensor,
    all_t: &Tensor,
    indices: &Tensor,
    offset: usize,
    count: usize,
    x: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "gather_batch";
    let (batch, features) = x.dims2(OP, "x")?;
    let (_, outputs) = t.dims2(OP, "t")?;
    check_dims(OP, "t", t, batch, outputs)?;
    check_dims(OP, "all_t", all_t, all_x.dims2(OP, "all_x")?.0, outputs)?;
    check_dims(OP, "all_x", all_x, all_t.dims2(OP, "all_t")?.0, features)?;
    check_len(OP, "row_weights", row_weights, batch)?;
    if count == 0 || count > batch || offset + count > indices.len() {
        return Err(Error::invalid(
            OP,
            "rows",
            format!("1..={batch} rows within {} indices", indices.len()),
            format!("{count} rows from {offset}"),
        ));
    }
    let params = GatherParams {
        offset: offset as u32,
        count: count as u32,
        batch: batch as u32,
        features: features as u32,
        outputs: outputs as u32,
        _pad: [0; 3],
    };
    Dispatch::new(
        gpu,
        Kernel::GatherBatch,
        bytemuck::bytes_of(&params),
        &[(1, all_x), (2, all_t), (3, indices), (4, x), (5, t), (6, row_weights)],
        (batch * (features + outputs + 1)).div_ceil(ELEMENTWISE_GROUP),
    )
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CopyRowsParams {
    dst_row0: u32,
    count: u32,
    cols: u32,
    _pad: u32,
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
    let params = CopyRowsParams {
        dst_row0: dst_row0 as u32,
        count: count as u32,
        cols: cols as u32,
        _pad: 0,
    };
    Dispatch::new(
        gpu,
        Kernel::CopyRows,
        bytemuck::bytes_of(&params),
        &[(7, src), (8, dst)],
        (count * cols).div_ceil(ELEMENTWISE_GROUP),
    )
}
