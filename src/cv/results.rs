//! A search's results as data, in scikit-learn's `cv_results_` shape: one row per grid
//! point (grid order) with `param_<name>` columns, `params`, `split{k}_test_score`,
//! `mean_test_score`, `std_test_score`, `rank_test_score` and `mean_fit_time` (seconds), as
//! CSV (a spreadsheet, `pandas.read_csv`) or as JSON (a column name → list of values object,
//! as scikit-learn's dict of arrays; `pandas.DataFrame(json.load(f))`).
//!
//! Scores are accuracies for classification (higher is better) and losses for regression
//! (lower is better; scikit-learn would report their negatives). A failed grid point (a fold
//! model diverged or stalled; see [`CvReport::warnings`]) has its failed splits' scores and
//! its mean and std missing, as scikit-learn's `error_score=np.nan` leaves them: `NaN` in the
//! CSV (what pandas writes and reads as missing), `null` in the JSON (which has no NaN).

use std::fmt::Write as _;

use crate::cv::{CvReport, CvResult, Hyperparams};
use crate::error::{Error, Result};

/// A value as it appears in a cell: JSON number, string or list.
enum Cell {
    Number(f64),
    /// Written as f32 prints it (shortest round trip: 0.1, not 0.10000000149011612).
    Single(f32),
    Int(usize),
    /// A JSON object: raw in JSON, its text in CSV.
    Object(String),
    Sizes(Vec<usize>),
    /// A name: plain in CSV, a string in JSON.
    Name(String),
}

impl Cell {
    fn csv(&self) -> String {
        match self {
            Cell::Number(v) => format!("{v}"),
            Cell::Single(v) => format!("{v}"),
            Cell::Int(v) => v.to_string(),
            Cell::Object(s) => s.clone(),
            Cell::Sizes(sizes) => sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(";"),
            Cell::Name(name) => name.clone(),
        }
    }

    fn json(&self) -> String {
        match self {
            Cell::Number(v) if v.is_finite() => format!("{v}"),
            Cell::Number(_) => "null".into(),
            Cell::Single(v) if v.is_finite() => format!("{v}"),
            Cell::Single(_) => "null".into(),
            Cell::Int(v) => v.to_string(),
            Cell::Object(s) => s.clone(),
            Cell::Sizes(sizes) => format!(
                "[{}]",
                sizes.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            ),
            Cell::Name(name) => json_string(name),
        }
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The grid point as a JSON object (the `params` column).
fn params_object(p: &Hyperparams) -> String {
    format!(
        "{{\"optimizer\": {}, \"lr\": {}, \"momentum\": {}, \"weight_decay\": {}, \"hidden\": {}, \"epochs\": {}, \
         \"batch_size\": {}, \"activation\": {}, \"schedule\": {}}}",
        json_string(p.optimizer.name()),
        p.lr,
        p.momentum,
        p.weight_decay,
        Cell::Sizes(p.hidden.clone()).json(),
        p.epochs,
        p.batch_size,
        json_string(p.activation.name()),
        json_string(&p.schedule.label())
    )
}

/// (column, one cell per result) in scikit-learn's order.
fn columns(results: &[CvResult]) -> Vec<(String, Vec<Cell>)> {
    let column = |name: &str, cell: &dyn Fn(&CvResult) -> Cell| (name.to_string(), results.iter().map(cell).collect());
    let mut columns = vec![
        column("mean_fit_time", &|r| Cell::Number(r.mean_fit_time)),
        column("param_lr", &|r| Cell::Single(r.params.lr)),
        column("param_momentum", &|r| Cell::Single(r.params.momentum)),
        column("param_weight_decay", &|r| Cell::Single(r.params.weight_decay)),
        column("param_hidden", &|r| Cell::Sizes(r.params.hidden.clone())),
        column("param_epochs", &|r| Cell::Int(r.params.epochs)),
        column("param_batch_size", &|r| Cell::Int(r.params.batch_size)),
        column("param_activation", &|r| Cell::Name(r.params.activation.name().into())),
        column("param_optimizer", &|r| Cell::Name(r.params.optimizer.name().into())),
        column("param_schedule", &|r| Cell::Name(r.params.schedule.label())),
        column("params", &|r| Cell::Object(params_object(&r.params))),
    ];
    let splits = results.first().map_or(0, |r| r.fold_scores.len());
    for k in 0..splits {
        columns.push(column(&format!("split{k}_test_score"), &|r| {
            Cell::Single(r.fold_scores[k])
        }));
    }
    columns.push(column("mean_test_score", &|r| Cell::Single(r.mean)));
    columns.push(column("std_test_score", &|r| Cell::Single(r.std)));
    columns.push(column("rank_test_score", &|r| Cell::Int(r.rank)));
    columns
}

impl CvReport {
    /// [`CvReport::results`] as CSV in scikit-learn's `cv_results_` shape (see the module
    /// docs): a header, then one row per grid point.
    ///
    /// ```no_run
    /// # fn demo(report: &wgpu_mlp::cv::CvReport) -> wgpu_mlp::Result<()> {
    /// report.write_cv_results("cv_results.csv")?; // or .json
    /// print!("{}", report.cv_results_csv());
    /// # Ok(()) }
    /// ```
    pub fn cv_results_csv(&self) -> String {
        let columns = columns(&self.results);
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
        let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
        for i in 0..self.results.len() {
            rows.push(columns.iter().map(|(_, cells)| cells[i].csv()).collect());
        }
        for row in rows {
            // Writing into memory cannot fail.
            let _ = writer.write_record(&row);
        }
        writer
            .into_inner()
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .unwrap_or_default()
    }

    /// [`CvReport::results`] as a JSON object of columns (scikit-learn's dict of arrays).
    pub fn cv_results_json(&self) -> String {
        let fields: Vec<String> = columns(&self.results)
            .iter()
            .map(|(name, cells)| {
                let values: Vec<String> = cells.iter().map(Cell::json).collect();
                format!("  {}: [{}]", json_string(name), values.join(", "))
            })
            .collect();
        format!("{{\n{}\n}}\n", fields.join(",\n"))
    }

    /// Writes [`CvReport::cv_results_json`] to a path ending in `.json`, else
    /// [`CvReport::cv_results_csv`].
    pub fn write_cv_results(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let text = if json {
            self.cv_results_json()
        } else {
            self.cv_results_csv()
        };
        std::fs::write(path, text).map_err(|source| Error::Io {
            file: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
