//! The search from a data set on the host: features standardised on the training rows, the
//! data uploaded once, the refit model handed back as a whole fitted pipeline.

use super::{CvProgress, CvReport, GridSearchCv, Shard, ShardScores};
use crate::data::{Dataset, Scaler, Scaling};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
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
    /// use wgpu_mlp::{CsvOptions, Dataset, Gpu, GridSearchCv};
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
        on_host(gpu, data, rows, |on_gpu| self.fit_with_progress(on_gpu, rows, progress))
    }

    /// [`GridSearchCv::fit_shard`] from a data set on the host, standardised as
    /// [`GridSearchCv::fit_dataset`] does (every shard fits the same scaler on the same rows).
    pub fn fit_dataset_shard(&self, gpu: &Gpu, data: &Dataset, rows: &[usize], shard: Shard) -> Result<ShardScores> {
        let (_, on_gpu) = standardised_upload(gpu, data, rows)?;
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
        on_host(gpu, data, rows, |on_gpu| self.merge_shards(on_gpu, rows, shards))
    }
}

/// `search` on `data` standardised on `rows` and uploaded; its refit model made the whole
/// fitted pipeline.
fn on_host(
    gpu: &Gpu,
    data: &Dataset,
    rows: &[usize],
    search: impl FnOnce(&GpuDataset) -> Result<CvReport>,
) -> Result<CvReport> {
    let (scaler, on_gpu) = standardised_upload(gpu, data, rows)?;
    let mut report = search(&on_gpu)?;
    report.best_model = report
        .best_model
        .take()
        .map(|m| fitted_pipeline(m, scaler, data))
        .transpose()?;
    Ok(report)
}

/// The scaler fitted on `rows` of `data`, and `data` standardised by it on the GPU.
fn standardised_upload(gpu: &Gpu, data: &Dataset, rows: &[usize]) -> Result<(Scaler, GpuDataset)> {
    data.validate()?;
    let scaler = Scaler::fit(Scaling::Standardize, data, rows)?;
    let mut scaled = data.clone();
    scaler.transform(&mut scaled)?;
    Ok((scaler, GpuDataset::upload(gpu, &scaled)?))
}

/// `model` with its scaler, its input schema and its class names: the file's, or for classes the numbers as
/// text, so a saved classifier says it is one.
fn fitted_pipeline(model: Model, scaler: Scaler, data: &Dataset) -> Result<Model> {
    let mut model = model.with_scaler(scaler);
    if let Some(schema) = &data.schema {
        model = model.with_schema(schema.clone())?;
    }
    let numbers = || data.n_classes().map(|k| (0..k).map(|c| c.to_string()).collect());
    match data.class_names.clone().or_else(numbers) {
        Some(names) => model.with_class_names(names),
        None => Ok(model),
    }
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
