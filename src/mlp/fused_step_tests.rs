//! The fused training step (graph/fused_step.rs) trains as the unfused one does: the same
//! losses and parameters after 200 steps, to the bit where the grouped weight-gradient
//! dispatch runs the kernel each layer's weight gradient runs unfused (the same products,
//! the same update arithmetic; always so on CPU adapters with subgroups, where each product
//! keeps its own kernel), else within 1e-4 relative (the products sum in another
//! order, and 200 steps carry the last bits along); in two dispatches per layer (one more
//! for the cross-entropies, whose gradient needs a whole row).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::device::gpu::Gpu;
use crate::ops::MatmulKernel;
use crate::optim::{Adam, Rmsprop, Sgd};

fn gpu() -> Gpu {
    Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)")
}

struct Case {
    sizes: &'static [usize],
    hidden: Activation,
    output: Activation,
    loss: Loss,
    optimizers: Vec<Optimizer>,
}

/// Whether the grouped dispatch runs each layer's unfused weight-gradient kernel.
fn same_kernels(gpu: &Gpu, sizes: &[usize], batch: usize) -> bool {
    let choice = |l: usize| MatmulKernel::choose_for_bias_grad(gpu, sizes[l] + 1, batch, sizes[l + 1]);
    // with subgroups, each product its own kernel where all are the subgroup or lanes ones
    let mixable = [MatmulKernel::Subgroup, MatmulKernel::Lanes, MatmulKernel::LanesDown];
    if MatmulKernel::Subgroup.available(gpu) && (0..sizes.len() - 1).all(|l| mixable.contains(&choice(l))) {
        return true;
    }
    let largest = (0..sizes.len() - 1)
        .max_by_key(|&l| (sizes[l] + 1) * batch * sizes[l + 1])
        .expect("a layer");
    let grouped = match choice(largest) {
        MatmulKernel::Vec4 => MatmulKernel::Tiled,
        kernel => kernel,
    };
    (0..sizes.len() - 1).all(|l| choice(l) == grouped)
}

fn build(gpu: &Gpu, case: &Case, batch: usize, fused: bool) -> Mlp {
    let mut builder = Mlp::builder(case.sizes)
        .hidden_activation(case.hidden)
        .output_activation(case.output)
        .loss(case.loss)
        .seed(7)
        .step_kernel(StepKernel::General);
    if !fused {
        builder = builder.unfused_step();
    }
    builder.build_stack(gpu, batch, &case.optimizers).expect("builds")
}

fn batch_for(rng: &mut StdRng, case: &Case, batch: usize) -> (Vec<f32>, Vec<f32>) {
    let (inputs, outputs) = (case.sizes[0], case.sizes[case.sizes.len() - 1]);
    let x = (0..batch * inputs).map(|_| rng.random_range(-1.0..1.0)).collect();
    let t = match case.loss {
        Loss::SoftmaxCrossEntropy => (0..batch)
            .flat_map(|r| (0..outputs).map(move |j| f32::from(j == r % outputs)))
            .collect(),
        _ => (0..batch * outputs).map(|_| rng.random_range(0.0..1.0)).collect(),
    };
    (x, t)
}

fn cases() -> Vec<Case> {
    let sgd = Optimizer::from(Sgd::new(0.1).momentum(0.9));
    let adam = Optimizer::from(Adam::new(0.01));
    vec![
        Case {
            sizes: &[7, 5, 3],
            hidden: Activation::Sigmoid,
            output: Activation::Sigmoid,
            loss: Loss::Mse,
            optimizers: vec![sgd],
        },
        Case {
            sizes: &[64, 64, 40],
            hidden: Activation::Tanh,
            output: Activation::Identity,
            loss: Loss::Huber,
            optimizers: vec![adam],
        },
        Case {
            sizes: &[20, 33, 17, 4],
            hidden: Activation::Relu,
            output: Activation::Identity,
            loss: Loss::SoftmaxCrossEntropy,
            optimizers: vec![Adam::adamw(0.01).weight_decay(0.05).into()],
        },
        // five layers: two grouped dispatches
        Case {
            sizes: &[6, 9, 8, 7, 6, 5],
            hidden: Activation::LeakyRelu,
            output: Activation::Sigmoid,
            loss: Loss::Mse,
            optimizers: vec![Rmsprop::new(0.01).momentum(0.5).centered(true).into()],
        },
        // a stack of models, each its own optimizer
        Case {
            sizes: &[10, 12, 3],
            hidden: Activation::Sigmoid,
            output: Activation::Identity,
            loss: Loss::BinaryCrossEntropy,
            optimizers: vec![
                sgd,
                adam,
                Sgd::new(0.05).nesterov(true).momentum(0.8).weight_decay(0.01).into(),
            ],
        },
    ]
}

