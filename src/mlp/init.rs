//! How a new network's parameters are drawn from its seed: PyTorch's `nn.Linear` bound (the
//! default) or scikit-learn's Glorot uniform.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::layer::LayerParams;

/// How a new network's parameters are drawn from its seed.
///
/// ```
/// use wgpu_mlp::{TrainConfig, mlp::Init};
/// // scikit-learn's MLP initialisation (gain 2 for a logistic net there)
/// let config = TrainConfig { init: Init::GlorotUniform { gain: 6.0 }, ..TrainConfig::default() };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Init {
    /// Weights uniform(−1/√fan_in, 1/√fan_in), the bound of PyTorch's `nn.Linear`; biases 0
    /// (this library's default).
    #[default]
    FanIn,
    /// Glorot (Xavier) uniform as scikit-learn's MLP draws it: weights and biases
    /// uniform(−b, b) with b = √(gain / (fan_in + fan_out)); gain 6 is Glorot's.
    GlorotUniform {
        /// The numerator under the root (> 0).
        gain: f32,
    },
}

/// Weights uniform(−1/√fan_in, 1/√fan_in) from a seeded generator, biases 0 ([`Init::FanIn`]).
pub fn init_params(sizes: &[usize], seed: u64) -> Vec<LayerParams> {
    init_params_with(sizes, seed, Init::FanIn)
}

/// Parameters for `sizes` drawn by `init` from a generator seeded with `seed`.
pub(crate) fn init_params_with(sizes: &[usize], seed: u64, init: Init) -> Vec<LayerParams> {
    let mut rng = StdRng::seed_from_u64(seed);
    sizes
        .windows(2)
        .map(|pair| {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let mut draw =
                |n: usize, bound: f32| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
            match init {
                Init::FanIn => LayerParams {
                    weights: draw(fan_in * fan_out, 1.0 / (fan_in as f32).sqrt()),
                    bias: vec![0.0; fan_out],
                },
                Init::GlorotUniform { gain } => {
                    let bound = (gain / (fan_in + fan_out) as f32).sqrt();
                    LayerParams {
                        weights: draw(fan_in * fan_out, bound),
                        bias: draw(fan_out, bound),
                    }
                }
            }
        })
        .collect()
}
