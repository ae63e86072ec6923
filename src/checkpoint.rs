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

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::mlp::{LayerParams, Mlp, StepKernel};
use crate::ops::{Activation, Loss};
use crate::optim::{Adam, Optimizer, Sgd, WeightDecay};

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

/// The optimizer's kind and settings as metadata entries (PyTorch's names).
fn optimizer_metadata(optimizer: &Optimizer) -> Vec<(String, String)> {
    let mut entries = vec![("optimizer", optimizer.name().to_string())];
    match optimizer {
        Optimizer::Sgd(sgd) => entries.extend([
            ("lr", sgd.lr.to_string()),
            ("momentum", sgd.momentum.to_string()),
            ("weight_decay", sgd.weight_decay.to_string()),
            ("decay", format!("{:?}", sgd.decay)),
            ("nesterov", sgd.nesterov.to_string()),
        ]),
        Optimizer::Adam(adam) => entries.extend([
            ("lr", adam.lr.to_string()),
            ("beta1", adam.beta1.to_string()),
            ("beta2", adam.beta2.to_string()),
            ("eps", adam.eps.to_string()),
            ("weight_decay", adam.weight_decay.to_string()),
        ]),
    }
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// The optimizer a checkpoint names (SGD where it names none: the files from before Adam).
fn parse_optimizer(
    path: &Path,
    meta: &HashMap<String, String>,
    number: &dyn Fn(&str) -> Result<f32>,
) -> Result<Optimizer> {
    let kind = meta.get("optimizer").map_or("sgd", String::as_str);
    let optimizer: Optimizer = match kind {
        "sgd" => {
            let decay = match meta.get("decay").map(String::as_str) {
                Some("Decoupled") => WeightDecay::Decoupled,
                Some("Coupled") => WeightDecay::Coupled,
                other => return Err(checkpoint_error(path, format!("unknown decay {other:?}"))),
            };
            let nesterov = meta.get("nesterov").is_some_and(|v| v == "true");
            Sgd::new(number("lr")?)
                .momentum(number("momentum")?)
                .weight_decay(number("weight_decay")?)
                .decay(decay)
                .nesterov(nesterov)
                .into()
        }
        "adam" | "adamw" => Adam {
            lr: number("lr")?,
            beta1: number("beta1")?,
            beta2: number("beta2")?,
            eps: number("eps")?,
            weight_decay: number("weight_decay")?,
            decoupled: kind == "adamw",
        }
        .into(),
        other => return Err(checkpoint_error(path, format!("unknown optimizer {other:?}"))),
    };
    optimizer.validate()?;
    Ok(optimizer)
}

/// The step kernel and the loss a checkpoint names (files from before they were named:
/// `Auto` and MSE).
fn parse_kernel_and_loss(path: &Path, meta: &HashMap<String, String>) -> Result<(StepKernel, Loss)> {
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

fn names(layer: usize) -> [String; 4] {
    [
        format!("layers.{layer}.weight"),
        format!("layers.{layer}.bias"),
        format!("layers.{layer}.weight.velocity"),
        format!("layers.{layer}.bias.velocity"),
    ]
}

impl Mlp {
    /// Writes parameters, velocities, step count and metadata to `path` atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with(path.as_ref(), &[])
    }

    /// [`Mlp::save`] with extra metadata entries (the trainer's epoch and seed).
    pub(crate) fn save_with(&self, path: &Path, extra: &[(&str, String)]) -> Result<()> {
        let params = self.parameters()?;
        let velocities = self.velocities()?;
        let optimizer = self.graph().optimizer();
        let (hidden, output) = self.activations();
        let sizes: Vec<String> = self.sizes().iter().map(usize::to_string).collect();
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("library_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("sizes".to_string(), sizes.join(",")),
            ("hidden_activation".to_string(), hidden.name().to_string()),
            ("output_activation".to_string(), output.name().to_string()),
            ("loss".to_string(), self.loss_function().name().to_string()),
            ("step".to_string(), self.steps_taken().to_string()),
            ("batch_size".to_string(), self.batch_size().to_string()),
            ("step_kernel".to_string(), format!("{:?}", self.step_kernel())),
        ]);
        let mut metadata = metadata;
        metadata.extend(optimizer_metadata(&optimizer));
        if optimizer.needs_second_moment() {
            let steps = self.graph().optimizer_steps()?;
            metadata.insert("optimizer_steps".into(), steps[0].to_string());
        }
        metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut tensors = Vec::new();
        let second_moments = if optimizer.needs_second_moment() {
            self.second_moments()?
        } else {
            Vec::new()
        };
        for (l, (p, v)) in params.iter().zip(&velocities).enumerate() {
            let (fan_in, fan_out) = (self.sizes()[l], self.sizes()[l + 1]);
            let [w, b, vw, vb] = names(l);
            for (name, shape, data) in [
                (w, vec![fan_in, fan_out], &p.weights),
                (b, vec![fan_out], &p.bias),
                (vw, vec![fan_in, fan_out], &v.weights),
                (vb, vec![fan_out], &v.bias),
            ] {
                tensors.push((name, shape, bytemuck::cast_slice::<f32, u8>(data).to_vec()));
            }
            if let Some(s) = second_moments.get(l) {
                let [sw, sb] = second_moment_names(l);
                tensors.push((sw, vec![fan_in, fan_out], bytemuck::cast_slice(&s.weights).to_vec()));
                tensors.push((sb, vec![fan_out], bytemuck::cast_slice(&s.bias).to_vec()));
            }
        }
        let views = tensors
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| checkpoint_error(path, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes = safetensors::serialize(views, Some(metadata)).map_err(|e| checkpoint_error(path, e.to_string()))?;
        write_atomically(path, &bytes)
    }

    /// Builds a model from a checkpoint for mini-batches of `batch` rows: same layers,
    /// activations, optimizer, parameters, velocities and step count.
    pub fn load(gpu: &Gpu, path: impl AsRef<Path>, batch: usize) -> Result<Mlp> {
        Ok(Self::load_with(gpu, path.as_ref(), Some(batch))?.0)
    }

    /// [`Mlp::load`], also returning the file's metadata; `batch` None takes the saved one.
    pub(crate) fn load_with(gpu: &Gpu, path: &Path, batch: Option<usize>) -> Result<(Mlp, HashMap<String, String>)> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            file: path.display().to_string(),
            source,
        })?;
        let (_, header) =
            SafeTensors::read_metadata(&bytes).map_err(|e| checkpoint_error(path, format!("not safetensors: {e}")))?;
        let tensors = SafeTensors::deserialize(&bytes).map_err(|e| checkpoint_error(path, e.to_string()))?;
        let meta = header
            .metadata()
            .as_ref()
            .ok_or_else(|| checkpoint_error(path, "no metadata"))?;
        let get = |key: &str| {
            meta.get(key)
                .map(String::as_str)
                .ok_or_else(|| checkpoint_error(path, format!("metadata lacks {key:?}")))
        };
        if get("format")? != FORMAT {
            return Err(checkpoint_error(
                path,
                format!("format is {:?}, expected {FORMAT:?}", get("format")?),
            ));
        }
        let number = |key: &str| -> Result<f32> {
            let text = get(key)?;
            text.parse()
                .map_err(|_| checkpoint_error(path, format!("{key} = {text:?} is not a number")))
        };
        let sizes = get("sizes")?
            .split(',')
            .map(|s| s.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| checkpoint_error(path, format!("sizes = {:?}", meta.get("sizes"))))?;
        let optimizer = parse_optimizer(path, meta, &number)?;
        // Files from before the batch size was saved: the trainer's default.
        let saved_batch = match meta.get("batch_size") {
            Some(text) => text
                .parse()
                .map_err(|_| checkpoint_error(path, format!("batch_size = {text:?} is not a number")))?,
            None => 32,
        };
        let step: u64 = get("step")?
            .parse()
            .map_err(|_| checkpoint_error(path, "step is not a number"))?;
        if sizes.len() < 2 {
            return Err(checkpoint_error(
                path,
                format!("sizes {sizes:?}: need at least two layers"),
            ));
        }
        let adam = optimizer.needs_second_moment();
        let [params, velocities, second_moments] = read_layers(path, &tensors, &sizes, adam)?;
        let (step_kernel, loss) = parse_kernel_and_loss(path, meta)?;
        let mut mlp = Mlp::builder(&sizes)
            .step_kernel(step_kernel)
            .loss(loss)
            .hidden_activation(parse_activation(path, get("hidden_activation")?)?)
            .output_activation(parse_activation(path, get("output_activation")?)?)
            .parameters(params)
            .build(gpu, batch.unwrap_or(saved_batch), optimizer)?;
        mlp.set_velocities(&velocities)?;
        if adam {
            mlp.set_second_moments(&second_moments)?;
            let steps: u64 = get("optimizer_steps")?
                .parse()
                .map_err(|_| checkpoint_error(path, "optimizer_steps is not a number"))?;
            mlp.graph().set_optimizer_steps(steps)?;
        }
        mlp.set_steps_taken(step);
        Ok((mlp, meta.clone()))
    }
}

