//! One declaration per kernel interface, the bindings: every kernel family's storage buffers
//! declared once, with names. `wgsl_bindings!` gives a Rust constant per binding, which the
//! host builders bind by (`(BiasBindings::INPUT, x)`), and, as `WGSL`, the
//! `@group(0) @binding(i) var<storage, …>` lines that `kernels::Kernel::source` prepends to
//! the family's shaders, which declare none of their own. The parameter blocks they name are
//! declared in `params.rs`; the element structs of a few arrays (`ModelPlan`, `ModelState`,
//! `TinyParams`) in their shaders (WGSL module declarations may come in any order).

/// Where every kernel finds its parameter block (`Dispatch` binds it there).
pub(crate) const PARAMS_BINDING: u32 = 0;

/// A unit struct with one `u32` constant per binding and, as `WGSL`, their declarations.
macro_rules! wgsl_bindings {
    ($(#[doc = $doc:literal])* struct $name:ident {
        $($(#[doc = $binding_doc:literal])* $constant:ident = $index:literal => $access:literal $var:ident : $ty:literal,)*
    }) => {
        $(#[doc = $doc])*
        pub(crate) struct $name;

        #[allow(dead_code)] // each constant is bound by some builder; not all by every one
        impl $name {
            $($(#[doc = $binding_doc])* pub(crate) const $constant: u32 = $index;)*
            /// The WGSL declarations of these bindings.
            pub(crate) const WGSL: &'static str = concat!(
                $("@group(0) @binding(", stringify!($index), ") var<storage, ", $access, "> ",
                  stringify!($var), ": ", $ty, ";\n",)*
            );
        }
    };
}

wgsl_bindings! {
    /// matmul*.wgsl.
    struct MatmulBindings {
        PARAMS = 0 => "read" params_buffer: "MatmulParams",
        A = 1 => "read" a: "array<f32>",
        B = 2 => "read" b: "array<f32>",
        C = 3 => "read_write" c: "array<f32>",
        /// A and B seen as vec4s (matmul_vec4 and matmul_tiled).
        A4 = 4 => "read" a4: "array<vec4<f32>>",
        B4 = 5 => "read" b4: "array<vec4<f32>>",
        /// The epilogue's operands (bound to A when unused).
        BIAS = 6 => "read" bias: "array<f32>",
        SAVED = 7 => "read" saved: "array<f32>",
        /// The bias gradient's row of ones lands here (bound to C when unused).
        D_BIAS = 8 => "read_write" d_bias: "array<f32>",
        /// Per model: 0 when it sits this step out (read only when `params.gated`).
        ACTIVE = 9 => "read" model_active: "array<u32>",
    }
}

wgsl_bindings! {
    /// bias.wgsl.
    struct BiasBindings {
        PARAMS = 0 => "read" params_buffer: "BiasParams",
        INPUT = 1 => "read" input: "array<f32>",
        BIAS = 2 => "read" bias: "array<f32>",
        OUTPUT = 3 => "read_write" output: "array<f32>",
    }
}

wgsl_bindings! {
    /// activation.wgsl.
    struct ActivationBindings {
        PARAMS = 0 => "read" params_buffer: "ActivationParams",
        INPUT = 1 => "read" input: "array<f32>",
        SAVED = 2 => "read" saved: "array<f32>",
        OUTPUT = 3 => "read_write" output: "array<f32>",
    }
}

wgsl_bindings! {
    /// elementwise.wgsl.
    struct ElementwiseBindings {
        PARAMS = 0 => "read" params_buffer: "ElementwiseParams",
        A = 1 => "read" a: "array<f32>",
        B = 2 => "read" b: "array<f32>",
        OUTPUT = 3 => "read_write" output: "array<f32>",
    }
}

wgsl_bindings! {
    /// mse.wgsl and softmax_xent.wgsl (whose predictions are logits).
    struct LossBindings {
        PARAMS = 0 => "read" params_buffer: "LossParams",
        PREDICTION = 1 => "read" prediction: "array<f32>",
        TARGETS = 2 => "read" target_values: "array<f32>",
        /// The loss, or the gradient with respect to the predictions.
        OUTPUT = 3 => "read_write" output: "array<f32>",
        ROW_WEIGHT = 4 => "read" row_weight: "array<f32>",
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

wgsl_bindings! {
    /// step_plan.wgsl.
    struct StepPlanBindings {
        PARAMS = 0 => "read" params_buffer: "StepPlanParams",
        PLAN = 1 => "read" plan: "array<ModelPlan>",
        ACTIVE = 2 => "read_write" model_active: "array<u32>",
    }
}

wgsl_bindings! {
    /// optim.wgsl.
    struct OptimBindings {
        PARAMS = 0 => "read" params_buffer: "OptimParams",
        GRAD = 1 => "read" grad: "array<f32>",
        WEIGHT = 2 => "read_write" weight: "array<f32>",
        /// SGD's velocity, Adam's first moment.
        VELOCITY = 3 => "read_write" velocity: "array<f32>",
        /// Per model: its optimizer's settings.
        HYPERPARAMS = 4 => "read" hyperparams: "array<OptimizerHyperparams>",
        ACTIVE = 5 => "read" model_active: "array<u32>",
        /// Adam only.
        SECOND_MOMENT = 6 => "read_write" second_moment: "array<f32>",
        /// Per model: its step count and bias corrections.
        MODEL_STATE = 7 => "read_write" model_state: "array<ModelState>",
    }
}

wgsl_bindings! {
    /// tiny.wgsl: the whole step of a tiny net in one dispatch.
    struct TinyBindings {
        PARAMS = 0 => "read" params_buffer: "TinyParams",
        X = 1 => "read" x: "array<f32>",
        T = 2 => "read" t: "array<f32>",
        WEIGHTS = 3 => "read_write" weights: "array<f32>",
        VELOCITY = 4 => "read_write" velocity: "array<f32>",
        SCRATCH = 5 => "read_write" scratch: "array<f32>",
        LOSS = 6 => "read_write" loss: "array<f32>",
        ROW_WEIGHT = 7 => "read" row_weight: "array<f32>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The generated declarations are the lines the shaders used to carry.
    #[test]
    fn declarations_read_as_wgsl() {
        assert_eq!(
            BiasBindings::WGSL,
            "@group(0) @binding(0) var<storage, read> params_buffer: BiasParams;\n\
             @group(0) @binding(1) var<storage, read> input: array<f32>;\n\
             @group(0) @binding(2) var<storage, read> bias: array<f32>;\n\
             @group(0) @binding(3) var<storage, read_write> output: array<f32>;\n"
        );
        assert_eq!(MatmulBindings::D_BIAS, 8);
        for params in [
            MatmulBindings::PARAMS,
            BiasBindings::PARAMS,
            ActivationBindings::PARAMS,
            ElementwiseBindings::PARAMS,
            LossBindings::PARAMS,
            DataBindings::GATHER_PARAMS,
            DataBindings::COPY_ROWS_PARAMS,
            OptimBindings::PARAMS,
            StepPlanBindings::PARAMS,
            TinyBindings::PARAMS,
        ] {
            assert_eq!(params, PARAMS_BINDING);
        }
    }
}
