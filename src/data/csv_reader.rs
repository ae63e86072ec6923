//! CSV as found in the wild: the delimiter detected (`,` `;` tab), a header row recognised or
//! forced, the label column by index or by name, labels as integers or as names. Every
//! refusal names the file, line and column, and the option that fixes it.

use std::io::Read;
use std::path::Path;

use super::{CsvOptions, Dataset, LabelColumn, Task, data_error};
use crate::error::Result;

impl Dataset {
    /// Reads a CSV file; gzip-compressed files (by their magic bytes) are decompressed.
    ///
    /// ```no_run
    /// use wgpu_mlp::{CsvOptions, Dataset, LabelColumn};
    /// // iris.csv: "sepal_length;...;species" then rows like "5.1;3.5;1.4;0.2;setosa"
    /// let options = CsvOptions { label_column: LabelColumn::Name("species".into()), ..CsvOptions::default() };
    /// let data = Dataset::from_csv_path("iris.csv", &options)?;
    /// println!("classes {:?}", data.class_names); // Some(["setosa", "versicolor", "virginica"])
    /// # Ok::<(), wgpu_mlp::Error>(())
    /// ```
    pub fn from_csv_path(path: impl AsRef<Path>, options: &CsvOptions) -> Result<Self> {
        let (name, bytes) = read_file(path.as_ref())?;
        Self::from_csv_bytes(&bytes, &name, options)
    }

    /// Parses CSV from memory (gzip-compressed or plain); `name` appears in error messages.
    pub fn from_csv_bytes(bytes: &[u8], name: &str, options: &CsvOptions) -> Result<Self> {
        let plain = decompressed(bytes, name)?;
        let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(&plain));
        let rows = read_rows(&plain, name, delimiter, 2)?;
        let table = Table::new(rows, name, options, delimiter)?;
        table.into_dataset(name, options)
    }
}

/// Reads rows to predict on from a CSV file (gzip or plain) as [`Dataset::from_csv_path`]
/// reads training files (delimiter and header detected or set): `n_features` columns, or
/// `n_features + 1` whose label column (`options.label_column`) is left out, so a file laid
/// out like the training file works too. Row-major, as [`Model::predict`](crate::Model::predict)
/// takes them.
///
/// ```no_run
/// # fn demo(model: &wgpu_mlp::Model) -> wgpu_mlp::Result<()> {
/// let x = wgpu_mlp::data::read_features("new_rows.csv", &Default::default(), model.n_features())?;
/// let names = model.predict_class_names(&x)?;
/// # Ok(()) }
/// ```
pub fn read_features(path: impl AsRef<Path>, options: &CsvOptions, n_features: usize) -> Result<Vec<f32>> {
    let (name, bytes) = read_file(path.as_ref())?;
    let plain = decompressed(&bytes, &name)?;
    let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(&plain));
    let mut rows = read_rows(&plain, &name, delimiter, 1)?;
    let width = rows[0].1.len();
    let skip = if width == n_features + 1 {
        let table = Table::new(rows, &name, options, delimiter)?;
        rows = table.rows;
        Some(table.label_at)
    } else if width == n_features {
        let header =
            options.has_header || (rows.len() > 1 && !all_numbers(&rows[0].1, None) && all_numbers(&rows[1].1, None));
        if header {
            rows.remove(0);
        }
        None
    } else {
        let shown = char::from(delimiter).escape_default();
        return Err(data_error(
            &name,
            rows[0].0,
            0,
            format!(
                "expected {n_features} feature columns (or {} with a label), got {width} split on '{shown}' \
                 (set --delimiter if the file uses another separator)",
                n_features + 1
            ),
        ));
    };
    let mut features = Vec::with_capacity(rows.len() * n_features);
    for (line, cells) in &rows {
        for (column, cell) in cells.iter().enumerate().filter(|&(c, _)| Some(c) != skip) {
            features.push(parse_number(&name, *line, column, cell, !options.has_header)? as f32);
        }
    }
    if features.is_empty() {
        return Err(data_error(&name, 0, 0, "no data rows"));
    }
    Ok(features)
}

