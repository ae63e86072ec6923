//! Mixed tables on the host: column kinds and codes as read from CSV, and the Preprocessor's
//! numerics against f64 references written here (no GPU needed). The search, the model and
//! the files they make are in tests/tables_model.rs.

mod common;

use common::seeded_rng;
use rand::Rng;
use wgpu_mlp::data::{ColumnStep, FeatureKind, Impute, PreprocessOptions, Preprocessor};
use wgpu_mlp::{
    Dataset, Error,
    data::{CsvOptions, Scaler, Scaling, Schema, Task},
};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// 25 rows: an id, a numeric column with every default missing marker, a text column, a
/// numeric-looking column (`zip`), a text column holding numbers and text, and a label that
/// is missing in row 12.
fn kinds_csv() -> String {
    let markers = ["", "NA", "?", "N/A", "null", "nan", "NaN"];
    let mut text = String::from("id,age,color,zip,mixed,label\n");
    for i in 0..25 {
        let age = if i % 4 == 1 {
            markers[i / 4].to_string()
        } else {
            format!("{}.5", i)
        };
        let color = if i == 7 { "NA" } else { ["red", "green", "blue"][i % 3] };
        let zip = ["10", "2", "30"][i % 3];
        let mixed = if i % 4 == 0 {
            "x".to_string()
        } else {
            (i % 4).to_string()
        };
        let label = if i == 12 { "" } else { ["a", "b"][i % 2] };
        text += &format!("u{i:03},{age},{color},{zip},{mixed},{label}\n");
    }
    text
}

fn read(text: &str, options: CsvOptions) -> wgpu_mlp::Result<Dataset> {
    Dataset::from_csv_bytes(text.as_bytes(), "kinds.csv", &options)
}

#[test]
fn kinds_codes_missing_cells_and_dropped_columns() {
    let options = CsvOptions {
        categorical: names(&["zip"]),
        ..CsvOptions::default()
    };
    let data = read(&kinds_csv(), options).unwrap();
    let schema = data.schema.clone().unwrap();
    assert_eq!(schema.feature_names, Some(names(&["age", "color", "zip", "mixed"])));
    assert_eq!(schema.feature_columns, vec![1, 2, 3, 4]);
    assert_eq!((schema.label_position, schema.n_columns), (Some(5), Some(6)));
    let colors = names(&["blue", "green", "red"]);
    let zips = names(&["2", "10", "30"]); // numbers by value, not as text
    let mixed = names(&["1", "2", "3", "x"]); // numbers before text
    let kinds = vec![
        FeatureKind::Numeric,
        FeatureKind::Categorical(colors.clone()),
        FeatureKind::Categorical(zips.clone()),
        FeatureKind::Categorical(mixed.clone()),
    ];
    assert_eq!(schema.feature_kinds, kinds);
    assert_eq!(data.class_names, Some(names(&["a", "b"])));
    // Row 12 (missing label) is gone; the id (24 distinct of 24 rows) is dropped with a note.
    let kept: Vec<usize> = (0..25).filter(|&i| i != 12).collect();
    assert_eq!((data.len(), data.n_features), (24, 4));
    assert!(
        data.notes.iter().any(|n| n.contains("\"id\"") && n.contains("dropped")),
        "{:?}",
        data.notes
    );
    assert!(
        data.notes.iter().any(|n| n.contains("missing label")),
        "{:?}",
        data.notes
    );
    let code = |list: &[String], v: &str| list.iter().position(|c| c == v).unwrap() as f32;
    for (r, &i) in kept.iter().enumerate() {
        let row = &data.features[r * 4..r * 4 + 4];
        if i % 4 == 1 {
            assert!(row[0].is_nan(), "row {i}: age {} should be missing", row[0]);
        } else {
            assert_eq!(row[0], i as f32 + 0.5, "row {i}");
        }
        match i {
            7 => assert!(row[1].is_nan(), "row 7's color NA is missing"),
            _ => assert_eq!(row[1], code(&colors, ["red", "green", "blue"][i % 3]), "row {i}"),
        }
        assert_eq!(row[2], code(&zips, ["10", "2", "30"][i % 3]), "row {i}");
        let m = if i % 4 == 0 {
            "x".to_string()
        } else {
            (i % 4).to_string()
        };
        assert_eq!(row[3], code(&mixed, &m), "row {i}");
        assert_eq!(data.labels.as_ref().unwrap()[r], i % 2, "row {i}");
    }
    // Not forced, zip is numeric; a forced id is kept as categories.
    let plain = read(&kinds_csv(), CsvOptions::default()).unwrap();
    assert_eq!(plain.feature_kinds()[2], FeatureKind::Numeric);
    assert_eq!(plain.features[2], 10.0);
    let with_id = CsvOptions {
        categorical: names(&["id"]),
        ..CsvOptions::default()
    };
    let with_id = read(&kinds_csv(), with_id).unwrap();
    assert_eq!(with_id.schema.as_ref().unwrap().feature_columns, vec![0, 1, 2, 3, 4]);
    assert!(matches!(&with_id.feature_kinds()[0], FeatureKind::Categorical(v) if v.len() == 24));
}

