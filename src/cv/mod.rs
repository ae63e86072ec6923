//! Cross-validation in the style of scikit-learn: `KFold` and `StratifiedKFold` splitters, a
//! grid over the training hyperparameters, per-fold scores with mean, std and rank, and a
//! refit of the winners on all the training rows. A grid point whose training diverges or
//! stalls is a failed candidate (NaN scores, ranked last, a warning), as with scikit-learn's
//! `error_score=np.nan`; the search fails only when every point does.

mod failures;
mod grid;
mod halving;
mod metrics;
mod pipeline;
mod plan;
pub mod plots;
pub(crate) mod results;
mod scored;
mod shard;
mod split;

pub use failures::FoldFailure;
pub use grid::{Hyperparams, ParamGrid};
pub use halving::{HalvingGridSearchCv, HalvingReport, HalvingRound};
pub use shard::{Shard, ShardScores};
pub use split::{Fold, Folds, KFold, StratifiedKFold};

use std::fmt;

use crate::error::{Error, Result};
use crate::train::{EpochMetrics, GpuDataset, Model, TrainConfig};

/// How a grid point is scored on a held-out fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoring {
    /// Accuracy, higher is better (classification).
    Accuracy,
    /// Mean loss, lower is better.
    Loss,
    /// The coefficient of determination R², higher is better (regression; scikit-learn's
    /// default score for regressors).
    R2,
    /// The mean of the per-class recalls (classification).
    BalancedAccuracy,
    /// The mean of the per-class F1 scores (classification).
    F1Macro,
    /// Minus the mean cross-entropy of the predicted class probabilities (classification).
    NegLogLoss,
    /// The area under the ROC curve of class 1's probability (two classes).
    RocAuc,
    /// Minus the mean squared error, in the targets' units (regression).
    NegMeanSquaredError,
    /// Minus the mean absolute error, in the targets' units (regression).
    NegMeanAbsoluteError,
}

/// One row of the results table (scikit-learn's `cv_results_`).
#[derive(Clone, Debug)]
pub struct CvResult {
    /// The grid point.
    pub params: Hyperparams,
    /// Its score on each held-out fold; NaN for a fold whose model diverged or stalled.
    pub fold_scores: Vec<f32>,
    /// Mean of the fold scores (NaN if any is).
    pub mean: f32,
    /// Population standard deviation of the fold scores (NaN if any is).
    pub std: f32,
    /// 1 for the best mean; a NaN mean ranks after every number.
    pub rank: usize,
    /// Mean seconds to train one fold model. Batched, a run's time is shared equally among
    /// its models. Not part of equality: two searches with the same scores are the same
    /// result however long they took.
    pub mean_fit_time: f64,
    /// The folds whose model diverged or stalled, in fold order, and what happened (empty
    /// when every fold trained): the point is a failed candidate, never the winner
    /// ([`CvReport::warnings`] says it in words).
    pub failures: Vec<FoldFailure>,
}

impl PartialEq for CvResult {
    /// The same point, scores (NaN equal to NaN), rank and failures.
    fn eq(&self, other: &Self) -> bool {
        use failures::{same_score, same_scores};
        (&self.params, self.rank, &self.failures) == (&other.params, other.rank, &other.failures)
            && same_scores(&self.fold_scores, &other.fold_scores)
            && same_score(self.mean, other.mean)
            && same_score(self.std, other.std)
    }
}

/// Where a search is, for progress reports.
#[derive(Clone, Copy, Debug)]
pub struct CvProgress<'a> {
    /// The grid point being trained.
    pub point: usize,
    /// The fold left out, or None for the refit.
    pub fold: Option<usize>,
    /// The epoch just finished.
    pub metrics: &'a EpochMetrics,
}

/// How a search trains its fold × grid-point models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CvExecution {
    /// One model after another, each a [`fit`](crate::fit) of its own.
    Sequential,
    /// Models that share layer sizes and batch size (the folds of a grid point, and grid
    /// points that differ only in lr, momentum, weight decay or epochs) trained together:
    /// stacked along a model dimension, one kernel launch per step for all of them. A group
    /// too large for the adapter's limits, or for `max_models` (0: no cap of our own), is
    /// split into several runs; the report says so. Same scores as `Sequential`. A base
    /// with `early_stopping` trains model by model (each fold model stops on its own hold-out).
    Batched {
        /// The most models in one run (0: as many as the adapter's limits allow).
        max_models: usize,
    },
}

impl Default for CvExecution {
    fn default() -> Self {
        CvExecution::Batched { max_models: 0 }
    }
}

