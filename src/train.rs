//! Training on a data set resident on the GPU: shuffled mini-batches gathered on the device,
//! an epoch per submit, metrics read back once per epoch, optional early stopping.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::Dispatch;
use crate::mlp::{Activation, LayerParams, Mlp};
use crate::ops;
use crate::optim::Sgd;
use crate::tensor::Tensor;

/// A data set uploaded to the GPU once: features (N,F) and targets (N,O).
pub struct GpuDataset {
    gpu: Gpu,
    features: Tensor,
    targets: Tensor,
    labels: Option<Vec<usize>>,
    n_features: usize,
    n_outputs: usize,
}

impl GpuDataset {
    /// Validates and uploads `data`.
    pub fn upload(gpu: &Gpu, data: &Dataset) -> Result<Self> {
        data.validate()?;
        let n = data.len();
        Ok(GpuDataset {
            gpu: gpu.clone(),
            features: Tensor::from_slice(gpu, &[n, data.n_features], &data.features)?,
            targets: Tensor::from_slice(gpu, &[n, data.n_outputs], &data.targets)?,
            labels: data.labels.clone(),
            n_features: data.n_features,
            n_outputs: data.n_outputs,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.features.shape()[0]
    }

    /// Whether it holds no samples (never: uploads of empty data sets fail).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class labels, for classification data.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// The device it lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    fn check_rows(&self, op: &'static str, what: &str, rows: &[usize]) -> Result<()> {
        if rows.is_empty() {
            return Err(Error::invalid(op, what, "at least one sample", "none"));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(Error::invalid(
                op,
                format!("{what} index"),
                format!("< {}", self.len()),
                bad,
            ));
        }
        Ok(())
    }
}

/// How to train one model.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Hidden layer sizes (inputs and outputs come from the data).
    pub hidden: Vec<usize>,
    /// The optimizer.
    pub sgd: Sgd,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Seed of the initialisation and of the per-epoch shuffles.
    pub seed: u64,
    /// Activation of the output layer (hidden layers use sigmoid).
    pub output_activation: Activation,
    /// Drop the last, partial batch of each epoch instead of training on it.
    pub drop_last: bool,
    /// Stop when the validation loss has not improved for this many epochs, and keep the
    /// parameters of the best epoch. Needs validation rows.
    pub early_stopping: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: vec![64],
            sgd: Sgd::new(0.5).momentum(0.9),
            epochs: 30,
            batch_size: 32,
            seed: 0,
            output_activation: Activation::Sigmoid,
            drop_last: false,
            early_stopping: None,
        }
    }
}

impl TrainConfig {
    /// Checks ranges: epochs ≥ 1, batch size ≥ 1, hidden sizes ≥ 1, the optimizer's.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "TrainConfig";
        self.sgd.validate()?;
        if self.epochs == 0 {
            return Err(Error::invalid(OP, "epochs", "at least 1", 0));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid(OP, "batch_size", "at least 1", 0));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::invalid(OP, format!("hidden[{i}]"), "at least 1", 0));
        }
        if self.early_stopping == Some(0) {
            return Err(Error::invalid(OP, "early_stopping patience", "at least 1 epoch", 0));
        }
        Ok(())
    }
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples (each weighted once).
    pub train_loss: f32,
    /// Loss on the validation rows after the epoch.
    pub val_loss: Option<f32>,
    /// Accuracy on the validation rows after the epoch (classification).
    pub val_accuracy: Option<f32>,
}

/// Loss (and accuracy, for classification) of a model on some rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Mean loss per sample.
    pub loss: f32,
    /// Fraction of samples whose largest output is their class.
    pub accuracy: Option<f32>,
}

/// A trained model with its history.
pub struct Model {
    mlp: Mlp,
    /// Metrics of the epochs this call trained.
    history: Vec<EpochMetrics>,
    /// Epochs trained in all, resumed runs included.
    epochs_done: usize,
    seed: u64,
}

/// The batches of a fixed list of rows: one index buffer, and per batch a gather dispatch
/// (built once) that fills the model's inputs, targets and loss weights, and a copy that keeps
/// the batch's loss, so one read-back after the submit gives them all.
struct Batches {
    indices: Tensor,
    gathers: Vec<Dispatch>,
    collect_losses: Vec<Dispatch>,
    losses: Tensor,
    counts: Vec<usize>,
}

