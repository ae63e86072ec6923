//! Training on a data set resident on the GPU: shuffled mini-batches gathered on the device,
//! an epoch per submit, metrics read back once per epoch, optional early stopping.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::Dispatch;
use crate::mlp::{LayerParams, Mlp, MlpBuilder};
use crate::ops;
use crate::ops::{Activation, Loss};
use crate::optim::{Optimizer, Sgd};
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

    pub(crate) fn check_rows(&self, op: &'static str, what: &str, rows: &[usize]) -> Result<()> {
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
    /// The optimizer: [`Sgd`] or [`crate::Adam`], converted with `.into()`.
    pub optimizer: Optimizer,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Seed of the initialisation and of the per-epoch shuffles.
    pub seed: u64,
    /// Activation after every hidden layer.
    pub hidden_activation: Activation,
    /// Activation of the output layer ([`Activation::Identity`] with
    /// [`Loss::SoftmaxCrossEntropy`], which takes logits).
    pub output_activation: Activation,
    /// The training loss.
    pub loss: Loss,
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
            optimizer: Sgd::new(0.5).momentum(0.9).into(),
            epochs: 30,
            batch_size: 32,
            seed: 0,
            hidden_activation: Activation::Sigmoid,
            output_activation: Activation::Sigmoid,
            loss: Loss::Mse,
            drop_last: false,
            early_stopping: None,
        }
    }
}

