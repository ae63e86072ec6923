//! The search from a data set on the host: features standardised on the training rows, the
//! data uploaded once, the refit model handed back as a whole fitted pipeline.

use super::{ClassWeight, CvProgress, CvReport, GridSearchCv, Shard, ShardScores};
use crate::data::{Dataset, Preprocessor, Scaler};
use crate::device::gpu::Gpu;
use crate::error::{Error, Result};
use crate::train::{GpuDataset, Model};

impl GridSearchCv {
    /// [`GridSearchCv::fit`] from a data set on the host, with raw features: standardises
    /// them on `rows` (a scaler fitted on those rows only, as scikit-learn's
    /// `make_pipeline(StandardScaler(), MLPClassifier())` searched on them), uploads the data
    /// once, searches, and refits. The refit model carries the scaler and the class names
    /// (the file's, or the class numbers as text), so it predicts on raw rows and
    /// [`Model::save`] keeps the whole pipeline.
    ///
    /// ```no_run
    /// use wgpu_mlp::{Dataset, Gpu, GridSearchCv, data::CsvOptions};
    /// # fn main() -> wgpu_mlp::Result<()> {
    /// let gpu = Gpu::new()?;
    /// let data = Dataset::from_csv_path("data/digits.csv.gz", &CsvOptions::default())?;
    /// let (train, test) = data.train_test_split(0.2, 0)?;
    /// let model = GridSearchCv::default().fit_dataset(&gpu, &data, &train)?.into_best_model()?;
    /// println!("test accuracy {:.3}", model.score(&data, &test)?);
    /// # Ok(()) }
    /// ```
    pub fn fit_dataset(&self, gpu: &Gpu, data: &Dataset, rows: &[usize]) -> Result<CvReport> {
        self.fit_dataset_with_progress(gpu, data, rows, &mut |_| {})
    }

    /// [`GridSearchCv::fit_dataset`], with `progress` seeing every epoch of every model as
    /// it ends (see [`GridSearchCv::fit_with_progress`]).
    pub fn fit_dataset_with_progress(
        &self,
        gpu: &Gpu,
        data: &Dataset,
        rows: &[usize],
        progress: &mut dyn FnMut(CvProgress),
    ) -> Result<CvReport> {
        on_host(self, gpu, data, rows, |on_gpu| {
            self.fit_with_progress(on_gpu, rows, progress)
        })
    }

    /// [`GridSearchCv::fit_shard`] from a data set on the host, standardised as
    /// [`GridSearchCv::fit_dataset`] does (every shard fits the same scaler on the same rows).
    pub fn fit_dataset_shard(&self, gpu: &Gpu, data: &Dataset, rows: &[usize], shard: Shard) -> Result<ShardScores> {
        let (_, on_gpu) = prepared_upload(self, gpu, data, rows)?;
        self.fit_shard(&on_gpu, rows, shard)
    }

    /// [`GridSearchCv::merge_shards`] from a data set on the host: the refit model is the
    /// whole fitted pipeline, as from [`GridSearchCv::fit_dataset`].
    pub fn merge_dataset_shards(
        &self,
        gpu: &Gpu,
        data: &Dataset,
        rows: &[usize],
        shards: &[ShardScores],
    ) -> Result<CvReport> {
        on_host(self, gpu, data, rows, |on_gpu| self.merge_shards(on_gpu, rows, shards))
    }
}

impl GridSearchCv {
    /// Trains grid point `point` (as [`CvReport::best_params`] gives it) on `rows` of a data
    /// set on the host, with no search: the preparation fitted on `rows`, as the refit of
    /// [`GridSearchCv::fit_dataset`] does. For a final model on every row once a held-out
    /// test has scored the search's.
    pub fn refit_dataset(
        &self,
        gpu: &Gpu,
        data: &Dataset,
        rows: &[usize],
        point: &super::Hyperparams,
    ) -> Result<Model> {
        data.validate()?;
        let prepared = Prepared::fit(self, data, rows, None)?;
        let on_gpu = GpuDataset::upload(gpu, &prepared.transform(data)?)?;
        let model = crate::train::fit(&on_gpu, rows, None, &self.config(point))?;
        prepared.attach(model, data)
    }
}

/// `search` on `data` prepared per fold (see [`prepared_upload`]); its refit model made the
/// whole fitted pipeline.
fn on_host(
    search_settings: &GridSearchCv,
    gpu: &Gpu,
    data: &Dataset,
    rows: &[usize],
    search: impl FnOnce(&GpuDataset) -> Result<CvReport>,
) -> Result<CvReport> {
    let (pipeline, on_gpu) = prepared_upload(search_settings, gpu, data, rows)?;
    let mut report = search(&on_gpu)?;
    report.per_fold_preparation = on_gpu.fold_copies().is_some();
    report.best_model = report.best_model.take().map(|m| pipeline.attach(m, data)).transpose()?;
    Ok(report)
}

