//! The steps of a search: its plan (points, settings, folds, scoring, execution, checked),
//! scoring a set of its (point, fold) models, and ranking and refitting. `fit` runs all three;
//! shards (`shard.rs`) run the middle one on their share and a merge runs the last.

use super::scored::Scored;
use super::{CvExecution, CvProgress, CvReport, Fold, GridSearchCv, Hyperparams, Scoring};
use crate::error::{Error, Result};
use crate::train::{GpuDataset, TrainConfig, fit_with_progress_async};

/// What a search trains (see `GridSearchCv::plan`).
pub(super) struct Plan {
    pub(super) points: Vec<Hyperparams>,
    pub(super) configs: Vec<TrainConfig>,
    pub(super) folds: Vec<Fold>,
    pub(super) scoring: Scoring,
    pub(super) execution: CvExecution,
    /// The rows the winner is refit on (the search's rows, in the last copy where the data
    /// holds copies preprocessed per fold).
    pub(super) refit_rows: Vec<usize>,
}

impl Plan {
    /// Every (point, fold) model, points in grid order, folds within.
    pub(super) fn all_pairs(&self) -> Vec<(usize, usize)> {
        (0..self.points.len())
            .flat_map(|p| (0..self.folds.len()).map(move |k| (p, k)))
            .collect()
    }
}

impl GridSearchCv {
    /// [`GridSearchCv::fit`] for async code: the search in a browser, each stack of models one
    /// GPU job as natively, every read awaited. The same report, to the bit.
    pub async fn fit_async(&self, data: &GpuDataset, rows: &[usize]) -> Result<CvReport> {
        self.fit_with_progress_async(data, rows, &mut |_| {}).await
    }

    /// [`GridSearchCv::fit_with_progress`] for async code (see [`GridSearchCv::fit_async`]).
    pub async fn fit_with_progress_async(
        &self,
        data: &GpuDataset,
        rows: &[usize],
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<CvReport> {
        let plan = self.plan(data, rows)?;
        let scored = self.score(data, &plan, &plan.all_pairs(), progress).await?;
        self.finish(data, rows, &plan, scored, progress).await
    }

    /// What the search trains, after checking it: the points and their settings, the folds,
    /// the scoring and the execution.
    pub(super) fn plan(&self, data: &GpuDataset, rows: &[usize]) -> Result<Plan> {
        const OP: &str = "GridSearchCv";
        self.check_base()?;
        data.check_rows(OP, "rows", rows)?;
        let points = self.grid.points_over(&self.base);
        if points.is_empty() {
            return Err(Error::invalid(
                OP,
                "grid",
                "at least one value per hyperparameter",
                "an empty list",
            ));
        }
        let configs: Vec<TrainConfig> = points.iter().map(|point| self.config(point)).collect();
        for config in &configs {
            config.validate()?;
        }
        let classes = data.labels().is_some();
        let scoring = match (self.scoring, classes, self.base.loss) {
            (Some(scoring), _, _) => scoring,
            (None, true, _) => Scoring::Accuracy,
            (None, false, loss) if loss.link() == crate::ops::OutputLink::Identity => Scoring::R2,
            (None, false, _) => Scoring::Loss,
        };
        if scoring.for_classes().is_some_and(|c| c != classes)
            || (scoring == Scoring::RocAuc && data.host_target(0).len() != 2)
        {
            let wanted = match scoring {
                Scoring::RocAuc => "two classes",
                _ if classes => "a score of classes (accuracy, balanced_accuracy, f1_macro, neg_log_loss, roc_auc)",
                _ => "a score of values (r2, neg_mean_squared_error, neg_mean_absolute_error)",
            };
            return Err(Error::invalid(OP, "scoring", wanted, scoring.name()));
        }
        let execution = self.execution;
        let mut folds = self.folds.split(data, rows)?;
        let mut refit_rows = rows.to_vec();
        // Copies preprocessed per fold: fold k trains and is scored on copy k, the refit on the last.
        if let Some(n) = data.fold_copies() {
            if data.len() != (folds.len() + 1) * n || rows.iter().any(|&r| r >= n) {
                return Err(Error::invalid(
                    OP,
                    "fold copies",
                    format!("{} copies of the rows", folds.len() + 1),
                    data.len(),
                ));
            }
            for (k, fold) in folds.iter_mut().enumerate() {
                fold.train
                    .iter_mut()
                    .chain(fold.validation.iter_mut())
                    .for_each(|r| *r += k * n);
            }
            refit_rows.iter_mut().for_each(|r| *r += folds.len() * n);
        }
        Ok(Plan {
            points,
            configs,
            folds,
            scoring,
            execution,
            refit_rows,
        })
    }

    /// Trains and scores the (point, fold) models of `pairs`.
    pub(super) async fn score(
        &self,
        data: &GpuDataset,
        plan: &Plan,
        pairs: &[(usize, usize)],
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<Scored> {
        let mut scored = Scored::new(
            plan.points.len(),
            plan.folds.len(),
            (plan.scoring, plan.configs[0].loss),
        );
        let setup = (plan.folds.as_slice(), plan.configs.as_slice());
        match plan.execution {
            CvExecution::Sequential => scored.sequential(data, setup, pairs, progress).await?,
            CvExecution::Batched { max_models } => scored.batched(data, setup, (pairs, max_models), progress).await?,
        }
        Ok(scored)
    }

    /// Ranks the scored grid and refits the winner (the best point that did not fail; if
    /// all failed, the first failure's error).
    pub(super) async fn finish(
        &self,
        data: &GpuDataset,
        _rows: &[usize],
        plan: &Plan,
        scored: Scored,
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<CvReport> {
        let (results, jobs, order) = scored.ranked(&plan.points)?;
        let best_index = order[0];
        let best_model = if self.refit {
            let config = self.config(&results[best_index].params);
            Some(
                fit_with_progress_async(data, &plan.refit_rows, None, &config, &mut |metrics| {
                    progress(CvProgress {
                        point: best_index,
                        fold: None,
                        metrics,
                    })
                })
                .await?,
            )
        } else {
            None
        };
        Ok(CvReport {
            per_fold_preparation: true,
            results,
            best_index,
            scoring: plan.scoring,
            best_model,
            execution: plan.execution,
            jobs,
        })
    }
}