impl Batches {
    fn new(data: &GpuDataset, mlp: &Mlp, rows: &[usize], drop_last: bool) -> Result<Self> {
        let gpu = &data.gpu;
        let batch = mlp.batch_size();
        let n_batches = if drop_last {
            rows.len() / batch
        } else {
            rows.len().div_ceil(batch)
        };
        if n_batches == 0 {
            return Err(Error::invalid(
                "fit",
                "training rows",
                format!("at least one full batch of {batch} with drop_last"),
                rows.len(),
            ));
        }
        let indices = Tensor::from_u32(gpu, &[rows.len()], &to_u32(rows))?;
        let graph = mlp.graph();
        let (x, t) = (graph.tensor(mlp.input_node())?, graph.tensor(mlp.target_node())?);
        let mut gathers = Vec::with_capacity(n_batches);
        let mut counts = Vec::with_capacity(n_batches);
        for j in 0..n_batches {
            let count = batch.min(rows.len() - j * batch);
            gathers.push(ops::gather_batch(
                gpu,
                &data.features,
                &data.targets,
                &indices,
                j * batch,
                count,
                x,
                t,
                graph.row_weights(),
            )?);
            counts.push(count);
        }
        let loss = graph.tensor(graph.loss_node())?.view(0, &[1, 1]);
        let losses = Tensor::zeros(gpu, &[n_batches, 1])?;
        let collect_losses = (0..n_batches)
            .map(|j| ops::copy_rows(gpu, &loss, &losses, j, 1))
            .collect::<Result<Vec<_>>>()?;
        Ok(Batches {
            indices,
            gathers,
            collect_losses,
            losses,
            counts,
        })
    }

    /// Records batch `j`: its gather, `graph`'s step (forward only, or with backward and
    /// update), then `after` (e.g. collecting the outputs), then keeping its loss.
    fn record(
        &self,
        j: usize,
        pass: &mut wgpu::ComputePass<'_>,
        graph: &crate::graph::Graph,
        train: bool,
        after: Option<&Dispatch>,
    ) {
        self.gathers[j].record(pass);
        graph.record(pass, train, train);
        if let Some(dispatch) = after {
            dispatch.record(pass);
        }
        self.collect_losses[j].record(pass);
    }

    /// Every batch's loss from the last submit, and their mean over samples (each batch's
    /// loss is already the mean over its own rows).
    fn read_losses(&self) -> Result<(Vec<f32>, f64)> {
        let losses = self.losses.to_vec()?;
        let samples: usize = self.counts.iter().sum();
        let sum: f64 = losses
            .iter()
            .zip(&self.counts)
            .map(|(&l, &c)| l as f64 * c as f64)
            .sum();
        Ok((losses, sum / samples as f64))
    }
}

fn to_u32(rows: &[usize]) -> Vec<u32> {
    rows.iter().map(|&r| r as u32).collect()
}

/// Evaluation of a model over fixed rows: forward passes only, every batch's output and loss
/// collected on the GPU and read back once.
struct Evaluation {
    batches: Batches,
    collect_outputs: Vec<Dispatch>,
    outputs: Tensor,
    labels: Option<Vec<usize>>,
}

impl Evaluation {
    fn new(data: &GpuDataset, mlp: &Mlp, rows: &[usize]) -> Result<Self> {
        let gpu = &data.gpu;
        let batches = Batches::new(data, mlp, rows, false)?;
        let graph = mlp.graph();
        let y = graph.tensor(mlp.output_node())?;
        let outputs = Tensor::zeros(gpu, &[rows.len(), data.n_outputs])?;
        let batch = mlp.batch_size();
        let collect_outputs = (batches.counts.iter().enumerate())
            .map(|(j, &count)| ops::copy_rows(gpu, y, &outputs, j * batch, count))
            .collect::<Result<Vec<_>>>()?;
        let labels = data
            .labels
            .as_ref()
            .map(|labels| rows.iter().map(|&r| labels[r]).collect());
        Ok(Evaluation {
            batches,
            collect_outputs,
            outputs,
            labels,
        })
    }

    fn run(&self, mlp: &Mlp) -> Result<(Scores, Vec<f32>)> {
        let graph = mlp.graph();
        graph.gpu().record_and_submit("evaluate", |pass| {
            for (j, collect) in self.collect_outputs.iter().enumerate() {
                self.batches.record(j, pass, graph, false, Some(collect));
            }
        })?;
        let (_, loss) = self.batches.read_losses()?;
        let outputs = self.outputs.to_vec()?;
        let accuracy = self.labels.as_ref().map(|labels| accuracy(&outputs, labels));
        Ok((
            Scores {
                loss: loss as f32,
                accuracy,
            },
            outputs,
        ))
    }
}