#[test]
fn features_and_drop_select_columns_and_unknown_names_are_refused() {
    let picked = |options: CsvOptions| {
        let mut got = read(&kinds_csv(), options)
            .unwrap()
            .schema
            .unwrap()
            .feature_names
            .unwrap();
        got.sort();
        got
    };
    let features = |list: &[&str]| CsvOptions {
        features: Some(names(list)),
        ..CsvOptions::default()
    };
    assert_eq!(picked(features(&["zip", "age"])), names(&["age", "zip"]));
    assert_eq!(picked(features(&["3"])), names(&["color"]), "1-based column numbers");
    let drop = CsvOptions {
        drop: names(&["color", "mixed"]),
        ..CsvOptions::default()
    };
    assert_eq!(picked(drop), names(&["age", "zip"]));
    // Each option names an unknown column: an Error::Data naming it.
    let unknown = [
        features(&["age", "nope_f"]),
        CsvOptions {
            drop: names(&["nope_d"]),
            ..CsvOptions::default()
        },
        CsvOptions {
            categorical: names(&["nope_c"]),
            ..CsvOptions::default()
        },
        CsvOptions {
            numeric: names(&["nope_n"]),
            ..CsvOptions::default()
        },
        features(&["7"]), // past the 6 columns
    ];
    for (options, wanted) in unknown
        .into_iter()
        .zip(["nope_f", "nope_d", "nope_c", "nope_n", "\"7\""])
    {
        match read(&kinds_csv(), options) {
            Err(Error::Data { message, .. }) => assert!(message.contains(wanted), "{wanted}: {message}"),
            other => panic!("{wanted}: expected Error::Data, got {other:?}"),
        }
    }
    // A text column forced numeric is refused at its first text cell.
    let numeric = CsvOptions {
        numeric: names(&["color"]),
        ..CsvOptions::default()
    };
    assert!(matches!(read(&kinds_csv(), numeric), Err(Error::Data { .. })));
}

#[test]
fn custom_na_values_replace_the_default_markers() {
    let text = "a,b,label\n1,-999,x\nNA,2,y\n3,,x\n4,5,y\n";
    let default = read(text, CsvOptions::default()).unwrap();
    assert_eq!(default.feature_kinds(), vec![FeatureKind::Numeric; 2]);
    assert!(default.features[2].is_nan() && default.features[5].is_nan());
    assert_eq!(default.features[1], -999.0);
    let options = CsvOptions {
        na_values: Some(names(&["-999"])),
        ..CsvOptions::default()
    };
    let custom = read(text, options).unwrap();
    // "NA" is now a value (so `a` is text), "-999" and the empty cell are missing.
    assert_eq!(
        custom.feature_kinds()[0],
        FeatureKind::Categorical(names(&["1", "3", "4", "NA"]))
    );
    assert_eq!(custom.feature_kinds()[1], FeatureKind::Numeric);
    let b: Vec<f32> = (0..4).map(|r| custom.features[r * 2 + 1]).collect();
    assert!(b[0].is_nan() && b[2].is_nan() && b[1] == 2.0 && b[3] == 5.0, "{b:?}");
    assert_eq!(custom.features[2], 3.0, "code of \"NA\" among 1, 3, 4, NA");
}

// ------------------------------------------------------------------ the Preprocessor

/// 9 rows of 6 columns (4 numeric, 2 categorical over 5 categories); the preprocessor is
/// fitted on `FIT` only, and the other rows hold extreme values and codes it must not see.
const FIT: [usize; 6] = [0, 2, 3, 5, 6, 8];
const NAN: f32 = f32::NAN;
#[rustfmt::skip]
const FIT_COLUMNS: [[f32; 6]; 6] = [
    [4.0, NAN, 1.0, 10.0, 2.0, NAN],     // median of 4 present values: (2 + 4) / 2 = 3
    [7.0, 3.0, NAN, 5.0, 100.0, -1.0],   // median of 5: 5
    [2.5, 2.5, NAN, 2.5, 2.5, 2.5],      // constant
    [3.0, 1.0, 3.0, 1.0, NAN, 2.0],      // most frequent: 1 and 3 tie, the smaller wins
    [2.0, 0.0, 2.0, NAN, 0.0, 3.0],      // codes 0 and 2 tie (fill 0); 1 and 4 never seen
    [1.0, 1.0, 1.0, 4.0, 4.0, 0.0],      // complete
];
/// Rows 1, 4, 7: far outside the fitted rows; unknown (-1) and unfitted (1) codes.
const OTHER_ROWS: [[f32; 6]; 3] = [
    [1e6, -1e6, 9.0, NAN, 1.0, -1.0],
    [NAN, NAN, NAN, 7.0, -1.0, 2.0],
    [-3.0, 0.5, 2.5, 2.0, 4.0, NAN],
];

