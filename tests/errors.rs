//! A table of bad inputs: each returns its error variant (never a panic), and leaves the
//! model and optimizer state as they were.

mod common;

use common::*;
use wgpu_mlp::data::stratified_split;
use wgpu_mlp::raw::{GraphBuilder, MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::{
    Dataset, Error, GpuDataset, GridSearchCv, KFold, Mlp, ParamGrid, Sgd, StratifiedKFold, TrainConfig,
    cv::{CvExecution, Folds},
    data::{CsvOptions, Scaler, Scaling},
    fit,
    mlp::LayerParams,
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Shape,
    Invalid,
    TooLarge,
    Data,
    Io,
    Checkpoint,
}

fn kind(err: &Error) -> Option<Kind> {
    Some(match err {
        Error::Shape { .. } => Kind::Shape,
        Error::InvalidArgument { .. } => Kind::Invalid,
        Error::TooLarge { .. } => Kind::TooLarge,
        Error::Data { .. } => Kind::Data,
        Error::Io { .. } => Kind::Io,
        Error::Checkpoint { .. } => Kind::Checkpoint,
        _ => return None,
    })
}

/// One bad call, given the model whose state must survive it.
type Case<'a> = Box<dyn FnOnce(&mut Mlp) -> Result<(), Error> + 'a>;

fn first_err<T>(result: Result<T, Error>) -> Result<(), Error> {
    result.map(|_| ())
}

fn snapshot(mlp: &Mlp) -> (Vec<LayerParams>, Vec<LayerParams>, wgpu_mlp::Optimizer, u64) {
    (
        mlp.parameters().unwrap(),
        mlp.velocities().unwrap(),
        mlp.optimizer(),
        mlp.steps_taken(),
    )
}

#[test]
fn bad_inputs_return_their_errors_and_change_nothing() {
    let gpu = gpu();
    let sgd = Sgd::new(0.1).momentum(0.9);
    let mut mlp = Mlp::builder(&[3, 4, 2]).seed(3).build(&gpu, 5, sgd).unwrap();
    mlp.set_batch(&[0.5; 15], &[0.5; 10]).unwrap();
    mlp.steps(3).unwrap(); // non-zero velocities, so "unchanged" means something
    let before = snapshot(&mlp);

    let data = Dataset::classification(
        "d",
        (0..60).map(|i| i as f32 / 60.0).collect(),
        3,
        (0..20).map(|i| i % 2).collect(),
        2,
    )
    .unwrap();
    let gpu_data = GpuDataset::upload(&gpu, &data).unwrap();
    let rows: Vec<usize> = (0..20).collect();
    let wide = Dataset::classification("w", vec![0.0; 20 * 5], 5, vec![0; 20], 2).unwrap();
    let wide = GpuDataset::upload(&gpu, &wide).unwrap();
    let regression = Dataset::regression("r", vec![0.0; 20], 1, vec![0.0; 20]).unwrap();
    let regression = GpuDataset::upload(&gpu, &regression).unwrap();
    let config = TrainConfig {
        hidden: vec![3],
        epochs: 1,
        batch_size: 4,
        ..TrainConfig::classic()
    };
    let with = |f: &dyn Fn(&mut TrainConfig)| {
        let mut c = config.clone();
        f(&mut c);
        c
    };
    let grid = ParamGrid {
        lr: vec![0.1],
        momentum: vec![0.9],
        weight_decay: vec![0.0],
        hidden: vec![vec![3]],
        epochs: vec![1],
        batch_size: vec![4],
        activation: vec![wgpu_mlp::Activation::Sigmoid],
        ..ParamGrid::default()
    };
    let search = |grid: ParamGrid, folds: Folds| GridSearchCv {
        grid,
        folds,
        refit: false,
        base: config.clone(),
        execution: CvExecution::default(),
        preprocess: Default::default(),
        scoring: None,
        class_weight: Default::default(),
        sample_weight: None,
    };
    let kfold = |n_splits| {
        Folds::KFold(KFold {
            n_splits,
            shuffle: false,
            seed: 0,
        })
    };
    let stratified = |n_splits| {
        Folds::Stratified(StratifiedKFold {
            n_splits,
            shuffle: false,
            seed: 0,
        })
    };
    let layer = |w: usize, b: usize| LayerParams {
        weights: vec![0.1; w],
        bias: vec![0.0; b],
    };
    let bad_file = std::env::temp_dir().join(format!("wgpu-mlp-bad-{}.safetensors", std::process::id()));
    std::fs::write(&bad_file, b"not a checkpoint").unwrap();
    let huge = (gpu.max_binding_bytes() / 4 + 1) as usize;
    let a = Tensor::zeros(&gpu, &[2, 3]).unwrap();
    let c = Tensor::zeros(&gpu, &[2, 2]).unwrap();

    let cases: Vec<(&str, Kind, Case)> = vec![
        (
            "no layer sizes",
            Kind::Invalid,
            Box::new(|_| first_err(Mlp::builder(&[]).build(&gpu, 4, sgd))),
        ),
        (
            "one layer size",
            Kind::Invalid,
            Box::new(|_| first_err(Mlp::builder(&[3]).build(&gpu, 4, sgd))),
        ),
        (
            "zero-sized layer",
            Kind::Invalid,
            Box::new(|_| first_err(Mlp::builder(&[3, 0, 2]).build(&gpu, 4, sgd))),
        ),
        (
            "batch size 0",
            Kind::Invalid,
            Box::new(|_| first_err(Mlp::builder(&[3, 2]).build(&gpu, 0, sgd))),
        ),
        (
            "lr 0",
            Kind::Invalid,
            Box::new(|_| first_err(Mlp::builder(&[3, 2]).build(&gpu, 4, Sgd::new(0.0)))),
        ),
        ("lr < 0", Kind::Invalid, Box::new(|m| m.set_optimizer(Sgd::new(-0.1)))),
        (
            "lr NaN",
            Kind::Invalid,
            Box::new(|m| m.set_optimizer(Sgd::new(f32::NAN))),
        ),
        (
            "momentum 1",
            Kind::Invalid,
            Box::new(|m| m.set_optimizer(Sgd::new(0.1).momentum(1.0))),
        ),
        (
            "momentum < 0",
            Kind::Invalid,
            Box::new(|m| m.set_optimizer(Sgd::new(0.1).momentum(-0.5))),
        ),
        (
            "weight decay < 0",
            Kind::Invalid,
            Box::new(|m| m.set_optimizer(Sgd::new(0.1).weight_decay(-1e-4))),
        ),
        (
            "weight decay inf",
            Kind::Invalid,
            Box::new(|m| m.set_optimizer(Sgd::new(0.1).weight_decay(f32::INFINITY))),
        ),
        (
            "input width ≠ first layer",
            Kind::Shape,
            Box::new(|m| m.set_batch(&[0.5; 20], &[0.5; 10])),
        ),
        (
            "target width ≠ last layer",
            Kind::Shape,
            Box::new(|m| m.set_batch(&[0.5; 15], &[0.5; 15])),
        ),
        (
            "NaN in a batch",
            Kind::Invalid,
            Box::new(|m| {
                let mut x = vec![0.5; 15];
                x[7] = f32::NAN;
                m.set_batch(&x, &[0.5; 10])
            }),
        ),
        (
            "layers that don't chain",
            Kind::Shape,
            Box::new(|m| m.set_parameters(&[layer(12, 4), layer(12, 2)])),
        ),
        (
            "wrong layer count",
            Kind::Shape,
            Box::new(|m| m.set_parameters(&[layer(12, 4)])),
        ),
        (
            "NaN parameter",
            Kind::Invalid,
            Box::new(|m| {
                let mut first = layer(12, 4);
                first.weights[3] = f32::NAN;
                m.set_parameters(&[first, layer(8, 2)])
            }),
        ),
        (
            "velocities of another shape",
            Kind::Shape,
            Box::new(|m| m.set_velocities(&[layer(12, 4), layer(9, 2)])),
        ),
        ("zero steps", Kind::Invalid, Box::new(|m| m.steps(0))),
        (
            "zero-sized tensor",
            Kind::Shape,
            Box::new(|_| first_err(Tensor::zeros(&gpu, &[4, 0]))),
        ),
        (
            "tensor data of the wrong length",
            Kind::Shape,
            Box::new(|_| first_err(Tensor::from_slice(&gpu, &[2, 2], &[1.0; 5]))),
        ),
        (
            "tensor over the binding limit",
            Kind::TooLarge,
            Box::new(|_| first_err(Tensor::zeros(&gpu, &[huge]))),
        ),
        (
            "matmul inner dimensions differ",
            Kind::Shape,
            Box::new(|_| {
                first_err(ops::matmul(
                    &gpu,
                    MatmulKernel::Naive,
                    MatmulLayout::AB,
                    &a,
                    &a,
                    &c,
                    false,
                ))
            }),
        ),
        (
            "graph matmul inner dimensions differ",
            Kind::Shape,
            Box::new(|_| {
                let mut g = GraphBuilder::new();
                let x = g.input("x", [2, 3])?;
                let w = g.param("w", &[4, 2], &[0.0; 8])?;
                first_err(g.matmul(x, w))
            }),
        ),
        (
            "empty CSV",
            Kind::Data,
            Box::new(|_| first_err(Dataset::from_csv_bytes(b"", "e.csv", &CsvOptions::default()))),
        ),
        (
            "NaN in CSV",
            Kind::Data,
            Box::new(|_| first_err(Dataset::from_csv_bytes(b"1,nan,0\n", "n.csv", &CsvOptions::default()))),
        ),
        (
            "ragged CSV",
            Kind::Data,
            Box::new(|_| {
                first_err(Dataset::from_csv_bytes(
                    b"1,2,0\n1,0\n",
                    "r.csv",
                    &CsvOptions::default(),
                ))
            }),
        ),
        (
            "label out of range",
            Kind::Data,
            Box::new(|_| first_err(Dataset::classification("l", vec![0.0; 4], 2, vec![0, 5], 2))),
        ),
        (
            "empty data set",
            Kind::Data,
            Box::new(|_| first_err(Dataset::classification("e", vec![], 2, vec![], 2))),
        ),
        (
            "n_splits < 2",
            Kind::Invalid,
            Box::new(|_| first_err(search(grid.clone(), kfold(1)).fit(&gpu_data, &rows))),
        ),
        (
            "n_splits > samples",
            Kind::Invalid,
            Box::new(|_| first_err(search(grid.clone(), kfold(21)).fit(&gpu_data, &rows))),
        ),
        (
            "class smaller than n_splits",
            Kind::Invalid,
            Box::new(|_| first_err(search(grid.clone(), stratified(11)).fit(&gpu_data, &rows))),
        ),
        (
            "stratified folds of regression data",
            Kind::Invalid,
            Box::new(|_| first_err(search(grid.clone(), stratified(2)).fit(&regression, &rows))),
        ),
        (
            // (an empty list keeps the base's value: not an error since grids have defaults)
            "grid with lr 0",
            Kind::Invalid,
            Box::new(|_| {
                let zero = ParamGrid {
                    lr: vec![0.0],
                    ..grid.clone()
                };
                first_err(search(zero, kfold(2)).fit(&gpu_data, &rows))
            }),
        ),
        (
            "grid with batch size 0",
            Kind::Invalid,
            Box::new(|_| {
                let zero = ParamGrid {
                    batch_size: vec![0],
                    ..grid.clone()
                };
                first_err(search(zero, kfold(2)).fit(&gpu_data, &rows))
            }),
        ),
        (
            "epochs 0",
            Kind::Invalid,
            Box::new(|_| first_err(fit(&gpu_data, &rows, None, &with(&|c| c.epochs = 0)))),
        ),
        (
            "hidden layer 0",
            Kind::Invalid,
            Box::new(|_| first_err(fit(&gpu_data, &rows, None, &with(&|c| c.hidden = vec![0])))),
        ),
        (
            "no training rows",
            Kind::Invalid,
            Box::new(|_| first_err(fit(&gpu_data, &[], None, &config))),
        ),
        (
            "training row out of range",
            Kind::Invalid,
            Box::new(|_| first_err(fit(&gpu_data, &[0, 20], None, &config))),
        ),
        (
            // (without validation rows early stopping holds out validation_fraction of them)
            "early stopping with a hold-out fraction of 1",
            Kind::Invalid,
            Box::new(|_| {
                let config = with(&|c| {
                    c.early_stopping = Some(2);
                    c.validation_fraction = 1.0;
                });
                first_err(fit(&gpu_data, &rows, None, &config))
            }),
        ),
        (
            "early stopping on one training row",
            Kind::Invalid,
            Box::new(|_| {
                let config = with(&|c| c.early_stopping = Some(2));
                first_err(fit(&gpu_data, &rows[..1], None, &config))
            }),
        ),
        (
            "drop_last with too few rows",
            Kind::Invalid,
            Box::new(|_| first_err(fit(&gpu_data, &rows[..3], None, &with(&|c| c.drop_last = true)))),
        ),
        (
            "evaluating on data of another width",
            Kind::Shape,
            Box::new(|_| {
                let model = fit(&gpu_data, &rows, None, &config)?;
                first_err(model.evaluate(&wide, &rows))
            }),
        ),
        (
            "scaler fitted on no rows",
            Kind::Invalid,
            Box::new(|_| first_err(Scaler::fit(Scaling::MinMax, &data, &[]))),
        ),
        (
            "test fraction 0",
            Kind::Invalid,
            Box::new(|_| first_err(stratified_split(&[0, 1, 0, 1], 0.0, 0))),
        ),
        (
            "checkpoint that is not one",
            Kind::Checkpoint,
            Box::new(|_| first_err(Mlp::load(&gpu, &bad_file, 5))),
        ),
        (
            "missing checkpoint",
            Kind::Io,
            Box::new(|_| first_err(Mlp::load(&gpu, "/nonexistent/m.safetensors", 5))),
        ),
    ];
    assert!(cases.len() >= 30);
    for (what, expected, case) in cases {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut mlp)));
        let result = result.unwrap_or_else(|_| panic!("{what}: panicked instead of returning an error"));
        match result {
            Err(err) => {
                assert_eq!(kind(&err), Some(expected), "{what}: {err}");
                assert!(!err.to_string().is_empty());
            }
            Ok(()) => panic!("{what}: accepted"),
        }
        assert_eq!(snapshot(&mlp), before, "{what}: the model changed");
    }
    std::fs::remove_file(&bad_file).ok();
}
