//! The CSV readers against thousands of mutated files per run (seeded; `FUZZ_SEED=N` replays
//! another stream, `FUZZ_CASES=N` runs more): no input may panic, and every file the training
//! reader accepts must round-trip — written back as CSV and read again, it gives the same
//! data set. The prediction reader runs on the same inputs for a model of the seed's layout.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{CsvOptions, Dataset, FeatureKind, LabelColumn, Schema, Task, features_from_bytes};

const SEEDS: [&str; 6] = [
    "sl,sw,pl,species\n5.1,3.5,1.4,setosa\n7.0,3.2,4.7,versicolor\n6.3,3.3,6.0,virginica\n4.9,3.0,1.4,setosa\n6.4,3.2,4.5,versicolor\n",
    "0,0,5,13,1\n0,1,4,12,0\n3,0,5,11,1\n2,2,2,2,0\n",
    "a;b;y\n1,5;2;0\n3;4;1\n5;6;1\n7;8;0\n",
    "\"x, y\",z,label\n\"1\",2,\"cat, big\"\n3,4,dog\n5,6,cat\n",
    "id\tf1\tf2\tclass\n1\t0.5\t-1e3\tA\n2\t1.5\t2e-3\tB\n3\tNA\t7\tA\n4\t2\t\tB\n",
    "1,2,3,\n4,5,6,\n7,8,9,\n",
];

const PIECES: [&str; 16] = [
    ",",
    "\n",
    "\"",
    ";",
    "\t",
    "NA",
    "?",
    "nan",
    "inf",
    "-",
    "1e39",
    "18446744073709551615",
    "\r\n",
    "",
    "é",
    "0",
];

fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..6) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            1 => {
                let piece = PIECES[rng.random_range(0..PIECES.len())];
                bytes.splice(at..at, piece.bytes());
            }
            2 if at < bytes.len() => {
                let end = (at + rng.random_range(1..8)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => bytes.truncate(at),
            4 => {
                let line: Vec<u8> = bytes.split(|&b| b == b'\n').nth(1).unwrap_or_default().to_vec();
                bytes.splice(at..at, line.into_iter().chain([b'\n']));
            }
            _ => bytes
                .splice(at..at, std::iter::repeat_n(b'x', rng.random_range(0..100)))
                .for_each(drop),
        }
    }
    if rng.random_range(0..8) == 0 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&bytes).ok();
        bytes = gz.finish().unwrap_or_default();
    }
    bytes
}

/// The options a mutated file is read with: the default, by name, regression, a position.
fn options(rng: &mut StdRng) -> CsvOptions {
    let label_column = match rng.random_range(0..4) {
        0 => LabelColumn::Name("species".into()),
        1 => LabelColumn::Index(rng.random_range(0..5)),
        _ => LabelColumn::Last,
    };
    let header = [None, Some(true), Some(false)][rng.random_range(0..3)];
    let task = if rng.random_range(0..4) == 0 {
        Task::Regression
    } else {
        Task::Classification
    };
    CsvOptions {
        label_column,
        header,
        task,
        ..CsvOptions::default()
    }
}

/// `data` written back as CSV, with the options that read it as it was read.
fn written_back(data: &Dataset) -> (Vec<u8>, CsvOptions) {
    let schema = data.schema.clone().expect("a data set read from CSV has a schema");
    // The label's place among the columns written back (columns dropped at reading are not).
    let in_file = schema.label_position.expect("and a label position");
    let at = schema.feature_columns.iter().filter(|&&c| c < in_file).count();
    let mut out = csv::Writer::from_writer(Vec::new());
    if let Some(names) = &schema.feature_names {
        let mut header = names.clone();
        header.insert(at, schema.label_name.clone().unwrap_or_default());
        out.write_record(&header).expect("in memory");
    }
    let kinds = data.feature_kinds();
    for row in 0..data.len() {
        let mut cells: Vec<String> = data.features[row * data.n_features..(row + 1) * data.n_features]
            .iter()
            .zip(&kinds)
            .map(|(v, kind)| match kind {
                _ if v.is_nan() => String::new(),
                FeatureKind::Categorical(values) => values[*v as usize].clone(),
                FeatureKind::Numeric => v.to_string(),
            })
            .collect();
        let label = match (&data.labels, &data.class_names) {
            (Some(labels), Some(names)) => names[labels[row]].clone(),
            _ => data.targets[row].to_string(),
        };
        cells.insert(at, label);
        out.write_record(&cells).expect("in memory");
    }
    // Categorical columns kept categorical (a value that made a column text may have been on
    // a row dropped for its missing label), by their position in the written file.
    let written: Vec<usize> = (0..=data.n_features).filter(|&c| c != at).collect();
    let categorical = (0..kinds.len())
        .filter(|&f| matches!(kinds[f], FeatureKind::Categorical(_)))
        .map(|f| match &schema.feature_names {
            // By name where there is a header (a number could be another column's name).
            Some(names) => names[f].clone(),
            None => (written[f] + 1).to_string(),
        })
        .collect();
    let options = CsvOptions {
        categorical,
        label_column: LabelColumn::Index(at),
        header: Some(schema.feature_names.is_some()),
        delimiter: Some(b','),
        task: schema.task,
        ..CsvOptions::default()
    };
    (out.into_inner().expect("in memory"), options)
}

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