#[test]
fn fused_step_trains_as_the_unfused_one() {
    let gpu = gpu();
    let mut rng = StdRng::seed_from_u64(26);
    let batch = 19;
    for case in cases() {
        let label = format!("{:?} {:?} {:?}", case.sizes, case.loss, case.optimizers);
        let (mut fused, mut unfused) = (build(&gpu, &case, batch, true), build(&gpu, &case, batch, false));
        assert!(fused.graph().is_fused() && !unfused.graph().is_fused(), "{label}");
        let layers = case.sizes.len() - 1;
        let row_loss = usize::from(case.loss.regression_delta().is_none());
        let grouped = layers.div_ceil(crate::ops::GROUPS_MAX);
        assert_eq!(
            fused.dispatches_per_step(),
            2 * layers - 1 + grouped + row_loss,
            "{label}"
        );
        let (x, t) = batch_for(&mut rng, &case, batch);
        for mlp in [&fused, &unfused] {
            mlp.set_batch(&x, &t).expect("batch");
        }
        let exact = same_kernels(&gpu, case.sizes, batch);
        for round in 0..20 {
            fused.steps(10).expect("fused steps");
            unfused.steps(10).expect("unfused steps");
            let (a, b) = (fused.losses().expect("loss"), unfused.losses().expect("loss"));
            for (a, b) in a.iter().zip(&b) {
                let close = if exact {
                    a.to_bits() == b.to_bits()
                } else {
                    (a - b).abs() <= 1e-4 * b.abs().max(1e-3)
                };
                assert!(
                    close,
                    "{label}, after {} steps: {a} vs {b} (exact: {exact})",
                    10 * (round + 1)
                );
            }
        }
        let (a, b) = (
            fused.stacked_parameters().expect("params"),
            unfused.stacked_parameters().expect("params"),
        );
        let flat = |p: &Vec<Vec<LayerParams>>| -> Vec<f32> {
            p.iter()
                .flatten()
                .flat_map(|l| l.weights.iter().chain(&l.bias).copied())
                .collect()
        };
        for (a, b) in flat(&a).iter().zip(&flat(&b)) {
            let close = if exact {
                a.to_bits() == b.to_bits()
            } else {
                (a - b).abs() <= 1e-4 * b.abs().max(1e-2)
            };
            assert!(close, "{label}: parameter {a} vs {b} (exact: {exact})");
        }
        assert_eq!(
            fused.optimizer_steps().expect("steps"),
            unfused.optimizer_steps().expect("steps")
        );
    }
}

/// Where a parameter's gradient is not one dense layer's weight gradient (here a weight used
/// by two layers: its gradient adds two products), the graph keeps the unfused step, and a
/// graph of dense layers without a regression or cross-entropy head still trains.
#[test]
fn graphs_the_fused_step_cannot_take_keep_the_unfused_one() {
    use crate::graph::GraphBuilder;
    let gpu = gpu();
    let mut g = GraphBuilder::new();
    let x = g.input("x", [3, 4]).expect("input");
    let t = g.input("t", [3, 4]).expect("input");
    let w = g.param("W", &[4, 4], &[0.1; 16]).expect("param");
    let b = g.param("b", &[4], &[0.0; 4]).expect("param");
    let h = g.matmul(x, w).expect("matmul");
    let h = g.bias_add(h, b).expect("bias");
    let h = g.sigmoid(h).expect("sigmoid");
    let y = g.matmul(h, w).expect("the same weight again");
    let loss = g.mse(y, t).expect("loss");
    let mut graph = g.build(&gpu, loss, Sgd::new(0.1)).expect("builds");
    assert!(!graph.is_fused());
    graph.write(x, &[0.5; 12]).expect("x");
    graph.write(t, &[0.2; 12]).expect("t");
    graph.forward().expect("forward");
    let before = graph.loss().expect("loss");
    graph.steps(20).expect("steps");
    graph.forward().expect("forward");
    assert!(graph.loss().expect("loss") < before, "trains unfused");
}
