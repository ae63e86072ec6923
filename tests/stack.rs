//! The public stacked-model API: `MlpBuilder::build_stack` trains several models as one GPU
//! job, each ending bit for bit where it would alone.

mod common;

use common::{gpu, seeded_rng};
use rand::Rng;
use wgpu_mlp::{Error, Sgd, mlp::LayerParams, optim::WeightDecay};

/// Bits of every weight and bias, layer by layer.
fn param_bits(params: &[LayerParams]) -> Vec<u32> {
    params
        .iter()
        .flat_map(|l| l.weights.iter().chain(&l.bias))
        .map(|v| v.to_bits())
        .collect()
}

/// `MlpBuilder::build_stack`: each model of a stack (its own learning rate, momentum and
/// decay form; a shared batch, then one batch per model) ends bit for bit where the same
/// model trained alone on the general step path ends, and its loss is the lone model's.
#[test]
fn public_stack_equals_models_trained_alone() {
    use wgpu_mlp::{Mlp, mlp::StepKernel};
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let (sizes, batch) = ([5, 7, 3], 6);
    let sgds = [
        Sgd::new(0.3).momentum(0.9),
        Sgd::new(0.1),
        Sgd::new(0.7)
            .momentum(0.5)
            .weight_decay(1e-3)
            .decay(WeightDecay::Coupled),
    ];
    let x: Vec<f32> = (0..batch * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
    let t: Vec<f32> = (0..batch * 3).map(|_| rng.random_range(0.0..1.0)).collect();
    // one batch per model for the second phase
    let xs: Vec<f32> = (0..3 * batch * 5).map(|_| rng.random_range(-1.0..1.0)).collect();
    let ts: Vec<f32> = (0..3 * batch * 3).map(|_| rng.random_range(0.0..1.0)).collect();
    let builder = Mlp::builder(&sizes).seed(seed);
    let mut stack = builder.clone().build_stack(&gpu, batch, &sgds).unwrap();
    assert_eq!(stack.models(), 3);
    stack.set_batch(&x, &t).unwrap();
    stack.steps(5).unwrap();
    stack.set_batch(&xs, &ts).unwrap();
    stack.steps(4).unwrap();
    stack.batch_loss().unwrap();
    let stacked = stack.stacked_parameters().unwrap();
    let losses = stack.losses().unwrap();
    assert_eq!(losses.len(), 3);
    for (m, &sgd) in sgds.iter().enumerate() {
        let mut alone = builder
            .clone()
            .step_kernel(StepKernel::General)
            .build(&gpu, batch, sgd)
            .unwrap();
        alone.set_batch(&x, &t).unwrap();
        alone.steps(5).unwrap();
        let (xm, tm) = (
            &xs[m * batch * 5..(m + 1) * batch * 5],
            &ts[m * batch * 3..(m + 1) * batch * 3],
        );
        alone.set_batch(xm, tm).unwrap();
        alone.steps(4).unwrap();
        let loss = alone.batch_loss().unwrap();
        assert_eq!(
            param_bits(&stacked[m]),
            param_bits(&alone.parameters().unwrap()),
            "model {m} (seed {seed}) differs from the same model trained alone"
        );
        assert_eq!(losses[m].to_bits(), loss.to_bits(), "model {m} loss (seed {seed})");
    }
    // A batch that is neither shared nor one per model is refused, and nothing is written.
    let before = param_bits(&stack.stacked_parameters().unwrap().concat());
    let err = stack.set_batch(&xs[..batch * 5 * 2], &t).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("one per model"), "{err}");
    assert_eq!(before, param_bits(&stack.stacked_parameters().unwrap().concat()));
    // No optimizers, no stack.
    assert!(matches!(
        builder.build_stack::<Sgd>(&gpu, batch, &[]).unwrap_err(),
        Error::InvalidArgument { .. }
    ));
}
