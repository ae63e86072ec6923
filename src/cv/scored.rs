//! Scoring the grid: every point's fold scores, trained model by model or stacked, and the
//! ranking.

use super::failures::{FoldFailure, check_some_trained, failure_reason};
use super::split::Fold;
use super::{CvJob, CvProgress, CvResult, Hyperparams, Scoring};
use crate::error::{Error, Result};
use crate::train::{
    EpochMetrics, GpuDataset, Lane, TrainConfig, evaluate_stack, fit_fold, hold_out, stack_groups, train_stack,
};

/// Ranks `results` by mean score (1 the best); ties keep grid order (the earlier point wins,
/// as in scikit-learn). A NaN mean (a failed point) ranks after every number, whichever way
/// the scoring goes. The indices from best to worst.
pub(super) fn rank(results: &mut [CvResult], scoring: Scoring) -> Vec<usize> {
    let mut order: Vec<usize> = (0..results.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (results[a].mean, results[b].mean);
        let by_score = match (x.is_nan(), y.is_nan(), scoring) {
            (false, false, scoring) if scoring.higher_is_better() => y.total_cmp(&x),
            (false, false, _) => x.total_cmp(&y),
            (x_nan, y_nan, _) => x_nan.cmp(&y_nan),
        };
        by_score.then(a.cmp(&b))
    });
    for (rank, &i) in order.iter().enumerate() {
        results[i].rank = rank + 1;
    }
    order
}

/// The fold scores of every grid point as the search trains them: `fold_scores[p][k]` for
/// point p with fold k left out (NaN when its training failed, `failures[p][k]` saying how),
/// `fit_times[p][k]` the seconds that model took (its share of a stack's), the stacked runs,
/// and the error of the first failed model in grid order.
pub(super) struct Scored {
    pub fold_scores: Vec<Vec<f32>>,
    pub fit_times: Vec<Vec<f64>>,
    pub failures: Vec<Vec<Option<String>>>,
    pub jobs: Vec<CvJob>,
    pub scoring: Scoring,
    /// The models' loss (how outputs become class probabilities).
    pub loss: crate::ops::Loss,
    first_error: Option<((usize, usize), Error)>,
}

/// A search's grid ranked: one row per point, the stacked runs, and the points from best
/// to worst.
pub(super) type Ranked = (Vec<CvResult>, Vec<CvJob>, Vec<usize>);

impl Scored {
    pub(super) fn new(points: usize, folds: usize, (scoring, loss): (Scoring, crate::ops::Loss)) -> Self {
        Scored {
            loss,
            fold_scores: vec![vec![0.0; folds]; points],
            fit_times: vec![vec![0.0; folds]; points],
            failures: vec![vec![None; folds]; points],
            jobs: Vec::new(),
            scoring,
            first_error: None,
        }
    }

    /// One row per grid point (its fold scores, their mean and spread, its mean fit time,
    /// its failed folds), ranked; and the stacked runs. A point with a failed fold has a NaN
    /// mean and ranks last; if every point failed, the first failure's error.
    pub(super) fn ranked(self, points: &[Hyperparams]) -> Result<Ranked> {
        let scoring = self.scoring;
        let first_error = self.first_error.map(|(_, error)| error);
        let mut results = Vec::with_capacity(points.len());
        let rows = self.fold_scores.into_iter().zip(self.fit_times).zip(self.failures);
        for (point, ((fold_scores, fit_time), failures)) in points.iter().zip(rows) {
            let n = fold_scores.len() as f64;
            let fit_time: f64 = fit_time.iter().sum();
            let mean = fold_scores.iter().map(|&s| s as f64).sum::<f64>() / n;
            let var = fold_scores.iter().map(|&s| (s as f64 - mean).powi(2)).sum::<f64>() / n;
            let failures = failures
                .into_iter()
                .enumerate()
                .filter_map(|(fold, reason)| reason.map(|reason| FoldFailure { fold, reason }))
                .collect();
            results.push(CvResult {
                params: point.clone(),
                fold_scores,
                mean: mean as f32,
                std: var.sqrt() as f32,
                rank: 0,
                mean_fit_time: fit_time / n,
                failures,
            });
        }
        let order = rank(&mut results, scoring);
        check_some_trained(&results, &order, first_error)?;
        Ok((results, self.jobs, order))
    }

    /// Model (p, k) failed as `reason` says: scored NaN.
    pub(super) fn fail(&mut self, (p, k): (usize, usize), reason: String) {
        self.fold_scores[p][k] = f32::NAN;
        self.failures[p][k] = Some(reason);
    }

    /// Model (p, k)'s training ended with `error`: a failed candidate (NaN, its error kept
    /// if it is the first in grid order) when it diverged or stalled, else the error.
    fn training_failed(&mut self, (p, k): (usize, usize), error: Error) -> Result<()> {
        let Some(reason) = failure_reason(&error) else {
            return Err(error);
        };
        self.fail((p, k), reason);
        if self.first_error.as_ref().is_none_or(|(first, _)| (p, k) < *first) {
            self.first_error = Some(((p, k), error));
        }
        Ok(())
    }

    fn score(
        &self,
        (scores, outputs): &(crate::train::Scores, Vec<f32>),
        data: &GpuDataset,
        held_out: &[usize],
    ) -> f32 {
        super::metrics::score(self.scoring, scores, outputs, data, held_out, self.loss)
    }

