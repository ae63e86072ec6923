//! A model file's pipeline around the network: epochs and seed, task, class names, scaler and
//! input schema, read and checked against the network without a GPU. Anything inconsistent
//! (class names not one per output, a scaler or feature names of another width) is refused
//! with a message, at save and at load.

use std::path::Path;

use crate::checkpoint::{CheckpointFile, MlpParts, checkpoint_error};
use crate::data::{FeatureKind, Preprocessor, Scaler, Schema, Task};
use crate::error::Result;

/// Joined class names in files from before the format was numbered.
const OLD_CLASS_NAME_SEPARATOR: &str = "\u{1f}";

/// The pipeline entries of a model file.
pub(crate) struct PipelineParts {
    pub epochs_done: usize,
    pub seed: u64,
    pub scaler: Option<Scaler>,
    pub class_names: Option<Vec<String>>,
    pub schema: Option<Schema>,
    pub preprocessor: Option<Preprocessor>,
    pub target_scaler: Option<Scaler>,
}

impl PipelineParts {
    /// Reads and checks the pipeline entries of `file` against its network `parts`.
    pub(crate) fn read(file: &CheckpointFile, path: &Path, parts: &MlpParts) -> Result<PipelineParts> {
        let meta = &file.metadata;
        let bad = |what: &str| checkpoint_error(path, format!("{what} is not readable: the file is damaged"));
        let number =
            |key: &str| -> Result<u64> { meta.get(key).map_or(Ok(0), |text| text.parse().map_err(|_| bad(key))) };
        let floats = |key: &str| -> Result<Option<Vec<f32>>> {
            meta.get(key)
                .map(|text| text.split(',').map(|v| v.parse().map_err(|_| bad(key))).collect())
                .transpose()
        };
        let list = |key: &str| -> Result<Option<Vec<String>>> {
            meta.get(key)
                .map(|text| match file.versioned() {
                    true => serde_json::from_str::<Vec<String>>(text).map_err(|_| bad(key)),
                    false => Ok(text.split(OLD_CLASS_NAME_SEPARATOR).map(str::to_string).collect()),
                })
                .transpose()
        };
        let (inputs, outputs) = (parts.sizes[0], parts.sizes[parts.sizes.len() - 1]);
        let scaler = match (floats("scaler_shift")?, floats("scaler_scale")?) {
            (Some(shift), Some(scale)) => {
                if shift.len() != inputs || scale.len() != inputs {
                    return Err(checkpoint_error(
                        path,
                        format!("the scaler has {} values for a network of {inputs} inputs", shift.len()),
                    ));
                }
                Some(Scaler::from_parts(shift, scale).map_err(|e| checkpoint_error(path, e.to_string()))?)
            }
            (None, None) => None,
            _ => return Err(bad("the scaler (half of it is missing)")),
        };
        let class_names = list("class_names")?;
        check_class_names(path, class_names.as_deref(), outputs)?;
        let preprocessor = read_preprocessor(file, path, inputs)?;
        let columns = preprocessor.as_ref().map_or(inputs, Preprocessor::n_inputs);
        let schema = match file.versioned() {
            true => Some(read_schema(file, path, columns, class_names.is_some())?),
            false => None,
        };
        let target_scaler = match (floats("target_shift")?, floats("target_scale")?) {
            (Some(shift), Some(scale)) if shift.len() == outputs && scale.iter().all(|&s| s != 0.0) => {
                Some(Scaler::from_parts(shift, scale).map_err(|e| checkpoint_error(path, e.to_string()))?)
            }
            (None, None) => None,
            _ => return Err(bad("the target scaling")),
        };
        if let (Some(p), Some(schema)) = (&preprocessor, &schema)
            && !schema.feature_kinds.is_empty()
        {
            check_steps_fit_kinds(path, p, &schema.feature_kinds)?;
        }
        if preprocessor.is_some() && scaler.is_some() {
            return Err(checkpoint_error(
                path,
                "both a scaler and a preprocessor: the file is inconsistent",
            ));
        }
        Ok(PipelineParts {
            preprocessor,
            target_scaler,
            epochs_done: number("epoch")? as usize,
            seed: number("seed")?,
            scaler,
            class_names,
            schema,
        })
    }
}

