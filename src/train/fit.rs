//! Training one model or a stack: the epochs, early stopping, the divergence guard, resume.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::device::gpu::block_on;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::mlp::{Mlp, MlpBuilder};
use crate::optim::Optimizer;

use super::batches::{Batches, Evaluation};
use super::guards::{EarlyStop, Schedules, restore_best, roll_back, watch_early_stops};
use super::stall::StallWatch;
use super::*;

/// Trains a new model on `train_rows` of `data`, scoring `validation_rows` after each
/// epoch ([`fit_with_progress`] shows each epoch's metrics as it ends).
///
/// Each epoch is one submit: for every mini-batch, a gather kernel copies the shuffled rows
/// into the model's inputs, then forward, backward and update follow. The last, partial
/// batch trains with its padding rows weighted 0, unless `drop_last`. With
/// `config.early_stopping` and no validation rows, `config.validation_fraction` of the
/// training rows is held out to watch (stratified for classes, drawn from `config.seed`).
///
/// ```no_run
/// use wgpu_mlp::{Dataset, Gpu, GpuDataset, TrainConfig, fit};
/// # fn main() -> wgpu_mlp::Result<()> {
/// let gpu = Gpu::new()?;
/// let data = Dataset::from_csv_path("data/digits.csv.gz", &Default::default())?;
/// let data = GpuDataset::upload(&gpu, &data)?;
/// let rows: Vec<usize> = (0..data.len()).collect();
/// // Adam, ReLU, cross-entropy, early stopping on a 10% hold-out: no tuning
/// let model = fit(&data, &rows, None, &TrainConfig::classifier())?;
/// println!("{} epochs", model.epochs_done());
/// # Ok(()) }
/// ```
pub fn fit(
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
) -> Result<Model> {
    fit_with_progress(data, train_rows, validation_rows, config, &mut |_| {})
}

/// [`fit`], with `on_epoch` seeing every epoch's metrics as it ends (for progress bars).
///
/// ```no_run
/// # fn demo(data: &wgpu_mlp::GpuDataset, rows: &[usize]) -> wgpu_mlp::Result<()> {
/// use wgpu_mlp::{TrainConfig, train::fit_with_progress};
/// let model = fit_with_progress(data, rows, None, &TrainConfig::default(), &mut |m| {
///     eprintln!("epoch {}: loss {:.4}", m.epoch, m.train_loss)
/// })?;
/// # Ok(()) }
/// ```
pub fn fit_with_progress(
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    let training = fit_with_progress_async(data, train_rows, validation_rows, config, on_epoch);
    block_on("fit", training)
}

/// [`fit`] for async code: the way to train in a browser, where nothing may block (each
/// epoch's losses are awaited, not waited for). The same model, to the bit.
///
/// ```no_run
/// # async fn demo(csv: &[u8]) -> wgpu_mlp::Result<()> {
/// use wgpu_mlp::{Dataset, Gpu, GpuDataset, TrainConfig, train::fit_async};
/// let gpu = Gpu::new_async().await?;
/// let data = Dataset::from_csv_bytes(csv, "digits.csv", &Default::default())?;
/// let data = GpuDataset::upload(&gpu, &data)?;
/// let rows: Vec<usize> = (0..data.len()).collect();
/// let model = fit_async(&data, &rows, None, &TrainConfig::classifier()).await?;
/// println!("{} epochs", model.epochs_done());
/// # Ok(()) }
/// ```
pub async fn fit_async(
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
) -> Result<Model> {
    fit_with_progress_async(data, train_rows, validation_rows, config, &mut |_| {}).await
}

/// [`fit_with_progress`] for async code (see [`fit_async`]): `on_epoch` sees every epoch's
/// metrics as it ends, e.g. to draw a live loss curve in a page.
pub async fn fit_with_progress_async(
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    fit_new(data, Lane::watched(train_rows, config), validation_rows, on_epoch).await
}

