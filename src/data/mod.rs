//! Data sets on the host: CSV loading (optionally gzip), one-hot targets, feature scaling
//! fitted on training rows only, seeded shuffling and a stratified train/test split.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};

mod columns;
mod csv_reader;
mod header;
mod labels;
mod preprocess;
mod scaler;
mod schema;
mod table;

pub use preprocess::{ColumnStep, Impute, PreprocessOptions, Preprocessor};
pub use scaler::{Scaler, Scaling};
pub(crate) use schema::select_columns;
pub use schema::{FeatureKind, FeatureRows, Schema, features_from_bytes, read_features};
pub(crate) use table::MISSING;

/// Which column holds the label.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum LabelColumn {
    /// The last column (the default).
    #[default]
    Last,
    /// This 0-based column (the command line's `--label-column` counts from 1).
    Index(usize),
    /// The column with this name in the header row.
    Name(String),
}

/// What the labels are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Task {
    /// Class labels, trained against one-hot targets: integers `0..n_classes`, or any text
    /// (names, or integers that do not start at 0), mapped to classes in sorted order with
    /// their names kept in [`Dataset::class_names`].
    #[default]
    Classification,
    /// One real-valued target per row.
    Regression,
}

/// How to read a CSV file (each field is the command line's option of the same name).
#[derive(Clone, Debug, Default)]
pub struct CsvOptions {
    /// Which column is the label (`--label-column`).
    pub label_column: LabelColumn,
    /// Whether the first line is a header: `Some(true)` (`--header`), `Some(false)`
    /// (`--no-header`), or None to decide from the file, on clear evidence only — a first
    /// row without numbers over columns of numbers (or, in all-text files, values that never
    /// recur below it); where the evidence is not clear, reading fails asking for one of the
    /// two rather than guessing. A label column given by name implies a header.
    pub header: Option<bool>,
    /// The field separator (`--delimiter`); None detects `,`, `;` or tab from the first line.
    pub delimiter: Option<u8>,
    /// Classification or regression (`--regression`).
    pub task: Task,
    /// The number of classes, for labels that are the class numbers `0..n_classes` (some
    /// classes may then be absent); None takes the classes the labels name.
    pub n_classes: Option<usize>,
    /// The cells read as missing besides empty ones (`--na-values`); None: `NA`, `N/A`,
    /// `NaN`, `nan`, `null` and `?`.
    pub na_values: Option<Vec<String>>,
    /// Only these feature columns, by header name or 1-based number (`--features`); None:
    /// all but the label.
    pub features: Option<Vec<String>>,
    /// Columns left out (`--drop`).
    pub drop: Vec<String>,
    /// Columns read as categories even where every value is a number (`--categorical`); a
    /// text column is one anyway.
    pub categorical: Vec<String>,
    /// Columns read as numbers, a text cell then an error (`--numeric`).
    pub numeric: Vec<String>,
}

/// A data set in memory: row-major features and the targets the network trains against.
///
/// ```no_run
/// use wgpu_mlp::{Dataset, data::CsvOptions};
/// let data = Dataset::from_csv_path("data/digits.csv.gz", &CsvOptions::default())?;
/// println!("{} rows of {} features, {:?} classes", data.len(), data.n_features, data.n_classes());
/// let (train, test) = data.train_test_split(0.2, 0)?;
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Where it came from (for messages).
    pub name: String,
    /// Features, (n_samples, n_features) row-major.
    pub features: Vec<f32>,
    /// Columns of `features`.
    pub n_features: usize,
    /// Training targets, (n_samples, n_outputs): one-hot rows for classification.
    pub targets: Vec<f32>,
    /// Columns of `targets`.
    pub n_outputs: usize,
    /// Class of each sample (classification only).
    pub labels: Option<Vec<usize>>,
    /// The text of each class (class i is `class_names[i]`): a file's labels as written,
    /// sorted (numbers by value, then text).
    pub class_names: Option<Vec<String>>,
    /// The columns it was read from (names, label position, task), for a model to keep.
    pub schema: Option<Schema>,
    /// What reading did that its user should know: columns dropped, rows without a label.
    pub notes: Vec<String>,
}

/// `cell` quoted for a message, cut to about 60 characters.
pub(crate) fn shown(cell: &str) -> String {
    const MOST: usize = 60;
    let count = cell.chars().count();
    if count <= MOST {
        return format!("{cell:?}");
    }
    let head: String = cell.chars().take(MOST).collect();
    format!("{head:?}... ({count} characters)")
}

