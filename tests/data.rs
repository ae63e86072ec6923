//! CSV loading and its errors, one-hot targets, scaling without leakage, stratified splits.

use std::io::Write;

use wgpu_mlp::data::{one_hot, stratified_split};
use wgpu_mlp::{
    Dataset, Error,
    data::{CsvOptions, LabelColumn, Scaler, Scaling, Task},
};

fn parse(text: &str, options: &CsvOptions) -> Result<Dataset, Error> {
    Dataset::from_csv_bytes(text.as_bytes(), "test.csv", options)
}

#[track_caller]
fn assert_data_error(result: Result<Dataset, Error>, line: u64, column: usize, fragment: &str) {
    match result {
        Err(Error::Data {
            file,
            line: l,
            column: c,
            message,
        }) => {
            assert_eq!(file, "test.csv");
            assert_eq!((l, c), (line, column), "{message}");
            assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
        }
        other => panic!("expected a data error at {line}:{column}, got {other:?}"),
    }
}

#[test]
fn parses_features_labels_and_one_hot_targets() {
    let data = parse("1,2,0\n3,4,2\n5,6,1\n", &CsvOptions::default()).unwrap();
    assert_eq!(data.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert_eq!(data.n_features, 2);
    assert_eq!(data.labels, Some(vec![0, 2, 1]));
    assert_eq!(data.n_outputs, 3);
    assert_eq!(data.targets, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0]);
}