/// Fraction of rows of `outputs` whose largest entry is at the row's label.
fn accuracy(outputs: &[f32], labels: &[usize]) -> f32 {
    let k = outputs.len() / labels.len().max(1);
    let correct = outputs
        .chunks(k)
        .zip(labels)
        .filter(|(row, label)| argmax(row) == **label)
        .count();
    correct as f32 / labels.len().max(1) as f32
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Trains a new model on `train_rows` of `data`, scoring `validation_rows` after each
/// epoch; `on_epoch` sees every epoch's metrics (for progress bars).
///
/// Each epoch is one submit: for every mini-batch, a gather kernel copies the shuffled rows
/// into the model's inputs, then forward, backward and update follow. The last, partial
/// batch trains with its padding rows weighted 0, unless `drop_last`.
pub fn fit(
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    check_fit("fit", data, train_rows, validation_rows, config)?;
    let mlp = Mlp::builder(&layer_sizes(data, config))
        .seed(config.seed)
        .output_activation(config.output_activation)
        .build(&data.gpu, config.batch_size, config.sgd)?;
    train_epochs(mlp, 0, data, train_rows, validation_rows, config, on_epoch)
}

/// Continues a run saved by [`Model::save`]: loads parameters, velocities and the epoch count,
/// then trains the remaining `config.epochs − epochs done` epochs. Each epoch's shuffle is
/// seeded from `config.seed` and the epoch number, so a resumed run gives the same bits as
/// one that never stopped.
pub fn resume(
    path: impl AsRef<std::path::Path>,
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    const OP: &str = "resume";
    let path = path.as_ref();
    check_fit(OP, data, train_rows, validation_rows, config)?;
    let (mlp, metadata) = Mlp::load_with(&data.gpu, path, config.batch_size)?;
    let number = |key: &str| -> Result<u64> {
        metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| crate::checkpoint::checkpoint_error(path, format!("no trainer {key:?} in the metadata")))
    };
    let (epochs_done, seed) = (number("epoch")? as usize, number("seed")?);
    if seed != config.seed {
        return Err(Error::invalid(
            OP,
            "config.seed",
            format!("the checkpoint's seed {seed}"),
            config.seed,
        ));
    }
    let sizes = layer_sizes(data, config);
    if mlp.sizes() != sizes || mlp.activations().1 != config.output_activation {
        return Err(Error::shape(
            OP,
            "checkpoint",
            format!("layers {sizes:?} with {:?} output", config.output_activation),
            format!("layers {:?} with {:?} output", mlp.sizes(), mlp.activations().1),
        ));
    }
    if mlp.graph().optimizer() != config.sgd {
        return Err(Error::invalid(
            OP,
            "config.sgd",
            format!("{:?}", mlp.graph().optimizer()),
            format!("{:?}", config.sgd),
        ));
    }
    train_epochs(mlp, epochs_done, data, train_rows, validation_rows, config, on_epoch)
}

/// Inputs from the data, hidden layers from the config, outputs from the data.
fn layer_sizes(data: &GpuDataset, config: &TrainConfig) -> Vec<usize> {
    let mut sizes = vec![data.n_features];
    sizes.extend_from_slice(&config.hidden);
    sizes.push(data.n_outputs);
    sizes
}

fn check_fit(
    op: &'static str,
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
) -> Result<()> {
    config.validate()?;
    data.check_rows(op, "training rows", train_rows)?;
    if let Some(rows) = validation_rows {
        data.check_rows(op, "validation rows", rows)?;
    }
    if config.early_stopping.is_some() && validation_rows.is_none() {
        return Err(Error::invalid(op, "early_stopping", "validation rows to watch", "none"));
    }
    Ok(())
}