fn data_error(file: &str, line: u64, column: usize, message: impl Into<String>) -> Error {
    Error::Data {
        file: file.to_string(),
        line,
        column,
        message: message.into(),
    }
}

impl Dataset {
    /// A classification data set from features and class labels (one-hot targets).
    pub fn classification(
        name: &str,
        features: Vec<f32>,
        n_features: usize,
        labels: Vec<usize>,
        n_classes: usize,
    ) -> Result<Self> {
        let data = Dataset {
            name: name.to_string(),
            targets: one_hot(&labels, n_classes),
            n_outputs: n_classes,
            labels: Some(labels),
            features,
            n_features,
            class_names: None,
            schema: None,
            notes: Vec::new(),
        };
        data.validate()?;
        Ok(data)
    }

    /// A regression data set from features and one real-valued target per row.
    pub fn regression(name: &str, features: Vec<f32>, n_features: usize, targets: Vec<f32>) -> Result<Self> {
        Dataset::multi_output_regression(name, features, n_features, targets, 1)
    }

    /// A regression data set with `n_outputs` real-valued targets per row, `targets` (N,
    /// n_outputs) row-major (scikit-learn's 2-D `y`).
    ///
    /// ```
    /// let data = wgpu_mlp::Dataset::multi_output_regression("two", vec![0.0, 1.0], 1, vec![1.0, 2.0, 3.0, 4.0], 2)?;
    /// assert_eq!((data.len(), data.n_outputs), (2, 2));
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn multi_output_regression(
        name: &str,
        features: Vec<f32>,
        n_features: usize,
        targets: Vec<f32>,
        n_outputs: usize,
    ) -> Result<Self> {
        let data = Dataset {
            name: name.to_string(),
            features,
            n_features,
            targets,
            n_outputs,
            labels: None,
            class_names: None,
            schema: None,
            notes: Vec::new(),
        };
        data.validate()?;
        Ok(data)
    }

    /// Checks sizes, finiteness and labels.
    pub fn validate(&self) -> Result<()> {
        let name = &self.name;
        if self.n_features == 0 || self.n_outputs == 0 {
            return Err(data_error(name, 0, 0, "need at least one feature and one output"));
        }
        let n = self.len();
        if n == 0 {
            return Err(data_error(name, 0, 0, "no samples"));
        }
        if self.features.len() != n * self.n_features || self.targets.len() != n * self.n_outputs {
            return Err(data_error(
                name,
                0,
                0,
                format!(
                    "features ({}) and targets ({}) disagree on the sample count for {} features, {} outputs",
                    self.features.len(),
                    self.targets.len(),
                    self.n_features,
                    self.n_outputs
                ),
            ));
        }
        // NaN marks a missing cell in a table read from a file (a preprocessor fills it).
        let missing_allowed = self.schema.is_some();
        if let Some(i) = self
            .features
            .iter()
            .position(|v| v.is_infinite() || (v.is_nan() && !missing_allowed))
        {
            let (row, col) = (i / self.n_features, i % self.n_features);
            return Err(data_error(
                name,
                row as u64 + 1,
                col + 1,
                format!("feature is {}", self.features[i]),
            ));
        }
        if let Some(i) = self.targets.iter().position(|v| !v.is_finite()) {
            return Err(data_error(
                name,
                (i / self.n_outputs) as u64 + 1,
                0,
                format!("target is {}", self.targets[i]),
            ));
        }
        if let Some(labels) = &self.labels {
            if labels.len() != n {
                return Err(data_error(
                    name,
                    0,
                    0,
                    format!("{} labels for {n} samples", labels.len()),
                ));
            }
            if let Some(i) = labels.iter().position(|&l| l >= self.n_outputs) {
                return Err(data_error(
                    name,
                    i as u64 + 1,
                    0,
                    format!("label {} out of range 0..{}", labels[i], self.n_outputs),
                ));
            }
        }
        Ok(())
    }

    /// Each feature column's kind: the schema's, else all numeric.
    pub fn feature_kinds(&self) -> Vec<FeatureKind> {
        match &self.schema {
            Some(schema) if schema.feature_kinds.len() == self.n_features => schema.feature_kinds.clone(),
            _ => vec![FeatureKind::Numeric; self.n_features],
        }
    }

