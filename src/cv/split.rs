//! Splitters in scikit-learn's manner: `KFold`, `StratifiedKFold`, and `Folds` to hold either.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};
use crate::train::GpuDataset;

/// One split: positions used for training and for validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    /// Training positions.
    pub train: Vec<usize>,
    /// Held-out positions.
    pub validation: Vec<usize>,
}

/// K folds of (nearly) equal size: the first `n % n_splits` folds hold one sample more.
///
/// ```
/// use wgpu_mlp::KFold;
/// let folds = KFold { n_splits: 3, shuffle: false, seed: 0 }.split(7)?;
/// assert_eq!(folds[0].validation, [0, 1, 2]); // 7 = 3 + 2 + 2
/// assert_eq!(folds[2].train, [0, 1, 2, 3, 4]);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KFold {
    /// Number of folds (≥ 2).
    pub n_splits: usize,
    /// Shuffle the samples before splitting.
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
}

/// K folds that keep each class's share: every class's samples are dealt across the folds
/// in turn, so each fold holds each class's count give or take one.
///
/// ```
/// use wgpu_mlp::StratifiedKFold;
/// let labels = [0, 0, 0, 0, 1, 1];
/// let folds = StratifiedKFold { n_splits: 2, shuffle: true, seed: 7 }.split(&labels)?;
/// for fold in &folds {
///     let ones = fold.validation.iter().filter(|&&i| labels[i] == 1).count();
///     assert_eq!((fold.validation.len(), ones), (3, 1)); // two of class 0, one of class 1
/// }
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StratifiedKFold {
    /// Number of folds (≥ 2, and ≤ the smallest class).
    pub n_splits: usize,
    /// Shuffle within each class before dealing.
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
}

fn check_splits(op: &'static str, n_splits: usize, n: usize) -> Result<()> {
    if n_splits < 2 {
        return Err(Error::invalid(op, "n_splits", "at least 2", n_splits));
    }
    if n_splits > n {
        return Err(Error::invalid(
            op,
            "n_splits",
            format!("at most the {n} samples"),
            n_splits,
        ));
    }
    Ok(())
}

/// Explicit folds as given, once each is checked: at least one fold (one is a single
/// validation split, scikit-learn's `PredefinedSplit` with one test fold), every fold with
/// training and validation positions, all within `0..n`.
fn check_explicit(folds: &[Fold], n: usize) -> Result<Vec<Fold>> {
    const OP: &str = "Folds::Explicit";
    if folds.is_empty() {
        return Err(Error::invalid(OP, "folds", "at least 1", 0));
    }
    for (k, fold) in folds.iter().enumerate() {
        for (what, positions) in [("train", &fold.train), ("validation", &fold.validation)] {
            if positions.is_empty() {
                return Err(Error::invalid(
                    OP,
                    format!("fold {k} {what}"),
                    "at least one position",
                    "none",
                ));
            }
            if let Some(&bad) = positions.iter().find(|&&p| p >= n) {
                return Err(Error::invalid(
                    OP,
                    format!("fold {k} {what} position"),
                    format!("< {n} (the rows searched)"),
                    bad,
                ));
            }
        }
    }
    Ok(folds.to_vec())
}

fn folds_from_assignment(fold_of: &[usize], n_splits: usize) -> Vec<Fold> {
    (0..n_splits)
        .map(|k| {
            let (validation, train): (Vec<usize>, Vec<usize>) = (0..fold_of.len()).partition(|&i| fold_of[i] == k);
            Fold { train, validation }
        })
        .collect()
}

impl KFold {
    /// Splits positions `0..n`.
    pub fn split(&self, n: usize) -> Result<Vec<Fold>> {
        check_splits("KFold", self.n_splits, n)?;
        let mut order: Vec<usize> = (0..n).collect();
        if self.shuffle {
            order.shuffle(&mut StdRng::seed_from_u64(self.seed));
        }
        let mut fold_of = vec![0; n];
        let (base, extra) = (n / self.n_splits, n % self.n_splits);
        let mut start = 0;
        for k in 0..self.n_splits {
            let size = base + usize::from(k < extra);
            for &i in &order[start..start + size] {
                fold_of[i] = k;
            }
            start += size;
        }
        Ok(folds_from_assignment(&fold_of, self.n_splits))
    }
}

impl StratifiedKFold {
    /// Splits positions `0..labels.len()` by class.
    pub fn split(&self, labels: &[usize]) -> Result<Vec<Fold>> {
        const OP: &str = "StratifiedKFold";
        check_splits(OP, self.n_splits, labels.len())?;
        let n_classes = labels.iter().copied().max().map_or(0, |m| m + 1);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut fold_of = vec![0; labels.len()];
        // Dealing continues where the previous class stopped, so fold sizes stay within one.
        let mut next_fold = 0;
        for class in 0..n_classes {
            let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
            if members.is_empty() {
                continue;
            }
            if members.len() < self.n_splits {
                return Err(Error::invalid(
                    OP,
                    format!("class {class}"),
                    format!("at least n_splits = {} members", self.n_splits),
                    members.len(),
                ));
            }
            if self.shuffle {
                members.shuffle(&mut rng);
            }
            for i in members {
                fold_of[i] = next_fold;
                next_fold = (next_fold + 1) % self.n_splits;
            }
        }
        Ok(folds_from_assignment(&fold_of, self.n_splits))
    }
}

/// Which splitter a search uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Folds {
    /// Plain K-fold.
    KFold(KFold),
    /// Stratified K-fold (classification).
    Stratified(StratifiedKFold),
    /// Folds given as they are (scikit-learn's `cv=` list of (train, test) index arrays):
    /// positions into the rows the search is given.
    ///
    /// ```
    /// use wgpu_mlp::{cv::Fold, cv::Folds};
    /// let folds = Folds::Explicit(vec![
    ///     Fold { train: vec![2, 3], validation: vec![0, 1] },
    ///     Fold { train: vec![0, 1], validation: vec![2, 3] },
    /// ]);
    /// assert_eq!(folds.n_splits(), 2);
    /// ```
    Explicit(Vec<Fold>),
}

impl Folds {
    /// The number of folds (scikit-learn's `n_splits`).
    pub fn n_splits(&self) -> usize {
        match self {
            Folds::KFold(k) => k.n_splits,
            Folds::Stratified(k) => k.n_splits,
            Folds::Explicit(folds) => folds.len(),
        }
    }

    /// Folds over `rows` of `data`, as row numbers of `data`.
    pub(super) fn split(&self, data: &GpuDataset, rows: &[usize]) -> Result<Vec<Fold>> {
        self.split_host(data.labels(), rows)
    }

    /// Folds over `rows` given the data's class labels (None for regression), as row numbers.
    pub(super) fn split_host(&self, labels: Option<&[usize]>, rows: &[usize]) -> Result<Vec<Fold>> {
        let folds = match self {
            Folds::KFold(k) => k.split(rows.len())?,
            Folds::Stratified(k) => {
                let labels = labels.ok_or_else(|| {
                    Error::invalid(
                        "StratifiedKFold",
                        "data",
                        "a classification data set",
                        "regression targets",
                    )
                })?;
                k.split(&rows.iter().map(|&r| labels[r]).collect::<Vec<_>>())?
            }
            Folds::Explicit(folds) => check_explicit(folds, rows.len())?,
        };
        Ok(folds
            .into_iter()
            .map(|f| Fold {
                train: f.train.iter().map(|&p| rows[p]).collect(),
                validation: f.validation.iter().map(|&p| rows[p]).collect(),
            })
            .collect())
    }
}
