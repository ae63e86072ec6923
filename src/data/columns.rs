//! The feature columns of a table: which ones (`--features`, `--drop`; identifier-like text
//! columns dropped with a note), their kinds (numeric unless a cell is text that is not a
//! missing-value marker, as pandas infers; `--categorical` / `--numeric` override), and their
//! cells coded as numbers: values, category indices, NaN for missing.

use super::table::Table;

/// A cell that reads as a number, finite or not (an infinite one is then refused by name).
fn numeric_text(cell: &str) -> bool {
    cell.parse::<f64>().is_ok()
}
use super::{CsvOptions, FeatureKind, data_error, shown};
use crate::error::Result;

/// A text column with this share of distinct values (or more), over at least `ID_MIN_ROWS`
/// rows, names or identifies rows rather than grouping them.
const ID_SHARE: f64 = 0.9;
const ID_MIN_ROWS: usize = 20;

/// The coded feature columns of a table.
pub(crate) struct Features {
    /// Row-major, one value per kept column.
    pub values: Vec<f32>,
    /// The kept columns' 0-based positions in the file.
    pub positions: Vec<usize>,
    pub kinds: Vec<FeatureKind>,
    /// Per kept column, the number of missing cells.
    pub missing: Vec<usize>,
    pub notes: Vec<String>,
}

/// Whether `cell` is a missing value under `options` (its `na_values`, else the defaults).
pub(crate) fn missing_under(options: &CsvOptions, cell: &str) -> bool {
    match &options.na_values {
        Some(markers) => cell.is_empty() || markers.iter().any(|m| m == cell),
        None => super::table::is_missing(cell),
    }
}

/// The file column a `--features` / `--drop` / `--categorical` / `--numeric` entry names: a
/// header name, else a 1-based number.
fn resolve(table: &Table, option: &str, wanted: &str) -> Result<usize> {
    if let Some(header) = &table.header
        && let Some(j) = header.iter().position(|h| h == wanted)
    {
        return Ok(j);
    }
    match wanted.parse::<usize>() {
        Ok(n) if (1..=table.width()).contains(&n) => Ok(n - 1),
        _ => {
            let names =
                table
                    .header
                    .as_ref()
                    .map_or("the file has no header: give column numbers from 1".to_string(), |h| {
                        let listed: Vec<String> = h.iter().take(20).map(|n| shown(n)).collect();
                        format!("its columns: {}", listed.join(", "))
                    });
            Err(data_error(
                &table.name,
                table.header_line,
                0,
                format!("{option} {}: no such column ({names})", shown(wanted)),
            ))
        }
    }
}

fn resolve_all(table: &Table, option: &str, wanted: &[String]) -> Result<Vec<usize>> {
    wanted.iter().map(|w| resolve(table, option, w)).collect()
}

/// The kind a column takes: forced by an option, else numbers (every present cell one) or text.
fn infer_kind(table: &Table, j: usize, options: &CsvOptions, forced: (&[usize], &[usize])) -> Result<FeatureKind> {
    let present = || {
        table
            .rows
            .iter()
            .map(move |r| r.1[j].as_str())
            .filter(|c| !missing_under(options, c))
    };
    let (categorical, numeric) = forced;
    if !categorical.contains(&j) && (numeric.contains(&j) || present().all(numeric_text)) {
        return Ok(FeatureKind::Numeric);
    }
    let text: Vec<(u64, &str)> = table
        .rows
        .iter()
        .map(|r| (r.0, r.1[j].as_str()))
        .filter(|(_, c)| !missing_under(options, c) && !numeric_text(c))
        .collect();
    let count = present().count();
    let decimal_comma = |c: &str| {
        let (whole, fraction) = c.trim_start_matches('-').split_once(',').unwrap_or(("", ""));
        !whole.is_empty() && !fraction.is_empty() && (whole.to_owned() + fraction).bytes().all(|b| b.is_ascii_digit())
    };
    if count > 0 && !categorical.contains(&j) && present().all(decimal_comma) {
        return Err(data_error(
            &table.name,
            table.rows[0].0,
            table.file_column(j),
            format!(
                "{} holds numbers with decimal commas ({}): write them with decimal points (or read the column as categories with --categorical)",
                table.column_name(j),
                shown(present().next().unwrap_or_default())
            ),
        ));
    }
    if !categorical.contains(&j) && count >= 10 && text.len() <= (count / 20).max(1) {
        // A column of numbers with a stray word: a typo, an unlisted missing marker or a
        // header, not categories; reading it as categories would hide the mistake.
        let (line, cell) = text[0];
        return Err(data_error(
            &table.name,
            line,
            table.file_column(j),
            format!(
                "{} holds numbers but {} in {} of {count} rows: if it marks a missing value add it to --na-values; \
                 to read the column as categories use --categorical{}",
                table.column_name(j),
                shown(cell),
                text.len(),
                if table.header.is_none() && line == table.rows[0].0 {
                    "; if this line is a header, pass --header"
                } else {
                    ""
                }
            ),
        ));
    }
    let mut values: Vec<&str> = present().collect();
    values.sort_by(|a, b| compare(a, b));
    values.dedup();
    Ok(FeatureKind::Categorical(
        values.into_iter().map(str::to_string).collect(),
    ))
}

