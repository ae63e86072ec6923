//! The benchmark workloads our peers are measured on (xor, mnist, wide, xl): layer sizes,
//! batch, and the counter-based splitmix64 generator that makes their data and
//! initialisation identical across implementations.

use wgpu_mlp::mlp::LayerParams;

/// One benchmark workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Workload {
    /// Its name.
    pub name: &'static str,
    /// Layer sizes, inputs first.
    pub sizes: &'static [usize],
    /// Rows per batch.
    pub batch: usize,
    /// Generator seed.
    pub seed: u64,
}

/// The workloads for software adapters and CPUs.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "xor",
        sizes: &[2, 8, 1],
        batch: 4,
        seed: 1,
    },
    Workload {
        name: "mnist",
        sizes: &[784, 256, 10],
        batch: 128,
        seed: 2,
    },
    Workload {
        name: "wide",
        sizes: &[1024, 1024, 1024, 1024],
        batch: 256,
        seed: 3,
    },
];

/// The workload for real GPUs only.
pub const XL: Workload = Workload {
    name: "xl",
    sizes: &[4096, 4096, 4096, 4096, 4096],
    batch: 4096,
    seed: 4,
};

/// The digits-sized workload (also the unit of the stacked-model workload).
pub const SMALL: Workload = Workload {
    name: "small",
    sizes: &[64, 64, 10],
    batch: 32,
    seed: 5,
};

/// Draw k (k = 1, 2, ...) of the splitmix64 stream of `seed`, as u in [0, 1) (exact in f32).
pub fn splitmix_uniform(seed: u64, k: u64) -> f64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut z = seed.wrapping_add(k.wrapping_mul(GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f64 / (1u64 << 24) as f64
}

/// Initial parameters, inputs `x` (batch, in) and targets `t` (batch, out) of a workload.
pub struct WorkloadData {
    /// Per-layer parameters, biases zero.
    pub params: Vec<LayerParams>,
    /// Inputs, row-major.
    pub x: Vec<f32>,
    /// Targets, row-major.
    pub t: Vec<f32>,
}

impl Workload {
    /// FLOPs of one step: 3 matmuls per layer (forward, dX, dW), 2 per multiply-add.
    pub fn flops_per_step(&self) -> f64 {
        let macs: usize = self.sizes.windows(2).map(|p| p[0] * p[1]).sum();
        6.0 * self.batch as f64 * macs as f64
    }

    /// Generates the data in the spec's order: each layer's W row-major, then X, then T.
    pub fn generate(&self) -> WorkloadData {
        let mut k = 0u64;
        let mut draw = || {
            k += 1;
            splitmix_uniform(self.seed, k)
        };
        let params = self
            .sizes
            .windows(2)
            .map(|pair| {
                let scale = (pair[0] as f64).sqrt();
                LayerParams {
                    weights: (0..pair[0] * pair[1])
                        .map(|_| ((2.0 * draw() - 1.0) / scale) as f32)
                        .collect(),
                    bias: vec![0.0; pair[1]],
                }
            })
            .collect();
        let outputs = self.sizes[self.sizes.len() - 1];
        let x = (0..self.batch * self.sizes[0]).map(|_| draw() as f32).collect();
        let t = (0..self.batch * outputs).map(|_| draw() as f32).collect();
        WorkloadData { params, x, t }
    }
}

#[cfg(test)]
mod tests {
    #[allow(unused_imports)] // a bench target compiles the tests without running them
    use super::*;

    #[test]
    fn generator_matches_the_spec_check_values() {
        let want = [0.5665615200996399, 0.7457817196846008, 0.9710026979446411];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(splitmix_uniform(1, k as u64 + 1), *w);
        }
    }

    #[test]
    fn flops_match_the_spec_table() {
        let flops: Vec<f64> = WORKLOADS.iter().map(Workload::flops_per_step).collect();
        assert_eq!(flops, vec![576.0, 156_106_752.0, 4_831_838_208.0]);
        assert_eq!(XL.flops_per_step(), 1_649_267_441_664.0);
    }
}