/// Per layer of `sizes`: the parameters, their velocities and (with `adam`, else empty)
/// second moments, every tensor checked for name, dtype and shape, and no tensor left over.
fn read_layers(path: &Path, tensors: &SafeTensors<'_>, sizes: &[usize], adam: bool) -> Result<[Vec<LayerParams>; 3]> {
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let view = tensors
            .tensor(name)
            .map_err(|_| checkpoint_error(path, format!("missing tensor {name}")))?;
        if view.dtype() != Dtype::F32 {
            return Err(checkpoint_error(
                path,
                format!("{name} is {:?}, expected F32", view.dtype()),
            ));
        }
        if view.shape() != shape {
            return Err(checkpoint_error(
                path,
                format!("{name} has shape {:?}, expected {shape:?}", view.shape()),
            ));
        }
        Ok(bytemuck::pod_collect_to_vec::<u8, f32>(view.data()))
    };
    let layer = |[w, b]: [&String; 2], fan_in: usize, fan_out: usize| -> Result<LayerParams> {
        Ok(LayerParams {
            weights: read(w, &[fan_in, fan_out])?,
            bias: read(b, &[fan_out])?,
        })
    };
    let mut layers = [Vec::new(), Vec::new(), Vec::new()];
    for l in 0..sizes.len() - 1 {
        let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
        let [w, b, vw, vb] = names(l);
        layers[0].push(layer([&w, &b], fan_in, fan_out)?);
        layers[1].push(layer([&vw, &vb], fan_in, fan_out)?);
        if adam {
            let [sw, sb] = second_moment_names(l);
            layers[2].push(layer([&sw, &sb], fan_in, fan_out)?);
        }
    }
    let expected = (if adam { 6 } else { 4 }) * (sizes.len() - 1);
    if tensors.len() != expected {
        return Err(checkpoint_error(
            path,
            format!("{} tensors, expected {expected}", tensors.len()),
        ));
    }
    Ok(layers)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the directory: readers see the old file or the new one, never a torn one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        file: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| checkpoint_error(path, "the path names no file"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            dir.sync_all().ok(); // not every platform syncs directories
        }
        Ok(())
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result.map_err(io)
}
