//! CSV as found in the wild: gzip or plain, from a file, a FIFO or standard input (`-`); the
//! delimiter detected (`,` `;` tab); a header row recognised only on clear evidence (else
//! `--header` / `--no-header` decide); columns empty in every row dropped with a note; the
//! label column by position or by name. Every row is read or the file is refused with its
//! 1-based line and column, as a spreadsheet numbers them.

use std::io::Read;
use std::path::Path;

use super::header::first_row_is_header;
pub(crate) use super::header::unique_names;
use super::labels::{class_labels, regression_targets};
pub(crate) use super::table::Table;
use super::{CsvOptions, Dataset, LabelColumn, Schema, Task, data_error, shown};
use crate::error::{Error, Result};

/// The most a data file may hold (a limit that keeps an endless stream from taking all memory).
const MAX_FILE_BYTES: u64 = 4 << 30;

impl Dataset {
    /// Reads a CSV file (gzip-compressed or plain, by its magic bytes); `-` reads standard
    /// input, and FIFOs such as `<(zcat data.csv.gz)` work.
    ///
    /// ```no_run
    /// use wgpu_mlp::{Dataset, data::{CsvOptions, LabelColumn}};
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
        let label_named = matches!(options.label_column, LabelColumn::Name(_));
        if label_named && options.header == Some(false) {
            return Err(data_error(
                name,
                0,
                0,
                "the label column is given by name, which needs a header: drop --no-header or give its position",
            ));
        }
        let rule = |rows: &[(u64, Vec<String>)]| first_row_is_header(rows, name, options.header, label_named);
        let mut table = Table::read(bytes, name, options, &rule)?;
        let label_at = table.drop_empty_features(options)?;
        table.into_dataset(options, label_at)
    }
}

/// The file's name (for messages) and bytes; `-` is standard input. An unreadable file is an
/// `Error::Io` naming it.
pub(crate) fn read_file(path: &Path) -> Result<(String, Vec<u8>)> {
    let name = path.display().to_string();
    let io = |source| Error::Io {
        file: name.clone(),
        source,
    };
    if name == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        return Ok(("standard input".into(), bytes));
    }
    if path.is_dir() {
        return Err(data_error(&name, 0, 0, "is a folder, not a CSV file"));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(data_error(
            &name,
            0,
            0,
            "is larger than 4 GiB (or endless, like /dev/zero): not read",
        ));
    }
    Ok((name, bytes))
}

/// The file's bytes, gunzipped (every member) when they start with gzip's magic bytes;
/// anything after the last member that is not gzip is refused.
fn decompressed<'a>(bytes: &'a [u8], name: &str) -> Result<std::borrow::Cow<'a, [u8]>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut decoded = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut decoded)
        .map_err(|e| {
            data_error(
                name,
                0,
                0,
                format!("not valid gzip ({e}): the file is damaged or has bytes after its compressed data"),
            )
        })?;
    Ok(std::borrow::Cow::Owned(decoded))
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

/// The 1-based line of byte `at`: line ends are `\n`, `\r\n` or a lone `\r`.
fn line_at(text: &[u8], at: u64) -> u64 {
    let before = &text[..(at as usize).min(text.len())];
    let ends = before
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n')))
        .count();
    ends as u64 + 1
}

/// Every non-blank record, as (1-based line, cells), all of the same width.
fn read_rows(text: &[u8], name: &str, delimiter: u8) -> Result<Vec<(u64, Vec<String>)>> {
    if let Some(at) = text.iter().position(|&b| b == 0) {
        return Err(data_error(
            name,
            line_at(text, at as u64),
            0,
            "holds NUL bytes: not a text CSV file (UTF-16? save it as UTF-8)",
        ));
    }
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
            let line = e.position().map_or(0, |p| line_at(text, p.byte()));
            let why = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => "not UTF-8 text (save the file as UTF-8)".to_string(),
                _ => format!("unreadable CSV ({e})"),
            };
            data_error(name, line, 0, why)
        })?;
        let line = record.position().map_or(0, |p| line_at(text, p.byte()));
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            let shown = char::from(delimiter).escape_default();
            return Err(data_error(
                name,
                line,
                record.len().min(expected) + 1,
                format!(
                    "ragged row: expected {expected} columns (as on line {}), got {} split on '{shown}'",
                    rows.first().map_or(line, |r: &(u64, Vec<String>)| r.0),
                    record.len()
                ),
            ));
        }
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    if rows.is_empty() {
        return Err(data_error(name, 0, 0, "the file has no data rows (it is empty)"));
    }
    Ok(rows)
}