/// [`fit_with_progress`] for a cross-validation fold: a model that stalls is scored as it
/// is (badly) instead of failing the search, as its stacked twin would be.
pub(crate) async fn fit_fold(
    data: &GpuDataset,
    train_rows: &[usize],
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    fit_new(data, Lane::new(train_rows, config), None, on_epoch).await
}

/// A new network for `lane`'s settings, trained on its rows.
async fn fit_new(
    data: &GpuDataset,
    lane: Lane<'_>,
    validation_rows: Option<&[usize]>,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    let config = lane.config;
    check_fit("fit", data, lane.rows, validation_rows, config)?;
    let build = || mlp_builder(data, config).build(&data.gpu, config.batch_size, config.optimizer);
    let mlp = tuned(&data.gpu, build).await?;
    fit_one(mlp, 0, data, lane, validation_rows, on_epoch).await
}

/// The rows to train on and, where early stopping has no validation rows to watch, the
/// `validation_fraction` held out for it (at least one row each side; stratified for classes).
pub(crate) fn hold_out(
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
) -> Result<(Vec<usize>, Option<Vec<usize>>)> {
    if !config.holds_rows_out() || validation_rows.is_some() {
        return Ok((train_rows.to_vec(), None));
    }
    if train_rows.len() < 2 {
        return Err(Error::invalid(
            "fit",
            "training rows for early stopping",
            "at least 2 (some are held out to watch)",
            train_rows.len(),
        ));
    }
    let fraction = config.validation_fraction;
    let rows = |positions: &[usize]| -> Vec<usize> { positions.iter().map(|&p| train_rows[p]).collect() };
    // Stratified where every part gets rows (a class too small to spare one rounds to none:
    // on tiny data that can leave the hold-out empty), else a plain shuffled split.
    let stratified = data.labels.as_ref().and_then(|labels| {
        let subset: Vec<usize> = train_rows.iter().map(|&r| labels[r]).collect();
        crate::data::stratified_split(&subset, fraction, config.seed).ok()
    });
    let (train, held) = match stratified {
        Some((train, held)) => (rows(&train), rows(&held)),
        None => {
            let order = crate::data::shuffled_indices(train_rows.len(), config.seed);
            let n_held = ((train_rows.len() as f64 * fraction).round() as usize).clamp(1, train_rows.len() - 1);
            (rows(&order[n_held..]), rows(&order[..n_held]))
        }
    };
    Ok((train, Some(held)))
}

/// Epochs `epochs_done + 1 ..= config.epochs` of training one model (holding out its own
/// validation rows for early stopping when it is given none).
pub(super) async fn fit_one(
    mlp: Mlp,
    epochs_done: usize,
    data: &GpuDataset,
    lane: Lane<'_>,
    validation_rows: Option<&[usize]>,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    let config = lane.config;
    let (train_rows, held_out) = hold_out(data, lane.rows, validation_rows, config)?;
    let validation_rows = validation_rows.or(held_out.as_deref());
    let lane = Lane {
        rows: &train_rows,
        ..lane
    };
    let validation: Vec<&[usize]> = validation_rows.into_iter().collect();
    let mut stack = train_epochs(mlp, epochs_done, data, &[lane], &validation, &mut |_, metrics| {
        on_epoch(metrics)
    })
    .await?;
    let history = stack.histories.pop().unwrap_or_default();
    Ok(Model {
        mlp: stack.mlp,
        epochs_done: epochs_done + history.len(),
        history,
        seed: config.seed,
        scaler: None,
        class_names: None,
        schema: None,
        preprocessor: None,
        target_scaler: None,
        info: Default::default(),
    })
}

/// The network `fit` trains for `config` on `data`: its layer sizes, seed and activations.
pub(super) fn mlp_builder(data: &GpuDataset, config: &TrainConfig) -> MlpBuilder {
    Mlp::builder(&layer_sizes(data, config))
        .seed(config.seed)
        .init(config.init)
        .hidden_activation(config.hidden_activation)
        .output_activation(config.output_activation)
        .loss(config.loss)
}