fn preprocess_data() -> Dataset {
    let mut features = vec![0.0; 9 * 6];
    for (k, &r) in FIT.iter().enumerate() {
        for j in 0..6 {
            features[r * 6 + j] = FIT_COLUMNS[j][k];
        }
    }
    for (row, &r) in OTHER_ROWS.iter().zip(&[1, 4, 7]) {
        features[r * 6..r * 6 + 6].copy_from_slice(row);
    }
    let categories = FeatureKind::Categorical(names(&["a", "b", "c", "d", "e"]));
    let mut kinds = vec![FeatureKind::Numeric; 4];
    kinds.extend([categories.clone(), categories]);
    let mut data = Dataset::regression("pre", vec![0.0; 54], 6, vec![0.0; 9]).unwrap();
    data.schema = Some(Schema {
        feature_names: None,
        label_name: None,
        label_position: None,
        task: Task::Regression,
        feature_kinds: kinds,
        feature_columns: Vec::new(),
        n_columns: None,
        na_values: None,
    });
    data.features = features;
    data.validate().unwrap();
    data
}

/// The f64 reference of one numeric column fitted on `values`: (fill, mean, std) after filling.
fn numeric_reference(values: &[f32], impute: Impute) -> (f64, f64, f64) {
    let mut present: Vec<f64> = values.iter().filter(|v| !v.is_nan()).map(|&v| v as f64).collect();
    present.sort_by(f64::total_cmp);
    let n = present.len();
    let fill = match impute {
        _ if n == 0 => 0.0,
        Impute::Mean => present.iter().sum::<f64>() / n as f64,
        Impute::Median if n % 2 == 1 => present[n / 2],
        Impute::Median => (present[n / 2 - 1] + present[n / 2]) / 2.0,
        Impute::MostFrequent => {
            let count = |x: f64| present.iter().filter(|&&v| v == x).count();
            // the first (smallest) of the values with the highest count
            *present
                .iter()
                .find(|&&x| present.iter().all(|&y| count(y) <= count(x)))
                .unwrap()
        }
    };
    let fill = fill as f32 as f64; // the fill is stored as f32, and fills with that value
    let filled: Vec<f64> = values
        .iter()
        .map(|&v| if v.is_nan() { fill } else { v as f64 })
        .collect();
    let mean = filled.iter().sum::<f64>() / filled.len() as f64;
    let std = (filled.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / filled.len() as f64).sqrt();
    (fill, mean, std)
}

/// Relative closeness for f32 results of f64 references: |got − want| ≤ 1e-6 · max(1, |want|)
/// (a few f32 roundings).
fn close(got: f32, want: f64) -> bool {
    (got as f64 - want).abs() <= 1e-6 * want.abs().max(1.0)
}

