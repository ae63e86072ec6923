//! Many jobs as few stacked GPU runs: grouping, limits, and `fit_batched`.

use crate::error::{Error, Result};
use crate::ops::{Activation, Loss};

use super::batches::batches_per_epoch;
use super::fit::{check_fit, hold_out, layer_sizes, mlp_builder, train_stack};
use super::*;

/// Which jobs can share a stack: the same layer sizes, batch size, activations, loss,
/// `drop_last`, and early stopping on held-out rows or not (learning rate, momentum, weight decay, epochs,
/// patience and seed may differ).
pub(crate) type StackKey = (Vec<usize>, usize, (Activation, Activation), Loss, (bool, bool));

pub(crate) fn stack_key(config: &TrainConfig) -> StackKey {
    (
        config.hidden.clone(),
        config.batch_size,
        (config.hidden_activation, config.output_activation),
        config.loss,
        (config.drop_last, config.holds_rows_out()),
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
    /// Its settings; with `early_stopping`, `validation_fraction` of the rows is held out to
    /// watch, as [`fit`] does.
    pub config: TrainConfig,
}

/// Trains every job's model, the models that share layer sizes, batch size, activations,
/// loss and `drop_last` together as one stacked job on the GPU (split when the stack
/// would pass the adapter's limits). Each returned model (in job order) is the one
/// [`fit`] would return for the same rows and config, to float rounding: the same kernels
/// run per model, with the same shuffles and the same initialisation.
///
/// ```no_run
/// use wgpu_mlp::{Dataset, Gpu, GpuDataset, Sgd, TrainConfig, train::{FitJob, fit_batched}};
/// # fn main() -> wgpu_mlp::Result<()> {
/// let gpu = Gpu::new()?;
/// let xor = Dataset::classification("xor", vec![0., 0., 0., 1., 1., 0., 1., 1.], 2, vec![0, 1, 1, 0], 2)?;
/// let data = GpuDataset::upload(&gpu, &xor)?;
/// let rows = [0, 1, 2, 3];
/// let jobs: Vec<FitJob> = [0.1, 0.5, 1.0]
///     .iter()
///     .map(|&lr| {
///         let mut config = TrainConfig { batch_size: 4, ..TrainConfig::classic() };
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
    // As `fit`: with early stopping a job holds out `validation_fraction` of its rows.
    let parts = jobs
        .iter()
        .map(|job| hold_out(data, job.train_rows, None, &job.config))
        .collect::<Result<Vec<_>>>()?;
    let mut models: Vec<Option<Model>> = jobs.iter().map(|_| None).collect();
    for run in stack_groups(data, jobs.iter().map(|job| (&job.config, job.train_rows.len())), 0) {
        let group = run.jobs;
        let lanes: Vec<Lane> = group.iter().map(|&i| Lane::new(&parts[i].0, &jobs[i].config)).collect();
        // A group stops early in all its jobs or in none (`stack_key`).
        let validation: Vec<&[usize]> = group.iter().filter_map(|&i| parts[i].1.as_deref()).collect();
        let mut report = |m: usize, metrics: &EpochMetrics| on_epoch(group[m], metrics);
        let training = train_stack(data, &lanes, &validation, &mut report);
        let stack = crate::device::gpu::block_on("fit_batched", training)?;
        let params = stack.mlp.stacked_parameters()?;
        let velocities = stack.mlp.stacked_velocities()?;
        let second_moments = stack.mlp.stacked_second_moments()?;
        let grad_averages = stack.mlp.stacked_grad_averages()?;
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
            if config.optimizer.needs_grad_average()
                && let Some(averages) = &grad_averages
            {
                mlp.set_grad_averages(&averages[m])?;
            }
            let n_batches = batches_per_epoch(parts[group[m]].0.len(), config.batch_size, config.drop_last);
            mlp.set_steps_taken((n_batches * history.len()) as u64);
            models[group[m]] = Some(Model {
                mlp,
                epochs_done: history.len(),
                history,
                seed: config.seed,
                scaler: None,
                class_names: None,
                schema: None,
                preprocessor: None,
                target_scaler: None,
                info: Default::default(),
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
