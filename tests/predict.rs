//! `Model::predict` on new host rows, any count (1, batch − 1, batch + 1, 10,000), against
//! the f64 reference forward pass; `predict_class` against the reference's argmax; bad
//! input refused. Tolerance 1e-5 relative (Frobenius): a forward pass of two small layers
//! rounds each output a few times in f32 (~1e-7 each).

mod common;

use common::*;
use wgpu_mlp::{Dataset, Error, GpuDataset, TrainConfig, fit};

#[test]
fn predict_matches_reference_for_any_row_count() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let n = 60;
    let features = uniform(&mut rng, n * 4, -1.0, 1.0);
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let data = Dataset::classification("train", features, 4, labels, 3).unwrap();
    let gpu_data = GpuDataset::upload(&gpu, &data).unwrap();
    let config = TrainConfig {
        hidden: vec![6],
        epochs: 3,
        batch_size: 16,
        seed,
        ..TrainConfig::classic()
    };
    let rows: Vec<usize> = (0..n).collect();
    let model = fit(&gpu_data, &rows, None, &config).unwrap();
    let reference = RefMlp::from_params(&[4, 6, 3], SIGMOID_NET, &model.mlp().parameters().unwrap());
    for count in [1, 15, 17, 10_000] {
        let x = uniform(&mut rng, count * 4, -2.0, 2.0);
        let got = model.predict(&x).unwrap();
        let want = reference.forward(&to_f64(&x), count).pop().unwrap();
        assert_eq!(got.len(), count * 3);
        assert_close(&format!("predict, {count} rows"), seed, &got, &want, 1e-5);
        let classes = model.predict_class(&x).unwrap();
        let margin_ok = want.chunks(3).zip(&classes).all(|(row, &class)| {
            let best = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            // the chosen class is the reference's best up to f32 rounding
            best - row[class] <= 1e-5
        });
        assert!(margin_ok, "predict_class, {count} rows (seed {seed})");
    }
    // Bad input: empty, not whole rows, not finite.
    for (what, x) in [
        ("empty", vec![]),
        ("ragged", vec![0.0; 7]),
        ("NaN", vec![0.0, f32::NAN, 0.0, 0.0]),
    ] {
        let err = model.predict(&x).unwrap_err();
        assert!(
            matches!(err, Error::Shape { .. } | Error::InvalidArgument { .. }),
            "{what}: {err}"
        );
    }
}

/// The fitted pipeline saved whole and loaded on a fresh device: scaler, network, batch
/// size; the loaded model takes raw rows and predicts the saved model's outputs bit for bit;
/// `predict_proba` gives the softmax of the logits; damaged files are errors.
#[test]
fn a_saved_pipeline_loads_and_predicts_the_same_bits() {
    use wgpu_mlp::{
        Activation, Loss, Model,
        data::{Scaler, Scaling},
    };
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let n = 50;
    // raw features far from unit scale: the scaler matters
    let features: Vec<f32> = uniform(&mut rng, n * 4, -1.0, 1.0)
        .iter()
        .map(|v| 100.0 + 40.0 * v)
        .collect();
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let mut data = Dataset::classification("train", features, 4, labels, 3).unwrap();
    let raw = data.features.clone();
    let rows: Vec<usize> = (0..n).collect();
    let scaler = Scaler::fit(Scaling::Standardize, &data, &rows).unwrap();
    scaler.transform(&mut data).unwrap();
    let gpu_data = GpuDataset::upload(&gpu, &data).unwrap();
    let config = TrainConfig {
        hidden: vec![7],
        epochs: 4,
        batch_size: 12,
        seed,
        loss: Loss::SoftmaxCrossEntropy,
        output_activation: Activation::Identity,
        ..TrainConfig::classic()
    };
    let names: Vec<String> = ["cat", "dog", "emu, the bird"].map(String::from).to_vec();
    let model = fit(&gpu_data, &rows, None, &config)
        .unwrap()
        .with_scaler(scaler.clone())
        .with_class_names(names.clone())
        .unwrap();
    // raw rows through the attached scaler = scaled rows without it
    let scaled_outputs = model.predict_rows(&gpu_data, &rows).unwrap();
    assert_eq!(model.predict(&raw).unwrap(), scaled_outputs);

    let dir = std::env::temp_dir().join(format!("wgpu-mlp-pipeline-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    let fresh = own_gpu();
    let loaded = Model::load(&fresh, &path).unwrap();
    assert_eq!(loaded.mlp().batch_size(), 12);
    assert_eq!(loaded.epochs_done(), 4);
    assert_eq!(loaded.scaler(), Some(&scaler));
    let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(loaded.predict(&raw).unwrap()), bits(model.predict(&raw).unwrap()));
    assert_eq!(loaded.predict_class(&raw).unwrap(), model.predict_class(&raw).unwrap());
    assert_eq!(loaded.class_names(), Some(&names[..]));
    let named = loaded.predict_class_names(&raw).unwrap();
    let numbered = loaded.predict_class(&raw).unwrap();
    assert!(named.iter().zip(&numbered).all(|(name, &c)| *name == names[c]));

    // probabilities: the softmax of the logits, rows summing to 1
    let proba = loaded.predict_proba(&raw[..8]).unwrap();
    let logits = loaded.predict(&raw[..8]).unwrap();
    for (p, z) in proba.chunks(3).zip(logits.chunks(3)) {
        let top = z.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let total: f64 = z.iter().map(|&v| (v as f64 - top).exp()).sum();
        let want: Vec<f64> = z.iter().map(|&v| (v as f64 - top).exp() / total).collect();
        assert_close("predict_proba", seed, p, &want, 1e-6);
    }

    // damaged files: a clear error, never a panic
    std::fs::write(&path, b"not a model").unwrap();
    let err = Model::load(&fresh, &path).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    let err = Model::load(&fresh, dir.join("missing.safetensors")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A model trained on MSE has no probabilities: `predict_proba` says so.
#[test]
fn predict_proba_needs_a_cross_entropy_model() {
    let gpu = gpu();
    let data = Dataset::classification("tiny", vec![0.0, 1.0, 1.0, 0.0], 2, vec![0, 1], 2).unwrap();
    let gpu_data = GpuDataset::upload(&gpu, &data).unwrap();
    let config = TrainConfig {
        hidden: vec![3],
        epochs: 1,
        batch_size: 2,
        ..TrainConfig::classic()
    };
    let model = fit(&gpu_data, &[0, 1], None, &config).unwrap();
    let err = model.predict_proba(&[0.0, 1.0]).unwrap_err();
    assert!(err.to_string().contains("mse"), "{err}");
}
