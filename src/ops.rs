//! One builder per kernel, forward and backward side by side. Each checks its operands'
//! shapes and returns a [`Dispatch`] to run with [`Gpu::run`] (or record many times).

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{Dispatch, Kernel, MatmulKernel, MatmulLayout};
use crate::optim::{Sgd, WeightDecay};
use crate::tensor::Tensor;

const ELEMENTWISE_GROUP: usize = 256;
/// Elements each invocation of the SGD kernel updates (`PER_INVOCATION` in optim.wgsl).
const SGD_PER_INVOCATION: usize = 8;

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

/// Every op runs over a stack of models at once (see `Tensor::stack`): the output's model
/// count, and each operand's model stride in the order given: 0 for a plain tensor that all
/// models share (read-only operands only), its stride for one stacked like the output.
fn model_strides(op: &'static str, output: &Tensor, operands: &[(&str, &Tensor, bool)]) -> Result<(usize, Vec<u32>)> {
    let models = output.models();
    operands
        .iter()
        .map(|&(what, tensor, written)| {
            if tensor.models() == models || (tensor.models() == 1 && !written) {
                Ok(tensor.model_stride() as u32)
            } else {
                Err(Error::shape(
                    op,
                    format!("{what} (stacked models)"),
                    format!("{models}{}", if written { "" } else { ", or 1 shared" }),
                    tensor.models(),
                ))
            }
        })
        .collect::<Result<Vec<_>>>()
        .map(|strides| (models, strides))
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
    a_stride: u32,
    b_stride: u32,
    c_stride: u32,
    bias_stride: u32,
    saved_stride: u32,
    d_bias_stride: u32,
    gated: u32,
    _pad: u32,
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
    matmul_inner(gpu, kernel, layout, a, b, c, accumulate, epilogue, None, None)
}

/// [`matmul_fused`] over a stack whose models may sit out a step: a model whose entry of
/// `active` (u32, one per model) is 0 skips the product (the trainer's gather kernel
/// writes the flags: a model whose epochs are over, or whose rows ran out, does no work).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_fused_gated(
    gpu: &Gpu,
    kernel: MatmulKernel,
    layout: MatmulLayout,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    accumulate: bool,
    epilogue: Epilogue<'_>,
    active: &Tensor,
) -> Result<Dispatch> {
    matmul_inner(gpu, kernel, layout, a, b, c, accumulate, epilogue, None, Some(active))
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
        None,
    )
}

