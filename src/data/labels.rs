//! Labels as read from a file: class names (any text or number, sorted) for classification,
//! finite numbers for regression. No label value is ever used as an index or a size, so none
//! can panic or allocate.

use std::collections::BTreeMap;

use super::{data_error, shown};
use crate::error::Result;

/// More distinct numeric labels than this, making up more than half the rows, look like a
/// real-valued target rather than classes.
const MANY_CLASSES: usize = 10;

/// Each row's class and the class names, in sorted order: numbers by value (`1` and `1.0` are
/// one class, named `1`), then text. With `n_classes` given the labels must be the integers
/// `0..n_classes`. `column` names the label column in messages, `at` is its 0-based index.
pub(crate) fn class_labels(
    file: &str,
    column: &str,
    at: usize,
    cells: &[(u64, &str)],
    n_classes: Option<usize>,
) -> Result<(Vec<usize>, Vec<String>)> {
    if let Some(n_classes) = n_classes {
        return fixed_classes(file, at, cells, n_classes);
    }
    // Whole numbers beyond f64's exact range stay distinct: classes by their exact value.
    if let Some(whole) = cells
        .iter()
        .map(|(_, c)| c.parse::<i128>().ok())
        .collect::<Option<Vec<i128>>>()
    {
        let mut names: Vec<i128> = whole.clone();
        names.sort();
        names.dedup();
        too_many_numbers(file, column, at, names.len(), whole.len())?;
        let labels = whole.iter().map(|v| names.partition_point(|n| n < v)).collect();
        let names: Vec<String> = names.iter().map(i128::to_string).collect();
        return at_least_two(file, column, at, cells.len(), labels, names);
    }
    let numbers: Option<Vec<f64>> = cells
        .iter()
        .map(|(_, c)| c.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    let (labels, names) = match numbers {
        Some(values) => numeric_classes(file, column, at, cells, &values)?,
        None => text_classes(cells),
    };
    at_least_two(file, column, at, cells.len(), labels, names)
}

/// Refuses numeric labels with so many distinct values that they look like a real-valued target.
fn too_many_numbers(file: &str, column: &str, at: usize, distinct: usize, rows: usize) -> Result<()> {
    if distinct > MANY_CLASSES && 2 * distinct > rows {
        return Err(data_error(
            file,
            0,
            at + 1,
            format!(
                "the label {column} has {distinct} distinct numbers in {rows} rows, which looks like a real-valued \
                 target: add --regression (or, if they are classes, write them as names)"
            ),
        ));
    }
    Ok(())
}

/// The classes, if there are two or more.
fn at_least_two(
    file: &str,
    column: &str,
    at: usize,
    rows: usize,
    labels: Vec<usize>,
    names: Vec<String>,
) -> Result<(Vec<usize>, Vec<String>)> {
    if names.len() < 2 {
        return Err(data_error(
            file,
            0,
            at + 1,
            format!(
                "the label {column} holds one class only ({}) in {rows} row(s): a classifier needs two or more \
                 (is --label-column right? for a real-valued target add --regression)",
                names.first().map_or_else(String::new, |n| shown(n)),
            ),
        ));
    }
    Ok((labels, names))
}

/// Labels that must be the integers `0..n_classes` (`CsvOptions::n_classes`).
fn fixed_classes(file: &str, at: usize, cells: &[(u64, &str)], n_classes: usize) -> Result<(Vec<usize>, Vec<String>)> {
    let labels = cells
        .iter()
        .map(|&(line, cell)| match cell.parse::<u64>() {
            Ok(v) if v < n_classes as u64 => Ok(v as usize),
            _ => Err(data_error(
                file,
                line,
                at + 1,
                format!("label {} is not a class number 0..{n_classes} (n_classes)", shown(cell)),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((labels, (0..n_classes).map(|c| c.to_string()).collect()))
}

/// Classes from numeric labels: whole numbers only (a fraction means a real-valued target),
/// not so many distinct ones that they look like one.
fn numeric_classes(
    file: &str,
    column: &str,
    at: usize,
    cells: &[(u64, &str)],
    values: &[f64],
) -> Result<(Vec<usize>, Vec<String>)> {
    if let Some(i) = values.iter().position(|v| v.fract() != 0.0) {
        return Err(data_error(
            file,
            cells[i].0,
            at + 1,
            format!(
                "class labels are names or whole numbers, got {} in the label {column}: for a real-valued target add --regression",
                shown(cells[i].1)
            ),
        ));
    }
    // Keyed by the value's bits (whole numbers: no NaN, and -0.0 made 0.0).
    let mut distinct: BTreeMap<i128, (f64, &str)> = BTreeMap::new();
    let key = |v: f64| if v.abs() < 1e30 { v as i128 } else { v.to_bits() as i128 };
    for (&v, &(_, cell)) in values.iter().zip(cells) {
        distinct.entry(key(v + 0.0)).or_insert((v, cell));
    }
    too_many_numbers(file, column, at, distinct.len(), values.len())?;
    let mut sorted: Vec<(f64, &str)> = distinct.into_values().collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let names: Vec<String> = sorted
        .iter()
        .map(|&(v, cell)| {
            if v.abs() < 1e15 {
                format!("{}", v as i64)
            } else {
                cell.to_string()
            }
        })
        .collect();
    let labels = values
        .iter()
        .map(|&v| sorted.partition_point(|&(s, _)| s < v))
        .collect();
    Ok((labels, names))
}

/// Classes from text labels, in text order (numbers among them by value first).
fn text_classes(cells: &[(u64, &str)]) -> (Vec<usize>, Vec<String>) {
    let mut names: Vec<&str> = cells.iter().map(|&(_, c)| c).collect();
    names.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then(a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        _ => a.cmp(b),
    });
    names.dedup();
    let index: std::collections::HashMap<&str, usize> = names.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let labels = cells.iter().map(|(_, c)| index[c]).collect();
    (labels, names.into_iter().map(str::to_string).collect())
}

/// Real-valued targets: every cell a finite number.
pub(crate) fn regression_targets(file: &str, column: &str, at: usize, cells: &[(u64, &str)]) -> Result<Vec<f32>> {
    cells
        .iter()
        .map(|&(line, cell)| match cell.parse::<f64>() {
            Ok(v) if v.is_finite() && (v as f32).is_finite() => Ok(v as f32),
            _ => Err(data_error(
                file,
                line,
                at + 1,
                format!(
                    "a regression target must be a finite number, got {} in the label {column} (classes? drop --regression)",
                    shown(cell)
                ),
            )),
        })
        .collect()
}