impl TrainConfig {
    /// Checks ranges: epochs ≥ 1, batch size ≥ 1, hidden sizes ≥ 1, the optimizer's.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "TrainConfig";
        self.optimizer.validate()?;
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
        self.loss.check_output_activation(OP, self.output_activation)
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

/// The batches of fixed rows, for one model or a stack of them (one list of rows each):
/// one index buffer, and per batch a gather dispatch (built once) that fills every model's
/// inputs, targets and loss weights, and a copy that keeps each model's batch loss, so one
/// read-back after the submit gives them all.
struct Batches {
    /// (models × longest row list) row indices, rewritten with each epoch's shuffles.
    indices: Tensor,
    longest: usize,
    /// Per model: its row count and how many batches it trains this epoch (u32 pairs).
    plan: Tensor,
    gathers: Vec<Dispatch>,
    collect_losses: Vec<Dispatch>,
    losses: Tensor,
    /// Per model, the rows in each of its batches (0 past its last).
    counts: Vec<Vec<usize>>,
}

impl Batches {
    fn new(data: &GpuDataset, mlp: &Mlp, rows: &[&[usize]], drop_last: bool) -> Result<Self> {
        let gpu = &data.gpu;
        let batch = mlp.batch_size();
        let models = rows.len();
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let counts: Vec<Vec<usize>> = rows
            .iter()
            .map(|rows| {
                (0..batches_per_epoch(rows.len(), batch, drop_last))
                    .map(|j| batch.min(rows.len() - j * batch))
                    .collect()
            })
            .collect();
        if let Some(short) = counts.iter().position(|c| c.is_empty()) {
            return Err(Error::invalid(
                "fit",
                "training rows",
                format!("at least one full batch of {batch} with drop_last"),
                rows[short].len(),
            ));
        }
        let n_steps = counts.iter().map(Vec::len).max().unwrap_or(0);
        let indices = Tensor::from_u32(gpu, &[models * longest], &vec![0; models * longest])?
            .view(0, &[longest])
            .stack(models, longest);
        let plan = Tensor::from_u32(gpu, &[2 * models], &vec![0; 2 * models])?;
        let graph = mlp.graph();
        let (x, t) = (graph.tensor(mlp.input_node())?, graph.tensor(mlp.target_node())?);
        let gathers = (0..n_steps)
            .map(|j| {
                ops::gather_batch(
                    gpu,
                    &data.features,
                    &data.targets,
                    &indices,
                    &plan,
                    j * batch,
                    x,
                    t,
                    graph.row_weights(),
                    graph.active(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let loss = graph.tensor(graph.loss_node())?.reshape(&[1, 1]);
        let losses = Tensor::zeros(gpu, &[models * n_steps])?
            .view(0, &[n_steps, 1])
            .stack(models, n_steps);
        let collect_losses = (0..n_steps)
            .map(|j| ops::copy_rows(gpu, &loss, &losses, j, 1))
            .collect::<Result<Vec<_>>>()?;
        let batches = Batches {
            indices,
            longest,
            plan,
            gathers,
            collect_losses,
            losses,
            counts,
        };
        batches.set_rows(rows, &vec![true; models])?;
        Ok(batches)
    }

    /// Batches per epoch of the model with the most.
    fn steps(&self) -> usize {
        self.gathers.len()
    }

    /// Writes each model's row order, and which models train this epoch.
    fn set_rows(&self, rows: &[&[usize]], training: &[bool]) -> Result<()> {
        let mut indices = vec![0u32; rows.len() * self.longest];
        let mut plan = Vec::with_capacity(2 * rows.len());
        for (m, rows) in rows.iter().enumerate() {
            for (slot, &row) in indices[m * self.longest..].iter_mut().zip(rows.iter()) {
                *slot = row as u32;
            }
            let steps = if training[m] { self.counts[m].len() } else { 0 };
            plan.extend([rows.len() as u32, steps as u32]);
        }
        self.indices.write_u32(&indices)?;
        self.plan.write_u32(&plan)
    }

    /// Records batch `j`: its gather, `graph`'s step (forward only, or with backward and
    /// update), then `after` (e.g. collecting the outputs), then keeping its losses.
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

    /// Per model, every batch's loss from the last submit and their mean over samples (each
    /// batch's loss is already the mean over its own rows).
    fn read_losses(&self) -> Result<Vec<(Vec<f32>, f64)>> {
        let all = self.losses.to_vec()?;
        let steps = self.steps();
        Ok(self
            .counts
            .iter()
            .enumerate()
            .map(|(m, counts)| {
                let losses = all[m * steps..m * steps + counts.len()].to_vec();
                let samples: usize = counts.iter().sum();
                let sum: f64 = losses.iter().zip(counts).map(|(&l, &c)| l as f64 * c as f64).sum();
                (losses, sum / samples as f64)
            })
            .collect())
    }
}

/// Evaluation of a model (or a stack, each on its own rows) over fixed rows: forward passes
/// only, every batch's outputs and losses collected on the GPU and read back once.
struct Evaluation {
    batches: Batches,
    collect_outputs: Vec<Dispatch>,
    outputs: Tensor,
    rows: Vec<usize>,
    labels: Vec<Option<Vec<usize>>>,
}

impl Evaluation {
    fn new(data: &GpuDataset, mlp: &Mlp, rows: &[&[usize]]) -> Result<Self> {
        let gpu = &data.gpu;
        let batches = Batches::new(data, mlp, rows, false)?;
        let graph = mlp.graph();
        let y = graph.tensor(mlp.output_node())?;
        let (models, longest) = (rows.len(), batches.longest);
        let outputs = Tensor::zeros(gpu, &[models * longest * data.n_outputs])?
            .view(0, &[longest, data.n_outputs])
            .stack(models, longest * data.n_outputs);
        let batch = mlp.batch_size();
        let collect_outputs = (0..batches.steps())
            .map(|j| ops::copy_rows(gpu, y, &outputs, j * batch, batch.min(longest - j * batch)))
            .collect::<Result<Vec<_>>>()?;
        let labels = rows
            .iter()
            .map(|rows| {
                data.labels
                    .as_ref()
                    .map(|labels| rows.iter().map(|&r| labels[r]).collect())
            })
            .collect();
        Ok(Evaluation {
            batches,
            collect_outputs,
            outputs,
            rows: rows.iter().map(|r| r.len()).collect(),
            labels,
        })
    }

    /// Per model: its scores and its outputs, (rows, outputs) row-major.
    fn run(&self, mlp: &Mlp) -> Result<Vec<(Scores, Vec<f32>)>> {
        let graph = mlp.graph();
        graph.gpu().record_and_submit("evaluate", |pass| {
            for (j, collect) in self.collect_outputs.iter().enumerate() {
                self.batches.record(j, pass, graph, false, Some(collect));
            }
        })?;
        let losses = self.batches.read_losses()?;
        let all = self.outputs.to_vec()?;
        let per_model = all.len() / self.rows.len();
        let width = per_model / self.batches.longest;
        Ok(losses
            .into_iter()
            .enumerate()
            .map(|(m, (_, loss))| {
                let outputs = all[m * per_model..m * per_model + self.rows[m] * width].to_vec();
                let accuracy = self.labels[m].as_ref().map(|labels| accuracy(&outputs, labels));
                (
                    Scores {
                        loss: loss as f32,
                        accuracy,
                    },
                    outputs,
                )
            })
            .collect())
    }

    /// [`Evaluation::run`] of a single model.
    fn run_one(&self, mlp: &Mlp) -> Result<(Scores, Vec<f32>)> {
        self.run(mlp)?
            .pop()
            .ok_or_else(|| Error::invalid("evaluate", "models", "one", 0))
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
    let mlp = mlp_builder(data, config).build(&data.gpu, config.batch_size, config.optimizer)?;
    fit_one(mlp, 0, data, train_rows, validation_rows, config, on_epoch)
}

/// Epochs `epochs_done + 1 ..= config.epochs` of training one model.
fn fit_one(
    mlp: Mlp,
    epochs_done: usize,
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    let lane = Lane {
        rows: train_rows,
        config,
    };
    let mut stack = train_epochs(mlp, epochs_done, data, &[lane], validation_rows, &mut |_, metrics| {
        on_epoch(metrics)
    })?;
    let history = stack.histories.pop().unwrap_or_default();
    Ok(Model {
        mlp: stack.mlp,
        epochs_done: epochs_done + history.len(),
        history,
        seed: config.seed,
    })
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
    let activations = (config.hidden_activation, config.output_activation);
    if mlp.loss_function() != config.loss {
        return Err(Error::invalid(
            OP,
            "config.loss",
            format!("the checkpoint's {}", mlp.loss_function().name()),
            config.loss.name(),
        ));
    }
    if mlp.sizes() != sizes || mlp.activations() != activations {
        return Err(Error::shape(
            OP,
            "checkpoint",
            format!("layers {sizes:?} with activations (hidden, output) {activations:?}"),
            format!(
                "layers {:?} with activations (hidden, output) {:?}",
                mlp.sizes(),
                mlp.activations()
            ),
        ));
    }
    if mlp.graph().optimizer() != config.optimizer {
        return Err(Error::invalid(
            OP,
            "config.optimizer",
            format!("{:?}", mlp.graph().optimizer()),
            format!("{:?}", config.optimizer),
        ));
    }
    fit_one(mlp, epochs_done, data, train_rows, validation_rows, config, on_epoch)
}

/// The network `fit` trains for `config` on `data`: its layer sizes, seed and activations.
fn mlp_builder(data: &GpuDataset, config: &TrainConfig) -> MlpBuilder {
    Mlp::builder(&layer_sizes(data, config))
        .seed(config.seed)
        .hidden_activation(config.hidden_activation)
        .output_activation(config.output_activation)
        .loss(config.loss)
}

/// Mini-batches an epoch over `rows` rows takes: a partial last one counts unless dropped.
fn batches_per_epoch(rows: usize, batch: usize, drop_last: bool) -> usize {
    if drop_last { rows / batch } else { rows.div_ceil(batch) }
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

/// What a stack of models trained together learned: the stacked network and, per model,
/// the metrics of the epochs it trained.
pub(crate) struct TrainedStack {
    pub(crate) mlp: Mlp,
    pub(crate) histories: Vec<Vec<EpochMetrics>>,
}

/// One model of a stacked run: the rows it trains on and its settings.
pub(crate) struct Lane<'a> {
    pub(crate) rows: &'a [usize],
    pub(crate) config: &'a TrainConfig,
}

/// Epochs `epochs_done + 1 ..= max epochs` of training `mlp`, a single model or a stack with
/// one lane per model. Each epoch is one submit for all models: each draws its own shuffle
/// of its own rows (seeded by its seed and the epoch), and a model whose epochs are over, or
/// whose rows ran out before the longest lane's, sits still (its updates masked) while the
/// others go on. Validation and early stopping are for a single model.
fn train_epochs(
    mut mlp: Mlp,
    epochs_done: usize,
    data: &GpuDataset,
    lanes: &[Lane],
    validation_rows: Option<&[usize]>,
    on_epoch: &mut dyn FnMut(usize, &EpochMetrics),
) -> Result<TrainedStack> {
    let gpu = &data.gpu;
    let rows: Vec<&[usize]> = lanes.iter().map(|lane| lane.rows).collect();
    let drop_last = lanes[0].config.drop_last;
    let early_stopping = lanes[0].config.early_stopping;
    let batches = Batches::new(data, &mlp, &rows, drop_last)?;
    let validation = validation_rows
        .map(|rows| Evaluation::new(data, &mlp, &[rows]))
        .transpose()?;

    // The parameters as they were before the running epoch, for the divergence guard.
    let last_good = Tensor::zeros(gpu, mlp.graph().flat_params().shape())?;
    let max_epochs = lanes.iter().map(|lane| lane.config.epochs).max().unwrap_or(0);
    let mut histories: Vec<Vec<EpochMetrics>> = lanes.iter().map(|_| Vec::new()).collect();
    let mut best: Option<(f32, Vec<LayerParams>)> = None;
    let mut since_best = 0;
    let mut orders: Vec<Vec<usize>> = rows.iter().map(|r| r.to_vec()).collect();
    for epoch in epochs_done + 1..=max_epochs {
        let training: Vec<bool> = lanes.iter().map(|lane| epoch <= lane.config.epochs).collect();
        for ((order, lane), &on) in orders.iter_mut().zip(lanes).zip(&training) {
            if on {
                order.copy_from_slice(lane.rows);
                order.shuffle(&mut StdRng::seed_from_u64(epoch_seed(lane.config.seed, epoch)));
            }
        }
        let order_refs: Vec<&[usize]> = orders.iter().map(Vec::as_slice).collect();
        batches.set_rows(&order_refs, &training)?;
        let graph = mlp.graph();
        gpu.record_and_submit_after(
            "training epoch",
            |encoder| graph.flat_params().copy_to(&last_good, encoder),
            |pass| {
                for j in 0..batches.steps() {
                    batches.record(j, pass, graph, true, None);
                }
            },
        )?;
        let losses = batches.read_losses()?;
        let diverged = (0..lanes.len()).filter(|&m| training[m]).find_map(|m| {
            let batch = losses[m].0.iter().position(|l| !l.is_finite())?;
            Some((m, batch))
        });
        if let Some((m, batch)) = diverged {
            // Roll back to the parameters before this epoch: the caller never sees NaN weights.
            let graph = mlp.graph();
            gpu.record_and_submit_after(
                "roll back",
                |encoder| last_good.copy_to(graph.flat_params(), encoder),
                |_| {},
            )?;
            graph.reset_optimizer()?;
            let last_good = if lanes.len() == 1 {
                mlp.parameters()?
            } else {
                mlp.stacked_parameters()?.swap_remove(m)
            };
            return Err(Error::Diverged {
                epoch,
                batch: batch + 1,
                loss: losses[m].0[batch],
                last_good,
            });
        }
        if lanes.len() == 1 {
            mlp.add_steps(batches.counts[0].len() as u64);
        }
        let val = match &validation {
            Some(v) => Some(v.run_one(&mlp)?.0),
            None => None,
        };
        for (m, (_, train_loss)) in losses.iter().enumerate().filter(|&(m, _)| training[m]) {
            let metrics = EpochMetrics {
                epoch,
                train_loss: *train_loss as f32,
                val_loss: val.map(|s| s.loss),
                val_accuracy: val.and_then(|s| s.accuracy),
            };
            on_epoch(m, &metrics);
            histories[m].push(metrics);
        }
        if let (Some(patience), Some(scores)) = (early_stopping, val) {
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
    Ok(TrainedStack { mlp, histories })
}

/// Trains the lanes of one group (same layer sizes, batch size, output activation and
/// `drop_last`; no early stopping) as one stacked run.
pub(crate) fn train_stack(
    data: &GpuDataset,
    lanes: &[Lane],
    on_epoch: &mut dyn FnMut(usize, &EpochMetrics),
) -> Result<TrainedStack> {
    let first = lanes[0].config;
    let seeds: Vec<u64> = lanes.iter().map(|lane| lane.config.seed).collect();
    let optimizers: Vec<Optimizer> = lanes.iter().map(|lane| lane.config.optimizer).collect();
    let mlp = mlp_builder(data, first).build_stacked(&data.gpu, first.batch_size, &seeds, &optimizers)?;
    train_epochs(mlp, 0, data, lanes, None, on_epoch)
}

/// Scores each model of a trained stack on its own rows (`rows[m]` for model m).
pub(crate) fn evaluate_stack(data: &GpuDataset, mlp: &Mlp, rows: &[&[usize]]) -> Result<Vec<Scores>> {
    for rows in rows {
        data.check_rows("evaluate", "rows", rows)?;
    }
    Ok(Evaluation::new(data, mlp, rows)?
        .run(mlp)?
        .into_iter()
        .map(|(scores, _)| scores)
        .collect())
}

/// Which jobs can share a stack: the same layer sizes, batch size, activations, loss and
/// `drop_last` (learning rate, momentum, weight decay, epochs and seed may differ).
pub(crate) type StackKey = (Vec<usize>, usize, (Activation, Activation), Loss, bool);

pub(crate) fn stack_key(config: &TrainConfig) -> StackKey {
    (
        config.hidden.clone(),
        config.batch_size,
        (config.hidden_activation, config.output_activation),
        config.loss,
        config.drop_last,
    )
}

/// The most models of `config`'s shape one stacked run may hold on this adapter: every
/// stacked buffer (parameters, activations, row indices, outputs) within the binding
/// limit, and the models within the grid's z limit. `rows` is the longest row list.
pub(crate) fn max_stacked_models(data: &GpuDataset, config: &TrainConfig, rows: usize) -> usize {
    let gpu = &data.gpu;
    let sizes = layer_sizes(data, config);
    let align = gpu.binding_alignment();
    let params: usize = sizes
        .windows(2)
        .map(|p| (p[0] * p[1]).div_ceil(align) * align + p[1].div_ceil(align) * align)
        .sum();
    let widest = sizes.iter().copied().max().unwrap_or(1);
    let per_model = [params, config.batch_size * widest, rows, rows * data.n_outputs]
        .into_iter()
        .max()
        .unwrap_or(1)
        .max(1) as u64
        * 4;
    let by_binding = (gpu.max_binding_bytes() / per_model).max(1) as usize;
    by_binding.min(gpu.max_workgroups_per_dim().max(1) as usize)
}

/// One job of [`fit_batched`]: the rows a model trains on and how.
#[derive(Clone, Debug)]
pub struct FitJob<'a> {
    /// Training rows.
    pub train_rows: &'a [usize],
    /// Its settings (`early_stopping` must be `None`: there are no validation rows).
    pub config: TrainConfig,
}

/// Trains every job's model, the models that share layer sizes, batch size, activations,
/// loss and `drop_last` together as one stacked job on the GPU (split when the stack
/// would pass the adapter's limits). Each returned model (in job order) is the one
/// [`fit`] would return for the same rows and config, to float rounding: the same kernels
/// run per model, with the same shuffles and the same initialisation.
///
/// ```no_run
/// use wgpu_mlp::{Dataset, FitJob, Gpu, GpuDataset, Sgd, TrainConfig, fit_batched};
/// # fn main() -> wgpu_mlp::Result<()> {
/// let gpu = Gpu::new()?;
/// let xor = Dataset::classification("xor", vec![0., 0., 0., 1., 1., 0., 1., 1.], 2, vec![0, 1, 1, 0], 2)?;
/// let data = GpuDataset::upload(&gpu, &xor)?;
/// let rows = [0, 1, 2, 3];
/// let jobs: Vec<FitJob> = [0.1, 0.5, 1.0]
///     .iter()
///     .map(|&lr| {
///         let mut config = TrainConfig { batch_size: 4, ..TrainConfig::default() };
///         config.optimizer = Sgd::new(lr).momentum(0.9).into();
///         FitJob { train_rows: &rows, config }
///     })
///     .collect();
/// let models = fit_batched(&data, &jobs, &mut |_, _| {})?;
/// assert_eq!(models.len(), 3);
/// # Ok(())
/// # }
/// ```
pub fn fit_batched(
    data: &GpuDataset,
    jobs: &[FitJob],
    on_epoch: &mut dyn FnMut(usize, &EpochMetrics),
) -> Result<Vec<Model>> {
    const OP: &str = "fit_batched";
    for job in jobs {
        check_fit(OP, data, job.train_rows, None, &job.config)?;
    }
    let mut models: Vec<Option<Model>> = jobs.iter().map(|_| None).collect();
    for run in stack_groups(data, jobs.iter().map(|job| (&job.config, job.train_rows.len())), 0) {
        let group = run.jobs;
        let lanes: Vec<Lane> = group
            .iter()
            .map(|&i| Lane {
                rows: jobs[i].train_rows,
                config: &jobs[i].config,
            })
            .collect();
        let stack = train_stack(data, &lanes, &mut |m, metrics| on_epoch(group[m], metrics))?;
        let params = stack.mlp.stacked_parameters()?;
        let velocities = stack.mlp.stacked_velocities()?;
        let second_moments = stack.mlp.stacked_second_moments()?;
        let optimizer_steps = stack.mlp.graph().optimizer_steps()?;
        let histories = stack.histories;
        for (m, ((params, velocities), history)) in params.into_iter().zip(velocities).zip(histories).enumerate() {
            let config = &jobs[group[m]].config;
            let mut mlp =
                mlp_builder(data, config)
                    .parameters(params)
                    .build(&data.gpu, config.batch_size, config.optimizer)?;
            mlp.set_velocities(&velocities)?;
            if config.optimizer.needs_second_moment()
                && let Some(moments) = &second_moments
            {
                mlp.set_second_moments(&moments[m])?;
                mlp.graph().set_optimizer_steps(optimizer_steps[m])?;
            }
            let n_batches = batches_per_epoch(jobs[group[m]].train_rows.len(), config.batch_size, config.drop_last);
            mlp.set_steps_taken((n_batches * history.len()) as u64);
            models[group[m]] = Some(Model {
                mlp,
                epochs_done: history.len(),
                history,
                seed: config.seed,
            });
        }
    }
    models
        .into_iter()
        .map(|m| m.ok_or_else(|| Error::invalid(OP, "jobs", "every job trained", "a job left out")))
        .collect()
}

/// One stacked run planned by [`stack_groups`].
pub(crate) struct StackRun {
    /// Job numbers, in order.
    pub(crate) jobs: Vec<usize>,
    /// Jobs in the whole group this run is part of.
    pub(crate) group_size: usize,
    /// The most models one run of this group may hold.
    pub(crate) limit: usize,
}

/// Groups jobs (their configs and row counts) into stacks: jobs with the same
/// [`stack_key`], in order of first appearance, each group cut into runs of at most
/// [`max_stacked_models`] (and at most `cap` when it is not 0).
pub(crate) fn stack_groups<'a>(
    data: &GpuDataset,
    jobs: impl Iterator<Item = (&'a TrainConfig, usize)>,
    cap: usize,
) -> Vec<StackRun> {
    let jobs: Vec<(&TrainConfig, usize)> = jobs.collect();
    let mut keys: Vec<StackKey> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, (config, _)) in jobs.iter().enumerate() {
        let key = stack_key(config);
        match keys.iter().position(|k| *k == key) {
            Some(g) => groups[g].push(i),
            None => {
                keys.push(key);
                groups.push(vec![i]);
            }
        }
    }
    let mut runs = Vec::new();
    for group in groups {
        let longest = group.iter().map(|&i| jobs[i].1).max().unwrap_or(1);
        let mut limit = max_stacked_models(data, jobs[group[0]].0, longest);
        if cap > 0 {
            limit = limit.min(cap);
        }
        let limit = limit.max(1);
        runs.extend(group.chunks(limit).map(|run| StackRun {
            jobs: run.to_vec(),
            group_size: group.len(),
            limit,
        }));
    }
    runs
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
        Ok(Evaluation::new(data, &self.mlp, &[rows])?.run_one(&self.mlp)?.0)
    }

    /// The network's outputs for `rows` of a data set already on the GPU, (rows, outputs)
    /// row-major.
    pub fn predict_rows(&self, data: &GpuDataset, rows: &[usize]) -> Result<Vec<f32>> {
        data.check_rows("Model::predict_rows", "rows", rows)?;
        self.check_data("Model::predict_rows", data)?;
        Ok(Evaluation::new(data, &self.mlp, &[rows])?.run_one(&self.mlp)?.1)
    }

    /// The network's outputs for new rows `x` (any number of rows, row-major, `inputs` values
    /// each, scaled as the training data was), (rows, outputs) row-major. Uploaded once and
    /// run in batches of the model's batch size.
    ///
    /// ```no_run
    /// # fn demo(model: &wgpu_mlp::Model) -> wgpu_mlp::Result<()> {
    /// let x = [0.1, -0.3, 0.7, 0.0, 0.5, 0.2]; // two rows of three features
    /// let outputs = model.predict(&x)?;          // two rows of the model's outputs
    /// let classes = model.predict_class(&x)?;    // the largest output of each row
    /// # Ok(()) }
    /// ```
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>> {
        let data = self.upload_rows("Model::predict", x)?;
        let rows: Vec<usize> = (0..data.len()).collect();
        self.predict_rows(&data, &rows)
    }

    /// The class of each row of `x` (see [`Model::predict`]): the index of its largest
    /// output (the first of equals), for a model trained on one-hot class targets.
    pub fn predict_class(&self, x: &[f32]) -> Result<Vec<usize>> {
        let outputs = self.predict(x)?;
        let width = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        Ok(outputs
            .chunks(width)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |best, (i, &v)| if v > best.1 { (i, v) } else { best },
                    )
                    .0
            })
            .collect())
    }

    /// `x` as a data set on the model's GPU (no targets), after checking its shape.
    fn upload_rows(&self, op: &'static str, x: &[f32]) -> Result<GpuDataset> {
        let sizes = self.mlp.sizes();
        let (inputs, outputs) = (sizes[0], sizes[sizes.len() - 1]);
        if x.is_empty() || !x.len().is_multiple_of(inputs) {
            return Err(Error::shape(
                op,
                "x",
                format!("rows of {inputs} features (a non-empty multiple of {inputs} values)"),
                format!("{} values", x.len()),
            ));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(op, format!("x[{i}]"), "a finite value", x[i]));
        }
        let rows = x.len() / inputs;
        let data = crate::data::Dataset {
            name: "rows to predict".into(),
            features: x.to_vec(),
            n_features: inputs,
            targets: vec![0.0; rows * outputs],
            n_outputs: outputs,
            labels: None,
        };
        GpuDataset::upload(self.mlp.graph().gpu(), &data)
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