/// Decides from the rows whether the first one is a header.
pub(crate) type HeaderRule<'a> = dyn Fn(&[(u64, Vec<String>)]) -> Result<bool> + 'a;

impl Table {
    /// Reads `bytes` into rows, the first one a header where `header_rule` says so.
    pub(crate) fn read(bytes: &[u8], name: &str, options: &CsvOptions, header_rule: &HeaderRule) -> Result<Table> {
        let plain = decompressed(bytes, name)?;
        let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(&plain));
        let mut rows = read_rows(&plain, name, delimiter)?;
        let has_header = header_rule(&rows)?;
        let (header_line, raw_header) = match has_header {
            true => {
                let (line, cells) = rows.remove(0);
                (line, Some(cells))
            }
            false => (0, None),
        };
        if rows.is_empty() {
            return Err(data_error(
                name,
                header_line,
                0,
                "the file has a header but no data rows",
            ));
        }
        let width = rows[0].1.len();
        Ok(Table {
            original: (0..width).collect(),
            name: name.to_string(),
            header: raw_header.as_deref().map(unique_names),
            raw_header,
            header_line,
            rows,
            notes: Vec::new(),
        })
    }

    pub(crate) fn width(&self) -> usize {
        self.rows[0].1.len()
    }

    /// A column's name for messages: its header name, else its 1-based number.
    pub(crate) fn file_column(&self, j: usize) -> usize {
        self.original.get(j).map_or(j, |&o| o) + 1
    }

    pub(crate) fn column_name(&self, j: usize) -> String {
        match &self.header {
            Some(names) if !names[j].is_empty() => format!("column {} ({})", self.file_column(j), shown(&names[j])),
            _ => format!("column {}", self.file_column(j)),
        }
    }

    /// Drops the columns whose every data cell is empty (a trailing delimiter, an empty
    /// spreadsheet column), each with a note.
    pub(crate) fn drop_empty_columns(&mut self) {
        let empty: Vec<usize> = (0..self.width())
            .filter(|&j| self.rows.iter().all(|r| r.1[j].is_empty()))
            .collect();
        for &j in empty.iter().rev() {
            self.notes.push(format!(
                "{} is empty in every row (a trailing delimiter?): dropped",
                self.column_name(j)
            ));
            for row in &mut self.rows {
                row.1.remove(j);
            }
            for header in [&mut self.header, &mut self.raw_header].into_iter().flatten() {
                header.remove(j);
            }
            self.original.remove(j);
        }
    }

    /// [`Table::drop_empty_columns`] for a training file, whose label column must not be
    /// empty, and which needs a feature and a label: the label's column after the drop.
    fn drop_empty_features(&mut self, options: &CsvOptions) -> Result<usize> {
        let empty = |j: usize| self.rows.iter().all(|r| r.1[j].is_empty());
        let label = match options.label_column {
            // The last column, past trailing delimiters: empty columns without a name.
            LabelColumn::Last => {
                let unnamed = |j: usize| self.header.as_ref().is_none_or(|h| h[j].is_empty());
                (0..self.width())
                    .rev()
                    .find(|&j| !(empty(j) && unnamed(j)))
                    .unwrap_or_default()
            }
            _ => self.label_at(&options.label_column)?,
        };
        if empty(label) {
            return Err(data_error(
                &self.name,
                self.rows[0].0,
                self.file_column(label),
                format!("the label {} is empty in every row", self.column_name(label)),
            ));
        }
        let empty_before: Vec<bool> = (0..self.width()).map(empty).collect();
        self.drop_empty_columns();
        if self.width() < 2 {
            return Err(data_error(
                &self.name,
                self.rows[0].0,
                1,
                format!(
                    "need at least one feature and a label, found {} column(s) (another separator? set --delimiter)",
                    self.width()
                ),
            ));
        }
        Ok(label - (0..label).filter(|&j| empty_before[j]).count())
    }

    /// The 0-based label column.
    pub(crate) fn label_at(&self, label_column: &LabelColumn) -> Result<usize> {
        let width = self.width();
        match label_column {
            LabelColumn::Last => Ok(width - 1),
            LabelColumn::Index(i) if *i < width => Ok(*i),
            LabelColumn::Index(i) => Err(data_error(
                &self.name,
                self.rows[0].0,
                i + 1,
                format!(
                    "label column {} is past the {width} columns (columns are numbered from 1; set --label-column)",
                    i + 1
                ),
            )),
            LabelColumn::Name(wanted) => self.label_by_name(wanted),
        }
    }

    pub(crate) fn label_by_name(&self, wanted: &str) -> Result<usize> {
        let raw = self.raw_header.as_deref().unwrap_or_default();
        let matches: Vec<usize> = (0..raw.len()).filter(|&j| raw[j] == wanted).collect();
        match matches.as_slice() {
            [j] => Ok(*j),
            [] if self.raw_header.is_none() => Err(data_error(
                &self.name,
                self.rows[0].0,
                0,
                format!(
                    "no column named {}: the file has no header row (line {} holds data); give the label's column number with --label-column N, or pass --header",
                    shown(wanted),
                    self.rows[0].0
                ),
            )),
            [] => {
                let names: Vec<String> = raw.iter().take(20).map(|n| shown(n)).collect();
                Err(data_error(
                    &self.name,
                    self.header_line,
                    0,
                    format!(
                        "no column named {} in the header ({}{})",
                        shown(wanted),
                        names.join(", "),
                        if raw.len() > 20 { ", ..." } else { "" }
                    ),
                ))
            }
            several => Err(data_error(
                &self.name,
                self.header_line,
                several[1] + 1,
                format!(
                    "the header names {} twice (columns {}): the label is ambiguous; rename one, or give its position with --label-column",
                    shown(wanted),
                    several
                        .iter()
                        .map(|&j| self.file_column(j).to_string())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            )),
        }
    }

    /// The label column's cells as targets: (targets, outputs, class labels, class names).
    #[allow(clippy::type_complexity)]
    fn targets(
        &self,
        options: &CsvOptions,
        label_at: usize,
        cells: &[(u64, &str)],
    ) -> Result<(Vec<f32>, usize, Option<Vec<usize>>, Option<Vec<String>>)> {
        let column = self.column_name(label_at);
        Ok(match options.task {
            Task::Regression => (
                regression_targets(&self.name, &column, self.file_column(label_at) - 1, cells)?,
                1,
                None,
                None,
            ),
            Task::Classification => {
                let (labels, names) = class_labels(
                    &self.name,
                    &column,
                    self.file_column(label_at) - 1,
                    cells,
                    options.n_classes,
                )?;
                (
                    super::one_hot(&labels, names.len()),
                    names.len(),
                    Some(labels),
                    Some(names),
                )
            }
        })
    }

    fn into_dataset(self, options: &CsvOptions, label_at: usize) -> Result<Dataset> {
        let mut notes = self.notes.clone();
        let missing = |c: &str| super::columns::missing_under(options, c);
        let kept: Vec<&(u64, Vec<String>)> = self.rows.iter().filter(|r| !missing(&r.1[label_at])).collect();
        let dropped = self.rows.len() - kept.len();
        if dropped > 0 {
            notes.push(format!(
                "{dropped} row(s) with a missing label in {} dropped (first: line {})",
                self.column_name(label_at),
                self.rows.iter().find(|r| missing(&r.1[label_at])).map_or(0, |r| r.0)
            ));
        }
        if kept.is_empty() {
            return Err(data_error(
                &self.name,
                0,
                self.file_column(label_at),
                format!("every row's label in {} is missing", self.column_name(label_at)),
            ));
        }
        let kept_rows = Table {
            original: self.original.clone(),
            rows: kept.into_iter().cloned().collect(),
            notes: Vec::new(),
            header: self.header.clone(),
            raw_header: None,
            name: self.name.clone(),
            header_line: self.header_line,
        };
        let coded = super::columns::code_features(&kept_rows, label_at, options)?;
        notes.extend(coded.notes);
        let cells: Vec<(u64, &str)> = kept_rows.rows.iter().map(|(l, c)| (*l, c[label_at].as_str())).collect();
        let n_features = coded.positions.len();
        let features = coded.values;
        let schema = Schema {
            feature_names: self
                .header
                .as_ref()
                .map(|h| coded.positions.iter().map(|&j| h[j].clone()).collect()),
            label_name: self.header.as_ref().map(|h| h[label_at].clone()),
            label_position: Some(label_at),
            task: options.task,
            feature_kinds: coded.kinds,
            feature_columns: coded.positions,
            n_columns: Some(self.width()),
            na_values: options.na_values.clone(),
        };
        let (targets, n_outputs, labels, class_names) = self.targets(options, label_at, &cells)?;
        let data = Dataset {
            name: self.name.clone(),
            features,
            n_features,
            targets,
            n_outputs,
            labels,
            class_names,
            schema: Some(schema),
            notes,
        };
        data.validate()?;
        Ok(data)
    }
}