/// The schema entries of a numbered file.
fn read_schema(file: &CheckpointFile, path: &Path, inputs: usize, has_classes: bool) -> Result<Schema> {
    let meta = &file.metadata;
    let task = match meta.get("task").map(String::as_str) {
        Some("classification") => Task::Classification,
        Some("regression") => Task::Regression,
        other => {
            return Err(checkpoint_error(
                path,
                format!(
                    "task {:?} is not classification or regression",
                    other.unwrap_or("(missing)")
                ),
            ));
        }
    };
    if task == Task::Regression && has_classes {
        return Err(checkpoint_error(
            path,
            "a regression model with class names: the file is inconsistent",
        ));
    }
    let feature_names = meta
        .get("feature_names")
        .map(|text| serde_json::from_str::<Vec<String>>(text))
        .transpose()
        .map_err(|_| checkpoint_error(path, "feature_names is not readable: the file is damaged"))?;
    if let Some(names) = &feature_names
        && names.len() != inputs
    {
        return Err(checkpoint_error(
            path,
            format!(
                "{} feature names for a network of {inputs} inputs: the file is inconsistent",
                names.len()
            ),
        ));
    }
    let bad = |key: &str| checkpoint_error(path, format!("{key} is not readable: the file is damaged"));
    let feature_kinds: Vec<FeatureKind> = json_entry(file, path, "feature_kinds")?.unwrap_or_default();
    let feature_columns: Vec<usize> = json_entry(file, path, "feature_columns")?.unwrap_or_default();
    let n_columns = match meta.get("n_columns") {
        Some(text) => Some(text.parse::<usize>().map_err(|_| bad("n_columns"))?),
        None => None,
    };
    if let Some(names) = &feature_names {
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = names.iter().find(|n| !seen.insert(n.as_str())) {
            return Err(checkpoint_error(
                path,
                format!("the feature name {twice:?} is listed twice: the file is inconsistent"),
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    if feature_columns.iter().any(|c| !seen.insert(*c)) {
        return Err(checkpoint_error(
            path,
            "a training-file column is listed twice: the file is inconsistent",
        ));
    }
    let width_ok = |len: usize| len == 0 || len == inputs;
    if !width_ok(feature_kinds.len())
        || !width_ok(feature_columns.len())
        || feature_columns.iter().any(|&c| n_columns.is_none_or(|n| c >= n))
    {
        return Err(checkpoint_error(
            path,
            "the feature columns do not fit the model's inputs: the file is inconsistent",
        ));
    }
    let label_position = meta
        .get("label_position")
        .map(|text| {
            text.parse::<usize>()
                .ok()
                .filter(|&at| at < n_columns.unwrap_or(inputs + 1))
        })
        .map(|at| at.ok_or_else(|| checkpoint_error(path, "label_position is not a column of the training file")))
        .transpose()?;
    Ok(Schema {
        feature_names,
        label_name: meta.get("label_name").cloned(),
        label_position,
        task,
        feature_kinds,
        feature_columns,
        n_columns,
        na_values: json_entry(file, path, "na_values")?,
    })
}

/// Class names, where given, one per output.
fn check_class_names(path: &Path, names: Option<&[String]>, outputs: usize) -> Result<()> {
    match names {
        Some(names) if names.len() != outputs => Err(checkpoint_error(
            path,
            format!(
                "{} class names for a network of {outputs} outputs: the file is inconsistent; fit the model again",
                names.len()
            ),
        )),
        _ => Ok(()),
    }
}

/// The bytes of `file`, read back and checked as [`crate::Model::load`] will, so that what
/// is written always loads.
pub(crate) fn checked_bytes(file: &CheckpointFile, path: &Path) -> Result<Vec<u8>> {
    let bytes = file.encode(path)?;
    let decoded = CheckpointFile::decode(&bytes, path)?;
    let parts = MlpParts::read(&decoded, path)?;
    PipelineParts::read(&decoded, path, &parts)?;
    Ok(bytes)
}

/// A metadata entry holding JSON, read as `T`.
pub(crate) fn json_entry<T: serde::de::DeserializeOwned>(
    file: &CheckpointFile,
    path: &Path,
    key: &str,
) -> Result<Option<T>> {
    file.metadata
        .get(key)
        .map(|text| serde_json::from_str(text))
        .transpose()
        .map_err(|_| checkpoint_error(path, format!("{key} is not readable: the file is damaged")))
}

/// The column transformer, checked against the network's inputs.
fn read_preprocessor(file: &CheckpointFile, path: &Path, inputs: usize) -> Result<Option<Preprocessor>> {
    let Some(preprocessor) = json_entry::<Preprocessor>(file, path, "preprocessor")? else {
        return Ok(None);
    };
    let finite = preprocessor.columns.iter().all(|step| match step {
        crate::data::ColumnStep::Numeric { fill, shift, scale, .. } => {
            [fill, shift, scale].iter().all(|v| v.is_finite())
        }
        crate::data::ColumnStep::Categorical { .. } => true,
    });
    if !finite || preprocessor.n_inputs() == 0 || preprocessor.n_outputs() != inputs {
        return Err(checkpoint_error(
            path,
            format!(
                "the preprocessor ({} columns in, {} out) does not fit the network's {inputs} inputs: the file is inconsistent",
                preprocessor.n_inputs(),
                preprocessor.n_outputs()
            ),
        ));
    }
    Ok(Some(preprocessor))
}

/// Each preprocessing step of the kind of its column, its categories among the column's.
fn check_steps_fit_kinds(path: &Path, preprocessor: &Preprocessor, kinds: &[FeatureKind]) -> Result<()> {
    for (j, (step, kind)) in preprocessor.columns.iter().zip(kinds).enumerate() {
        let fits = match (step, kind) {
            (crate::data::ColumnStep::Numeric { .. }, FeatureKind::Numeric) => true,
            (
                crate::data::ColumnStep::Categorical {
                    slots,
                    infrequent,
                    fill,
                    ..
                },
                FeatureKind::Categorical(values),
            ) => {
                let known = |c: &u32| (*c as usize) < values.len();
                slots.iter().chain(infrequent).all(known) && known(fill)
            }
            _ => false,
        };
        if !fits {
            return Err(checkpoint_error(
                path,
                format!(
                    "column {}'s preprocessing does not fit its kind or categories: the file is inconsistent",
                    j + 1
                ),
            ));
        }
    }
    Ok(())
}
