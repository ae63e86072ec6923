//! A dense layer's parameters as plain host data: what models, checkpoints, stacks and
//! errors carry. It depends on nothing, so every module can name it.

/// One dense layer's parameters, row-major: `weights` (in, out) and `bias` (out).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// `W` of shape `[in, out]`, used as `x·W`.
    pub weights: Vec<f32>,
    /// `b` of length `out`.
    pub bias: Vec<f32>,
}
