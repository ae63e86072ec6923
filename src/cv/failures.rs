//! Grid points whose training failed: a fold model that diverged or stalled is a failed
//! candidate (scikit-learn's `error_score=np.nan`), scored NaN and ranked last, with a
//! warning that says which point, which fold and what happened. Other errors (a lost GPU,
//! bad arguments) still end the search, and so does every point failing.

use super::{CvReport, CvResult, HalvingReport};
use crate::error::{Error, Result};

/// A fold model whose training failed (it diverged or stalled): its fold score is NaN, so
/// is its grid point's mean, and the point ranks last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldFailure {
    /// The fold left out (0-based, as the `split{k}_test_score` columns).
    pub fold: usize,
    /// What happened, in words: e.g. "diverged at epoch 3, batch 2 (loss inf)".
    pub reason: String,
}

/// What a training error says about the model, when it means the candidate failed
/// ([`Error::Diverged`], [`Error::Stalled`]); `None` for errors that end the search.
pub(super) fn failure_reason(error: &Error) -> Option<String> {
    match error {
        Error::Diverged { epoch, batch, loss, .. } => {
            Some(format!("diverged at epoch {epoch}, batch {batch} (loss {loss})"))
        }
        Error::Stalled {
            epoch, epochs, loss, ..
        } => Some(format!(
            "stalled at epoch {epoch} (loss stuck at {loss} for {epochs} epochs, the same outputs for every row)"
        )),
        _ => None,
    }
}

/// Equal, or both NaN (a failed score equals itself).
pub(super) fn same_score(a: f32, b: f32) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// [`same_score`] over two lists.
pub(super) fn same_scores(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| same_score(x, y))
}

/// The error a search whose every grid point failed ends with: the first failure's own
/// error when the search trained it, else (scores merged from shard files) one naming it.
pub(super) fn all_failed(results: &[CvResult], first_error: Option<Error>) -> Error {
    if let Some(error) = first_error {
        return error;
    }
    let first = results
        .iter()
        .enumerate()
        .find_map(|(p, r)| r.failures.first().map(|failure| (p, failure)));
    let got = match first {
        Some((p, failure)) => format!(
            "every grid point failed; the first, point {} fold {}: {}",
            p + 1,
            failure.fold + 1,
            failure.reason
        ),
        None => "every grid point failed".to_string(),
    };
    Error::invalid(
        "GridSearchCv",
        "grid",
        "at least one grid point whose fold models all train",
        got,
    )
}

/// One warning per failed grid point of `results`, numbered (1-based) when `numbered`
/// (a halving round's candidates are named by their settings alone).
fn warnings_of(results: &[CvResult], numbered: bool) -> Vec<String> {
    let folds = results.first().map_or(0, |r| r.fold_scores.len());
    results
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.failures.is_empty())
        .map(|(p, r)| {
            let what: Vec<String> = r
                .failures
                .iter()
                .map(|failure| format!("fold {}/{folds} {}", failure.fold + 1, failure.reason))
                .collect();
            let number = if numbered { format!(" {}", p + 1) } else { String::new() };
            format!(
                "grid point{number} ({}) failed: {}; scored NaN and ranked last",
                r.params,
                what.join("; ")
            )
        })
        .collect()
}

impl CvReport {
    /// One line per grid point whose training failed (a fold model diverged or stalled), in
    /// grid order: the point (1-based, and its settings), each failed fold (1-based, of how
    /// many) and what happened, e.g. `grid point 3 (lr=1000000 ...) failed: fold 1/3
    /// diverged at epoch 1, batch 2 (loss inf); scored NaN and ranked last`. Empty when
    /// every point trained. Such points have NaN fold scores and means (see
    /// [`CvResult::failures`]), rank last, and are never the winner. Also a line when the
    /// folds shared one preparation (see [`CvReport::per_fold_preparation`]).
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = warnings_of(&self.results, true);
        if !self.per_fold_preparation {
            lines.push(
                "the per-fold copies of the table would not fit one GPU buffer: every fold's imputation and scaling \
                 were learned on all training rows, so the CV scores saw a little of their held-out rows"
                    .into(),
            );
        }
        lines
    }

    /// Grid points that failed.
    pub(super) fn failed_points(&self) -> usize {
        self.results.iter().filter(|r| !r.failures.is_empty()).count()
    }
}

impl HalvingReport {
    /// [`CvReport::warnings`] for every round, each line prefixed with its round (1-based).
    /// A failed candidate is dropped from the rounds after its own.
    pub fn warnings(&self) -> Vec<String> {
        self.rounds
            .iter()
            .enumerate()
            .flat_map(|(i, round)| {
                warnings_of(&round.results, false)
                    .into_iter()
                    .map(move |line| format!("round {} ({} epochs): {line}", i + 1, round.epochs))
            })
            .collect()
    }
}

/// `Ok` unless the best of `order` failed (so all did).
pub(super) fn check_some_trained(results: &[CvResult], order: &[usize], first_error: Option<Error>) -> Result<()> {
    match order.first() {
        Some(&best) if results[best].failures.is_empty() => Ok(()),
        _ => Err(all_failed(results, first_error)),
    }
}
