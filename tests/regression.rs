//! Regression scores: the R² that cross-validation ranks by (computed from the held-out mean
//! MSE loss on the GPU) is scikit-learn's `r2_score` of the model's predictions on those rows.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use wgpu_mlp::{Dataset, GpuDataset, TrainConfig, fit};

#[test]
fn r2_from_the_held_out_loss_is_the_r2_of_the_predictions() {
    let gpu = gpu();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let n = 90;
    let features: Vec<f32> = (0..n * 2).map(|_| rng.random_range(-1.0..1.0)).collect();
    let targets: Vec<f32> = (0..n)
        .map(|i| 2.0 * features[2 * i] - features[2 * i + 1] + 0.3)
        .collect();
    let data = Dataset::regression("lin", features, 2, targets).unwrap();
    let on_gpu = GpuDataset::upload(&gpu, &data).unwrap();
    let (train, held): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % 3 != 0);
    let config = TrainConfig {
        epochs: 5,
        hidden: vec![8],
        early_stopping: None,
        ..TrainConfig::regressor()
    };
    let model = fit(&on_gpu, &train, None, &config).unwrap();
    let loss = model.evaluate(&on_gpu, &held).unwrap().loss as f64;
    let mean = held.iter().map(|&r| data.targets[r] as f64).sum::<f64>() / held.len() as f64;
    let total: f64 = held.iter().map(|&r| (data.targets[r] as f64 - mean).powi(2)).sum();
    let from_loss = 1.0 - 2.0 * loss * held.len() as f64 / total;
    let from_predictions = model.score(&data, &held).unwrap();
    // Both in f64 from f32 predictions: they differ by the f32 rounding of the loss sum.
    assert!(
        (from_loss - from_predictions).abs() < 1e-4,
        "{from_loss} vs {from_predictions}"
    );
}
