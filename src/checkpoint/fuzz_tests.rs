//! The model-file loader against thousands of mutated files per run (seeded; `FUZZ_SEED` and
//! `FUZZ_CASES` as for the CSV fuzzer): raw byte damage must be refused (the checksum) or, where
//! it only touched the header's JSON whitespace, load the very model saved; never panic; metadata and tensors edited and re-checksummed must be refused or be a consistent
//! model that round-trips through the encoder. All of it without a GPU: everything a load
//! checks is checked before the network is built.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{CheckpointFile, MlpParts};
use crate::train::model_file::PipelineParts;

/// A model file as `Model::save` writes one for a 3-4-2 Adam classifier.
fn model_file() -> CheckpointFile {
    let entries = [
        ("format", "wgpu-mlp checkpoint"),
        ("library_version", "0.1.0"),
        ("sizes", "3,4,2"),
        ("hidden_activation", "relu"),
        ("output_activation", "identity"),
        ("loss", "cross_entropy"),
        ("step", "12"),
        ("batch_size", "8"),
        ("step_kernel", "Auto"),
        ("optimizer", "adam"),
        ("lr", "0.001"),
        ("beta1", "0.9"),
        ("beta2", "0.999"),
        ("eps", "0.00000001"),
        ("weight_decay", "0"),
        ("optimizer_steps", "12"),
        ("epoch", "3"),
        ("seed", "0"),
        ("task", "classification"),
        ("class_names", r#"["cat","dog"]"#),
        ("scaler_shift", "0.5,1,-2"),
        ("scaler_scale", "1,0.25,3"),
        ("feature_names", r#"["a","b","c"]"#),
        ("label_name", "kind"),
        ("label_position", "3"),
    ];
    let metadata: BTreeMap<String, String> = entries.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut tensors = BTreeMap::new();
    for (l, (fan_in, fan_out)) in [(3, 4), (4, 2)].into_iter().enumerate() {
        for suffix in ["", ".velocity", ".second_moment"] {
            let w: Vec<f32> = (0..fan_in * fan_out).map(|i| i as f32 * 0.1 - 0.3).collect();
            tensors.insert(format!("layers.{l}.weight{suffix}"), (vec![fan_in, fan_out], w));
            tensors.insert(format!("layers.{l}.bias{suffix}"), (vec![fan_out], vec![0.05; fan_out]));
        }
    }
    CheckpointFile { metadata, tensors }
}

/// Decoding and reading as `Model::load` does, short of the GPU.
fn load(bytes: &[u8]) -> crate::Result<(CheckpointFile, MlpParts, PipelineParts)> {
    let path = Path::new("fuzz.safetensors");
    let file = CheckpointFile::decode(bytes, path)?;
    let parts = MlpParts::read(&file, path)?;
    let pipeline = PipelineParts::read(&file, path, &parts)?;
    Ok((file, parts, pipeline))
}

const VALUES: [&str; 14] = [
    "",
    "0",
    "-1",
    "1e39",
    "NaN",
    "3,4",
    "3,4,2,2",
    "[]",
    r#"["x"]"#,
    r#"["a","b","c","d"]"#,
    "sgd",
    "adamw",
    "18446744073709551616",
    "regression",
];

/// One metadata entry or tensor changed.
fn edit(rng: &mut StdRng, file: &mut CheckpointFile) {
    let keys: Vec<String> = file.metadata.keys().cloned().collect();
    let key = &keys[rng.random_range(0..keys.len())];
    match rng.random_range(0..5) {
        0 => {
            file.metadata.remove(key);
        }
        1 | 2 => {
            file.metadata
                .insert(key.clone(), VALUES[rng.random_range(0..VALUES.len())].to_string());
        }
        3 => {
            let names: Vec<String> = file.tensors.keys().cloned().collect();
            let name = &names[rng.random_range(0..names.len())];
            if let Some((shape, values)) = file.tensors.get_mut(name) {
                match rng.random_range(0..3) {
                    0 => values[0] = [f32::NAN, 3e38, f32::INFINITY, -1e16][rng.random_range(0..4)],
                    1 => {
                        shape.push(1);
                    }
                    _ => {
                        values.pop();
                        if let Some(d) = shape.last_mut() {
                            *d = values.len();
                        }
                    }
                }
            }
        }
        _ => {
            let names: Vec<String> = file.tensors.keys().cloned().collect();
            file.tensors.remove(&names[rng.random_range(0..names.len())]);
        }
    }
}

/// `FUZZ_SEED` (default 21) and `FUZZ_CASES` (default 3000).
fn settings() -> (u64, usize) {
    let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    (
        var("FUZZ_SEED").unwrap_or(21),
        var("FUZZ_CASES").map_or(3000, |c| c as usize),
    )
}

#[test]
fn the_model_file_itself_loads() {
    let bytes = model_file().encode(Path::new("m")).unwrap();
    let (_, parts, pipeline) = load(&bytes).unwrap();
    assert_eq!(parts.sizes, vec![3, 4, 2]);
    assert_eq!(pipeline.class_names, Some(vec!["cat".to_string(), "dog".to_string()]));
    let schema = pipeline.schema.unwrap();
    assert_eq!(schema.feature_names.unwrap(), ["a", "b", "c"]);
}

#[test]
fn damaged_model_files_are_refused_never_panic() {
    let (seed, cases) = settings();
    let mut rng = StdRng::seed_from_u64(seed);
    let good = model_file().encode(Path::new("m")).unwrap();
    let original = CheckpointFile::decode(&good, Path::new("m")).unwrap();
    for case in 0..cases {
        let mut bytes = good.clone();
        match rng.random_range(0..3) {
            0 => {
                let at = rng.random_range(0..bytes.len());
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            1 => bytes.truncate(rng.random_range(0..bytes.len())),
            _ => {
                let at = rng.random_range(0..bytes.len());
                let end = (at + rng.random_range(1..64)).min(bytes.len());
                bytes[at..end].iter_mut().for_each(|b| *b = rng.random());
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| load(&bytes)))
            .unwrap_or_else(|_| panic!("FUZZ_SEED={seed} case {case}: the loader panicked"));
        // Damage the parse cannot see (JSON whitespace in the header's padding) may load, but
        // then as the very model saved.
        if let Ok((decoded, _, _)) = outcome {
            assert_eq!(
                decoded, original,
                "FUZZ_SEED={seed} case {case}: a damaged file was accepted changed"
            );
        }
    }
}

#[test]
fn edited_model_files_are_refused_or_consistent() {
    let (seed, cases) = settings();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut accepted = 0;
    for case in 0..cases {
        let mut file = model_file();
        for _ in 0..rng.random_range(1..3) {
            edit(&mut rng, &mut file);
        }
        let Ok(bytes) = file.encode(Path::new("m")) else {
            continue;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| load(&bytes))).unwrap_or_else(|_| {
            panic!(
                "FUZZ_SEED={seed} case {case}: the loader panicked on {:?}",
                file.metadata
            )
        });
        let Ok((decoded, parts, pipeline)) = outcome else {
            continue;
        };
        accepted += 1;
        let outputs = parts.sizes[parts.sizes.len() - 1];
        assert!(
            pipeline.class_names.as_ref().is_none_or(|n| n.len() == outputs),
            "case {case}"
        );
        assert!(
            parts.layers[0]
                .iter()
                .flat_map(|l| l.weights.iter().chain(&l.bias))
                .all(|v| v.is_finite())
        );
        let again = decoded.encode(Path::new("m")).unwrap();
        let (redecoded, _, _) = load(&again).unwrap_or_else(|e| panic!("FUZZ_SEED={seed} case {case}: {e}"));
        assert_eq!(redecoded, decoded, "FUZZ_SEED={seed} case {case}: does not round-trip");
    }
    assert!(
        accepted > 0,
        "no edited file was accepted: the round trip tests nothing"
    );
}
