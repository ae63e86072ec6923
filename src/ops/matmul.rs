//! Matrix multiply in the three layouts backprop needs (shaders/matmul*.wgsl), with fused
//! epilogues and the fused weight + bias gradient.

use super::matmul_kernels::{
    EPILOGUE_ACT_GRAD, EPILOGUE_BIAS, EPILOGUE_BIAS_ACT, EPILOGUE_NONE, MatmulBindings, MatmulKernel, MatmulLayout,
    MatmulParams, kernel_for,
};
use super::{Activation, check_dims, check_gpu, check_grad_from_output, check_len, model_strides};
use crate::device::dispatch::Dispatch;
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};

/// What a matmul does to each product before storing it: a fused follow-up op.
#[derive(Clone, Copy, Debug, Default)]
pub enum Epilogue<'a> {
    /// Store the product.
    #[default]
    None,
    /// `+ bias[col]`, bias N elements: a linear layer in one dispatch.
    Bias(&'a Tensor),
    /// `act(· + bias[col])`: a whole dense layer in one dispatch.
    BiasAct(&'a Tensor, Activation),
    /// `· ⊙ act'(y)`, y (M,N) the saved output of the activation: the input gradient through
    /// it, in the dispatch that computes the gradient at its output. Only for activations
    /// whose slope follows from their output ([`Activation::grad_from_output`]).
    ActGrad(&'a Tensor, Activation),
}

/// How a matmul runs (see [`matmul_with`]): its kernel and layout, whether it adds to C,
/// the follow-up op fused into it, and, in a stack, which models sit the step out.
///
/// ```
/// use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, ops::MatmulOptions};
/// let options = MatmulOptions::new(MatmulKernel::Naive, MatmulLayout::AtB).accumulate(true);
/// assert!(options.accumulate);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MatmulOptions<'a> {
    /// The kernel.
    pub kernel: MatmulKernel,
    /// Which operands are read transposed.
    pub layout: MatmulLayout,
    /// `c += ...` instead of `c = ...`.
    pub accumulate: bool,
    /// The op fused after the product.
    pub epilogue: Epilogue<'a>,
    /// Per model, u32: a model whose flag is 0 skips the product (the trainer's gather kernel
    /// writes them: a model whose epochs are over, or whose rows ran out, does no work).
    pub(crate) active: Option<&'a Tensor>,
}

impl<'a> MatmulOptions<'a> {
    /// `c = op(a)·op(b)` with `kernel`, no epilogue.
    pub fn new(kernel: MatmulKernel, layout: MatmulLayout) -> Self {
        MatmulOptions {
            kernel,
            layout,
            accumulate: false,
            epilogue: Epilogue::None,
            active: None,
        }
    }

    /// Adds to c instead of overwriting it.
    pub fn accumulate(mut self, accumulate: bool) -> Self {
        self.accumulate = accumulate;
        self
    }

    /// Fuses `epilogue` after the product.
    pub fn epilogue(mut self, epilogue: Epilogue<'a>) -> Self {
        self.epilogue = epilogue;
        self
    }

    /// Skips the models whose `active` flag (u32, one per model) is 0.
    pub(crate) fn gated(mut self, active: &'a Tensor) -> Self {
        self.active = Some(active);
        self
    }
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
    matmul_with(gpu, a, b, c, MatmulOptions::new(kernel, layout).accumulate(accumulate))
}

/// [`matmul`] with everything [`MatmulOptions`] sets: an epilogue on every output in the same
/// dispatch, accumulation.
pub fn matmul_with(gpu: &Gpu, a: &Tensor, b: &Tensor, c: &Tensor, options: MatmulOptions<'_>) -> Result<Dispatch> {
    matmul_inner(gpu, a, b, c, options, None)
}

/// A dense layer's two parameter gradients in one dispatch: `d_w = xᵀ·d_y` (x (B,IN),
/// d_y (B,OUT), d_w (IN,OUT)) and `d_bias = Σ_rows d_y` (OUT), computed as the product of
/// xᵀ extended by a row of ones (`+=` both with `accumulate`). Any kernel but `Vec4`.
pub fn matmul_bias_grad(
    gpu: &Gpu,
    kernel: MatmulKernel,
    x: &Tensor,
    d_y: &Tensor,
    d_w: &Tensor,
    d_bias: &Tensor,
    accumulate: bool,
) -> Result<Dispatch> {
    let options = MatmulOptions::new(kernel, MatmulLayout::AtB).accumulate(accumulate);
    matmul_bias_grad_with(gpu, x, d_y, d_w, d_bias, options)
}

/// [`matmul_bias_grad`] with [`MatmulOptions`] (its layout is always `AtB`; no epilogue).
pub(crate) fn matmul_bias_grad_with(
    gpu: &Gpu,
    x: &Tensor,
    d_y: &Tensor,
    d_w: &Tensor,
    d_bias: &Tensor,
    options: MatmulOptions<'_>,
) -> Result<Dispatch> {
    let options = MatmulOptions {
        layout: MatmulLayout::AtB,
        epilogue: Epilogue::None,
        ..options
    };
    matmul_inner(gpu, x, d_y, d_w, options, Some(d_bias))
}

const OP: &str = "matmul";

fn matmul_inner(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    options: MatmulOptions<'_>,
    bias_grad: Option<&Tensor>,
) -> Result<Dispatch> {
    let MatmulOptions {
        kernel,
        layout,
        accumulate,
        epilogue,
        active,
    } = options;
    let (m, k, n) = check_product(gpu, a, b, c, options, bias_grad)?;
    let (code, bias, saved) = epilogue_operands(gpu, epilogue, a, accumulate, (m, n))?;
    // With a bias gradient, C gets one more row: op(A)'s row of ones.
    let rows = m + usize::from(bias_grad.is_some());
    let (tiles_n, tiles) = kernel.grid(gpu, m, n, bias_grad.is_some());
    // Unused epilogue operands are bound to A (read-only bindings may share a buffer).
    let targets = Targets::of(gpu, c, bias_grad)?;
    let d_bias = bias_grad.unwrap_or(&targets.d_bias);
    let (models, strides) = model_strides(
        OP,
        c,
        &[
            ("a", a, false),
            ("b", b, false),
            ("c", c, true),
            ("bias", bias, false),
            ("saved", saved, false),
            ("d_bias", d_bias, bias_grad.is_some()),
        ],
    )?;
    check_vec4_strides(OP, kernel, &strides[..2])?;
    if let Some(active) = active {
        check_len(OP, "active", active, models)?;
    }
    let shape = Shape {
        m,
        n,
        k,
        rows,
        tiles_n,
        tiles,
    };
    let params = MatmulParams {
        c_offset: targets.c_offset as u32,
        d_bias_offset: targets.d_bias_offset as u32,
        bias_in_c: targets.bias_in_c as u32,
        ..matmul_params(shape, options, code, &strides)
    };
    // never read unless gated
    let flags = active.unwrap_or(a);
    let stand_in = vec4_stand_in(gpu, kernel, &[a, b])?;
    let operands = Operands {
        a,
        b,
        c: &targets.c,
        bias,
        saved,
        d_bias: &targets.d_bias,
        flags,
    };
    Dispatch::stacked(
        gpu,
        kernel_for(kernel, layout),
        bytemuck::bytes_of(&params),
        &operands.bindings(kernel, stand_in.as_ref()),
        tiles,
        models,
    )
}

/// Where a product's outputs are bound. WebGPU refuses a writable binding that overlaps another
/// binding of the same dispatch: without a bias gradient its binding is a scratch buffer of its
/// own (never written), and where the bias gradient's range overlaps C's (a stack's weight and
/// bias gradients interleave in one block) one binding covers both and the store writes the
/// bias row into it.
struct Targets {
    c: Tensor,
    d_bias: Tensor,
    c_offset: usize,
    d_bias_offset: usize,
    bias_in_c: bool,
}

impl Targets {
    fn of(gpu: &Gpu, c: &Tensor, bias_grad: Option<&Tensor>) -> Result<Targets> {
        let apart = |d_bias: Tensor| Targets {
            c: c.alias(),
            d_bias,
            c_offset: 0,
            d_bias_offset: 0,
            bias_in_c: false,
        };
        Ok(match bias_grad {
            None => apart(Tensor::scratch(gpu)?),
            Some(d_bias) if c.overlaps(d_bias) => {
                let (both, c_offset, d_bias_offset) = c.covering(d_bias);
                Targets {
                    c: both,
                    d_bias: Tensor::scratch(gpu)?,
                    c_offset,
                    d_bias_offset,
                    bias_in_c: true,
                }
            }
            Some(d_bias) => apart(d_bias.alias()),
        })
    }
}

/// A product's sizes and its grid of tiles.
#[derive(Clone, Copy)]
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    rows: usize,
    tiles_n: usize,
    tiles: usize,
}