/// The shuffle seed of one epoch: a function of the run's seed and the epoch alone, so a
/// resumed run needs no generator state.
fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    (seed ^ 0x5EED_0FE9_0C00).wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Epochs `epochs_done + 1 ..= config.epochs` of training `mlp`.
fn train_epochs(
    mut mlp: Mlp,
    epochs_done: usize,
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    let gpu = &data.gpu;
    let batches = Batches::new(data, &mlp, train_rows, config.drop_last)?;
    let validation = validation_rows
        .map(|rows| Evaluation::new(data, &mlp, rows))
        .transpose()?;

    // The parameters as they were before the running epoch, for the divergence guard.
    let last_good = Tensor::zeros(gpu, mlp.graph().flat_params().shape())?;
    let mut history = Vec::with_capacity(config.epochs);
    let mut best: Option<(f32, Vec<LayerParams>)> = None;
    let mut since_best = 0;
    for epoch in epochs_done + 1..=config.epochs {
        let mut order = train_rows.to_vec();
        order.shuffle(&mut StdRng::seed_from_u64(epoch_seed(config.seed, epoch)));
        batches.indices.write_u32(&to_u32(&order))?;
        let graph = mlp.graph();
        gpu.record_and_submit_after(
            "training epoch",
            |encoder| graph.flat_params().copy_to(&last_good, encoder),
            |pass| {
                for j in 0..batches.counts.len() {
                    batches.record(j, pass, graph, true, None);
                }
            },
        )?;
        mlp.add_steps(batches.counts.len() as u64);
        let (losses, train_loss) = batches.read_losses()?;
        if let Some(batch) = losses.iter().position(|l| !l.is_finite()) {
            // Roll back to the parameters before this epoch: the caller never sees NaN weights.
            let graph = mlp.graph();
            gpu.record_and_submit_after(
                "roll back",
                |encoder| last_good.copy_to(graph.flat_params(), encoder),
                |_| {},
            )?;
            graph.reset_optimizer()?;
            return Err(Error::Diverged {
                epoch,
                batch: batch + 1,
                loss: losses[batch],
                last_good: mlp.parameters()?,
            });
        }
        let val = validation
            .as_ref()
            .map(|v| v.run(&mlp))
            .transpose()?
            .map(|(scores, _)| scores);
        let metrics = EpochMetrics {
            epoch,
            train_loss: train_loss as f32,
            val_loss: val.map(|s| s.loss),
            val_accuracy: val.and_then(|s| s.accuracy),
        };
        on_epoch(&metrics);
        history.push(metrics);
        if let (Some(patience), Some(scores)) = (config.early_stopping, val) {
            if best.as_ref().is_none_or(|(loss, _)| scores.loss < *loss) {
                best = Some((scores.loss, mlp.parameters()?));
                since_best = 0;
            } else {
                since_best += 1;
                if since_best >= patience {
                    break;
                }
            }
        }
    }
    if let Some((_, params)) = best {
        mlp.set_parameters(&params)?;
    }
    let epochs_done = epochs_done + history.len();
    Ok(Model {
        mlp,
        history,
        epochs_done,
        seed: config.seed,
    })
}

impl Model {
    /// Saves a checkpoint of the model with the trainer's epoch count and seed, for
    /// [`resume`]. See [`Mlp::save`].
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.mlp.save_with(
            path.as_ref(),
            &[("epoch", self.epochs_done.to_string()), ("seed", self.seed.to_string())],
        )
    }

    /// Epochs trained in all (resumed runs included).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Per-epoch metrics of the training run.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// The network.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Loss and accuracy on `rows` of `data`.
    pub fn evaluate(&self, data: &GpuDataset, rows: &[usize]) -> Result<Scores> {
        data.check_rows("Model::evaluate", "rows", rows)?;
        self.check_data("Model::evaluate", data)?;
        Ok(Evaluation::new(data, &self.mlp, rows)?.run(&self.mlp)?.0)
    }

    /// The network's outputs for `rows` of `data`, (rows, outputs) row-major.
    pub fn predict(&self, data: &GpuDataset, rows: &[usize]) -> Result<Vec<f32>> {
        data.check_rows("Model::predict", "rows", rows)?;
        self.check_data("Model::predict", data)?;
        Ok(Evaluation::new(data, &self.mlp, rows)?.run(&self.mlp)?.1)
    }

    fn check_data(&self, op: &'static str, data: &GpuDataset) -> Result<()> {
        let sizes = self.mlp.sizes();
        let (inputs, outputs) = (sizes[0], sizes[sizes.len() - 1]);
        if (data.n_features, data.n_outputs) != (inputs, outputs) {
            return Err(Error::shape(
                op,
                "data set",
                format!("{inputs} features, {outputs} outputs"),
                format!("{} features, {} outputs", data.n_features, data.n_outputs),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("mlp", &self.mlp)
            .field("epochs", &self.history.len())
            .finish()
    }
}