/// What a model learns from its training rows besides the network: the column transformer
/// (imputation, scaling, categories) and, for a regression, the targets' standardisation.
struct Prepared {
    preprocessor: Preprocessor,
    target: Option<Scaler>,
    /// Each class's loss weight, for one-hot targets (softmax cross-entropy takes targets
    /// scaled by w as its loss and gradient times w).
    class_weights: Option<Vec<f32>>,
    /// Each row's loss weight (times its class's).
    sample_weights: Option<Vec<f32>>,
}

/// The rows' weights, checked: one finite weight ≥ 0 per row of `data`.
fn sample_weights(data: &Dataset, weights: Option<&[f32]>) -> Result<Option<Vec<f32>>> {
    match weights {
        None => Ok(None),
        Some(w) if w.len() == data.len() && w.iter().all(|v| v.is_finite() && *v >= 0.0) => Ok(Some(w.to_vec())),
        Some(w) => Err(Error::invalid(
            "GridSearchCv",
            "sample_weight",
            format!("{} finite weights ≥ 0, one per row of the data set", data.len()),
            format!("{} weights", w.len()),
        )),
    }
}

/// The weight of each class on `rows` under `class_weight`.
fn class_weights(data: &Dataset, rows: &[usize], class_weight: &ClassWeight) -> Result<Option<Vec<f32>>> {
    let (Some(labels), k) = (&data.labels, data.n_outputs) else {
        return match class_weight {
            ClassWeight::Uniform => Ok(None),
            _ => Err(Error::invalid(
                "GridSearchCv",
                "class_weight",
                "Uniform for a regression",
                "class weights",
            )),
        };
    };
    match class_weight {
        ClassWeight::Uniform => Ok(None),
        ClassWeight::Given(weights) if weights.len() == k && weights.iter().all(|w| w.is_finite() && *w >= 0.0) => {
            Ok(Some(weights.clone()))
        }
        ClassWeight::Given(weights) => Err(Error::invalid(
            "GridSearchCv",
            "class_weight",
            format!("{k} finite weights ≥ 0, one per class"),
            format!("{weights:?}"),
        )),
        ClassWeight::Balanced => {
            let mut counts = vec![0usize; k];
            rows.iter().for_each(|&r| counts[labels[r]] += 1);
            let present = counts.iter().filter(|&&c| c > 0).count().max(1);
            let weight = |c: usize| {
                if c > 0 {
                    rows.len() as f32 / (present as f32 * c as f32)
                } else {
                    0.0
                }
            };
            Ok(Some(counts.iter().map(|&c| weight(c)).collect()))
        }
    }
}

impl Prepared {
    /// Fitted on `rows`; with `layout`, its column layout kept (see
    /// [`Preprocessor::fit_with_layout`]).
    fn fit(search: &GridSearchCv, data: &Dataset, rows: &[usize], layout: Option<&Preprocessor>) -> Result<Prepared> {
        let options = &search.preprocess;
        let mut class_weights = class_weights(data, rows, &search.class_weight)?;
        let sample_weights = sample_weights(data, search.sample_weight.as_deref())?;
        if sample_weights.is_some() && class_weights.is_none() {
            class_weights = Some(vec![1.0; data.n_outputs]);
        }
        if class_weights.is_some() && search.base.loss != crate::ops::Loss::SoftmaxCrossEntropy {
            return Err(Error::invalid(
                "GridSearchCv",
                "class_weight",
                "the cross_entropy loss (class and sample weights scale its targets)",
                search.base.loss.name(),
            ));
        }
        let target = match data.labels {
            Some(_) => None,
            None => Some(target_scaler(data, rows)?),
        };
        let preprocessor = match layout {
            Some(layout) => Preprocessor::fit_with_layout(data, rows, options, layout)?,
            None => Preprocessor::fit(data, rows, options)?,
        };
        Ok(Prepared {
            preprocessor,
            target,
            class_weights,
            sample_weights,
        })
    }

