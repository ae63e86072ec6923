//! Scoring the grid: every point's fold scores, trained model by model or stacked, and the
//! ranking.

use super::split::Fold;
use super::{CvJob, CvProgress, CvResult, Hyperparams, Scoring};
use crate::error::Result;
use crate::train::{GpuDataset, Lane, TrainConfig, evaluate_stack, fit_fold, hold_out, stack_groups, train_stack};

/// Ranks `results` by mean score (1 the best); ties keep grid order (the earlier point wins,
/// as in scikit-learn). The indices from best to worst.
pub(super) fn rank(results: &mut [CvResult], scoring: Scoring) -> Vec<usize> {
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (results[a].mean, results[b].mean);
        match scoring {
            Scoring::Accuracy => y.total_cmp(&x),
            Scoring::Loss => x.total_cmp(&y),
        }
        .then(a.cmp(&b))
    });
    for (rank, &i) in order.iter().enumerate() {
        results[i].rank = rank + 1;
    }
    order
}

/// The fold scores of every grid point as the search trains them: `fold_scores[p][k]` for
/// point p with fold k left out, `fit_times[p][k]` the seconds that model took (its share
/// of a stack's), and the stacked runs.
pub(super) struct Scored {
    pub fold_scores: Vec<Vec<f32>>,
    pub fit_times: Vec<Vec<f64>>,
    pub jobs: Vec<CvJob>,
    pub scoring: Scoring,
}

impl Scored {
    pub(super) fn new(points: usize, folds: usize, scoring: Scoring) -> Self {
        Scored {
            fold_scores: vec![vec![0.0; folds]; points],
            fit_times: vec![vec![0.0; folds]; points],
            jobs: Vec::new(),
            scoring,
        }
    }

    /// One row per grid point: its fold scores, their mean and spread and its mean fit time
    /// (ranked later); and the stacked runs.
    pub(super) fn into_results(self, points: &[Hyperparams]) -> (Vec<CvResult>, Vec<CvJob>) {
        let mut results = Vec::with_capacity(points.len());
        for ((point, fold_scores), fit_time) in points.iter().zip(self.fold_scores).zip(self.fit_times) {
            let n = fold_scores.len() as f64;
            let fit_time: f64 = fit_time.iter().sum();
            let mean = fold_scores.iter().map(|&s| s as f64).sum::<f64>() / n;
            let var = fold_scores.iter().map(|&s| (s as f64 - mean).powi(2)).sum::<f64>() / n;
            results.push(CvResult {
                params: point.clone(),
                fold_scores,
                mean: mean as f32,
                std: var.sqrt() as f32,
                rank: 0,
                mean_fit_time: fit_time / n,
            });
        }
        (results, self.jobs)
    }

    fn score(&self, scores: crate::train::Scores) -> f32 {
        match self.scoring {
            Scoring::Accuracy => scores.accuracy.unwrap_or(0.0),
            Scoring::Loss => scores.loss,
        }
    }

    /// Every (point, fold) model of `pairs` trained and scored on its own.
    pub(super) fn sequential(
        &mut self,
        data: &GpuDataset,
        (folds, configs): (&[Fold], &[TrainConfig]),
        pairs: &[(usize, usize)],
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<()> {
        for &(p, k) in pairs {
            let started = std::time::Instant::now();
            let model = fit_fold(data, &folds[k].train, &configs[p], &mut |metrics| {
                progress(CvProgress {
                    point: p,
                    fold: Some(k),
                    metrics,
                })
            })?;
            self.fit_times[p][k] = started.elapsed().as_secs_f64();
            self.fold_scores[p][k] = self.score(model.evaluate(data, &folds[k].validation)?);
        }
        Ok(())
    }

    /// The (point, fold) models of `pairs` stacked by shape, each stack one GPU job; a
    /// stack's time is shared among its models.
    pub(super) fn batched(
        &mut self,
        data: &GpuDataset,
        (folds, configs): (&[Fold], &[TrainConfig]),
        (pairs, max_models): (&[(usize, usize)], usize),
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<()> {
        let runs = stack_groups(
            data,
            pairs.iter().map(|&(p, k)| (&configs[p], folds[k].train.len())),
            max_models,
        );
        for run in runs {
            let models: Vec<(usize, usize)> = run.jobs.iter().map(|&i| pairs[i]).collect();
            // With early stopping each model holds out part of its fold's training rows, as
            // it would alone, and stops on its own.
            let parts = models
                .iter()
                .map(|&(p, k)| hold_out(data, &folds[k].train, None, &configs[p]))
                .collect::<Result<Vec<_>>>()?;
            let lanes: Vec<Lane> = models
                .iter()
                .zip(&parts)
                .map(|(&(p, _), (train, _))| Lane::new(train, &configs[p]))
                .collect();
            let watched: Vec<&[usize]> = parts.iter().filter_map(|(_, held)| held.as_deref()).collect();
            let validation = if watched.len() == lanes.len() {
                watched
            } else {
                Vec::new()
            };
            let started = std::time::Instant::now();
            let stack = train_stack(data, &lanes, &validation, &mut |m, metrics| {
                progress(CvProgress {
                    point: models[m].0,
                    fold: Some(models[m].1),
                    metrics,
                })
            })?;
            let share = started.elapsed().as_secs_f64() / models.len() as f64;
            models.iter().for_each(|&(p, k)| self.fit_times[p][k] = share);
            let held_out: Vec<&[usize]> = models.iter().map(|&(_, k)| folds[k].validation.as_slice()).collect();
            for (&(p, k), scores) in models.iter().zip(evaluate_stack(data, &stack.mlp, &held_out)?) {
                self.fold_scores[p][k] = self.score(scores);
            }
            self.jobs.push(CvJob {
                models,
                group_size: run.group_size,
                limit: run.limit,
            });
        }
        Ok(())
    }
}
