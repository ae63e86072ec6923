//! Going on with a run: from a saved checkpoint (`resume`) or a model in memory
//! (`resume_model`, scikit-learn's `partial_fit` and `warm_start`).

use crate::device::gpu::block_on;
use crate::error::{Error, Result};
use crate::mlp::Mlp;

use super::fit::{check_fit, fit_one, layer_sizes};
use super::*;

/// Continues a run saved by [`Model::save`]: loads parameters, velocities and the epoch count,
/// then trains the remaining `config.epochs − epochs done` epochs. Each epoch's shuffle is
/// seeded from `config.seed` and the epoch number, so a resumed run gives the same bits as
/// one that never stopped. A [`Schedule::ReduceOnPlateau`] carries on from the rate the run
/// had reached, its patience count started afresh (the other schedules need no state).
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
    let (mlp, metadata) = Mlp::load_with(&data.gpu, path, Some(config.batch_size))?;
    let number = |key: &str| -> Result<u64> {
        metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| crate::checkpoint::checkpoint_error(path, format!("no trainer {key:?} in the metadata")))
    };
    let (epochs_done, seed) = (number("epoch")? as usize, number("seed")?);
    check_same_run(OP, &mlp, seed, data, config)?;
    let lane = Lane::watched(train_rows, config);
    block_on(OP, fit_one(mlp, epochs_done, data, lane, validation_rows, on_epoch))
}

/// Continues training `model` in memory, as [`resume`] continues a saved run: epochs
/// `model.epochs_done() + 1 ..= config.epochs` on `train_rows`, the optimizer's state
/// carried on (scikit-learn's `partial_fit` and `warm_start`; give one more epoch than done
/// for one pass). `config` must describe the model's network, seed and optimizer (its batch
/// size may differ). The scaler, class names, schema and preprocessing stay the model's;
/// [`Model::history`] holds the new epochs.
///
/// ```no_run
/// # fn demo(data: &wgpu_mlp::GpuDataset, rows: &[usize]) -> wgpu_mlp::Result<()> {
/// use wgpu_mlp::{TrainConfig, fit, train::resume_model};
/// let config = TrainConfig { epochs: 5, early_stopping: None, ..TrainConfig::default() };
/// let model = fit(data, rows, None, &config)?;
/// let model = resume_model(model, data, rows, None, &TrainConfig { epochs: 6, ..config }, &mut |_| {})?;
/// assert_eq!(model.epochs_done(), 6);
/// # Ok(()) }
/// ```
pub fn resume_model(
    model: Model,
    data: &GpuDataset,
    train_rows: &[usize],
    validation_rows: Option<&[usize]>,
    config: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochMetrics),
) -> Result<Model> {
    const OP: &str = "resume_model";
    check_fit(OP, data, train_rows, validation_rows, config)?;
    let Model {
        mlp,
        epochs_done,
        seed,
        scaler,
        class_names,
        schema,
        preprocessor,
        target_scaler,
        info,
        history: _,
    } = model;
    let mlp = if mlp.batch_size() == config.batch_size {
        mlp
    } else {
        let file = mlp.checkpoint_file(&[])?;
        Mlp::from_checkpoint(&data.gpu, &file, std::path::Path::new("model"), Some(config.batch_size))?
    };
    check_same_run(OP, &mlp, seed, data, config)?;
    let lane = Lane::watched(train_rows, config);
    let resumed = block_on(OP, fit_one(mlp, epochs_done, data, lane, validation_rows, on_epoch))?;
    Ok(Model {
        scaler,
        class_names,
        schema,
        preprocessor,
        target_scaler,
        info,
        ..resumed
    })
}

/// Refuses to go on with a network `config` does not describe (seed, loss, layers,
/// activations, optimizer).
fn check_same_run(op: &'static str, mlp: &Mlp, seed: u64, data: &GpuDataset, config: &TrainConfig) -> Result<()> {
    if seed != config.seed {
        return Err(Error::invalid(
            op,
            "config.seed",
            format!("the model's seed {seed}"),
            config.seed,
        ));
    }
    if mlp.loss_function() != config.loss {
        return Err(Error::invalid(
            op,
            "config.loss",
            format!("the model's {}", mlp.loss_function().name()),
            config.loss.name(),
        ));
    }
    let sizes = layer_sizes(data, config);
    let activations = (config.hidden_activation, config.output_activation);
    if mlp.sizes() != sizes || mlp.activations() != activations {
        return Err(Error::shape(
            op,
            "model",
            format!("layers {sizes:?} with activations (hidden, output) {activations:?}"),
            format!(
                "layers {:?} with activations (hidden, output) {:?}",
                mlp.sizes(),
                mlp.activations()
            ),
        ));
    }
    // A schedule leaves the last epoch's rate in the model; the schedule gives it again.
    let saved = mlp.graph().optimizer().with_lr(config.optimizer.lr());
    if saved != config.optimizer {
        return Err(Error::invalid(
            op,
            "config.optimizer",
            format!("{saved:?}"),
            format!("{:?}", config.optimizer),
        ));
    }
    Ok(())
}