/// The feature columns of `table` (all but `label_at`, as the options choose), coded.
pub(crate) fn code_features(table: &Table, label_at: usize, options: &CsvOptions) -> Result<Features> {
    let mut chosen: Vec<usize> = match &options.features {
        Some(list) => resolve_all(table, "--features", list)?,
        None => (0..table.width()).collect(),
    };
    let mut seen = std::collections::HashSet::new();
    chosen.retain(|j| seen.insert(*j)); // a column listed twice is one feature
    let dropped = resolve_all(table, "--drop", &options.drop)?;
    chosen.retain(|&j| j != label_at && !dropped.contains(&j));
    let forced = (
        resolve_all(table, "--categorical", &options.categorical)?,
        resolve_all(table, "--numeric", &options.numeric)?,
    );
    check_column_options(table, label_at, options, &dropped, &forced)?;
    let mut features = Features {
        values: Vec::new(),
        positions: Vec::new(),
        kinds: Vec::new(),
        missing: Vec::new(),
        notes: Vec::new(),
    };
    let rows = table.rows.len();
    for j in chosen {
        let missing = table.rows.iter().filter(|r| missing_under(options, &r.1[j])).count();
        if missing == rows {
            features
                .notes
                .push(format!("{} has no values (all missing): dropped", table.column_name(j)));
            continue;
        }
        let kind = infer_kind(table, j, options, (&forced.0, &forced.1))?;
        if let FeatureKind::Categorical(values) = &kind {
            let present = rows - missing;
            if !forced.0.contains(&j) && present >= ID_MIN_ROWS && values.len() as f64 >= ID_SHARE * present as f64 {
                features.notes.push(format!(
                    "{} has a distinct text value in {} of {present} rows, like a name or an id: dropped (keep it with --categorical {})",
                    table.column_name(j),
                    values.len(),
                    table.header.as_ref().map_or((j + 1).to_string(), |h| h[j].clone())
                ));
                continue;
            }
        }
        features.positions.push(j);
        features.kinds.push(kind);
        features.missing.push(missing);
    }
    if features.positions.is_empty() {
        return Err(data_error(
            &table.name,
            0,
            0,
            "no feature columns are left to train on (see --features, --drop)",
        ));
    }
    features.values = code_rows(table, &features.positions, &features.kinds, options)?;
    Ok(features)
}

/// Refuses column options that name the label, or a column both `--categorical` and
/// `--numeric`.
fn check_column_options(
    table: &Table,
    label_at: usize,
    options: &CsvOptions,
    dropped: &[usize],
    forced: &(Vec<usize>, Vec<usize>),
) -> Result<()> {
    let named = [
        (
            "--features",
            resolve_all(table, "--features", options.features.as_deref().unwrap_or_default())?,
        ),
        ("--drop", dropped.to_vec()),
        ("--categorical", forced.0.clone()),
        ("--numeric", forced.1.clone()),
    ];
    if let Some((option, _)) = named.iter().find(|(_, columns)| columns.contains(&label_at)) {
        return Err(data_error(
            &table.name,
            table.header_line,
            table.file_column(label_at),
            format!(
                "{option} names the label, {}: list feature columns only",
                table.column_name(label_at)
            ),
        ));
    }
    if let Some(&both) = forced.0.iter().find(|j| forced.1.contains(j)) {
        return Err(data_error(
            &table.name,
            table.header_line,
            table.file_column(both),
            format!(
                "{} is given both --categorical and --numeric: choose one",
                table.column_name(both)
            ),
        ));
    }
    Ok(())
}

/// Each row's cells at `positions`, coded by `kinds`: numbers, category indices (-1 for a
/// category the kind does not list), NaN for missing.
pub(crate) fn code_rows(
    table: &Table,
    positions: &[usize],
    kinds: &[FeatureKind],
    options: &CsvOptions,
) -> Result<Vec<f32>> {
    let mut values = Vec::with_capacity(table.rows.len() * positions.len());
    for (line, cells) in &table.rows {
        for (&j, kind) in positions.iter().zip(kinds) {
            let cell = cells[j].as_str();
            values.push(match kind {
                _ if missing_under(options, cell) => f32::NAN,
                FeatureKind::Numeric => table.number(*line, j, cell)?,
                FeatureKind::Categorical(names) => category_code(names, cell),
            });
        }
    }
    Ok(values)
}

/// The order categories are kept in: numbers by value, then text.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then(a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    }
}

/// `cell`'s index among the sorted `names`: its text, else (for a number) a name of the same
/// value (`2.0` is the category `2`); -1 when it is none of them.
fn category_code(names: &[String], cell: &str) -> f32 {
    if let Ok(i) = names.binary_search_by(|n| compare(n, cell)) {
        return i as f32;
    }
    match cell.parse::<f64>() {
        Ok(value) => names
            .iter()
            .position(|n| n.parse::<f64>().is_ok_and(|v| v == value))
            .map_or(-1.0, |i| i as f32),
        Err(_) => -1.0,
    }
}

impl Table {
    /// The number in `row`'s cell `j`, or an error naming line, column and cell.
    pub(crate) fn number(&self, line: u64, j: usize, cell: &str) -> Result<f32> {
        if let Ok(value) = cell.parse::<f64>()
            && value.is_finite()
            && (value as f32).is_finite()
        {
            return Ok(value as f32);
        }
        let problem = if super::table::is_missing(cell) {
            format!(
                "a missing value ({}) in feature {}: this version reads complete numeric rows only; fill or drop it",
                shown(cell),
                self.column_name(j)
            )
        } else if cell.parse::<f64>().is_ok() {
            format!(
                "{} in {} is not a finite 32-bit number",
                shown(cell),
                self.column_name(j)
            )
        } else {
            let hint = if self.header.is_none() && line == self.rows[0].0 {
                " (if this line is a header, pass --header)"
            } else {
                " (features must be numbers: encode or drop text columns; is --label-column or --delimiter right?)"
            };
            format!(
                "expected a number in {}, got {}{hint}",
                self.column_name(j),
                shown(cell)
            )
        };
        Err(data_error(&self.name, line, self.file_column(j), problem))
    }
}