    /// Every (point, fold) model of `pairs` trained and scored on its own; one that diverges
    /// or stalls scores NaN.
    pub(super) async fn sequential(
        &mut self,
        data: &GpuDataset,
        (folds, configs): (&[Fold], &[TrainConfig]),
        pairs: &[(usize, usize)],
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<()> {
        for &(p, k) in pairs {
            let started = web_time::Instant::now();
            let trained = fit_fold(data, &folds[k].train, &configs[p], &mut |metrics| {
                progress(CvProgress {
                    point: p,
                    fold: Some(k),
                    metrics,
                })
            })
            .await;
            self.fit_times[p][k] = started.elapsed().as_secs_f64();
            match trained {
                Ok(model) => {
                    let held_out = &folds[k].validation;
                    let evaluated = evaluate_stack(data, model.mlp(), &[held_out]).await?;
                    self.fold_scores[p][k] = evaluated.first().map_or(f32::NAN, |e| self.score(e, data, held_out))
                }
                Err(error) => self.training_failed((p, k), error)?,
            }
        }
        Ok(())
    }

    /// The (point, fold) models of `pairs` stacked by shape, each stack one GPU job; a
    /// stack's time is shared among its models. A model that diverges or stalls ends its
    /// stack's run: that run's models are trained again one by one (stacked, each model
    /// gets its lone result, so the others score as they would have), the failed ones NaN;
    /// `progress` sees only the epochs the stack had not reached.
    pub(super) async fn batched(
        &mut self,
        data: &GpuDataset,
        setup: (&[Fold], &[TrainConfig]),
        (pairs, max_models): (&[(usize, usize)], usize),
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<()> {
        let (folds, configs) = setup;
        let runs = stack_groups(
            data,
            pairs.iter().map(|&(p, k)| (&configs[p], folds[k].train.len())),
            max_models,
        );
        for run in runs {
            let models: Vec<(usize, usize)> = run.jobs.iter().map(|&i| pairs[i]).collect();
            let mut reached = vec![0; models.len()];
            let stacked = self
                .stacked(data, setup, &models, &mut |m, metrics| {
                    reached[m] = metrics.epoch;
                    progress(CvProgress {
                        point: models[m].0,
                        fold: Some(models[m].1),
                        metrics,
                    })
                })
                .await;
            let retrained_alone = match stacked {
                Ok(()) => false,
                Err(error) if failure_reason(&error).is_some() => {
                    self.sequential(data, setup, &models, &mut |p| {
                        let m = models.iter().position(|&(q, k)| (q, Some(k)) == (p.point, p.fold));
                        if m.is_none_or(|m| p.metrics.epoch > reached[m]) {
                            progress(p)
                        }
                    })
                    .await?;
                    true
                }
                Err(error) => return Err(error),
            };
            self.jobs.push(CvJob {
                models,
                group_size: run.group_size,
                limit: run.limit,
                retrained_alone,
            });
        }
        Ok(())
    }

    /// The (point, fold) `models` of one run trained as one stack and scored.
    async fn stacked(
        &mut self,
        data: &GpuDataset,
        (folds, configs): (&[Fold], &[TrainConfig]),
        models: &[(usize, usize)],
        on_epoch: &mut dyn FnMut(usize, &EpochMetrics),
    ) -> Result<()> {
        // With early stopping each model holds out part of its fold's training rows, as it
        // would alone, and stops on its own.
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
        let started = web_time::Instant::now();
        let stack = train_stack(data, &lanes, &validation, on_epoch).await?;
        let share = started.elapsed().as_secs_f64() / models.len() as f64;
        models.iter().for_each(|&(p, k)| self.fit_times[p][k] = share);
        let held_out: Vec<&[usize]> = models.iter().map(|&(_, k)| folds[k].validation.as_slice()).collect();
        for ((&(p, k), scores), rows) in models
            .iter()
            .zip(evaluate_stack(data, &stack.mlp, &held_out).await?)
            .zip(&held_out)
        {
            self.fold_scores[p][k] = self.score(&scores, data, rows);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cv::ParamGrid;

    fn results(means: &[f32]) -> Vec<CvResult> {
        let point = ParamGrid::default().points_over(&TrainConfig::default()).remove(0);
        means
            .iter()
            .map(|&mean| CvResult {
                params: point.clone(),
                fold_scores: vec![mean],
                mean,
                std: 0.0,
                rank: 0,
                mean_fit_time: 0.0,
                failures: Vec::new(),
            })
            .collect()
    }

    /// NaN means (either sign) rank after every number, in grid order, whichever way the
    /// scoring goes.
    #[test]
    fn nan_ranks_last_either_way() {
        for (scoring, numbers) in [(Scoring::Accuracy, [2, 4, 0]), (Scoring::Loss, [0, 4, 2])] {
            let mut ranked = results(&[0.5, f32::NAN, 0.7, -f32::NAN, 0.6]);
            let order = rank(&mut ranked, scoring);
            assert_eq!(order, [&numbers[..], &[1, 3]].concat(), "{scoring:?}");
            assert_eq!((ranked[1].rank, ranked[3].rank), (4, 5), "{scoring:?}");
        }
    }
}