#[test]
fn header_label_column_and_regression() {
    let options = CsvOptions {
        label_column: LabelColumn::Index(0),
        header: Some(true),
        task: Task::Regression,
        n_classes: None,
        delimiter: None,
        ..CsvOptions::default()
    };
    let data = parse("y,a,b\n0.5,1,2\n-1.5,3,4\n", &options).unwrap();
    assert_eq!(data.features, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(data.targets, vec![0.5, -1.5]);
    assert_eq!(data.labels, None);
}

#[test]
fn reads_gzip_files_from_disk() {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("small.csv.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(b"0.5,1\n0.25,0\n").unwrap();
    std::fs::write(&path, encoder.finish().unwrap()).unwrap();
    let data = Dataset::from_csv_path(&path, &CsvOptions::default()).unwrap();
    assert_eq!(data.labels, Some(vec![1, 0]));
    let missing = Dataset::from_csv_path(dir.join("missing.csv"), &CsvOptions::default());
    assert!(matches!(missing, Err(Error::Io { .. })));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_data_names_file_line_and_column() {
    let plain = CsvOptions::default();
    assert_data_error(
        parse("1,2,0\n3,4\n", &plain),
        2,
        3,
        "ragged row: expected 3 columns (as on line 1), got 2",
    );
    // A stray word among numbers is refused (a typo or an unlisted missing marker); a column
    // with more text is categorical.
    let stray: String = (0..12)
        .map(|i| {
            format!(
                "{i},{},{}\n",
                if i == 7 { "x".to_string() } else { i.to_string() },
                i % 2
            )
        })
        .collect();
    assert_data_error(parse(&stray, &plain), 8, 2, "holds numbers but \"x\" in 1 of 12 rows");
    let text = parse("1,2,0\n3,x,1\n", &plain).unwrap();
    assert!(
        matches!(&text.schema.unwrap().feature_kinds[1], wgpu_mlp::data::FeatureKind::Categorical(v) if v == &["2", "x"])
    );
    // NaN is a missing value, kept as NaN for a preprocessor to fill.
    let gap = parse("1,2,0\n3,NaN,1\n", &plain).unwrap();
    assert!(gap.features[3].is_nan() && gap.needs_preprocessing());
    assert_data_error(parse("1,inf,0\n", &plain), 1, 2, "finite");
    assert_data_error(parse("", &plain), 0, 0, "no data rows");
    assert_data_error(parse("\n\n", &plain), 0, 0, "no data rows");
    assert_data_error(parse("1,2,0.5\n", &plain), 1, 3, "names or whole numbers");
    let three = CsvOptions {
        n_classes: Some(3),
        ..CsvOptions::default()
    };
    assert_data_error(
        parse("1,2,0\n1,2,3\n", &three),
        2,
        3,
        "label \"3\" is not a class number 0..3",
    );
    let far = CsvOptions {
        label_column: LabelColumn::Index(7),
        ..CsvOptions::default()
    };
    assert_data_error(parse("1,2,0\n", &far), 1, 8, "past the 3 columns");
    assert_data_error(parse("5\n", &plain), 1, 1, "at least one feature");
}

#[test]
fn one_hot_rows() {
    assert_eq!(one_hot(&[1, 0], 2), vec![0.0, 1.0, 1.0, 0.0]);
}

/// The scaler's statistics come from the training rows alone: extreme values in the other
/// rows change nothing.
#[test]
fn scaler_sees_only_training_rows() {
    let features = vec![1.0, 10.0, 3.0, 30.0, 1e6, -1e6, 5.0, 50.0];
    let data = Dataset::classification("s", features, 2, vec![0, 1, 0, 1], 2).unwrap();
    let train = [0, 1, 3];
    let scaler = Scaler::fit(Scaling::Standardize, &data, &train).unwrap();
    assert_eq!(scaler.shift(), &[3.0, 30.0]);
    let mut other = data.clone();
    other.features[4] = 7.0;
    other.features[5] = -7.0;
    assert_eq!(Scaler::fit(Scaling::Standardize, &other, &train).unwrap(), scaler);

    let minmax = Scaler::fit(Scaling::MinMax, &data, &train).unwrap();
    let mut scaled = data.clone();
    minmax.transform(&mut scaled).unwrap();
    assert_eq!(&scaled.features[..4], &[0.0, 0.0, 0.5, 0.5]);
    assert_eq!(&scaled.features[6..], &[1.0, 1.0]);
}

#[test]
fn stratified_split_keeps_class_shares() {
    let labels: Vec<usize> = (0..100).map(|i| if i < 70 { 0 } else { 1 }).collect();
    let (train, test) = stratified_split(&labels, 0.2, 3).unwrap();
    assert_eq!(train.len() + test.len(), 100);
    let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
    all.sort();
    assert_eq!(all, (0..100).collect::<Vec<_>>());
    assert_eq!(test.iter().filter(|&&i| labels[i] == 0).count(), 14);
    assert_eq!(test.iter().filter(|&&i| labels[i] == 1).count(), 6);
    assert_eq!(stratified_split(&labels, 0.2, 3).unwrap(), (train, test));
    assert!(stratified_split(&labels, 1.5, 3).is_err());
}

/// CSV as found in the wild: `;` and tab detected, a header recognised without being told
/// (and refused cells pointing at `--header` when it is not), the label column by name,
/// string labels and labels not starting at 0 mapped to classes with their names kept.
#[test]
fn delimiters_headers_and_named_labels() {
    let plain = CsvOptions::default();
    let iris =
        "sepal_length;sepal_width;species\n5.1;3.5;setosa\n7.0;3.2;versicolor\n6.3;3.3;virginica\n4.9;3.0;setosa\n";
    let data = parse(iris, &plain).unwrap();
    assert_eq!(data.n_features, 2);
    assert_eq!(data.features, vec![5.1, 3.5, 7.0, 3.2, 6.3, 3.3, 4.9, 3.0]);
    assert_eq!(data.labels, Some(vec![0, 1, 2, 0]));
    let names = ["setosa", "versicolor", "virginica"].map(String::from).to_vec();
    assert_eq!(data.class_names, Some(names));
    // by name, label first, tabs
    let by_name = CsvOptions {
        label_column: LabelColumn::Name("kind".into()),
        ..CsvOptions::default()
    };
    let data = parse("kind\tx\tz\ncat\t1\t2\ndog\t3\t4\n", &by_name).unwrap();
    assert_eq!(data.features, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(data.class_names, Some(vec!["cat".to_string(), "dog".to_string()]));
    assert_data_error(parse("a,b\n1,2\n", &by_name), 1, 0, "no column named \"kind\"");
    // labels 1..3: three classes, not four with an empty class 0
    let data = parse("0.1,1\n0.2,2\n0.3,3\n0.4,1\n", &plain).unwrap();
    assert_eq!(data.labels, Some(vec![0, 1, 2, 0]));
    assert_eq!(data.n_outputs, 3);
    assert_eq!(
        data.class_names,
        Some(vec!["1".to_string(), "2".to_string(), "3".to_string()])
    );
    // -1 / 1 labels
    let data = parse("0.1,-1\n0.2,1\n", &plain).unwrap();
    assert_eq!(data.class_names, Some(vec!["-1".to_string(), "1".to_string()]));
    // a header on a one-row file cannot be told from data: the error says what to set
    assert_data_error(parse("a,b,label\n", &plain), 1, 0, "header but no data rows");
    // one column after splitting: the error names the delimiter option
    let forced = CsvOptions {
        delimiter: Some(b','),
        ..CsvOptions::default()
    };
    assert_data_error(parse("1;2;0\n", &forced), 1, 1, "--delimiter");
}