    /// `data` as the network sees it: features transformed, regression targets standardised.
    fn transform(&self, data: &Dataset) -> Result<Dataset> {
        let mut out = self.preprocessor.transform(data)?;
        if let (Some(weights), Some(labels)) = (&self.class_weights, &data.labels) {
            let k = out.n_outputs;
            for (row, &label) in labels.iter().enumerate() {
                let weight = weights[label] * self.sample_weights.as_ref().map_or(1.0, |w| w[row]);
                out.targets[row * k..(row + 1) * k]
                    .iter_mut()
                    .for_each(|t| *t *= weight);
            }
        }
        if let Some(target) = &self.target {
            let o = out.n_outputs;
            for (i, t) in out.targets.iter_mut().enumerate() {
                *t = (*t - target.shift()[i % o]) * target.scale()[i % o];
            }
        }
        Ok(out)
    }

    /// `model` with its preprocessing, schema, class names and target scaling.
    fn attach(self, model: Model, data: &Dataset) -> Result<Model> {
        let mut model = model.with_preprocessor(self.preprocessor)?;
        if let Some(schema) = &data.schema {
            model = model.with_schema(schema.clone())?;
        }
        if let Some(target) = self.target {
            model = model.with_target_scaler(target)?;
        }
        let numbers = || data.n_classes().map(|k| (0..k).map(|c| c.to_string()).collect());
        match data.class_names.clone().or_else(numbers) {
            Some(names) => model.with_class_names(names),
            None => Ok(model),
        }
    }
}

/// Each target column's mean and 1/std on `rows` (scikit-learn's `StandardScaler` inside a
/// `TransformedTargetRegressor`).
fn target_scaler(data: &Dataset, rows: &[usize]) -> Result<Scaler> {
    let o = data.n_outputs;
    let (shift, scale) = (0..o)
        .map(|j| {
            let values = || rows.iter().map(move |&r| data.targets[r * o + j] as f64);
            let mean = values().sum::<f64>() / rows.len().max(1) as f64;
            let std = (values().map(|v| (v - mean).powi(2)).sum::<f64>() / rows.len().max(1) as f64).sqrt();
            (mean as f32, if std > 0.0 { (1.0 / std) as f32 } else { 1.0 })
        })
        .unzip();
    Scaler::from_parts(shift, scale)
}

/// `data` prepared and uploaded for a search over `rows`: one copy per cross-validation fold,
/// prepared on that fold's training rows alone (so no held-out row shapes the statistics it
/// is scored with), and a last copy prepared on all of `rows` for the refit — all in one
/// data set on the GPU, so the stacked search still trains every fold model in one job.
/// Per fold: the fills (medians, most frequent categories), means and spreads, and the
/// targets' standardisation; from all of `rows`: the column layout (which categories get a
/// column, which columns an indicator), which sees no label and keeps every fold's network
/// the same shape.
/// Where the copies would not fit one GPU binding, one copy prepared on all of `rows` serves
/// the folds as well. The preparation the refit model keeps is returned.
fn prepared_upload(search: &GridSearchCv, gpu: &Gpu, data: &Dataset, rows: &[usize]) -> Result<(Prepared, GpuDataset)> {
    data.validate()?;
    let refit = Prepared::fit(search, data, rows, None)?;
    let whole = refit.transform(data)?;
    let folds = search.folds.split_host(data.labels.as_deref(), rows)?;
    let bytes = (folds.len() + 1) * data.len() * (whole.n_features + whole.n_outputs) * 4;
    if bytes as u64 > gpu.max_binding_bytes() {
        return Ok((refit, GpuDataset::upload(gpu, &whole)?));
    }
    let mut copies = Vec::with_capacity(folds.len() + 1);
    let mut units = Vec::with_capacity(folds.len() + 1);
    for fold in &folds {
        let fold_prepared = Prepared::fit(search, data, &fold.train, Some(&refit.preprocessor))?;
        copies.push(fold_prepared.transform(data)?);
        units.push(fold_prepared.target);
    }
    copies.push(whole);
    units.push(refit.target.clone());
    let stacked = Dataset {
        features: copies.iter().flat_map(|c| c.features.iter().copied()).collect(),
        targets: copies.iter().flat_map(|c| c.targets.iter().copied()).collect(),
        labels: data
            .labels
            .as_ref()
            .map(|l| std::iter::repeat_n(l.iter().copied(), copies.len()).flatten().collect()),
        ..copies[0].clone()
    };
    Ok((
        refit,
        GpuDataset::upload(gpu, &stacked)?.with_fold_copies(data.len(), units),
    ))
}

impl CvReport {
    /// The refit model, for a search run with `refit` (the default); without it, an error
    /// that says so.
    pub fn into_best_model(self) -> Result<Model> {
        self.best_model.ok_or_else(|| {
            Error::invalid(
                "CvReport::into_best_model",
                "GridSearchCv::refit",
                "true (the winner refit on all training rows)",
                "false: set refit to get a model",
            )
        })
    }
}