/// The parameter block of a product: its shape, `options`, the epilogue `code` and the
/// model strides of a, b, c, bias, saved and d_bias in that order.
fn matmul_params(shape: Shape, options: MatmulOptions<'_>, code: u32, strides: &[u32]) -> MatmulParams {
    let Shape {
        m,
        n,
        k,
        rows,
        tiles_n,
        tiles,
    } = shape;
    MatmulParams {
        m: m as u32,
        n: n as u32,
        k: k as u32,
        accumulate: options.accumulate as u32,
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
        gated: options.active.is_some() as u32,
        activation: match options.epilogue {
            Epilogue::BiasAct(_, activation) | Epilogue::ActGrad(_, activation) => activation.code(),
            Epilogue::None | Epilogue::Bias(_) => 0,
        },
        ..bytemuck::Zeroable::zeroed()
    }
}

/// The product's (M, K, N) after checking that the operands fit `options`' layout, kernel
/// and bias gradient.
fn check_product(
    gpu: &Gpu,
    a: &Tensor,
    b: &Tensor,
    c: &Tensor,
    options: MatmulOptions<'_>,
    bias_grad: Option<&Tensor>,
) -> Result<(usize, usize, usize)> {
    let (kernel, layout) = (options.kernel, options.layout);
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
        if kernel == MatmulKernel::Vec4 {
            return Err(Error::invalid(
                OP,
                "kernel for a bias gradient",
                "any kernel but Vec4",
                "Vec4",
            ));
        }
    }
    if !kernel.available(gpu) {
        return Err(Error::invalid(
            OP,
            "kernel",
            "one this adapter runs (Subgroup needs subgroups of at least 8 invocations)",
            format!("{kernel:?} on {}", gpu.adapter_name()),
        ));
    }
    if !kernel.supports(layout, m, k, n) {
        return Err(Error::invalid(
            OP,
            format!("shape for the {kernel:?} kernel ({layout:?})"),
            "K % 4 == 0, N % 4 == 0 unless ABt, M % 4 == 0 for AtB",
            format!("M = {m}, K = {k}, N = {n}"),
        ));
    }
    Ok((m, k, n))
}

