//! Where each kernel's WGSL comes from: its module's parts (parameter structs and bindings
//! declared once in `params` and `bindings`, the shared prelude, the shader file), its entry
//! point and its pipeline constants.

use crate::bindings::{
    ActivationBindings, BiasBindings, DataBindings, ElementwiseBindings, LossBindings, MatmulBindings, OptimBindings,
    StepPlanBindings, TinyBindings,
};
use crate::kernels::{Kernel, MatmulKernel, MatmulLayout};
use crate::params::{
    ActivationParams, BiasParams, CopyRowsParams, ElementwiseParams, GatherParams, LossParams, MatmulParams,
    OptimParams, OptimizerHyperparams, StepPlanParams,
};

pub(crate) struct KernelSource {
    pub(crate) file: &'static str,
    /// The module's text, in parts joined when it is compiled.
    pub(crate) source: &'static [&'static str],
    pub(crate) entry: &'static str,
    pub(crate) constants: &'static [(&'static str, f64)],
    /// Compile without naga's bounds checks and loop bounding. Only for shaders whose every
    /// index is clamped in range by the shader itself from host-validated shapes.
    pub(crate) trusted: bool,
}

// Each shader module is the parameter structs it reads (declared once, in `params`), its
// bindings (declared once, in `bindings`), the shared prelude where it applies or
// differentiates activations, and its own file. Each matmul family is its own module.
const PRELUDE: &str = include_str!("../shaders/prelude.wgsl");
const MATMUL: &[&str] = &[
    MatmulParams::WGSL,
    MatmulBindings::WGSL,
    PRELUDE,
    include_str!("../shaders/matmul_common.wgsl"),
    include_str!("../shaders/matmul.wgsl"),
];
const MATMUL_TILED: &[&str] = &[
    MatmulParams::WGSL,
    MatmulBindings::WGSL,
    PRELUDE,
    include_str!("../shaders/matmul_common.wgsl"),
    include_str!("../shaders/matmul_tiled.wgsl"),
];
// Its own module: only devices with subgroups accept its builtin.
const MATMUL_SUBGROUP: &[&str] = &[
    MatmulParams::WGSL,
    MatmulBindings::WGSL,
    PRELUDE,
    include_str!("../shaders/matmul_common.wgsl"),
    include_str!("../shaders/matmul_subgroup.wgsl"),
];
const BIAS: &[&str] = &[
    BiasParams::WGSL,
    BiasBindings::WGSL,
    include_str!("../shaders/bias.wgsl"),
];
const ACTIVATION: &[&str] = &[
    ActivationParams::WGSL,
    ActivationBindings::WGSL,
    PRELUDE,
    include_str!("../shaders/activation.wgsl"),
];
const MSE: &[&str] = &[
    LossParams::WGSL,
    LossBindings::WGSL,
    PRELUDE,
    include_str!("../shaders/mse.wgsl"),
];
const SOFTMAX_XENT: &[&str] = &[
    LossParams::WGSL,
    LossBindings::WGSL,
    include_str!("../shaders/softmax_xent.wgsl"),
];
const OPTIM: &[&str] = &[
    OptimParams::WGSL,
    OptimizerHyperparams::WGSL,
    OptimBindings::WGSL,
    include_str!("../shaders/optim.wgsl"),
];
const ELEMENTWISE: &[&str] = &[
    ElementwiseParams::WGSL,
    ElementwiseBindings::WGSL,
    include_str!("../shaders/elementwise.wgsl"),
];
const DATA: &[&str] = &[
    GatherParams::WGSL,
    CopyRowsParams::WGSL,
    DataBindings::WGSL,
    include_str!("../shaders/data.wgsl"),
];
const STEP_PLAN: &[&str] = &[
    StepPlanParams::WGSL,
    StepPlanBindings::WGSL,
    include_str!("../shaders/step_plan.wgsl"),
];
// The tiny step's parameters hold arrays: declared in its shader (and mirrored in mlp/tiny.rs).
const TINY: &[&str] = &[TinyBindings::WGSL, PRELUDE, include_str!("../shaders/tiny.wgsl")];

impl Kernel {
    /// The shader module, entry point and constants of this kernel.
    pub(crate) fn source(self) -> KernelSource {
        let k = |file, source, entry| KernelSource {
            file,
            source,
            entry,
            constants: &[],
            trusted: false,
        };
        match self {
            Kernel::Matmul(kernel, layout) => KernelSource {
                file: match kernel {
                    MatmulKernel::Tiled => "matmul_tiled.wgsl",
                    MatmulKernel::Subgroup => "matmul_subgroup.wgsl",
                    _ => "matmul.wgsl",
                },
                source: match kernel {
                    MatmulKernel::Tiled => MATMUL_TILED,
                    MatmulKernel::Subgroup => MATMUL_SUBGROUP,
                    _ => MATMUL,
                },
                entry: match kernel {
                    MatmulKernel::Naive => "matmul_naive",
                    MatmulKernel::Vec4 => "matmul_vec4",
                    MatmulKernel::Tiled => "matmul_tiled",
                    MatmulKernel::Lanes | MatmulKernel::LanesDown => "matmul_lanes",
                    MatmulKernel::Subgroup => "matmul_subgroup",
                },
                constants: match layout {
                    MatmulLayout::AB => &[("TRANS_A", 0.0), ("TRANS_B", 0.0)],
                    MatmulLayout::ABt => &[("TRANS_A", 0.0), ("TRANS_B", 1.0)],
                    MatmulLayout::AtB => &[("TRANS_A", 1.0), ("TRANS_B", 0.0)],
                },
                trusted: true,
            },
            Kernel::BiasAddForward => k("bias.wgsl", BIAS, "bias_add_forward"),
            Kernel::BiasAddBackward => k("bias.wgsl", BIAS, "bias_add_backward"),
            Kernel::ActivationForward => k("activation.wgsl", ACTIVATION, "activation_forward"),
            Kernel::ActivationBackward => k("activation.wgsl", ACTIVATION, "activation_backward"),
            Kernel::MseForward => k("mse.wgsl", MSE, "mse_forward"),
            Kernel::MseBackward => k("mse.wgsl", MSE, "mse_backward"),
            Kernel::XentForward => k("softmax_xent.wgsl", SOFTMAX_XENT, "xent_forward"),
            Kernel::XentBackward => k("softmax_xent.wgsl", SOFTMAX_XENT, "xent_backward"),
            Kernel::OptimizerUpdate => k("optim.wgsl", OPTIM, "optimizer_update"),
            Kernel::OptimizerSteps => k("optim.wgsl", OPTIM, "optimizer_steps"),
            Kernel::Add => k("elementwise.wgsl", ELEMENTWISE, "add"),
            Kernel::GatherBatch => k("data.wgsl", DATA, "gather_batch"),
            Kernel::ModelsToStep => k("step_plan.wgsl", STEP_PLAN, "models_to_step"),
            Kernel::CopyRows => k("data.wgsl", DATA, "copy_rows"),
            Kernel::TinyStep => k("tiny.wgsl", TINY, "tiny_step"),
            Kernel::Copy => k("elementwise.wgsl", ELEMENTWISE, "copy"),
        }
    }
}
