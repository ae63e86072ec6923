//! What a fitted model reads: its feature columns by name and in order, and where its label
//! was. New rows are matched to it by header name (reordered, extra columns ignored, a
//! missing one refused), or, without a header, by the training file's layout.

use std::path::Path;

use super::columns::code_rows;
use super::csv_reader::{read_file, unique_names};
use super::table::{Table, is_number};
use super::{CsvOptions, LabelColumn, Task, data_error, shown};
use crate::error::{Error, Result};

/// The input side of a fitted model, as [`Dataset::from_csv_path`](crate::Dataset::from_csv_path)
/// learns it from the training file and [`Model::save`](crate::Model::save) keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The feature columns' names in the order the network takes them; None where the
    /// training file had no header.
    pub feature_names: Option<Vec<String>>,
    /// The label column's header name, if the file had a header.
    pub label_name: Option<String>,
    /// The label's 0-based position among the training file's columns (so a headerless file
    /// laid out like the training file can be predicted on), if known.
    pub label_position: Option<usize>,
    /// Classification or regression.
    pub task: Task,
    /// Each feature column's kind, in order (empty: all numeric, as files from before kinds
    /// were kept).
    pub feature_kinds: Vec<FeatureKind>,
    /// Each feature's 0-based column in the training file (empty: every column but the label).
    pub feature_columns: Vec<usize>,
    /// The training file's column count, if known (a headerless file of that width is read
    /// as the training file was).
    pub n_columns: Option<usize>,
    /// The cells the training file's reading took as missing besides empty ones (`--na-values`),
    /// None for the defaults: new rows are read the same way unless told otherwise.
    pub na_values: Option<Vec<String>>,
}

/// What a feature column holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FeatureKind {
    /// Numbers (missing cells allowed).
    Numeric,
    /// Text categories: the values seen in the training file, sorted; a row holds the index
    /// of its value.
    Categorical(Vec<String>),
}

/// Rows read for a model to predict on: row-major features in the model's column order.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRows {
    /// (rows, model features) row-major, as [`Model::predict`](crate::Model::predict) takes them.
    pub features: Vec<f32>,
    /// The number of rows.
    pub n_rows: usize,
    /// Columns of the file the model does not use (its label, ids, ...), by name or number.
    pub ignored: Vec<String>,
    /// What reading did that the user should know (columns dropped as empty, ...).
    pub notes: Vec<String>,
}

/// Reads rows to predict on from a CSV file (gzip or plain, `-` for standard input) for a
/// model with `n_features` inputs and `schema`: with a header, columns are matched by name
/// (reordered; extra columns, the label among them, ignored and listed in
/// [`FeatureRows::ignored`]; a missing feature column refused by name); without one, the file
/// must hold exactly the model's features, or the training file's layout with its label.
///
/// ```no_run
/// # fn demo(model: &wgpu_mlp::Model) -> wgpu_mlp::Result<()> {
/// let rows = wgpu_mlp::data::read_features("new_rows.csv", &Default::default(), &model.schema(), model.n_features())?;
/// let names = model.predict_class_names(&rows.features)?;
/// # Ok(()) }
/// ```
pub fn read_features(
    path: impl AsRef<Path>,
    options: &CsvOptions,
    schema: &Schema,
    n_features: usize,
) -> Result<FeatureRows> {
    let (name, bytes) = read_file(path.as_ref())?;
    features_from_bytes(&bytes, &name, options, schema, n_features)
}

/// [`read_features`] from bytes in memory; `name` appears in messages.
pub fn features_from_bytes(
    bytes: &[u8],
    name: &str,
    options: &CsvOptions,
    schema: &Schema,
    n_features: usize,
) -> Result<FeatureRows> {
    let names = schema.feature_names.as_deref();
    // Missing values as at fit, unless the caller says otherwise.
    let options = &match (&options.na_values, &schema.na_values) {
        (None, Some(markers)) => CsvOptions {
            na_values: Some(markers.clone()),
            ..options.clone()
        },
        _ => options.clone(),
    };
    let mut table = Table::read(bytes, name, options, &|rows| header_for_model(rows, options, schema))?;
    let columns = match (&table.header, names) {
        (Some(header), Some(names)) => by_name(&table, header, names, schema)?,
        _ => by_position(&mut table, options, schema, n_features)?,
    };
    let width = table.width();
    let ignored: Vec<String> = (0..width)
        .filter(|j| !columns.contains(j))
        .map(|j| match &table.header {
            Some(h) if !h[j].is_empty() => h[j].clone(),
            _ => format!("column {}", j + 1),
        })
        .collect();
    let kinds = match schema.feature_kinds.len() == columns.len() {
        true => schema.feature_kinds.clone(),
        false => vec![FeatureKind::Numeric; columns.len()],
    };
    let features = code_rows(&table, &columns, &kinds, options)?;
    let mut notes = table.notes.clone();
    for (k, &j) in columns.iter().enumerate() {
        let unseen = features
            .iter()
            .skip(k)
            .step_by(columns.len())
            .filter(|&&v| v == -1.0)
            .count();
        if unseen > 0 && matches!(kinds[k], FeatureKind::Categorical(_)) {
            notes.push(format!(
                "{}: {unseen} value(s) in categories not seen at fit, encoded as none of them (all zeros)",
                table.column_name(j)
            ));
        }
    }
    Ok(FeatureRows {
        features,
        n_rows: table.rows.len(),
        ignored,
        notes,
    })
}

