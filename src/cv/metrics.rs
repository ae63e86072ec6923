//! scikit-learn's scorers, as the search ranks by them: from the held-out loss and accuracy the
//! GPU reports, or from the held-out outputs where a score needs them. Every score is "higher
//! is better" (errors negated, as scikit-learn's `neg_*` names say) but the raw loss.

use super::Scoring;
use crate::ops::Loss;
use crate::train::{GpuDataset, Scores};

impl Scoring {
    /// scikit-learn's name of the score (`accuracy`, `neg_log_loss`, `r2`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Scoring::Accuracy => "accuracy",
            Scoring::Loss => "loss",
            Scoring::R2 => "r2",
            Scoring::BalancedAccuracy => "balanced_accuracy",
            Scoring::F1Macro => "f1_macro",
            Scoring::NegLogLoss => "neg_log_loss",
            Scoring::RocAuc => "roc_auc",
            Scoring::NegMeanSquaredError => "neg_mean_squared_error",
            Scoring::NegMeanAbsoluteError => "neg_mean_absolute_error",
        }
    }

    /// The score scikit-learn calls `name` (`log_loss` is taken for `neg_log_loss`).
    pub fn from_name(name: &str) -> Option<Scoring> {
        let all = [
            Scoring::Accuracy,
            Scoring::Loss,
            Scoring::R2,
            Scoring::BalancedAccuracy,
            Scoring::F1Macro,
            Scoring::NegLogLoss,
            Scoring::RocAuc,
            Scoring::NegMeanSquaredError,
            Scoring::NegMeanAbsoluteError,
        ];
        let name = if name == "log_loss" { "neg_log_loss" } else { name };
        all.into_iter().find(|s| s.name() == name)
    }

    /// Whether a larger score is better (all but the raw loss).
    pub fn higher_is_better(&self) -> bool {
        *self != Scoring::Loss
    }

    /// Whether it scores classes (else real values).
    pub fn for_classes(&self) -> Option<bool> {
        match self {
            Scoring::Loss => None,
            Scoring::R2 | Scoring::NegMeanSquaredError | Scoring::NegMeanAbsoluteError => Some(false),
            _ => Some(true),
        }
    }
}

/// The score of a model on held-out `rows` of `data`: its `scores` (loss, accuracy), and its
/// `outputs` there (rows × outputs) where the score needs them.
pub(super) fn score(
    scoring: Scoring,
    scores: &Scores,
    outputs: &[f32],
    data: &GpuDataset,
    rows: &[usize],
    loss: Loss,
) -> f32 {
    match scoring {
        Scoring::Accuracy => scores.accuracy.unwrap_or(0.0),
        Scoring::Loss => scores.loss,
        Scoring::R2 => r2_from_loss(scores.loss, data, rows),
        Scoring::NegLogLoss if loss == Loss::SoftmaxCrossEntropy => -scores.loss,
        _ => from_outputs(scoring, outputs, data, rows, loss),
    }
}

/// R² over `rows` from the mean MSE loss there (½ Σ_j (y − t)² per row, so the residual sum
/// of squares is 2 · loss · rows) and the targets' spread, summed over outputs: scikit-learn's
/// `r2_score` for one output, its variance-weighted average for several. A constant target
/// scores 1 when fitted exactly, else 0, as scikit-learn.
fn r2_from_loss(loss: f32, data: &GpuDataset, rows: &[usize]) -> f32 {
    let outputs = data.host_target(rows[0]).len();
    let total: f64 = (0..outputs)
        .map(|j| {
            let values = || rows.iter().map(move |&r| data.host_target(r)[j] as f64);
            let mean = values().sum::<f64>() / rows.len() as f64;
            values().map(|v| (v - mean).powi(2)).sum::<f64>()
        })
        .sum();
    let residual = 2.0 * loss as f64 * rows.len() as f64;
    match (total > 0.0, residual > 0.0) {
        (true, _) => (1.0 - residual / total) as f32,
        (false, false) => 1.0,
        (false, true) => 0.0,
    }
}

/// Class probabilities of one row of outputs: the softmax of logits, or outputs already in
/// [0, 1] (a sigmoid network on MSE) normalised.
fn probabilities(row: &[f32], loss: Loss) -> Vec<f64> {
    let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
    if loss.link() == crate::ops::OutputLink::Identity {
        let total: f64 = row.iter().map(|v| v.max(0.0)).sum::<f64>().max(1e-12);
        return row.iter().map(|v| v.max(0.0) / total).collect();
    }
    let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = row.iter().map(|v| (v - top).exp()).sum();
    row.iter().map(|v| (v - top).exp() / total).collect()
}

