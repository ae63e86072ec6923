//! Learning-rate schedules through training: each epoch trains at the scheduled rate (the
//! history says which, and the optimizer's last rate is the last epoch's), a stack whose
//! models follow different schedules equals each model trained alone, and a resumed run
//! carries on its schedule. The formulas themselves are checked against PyTorch's in
//! src/schedule.rs.

mod common;

use common::*;
use wgpu_mlp::{
    Adam, Dataset, GpuDataset, Schedule, Sgd, TrainConfig, fit,
    train::{FitJob, fit_batched},
};

fn blobs(n: usize) -> Dataset {
    let features: Vec<f32> = (0..n * 3).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let labels: Vec<usize> = (0..n).map(|i| i % 2).collect();
    Dataset::classification("blobs", features, 3, labels, 2).unwrap()
}

fn config(schedule: Schedule) -> TrainConfig {
    TrainConfig {
        hidden: vec![5],
        optimizer: Sgd::new(0.4).momentum(0.9).into(),
        epochs: 7,
        batch_size: 8,
        schedule,
        ..TrainConfig::classic()
    }
}

#[test]
fn each_epoch_trains_at_the_scheduled_rate() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(40)).unwrap();
    let rows: Vec<usize> = (0..40).collect();
    for schedule in [
        Schedule::StepDecay {
            step_size: 2,
            gamma: 0.5,
        },
        Schedule::Cosine {
            t_max: 6,
            eta_min: 0.01,
        },
    ] {
        let model = fit(&data, &rows, None, &config(schedule)).unwrap();
        let rates: Vec<f32> = model.history().iter().map(|m| m.lr).collect();
        let want: Vec<f32> = (1..=7).map(|epoch| schedule.rate(0.4, epoch)).collect();
        assert_eq!(rates, want, "{schedule:?}");
        assert_eq!(model.mlp().optimizer().lr(), want[6], "{schedule:?}: last rate");
        // A schedule changes the training: not the constant-rate model.
        let constant = fit(&data, &rows, None, &config(Schedule::Constant)).unwrap();
        assert_ne!(model.mlp().parameters().unwrap(), constant.mlp().parameters().unwrap());
    }
}

/// Different schedules (and an Adam model) side by side in one stack: each model takes the
/// same rates per epoch as alone and ends where it ends alone (to 1e-5: alone, a small SGD
/// net may take the single-dispatch step, which rounds differently).
#[test]
fn stacked_schedules_equal_models_trained_alone() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(48)).unwrap();
    let rows: Vec<usize> = (0..48).collect();
    let configs = [
        (config(Schedule::StepDecay {
            step_size: 3,
            gamma: 0.3,
        })),
        (config(Schedule::Cosine { t_max: 7, eta_min: 0.0 })),
        (config(Schedule::reduce_on_plateau())),
        TrainConfig {
            optimizer: Adam::new(0.01).into(),
            ..(config(Schedule::StepDecay {
                step_size: 2,
                gamma: 0.5,
            }))
        },
    ];
    let jobs: Vec<FitJob> = configs
        .iter()
        .map(|config| FitJob {
            train_rows: &rows,
            config: config.clone(),
        })
        .collect();
    let stacked = fit_batched(&data, &jobs, &mut |_, _| {}).unwrap();
    for (i, (model, config)) in stacked.iter().zip(&configs).enumerate() {
        let alone = fit(&data, &rows, None, config).unwrap();
        let rates = |m: &wgpu_mlp::Model| m.history().iter().map(|e| e.lr).collect::<Vec<_>>();
        assert_eq!(rates(model), rates(&alone), "job {i}: rates");
        let (a, b) = (model.mlp().parameters().unwrap(), alone.mlp().parameters().unwrap());
        for (x, y) in a.iter().zip(&b) {
            assert_close(&format!("job {i} weights"), 0, &x.weights, &to_f64(&y.weights), 1e-5);
        }
    }
}

/// Stop after 3 of 7 epochs, save, resume: the same rates and the same bits as 7 in one go.
#[test]
fn a_resumed_run_carries_on_its_schedule() {
    let gpu = gpu();
    let data = GpuDataset::upload(&gpu, &blobs(40)).unwrap();
    let rows: Vec<usize> = (0..40).collect();
    let full = config(Schedule::StepDecay {
        step_size: 2,
        gamma: 0.5,
    });
    let straight = fit(&data, &rows, None, &full).unwrap();
    let first = fit(
        &data,
        &rows,
        None,
        &TrainConfig {
            epochs: 3,
            ..full.clone()
        },
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-schedule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.safetensors");
    first.save(&path).unwrap();
    let resumed = wgpu_mlp::train::resume(&path, &data, &rows, None, &full, &mut |_| {}).unwrap();
    let rates = |m: &wgpu_mlp::Model| m.history().iter().map(|e| e.lr).collect::<Vec<_>>();
    assert_eq!(rates(&resumed), rates(&straight)[3..]);
    assert_eq!(state_bits(resumed.mlp()), state_bits(straight.mlp()));
    std::fs::remove_dir_all(&dir).ok();
}
