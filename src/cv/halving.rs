//! Successive halving (scikit-learn's `HalvingGridSearchCV`, with epochs as the resource):
//! every grid point trains a few epochs on each fold, the best 1/factor go on with factor
//! times the epochs, and so on until at most `factor` remain; the best of the last round
//! wins and is refit. Each round trains its candidates' fold models stacked, from scratch,
//! as a grid search does. Many points cost the epochs of few.

use super::plan::Plan;
use super::{CvResult, GridSearchCv, Hyperparams};
use crate::error::{Error, Result};
use crate::train::{GpuDataset, Model, fit};

/// A grid search by successive halving.
///
/// ```no_run
/// use wgpu_mlp::{GridSearchCv, HalvingGridSearchCv, ParamGrid};
/// # fn demo(data: &wgpu_mlp::GpuDataset, train: &[usize]) -> wgpu_mlp::Result<()> {
/// let grid = ParamGrid { lr: vec![1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2], epochs: vec![30], ..ParamGrid::default() };
/// let halving = HalvingGridSearchCv::new(GridSearchCv { grid, ..GridSearchCv::default() }, 3);
/// let report = halving.fit(data, train)?; // 6 points × 10 epochs, then the best 2 × 30
/// println!("{} rounds, {} model-epochs, best {}", report.rounds.len(), report.model_epochs, report.best_params);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HalvingGridSearchCv {
    /// The search whose grid is halved: its folds, base settings, execution and refit apply,
    /// and each point's `epochs` is the most it may train.
    pub search: GridSearchCv,
    /// Keep the best 1/factor of the candidates each round, with factor times the epochs.
    pub factor: usize,
    /// Epochs of the first round; `None`: as few as let the last round reach the grid's
    /// epochs (the most epochs over `factor` per round still to come, rounded up).
    pub min_epochs: Option<usize>,
}

/// One round of a halving search.
#[derive(Clone, Debug)]
pub struct HalvingRound {
    /// The epochs its candidates trained (at most each point's own).
    pub epochs: usize,
    /// One row per candidate, ranked within the round.
    pub results: Vec<CvResult>,
}

/// What a halving search found.
pub struct HalvingReport {
    /// Every round, the first with every grid point.
    pub rounds: Vec<HalvingRound>,
    /// The winner of the last round (with that round's epochs).
    pub best_params: Hyperparams,
    /// The winner refit on all training rows (with `refit`).
    pub best_model: Option<Model>,
    /// Epochs trained by all fold models of all rounds (at most; early stopping trains fewer).
    pub model_epochs: usize,
}

impl HalvingGridSearchCv {
    /// Halving `search`'s grid by `factor`, the first round's epochs chosen for you.
    pub fn new(search: GridSearchCv, factor: usize) -> Self {
        HalvingGridSearchCv {
            search,
            factor,
            min_epochs: None,
        }
    }

    /// Runs the rounds on `rows` of `data` and refits the winner. The same seed gives the
    /// same report. A candidate whose training diverges or stalls scores NaN, ranks last in
    /// its round and goes no further ([`HalvingReport::warnings`] lists it), the rounds
    /// going on as if it had (the last still trains the grid's epochs); a round where every
    /// candidate fails ends the search with the first failure's error.
    pub fn fit(&self, data: &GpuDataset, rows: &[usize]) -> Result<HalvingReport> {
        const OP: &str = "HalvingGridSearchCv";
        if self.factor < 2 {
            return Err(Error::invalid(OP, "factor", "at least 2", self.factor));
        }
        if self.min_epochs == Some(0) {
            return Err(Error::invalid(OP, "min_epochs", "at least 1", 0));
        }
        let plan = self.search.plan(data, rows)?;
        let mut candidates = plan.points.clone();
        let mut epochs = self.first_epochs(&candidates);
        let (mut rounds, mut model_epochs) = (Vec::new(), 0);
        // The candidates a round would have had with no failures: they set the rounds.
        let mut nominal = candidates.len();
        loop {
            let points: Vec<Hyperparams> = candidates
                .iter()
                .map(|p| Hyperparams {
                    epochs: epochs.min(p.epochs),
                    ..p.clone()
                })
                .collect();
            let round = Plan {
                configs: points.iter().map(|p| self.search.config(p)).collect(),
                points,
                folds: plan.folds.clone(),
                refit_rows: plan.refit_rows.clone(),
                ..plan
            };
            model_epochs += round.points.iter().map(|p| p.epochs).sum::<usize>() * round.folds.len();
            let pairs = round.all_pairs();
            let mut quiet = |_: super::CvProgress<'_>| {};
            let scoring = self.search.score(data, &round, &pairs, &mut quiet);
            let scored = crate::device::gpu::block_on("HalvingGridSearchCv::fit", scoring)?;
            let (results, _, order) = scored.ranked(&round.points)?;
            let done = nominal <= self.factor || candidates.iter().all(|p| p.epochs <= epochs);
            let failed: Vec<bool> = results.iter().map(|r| !r.failures.is_empty()).collect();
            rounds.push(HalvingRound { epochs, results });
            if done {
                let best_params = round.points[order[0]].clone();
                let best_model = match self.search.refit {
                    true => Some(fit(data, &plan.refit_rows, None, &self.search.config(&best_params))?),
                    false => None,
                };
                return Ok(HalvingReport {
                    rounds,
                    best_params,
                    best_model,
                    model_epochs,
                });
            }
            // The best, as many as the round would keep with no failures, kept in grid order so
            // ties break as in a grid search; a failed candidate (no score to go on) is dropped.
            nominal = nominal.div_ceil(self.factor);
            let mut kept = order[..nominal.min(order.len())].to_vec();
            kept.retain(|&i| !failed[i]);
            kept.sort_unstable();
            candidates = kept.iter().map(|&i| candidates[i].clone()).collect();
            epochs *= self.factor;
        }
    }

    /// The first round's epochs: `min_epochs`, or the most epochs divided by `factor` once
    /// per round after the first (rounds: until at most `factor` candidates remain).
    fn first_epochs(&self, points: &[Hyperparams]) -> usize {
        if let Some(epochs) = self.min_epochs {
            return epochs;
        }
        let most = points.iter().map(|p| p.epochs).max().unwrap_or(1);
        let (mut candidates, mut divisor) = (points.len(), 1);
        while candidates > self.factor {
            candidates = candidates.div_ceil(self.factor);
            divisor *= self.factor;
        }
        // Rounded up, so the last round trains the grid's epochs (capped per point).
        most.div_ceil(divisor)
    }
}