/// Whether the first row is a header, for a model: `--header` / `--no-header` decide; else it
/// is one where it names a column of the model's, or holds no number at all.
fn header_for_model(rows: &[(u64, Vec<String>)], options: &CsvOptions, schema: &Schema) -> Result<bool> {
    if let Some(header) = options.header {
        return Ok(header);
    }
    let first = &rows[0].1;
    let ours = |c: &String| {
        schema.feature_names.as_ref().is_some_and(|n| n.contains(c)) || schema.label_name.as_ref() == Some(c)
    };
    Ok(first.iter().any(ours) || !first.iter().any(|c| is_number(c)))
}

/// The file's column of each model feature, by header name.
fn by_name(table: &Table, header: &[String], names: &[String], schema: &Schema) -> Result<Vec<usize>> {
    let missing: Vec<&String> = names.iter().filter(|n| !header.contains(n)).collect();
    if !missing.is_empty() {
        let listed: Vec<String> = missing.iter().take(10).map(|n| shown(n)).collect();
        let hint = match &schema.label_name {
            Some(label) if header.contains(label) => String::new(),
            _ if header.iter().all(|h| !names.contains(h)) => {
                " (no column name matches the model's: if the file has no header, pass --no-header)".into()
            }
            _ => String::new(),
        };
        return Err(data_error(
            &table.name,
            table.header_line,
            0,
            format!(
                "the model needs feature column(s) {}{} that the file lacks{hint}",
                listed.join(", "),
                if missing.len() > 10 {
                    format!(" and {} more", missing.len() - 10)
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok(names
        .iter()
        .map(|n| header.iter().position(|h| h == n).unwrap_or_default())
        .collect())
}

/// The file's columns in order, without a header to match: exactly the model's features, or
/// the training layout (the label at its position) one wider.
fn by_position(table: &mut Table, options: &CsvOptions, schema: &Schema, n_features: usize) -> Result<Vec<usize>> {
    if let Some(n) = schema.n_columns
        && table.width() == n
        && schema.feature_columns.len() == n_features
    {
        return Ok(schema.feature_columns.clone());
    }
    table.drop_empty_columns();
    let width = table.width();
    if let Some(n) = schema.n_columns
        && width == n
        && schema.feature_columns.len() == n_features
    {
        return Ok(schema.feature_columns.clone());
    }
    if width == n_features {
        return Ok((0..width).collect());
    }
    if width == n_features + 1 {
        let label = match (schema.label_position, &options.label_column) {
            (_, LabelColumn::Index(i)) => *i,
            (_, LabelColumn::Name(n)) => table.label_by_name(n)?,
            (Some(at), LabelColumn::Last) => at,
            (None, LabelColumn::Last) => width - 1,
        };
        if label < width {
            return Ok((0..width).filter(|&j| j != label).collect());
        }
    }
    let named = schema.feature_names.as_ref().map_or(String::new(), |_| {
        " (the model knows its columns by name: a header row would let them be matched)".into()
    });
    Err(data_error(
        &table.name,
        table.rows[0].0,
        0,
        format!(
            "expected {n_features} feature columns (or {} with the label, laid out as the training file), got {width}{named}; another separator? set --delimiter",
            n_features + 1
        ),
    ))
}

/// Rows given with their column names, reordered to the model's feature order: extra columns
/// are ignored, a missing one is an error naming it. `x` is row-major with `names.len()`
/// values per row.
pub(crate) fn select_columns(schema: &Schema, names: &[impl AsRef<str>], x: &[f32]) -> Result<Vec<f32>> {
    const OP: &str = "Model::predict_named";
    let wanted = schema.feature_names.as_ref().ok_or_else(|| {
        Error::invalid(
            OP,
            "the model",
            "a model fitted on a file with a header",
            "a model that knows no column names",
        )
    })?;
    let given: Vec<String> = unique_names(&names.iter().map(|n| n.as_ref().to_string()).collect::<Vec<_>>());
    if given.is_empty() || !x.len().is_multiple_of(given.len()) {
        return Err(Error::shape(
            OP,
            "x",
            format!("rows of {} named values", given.len()),
            format!("{} values", x.len()),
        ));
    }
    let columns = wanted
        .iter()
        .map(|w| {
            given
                .iter()
                .position(|g| g == w)
                .ok_or_else(|| Error::invalid(OP, "columns", format!("a column named {}", shown(w)), "none"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(x.chunks(given.len())
        .flat_map(|row| columns.iter().map(move |&j| row[j]))
        .collect())
}