/// The epilogue's code and its operands (bias, saved output), A standing in for the unused,
/// after checking them against the (M, N) output.
fn epilogue_operands<'a>(
    gpu: &Gpu,
    epilogue: Epilogue<'a>,
    a: &'a Tensor,
    accumulate: bool,
    (m, n): (usize, usize),
) -> Result<(u32, &'a Tensor, &'a Tensor)> {
    match epilogue {
        Epilogue::None => Ok((EPILOGUE_NONE, a, a)),
        Epilogue::Bias(bias) | Epilogue::BiasAct(bias, _) => {
            check_gpu(gpu, OP, &[("bias", bias)])?;
            check_len(OP, "bias", bias, n)?;
            if accumulate {
                return Err(Error::invalid(OP, "accumulate", "false with a bias epilogue", true));
            }
            let code = if matches!(epilogue, Epilogue::Bias(_)) {
                EPILOGUE_BIAS
            } else {
                EPILOGUE_BIAS_ACT
            };
            Ok((code, bias, a))
        }
        Epilogue::ActGrad(saved, activation) => {
            check_grad_from_output(OP, activation)?;
            check_gpu(gpu, OP, &[("saved", saved)])?;
            check_dims(OP, "saved output", saved, m, n)?;
            Ok((EPILOGUE_ACT_GRAD, a, saved))
        }
    }
}

/// The Vec4 kernel reads op(A) and op(B) as vec4s: each model's start must be too.
pub(super) fn check_vec4_strides(op: &'static str, kernel: MatmulKernel, strides: &[u32]) -> Result<()> {
    if kernel == MatmulKernel::Vec4 && strides.iter().any(|s| s % 4 != 0) {
        return Err(Error::invalid(
            op,
            "model strides of a and b for the Vec4 kernel",
            "multiples of 4",
            format!("{strides:?}"),
        ));
    }
    Ok(())
}

/// The tiled kernel reads op(A) and op(B) both ways (vec4 views where aligned). A vec4
/// binding needs at least 16 bytes; an operand shorter than that is never read as vec4s
/// (see matmul_tiled.wgsl), so its view gets this stand-in.
pub(super) fn vec4_stand_in(gpu: &Gpu, kernel: MatmulKernel, operands: &[&Tensor]) -> Result<Option<Tensor>> {
    if kernel == MatmulKernel::Tiled && operands.iter().any(|t| t.span() < 4) {
        Tensor::zeros(gpu, &[4]).map(Some)
    } else {
        Ok(None)
    }
}

/// A matmul's tensors, in the bindings of matmul_common.wgsl.
struct Operands<'a> {
    a: &'a Tensor,
    b: &'a Tensor,
    c: &'a Tensor,
    bias: &'a Tensor,
    saved: &'a Tensor,
    d_bias: &'a Tensor,
    flags: &'a Tensor,
}

impl<'a> Operands<'a> {
    /// The binding list of `kernel`: matmul_vec4 reads A and B only through their vec4 views
    /// (bindings 4 and 5), matmul_tiled both ways, the others as scalars.
    fn bindings(&self, kernel: MatmulKernel, stand_in: Option<&'a Tensor>) -> Vec<(u32, &'a Tensor)> {
        let Operands {
            a,
            b,
            c,
            bias,
            saved,
            d_bias,
            flags,
        } = *self;
        let view = |t: &'a Tensor| match stand_in {
            Some(stand_in) if t.span() < 4 => stand_in,
            _ => t,
        };
        type M = MatmulBindings;
        let rest = [
            (M::C, c),
            (M::BIAS, bias),
            (M::SAVED, saved),
            (M::D_BIAS, d_bias),
            (M::ACTIVE, flags),
        ];
        let front: Vec<(u32, &Tensor)> = match kernel {
            MatmulKernel::Vec4 => vec![(M::A4, a), (M::B4, b)],
            MatmulKernel::Tiled => vec![(M::A, a), (M::B, b), (M::A4, view(a)), (M::B4, view(b))],
            MatmulKernel::Naive | MatmulKernel::Lanes | MatmulKernel::LanesDown | MatmulKernel::Subgroup => {
                vec![(M::A, a), (M::B, b)]
            }
        };
        front.into_iter().chain(rest).collect()
    }
}
