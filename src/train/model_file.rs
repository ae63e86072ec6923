//! A model file's pipeline around the network: epochs and seed, task, class names, scaler and
//! input schema, read and checked against the network without a GPU. Anything inconsistent
//! (class names not one per output, a scaler or feature names of another width) is refused
//! with a message, at save and at load.

use std::path::Path;

use crate::checkpoint::{CheckpointFile, MlpParts, checkpoint_error};
use crate::data::{FeatureKind, Preprocessor, Scaler, Schema};
use crate::error::Result;
use crate::mlp::Mlp;

use super::{Model, Task};

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

/// The model's task entry, consistent with whether it has class names.
fn read_task(file: &CheckpointFile, path: &Path, has_classes: bool) -> Result<Task> {
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
    Ok(task)
}

/// The schema entries of a numbered file.
fn read_schema(file: &CheckpointFile, path: &Path, inputs: usize, has_classes: bool) -> Result<Schema> {
    let meta = &file.metadata;
    let task = read_task(file, path, has_classes)?;
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

/// The bytes of `file`, read back and checked as [`Model::load`] will, so that what
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

impl Model {
    /// Saves the fitted pipeline in one safetensors file, atomically: the network and its
    /// optimizer state ([`Mlp::save`]), the trainer's epoch count and seed (for [`resume`](super::resume)),
    /// the scaler, the class names and the input [`Schema`] when known, the format version,
    /// and a checksum over all of it that [`Model::load`] verifies.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let file = self.mlp.checkpoint_file(&self.metadata()?)?;
        crate::checkpoint::write_atomically(path, &checked_bytes(&file, path)?)
    }

    /// The model file's bytes, as [`Model::save`] writes them.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        crate::device::gpu::block_on("Model::to_bytes", self.to_bytes_async())
    }

    /// [`Model::to_bytes`] for async code: the way to save a model in a browser (offer the
    /// bytes as a download; [`Model::from_bytes`] and `wgpu-mlp predict --model` read them).
    pub async fn to_bytes_async(&self) -> Result<Vec<u8>> {
        let path = std::path::Path::new("model");
        checked_bytes(&self.mlp.checkpoint_file_async(&self.metadata()?).await?, path)
    }

    /// Loads a pipeline saved by [`Model::save`] onto `gpu`: the network with its batch size
    /// and optimizer state, its scaler, class names and input schema; it predicts what the
    /// saved model predicted, to the bit. A damaged, truncated, edited or inconsistent file
    /// is an [`Error::Checkpoint`](crate::error::Error::Checkpoint) that says what is wrong. Files from before the format was
    /// numbered (no checksum, no schema) load with their old meaning.
    ///
    /// ```no_run
    /// # fn demo(gpu: &wgpu_mlp::Gpu) -> wgpu_mlp::Result<()> {
    /// let model = wgpu_mlp::Model::load(gpu, "digits.safetensors")?;
    /// let classes = model.predict_class(&[0.0; 64])?; // one raw row, scaled by the saved scaler
    /// # Ok(()) }
    /// ```
    pub fn load(gpu: &crate::device::Gpu, path: impl AsRef<std::path::Path>) -> Result<Model> {
        let path = path.as_ref();
        Self::from_bytes(gpu, &crate::checkpoint::read_bytes(path)?, path)
    }

    /// [`Model::load`] from a file's bytes in memory; `path` names it in messages.
    pub fn from_bytes(gpu: &crate::device::Gpu, bytes: &[u8], path: impl AsRef<std::path::Path>) -> Result<Model> {
        let path = path.as_ref();
        let file = crate::checkpoint::CheckpointFile::decode(bytes, path)?;
        let parts = crate::checkpoint::MlpParts::read(&file, path)?;
        let pipeline = PipelineParts::read(&file, path, &parts)?;
        let mlp = Mlp::from_parts(gpu, parts, None)?;
        Ok(Model {
            mlp,
            history: Vec::new(),
            epochs_done: pipeline.epochs_done,
            seed: pipeline.seed,
            scaler: pipeline.scaler,
            class_names: pipeline.class_names,
            schema: pipeline.schema,
            preprocessor: pipeline.preprocessor,
            target_scaler: pipeline.target_scaler,
            info: file
                .metadata
                .iter()
                .filter(|(k, _)| k.starts_with("info."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// The pipeline's metadata entries and the notes (`info.` entries).
    fn metadata(&self) -> Result<Vec<(&str, String)>> {
        let mut entries = self.pipeline_metadata()?;
        entries.extend(self.info.iter().map(|(k, v)| (k.as_str(), v.clone())));
        Ok(entries)
    }

    /// Keeps a note with the model (`key` = `value`, e.g. the data it was fitted on and its
    /// scores), saved in its file as metadata `info.{key}`, shown by `wgpu-mlp info MODEL`.
    pub fn with_info(mut self, key: &str, value: impl Into<String>) -> Model {
        self.info.insert(format!("info.{key}"), value.into());
        self
    }

    /// The notes kept with the model ([`Model::with_info`]), by key.
    pub fn info(&self) -> impl Iterator<Item = (&str, &str)> {
        self.info
            .iter()
            .map(|(k, v)| (k.trim_start_matches("info."), v.as_str()))
    }

    /// The metadata entries of the pipeline around the network.
    fn pipeline_metadata(&self) -> Result<Vec<(&'static str, String)>> {
        let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
        let mut extra = vec![
            ("epoch", self.epochs_done.to_string()),
            ("seed", self.seed.to_string()),
            ("task", task_name(self.task()).to_string()),
        ];
        if let Some(names) = &self.class_names {
            extra.push(("class_names", json(names)));
        }
        if let Some(scaler) = &self.scaler {
            // f32's Display is the shortest text that reads back to the same bits.
            let join = |v: &[f32]| v.iter().map(f32::to_string).collect::<Vec<_>>().join(",");
            extra.push(("scaler_shift", join(scaler.shift())));
            extra.push(("scaler_scale", join(scaler.scale())));
        }
        if let Some(preprocessor) = &self.preprocessor {
            extra.push(("preprocessor", serde_json::to_string(preprocessor).unwrap_or_default()));
        }
        if let Some(target) = &self.target_scaler {
            let join = |v: &[f32]| v.iter().map(f32::to_string).collect::<Vec<_>>().join(",");
            extra.push(("target_shift", join(target.shift())));
            extra.push(("target_scale", join(target.scale())));
        }
        if let Some(schema) = &self.schema {
            if !schema.feature_kinds.is_empty() {
                extra.push((
                    "feature_kinds",
                    serde_json::to_string(&schema.feature_kinds).unwrap_or_default(),
                ));
            }
            if !schema.feature_columns.is_empty() {
                extra.push((
                    "feature_columns",
                    serde_json::to_string(&schema.feature_columns).unwrap_or_default(),
                ));
            }
            if let Some(n) = schema.n_columns {
                extra.push(("n_columns", n.to_string()));
            }
            if let Some(markers) = &schema.na_values {
                extra.push(("na_values", serde_json::to_string(markers).unwrap_or_default()));
            }
            if let Some(names) = &schema.feature_names {
                extra.push(("feature_names", json(names)));
            }
            if let Some(label) = &schema.label_name {
                extra.push(("label_name", label.clone()));
            }
            if let Some(at) = schema.label_position {
                extra.push(("label_position", at.to_string()));
            }
        }
        Ok(extra)
    }
}

fn task_name(task: Task) -> &'static str {
    match task {
        Task::Classification => "classification",
        Task::Regression => "regression",
    }
}