impl fmt::Display for CvExecution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CvExecution::Sequential => write!(f, "model by model"),
            CvExecution::Batched { .. } => write!(f, "batched"),
        }
    }
}

/// One batched run of a search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CvJob {
    /// The (grid point, fold) of each model in the run.
    pub models: Vec<(usize, usize)>,
    /// Models in the whole group of same-shaped models this run belongs to; more than
    /// `models.len()` when the group was split.
    pub group_size: usize,
    /// The most models one run of the group could hold (adapter limits, or the cap).
    pub limit: usize,
    /// A model of the run diverged or stalled, which ends a stacked run: its models were
    /// trained again one by one (each scores as it would stacked; the failed ones NaN).
    pub retrained_alone: bool,
}

/// A grid search with K-fold cross-validation.
///
/// ```no_run
/// use wgpu_mlp::{Adam, GridSearchCv, ParamGrid, TrainConfig};
/// # fn demo(data: &wgpu_mlp::GpuDataset, train: &[usize]) -> wgpu_mlp::Result<()> {
/// let search = GridSearchCv {
///     grid: ParamGrid { lr: vec![1e-3, 3e-3, 1e-2], ..ParamGrid::default() },
///     base: TrainConfig { optimizer: Adam::new(1e-3).into(), ..TrainConfig::default() },
///     ..GridSearchCv::default() // 5 stratified folds, refit, batched
/// };
/// let report = search.fit(data, train)?;
/// println!("{report}\nbest: {}", report.best_params());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct GridSearchCv {
    /// The grid.
    pub grid: ParamGrid,
    /// The splitter.
    pub folds: Folds,
    /// Retrain the best point on all training rows.
    pub refit: bool,
    /// Settings the grid does not vary (seed, output activation, decay form, drop_last).
    pub base: TrainConfig,
    /// Model by model, or batched (the default; with early stopping each stacked model holds
    /// out its own rows and stops on its own, as it would alone).
    pub execution: CvExecution,
    /// How [`GridSearchCv::fit_dataset`] prepares a table's columns (imputation, categories,
    /// missing indicators); fitted on each fold's training rows.
    pub preprocess: crate::data::PreprocessOptions,
    /// What the search ranks by (scikit-learn's `scoring`); None: accuracy for classes, R²
    /// for an MSE regression, else the loss.
    pub scoring: Option<Scoring>,
    /// How [`GridSearchCv::fit_dataset`] weights each class in the loss (scikit-learn's
    /// `class_weight`; softmax cross-entropy only).
    pub class_weight: ClassWeight,
    /// A weight per row of the data set given to [`GridSearchCv::fit_dataset`]
    /// (scikit-learn's `sample_weight`; softmax cross-entropy only), times the class weight.
    pub sample_weight: Option<Vec<f32>>,
}

/// scikit-learn's `class_weight`: each row's loss multiplied by its class's weight.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ClassWeight {
    /// Every class weighs 1 (the default).
    #[default]
    Uniform,
    /// `n_rows / (n_classes · n_rows_of_class)`, counted on the rows each model trains on:
    /// rare classes weigh more.
    Balanced,
    /// One weight per class, in class order.
    Given(Vec<f32>),
}

impl Default for GridSearchCv {
    /// One grid point (the base's values), 5 stratified shuffled folds (seed 0), refit,
    /// batched: scikit-learn's `cv=5` for a classifier.
    fn default() -> Self {
        GridSearchCv {
            grid: ParamGrid::default(),
            folds: Folds::Stratified(StratifiedKFold {
                n_splits: 5,
                shuffle: true,
                seed: 0,
            }),
            refit: true,
            base: TrainConfig::default(),
            execution: CvExecution::default(),
            preprocess: Default::default(),
            scoring: None,
            class_weight: ClassWeight::Uniform,
            sample_weight: None,
        }
    }
}

/// What a search found.
pub struct CvReport {
    /// One row per grid point, in grid order.
    pub results: Vec<CvResult>,
    /// Index into `results` of the winner (never a failed point).
    pub best_index: usize,
    /// How the folds were scored.
    pub scoring: Scoring,
    /// The winner retrained on all training rows (with `refit`).
    pub best_model: Option<Model>,
    /// How the fold models were trained.
    pub execution: CvExecution,
    /// The batched runs, in order (empty model by model).
    pub jobs: Vec<CvJob>,
    /// Whether every fold's statistics (fills, scales) were learned from its own training
    /// rows ([`GridSearchCv::fit_dataset`] does, unless the per-fold copies would not fit one
    /// GPU binding; then all training rows served every fold, and [`CvReport::warnings`] says
    /// so). True for a search on a data set already on the GPU (it has no preparation).
    pub per_fold_preparation: bool,
}

