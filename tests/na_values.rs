//! A training file's `--na-values` travel with its schema: new rows are read with the same
//! missing markers unless the caller gives others.

use wgpu_mlp::data::features_from_bytes;
use wgpu_mlp::{Dataset, data::CsvOptions};

#[test]
fn new_rows_take_the_training_files_missing_markers() {
    let options = CsvOptions {
        na_values: Some(vec!["-999".into()]),
        ..CsvOptions::default()
    };
    let table: String = (0..12)
        .map(|i| {
            format!(
                "{},{}\n",
                if i == 3 { "-999".to_string() } else { i.to_string() },
                i % 2
            )
        })
        .collect();
    let data = Dataset::from_csv_bytes(format!("x,label\n{table}").as_bytes(), "train.csv", &options).unwrap();
    assert!(data.features[3].is_nan(), "-999 is missing at fit");
    let schema = data.schema.clone().unwrap();
    assert_eq!(schema.na_values, Some(vec!["-999".to_string()]));
    let rows = features_from_bytes(b"x\n-999\n2\n", "new.csv", &CsvOptions::default(), &schema, 1).unwrap();
    assert!(
        rows.features[0].is_nan() && rows.features[1] == 2.0,
        "{:?}",
        rows.features
    );
    // Markers given for the new rows win.
    let own = CsvOptions {
        na_values: Some(vec!["?".into()]),
        ..CsvOptions::default()
    };
    let rows = features_from_bytes(b"x\n-999\n?\n", "new.csv", &own, &schema, 1).unwrap();
    assert_eq!(rows.features[0], -999.0);
    assert!(rows.features[1].is_nan());
}
