//! Batches of fixed rows gathered on the device, and evaluation over fixed rows.

use crate::device::dispatch::Dispatch;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::graph::Record;
use crate::mlp::Mlp;
use crate::ops::{self, ModelPlan};

use super::*;

/// The batches of fixed rows, for one model or a stack of them (one list of rows each):
/// one index buffer, and per batch a gather dispatch (built once) that fills every model's
/// inputs, targets and loss weights, for a stack one that sets which models train on it
/// (from each model's planned steps), and a copy that keeps each model's batch loss, so one
/// read-back after the submit gives them all.
pub(super) struct Batches {
    /// (models × longest row list) row indices, rewritten with each epoch's shuffles.
    indices: Tensor,
    longest: usize,
    /// Per model: its row count and how many batches it trains this epoch (u32 pairs).
    plan: Tensor,
    gathers: Vec<Dispatch>,
    /// Per batch, for a stack: which models train on it (from `plan`).
    to_step: Vec<Dispatch>,
    collect_losses: Vec<Dispatch>,
    losses: Tensor,
    /// Per model, the rows in each of its batches (0 past its last).
    pub(super) counts: Vec<Vec<usize>>,
}

impl Batches {
    pub(super) fn new(data: &GpuDataset, mlp: &Mlp, rows: &[&[usize]], drop_last: bool) -> Result<Self> {
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
        let plan_words = models * size_of::<ModelPlan>() / 4;
        let plan = Tensor::from_u32(gpu, &[plan_words], &vec![0; plan_words])?;
        let graph = mlp.graph();
        let (x, t) = (graph.tensor(mlp.input_node())?, graph.tensor(mlp.target_node())?);
        let operands = ops::Gather {
            all_x: &data.features,
            all_t: &data.targets,
            indices: &indices,
            plan: &plan,
            x,
            t,
            row_weights: graph.row_weights(),
        };
        let gathers = (0..n_steps)
            .map(|j| ops::gather_batch(gpu, &operands, j * batch))
            .collect::<Result<Vec<_>>>()?;
        // A single model trains on every batch of its epoch: its flag stays 1.
        let to_step = match models {
            1 => Vec::new(),
            _ => (0..n_steps)
                .map(|j| ops::models_to_step(gpu, &plan, graph.active(), j))
                .collect::<Result<Vec<_>>>()?,
        };
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
            to_step,
            collect_losses,
            losses,
            counts,
        };
        batches.set_rows(rows, &vec![true; models])?;
        Ok(batches)
    }

    /// Batches per epoch of the model with the most.
    pub(super) fn steps(&self) -> usize {
        self.gathers.len()
    }

    /// Writes each model's row order, and which models train this epoch.
    pub(super) fn set_rows(&self, rows: &[&[usize]], training: &[bool]) -> Result<()> {
        let mut indices = vec![0u32; rows.len() * self.longest];
        let mut plan = Vec::with_capacity(rows.len());
        for (m, rows) in rows.iter().enumerate() {
            for (slot, &row) in indices[m * self.longest..].iter_mut().zip(rows.iter()) {
                *slot = row as u32;
            }
            let steps = if training[m] { self.counts[m].len() } else { 0 };
            plan.push(ModelPlan {
                rows: rows.len() as u32,
                steps: steps as u32,
            });
        }
        self.indices.write_u32(&indices)?;
        self.plan.write_u32(bytemuck::cast_slice(&plan))
    }

    /// Records batch `j`: its gather, `graph`'s step (forward only, or with backward and
    /// update), then `after` (e.g. collecting the outputs), then keeping its losses.
    pub(super) fn record(
        &self,
        j: usize,
        pass: &mut wgpu::ComputePass<'_>,
        graph: &crate::graph::Graph,
        train: bool,
        after: Option<&Dispatch>,
    ) {
        self.gathers[j].record(pass);
        if let Some(to_step) = self.to_step.get(j) {
            to_step.record(pass);
        }
        let record = Record {
            backward: train,
            update: train,
            loss: true, // every batch's loss goes into the epoch's
        };
        graph.record(pass, record);
        if let Some(dispatch) = after {
            dispatch.record(pass);
        }
        self.collect_losses[j].record(pass);
    }

    /// Per model, every batch's loss from the last submit and their mean over samples (each
    /// batch's loss is already the mean over its own rows).
    pub(super) async fn read_losses(&self) -> Result<Vec<(Vec<f32>, f64)>> {
        let all = self.losses.to_vec_async().await?;
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
pub(super) struct Evaluation {
    batches: Batches,
    collect_outputs: Vec<Dispatch>,
    outputs: Tensor,
    rows: Vec<usize>,
    labels: Vec<Option<Vec<usize>>>,
}

impl Evaluation {
    pub(super) fn new(data: &GpuDataset, mlp: &Mlp, rows: &[&[usize]]) -> Result<Self> {
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
    pub(super) async fn run(&self, mlp: &Mlp) -> Result<Vec<(Scores, Vec<f32>)>> {
        let graph = mlp.graph();
        graph.gpu().record_and_submit("evaluate", |pass| {
            for (j, collect) in self.collect_outputs.iter().enumerate() {
                self.batches.record(j, pass, graph, false, Some(collect));
            }
        })?;
        let losses = self.batches.read_losses().await?;
        let all = self.outputs.to_vec_async().await?;
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
    pub(super) async fn run_one(&self, mlp: &Mlp) -> Result<(Scores, Vec<f32>)> {
        self.run(mlp)
            .await?
            .pop()
            .ok_or_else(|| Error::invalid("evaluate", "models", "one", 0))
    }
}

/// Fraction of rows of `outputs` whose largest entry is at the row's label.
pub(super) fn accuracy(outputs: &[f32], labels: &[usize]) -> f32 {
    let k = outputs.len() / labels.len().max(1);
    let correct = outputs
        .chunks(k)
        .zip(labels)
        .filter(|(row, label)| argmax(row) == **label)
        .count();
    correct as f32 / labels.len().max(1) as f32
}

pub(super) fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

/// Mini-batches an epoch over `rows` rows takes: a partial last one counts unless dropped.
pub(super) fn batches_per_epoch(rows: usize, batch: usize, drop_last: bool) -> usize {
    if drop_last { rows / batch } else { rows.div_ceil(batch) }
}
