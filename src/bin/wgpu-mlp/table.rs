//! `fit`'s options for a table's columns (which ones, their kinds, missing values) and its
//! preprocessing, and the short table of the columns it used.

use clap::{Arg, ArgAction, ArgMatches};
use wgpu_mlp::data::{FeatureKind, Impute, PreprocessOptions};
use wgpu_mlp::{Dataset, data::CsvOptions};

fn names(text: &str) -> Result<Vec<String>, String> {
    Ok(text
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect())
}

fn list(name: &'static str, value: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name(value)
        .value_parser(names)
        .help(help)
}

/// The column and preprocessing options of `fit`.
pub fn args() -> [Arg; 7] {
    [
        list(
            "features",
            "A,B,...",
            "Train on these columns only (header names or numbers from 1)",
        ),
        list("drop", "A,B,...", "Leave these columns out"),
        list(
            "categorical",
            "A,B,...",
            "Read these columns as categories even where the values are numbers",
        ),
        list(
            "numeric",
            "A,B,...",
            "Read these columns as numbers (a text cell is then an error)",
        ),
        Arg::new("impute")
            .long("impute")
            .value_name("HOW")
            .value_parser(|t: &str| {
                Impute::from_name(t).ok_or_else(|| format!("median, mean or most-frequent, got {t:?}"))
            })
            .help(
                "How missing numbers are filled: median (default), mean or most-frequent (categories: most frequent)",
            ),
        Arg::new("add-indicator")
            .long("add-indicator")
            .action(ArgAction::SetTrue)
            .help("Add a 0/1 feature per column that had missing values"),
        Arg::new("max-categories")
            .long("max-categories")
            .value_name("N")
            .value_parser(clap::value_parser!(u32).range(1..))
            .help("Keep at most N categories per column, the rarest grouped into one (default: all)"),
    ]
}

/// The column options into the reader's options.
pub fn apply(args: &ArgMatches, csv: &mut CsvOptions) {
    let get = |name: &str| args.get_one::<Vec<String>>(name).cloned();
    csv.features = get("features");
    csv.drop = get("drop").unwrap_or_default();
    csv.categorical = get("categorical").unwrap_or_default();
    csv.numeric = get("numeric").unwrap_or_default();
}

/// The preprocessing options.
pub fn preprocess(args: &ArgMatches) -> PreprocessOptions {
    PreprocessOptions {
        impute: args.get_one::<Impute>("impute").copied().unwrap_or_default(),
        add_indicator: args.get_flag("add-indicator"),
        max_categories: args.get_one::<u32>("max-categories").map(|&n| n as usize),
    }
}

/// The columns used: name, kind (with its category count) and missing cells, then the label.
pub fn columns(data: &Dataset) -> String {
    let kinds = data.feature_kinds();
    let names: Vec<String> = match data.schema.as_ref().and_then(|s| s.feature_names.clone()) {
        Some(names) => names,
        None => {
            let positions = data
                .schema
                .as_ref()
                .map(|s| s.feature_columns.clone())
                .unwrap_or_default();
            (0..data.n_features)
                .map(|j| format!("column {}", positions.get(j).map_or(j, |p| *p) + 1))
                .collect()
        }
    };
    let mut lines = Vec::new();
    let numeric_only = kinds.iter().all(|k| *k == FeatureKind::Numeric);
    let missing: Vec<usize> = (0..data.n_features)
        .map(|j| {
            data.features
                .iter()
                .skip(j)
                .step_by(data.n_features)
                .filter(|v| v.is_nan())
                .count()
        })
        .collect();
    if numeric_only && missing.iter().all(|&m| m == 0) && data.n_features > 12 {
        lines.push(format!("features: {} numeric columns, none missing", data.n_features));
    } else {
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(6).clamp(6, 30);
        lines.push(format!("{:<width$}  {:<20}  missing", "column", "kind"));
        for ((name, kind), gaps) in names.iter().zip(&kinds).zip(&missing) {
            let kind = match kind {
                FeatureKind::Numeric => "numeric".to_string(),
                FeatureKind::Categorical(values) => format!("categorical ({})", values.len()),
            };
            let short: String = name.chars().take(30).collect();
            lines.push(format!("{short:<width$}  {kind:<20}  {gaps}"));
        }
    }
    if let Some(schema) = &data.schema {
        let at = schema
            .label_position
            .map_or(String::new(), |p| format!("column {}", p + 1));
        match &schema.label_name {
            Some(name) => lines.push(format!("label: {name:?} ({at})")),
            None => lines.push(format!("label: {at}")),
        }
    }
    lines.join("\n")
}