/// Inputs from the data, hidden layers from the config, outputs from the data.
pub(super) fn layer_sizes(data: &GpuDataset, config: &TrainConfig) -> Vec<usize> {
    let mut sizes = vec![data.n_features];
    sizes.extend_from_slice(&config.hidden);
    sizes.push(data.n_outputs);
    sizes
}

pub(super) fn check_fit(
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
    Ok(())
}

/// The shuffle seed of one epoch: a function of the run's seed and the epoch alone, so a
/// resumed run needs no generator state.
pub(super) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    (seed ^ 0x5EED_0FE9_0C00).wrapping_add((epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What a stack of models trained together learned: the stacked network and, per model,
/// the metrics of the epochs it trained.
pub(crate) struct TrainedStack {
    pub(crate) mlp: Mlp,
    pub(crate) histories: Vec<Vec<EpochMetrics>>,
}

/// Epochs `epochs_done + 1 ..= max epochs` of training `mlp`, a single model or a stack with
/// one lane per model. Each epoch is one submit for all models: each draws its own shuffle
/// of its own rows (seeded by its seed and the epoch), and a model whose epochs are over, or
/// whose rows ran out before the longest lane's, or that stopped early, sits still (its
/// updates masked) while the others go on. `validation_rows`: none, or one list per lane,
/// scored after every epoch (each lane's early stopping and plateau schedule watch its own).
pub(super) async fn train_epochs(
    mut mlp: Mlp,
    epochs_done: usize,
    data: &GpuDataset,
    lanes: &[Lane<'_>],
    validation_rows: &[&[usize]],
    on_epoch: &mut dyn FnMut(usize, &EpochMetrics),
) -> Result<TrainedStack> {
    let gpu = &data.gpu;
    let rows: Vec<&[usize]> = lanes.iter().map(|lane| lane.rows).collect();
    let drop_last = lanes[0].config.drop_last;
    let batches = Batches::new(data, &mlp, &rows, drop_last)?;
    let validation = match validation_rows {
        [] => None,
        rows => Some(Evaluation::new(data, &mlp, rows)?),
    };

    // The parameters as they were before the running epoch, for the divergence guard.
    let last_good = Tensor::zeros(gpu, mlp.graph().flat_params().shape())?;
    let max_epochs = lanes.iter().map(|lane| lane.config.epochs).max().unwrap_or(0);
    let mut histories: Vec<Vec<EpochMetrics>> = lanes.iter().map(|_| Vec::new()).collect();
    let mut early_stops: Vec<EarlyStop> = lanes.iter().map(|l| EarlyStop::new(l.config)).collect();
    let mut stopped = vec![false; lanes.len()];
    let mut orders: Vec<Vec<usize>> = rows.iter().map(|r| r.to_vec()).collect();
    let mut schedules = Schedules::new(lanes, epochs_done, &mlp);
    let mut stall = StallWatch::new(lanes.len() == 1 && lanes[0].watch_stalls);
    for epoch in epochs_done + 1..=max_epochs {
        let training: Vec<bool> = (lanes.iter().zip(&stopped))
            .map(|(l, &s)| !s && epoch <= l.config.epochs)
            .collect();
        if !training.contains(&true) {
            break;
        }
        let rates = schedules.apply(epoch, &mut mlp)?;
        shuffle_rows(&mut orders, lanes, &training, epoch);
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
        let losses = batches.read_losses().await?;
        let diverged = (0..lanes.len()).filter(|&m| training[m]).find_map(|m| {
            let batch = losses[m].0.iter().position(|l| !l.is_finite())?;
            Some((m, batch))
        });
        if let Some((m, batch)) = diverged {
            return Err(roll_back(&mlp, &last_good, m, (epoch, batch, losses[m].0[batch])).await);
        }
        if lanes.len() == 1 {
            mlp.add_steps(batches.counts[0].len() as u64);
        }
        let val: Vec<Option<Scores>> = match &validation {
            Some(v) => v.run(&mlp).await?.into_iter().map(|(scores, _)| Some(scores)).collect(),
            None => vec![None; lanes.len()],
        };
        for (m, (_, train_loss)) in losses.iter().enumerate().filter(|&(m, _)| training[m]) {
            schedules.states[m].observe(val[m].map_or(*train_loss as f32, |s| s.loss));
            let metrics = EpochMetrics {
                epoch,
                train_loss: *train_loss as f32,
                lr: rates[m],
                val_loss: val[m].map(|s| s.loss),
                val_accuracy: val[m].and_then(|s| s.accuracy),
            };
            on_epoch(m, &metrics);
            histories[m].push(metrics);
        }
        stall
            .observe((epoch, losses[0].1 as f32), &mlp, data, lanes[0].rows, lanes[0].config)
            .await?;
        let watched = watched_losses(lanes, &training, &val, &losses);
        for (m, stop) in watch_early_stops(&mut early_stops, &watched, &mlp)
            .await?
            .into_iter()
            .enumerate()
        {
            stopped[m] |= stop;
        }
    }
    restore_best(early_stops, &mlp).await?;
    Ok(TrainedStack { mlp, histories })
}

/// The loss each lane's early stopping watches after an epoch (None for a lane not training):
/// its validation loss or its epoch's mean training loss, as its config's monitor says.
fn watched_losses(
    lanes: &[Lane],
    training: &[bool],
    val: &[Option<Scores>],
    losses: &[(Vec<f32>, f64)],
) -> Vec<Option<f32>> {
    (0..lanes.len())
        .map(|m| match lanes[m].config.monitor {
            _ if !training[m] => None,
            Monitor::ValidationLoss => val[m].map(|s| s.loss),
            Monitor::TrainingLoss => Some(losses[m].1 as f32),
        })
        .collect()
}

/// Each training lane's rows in this epoch's order (seeded by its seed and the epoch alone,
/// so a resumed run needs no generator state).
fn shuffle_rows(orders: &mut [Vec<usize>], lanes: &[Lane], training: &[bool], epoch: usize) {
    for ((order, lane), &on) in orders.iter_mut().zip(lanes).zip(training) {
        if on {
            order.copy_from_slice(lane.rows);
            if !lane.config.shuffle {
                continue;
            }
            order.shuffle(&mut StdRng::seed_from_u64(epoch_seed(lane.config.seed, epoch)));
        }
    }
}

/// Trains the lanes of one group (same layer sizes, batch size, output activation and
/// `drop_last`) as one stacked run, each lane scored on its `validation_rows` (none, or one
/// list per lane) for its early stopping.
pub(crate) async fn train_stack(
    data: &GpuDataset,
    lanes: &[Lane<'_>],
    validation_rows: &[&[usize]],
    on_epoch: &mut dyn FnMut(usize, &EpochMetrics),
) -> Result<TrainedStack> {
    let first = lanes[0].config;
    let seeds: Vec<u64> = lanes.iter().map(|lane| lane.config.seed).collect();
    let optimizers: Vec<Optimizer> = lanes.iter().map(|lane| lane.config.optimizer).collect();
    let build = || mlp_builder(data, first).build_stacked(&data.gpu, first.batch_size, &seeds, &optimizers);
    let mlp = tuned(&data.gpu, build).await?;
    train_epochs(mlp, 0, data, lanes, validation_rows, on_epoch).await
}

/// `build`'s network; in a browser built again when its products' kernels were measured
/// meanwhile (`Gpu::tune_kernels_async`), so that it runs the measured ones. Natively kernels
/// are measured as they are chosen, and the first build stands.
async fn tuned(gpu: &Gpu, build: impl Fn() -> Result<Mlp>) -> Result<Mlp> {
    let mlp = build()?;
    if gpu.tune_kernels_async().await? == 0 {
        return Ok(mlp);
    }
    drop(mlp);
    build()
}

/// Scores each model of a trained stack on its own rows (`rows[m]` for model m).
pub(crate) async fn evaluate_stack(data: &GpuDataset, mlp: &Mlp, rows: &[&[usize]]) -> Result<Vec<(Scores, Vec<f32>)>> {
    for rows in rows {
        data.check_rows("evaluate", "rows", rows)?;
    }
    Evaluation::new(data, mlp, rows)?.run(mlp).await
}