/// [`matmul_bias_grad`] gated by per-model flags, as [`matmul_fused_gated`].
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_bias_grad_gated(
    gpu: &Gpu,
    kernel: MatmulKernel,
    x: &Tensor,
    d_y: &Tensor,
    d_w: &Tensor,
    d_bias: &Tensor,
    accumulate: bool,
    active: &Tensor,
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
        Some(active),
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
    active: Option<&Tensor>,
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
        if !matches!(
            kernel,
            MatmulKernel::Naive | MatmulKernel::Tiled | MatmulKernel::Lanes | MatmulKernel::LanesDown
        ) {
            return Err(Error::invalid(
                OP,
                "kernel for a bias gradient",
                "any kernel but Vec4",
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
    let (models, strides) = model_strides(
        OP,
        c,
        &[
            ("a", a, false),
            ("b", b, false),
            ("c", c, true),
            ("bias", bias, false),
            ("saved", saved, false),
            ("d_bias", d_bias, true),
        ],
    )?;
    if kernel == MatmulKernel::Vec4 && strides[..2].iter().any(|s| s % 4 != 0) {
        return Err(Error::invalid(
            OP,
            "model strides of a and b for the Vec4 kernel",
            "multiples of 4",
            format!("{:?}", &strides[..2]),
        ));
    }
    if let Some(active) = active {
        check_len(OP, "active", active, models)?;
    }
    let flags = active.unwrap_or(a); // never read unless gated
    // The tiled kernel reads op(A) and op(B) both ways (vec4 views where aligned). A vec4
    // binding needs at least 16 bytes; an operand shorter than that is never read as vec4s
    // (see matmul_tiled.wgsl), so its view gets a stand-in.
    let short = |t: &Tensor| kernel == MatmulKernel::Tiled && t.span() < 4;
    let stand_in = if short(a) || short(b) {
        Some(Tensor::zeros(gpu, &[4])?)
    } else {
        None
    };
    let a4 = match &stand_in {
        Some(stand_in) if short(a) => stand_in,
        _ => a,
    };
    let b4 = match &stand_in {
        Some(stand_in) if short(b) => stand_in,
        _ => b,
    };
    let bindings = match kernel {
        MatmulKernel::Vec4 => vec![(4, a), (5, b), (3, c), (6, bias), (7, saved), (8, d_bias), (9, flags)],
        MatmulKernel::Tiled => vec![
            (1, a),
            (2, b),
            (4, a4),
            (5, b4),
            (3, c),
            (6, bias),
            (7, saved),
            (8, d_bias),
            (9, flags),
        ],
        _ => vec![(1, a), (2, b), (3, c), (6, bias), (7, saved), (8, d_bias), (9, flags)],
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
        a_stride: strides[0],
        b_stride: strides[1],
        c_stride: strides[2],
        bias_stride: strides[3],
        saved_stride: strides[4],
        d_bias_stride: strides[5],
        gated: active.is_some() as u32,
        _pad: 0,
    };
    Dispatch::stacked(
        gpu,
        Kernel::Matmul(kernel, layout),
        bytemuck::bytes_of(&params),
        &bindings,
        tiles,
        models,
    )
}

// ---------------------------------------------------------------- bias add

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct BiasParams {
    rows: u32,
    cols: u32,
    accumulate: u32,
    input_stride: u32,
    bias_stride: u32,
    output_stride: u32,
    _pad: [u32; 2],
}

/// `y = x + bias`, bias broadcast over the rows. x, y (B,N); bias N elements.
pub fn bias_add_forward(gpu: &Gpu, x: &Tensor, bias: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "bias_add_forward";
    check_gpu(gpu, OP, &[("x", x), ("bias", bias), ("y", y)])?;
    let (rows, cols) = x.dims2(OP, "x")?;
    check_len(OP, "bias", bias, cols)?;
    check_dims(OP, "y", y, rows, cols)?;
    let (models, strides) = model_strides(OP, y, &[("x", x, false), ("bias", bias, false), ("y", y, true)])?;
    let params = BiasParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: 0,
        input_stride: strides[0],
        bias_stride: strides[1],
        output_stride: strides[2],
        _pad: [0; 2],
    };
    Dispatch::stacked(
        gpu,
        Kernel::BiasAddForward,
        bytemuck::bytes_of(&params),
        &[(1, x), (2, bias), (3, y)],
        (rows * cols).div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

/// `d_bias = Σ_rows d_y` (or `+=` with `accumulate`). d_y (B,N); d_bias N elements.
/// The input gradient of a bias add is `d_y` itself.
pub fn bias_add_backward(gpu: &Gpu, d_y: &Tensor, d_bias: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "bias_add_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("d_bias", d_bias)])?;
    let (rows, cols) = d_y.dims2(OP, "d_y")?;
    check_len(OP, "d_bias", d_bias, cols)?;
    let (models, strides) = model_strides(OP, d_bias, &[("d_y", d_y, false), ("d_bias", d_bias, true)])?;
    let params = BiasParams {
        rows: rows as u32,
        cols: cols as u32,
        accumulate: accumulate as u32,
        input_stride: strides[0],
        bias_stride: 0,
        output_stride: strides[1],
        _pad: [0; 2],
    };
    Dispatch::stacked(
        gpu,
        Kernel::BiasAddBackward,
        bytemuck::bytes_of(&params),
        &[(1, d_y), (3, d_bias)],
        cols.div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

// ---------------------------------------------------------------- sigmoid

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SigmoidParams {
    n: u32,
    accumulate: u32,
    input_stride: u32,
    saved_stride: u32,
    output_stride: u32,
    _pad: [u32; 3],
}

/// `y = σ(x)` element-wise; x and y have the same element count.
pub fn sigmoid_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Dispatch> {
    const OP: &str = "sigmoid_forward";
    check_gpu(gpu, OP, &[("x", x), ("y", y)])?;
    check_len(OP, "y", y, x.len())?;
    let (models, strides) = model_strides(OP, y, &[("x", x, false), ("y", y, true)])?;
    let params = SigmoidParams {
        n: x.len() as u32,
        accumulate: 0,
        input_stride: strides[0],
        saved_stride: 0,
        output_stride: strides[1],
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::SigmoidForward,
        bytemuck::bytes_of(&params),
        &[(1, x), (3, y)],
        x.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

/// `d_x = d_y ⊙ y ⊙ (1 − y)` from the saved forward output `y` (or `+=` with `accumulate`).
pub fn sigmoid_backward(gpu: &Gpu, d_y: &Tensor, y: &Tensor, d_x: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "sigmoid_backward";
    check_gpu(gpu, OP, &[("d_y", d_y), ("y", y), ("d_x", d_x)])?;
    check_len(OP, "y", y, d_y.len())?;
    check_len(OP, "d_x", d_x, d_y.len())?;
    let (models, strides) = model_strides(OP, d_x, &[("d_y", d_y, false), ("y", y, false), ("d_x", d_x, true)])?;
    let params = SigmoidParams {
        n: d_y.len() as u32,
        accumulate: accumulate as u32,
        input_stride: strides[0],
        saved_stride: strides[1],
        output_stride: strides[2],
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::SigmoidBackward,
        bytemuck::bytes_of(&params),
        &[(1, d_y), (2, y), (3, d_x)],
        d_y.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

// ---------------------------------------------------------------- mean squared error

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct MseParams {
    rows: u32,
    cols: u32,
    sigmoid_grad: u32,
    prediction_stride: u32,
    target_stride: u32,
    output_stride: u32,
    weight_stride: u32,
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
    let (_, strides) = model_strides(
        op,
        out,
        &[
            ("y", y, false),
            ("t", t, false),
            ("output", out, true),
            ("row_weights", row_weights, false),
        ],
    )?;
    Ok(MseParams {
        rows: rows as u32,
        cols: cols as u32,
        sigmoid_grad: 0,
        prediction_stride: strides[0],
        target_stride: strides[1],
        output_stride: strides[2],
        weight_stride: strides[3],
        _pad: 0,
    })
}

/// `loss = Σ_i w_i · ½ Σ_j (y_ij − t_ij)²`, one scalar, reduced deterministically. With
/// `w_i = 1/B` this is the mean over the batch. y, t (B,N); row_weights B; loss 1 element.
pub fn mse_forward(gpu: &Gpu, y: &Tensor, t: &Tensor, row_weights: &Tensor, loss: &Tensor) -> Result<Dispatch> {
    const OP: &str = "mse_forward";
    let params = mse_dims(OP, gpu, y, t, row_weights, loss)?;
    check_len(OP, "loss", loss, 1)?;
    Dispatch::stacked(
        gpu,
        Kernel::MseForward,
        bytemuck::bytes_of(&params),
        &[(1, y), (2, t), (3, loss), (4, row_weights)],
        1,
        loss.models(),
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
    Dispatch::stacked(
        gpu,
        Kernel::MseBackward,
        bytemuck::bytes_of(&params),
        &[(1, y), (2, t), (3, d_y), (4, row_weights)],
        y.len().div_ceil(ELEMENTWISE_GROUP),
        d_y.models(),
    )
}

// ---------------------------------------------------------------- optimizer

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SgdParams {
    n: u32,
    models: u32,
    _pad: [u32; 2],
}

/// One model's optimizer settings as the update kernel reads them (`hyperparams`, one per
/// stacked model).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub(crate) struct SgdHyperparams {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    coupled: u32,
}

impl From<&Sgd> for SgdHyperparams {
    fn from(sgd: &Sgd) -> Self {
        SgdHyperparams {
            lr: sgd.lr,
            momentum: sgd.momentum,
            weight_decay: sgd.weight_decay,
            coupled: (sgd.decay == WeightDecay::Coupled) as u32,
        }
    }
}

/// One in-place SGD step of `weight` and `velocity` from `grad` for each of `models`
/// models laid out back to back (all three `models · n` elements), model m with the
/// settings `hyperparams[m]` (written with [`SgdHyperparams`]), and only where `active[m]`
/// (u32) is not 0.
pub(crate) fn sgd_update_stacked(
    gpu: &Gpu,
    models: usize,
    grad: &Tensor,
    weight: &Tensor,
    velocity: &Tensor,
    hyperparams: &Tensor,
    active: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "sgd_update";
    check_gpu(gpu, OP, &[("grad", grad), ("weight", weight), ("velocity", velocity)])?;
    check_len(OP, "weight", weight, grad.len())?;
    check_len(OP, "velocity", velocity, grad.len())?;
    check_len(OP, "hyperparams", hyperparams, 4 * models)?;
    check_len(OP, "active", active, models)?;
    if models == 0 || !grad.len().is_multiple_of(models) {
        return Err(Error::shape(
            OP,
            "grad",
            format!("a multiple of {models} models"),
            grad.len(),
        ));
    }
    let params = SgdParams {
        n: (grad.len() / models) as u32,
        models: models as u32,
        _pad: [0; 2],
    };
    Dispatch::new(
        gpu,
        Kernel::SgdUpdate,
        bytemuck::bytes_of(&params),
        &[(1, grad), (2, weight), (3, velocity), (4, hyperparams), (5, active)],
        grad.len().div_ceil(ELEMENTWISE_GROUP * SGD_PER_INVOCATION),
    )
}

/// One in-place [`Sgd`] step of `weight` and `velocity` from `grad` (all the same length).
/// Its settings and an always-on flag go to two small buffers that the returned dispatch
/// keeps alive.
pub fn sgd_update(gpu: &Gpu, sgd: &Sgd, grad: &Tensor, weight: &Tensor, velocity: &Tensor) -> Result<Dispatch> {
    sgd.validate()?;
    let hyperparams = Tensor::from_slice(gpu, &[4], bytemuck::cast_slice(&[SgdHyperparams::from(sgd)]))?;
    let active = Tensor::from_u32(gpu, &[1], &[1])?;
    sgd_update_stacked(gpu, 1, grad, weight, velocity, &hyperparams, &active)
}

// ---------------------------------------------------------------- element-wise sums

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ElementwiseParams {
    n: u32,
    accumulate: u32,
    a_stride: u32,
    b_stride: u32,
    output_stride: u32,
    _pad: [u32; 3],
}

/// `out = a + b`, all the same length.
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor, out: &Tensor) -> Result<Dispatch> {
    const OP: &str = "add";
    check_gpu(gpu, OP, &[("a", a), ("b", b), ("out", out)])?;
    check_len(OP, "b", b, a.len())?;
    check_len(OP, "out", out, a.len())?;
    let (models, strides) = model_strides(OP, out, &[("a", a, false), ("b", b, false), ("out", out, true)])?;
    let params = ElementwiseParams {
        n: a.len() as u32,
        accumulate: 0,
        a_stride: strides[0],
        b_stride: strides[1],
        output_stride: strides[2],
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::Add,
        bytemuck::bytes_of(&params),
        &[(1, a), (2, b), (3, out)],
        a.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

/// `out = a`, or `out += a` with `accumulate`; both the same length. This is how a
/// gradient passes through an add or a bias add.
pub fn copy(gpu: &Gpu, a: &Tensor, out: &Tensor, accumulate: bool) -> Result<Dispatch> {
    const OP: &str = "copy";
    check_gpu(gpu, OP, &[("a", a), ("out", out)])?;
    check_len(OP, "out", out, a.len())?;
    let (models, strides) = model_strides(OP, out, &[("a", a, false), ("out", out, true)])?;
    let params = ElementwiseParams {
        n: a.len() as u32,
        accumulate: accumulate as u32,
        a_stride: strides[0],
        b_stride: 0,
        output_stride: strides[1],
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::Copy,
        bytemuck::bytes_of(&params),
        &[(1, a), (3, out)],
        a.len().div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

// ---------------------------------------------------------------- data movement

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
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

/// Batch `offset / B` of each stacked model, gathered from the resident data set: for model
/// m, with `count = min(B, rows_m − offset)` (`rows_m = plan[2m]`), the rows listed in
/// `indices[m][offset..offset + count]` of `all_x` (N,F) into `x` (B,F), of `all_t` (N,O)
/// into `t` (B,O), and the loss weights `row_weights` (B) = 1/count; rows count..B are
/// zeroed (a partial last batch). `active[m]` (u32) becomes whether the model trains on this
/// batch: count > 0 and `offset / B < plan[2m + 1]` (its steps this epoch). `indices`,
/// `x`, `t`, `row_weights` and `active` hold one entry per model; `plan` is u32 pairs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gather_batch(
    gpu: &Gpu,
    all_x: &Tensor,
    all_t: &Tensor,
    indices: &Tensor,
    plan: &Tensor,
    offset: usize,
    x: &Tensor,
    t: &Tensor,
    row_weights: &Tensor,
    active: &Tensor,
) -> Result<Dispatch> {
    const OP: &str = "gather_batch";
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
    check_len(OP, "active", active, models)?;
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
            (1, all_x),
            (2, all_t),
            (3, indices),
            (4, x),
            (5, t),
            (6, row_weights),
            (9, plan),
            (10, active),
        ],
        (batch * (features + outputs + 1)).div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct CopyRowsParams {
    dst_row0: u32,
    count: u32,
    cols: u32,
    src_stride: u32,
    dst_stride: u32,
    _pad: [u32; 3],
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
        _pad: [0; 3],
    };
    Dispatch::stacked(
        gpu,
        Kernel::CopyRows,
        bytemuck::bytes_of(&params),
        &[(7, src), (8, dst)],
        (count * cols).div_ceil(ELEMENTWISE_GROUP),
        models,
    )
}

/// Every kernel run over a stack of models gives, bit for bit, what it gives run on each
/// model alone: the same code path per model, only the operands' starts differ. Stacks are
/// laid out with gaps between models (strides past the tensor's length) so a kernel that
/// ignored the stride would read the wrong model. Outputs start from random values (so a
/// model left unwritten shows, and accumulation has something to add to).
#[cfg(test)]
mod stacked_tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const MODELS: usize = 3;

    fn gpu() -> Gpu {
        Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)")
    }

    /// A gap after each model, keeping strides multiples of 4 (the vec4 kernel needs it).
    fn stride_of(len: usize) -> usize {
        len.div_ceil(4) * 4 + 8
    }

    struct Operand {
        shape: Vec<usize>,
        shared: bool,
        /// One value list per model (one in all when shared).
        values: Vec<Vec<f32>>,
    }

    fn operand(rng: &mut StdRng, shape: &[usize], shared: bool, low: f32, high: f32) -> Operand {
        let len: usize = shape.iter().product();
        let copies = if shared { 1 } else { MODELS };
        Operand {
            shape: shape.to_vec(),
            shared,
            values: (0..copies)
                .map(|_| (0..len).map(|_| rng.random_range(low..high)).collect())
                .collect(),
        }
    }

    fn stacked(gpu: &Gpu, op: &Operand) -> Tensor {
        let len: usize = op.shape.iter().product();
        if op.shared {
            return Tensor::from_slice(gpu, &op.shape, &op.values[0]).unwrap();
        }
        let stride = stride_of(len);
        let mut host = vec![f32::NAN; MODELS * stride];
        for (m, values) in op.values.iter().enumerate() {
            host[m * stride..m * stride + len].copy_from_slice(values);
        }
        Tensor::from_slice(gpu, &[MODELS * stride], &host)
            .unwrap()
            .view(0, &op.shape)
            .stack(MODELS, stride)
    }

    fn single(gpu: &Gpu, op: &Operand, m: usize) -> Tensor {
        let values = if op.shared { &op.values[0] } else { &op.values[m] };
        Tensor::from_slice(gpu, &op.shape, values).unwrap()
    }

    /// Runs `build` once over stacks of `inputs` and `outputs`, and once per model on plain
    /// tensors, and compares every output bit for bit.
    fn check(
        gpu: &Gpu,
        what: &str,
        inputs: &[Operand],
        outputs: &[Operand],
        build: impl Fn(&Gpu, &[Tensor], &[Tensor]) -> Result<Dispatch>,
    ) {
        let ins: Vec<Tensor> = inputs.iter().map(|op| stacked(gpu, op)).collect();
        let outs: Vec<Tensor> = outputs.iter().map(|op| stacked(gpu, op)).collect();
        gpu.run(&[&build(gpu, &ins, &outs).unwrap()]).unwrap();
        let got: Vec<Vec<f32>> = outs.iter().map(|t| t.to_vec().unwrap()).collect();
        for m in 0..MODELS {
            let ins: Vec<Tensor> = inputs.iter().map(|op| single(gpu, op, m)).collect();
            let outs: Vec<Tensor> = outputs.iter().map(|op| single(gpu, op, m)).collect();
            gpu.run(&[&build(gpu, &ins, &outs).unwrap()]).unwrap();
            for (o, out) in outs.iter().enumerate() {
                let want = out.to_vec().unwrap();
                let len = want.len();
                let got = &got[o][m * len..(m + 1) * len];
                let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{what}: output {o} of model {m} differs from the model run alone");
            }
        }
    }

    #[test]
    fn stacked_matmuls_equal_per_model_runs() {
        let gpu = gpu();
        let mut rng = StdRng::seed_from_u64(11);
        let kernels = crate::kernels::MATMUL_KERNELS;
        let layouts = [MatmulLayout::AB, MatmulLayout::ABt, MatmulLayout::AtB];
        // (M, K, N): one shape every kernel supports, one awkward one for the scalar kernels
        for (m, k, n) in [(8, 12, 20), (7, 13, 5)] {
            for &kernel in &kernels {
                for layout in layouts {
                    if !kernel.supports(layout, m, k, n) {
                        continue;
                    }
                    let (a_shape, b_shape) = match layout {
                        MatmulLayout::AB => ([m, k], [k, n]),
                        MatmulLayout::ABt => ([m, k], [n, k]),
                        MatmulLayout::AtB => ([k, m], [k, n]),
                    };
                    for (epilogue, accumulate, shared_a) in [
                        (0, false, false),
                        (0, true, true),
                        (1, false, false),
                        (2, false, true),
                        (3, true, false),
                    ] {
                        let inputs = [
                            operand(&mut rng, &a_shape, shared_a, -1.0, 1.0),
                            operand(&mut rng, &b_shape, false, -1.0, 1.0),
                            operand(&mut rng, &[n], false, -1.0, 1.0),
                            operand(&mut rng, &[m, n], false, 0.0, 1.0),
                        ];
                        let outputs = [operand(&mut rng, &[m, n], false, -1.0, 1.0)];
                        let what =
                            format!("{kernel:?} {layout:?} M={m} K={k} N={n} epilogue {epilogue} acc {accumulate}");
                        check(&gpu, &what, &inputs, &outputs, |gpu, ins, outs| {
                            let epilogue = match epilogue {
                                1 => Epilogue::Bias(&ins[2]),
                                2 => Epilogue::BiasSigmoid(&ins[2]),
                                3 => Epilogue::SigmoidGrad(&ins[3]),
                                _ => Epilogue::None,
                            };
                            matmul_fused(gpu, kernel, layout, &ins[0], &ins[1], &outs[0], accumulate, epilogue)
                        });
                    }
                }
            }
        }
        for kernel in crate::kernels::MATMUL_KERNELS {
            if kernel == MatmulKernel::Vec4 {
                continue; // cannot add the row of ones (refused: tests/kernels.rs)
            }
            for accumulate in [false, true] {
                let (b, i, o) = (7, 5, 11);
                let inputs = [
                    operand(&mut rng, &[b, i], false, -1.0, 1.0),
                    operand(&mut rng, &[b, o], false, -1.0, 1.0),
                ];
                let outputs = [
                    operand(&mut rng, &[i, o], false, -1.0, 1.0),
                    operand(&mut rng, &[o], false, -1.0, 1.0),
                ];
                check(
                    &gpu,
                    &format!("bias grad {kernel:?} acc {accumulate}"),
                    &inputs,
                    &outputs,
                    |gpu, ins, outs| matmul_bias_grad(gpu, kernel, &ins[0], &ins[1], &outs[0], &outs[1], accumulate),
                );
            }
        }
    }

    /// A gated model (flag 0) keeps its output as it was; the others compute as usual.
    #[test]
    fn gated_matmuls_skip_inactive_models() {
        let gpu = gpu();
        let mut rng = StdRng::seed_from_u64(15);
        let (m, k, n) = (9, 8, 12);
        let flags = Tensor::from_u32(&gpu, &[MODELS], &[1, 0, 1]).unwrap();
        for kernel in crate::kernels::MATMUL_KERNELS {
            let inputs = [
                operand(&mut rng, &[m, k], false, -1.0, 1.0),
                operand(&mut rng, &[k, n], false, -1.0, 1.0),
            ];
            let c0 = operand(&mut rng, &[m, n], false, -1.0, 1.0);
            let (a, b, c) = (stacked(&gpu, &inputs[0]), stacked(&gpu, &inputs[1]), stacked(&gpu, &c0));
            let dispatch = matmul_fused_gated(
                &gpu,
                kernel,
                MatmulLayout::AB,
                &a,
                &b,
                &c,
                false,
                Epilogue::None,
                &flags,
            );
            gpu.run(&[&dispatch.unwrap()]).unwrap();
            let got = c.to_vec().unwrap();
            let len = m * n;
            assert_eq!(
                &got[len..2 * len],
                &c0.values[1][..],
                "{kernel:?}: the gated model's output moved"
            );
            for model in [0, 2] {
                let (a1, b1) = (single(&gpu, &inputs[0], model), single(&gpu, &inputs[1], model));
                let c1 = Tensor::zeros(&gpu, &[m, n]).unwrap();
                gpu.run(&[&matmul(&gpu, kernel, MatmulLayout::AB, &a1, &b1, &c1, false).unwrap()])
                    .unwrap();
                assert_eq!(
                    &got[model * len..(model + 1) * len],
                    &c1.to_vec().unwrap()[..],
                    "{kernel:?}: model {model}"
                );
            }
        }
    }

    #[test]
    fn stacked_elementwise_and_loss_kernels_equal_per_model_runs() {
        let gpu = gpu();
        let mut rng = StdRng::seed_from_u64(12);
        let (rows, cols) = (9, 7);
        let x = |rng: &mut StdRng| operand(rng, &[rows, cols], false, -2.0, 2.0);
        let out = |rng: &mut StdRng| operand(rng, &[rows, cols], false, -1.0, 1.0);
        let bias = operand(&mut rng, &[cols], false, -1.0, 1.0);
        check(
            &gpu,
            "bias_add_forward",
            &[x(&mut rng), bias],
            &[out(&mut rng)],
            |gpu, i, o| bias_add_forward(gpu, &i[0], &i[1], &o[0]),
        );
        for accumulate in [false, true] {
            let d_bias = operand(&mut rng, &[cols], false, -1.0, 1.0);
            check(&gpu, "bias_add_backward", &[x(&mut rng)], &[d_bias], |gpu, i, o| {
                bias_add_backward(gpu, &i[0], &o[0], accumulate)
            });
            let saved = operand(&mut rng, &[rows, cols], false, 0.0, 1.0);
            check(
                &gpu,
                "sigmoid_backward",
                &[x(&mut rng), saved],
                &[out(&mut rng)],
                |gpu, i, o| sigmoid_backward(gpu, &i[0], &i[1], &o[0], accumulate),
            );
            check(&gpu, "copy", &[x(&mut rng)], &[out(&mut rng)], |gpu, i, o| {
                copy(gpu, &i[0], &o[0], accumulate)
            });
        }
        check(
            &gpu,
            "sigmoid_forward",
            &[x(&mut rng)],
            &[out(&mut rng)],
            |gpu, i, o| sigmoid_forward(gpu, &i[0], &o[0]),
        );
        let shared = operand(&mut rng, &[rows, cols], true, -1.0, 1.0);
        check(
            &gpu,
            "add (one operand shared)",
            &[x(&mut rng), shared],
            &[out(&mut rng)],
            |gpu, i, o| add(gpu, &i[0], &i[1], &o[0]),
        );
        let mse_inputs = |rng: &mut StdRng| {
            [
                operand(rng, &[rows, cols], false, 0.0, 1.0),
                operand(rng, &[rows, cols], false, 0.0, 1.0),
                operand(rng, &[rows], false, 0.0, 0.2),
            ]
        };
        let loss = operand(&mut rng, &[1], false, -1.0, 1.0);
        check(&gpu, "mse_forward", &mse_inputs(&mut rng), &[loss], |gpu, i, o| {
            mse_forward(gpu, &i[0], &i[1], &i[2], &o[0])
        });
        check(
            &gpu,
            "mse_backward",
            &mse_inputs(&mut rng),
            &[out(&mut rng)],
            |gpu, i, o| mse_backward(gpu, &i[0], &i[1], &i[2], &o[0]),
        );
        check(
            &gpu,
            "mse_sigmoid_backward",
            &mse_inputs(&mut rng),
            &[out(&mut rng)],
            |gpu, i, o| mse_sigmoid_backward(gpu, &i[0], &i[1], &i[2], &o[0]),
        );
        let dst = operand(&mut rng, &[20, cols], false, -1.0, 1.0);
        check(&gpu, "copy_rows", &[x(&mut rng)], &[dst], |gpu, i, o| {
            copy_rows(gpu, &i[0], &o[0], 6, 8)
        });
    }

    /// Each model's own row list, row count and step budget: the gather of a stack equals
    /// each model's gather alone, and its `active` flags say who trains on this batch.
    #[test]
    fn stacked_gather_follows_each_models_plan() {
        let gpu = gpu();
        let mut rng = StdRng::seed_from_u64(13);
        let (n, features, outputs, batch, longest) = (40, 5, 3, 4, 10);
        let all_x = Tensor::from_slice(
            &gpu,
            &[n, features],
            &(0..n * features).map(|_| rng.random()).collect::<Vec<f32>>(),
        )
        .unwrap();
        let all_t = Tensor::from_slice(
            &gpu,
            &[n, outputs],
            &(0..n * outputs).map(|_| rng.random()).collect::<Vec<f32>>(),
        )
        .unwrap();
        // model 0: 10 rows, trains 3 batches; model 1: 6 rows (its 3rd batch is empty);
        // model 2: 10 rows but done for this epoch (0 steps)
        let rows = [10u32, 6, 10];
        let steps = [3u32, 2, 0];
        let indices: Vec<u32> = (0..MODELS * longest).map(|_| rng.random_range(0..n as u32)).collect();
        let plan: Vec<u32> = (0..MODELS).flat_map(|m| [rows[m], steps[m]]).collect();
        let stacked_indices = Tensor::from_u32(&gpu, &[MODELS * longest], &indices)
            .unwrap()
            .view(0, &[longest])
            .stack(MODELS, longest);
        let plan = Tensor::from_u32(&gpu, &[2 * MODELS], &plan).unwrap();
        let x = Tensor::stacked_zeros(&gpu, MODELS, &[batch, features]).unwrap();
        let t = Tensor::stacked_zeros(&gpu, MODELS, &[batch, outputs]).unwrap();
        let w = Tensor::stacked_zeros(&gpu, MODELS, &[batch]).unwrap();
        let active = Tensor::from_u32(&gpu, &[MODELS], &[7; MODELS]).unwrap();
        for j in 0..3 {
            let offset = j * batch;
            let gather = gather_batch(
                &gpu,
                &all_x,
                &all_t,
                &stacked_indices,
                &plan,
                offset,
                &x,
                &t,
                &w,
                &active,
            )
            .unwrap();
            gpu.run(&[&gather]).unwrap();
            let (got_x, got_t, got_w) = (x.to_vec().unwrap(), t.to_vec().unwrap(), w.to_vec().unwrap());
            let got_active: Vec<u32> = active.to_vec().unwrap().iter().map(|v| v.to_bits()).collect();
            for m in 0..MODELS {
                let count = (rows[m] as usize).saturating_sub(offset).min(batch);
                let want_active = u32::from(count > 0 && (j as u32) < steps[m]);
                assert_eq!(got_active[m], want_active, "batch {j}, model {m}: active flag");
                let one_plan = Tensor::from_u32(&gpu, &[2], &[rows[m], steps[m]]).unwrap();
                let one_indices = Tensor::from_u32(&gpu, &[longest], &indices[m * longest..(m + 1) * longest]).unwrap();
                let (x1, t1, w1) = (
                    Tensor::full(&gpu, &[batch, features], f32::NAN).unwrap(),
                    Tensor::full(&gpu, &[batch, outputs], f32::NAN).unwrap(),
                    Tensor::full(&gpu, &[batch], f32::NAN).unwrap(),
                );
                let one_active = Tensor::from_u32(&gpu, &[1], &[7]).unwrap();
                let gather = gather_batch(
                    &gpu,
                    &all_x,
                    &all_t,
                    &one_indices,
                    &one_plan,
                    offset,
                    &x1,
                    &t1,
                    &w1,
                    &one_active,
                )
                .unwrap();
                gpu.run(&[&gather]).unwrap();
                let want_w = w1.to_vec().unwrap();
                for (i, &weight) in want_w.iter().enumerate() {
                    let expected = if i < count { 1.0 / count as f32 } else { 0.0 };
                    assert_eq!(weight, expected, "batch {j}, model {m}: row weight {i}");
                }
                assert_eq!(
                    &got_x[m * batch * features..(m + 1) * batch * features],
                    &x1.to_vec().unwrap()[..]
                );
                assert_eq!(
                    &got_t[m * batch * outputs..(m + 1) * batch * outputs],
                    &t1.to_vec().unwrap()[..]
                );
                assert_eq!(&got_w[m * batch..(m + 1) * batch], &want_w[..]);
            }
        }
    }

    /// One dispatch updates every model with its own settings; an inactive model's weights
    /// and velocity stay as they were, bit for bit.
    #[test]
    fn stacked_sgd_uses_each_models_settings_and_skips_inactive_ones() {
        let gpu = gpu();
        let mut rng = StdRng::seed_from_u64(14);
        let n = 37;
        let optimizers = [
            Sgd::new(0.1).momentum(0.9).weight_decay(1e-3),
            Sgd::new(0.05).weight_decay(1e-2).decay(WeightDecay::Coupled),
            Sgd::new(0.5).momentum(0.5),
        ];
        let active = [1u32, 1, 0];
        let random = |rng: &mut StdRng| -> Vec<f32> { (0..MODELS * n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (grad, weight, velocity) = (random(&mut rng), random(&mut rng), random(&mut rng));
        let hyper: Vec<SgdHyperparams> = optimizers.iter().map(SgdHyperparams::from).collect();
        let stacked = |v: &[f32]| Tensor::from_slice(&gpu, &[MODELS * n], v).unwrap();
        let (g, w, v) = (stacked(&grad), stacked(&weight), stacked(&velocity));
        let hyper = Tensor::from_slice(&gpu, &[4 * MODELS], bytemuck::cast_slice(&hyper)).unwrap();
        let flags = Tensor::from_u32(&gpu, &[MODELS], &active).unwrap();
        gpu.run(&[&sgd_update_stacked(&gpu, MODELS, &g, &w, &v, &hyper, &flags).unwrap()])
            .unwrap();
        let (got_w, got_v) = (w.to_vec().unwrap(), v.to_vec().unwrap());
        for m in 0..MODELS {
            let part = |all: &[f32]| all[m * n..(m + 1) * n].to_vec();
            let one = |values: &[f32]| Tensor::from_slice(&gpu, &[n], values).unwrap();
            let (g1, w1, v1) = (one(&part(&grad)), one(&part(&weight)), one(&part(&velocity)));
            if active[m] == 1 {
                gpu.run(&[&sgd_update(&gpu, &optimizers[m], &g1, &w1, &v1).unwrap()])
                    .unwrap();
            }
            assert_eq!(part(&got_w), w1.to_vec().unwrap(), "model {m}: weights");
            assert_eq!(part(&got_v), v1.to_vec().unwrap(), "model {m}: velocity");
        }
    }
}