/// The file's name (for messages) and bytes; an unreadable file is an `Error::Io` naming it.
fn read_file(path: &Path) -> Result<(String, Vec<u8>)> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| crate::error::Error::Io {
        file: name.clone(),
        source,
    })?;
    Ok((name, bytes))
}

/// The file's bytes, gunzipped when they start with gzip's magic bytes.
fn decompressed<'a>(bytes: &'a [u8], name: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut decoded)
        .map_err(|e| data_error(name, 0, 0, format!("not valid gzip: {e}")))?;
    Ok(std::borrow::Cow::Owned(decoded))
}

/// Whether every cell but `skip` reads as a number.
fn all_numbers(cells: &[String], skip: Option<usize>) -> bool {
    cells
        .iter()
        .enumerate()
        .filter(|&(i, _)| Some(i) != skip)
        .all(|(_, c)| c.parse::<f64>().is_ok())
}

/// `,`, `;` or tab: whichever the first non-empty line holds most of (`,` on a tie).
fn detect_delimiter(text: &[u8]) -> u8 {
    let first = text
        .split(|&b| b == b'\n')
        .find(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
        .unwrap_or_default();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| (first.iter().filter(|&&b| b == d).count(), d == b','))
        .unwrap_or(b',')
}

/// Every non-blank record, as (line, cells), all of the same width.
fn read_rows(text: &[u8], name: &str, delimiter: u8, min_width: usize) -> Result<Vec<(u64, Vec<String>)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text);
    let mut rows = Vec::new();
    let mut width = None;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            data_error(name, line, 0, format!("unreadable CSV: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            return Err(data_error(
                name,
                line,
                record.len().min(expected) + 1,
                format!("ragged row: expected {expected} columns, got {}", record.len()),
            ));
        }
        if expected < min_width {
            let shown = char::from(delimiter).escape_default();
            return Err(data_error(
                name,
                line,
                1,
                format!(
                    "need at least one feature and a label, found one column split on '{shown}' \
                     (set CsvOptions::delimiter / --delimiter if the file uses another separator)"
                ),
            ));
        }
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    if rows.is_empty() {
        return Err(data_error(name, 0, 0, "no data rows"));
    }
    Ok(rows)
}

/// The rows split into header, label column and data rows.
struct Table {
    rows: Vec<(u64, Vec<String>)>,
    label_at: usize,
}

impl Table {
    fn new(mut rows: Vec<(u64, Vec<String>)>, name: &str, options: &CsvOptions, delimiter: u8) -> Result<Table> {
        let width = rows[0].1.len();
        let numeric = all_numbers;
        let guess_label = match options.label_column {
            LabelColumn::Index(i) => Some(i),
            LabelColumn::Last => Some(width - 1),
            LabelColumn::Name(_) => None,
        };
        let header_seen = options.has_header
            || matches!(options.label_column, LabelColumn::Name(_))
            || (rows.len() > 1 && !numeric(&rows[0].1, guess_label) && numeric(&rows[1].1, guess_label));
        let header = if header_seen { Some(rows.remove(0)) } else { None };
        if rows.is_empty() {
            return Err(data_error(name, 0, 0, "no data rows after the header"));
        }
        let line = rows[0].0;
        let label_at = match &options.label_column {
            LabelColumn::Last => width - 1,
            LabelColumn::Index(i) if *i < width => *i,
            LabelColumn::Index(i) => {
                return Err(data_error(
                    name,
                    line,
                    i + 1,
                    format!("label column {i} is past the {width} columns (set --label-column)"),
                ));
            }
            LabelColumn::Name(wanted) => {
                let names = header.as_ref().map(|(_, cells)| cells.clone()).unwrap_or_default();
                names.iter().position(|c| c == wanted).ok_or_else(|| {
                    let shown = char::from(delimiter).escape_default();
                    data_error(
                        name,
                        header.as_ref().map_or(0, |h| h.0),
                        0,
                        format!("no column named {wanted:?} in the header {names:?} (split on '{shown}')"),
                    )
                })?
            }
        };
        Ok(Table { rows, label_at })
    }

