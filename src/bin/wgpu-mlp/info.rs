//! `wgpu-mlp info`: the adapters, the one chosen, what it can do; `wgpu-mlp info MODEL`: what
//! a saved model reads and does (its columns and their preprocessing, classes, network,
//! scores).

use clap::{Arg, Command};
use wgpu_mlp::data::{ColumnStep, FeatureKind};
use wgpu_mlp::raw::{MatmulKernel, MatmulLayout};
use wgpu_mlp::{Gpu, Model};

use super::say;

pub fn command() -> Command {
    Command::new("info")
        .about("List the adapters, the one chosen and its limits; or, given a MODEL, what it reads and does")
        .arg(
            Arg::new("model")
                .value_name("MODEL")
                .help("A model saved by `wgpu-mlp fit`"),
        )
}

pub fn run(args: &clap::ArgMatches) -> super::Outcome {
    match args.get_one::<String>("model") {
        Some(path) => describe_model(path),
        None => describe_adapters(),
    }
}

fn describe_model(path: &str) -> super::Outcome {
    let gpu = Gpu::new()?;
    let model = Model::load(&gpu, path)?;
    let schema = model.schema();
    say!("model {path}: {:?}", schema.task);
    if let Some(names) = model.class_names() {
        say!("classes (output order): {}", names.join(", "));
    }
    let mlp = model.mlp();
    let (hidden, output) = mlp.activations();
    say!(
        "network: layers {:?}, hidden {}, output {}, loss {}",
        mlp.sizes(),
        hidden.name(),
        output.name(),
        mlp.loss_function().name()
    );
    let n = model.n_features();
    let names: Vec<String> = match &schema.feature_names {
        Some(names) => names.clone(),
        None => (0..n)
            .map(|j| format!("column {}", schema.feature_columns.get(j).map_or(j, |c| *c) + 1))
            .collect(),
    };
    say!(
        "input columns ({n}), matched by {}:",
        if schema.feature_names.is_some() {
            "header name"
        } else {
            "position"
        }
    );
    for (j, name) in names.iter().enumerate() {
        let kind = schema.feature_kinds.get(j).unwrap_or(&FeatureKind::Numeric);
        let step = model.preprocessor().and_then(|p| p.columns.get(j));
        say!("  {name}: {}", column_text(kind, step));
    }
    match (&schema.label_name, schema.label_position) {
        (Some(name), Some(at)) => say!("label: {name:?} (column {} of the training file)", at + 1),
        (None, Some(at)) => say!("label: column {} of the training file", at + 1),
        _ => {}
    }
    for (key, value) in model.info() {
        say!("{}: {value}", key.replace('_', " "));
    }
    Ok(())
}

/// A column's kind and what the model does to it.
fn column_text(kind: &FeatureKind, step: Option<&ColumnStep>) -> String {
    let indicator = |on: bool| if on { ", with a missing indicator" } else { "" };
    match (kind, step) {
        (
            _,
            Some(ColumnStep::Numeric {
                fill,
                shift,
                scale,
                indicator: i,
            }),
        ) => format!(
            "numeric; missing -> {fill}; standardised (mean {shift}, std {}){}",
            1.0 / scale,
            indicator(*i)
        ),
        (
            FeatureKind::Categorical(values),
            Some(ColumnStep::Categorical {
                slots,
                infrequent,
                fill,
                indicator: i,
            }),
        ) => {
            let name = |c: &u32| values.get(*c as usize).cloned().unwrap_or_else(|| format!("#{c}"));
            let shown: Vec<String> = slots.iter().take(12).map(name).collect();
            format!(
                "categorical, one-hot over {} categor{} ({}{}){}; missing -> {}; unseen -> all zeros{}",
                slots.len(),
                if slots.len() == 1 { "y" } else { "ies" },
                shown.join(", "),
                if slots.len() > 12 { ", ..." } else { "" },
                if infrequent.is_empty() {
                    String::new()
                } else {
                    format!(", {} rare ones grouped", infrequent.len())
                },
                name(fill),
                indicator(*i)
            )
        }
        (FeatureKind::Categorical(values), _) => format!("categorical ({} values)", values.len()),
        (FeatureKind::Numeric, _) => "numeric".into(),
    }
}

fn describe_adapters() -> super::Outcome {
    say!("wgpu-mlp {}", env!("CARGO_PKG_VERSION"));
    say!("adapters, best first (* the one used):");
    for (i, info) in Gpu::adapters()?.iter().enumerate() {
        say!(
            "{} {} ({:?}, {:?}), driver {} {}",
            if i == 0 { "*" } else { " " },
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            info.driver_info
        );
    }
    let gpu = Gpu::new()?;
    let limits = gpu.limits();
    const MIB: u64 = 1 << 20;
    say!(
        "largest tensor one kernel binds: {} MiB (storage binding {} MiB, buffer {} MiB)",
        gpu.max_binding_bytes() / MIB,
        limits.max_storage_buffer_binding_size / MIB,
        limits.max_buffer_size / MIB
    );
    say!(
        "workgroups per dimension: {}; invocations per workgroup: {}; workgroup memory: {} KiB",
        limits.max_compute_workgroups_per_dimension,
        limits.max_compute_invocations_per_workgroup,
        limits.max_compute_workgroup_storage_size / 1024
    );
    let features = gpu.features();
    say!(
        "subgroups: {}; timestamp queries: {}; pipeline cache: {}",
        features.contains(wgpu::Features::SUBGROUP),
        features.contains(wgpu::Features::TIMESTAMP_QUERY),
        gpu.pipeline_cache_file()
            .map_or("none".to_string(), |path| path.display().to_string())
    );
    let (m, k, n) = (256, 256, 256);
    let kernel = MatmulKernel::choose(&gpu, MatmulLayout::AB, m, k, n);
    say!("matmul kernel for a {m}×{k}·{k}×{n} product: {kernel:?}");
    Ok(())
}
