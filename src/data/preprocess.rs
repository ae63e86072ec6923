//! scikit-learn's usual `ColumnTransformer` for tables, as one fitted object: numeric columns
//! imputed (median by default) and standardised, categorical columns imputed with their most
//! frequent value and one-hot encoded (categories unseen at fit become all zeros, as
//! `handle_unknown='ignore'`; `max_categories` groups the rare ones into one column), an
//! optional missing-value indicator per column that had gaps. Every statistic comes from the
//! rows it is fitted on.
//!
//! It reads the coded rows [`Dataset::from_csv_path`](crate::Dataset::from_csv_path) makes: a
//! numeric column's values, a categorical column's code (its index in
//! [`Schema::feature_kinds`]), NaN for a missing cell, and -1 for a category the schema does
//! not know.

use serde::{Deserialize, Serialize};

use super::{Dataset, FeatureKind};
use crate::error::{Error, Result};

/// How missing numeric values are filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Impute {
    /// The column's median on the fitted rows (the default).
    #[default]
    Median,
    /// The column's mean.
    Mean,
    /// The column's most frequent value.
    MostFrequent,
}

impl Impute {
    /// `median`, `mean` or `most_frequent` (scikit-learn's strategy names; `-` also taken).
    pub fn from_name(name: &str) -> Option<Impute> {
        match name.replace('-', "_").as_str() {
            "median" => Some(Impute::Median),
            "mean" => Some(Impute::Mean),
            "most_frequent" => Some(Impute::MostFrequent),
            _ => None,
        }
    }
}

/// Settings of a [`Preprocessor`] (scikit-learn's names).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PreprocessOptions {
    /// How numeric gaps are filled (categorical ones take the most frequent category).
    pub impute: Impute,
    /// Adds a 0/1 column per feature that had missing values in the fitted rows.
    pub add_indicator: bool,
    /// Keeps at most this many categories per column (the most frequent), the others sharing
    /// one "infrequent" column; None keeps all.
    pub max_categories: Option<usize>,
}

/// One input column's fitted step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ColumnStep {
    /// Imputed, then `(x − shift) · scale`.
    Numeric {
        /// The value a missing cell takes.
        fill: f32,
        /// The mean subtracted.
        shift: f32,
        /// 1 / the standard deviation (1 for a constant column).
        scale: f32,
        /// Whether a missing-indicator column follows.
        indicator: bool,
    },
    /// Imputed, then one-hot: a column per category in `slots` (codes), one for the codes in
    /// `infrequent` if any; any other code gives zeros.
    Categorical {
        /// The categories with a column of their own, in output order (codes).
        slots: Vec<u32>,
        /// Categories seen at fit but grouped into one column (`max_categories`).
        infrequent: Vec<u32>,
        /// The code a missing cell takes (the most frequent at fit).
        fill: u32,
        /// Whether a missing-indicator column follows.
        indicator: bool,
    },
}

/// A fitted column transformer: coded rows in, the network's inputs out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// One step per input column, in input order.
    pub columns: Vec<ColumnStep>,
}

/// The column's values on the fitted rows (NaN for missing).
fn column(data: &Dataset, j: usize, rows: &[usize]) -> Vec<f32> {
    rows.iter().map(|&r| data.features[r * data.n_features + j]).collect()
}

/// The most frequent value (the smallest among equals, as scikit-learn).
fn most_frequent(values: &[f32]) -> f32 {
    let mut sorted: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f32::total_cmp);
    let (mut best, mut best_count, mut i) = (f32::NAN, 0, 0);
    while i < sorted.len() {
        let run = sorted[i..].iter().take_while(|&&v| v == sorted[i]).count();
        if run > best_count {
            (best, best_count) = (sorted[i], run);
        }
        i += run;
    }
    best
}