fn from_outputs(scoring: Scoring, outputs: &[f32], data: &GpuDataset, rows: &[usize], loss: Loss) -> f32 {
    let width = outputs.len() / rows.len().max(1);
    let chunks = || outputs.chunks(width.max(1));
    match (scoring, data.labels()) {
        (Scoring::NegMeanSquaredError | Scoring::NegMeanAbsoluteError, _) => {
            let errors: Vec<f64> = rows
                .iter()
                .zip(chunks())
                .flat_map(|(&r, y)| data.in_target_units(r, y))
                .collect();
            let n = errors.len().max(1) as f64;
            let value = match scoring {
                Scoring::NegMeanSquaredError => errors.iter().map(|e| e * e).sum::<f64>() / n,
                _ => errors.iter().map(|e| e.abs()).sum::<f64>() / n,
            };
            -value as f32
        }
        (_, Some(labels)) => {
            let truth: Vec<usize> = rows.iter().map(|&r| labels[r]).collect();
            let probs: Vec<Vec<f64>> = chunks().map(|y| probabilities(y, loss)).collect();
            classes_score(scoring, &truth, &probs, width) as f32
        }
        (_, None) => f32::NAN,
    }
}

fn argmax(p: &[f64]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
        .0
}

/// balanced accuracy, macro F1, log loss or ROC AUC of class probabilities against labels.
fn classes_score(scoring: Scoring, truth: &[usize], probs: &[Vec<f64>], classes: usize) -> f64 {
    let predicted: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    let count =
        |f: &dyn Fn(usize, usize) -> bool| truth.iter().zip(&predicted).filter(|&(&t, &p)| f(t, p)).count() as f64;
    match scoring {
        Scoring::BalancedAccuracy => {
            let present: Vec<usize> = (0..classes).filter(|&c| truth.contains(&c)).collect();
            let recall = |c: usize| count(&|t, p| t == c && p == c) / count(&|t, _| t == c);
            present.iter().map(|&c| recall(c)).sum::<f64>() / present.len().max(1) as f64
        }
        Scoring::F1Macro => {
            let used: Vec<usize> = (0..classes)
                .filter(|&c| truth.contains(&c) || predicted.contains(&c))
                .collect();
            let f1 = |c: usize| {
                let tp = count(&|t, p| t == c && p == c);
                let denominator = count(&|t, _| t == c) + count(&|_, p| p == c);
                if denominator > 0.0 { 2.0 * tp / denominator } else { 0.0 }
            };
            used.iter().map(|&c| f1(c)).sum::<f64>() / used.len().max(1) as f64
        }
        Scoring::NegLogLoss => {
            let eps = 1e-15;
            -truth
                .iter()
                .zip(probs)
                .map(|(&t, p)| -p[t].clamp(eps, 1.0).ln())
                .sum::<f64>()
                / truth.len().max(1) as f64
        }
        Scoring::RocAuc => roc_auc(
            truth,
            &probs
                .iter()
                .map(|p| p.get(1).copied().unwrap_or(0.0))
                .collect::<Vec<_>>(),
        ),
        _ => f64::NAN,
    }
}

/// The area under the ROC curve of scores for class 1: the chance a positive outranks a
/// negative, ties counting half (the Mann–Whitney statistic).
fn roc_auc(truth: &[usize], scores: &[f64]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut i = 0;
    while i < order.len() {
        let tied = order[i..]
            .iter()
            .take_while(|&&k| scores[k] == scores[order[i]])
            .count();
        let average = i as f64 + (tied as f64 + 1.0) / 2.0;
        order[i..i + tied].iter().for_each(|&k| ranks[k] = average);
        i += tied;
    }
    let positives = truth.iter().filter(|&&t| t == 1).count() as f64;
    let negatives = truth.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    let rank_sum: f64 = truth.iter().zip(&ranks).filter(|&(&t, _)| t == 1).map(|(_, r)| r).sum();
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_scores_match_scikit_learn_by_hand() {
        // y_true [0,0,1,1,2], y_pred [0,1,1,1,0]: recalls 1/2, 1, 0 → balanced 0.5;
        // F1 per class 0.5, 0.8, 0 → macro 0.4333.
        let truth = [0, 0, 1, 1, 2];
        let one_hot = |c: usize| (0..3).map(|k| if k == c { 0.8 } else { 0.1 }).collect::<Vec<f64>>();
        let probs: Vec<Vec<f64>> = [0, 1, 1, 1, 0].iter().map(|&c| one_hot(c)).collect();
        assert!((classes_score(Scoring::BalancedAccuracy, &truth, &probs, 3) - 0.5).abs() < 1e-12);
        assert!((classes_score(Scoring::F1Macro, &truth, &probs, 3) - 1.3 / 3.0).abs() < 1e-12);
        // log loss: −mean ln p[true] = −(ln .8 + ln .1 + ln .8 + ln .8 + ln .1)/5
        let want = -((0.8f64.ln() * 3.0 + 0.1f64.ln() * 2.0) / 5.0);
        assert!((classes_score(Scoring::NegLogLoss, &truth, &probs, 3) + want).abs() < 1e-12);
    }

    #[test]
    fn roc_auc_counts_ties_half() {
        // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.75
        assert!((roc_auc(&[0, 0, 1, 1], &[0.1, 0.4, 0.35, 0.8]) - 0.75).abs() < 1e-12);
        // a tie between a positive and a negative counts half: [0,1] scored [0.5,0.5] → 0.5
        assert!((roc_auc(&[0, 1], &[0.5, 0.5]) - 0.5).abs() < 1e-12);
        assert_eq!(Scoring::from_name("log_loss"), Some(Scoring::NegLogLoss));
        assert_eq!(Scoring::from_name("roc_auc").map(|s| s.name()), Some("roc_auc"));
    }
}