impl GridSearchCv {
    /// A search of `grid` over `base` with the defaults for the rest (5 stratified shuffled
    /// folds, refit, batched); the setters below change those.
    ///
    /// ```
    /// use wgpu_mlp::{GridSearchCv, ParamGrid, TrainConfig, cv::CvExecution};
    /// let grid = ParamGrid { lr: vec![1e-3, 1e-2], ..ParamGrid::default() };
    /// let search = GridSearchCv::new(TrainConfig::default(), grid).n_splits(3).execution(CvExecution::Sequential);
    /// assert_eq!(search.folds.n_splits(), 3);
    /// ```
    pub fn new(base: TrainConfig, grid: ParamGrid) -> Self {
        GridSearchCv {
            base,
            grid,
            ..GridSearchCv::default()
        }
    }

    /// The number of folds, keeping the splitter's kind, shuffling and seed (explicit folds
    /// become a plain [`KFold`]).
    pub fn n_splits(mut self, n_splits: usize) -> Self {
        match &mut self.folds {
            Folds::KFold(k) => k.n_splits = n_splits,
            Folds::Stratified(k) => k.n_splits = n_splits,
            Folds::Explicit(_) => {
                self.folds = Folds::KFold(KFold {
                    n_splits,
                    shuffle: false,
                    seed: 0,
                })
            }
        }
        self
    }

    /// The splitter ([`KFold`] for regression, [`StratifiedKFold`] for classes).
    pub fn folds(mut self, folds: Folds) -> Self {
        self.folds = folds;
        self
    }

    /// Whether to retrain the winner on all training rows.
    pub fn refit(mut self, refit: bool) -> Self {
        self.refit = refit;
        self
    }

    /// Model by model, or batched.
    pub fn execution(mut self, execution: CvExecution) -> Self {
        self.execution = execution;
        self
    }

    /// Number of epochs the whole search trains (for progress bars).
    pub fn total_epochs(&self) -> usize {
        let points = self.grid.points_over(&self.base);
        let per_point: usize = points.iter().map(|p| p.epochs).sum();
        let refit = if self.refit {
            points.iter().map(|p| p.epochs).max().unwrap_or(0)
        } else {
            0
        };
        per_point * self.folds.n_splits() + refit
    }

    /// The settings grid point `point` trains with: the base's, with the point's values.
    pub fn config(&self, point: &Hyperparams) -> TrainConfig {
        let mut config = self.base.clone();
        config.optimizer = point.optimizer_settings();
        config.schedule = point.schedule;
        config.hidden = point.hidden.clone();
        config.epochs = point.epochs;
        config.batch_size = point.batch_size;
        config.hidden_activation = point.activation;
        config
    }

    /// Refuses a `base` whose values the grid would silently override: a field the grid
    /// lists values for must be left at a preset's value ([`TrainConfig::classifier`], the
    /// default, or [`TrainConfig::classic`]) or be one of the grid's values (a field with an
    /// empty list is the base's).
    fn check_base(&self) -> Result<()> {
        const OP: &str = "GridSearchCv::base";
        fn overridden<T: PartialEq + fmt::Debug>(what: &str, base: T, presets: [T; 2], grid: &[T]) -> Result<()> {
            if grid.is_empty() || presets.contains(&base) || grid.contains(&base) {
                return Ok(());
            }
            Err(Error::invalid(
                OP,
                what,
                format!(
                    "a preset's value ({:?} or {:?}) or one of the grid's values {grid:?} (the grid sets it)",
                    presets[0], presets[1]
                ),
                format!("{base:?}: put it in the grid instead"),
            ))
        }
        let (base, grid) = (&self.base, &self.grid);
        let presets = [TrainConfig::classifier(), TrainConfig::classic()];
        let each = |get: fn(&TrainConfig) -> Vec<usize>| [get(&presets[0]), get(&presets[1])];
        overridden(
            "optimizer",
            base.optimizer,
            presets.each_ref().map(|p| p.optimizer),
            &grid.optimizer,
        )?;
        overridden(
            "schedule",
            base.schedule,
            presets.each_ref().map(|p| p.schedule),
            &grid.schedule,
        )?;
        overridden("hidden", base.hidden.clone(), each(|p| p.hidden.clone()), &grid.hidden)?;
        overridden(
            "epochs",
            base.epochs,
            presets.each_ref().map(|p| p.epochs),
            &grid.epochs,
        )?;
        let batch_sizes = presets.each_ref().map(|p| p.batch_size);
        overridden("batch_size", base.batch_size, batch_sizes, &grid.batch_size)?;
        let activations = presets.each_ref().map(|p| p.hidden_activation);
        overridden(
            "hidden_activation",
            base.hidden_activation,
            activations,
            &grid.activation,
        )?;
        // With Adam the grid's momentum is β₁, and PyTorch's Adam defaults count as unset;
        // for SGD, the classic network's settings do.
        let unset = base.optimizer.unset();
        let (optimizer, unset) = (&base.optimizer, [unset; 2]);
        overridden("optimizer lr", optimizer.lr(), unset.map(|o| o.lr()), &grid.lr)?;
        overridden(
            "optimizer momentum",
            optimizer.momentum(),
            unset.map(|o| o.momentum()),
            &grid.momentum,
        )?;
        let decays = unset.map(|o| o.weight_decay());
        overridden(
            "optimizer weight_decay",
            optimizer.weight_decay(),
            decays,
            &grid.weight_decay,
        )
    }

