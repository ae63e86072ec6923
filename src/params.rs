//! One declaration per kernel interface: every kernel's parameter block is declared once
//! here, with `wgsl_struct!`, which gives both the Rust struct the host fills (`#[repr(C)]`,
//! `Pod`) and its WGSL declaration, prepended to each shader that reads it
//! (`kernels::Kernel::source`). The shaders declare no parameter structs of their own, so
//! the two sides cannot drift apart. Every field is a 4-byte scalar and every struct a
//! multiple of 16 bytes, so the Rust and WGSL layouts are the same by construction (a test
//! below checks the sizes). The tiny-net step keeps its own (it holds arrays).

/// A `#[repr(C)]` Pod struct of u32/f32 fields and, as `WGSL`, its WGSL declaration.
macro_rules! wgsl_struct {
    ($(#[doc = $doc:literal])* struct $name:ident { $($(#[doc = $field_doc:literal])* $field:ident : $ty:ident,)* }) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[doc = $field_doc])* pub $field: $ty,)*
        }

        impl $name {
            /// The WGSL declaration of this struct.
            pub(crate) const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)*
                "}\n"
            );
        }
    };
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
    }
}

wgsl_struct! {
    /// bias.wgsl: y = x + bias, and d_bias = Σ_rows d_y.
    struct BiasParams {
        rows: u32,
        cols: u32,
        accumulate: u32,
        input_stride: u32,
        bias_stride: u32,
        output_stride: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_struct! {
    /// activation.wgsl: y = act(x), d_x = d_y ⊙ act'(saved).
    struct ActivationParams {
        n: u32,
        accumulate: u32,
        activation: u32,
        input_stride: u32,
        saved_stride: u32,
        output_stride: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_struct! {
    /// mse.wgsl and softmax_xent.wgsl: a loss and its gradient over (rows, cols).
    struct LossParams {
        rows: u32,
        cols: u32,
        /// MSE: `Activation::code` of the output layer the gradient goes through;
        /// cross-entropy: its kind (0 softmax, 1 sigmoid).
        mode: u32,
        prediction_stride: u32,
        target_stride: u32,
        output_stride: u32,
        weight_stride: u32,
        _pad0: u32,
    }
}

wgsl_struct! {
    /// elementwise.wgsl: out = a + b, out (+)= a.
    struct ElementwiseParams {
        n: u32,
        accumulate: u32,
        a_stride: u32,
        b_stride: u32,
        output_stride: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }
}

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

wgsl_struct! {
    /// optim.wgsl: the update of `models` blocks of `n` parameters.
    struct OptimParams {
        n: u32,
        models: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

wgsl_struct! {
    /// optim.wgsl: one model's optimizer settings.
    struct OptimizerHyperparams {
        /// 0 SGD, 1 Adam.
        kind: u32,
        /// 1: weight decay folded into the gradient; 2: Nesterov momentum.
        flags: u32,
        lr: f32,
        /// SGD's μ, Adam's β₁.
        momentum: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        _pad0: f32,
    }
}

wgsl_struct! {
    /// step_plan.wgsl: which of `models` stacked models train on batch `step`.
    struct StepPlanParams {
        step: u32,
        models: u32,
        _pad0: u32,
        _pad1: u32,
    }
}

/// Every declaration, for the size check.
#[cfg(test)]
const ALL: [(&str, usize); 10] = [
    (StepPlanParams::WGSL, size_of::<StepPlanParams>()),
    (MatmulParams::WGSL, size_of::<MatmulParams>()),
    (BiasParams::WGSL, size_of::<BiasParams>()),
    (ActivationParams::WGSL, size_of::<ActivationParams>()),
    (LossParams::WGSL, size_of::<LossParams>()),
    (ElementwiseParams::WGSL, size_of::<ElementwiseParams>()),
    (GatherParams::WGSL, size_of::<GatherParams>()),
    (CopyRowsParams::WGSL, size_of::<CopyRowsParams>()),
    (OptimParams::WGSL, size_of::<OptimParams>()),
    (OptimizerHyperparams::WGSL, size_of::<OptimizerHyperparams>()),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// WGSL lays a struct of 4-byte scalars out back to back and rounds its size up to 16 for
    /// storage arrays; Rust's `repr(C)` does the first. Equal when every struct holds a
    /// multiple of 4 fields, one line each.
    #[test]
    fn rust_and_wgsl_layouts_agree() {
        for (wgsl, bytes) in ALL {
            let fields = wgsl.lines().filter(|l| l.trim_end().ends_with(',')).count();
            assert_eq!(fields * 4, bytes, "{wgsl}");
            assert_eq!(bytes % 16, 0, "{wgsl}: not a multiple of 16 bytes");
            assert!(
                wgsl.lines()
                    .skip(1)
                    .all(|l| l == "}" || l.ends_with(": u32,") || l.ends_with(": f32,")),
                "{wgsl}"
            );
        }
    }
}