    fn into_dataset(self, name: &str, options: &CsvOptions) -> Result<Dataset> {
        let width = self.rows[0].1.len();
        let mut features = Vec::with_capacity(self.rows.len() * (width - 1));
        for (line, cells) in &self.rows {
            for (column, cell) in cells.iter().enumerate().filter(|&(c, _)| c != self.label_at) {
                features.push(parse_number(name, *line, column, cell, !options.has_header)? as f32);
            }
        }
        let n_features = width - 1;
        let label_cells: Vec<(u64, &str)> = self
            .rows
            .iter()
            .map(|(line, cells)| (*line, cells[self.label_at].as_str()))
            .collect();
        let column = self.label_at;
        match options.task {
            Task::Regression => {
                let targets = label_cells
                    .iter()
                    .map(|&(line, cell)| parse_number(name, line, column, cell, false).map(|v| v as f32))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Dataset {
                    name: name.to_string(),
                    features,
                    n_features,
                    targets,
                    n_outputs: 1,
                    labels: None,
                    class_names: None,
                })
            }
            Task::Classification => classify(name, column, &label_cells, features, n_features, options.n_classes),
        }
    }
}

fn parse_number(name: &str, line: u64, column: usize, cell: &str, header_possible: bool) -> Result<f64> {
    let value: f64 = cell.parse().map_err(|_| {
        let hint = if header_possible && line == 1 {
            " (a header row? set CsvOptions::has_header / --header)"
        } else {
            " (the wrong column as label? set --label-column; another separator? set --delimiter)"
        };
        data_error(name, line, column + 1, format!("expected a number, got {cell:?}{hint}"))
    })?;
    if !value.is_finite() {
        return Err(data_error(
            name,
            line,
            column + 1,
            format!("expected a finite number, got {cell}"),
        ));
    }
    Ok(value)
}

/// Class labels: integers 0..n kept as they are; anything else (names, or integers that do
/// not start at 0 or skip values) mapped to classes in sorted order, their text kept.
fn classify(
    name: &str,
    column: usize,
    cells: &[(u64, &str)],
    features: Vec<f32>,
    n_features: usize,
    n_classes: Option<usize>,
) -> Result<Dataset> {
    let integers: Option<Vec<usize>> = cells.iter().map(|(_, c)| c.parse::<usize>().ok()).collect();
    if let Some(labels) = integers {
        let largest = labels.iter().copied().max().unwrap_or(0);
        let mut seen = vec![false; largest + 1];
        labels.iter().for_each(|&l| seen[l] = true);
        // Integers 0..k with every class present, or a class count given: the labels are
        // the classes.
        if let Some(n_classes) = n_classes {
            if let Some(i) = labels.iter().position(|&l| l >= n_classes) {
                return Err(data_error(
                    name,
                    cells[i].0,
                    column + 1,
                    format!(
                        "label {} out of range 0..{n_classes} (CsvOptions::n_classes)",
                        labels[i]
                    ),
                ));
            }
            return Dataset::classification(name, features, n_features, labels, n_classes);
        }
        if seen.iter().all(|&s| s) {
            return Dataset::classification(name, features, n_features, labels, largest + 1);
        }
    } else if let Some(&(line, cell)) = cells
        .iter()
        .find(|(_, c)| c.parse::<f64>().is_ok_and(|v| v.fract() != 0.0))
    {
        return Err(data_error(
            name,
            line,
            column + 1,
            format!(
                "class labels are integers or names, got {cell} (a regression target? set Task::Regression / --regression)"
            ),
        ));
    }
    let mut names: Vec<&str> = cells.iter().map(|&(_, c)| c).collect();
    // Numbers in numeric order, names in text order.
    names.sort_by(|a, b| match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    });
    names.dedup();
    let labels: Vec<usize> = cells
        .iter()
        .map(|(_, c)| names.iter().position(|n| n == c).unwrap_or_default())
        .collect();
    let mut data = Dataset::classification(name, features, n_features, labels, names.len())?;
    data.class_names = Some(names.into_iter().map(str::to_string).collect());
    Ok(data)
}