#[test]
fn mutated_csv_files_never_panic_and_accepted_ones_round_trip() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut accepted, mut predicted) = (0, 0);
    for case in 0..cases() {
        let source = SEEDS[case % SEEDS.len()].as_bytes();
        let bytes = mutate(&mut rng, source);
        let options = options(&mut rng);
        let shown = String::from_utf8_lossy(&bytes).to_string();
        let read = catch_unwind(AssertUnwindSafe(|| {
            Dataset::from_csv_bytes(&bytes, "fuzz.csv", &options)
        }))
        .unwrap_or_else(|_| panic!("FUZZ_SEED={seed} case {case}: the reader panicked on {shown:?} with {options:?}"));
        if let Ok(data) = read {
            accepted += 1;
            let (text, again) = written_back(&data);
            let reread = Dataset::from_csv_bytes(&text, "fuzz.csv", &again).unwrap_or_else(|e| {
                panic!(
                    "FUZZ_SEED={seed} case {case}: {shown:?} read, but its copy {:?} not: {e}",
                    String::from_utf8_lossy(&text)
                )
            });
            let bits = |d: &Dataset| d.features.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                (bits(&reread), &reread.labels, &reread.class_names, &reread.targets),
                (bits(&data), &data.labels, &data.class_names, &data.targets),
                "FUZZ_SEED={seed} case {case}: {shown:?} does not round-trip"
            );
            // Names, kinds and task survive; positions are the copy's (dropped columns are not written).
            let kept = |d: &Dataset| {
                d.schema
                    .clone()
                    .map(|s| (s.feature_names, s.label_name, s.task, s.feature_kinds))
            };
            assert_eq!(kept(&reread), kept(&data), "FUZZ_SEED={seed} case {case}: {shown:?}");
        }
        let schema = Schema {
            feature_names: Some(vec!["sl".into(), "sw".into(), "pl".into()]),
            label_name: Some("species".into()),
            label_position: Some(3),
            task: Task::Classification,
            feature_kinds: Vec::new(),
            feature_columns: Vec::new(),
            n_columns: None,
            na_values: None,
        };
        let rows = catch_unwind(AssertUnwindSafe(|| {
            features_from_bytes(&bytes, "fuzz.csv", &options, &schema, 3)
        }))
        .unwrap_or_else(|_| panic!("FUZZ_SEED={seed} case {case}: the prediction reader panicked on {shown:?}"));
        if let Ok(rows) = rows {
            predicted += 1;
            assert_eq!(rows.features.len(), rows.n_rows * 3, "FUZZ_SEED={seed} case {case}");
            // Numbers, or NaN for a missing cell (the model's preprocessor fills it).
            assert!(
                rows.features.iter().all(|v| !v.is_infinite()),
                "FUZZ_SEED={seed} case {case}"
            );
        }
    }
    // The mutations must leave a fair share readable, or the round trip tests nothing.
    assert!(
        accepted > cases() / 40,
        "only {accepted} of {} mutated files were accepted",
        cases()
    );
    assert!(
        predicted > cases() / 40,
        "only {predicted} of {} read for prediction",
        cases()
    );
}