#[test]
fn preprocessor_matches_an_f64_reference_and_sees_only_its_rows() {
    let data = preprocess_data();
    let cases = [
        (Impute::Median, true, None, [3.0, 5.0, 2.5, 2.0]),
        (Impute::Mean, false, None, [4.25, 22.8, 2.5, 2.0]),
        (Impute::MostFrequent, true, Some(2), [1.0, -1.0, 2.5, 1.0]),
    ];
    for (impute, add_indicator, max_categories, fills) in cases {
        let options = PreprocessOptions {
            impute,
            add_indicator,
            max_categories,
        };
        let what = format!("{options:?}");
        let pre = Preprocessor::fit(&data, &FIT, &options).unwrap();
        let mut want_rows: Vec<Vec<f64>> = vec![Vec::new(); 9];
        for j in 0..4 {
            let (fill, mean, std) = numeric_reference(&FIT_COLUMNS[j], impute);
            assert!(
                (fill - fills[j]).abs() < 1e-5,
                "{what}: column {j}'s fill {fill}, by hand {}",
                fills[j]
            );
            let ColumnStep::Numeric {
                fill: f,
                shift,
                scale,
                indicator,
            } = pre.columns[j]
            else {
                panic!("{what}: column {j} should be numeric");
            };
            let scale_want = if std > 0.0 { 1.0 / std } else { 1.0 };
            assert!(
                close(f, fill) && close(shift, mean) && close(scale, scale_want),
                "{what} col {j}: {:?}",
                pre.columns[j]
            );
            assert_eq!(indicator, add_indicator && FIT_COLUMNS[j].iter().any(|v| v.is_nan()));
            for (r, row) in want_rows.iter_mut().enumerate() {
                let x = data.features[r * 6 + j];
                let missing = x.is_nan();
                row.push((if missing { fill } else { x as f64 } - mean) * scale_want);
                if indicator {
                    row.push(missing as u8 as f64);
                }
            }
        }
        // Categorical: slots are the codes seen in the fitted rows, in code order; with
        // max_categories 2 only the most frequent keeps a column and the rest share one.
        let (slots4, inf4, slots5, inf5): (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) = match max_categories {
            None => (vec![0, 2, 3], vec![], vec![0, 1, 4], vec![]),
            Some(_) => (vec![0], vec![2, 3], vec![1], vec![0, 4]),
        };
        for (j, slots, infrequent) in [(4, slots4, inf4), (5, slots5, inf5)] {
            let indicator = add_indicator && j == 4;
            let fill = if j == 4 { 0 } else { 1 }; // the most frequent code (smallest of ties)
            let want = ColumnStep::Categorical {
                slots: slots.clone(),
                infrequent: infrequent.clone(),
                fill,
                indicator,
            };
            assert_eq!(pre.columns[j], want, "{what}: column {j}");
            for (r, row) in want_rows.iter_mut().enumerate() {
                let x = data.features[r * 6 + j];
                let code = if x.is_nan() { fill as i64 } else { x as i64 };
                row.extend(slots.iter().map(|&s| (s as i64 == code) as u8 as f64));
                if !infrequent.is_empty() {
                    row.push(infrequent.iter().any(|&s| s as i64 == code) as u8 as f64);
                }
                if indicator {
                    row.push(x.is_nan() as u8 as f64);
                }
            }
        }
        let want: Vec<f64> = want_rows.concat();
        let got = pre.transform(&data).unwrap();
        assert_eq!(got.n_features * 9, want.len(), "{what}: output width");
        assert_eq!(pre.n_outputs(), got.n_features);
        for (i, (&g, &w)) in got.features.iter().zip(&want).enumerate() {
            // 1e-5 relative: (x − shift)·scale in f32 against f64, x up to 1e6.
            assert!(
                (g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{what}: output {i}: {g} vs {w}"
            );
        }
        // Only the fitted rows count: editing every other row changes nothing; editing a
        // fitted one does.
        let mut edited = data.clone();
        for r in [1, 4, 7] {
            edited.features[r * 6..r * 6 + 6].copy_from_slice(&[5e5, 1.0, -7.0, 3.0, 3.0, 3.0]);
        }
        assert_eq!(Preprocessor::fit(&edited, &FIT, &options).unwrap(), pre, "{what}");
        edited.features[8 * 6] = 50.0;
        edited.features[8 * 6 + 4] = 3.0;
        assert_ne!(Preprocessor::fit(&edited, &FIT, &options).unwrap(), pre, "{what}");
    }
}

#[test]
fn complete_numeric_columns_are_exactly_the_standard_scaler() {
    let (seed, mut rng) = seeded_rng();
    let (n, d) = (37, 5);
    let mut features: Vec<f32> = (0..n * d).map(|_| rng.random_range(-50.0..50.0f32)).collect();
    for r in 0..n {
        features[r * d + 3] = 0.1; // a constant column: scale 1
        features[r * d + 4] *= 1e4;
    }
    let data = Dataset::regression("scaler", features, d, vec![0.0; n]).unwrap();
    let rows: Vec<usize> = (0..n).filter(|r| r % 4 != 2).collect();
    let scaler = Scaler::fit(Scaling::Standardize, &data, &rows).unwrap();
    for impute in [Impute::Median, Impute::Mean, Impute::MostFrequent] {
        let options = PreprocessOptions {
            impute,
            add_indicator: true, // no gaps: no indicator columns
            max_categories: Some(2),
        };
        let pre = Preprocessor::fit(&data, &rows, &options).unwrap();
        assert_eq!(pre.n_outputs(), d, "seed {seed}");
        for j in 0..d {
            let ColumnStep::Numeric {
                shift,
                scale,
                indicator,
                ..
            } = pre.columns[j]
            else {
                panic!("column {j} is numeric");
            };
            let (s, c) = (scaler.shift()[j], scaler.scale()[j]);
            assert_eq!(
                (shift.to_bits(), scale.to_bits(), indicator),
                (s.to_bits(), c.to_bits(), false),
                "seed {seed}, {impute:?}, column {j}: preprocessor ({shift}, {scale}) vs scaler ({s}, {c})"
            );
        }
        let mut scaled = data.features.clone();
        scaler.transform_rows(&mut scaled).unwrap();
        let got = pre.transform_rows(&data.features).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&scaled), "seed {seed}, {impute:?}: transformed rows");
    }
}
