//! The command line against damaged model files and awkward label values: refused with a
//! message, never a panic or an abort (split from tests/cli_inputs.rs; helpers in
//! tests/cli_support).

mod cli_support;

use std::io::Write;

use cli_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// 6. Damaged, edited, truncated model files and swapped arguments.
#[test]
fn damaged_model_files_are_refused() {
    let s = Scratch::new("model-files");
    let (train, model) = (blob_train(&s), s.path("m.safetensors"));
    succeeded(&fit(&train, &model, &[]), "fit");
    let bytes = std::fs::read(&model).unwrap();
    let predictions = s.path("pred.csv");
    let predict = |model: &str| run(&["predict", model, &train, "-o", &predictions]);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (header, tensors) = bytes[8..].split_at(header_len);

    // (a) class_names edited to two names for three outputs, the header's length kept.
    let names = br#",\"virginica\""#;
    let at = header
        .windows(names.len())
        .position(|w| w == names)
        .expect("class_names in the header");
    let edited = [
        &bytes[..8],
        &header[..at],
        &header[at + names.len()..],
        &[b' '; 14][..],
        tensors,
    ]
    .concat();
    assert_eq!(edited.len(), bytes.len());
    let edited = s.write("edited.safetensors", edited);
    refused(&predict(&edited), "checksum", &[&predictions]);

    // The same inconsistency in a file from before checksums (no format version): still refused.
    let mut json: serde_json::Value = serde_json::from_slice(header).unwrap();
    let meta = json["__metadata__"].as_object_mut().unwrap();
    meta.remove("checksum");
    meta.remove("format_version");
    meta.insert("class_names".into(), "setosa\u{1f}versicolor".into());
    let mut header = serde_json::to_vec(&json).unwrap();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let old = [&(header.len() as u64).to_le_bytes()[..], &header, tensors].concat();
    let old = s.write("old.safetensors", old);
    refused(&predict(&old), "inconsistent", &[&predictions]);

    // (b) any one bit flipped in the tensor data.
    assert!(tensors.len() > 1000, "the last 1000 bytes are tensor data");
    let mut rng = StdRng::seed_from_u64(6);
    let flipped_path = s.path("flipped.safetensors");
    for _ in 0..50 {
        let (at, bit) = (bytes.len() - 1 - rng.random_range(0..1000), rng.random_range(0..8));
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << bit;
        std::fs::write(&flipped_path, &flipped).unwrap();
        let out = predict(&flipped_path);
        assert_ne!(
            out.status.code(),
            Some(0),
            "byte {at} bit {bit} flipped: predict answered"
        );
        refused_any(&out, &["checksum", "damaged", "not a wgpu-mlp model"], &[&predictions]);
    }

    // (c) truncated.
    let cut_path = s.path("cut.safetensors");
    for len in [0, 8, 100, header_len + 8, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut_path, &bytes[..len]).unwrap();
        refused_any(
            &predict(&cut_path),
            &["checksum", "damaged", "not a wgpu-mlp model", "empty"],
            &[&predictions],
        );
    }

    // (d) arguments swapped: the rows given as the model, plain or gzipped.
    let out = run(&["predict", &train, &model, "-o", &predictions]);
    refused(&out, "the model comes first", &[&predictions]);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&std::fs::read(&train).unwrap()).unwrap();
    let train_gz = s.write("train.csv.gz", e.finish().unwrap());
    let out = run(&["predict", &train_gz, &model, "-o", &predictions]);
    refused(&out, "the model comes first", &[&predictions]);
}

/// 7. Huge class labels neither panic nor abort; real-valued labels without --regression refused.
#[test]
fn label_values() {
    let s = Scratch::new("labels");
    let rows = two_classes(40, 7);
    let relabel = |rows: &mut [String], at: usize, label: &str| {
        let features = rows[at].rsplit_once(',').unwrap().0.to_string();
        rows[at] = format!("{features},{label}");
    };
    let mut once = rows.clone();
    relabel(&mut once, 5, "18446744073709551615");
    relabel(&mut once, 7, "1e12");
    let data = s.write("once.csv", format!("a,b,y\n{}\n", once.join("\n")));
    let out = fit(&data, &s.path("once.safetensors"), &[]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit 0 or 1, not a signal: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    no_panic(&out, "labels 18446744073709551615 and 1e12 once each");

    let mut twice = rows.clone();
    for (at, label) in [
        (3, "18446744073709551615"),
        (9, "18446744073709551615"),
        (5, "1e12"),
        (11, "1e12"),
    ] {
        relabel(&mut twice, at, label);
    }
    let data = s.write("twice.csv", format!("a,b,y\n{}\n", twice.join("\n")));
    let stdout = succeeded(&fit(&data, &s.path("twice.safetensors"), &[]), "huge labels twice each");
    assert!(
        stdout.contains("classes (in output order): 0, 1, 1000000000000, 18446744073709551615"),
        "{stdout}"
    );

    let mut rng = StdRng::seed_from_u64(8);
    let floats: String = (0..200)
        .map(|i| {
            format!(
                "{i},{:.3},{:.3}\n",
                rng.random_range(0.0..1.0f32),
                rng.random_range(0.0..100.0f32)
            )
        })
        .collect();
    let data = s.write("floats.csv", format!("a,b,y\n{floats}"));
    let model = s.path("floats.safetensors");
    refused(&fit(&data, &model, &[]), "--regression", &[&model]);
}