    /// Cross-validates every grid point on `rows` of `data`, ranks them, and refits the best.
    /// The same seed gives the same report. A fold model whose training diverges or stalls
    /// makes its point a failed candidate (NaN scores, ranked last, listed by
    /// [`CvReport::warnings`]); if every point fails, the first failure's error (in grid
    /// order) is returned. Other errors end the search. [`GridSearchCv::fit_with_progress`]
    /// shows each epoch as it ends; [`GridSearchCv::fit_dataset`] starts from a data set on
    /// the host.
    pub fn fit(&self, data: &GpuDataset, rows: &[usize]) -> Result<CvReport> {
        self.fit_with_progress(data, rows, &mut |_| {})
    }

    /// [`GridSearchCv::fit`], with `progress` seeing every epoch of every model as it ends
    /// (which grid point, which fold, the epoch's metrics).
    ///
    /// ```no_run
    /// # fn demo(data: &wgpu_mlp::GpuDataset, train: &[usize]) -> wgpu_mlp::Result<()> {
    /// let search = wgpu_mlp::GridSearchCv::default();
    /// let report = search.fit_with_progress(data, train, &mut |p| {
    ///     eprintln!("point {} fold {:?}: epoch {}", p.point, p.fold, p.metrics.epoch)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn fit_with_progress(
        &self,
        data: &GpuDataset,
        rows: &[usize],
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<CvReport> {
        crate::device::gpu::block_on("GridSearchCv::fit", self.fit_with_progress_async(data, rows, progress))
    }
}

impl CvReport {
    /// The winning grid point.
    pub fn best_params(&self) -> &Hyperparams {
        &self.results[self.best_index].params
    }
}

impl fmt::Display for CvReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let score = self.scoring.name();
        writeln!(
            f,
            "rank  mean {score:<8}  std       fold scores                       params"
        )?;
        let mut rows: Vec<&CvResult> = self.results.iter().collect();
        rows.sort_by_key(|r| r.rank);
        for r in rows {
            let folds: Vec<String> = r.fold_scores.iter().map(|s| format!("{s:.4}")).collect();
            let params = match r.failures.is_empty() {
                true => r.params.to_string(),
                false => format!("{} (failed)", r.params),
            };
            writeln!(
                f,
                "{:>4}  {:<13.4}  {:<8.4}  {:<32}  {}",
                r.rank,
                r.mean,
                r.std,
                folds.join(" "),
                params
            )?;
        }
        let failed = self.failed_points();
        if failed > 0 {
            writeln!(
                f,
                "{failed} of {} grid points failed (a fold model diverged or stalled): scored NaN, ranked last",
                self.results.len()
            )?;
        }
        match self.execution {
            CvExecution::Sequential => writeln!(f, "trained model by model"),
            CvExecution::Batched { .. } => {
                let models: usize = self.jobs.iter().map(|job| job.models.len()).sum();
                writeln!(f, "trained batched: {models} models in {} run(s)", self.jobs.len())?;
                for (i, job) in self.jobs.iter().enumerate() {
                    let mut points: Vec<usize> = job.models.iter().map(|&(p, _)| p + 1).collect();
                    points.dedup();
                    write!(
                        f,
                        "  run {}: {} models (grid points {points:?})",
                        i + 1,
                        job.models.len()
                    )?;
                    if job.retrained_alone {
                        write!(
                            f,
                            "; a model diverged or stalled, so its models were retrained one by one"
                        )?;
                    }
                    if job.group_size > job.models.len() {
                        write!(
                            f,
                            "; its group of {} same-shaped models was split: at most {} per run fit the limits",
                            job.group_size, job.limit
                        )?;
                    }
                    writeln!(f)?;
                }
                Ok(())
            }
        }
    }
}