    /// Whether any feature is missing (NaN) or categorical: then it needs a [`Preprocessor`]
    /// before training.
    pub fn needs_preprocessing(&self) -> bool {
        self.features.iter().any(|v| v.is_nan()) || self.feature_kinds().iter().any(|k| *k != FeatureKind::Numeric)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.features.len() / self.n_features.max(1)
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of classes (classification) or None.
    pub fn n_classes(&self) -> Option<usize> {
        self.labels.as_ref().map(|_| self.n_outputs)
    }

    /// Splits the row indices into (train, test) as scikit-learn's `train_test_split`:
    /// stratified by class for classification ([`stratified_split`]), a seeded shuffle for
    /// regression; `test_fraction` in (0, 1), at least one row each side.
    ///
    /// ```
    /// # use wgpu_mlp::Dataset;
    /// let data = Dataset::classification("toy", vec![0.0; 10], 1, vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1], 2)?;
    /// let (train, test) = data.train_test_split(0.2, 0)?;
    /// assert_eq!((train.len(), test.len()), (8, 2));
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn train_test_split(&self, test_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
        if let Some(labels) = &self.labels {
            return stratified_split(labels, test_fraction, seed);
        }
        if !(test_fraction > 0.0 && test_fraction < 1.0) || self.len() < 2 {
            return Err(Error::invalid(
                "Dataset::train_test_split",
                "test_fraction (and rows)",
                "a value in (0, 1), with at least 2 rows",
                format!("{test_fraction} with {} rows", self.len()),
            ));
        }
        let order = shuffled_indices(self.len(), seed);
        let n_test = ((self.len() as f64 * test_fraction).round() as usize).clamp(1, self.len() - 1);
        Ok((order[n_test..].to_vec(), order[..n_test].to_vec()))
    }

    /// The features of `rows`, row-major: what [`Model::predict`](crate::Model::predict)
    /// takes.
    pub fn features_of(&self, rows: &[usize]) -> Result<Vec<f32>> {
        let d = self.n_features;
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(Error::invalid(
                "Dataset::features_of",
                "row",
                format!("< {} (the data set's rows)", self.len()),
                bad,
            ));
        }
        Ok(rows
            .iter()
            .flat_map(|&r| &self.features[r * d..(r + 1) * d])
            .copied()
            .collect())
    }
}

/// Rows of length `n_classes` with a 1 at each label.
pub fn one_hot(labels: &[usize], n_classes: usize) -> Vec<f32> {
    let mut targets = vec![0.0; labels.len() * n_classes];
    for (row, &label) in labels.iter().enumerate() {
        if label < n_classes {
            targets[row * n_classes + label] = 1.0;
        }
    }
    targets
}

/// `0..n` in a seeded random order.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut StdRng::seed_from_u64(seed));
    indices
}

/// Splits sample indices into (train, test) keeping each class's share: from every class,
/// `round(test_fraction · class size)` samples go to the test part.
pub fn stratified_split(labels: &[usize], test_fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(Error::invalid(
            "stratified_split",
            "test_fraction",
            "a value in (0, 1)",
            test_fraction,
        ));
    }
    let n_classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..n_classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        members.shuffle(&mut rng);
        let n_test = (members.len() as f64 * test_fraction).round() as usize;
        test.extend_from_slice(&members[..n_test]);
        train.extend_from_slice(&members[n_test..]);
    }
    train.shuffle(&mut rng);
    test.shuffle(&mut rng);
    if train.is_empty() || test.is_empty() {
        return Err(Error::invalid(
            "stratified_split",
            "test_fraction",
            "a share that leaves rows of some class on both sides (classes too small? more rows, or a test file: --test-data)",
            format!(
                "{test_fraction}, giving {} train and {} test rows",
                train.len(),
                test.len()
            ),
        ));
    }
    Ok((train, test))
}

/// Writes `bytes` to `path` atomically (a temporary file beside it, synced, renamed over it):
/// readers see the old file or the new one, never a half-written one.
pub fn write_atomically(path: impl AsRef<std::path::Path>, bytes: &[u8]) -> Result<()> {
    crate::checkpoint::write_atomically(path.as_ref(), bytes)
}

#[cfg(test)]
mod fuzz_tests;
