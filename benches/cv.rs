//! Cross-validation batched against model by model on the digits data: 5 stratified folds ×
//! an 8-point grid (lr × weight decay × momentum, one hidden size and batch size, so all 40
//! models form one stack), and how a stacked run's time grows with its model count (1, 5,
//! 10, 20, 40 models; criterion's throughput line is models per second).
//! `cargo bench --bench cv`. Epochs are few so that criterion's samples stay short; both
//! paths train the same epochs, so the ratio is the one of a full run.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wgpu_mlp::data::stratified_split;
use wgpu_mlp::{
    Dataset, Gpu, GpuDataset, GridSearchCv, ParamGrid, Sgd, StratifiedKFold, TrainConfig,
    cv::{CvExecution, Folds},
    data::{CsvOptions, Scaler, Scaling},
    train::{FitJob, fit_batched},
};

const DIGITS: &[u8] = include_bytes!("../data/digits.csv.gz");
const EPOCHS: usize = 2;

fn cv(c: &mut Criterion) {
    let gpu = Gpu::new().expect("an adapter (apt-get install -y mesa-vulkan-drivers libvulkan1)");
    println!(
        "adapter: {} ({:?}, {:?})",
        gpu.adapter_name(),
        gpu.backend(),
        gpu.device_type()
    );
    let mut data = Dataset::from_csv_bytes(DIGITS, "digits.csv.gz", &CsvOptions::default()).unwrap();
    let (train, _test) = stratified_split(data.labels.as_ref().unwrap(), 0.2, 0).unwrap();
    Scaler::fit(Scaling::Standardize, &data, &train)
        .unwrap()
        .transform(&mut data)
        .unwrap();
    let data = GpuDataset::upload(&gpu, &data).unwrap();
    let search = |execution| GridSearchCv {
        grid: ParamGrid {
            lr: vec![0.05, 0.1],
            momentum: vec![0.9, 0.95],
            weight_decay: vec![1e-4, 1e-5],
            hidden: vec![vec![64]],
            epochs: vec![EPOCHS],
            batch_size: vec![32],
            activation: vec![wgpu_mlp::Activation::Sigmoid],
            ..ParamGrid::default()
        },
        folds: Folds::Stratified(StratifiedKFold {
            n_splits: 5,
            shuffle: true,
            seed: 0,
        }),
        refit: false,
        base: TrainConfig::classic(),
        execution,
        preprocess: Default::default(),
        scoring: None,
        class_weight: Default::default(),
        sample_weight: None,
    };

    let mut group = c.benchmark_group("cv_digits_5_folds_x_8_points");
    group.sample_size(10).warm_up_time(Duration::from_millis(100));
    group.throughput(Throughput::Elements(40)); // models
    for (name, execution) in [
        ("batched", CvExecution::default()),
        ("model_by_model", CvExecution::Sequential),
    ] {
        let search = search(execution);
        group.bench_function(name, |bench| bench.iter(|| search.fit(&data, &train).unwrap()));
    }
    group.finish();

    let mut group = c.benchmark_group("stacked_models");
    group.sample_size(10).warm_up_time(Duration::from_millis(100));
    let folds = StratifiedKFold {
        n_splits: 5,
        shuffle: true,
        seed: 0,
    }
    .split(&train.iter().map(|&r| data.labels().unwrap()[r]).collect::<Vec<_>>())
    .unwrap();
    let fold_rows: Vec<Vec<usize>> = folds
        .iter()
        .map(|f| f.train.iter().map(|&p| train[p]).collect())
        .collect();
    for models in [1, 5, 10, 20, 40] {
        let jobs: Vec<FitJob> = (0..models)
            .map(|i| FitJob {
                train_rows: &fold_rows[i % 5],
                config: TrainConfig {
                    hidden: vec![64],
                    optimizer: Sgd::new(0.05 + 0.01 * (i / 5) as f32).momentum(0.9).into(),
                    epochs: EPOCHS,
                    batch_size: 32,
                    ..TrainConfig::classic()
                },
            })
            .collect();
        group.throughput(Throughput::Elements(models as u64)); // models
        group.bench_function(format!("{models}"), |bench| {
            bench.iter(|| fit_batched(&data, &jobs, &mut |_, _| {}).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, cv);
criterion_main!(benches);