fn numeric_step(values: &[f32], options: &PreprocessOptions) -> ColumnStep {
    let present: Vec<f64> = values.iter().filter(|v| !v.is_nan()).map(|&v| v as f64).collect();
    let fill = match (options.impute, present.is_empty()) {
        (_, true) => 0.0,
        (Impute::Mean, _) => (present.iter().sum::<f64>() / present.len() as f64) as f32,
        (Impute::MostFrequent, _) => most_frequent(values),
        (Impute::Median, _) => {
            let mut sorted = present.clone();
            sorted.sort_by(f64::total_cmp);
            let n = sorted.len();
            (if n % 2 == 1 {
                sorted[n / 2]
            } else {
                (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
            }) as f32
        }
    };
    // Mean and spread after imputation, in f64 (as `Scaler::fit`, so complete columns give its
    // very numbers).
    let filled: Vec<f64> = values
        .iter()
        .map(|&v| if v.is_nan() { fill } else { v } as f64)
        .collect();
    let mean = filled.iter().sum::<f64>() / filled.len().max(1) as f64;
    let var = filled.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / filled.len().max(1) as f64;
    let std = var.sqrt();
    ColumnStep::Numeric {
        fill,
        shift: mean as f32,
        scale: if std > 0.0 { (1.0 / std) as f32 } else { 1.0 },
        indicator: options.add_indicator && present.len() < values.len(),
    }
}

fn categorical_step(values: &[f32], options: &PreprocessOptions) -> ColumnStep {
    let mut counts: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for v in values.iter().filter(|v| **v >= 0.0) {
        *counts.entry(*v as u32).or_default() += 1;
    }
    let fill = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map_or(0, |(&c, _)| c);
    let mut slots: Vec<u32> = counts.keys().copied().collect();
    let mut infrequent = Vec::new();
    if let Some(most) = options.max_categories.filter(|&m| m >= 1 && slots.len() > m) {
        // The most frequent `most - 1` keep their columns; the rest share the last one.
        let mut by_count: Vec<(u32, usize)> = counts.iter().map(|(&c, &n)| (c, n)).collect();
        by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let keep = most.saturating_sub(1);
        let mut kept: Vec<u32> = by_count[..keep].iter().map(|&(c, _)| c).collect();
        kept.sort();
        infrequent = by_count[keep..].iter().map(|&(c, _)| c).collect();
        infrequent.sort();
        slots = kept;
    }
    ColumnStep::Categorical {
        slots,
        infrequent,
        fill,
        indicator: options.add_indicator && values.iter().any(|v| v.is_nan()),
    }
}

impl ColumnStep {
    /// The output columns this step writes.
    pub fn width(&self) -> usize {
        match self {
            ColumnStep::Numeric { indicator, .. } => 1 + *indicator as usize,
            ColumnStep::Categorical {
                slots,
                infrequent,
                indicator,
                ..
            } => slots.len() + !infrequent.is_empty() as usize + *indicator as usize,
        }
    }

    fn write(&self, value: f32, out: &mut Vec<f32>) {
        let missing = value.is_nan();
        match self {
            ColumnStep::Numeric {
                fill,
                shift,
                scale,
                indicator,
            } => {
                out.push(((if missing { *fill } else { value }) - shift) * scale);
                if *indicator {
                    out.push(missing as u8 as f32);
                }
            }
            ColumnStep::Categorical {
                slots,
                infrequent,
                fill,
                indicator,
            } => {
                let code = if missing {
                    Some(*fill)
                } else {
                    (value >= 0.0).then_some(value as u32)
                };
                out.extend(slots.iter().map(|&s| (Some(s) == code) as u8 as f32));
                if !infrequent.is_empty() {
                    out.push(code.is_some_and(|c| infrequent.binary_search(&c).is_ok()) as u8 as f32);
                }
                if *indicator {
                    out.push(missing as u8 as f32);
                }
            }
        }
    }
}

impl Preprocessor {
    /// Fits on the rows `rows` of `data` (and nothing else): each column's kind from
    /// `data.schema` (all numeric without one).
    pub fn fit(data: &Dataset, rows: &[usize], options: &PreprocessOptions) -> Result<Preprocessor> {
        if rows.is_empty() {
            return Err(Error::invalid("Preprocessor::fit", "rows", "at least one row", 0));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= data.len()) {
            return Err(Error::invalid(
                "Preprocessor::fit",
                "row",
                format!("< {}", data.len()),
                bad,
            ));
        }
        let kinds = data.feature_kinds();
        let columns = (0..data.n_features)
            .map(|j| {
                let values = column(data, j, rows);
                match &kinds[j] {
                    FeatureKind::Numeric => numeric_step(&values, options),
                    FeatureKind::Categorical(_) => categorical_step(&values, options),
                }
            })
            .collect();
        Ok(Preprocessor { columns })
    }

    /// [`Preprocessor::fit`] on `rows` with the column layout of `layout` (which categories
    /// have a column, which are grouped, which columns have an indicator): the fills, means
    /// and spreads are those of `rows`. Cross-validation fits each fold so, with the layout
    /// of all training rows, so that every fold's network has the same inputs; the layout
    /// sees no label.
    pub fn fit_with_layout(
        data: &Dataset,
        rows: &[usize],
        options: &PreprocessOptions,
        layout: &Preprocessor,
    ) -> Result<Preprocessor> {
        let own = Preprocessor::fit(data, rows, options)?;
        if layout.columns.len() != own.columns.len() {
            return Err(Error::shape(
                "Preprocessor::fit_with_layout",
                "layout",
                own.columns.len(),
                layout.columns.len(),
            ));
        }
        let columns = own
            .columns
            .into_iter()
            .zip(&layout.columns)
            .map(|(step, shape)| match (step, shape) {
                (ColumnStep::Numeric { fill, shift, scale, .. }, ColumnStep::Numeric { indicator, .. }) => {
                    ColumnStep::Numeric {
                        fill,
                        shift,
                        scale,
                        indicator: *indicator,
                    }
                }
                (
                    ColumnStep::Categorical { fill, .. },
                    ColumnStep::Categorical {
                        slots,
                        infrequent,
                        indicator,
                        ..
                    },
                ) => ColumnStep::Categorical {
                    slots: slots.clone(),
                    infrequent: infrequent.clone(),
                    fill,
                    indicator: *indicator,
                },
                (step, _) => step,
            })
            .collect();
        Ok(Preprocessor { columns })
    }

    /// Input columns it takes.
    pub fn n_inputs(&self) -> usize {
        self.columns.len()
    }

    /// Columns it gives (the network's inputs).
    pub fn n_outputs(&self) -> usize {
        self.columns.iter().map(ColumnStep::width).sum()
    }

    /// Coded rows (row-major, [`Preprocessor::n_inputs`] values each) to the network's inputs.
    pub fn transform_rows(&self, x: &[f32]) -> Result<Vec<f32>> {
        let d = self.n_inputs();
        if d == 0 || !x.len().is_multiple_of(d) {
            return Err(Error::shape(
                "Preprocessor::transform_rows",
                "x",
                format!("rows of {d} values"),
                format!("{} values", x.len()),
            ));
        }
        if let Some(i) = x.iter().position(|v| v.is_infinite()) {
            return Err(Error::invalid(
                "Preprocessor::transform_rows",
                format!("x[{i}]"),
                "a number or NaN (missing)",
                x[i],
            ));
        }
        let mut out = Vec::with_capacity(x.len() / d * self.n_outputs());
        for row in x.chunks(d) {
            for (step, &value) in self.columns.iter().zip(row) {
                step.write(value, &mut out);
            }
        }
        Ok(out)
    }

    /// `data` transformed: the network's inputs, with the same targets.
    pub fn transform(&self, data: &Dataset) -> Result<Dataset> {
        if data.n_features != self.n_inputs() {
            return Err(Error::shape(
                "Preprocessor::transform",
                "features",
                self.n_inputs(),
                data.n_features,
            ));
        }
        Ok(Dataset {
            features: self.transform_rows(&data.features)?,
            n_features: self.n_outputs(),
            schema: None,
            ..data.clone()
        })
    }
}
