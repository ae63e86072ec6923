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
        ..TrainConfig::default()
    };
    let rows: Vec<usize> = (0..n).collect();
    let model = fit(&gpu_data, &rows, None, &config, &mut |_| {}).unwrap();
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
