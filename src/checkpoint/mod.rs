//! Checkpoints in safetensors format: parameters, optimizer velocities and the step count,
//! with metadata (layer sizes, activations, optimizer hyperparameters, library version).
//! Written atomically (temporary file, fsync, rename), so a crash mid-write never destroys the
//! previous checkpoint; validated on load (names, shapes, dtype, metadata).
//!
//! ```no_run
//! use wgpu_mlp::{Gpu, Mlp, Sgd};
//! let gpu = Gpu::new()?;
//! let mut mlp = Mlp::builder(&[2, 8, 1]).build(&gpu, 4, Sgd::new(0.5).momentum(0.9))?;
//! mlp.steps(100)?;
//! mlp.save("xor.safetensors")?;
//! let resumed = Mlp::load(&gpu, "xor.safetensors", 4)?; // same parameters, velocities, step
//! # Ok::<(), wgpu_mlp::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

mod file;
pub(crate) use file::{CheckpointFile, write_atomically};

use crate::device::gpu::Gpu;
use crate::error::{Error, Result};
use crate::mlp::{LayerParams, Mlp, StepKernel};
use crate::ops::{Activation, Loss};
use crate::optim::Optimizer;

const FORMAT: &str = "wgpu-mlp checkpoint";

pub(crate) fn checkpoint_error(path: &Path, message: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn parse_activation(path: &Path, text: &str) -> Result<Activation> {
    Activation::from_name(text).ok_or_else(|| checkpoint_error(path, format!("unknown activation {text:?}")))
}

/// The step kernel and the loss a checkpoint names (files from before they were named:
/// `Auto` and MSE).
fn parse_kernel_and_loss(path: &Path, meta: &BTreeMap<String, String>) -> Result<(StepKernel, Loss)> {
    let step_kernel = match meta.get("step_kernel").map(String::as_str) {
        None | Some("Auto") => StepKernel::Auto,
        Some("General") => StepKernel::General,
        Some("SingleDispatch") => StepKernel::SingleDispatch,
        Some(other) => return Err(checkpoint_error(path, format!("unknown step_kernel {other:?}"))),
    };
    let loss = match meta.get("loss") {
        None => Loss::Mse,
        Some(name) => Loss::from_name(name).ok_or_else(|| checkpoint_error(path, format!("unknown loss {name:?}")))?,
    };
    Ok((step_kernel, loss))
}

fn second_moment_names(layer: usize) -> [String; 2] {
    [
        format!("layers.{layer}.weight.second_moment"),
        format!("layers.{layer}.bias.second_moment"),
    ]
}

fn grad_average_names(layer: usize) -> [String; 2] {
    [
        format!("layers.{layer}.weight.grad_average"),
        format!("layers.{layer}.bias.grad_average"),
    ]
}

fn names(layer: usize) -> [String; 4] {
    [
        format!("layers.{layer}.weight"),
        format!("layers.{layer}.bias"),
        format!("layers.{layer}.weight.velocity"),
        format!("layers.{layer}.bias.velocity"),
    ]
}

/// Everything a checkpoint says about a network, read and checked without a GPU.
pub(crate) struct MlpParts {
    pub sizes: Vec<usize>,
    pub optimizer: Optimizer,
    pub batch: usize,
    pub step: u64,
    pub optimizer_steps: Option<u64>,
    pub step_kernel: StepKernel,
    pub loss: Loss,
    pub hidden: Activation,
    pub output: Activation,
    pub layers: [Vec<LayerParams>; 4],
}

/// Parameters larger than this are not a trained network's: a damaged or hand-made file.
const LARGEST_PARAMETER: f32 = 1e15;

impl MlpParts {
    /// Reads the network's description from a decoded file.
    pub(crate) fn read(file: &CheckpointFile, path: &Path) -> Result<MlpParts> {
        let format = file.get(path, "format")?;
        if format != FORMAT {
            return Err(checkpoint_error(
                path,
                format!("format is {format:?}, expected {FORMAT:?}"),
            ));
        }
        let number = |key: &str| -> Result<f32> {
            let text = file.get(path, key)?;
            text.parse()
                .map_err(|_| checkpoint_error(path, format!("{key} = {text:?} is not a number")))
        };
        let count = |key: &str| -> Result<u64> {
            let text = file.get(path, key)?;
            text.parse()
                .map_err(|_| checkpoint_error(path, format!("{key} = {text:?} is not a count")))
        };
        let sizes = file
            .get(path, "sizes")?
            .split(',')
            .map(|s| s.parse::<usize>().ok().filter(|&n| n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                checkpoint_error(
                    path,
                    format!(
                        "the layer sizes {:?} are not whole numbers ≥ 1: the file is damaged",
                        file.metadata.get("sizes").map_or("(missing)", String::as_str)
                    ),
                )
            })?;
        if sizes.len() < 2 {
            return Err(checkpoint_error(
                path,
                format!("sizes {sizes:?}: need at least two layers"),
            ));
        }
        let optimizer = Optimizer::from_metadata(&file.metadata, &number, &|message| checkpoint_error(path, message))?;
        // Files from before the batch size was saved: the trainer's default.
        let batch = match file.metadata.get("batch_size") {
            Some(_) => count("batch_size")? as usize,
            None => 32,
        };
        if batch == 0 {
            return Err(checkpoint_error(path, "batch_size is 0"));
        }
        let adam = optimizer.needs_second_moment();
        let layers = read_layers(path, file, &sizes, [adam, optimizer.needs_grad_average()])?;
        let (step_kernel, loss) = parse_kernel_and_loss(path, &file.metadata)?;
        Ok(MlpParts {
            optimizer_steps: if adam { Some(count("optimizer_steps")?) } else { None },
            step: count("step")?,
            hidden: parse_activation(path, file.get(path, "hidden_activation")?)?,
            output: parse_activation(path, file.get(path, "output_activation")?)?,
            sizes,
            optimizer,
            batch,
            step_kernel,
            loss,
            layers,
        })
    }
}

impl Mlp {
    /// Writes parameters, velocities, step count and metadata to `path` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with(path.as_ref(), &[])
    }

    /// The checkpoint of this network with extra metadata entries (the trainer's epoch and
    /// seed, a model's pipeline).
    pub(crate) fn checkpoint_file(&self, extra: &[(&str, String)]) -> Result<CheckpointFile> {
        crate::device::gpu::block_on("saving a checkpoint", self.checkpoint_file_async(extra))
    }

    /// [`Mlp::checkpoint_file`] for async code (a model saved in a browser).
    pub(crate) async fn checkpoint_file_async(&self, extra: &[(&str, String)]) -> Result<CheckpointFile> {
        let params = self.parameters_async().await?;
        let velocities = self.velocities_async().await?;
        let optimizer = self.graph().optimizer();
        let (hidden, output) = self.activations();
        let sizes: Vec<String> = self.sizes().iter().map(usize::to_string).collect();
        let mut metadata: BTreeMap<String, String> = [
            ("format", FORMAT.to_string()),
            ("library_version", env!("CARGO_PKG_VERSION").to_string()),
            ("sizes", sizes.join(",")),
            ("hidden_activation", hidden.name().to_string()),
            ("output_activation", output.name().to_string()),
            ("loss", self.loss_function().name().to_string()),
            ("step", self.steps_taken().to_string()),
            ("batch_size", self.batch_size().to_string()),
            ("step_kernel", format!("{:?}", self.step_kernel())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        metadata.extend(optimizer.metadata());
        if optimizer.needs_second_moment() {
            let steps = self.graph().optimizer_steps_async().await?;
            metadata.insert("optimizer_steps".into(), steps[0].to_string());
        }
        metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let second_moments = if optimizer.needs_second_moment() {
            self.second_moments_async().await?
        } else {
            Vec::new()
        };
        let grad_averages = if optimizer.needs_grad_average() {
            self.grad_averages_async().await?
        } else {
            Vec::new()
        };
        let mut tensors = BTreeMap::new();
        for (l, (p, v)) in params.iter().zip(&velocities).enumerate() {
            let (fan_in, fan_out) = (self.sizes()[l], self.sizes()[l + 1]);
            let [w, b, vw, vb] = names(l);
            tensors.insert(w, (vec![fan_in, fan_out], p.weights.clone()));
            tensors.insert(b, (vec![fan_out], p.bias.clone()));
            tensors.insert(vw, (vec![fan_in, fan_out], v.weights.clone()));
            tensors.insert(vb, (vec![fan_out], v.bias.clone()));
            if let Some(s) = second_moments.get(l) {
                let [sw, sb] = second_moment_names(l);
                tensors.insert(sw, (vec![fan_in, fan_out], s.weights.clone()));
                tensors.insert(sb, (vec![fan_out], s.bias.clone()));
            }
            if let Some(a) = grad_averages.get(l) {
                let [aw, ab] = grad_average_names(l);
                tensors.insert(aw, (vec![fan_in, fan_out], a.weights.clone()));
                tensors.insert(ab, (vec![fan_out], a.bias.clone()));
            }
        }
        Ok(CheckpointFile { metadata, tensors })
    }

    /// [`Mlp::save`] with extra metadata entries.
    pub(crate) fn save_with(&self, path: &Path, extra: &[(&str, String)]) -> Result<()> {
        let file = self.checkpoint_file(extra)?;
        if let Some((name, _)) = file.tensors.iter().find(|(_, (_, v))| v.iter().any(|x| !x.is_finite())) {
            return Err(checkpoint_error(
                path,
                format!("{name} holds a NaN or an infinity: not saved"),
            ));
        }
        write_atomically(path, &file.encode(path)?)
    }

    /// Builds a model from a checkpoint for mini-batches of `batch` rows: same layers,
    /// activations, optimizer, parameters, velocities and step count.
    pub fn load(gpu: &Gpu, path: impl AsRef<Path>, batch: usize) -> Result<Mlp> {
        let path = path.as_ref();
        let file = CheckpointFile::decode(&read_bytes(path)?, path)?;
        Self::from_checkpoint(gpu, &file, path, Some(batch))
    }

    /// [`Mlp::load`], also returning the file's metadata; `batch` None takes the saved one.
    pub(crate) fn load_with(gpu: &Gpu, path: &Path, batch: Option<usize>) -> Result<(Mlp, BTreeMap<String, String>)> {
        let file = CheckpointFile::decode(&read_bytes(path)?, path)?;
        Ok((Self::from_checkpoint(gpu, &file, path, batch)?, file.metadata))
    }

    /// The network a decoded checkpoint describes, on `gpu`.
    pub(crate) fn from_checkpoint(gpu: &Gpu, file: &CheckpointFile, path: &Path, batch: Option<usize>) -> Result<Mlp> {
        Self::from_parts(gpu, MlpParts::read(file, path)?, batch)
    }

    /// The network `parts` describe, on `gpu`, for batches of `batch` rows (None: the saved).
    pub(crate) fn from_parts(gpu: &Gpu, parts: MlpParts, batch: Option<usize>) -> Result<Mlp> {
        let [params, velocities, second_moments, grad_averages] = parts.layers;
        let mut mlp = Mlp::builder(&parts.sizes)
            .step_kernel(parts.step_kernel)
            .loss(parts.loss)
            .hidden_activation(parts.hidden)
            .output_activation(parts.output)
            .parameters(params)
            .build(gpu, batch.unwrap_or(parts.batch), parts.optimizer)?;
        mlp.set_velocities(&velocities)?;
        if let Some(steps) = parts.optimizer_steps {
            mlp.set_second_moments(&second_moments)?;
            mlp.graph().set_optimizer_steps(steps)?;
        }
        if !grad_averages.is_empty() {
            mlp.set_grad_averages(&grad_averages)?;
        }
        mlp.set_steps_taken(parts.step);
        Ok(mlp)
    }
}

/// A file's bytes; an unreadable or non-regular file is an error naming it.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io {
        file: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(checkpoint_error(
            path,
            "not a regular file (a folder or a pipe?): give a model file",
        ));
    }
    std::fs::read(path).map_err(io)
}

