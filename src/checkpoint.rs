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
use crate::optim::{Sgd, WeightDecay};

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
        let sgd = self.graph().optimizer();
        let (hidden, output) = self.activations();
        let sizes: Vec<String> = self.sizes().iter().map(usize::to_string).collect();
        let metadata = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("library_version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("sizes".to_string(), sizes.join(",")),
            ("hidden_activation".to_string(), hidden.name().to_string()),
            ("output_activation".to_string(), output.name().to_string()),
            ("loss".to_string(), self.loss_function().name().to_string()),
            ("lr".to_string(), sgd.lr.to_string()),
            ("momentum".to_string(), sgd.momentum.to_string()),
            ("weight_decay".to_string(), sgd.weight_decay.to_string()),
            ("decay".to_string(), format!("{:?}", sgd.decay)),
            ("step".to_string(), self.steps_taken().to_string()),
            ("step_kernel".to_string(), format!("{:?}", self.step_kernel())),
        ]);
        let mut metadata = metadata;
        metadata.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut tensors = Vec::new();
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
        Ok(Self::load_with(gpu, path.as_ref(), batch)?.0)
    }

    /// [`Mlp::load`], also returning the file's metadata.
    pub(crate) fn load_with(gpu: &Gpu, path: &Path, batch: usize) -> Result<(Mlp, HashMap<String, String>)> {
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
        let decay = match get("decay")? {
            "Decoupled" => WeightDecay::Decoupled,
            "Coupled" => WeightDecay::Coupled,
            other => return Err(checkpoint_error(path, format!("unknown decay {other:?}"))),
        };
        let sgd = Sgd::new(number("lr")?)
            .momentum(number("momentum")?)
            .weight_decay(number("weight_decay")?)
            .decay(decay);
        let step: u64 = get("step")?
            .parse()
            .map_err(|_| checkpoint_error(path, "step is not a number"))?;
        if sizes.len() < 2 {
            return Err(checkpoint_error(
                path,
                format!("sizes {sizes:?}: need at least two layers"),
            ));
        }
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
        let mut params = Vec::new();
        let mut velocities = Vec::new();
        for l in 0..sizes.len() - 1 {
            let (fan_in, fan_out) = (sizes[l], sizes[l + 1]);
            let [w, b, vw, vb] = names(l);
            params.push(LayerParams {
                weights: read(&w, &[fan_in, fan_out])?,
                bias: read(&b, &[fan_out])?,
            });
            velocities.push(LayerParams {
                weights: read(&vw, &[fan_in, fan_out])?,
                bias: read(&vb, &[fan_out])?,
            });
        }
        if tensors.len() != 4 * (sizes.len() - 1) {
            return Err(checkpoint_error(
                path,
                format!("{} tensors, expected {}", tensors.len(), 4 * (sizes.len() - 1)),
            ));
        }
        let step_kernel = match meta.get("step_kernel").map(String::as_str) {
            None | Some("Auto") => StepKernel::Auto,
            Some("General") => StepKernel::General,
            Some("SingleDispatch") => StepKernel::SingleDispatch,
            Some(other) => return Err(checkpoint_error(path, format!("unknown step_kernel {other:?}"))),
        };
        // Checkpoints from before losses were named trained on MSE.
        let loss = match meta.get("loss") {
            None => Loss::Mse,
            Some(name) => {
                Loss::from_name(name).ok_or_else(|| checkpoint_error(path, format!("unknown loss {name:?}")))?
            }
        };
        let mut mlp = Mlp::builder(&sizes)
            .step_kernel(step_kernel)
            .loss(loss)
            .hidden_activation(parse_activation(path, get("hidden_activation")?)?)
            .output_activation(parse_activation(path, get("output_activation")?)?)
            .parameters(params)
            .build(gpu, batch, sgd)?;
        mlp.set_velocities(&velocities)?;
        mlp.set_steps_taken(step);
        Ok((mlp, meta.clone()))
    }
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
