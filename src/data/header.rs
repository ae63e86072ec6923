//! Which first row is a header: told (`--header` / `--no-header`), or on clear evidence only;
//! and header names made unique as pandas makes them.

use super::table::{is_missing, is_number};
use super::{data_error, shown};
use crate::error::Result;

/// Whether the first row is a header, from `header` (`--header` / `--no-header`) or, left
/// unset, from clear evidence only: no cell of it is a number, and either some column below
/// it holds only numbers under a text name, or (all-text tables) none of its values appears
/// again in its column while some column repeats values. Anything else is refused with a
/// request to say.
pub(crate) fn first_row_is_header(
    rows: &[(u64, Vec<String>)],
    name: &str,
    header: Option<bool>,
    label_named: bool,
) -> Result<bool> {
    let first = &rows[0].1;
    if first.len() < 2 {
        return Err(data_error(
            name,
            rows[0].0,
            1,
            "need at least one feature and a label, found one column (another separator? set --delimiter)",
        ));
    }
    if let Some(header) = header {
        return Ok(header);
    }
    if first.iter().any(|c| is_number(c)) {
        return Ok(false);
    }
    if label_named || rows.len() == 1 {
        return Ok(true);
    }
    let below = &rows[1..];
    let numeric_below = |j: usize| {
        let mut present = below
            .iter()
            .map(|r| r.1[j].as_str())
            .filter(|c| !is_missing(c))
            .peekable();
        present.peek().is_some() && present.all(is_number)
    };
    let named = |j: usize| !is_missing(&first[j]);
    if (0..first.len()).any(|j| named(j) && numeric_below(j)) {
        return Ok(true);
    }
    let novel = (0..first.len()).all(|j| !named(j) || below.iter().all(|r| r.1[j] != first[j]));
    let repeats = (0..first.len()).any(|j| {
        let mut seen = std::collections::HashSet::new();
        below.iter().any(|r| !seen.insert(r.1[j].as_str()))
    });
    if novel && repeats {
        return Ok(true);
    }
    Err(data_error(
        name,
        rows[0].0,
        0,
        format!(
            "cannot tell whether line {} ({}) is a header or data: pass --header or --no-header",
            rows[0].0,
            shown(&first.join(","))
        ),
    ))
}

/// Names a header uses twice made unique as pandas does (`x`, `x.1`, `x.2`).
pub(crate) fn unique_names(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let mut candidate = name.clone();
        let mut k = 1;
        while out.contains(&candidate) {
            candidate = format!("{name}.{k}");
            k += 1;
        }
        out.push(candidate);
    }
    out
}