/// Per layer of `sizes`: the parameters, their velocities, and (with `adam`, else empty)
/// second moments and (with `centered`, else empty) gradient averages, every tensor checked
/// for name and shape, parameters for size, and no tensor left over.
fn read_layers(
    path: &Path,
    file: &CheckpointFile,
    sizes: &[usize],
    [adam, centered]: [bool; 2],
) -> Result<[Vec<LayerParams>; 4]> {
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let (found, values) = file
            .tensors
            .get(name)
            .ok_or_else(|| checkpoint_error(path, format!("missing tensor {name}")))?;
        if found != shape {
            return Err(checkpoint_error(
                path,
                format!("{name} has shape {found:?}, expected {shape:?}"),
            ));
        }
        Ok(values.clone())
    };
    let layer = |[w, b]: [&String; 2], fan_in: usize, fan_out: usize| -> Result<LayerParams> {
        Ok(LayerParams {
            weights: read(w, &[fan_in, fan_out])?,
            bias: read(b, &[fan_out])?,
        })
    };
    let mut layers = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for l in 0..sizes.len() - 1 {
        let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
        let [w, b, vw, vb] = names(l);
        let params = layer([&w, &b], fan_in, fan_out)?;
        if let Some(v) = params
            .weights
            .iter()
            .chain(&params.bias)
            .find(|v| v.abs() > LARGEST_PARAMETER)
        {
            return Err(checkpoint_error(
                path,
                format!(
                    "layer {l} holds a parameter of {v:e}, beyond any trained network's (|w| <= {LARGEST_PARAMETER:e}): the file is damaged"
                ),
            ));
        }
        layers[0].push(params);
        layers[1].push(layer([&vw, &vb], fan_in, fan_out)?);
        if adam {
            let [sw, sb] = second_moment_names(l);
            layers[2].push(layer([&sw, &sb], fan_in, fan_out)?);
        }
        if centered {
            let [aw, ab] = grad_average_names(l);
            layers[3].push(layer([&aw, &ab], fan_in, fan_out)?);
        }
    }
    let per_layer = 4 + if adam { 2 } else { 0 } + if centered { 2 } else { 0 };
    let expected = per_layer * (sizes.len() - 1);
    if file.tensors.len() != expected {
        return Err(checkpoint_error(
            path,
            format!("{} tensors, expected {expected}", file.tensors.len()),
        ));
    }
    Ok(layers)
}

#[cfg(test)]
mod fuzz_tests;
