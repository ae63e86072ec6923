//! Training on a data set resident on the GPU: shuffled mini-batches gathered on the device,
//! an epoch per submit, metrics read back once per epoch, optional early stopping.

mod batches;
mod fit;
mod guards;
mod model;
pub(crate) mod model_file;
mod resume;
mod stack;
mod stall;

pub(crate) use fit::{evaluate_stack, fit_fold, hold_out, train_stack};
pub use fit::{fit, fit_async, fit_with_progress, fit_with_progress_async};
pub use resume::{resume, resume_model};
pub(crate) use stack::stack_groups;
pub use stack::{FitJob, fit_batched};

use crate::data::{Dataset, Scaler, Schema, Task};
use crate::device::gpu::Gpu;
use crate::device::tensor::Tensor;
use crate::error::{Error, Result};
use crate::mlp::Mlp;
use crate::ops::{Activation, Loss};
use crate::optim::schedule::Schedule;
use crate::optim::{Optimizer, Sgd};
/// A data set uploaded to the GPU once: features (N,F) and targets (N,O). Training, cross-
/// validation and evaluation gather their batches from it on the device.
///
/// ```no_run
/// use wgpu_mlp::{Dataset, Gpu, GpuDataset};
/// let gpu = Gpu::new()?;
/// let data = Dataset::classification("toy", vec![0.0, 1.0, 2.0, 3.0], 1, vec![0, 0, 1, 1], 2)?;
/// let on_gpu = GpuDataset::upload(&gpu, &data)?;
/// assert_eq!(on_gpu.len(), 4);
/// # Ok::<(), wgpu_mlp::Error>(())
/// ```
pub struct GpuDataset {
    gpu: Gpu,
    features: Tensor,
    targets: Tensor,
    labels: Option<Vec<usize>>,
    n_features: usize,
    n_outputs: usize,
    /// The targets on the host too, (N,O), for scores computed there (R²).
    host_targets: Vec<f32>,
    /// Set when the rows are K+1 copies of an n-row table, copy k preprocessed on the
    /// training rows of fold k and the last on all training rows: the n of a row.
    fold_copies: Option<usize>,
    /// Per copy (one without copies), the standardisation its targets went through, if any:
    /// errors are reported in the targets' own units.
    target_units: Vec<Option<Scaler>>,
}

impl GpuDataset {
    /// Validates and uploads `data`.
    pub fn upload(gpu: &Gpu, data: &Dataset) -> Result<Self> {
        data.validate()?;
        if data.needs_preprocessing() {
            return Err(Error::invalid(
                "GpuDataset::upload",
                "data",
                "numbers the network can take (missing cells filled, categories encoded: use GridSearchCv::fit_dataset, or a Preprocessor first)",
                format!("{}: a table with missing cells or categorical columns", data.name),
            ));
        }
        let n = data.len();
        Ok(GpuDataset {
            gpu: gpu.clone(),
            features: Tensor::from_slice(gpu, &[n, data.n_features], &data.features)?,
            targets: Tensor::from_slice(gpu, &[n, data.n_outputs], &data.targets)?,
            labels: data.labels.clone(),
            n_features: data.n_features,
            n_outputs: data.n_outputs,
            host_targets: data.targets.clone(),
            fold_copies: None,
            target_units: vec![None],
        })
    }

    /// Marks the rows as K+1 copies of an `n`-row table (see [`GpuDataset::fold_copies`]).
    pub(crate) fn with_fold_copies(mut self, n: usize, target_units: Vec<Option<Scaler>>) -> Self {
        self.fold_copies = Some(n);
        self.target_units = target_units;
        self
    }

    /// The errors `outputs − targets` of row `row`, in the targets' own units.
    pub(crate) fn in_target_units(&self, row: usize, outputs: &[f32]) -> Vec<f64> {
        let copy = self.fold_copies.map_or(0, |n| row / n.max(1));
        let units = self.target_units.get(copy).and_then(Option::as_ref);
        let back = |v: f32, j: usize| match units {
            Some(u) => (v / u.scale()[j] + u.shift()[j]) as f64,
            None => v as f64,
        };
        outputs
            .iter()
            .zip(self.host_target(row))
            .enumerate()
            .map(|(j, (&y, &t))| back(y, j) - back(t, j))
            .collect()
    }

    /// Where the rows are K+1 copies of an n-row table (copy k preprocessed on the training
    /// rows of cross-validation fold k, the last on all training rows): n. Searches then
    /// train and score fold k on copy k and refit on the last.
    pub(crate) fn fold_copies(&self) -> Option<usize> {
        self.fold_copies
    }

    /// The targets of row `row`, as uploaded.
    pub(crate) fn host_target(&self, row: usize) -> &[f32] {
        &self.host_targets[row * self.n_outputs..(row + 1) * self.n_outputs]
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.features.shape()[0]
    }

    /// Whether it holds no samples (never: uploads of empty data sets fail).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Class labels, for classification data.
    pub fn labels(&self) -> Option<&[usize]> {
        self.labels.as_deref()
    }

    /// The device it lives on.
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub(crate) fn check_rows(&self, op: &'static str, what: &str, rows: &[usize]) -> Result<()> {
        if rows.is_empty() {
            return Err(Error::invalid(op, what, "at least one sample", "none"));
        }
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.len()) {
            return Err(Error::invalid(
                op,
                format!("{what} index"),
                format!("< {}", self.len()),
                bad,
            ));
        }
        Ok(())
    }
}

/// How to train one model. [`TrainConfig::default`] (= [`TrainConfig::classifier`]) needs no
/// tuning on small tabular data; change what you need with struct update syntax.
///
/// ```
/// use wgpu_mlp::{Activation, Adam, TrainConfig};
/// let config = TrainConfig {
///     hidden: vec![64, 32],
///     hidden_activation: Activation::Tanh,
///     optimizer: Adam::adamw(3e-3).weight_decay(1e-2).into(),
///     ..TrainConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Hidden layer sizes (inputs and outputs come from the data).
    pub hidden: Vec<usize>,
    /// The optimizer: [`Sgd`] or [`crate::optim::Adam`], converted with `.into()`.
    pub optimizer: Optimizer,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Seed of the initialisation and of the per-epoch shuffles.
    pub seed: u64,
    /// How the initial parameters are drawn from the seed.
    pub init: crate::mlp::Init,
    /// Activation after every hidden layer.
    pub hidden_activation: Activation,
    /// Activation of the output layer ([`Activation::Identity`] with
    /// [`Loss::SoftmaxCrossEntropy`], which takes logits).
    pub output_activation: Activation,
    /// The training loss.
    pub loss: Loss,
    /// How the learning rate changes from epoch to epoch (from the optimizer's rate).
    pub schedule: Schedule,
    /// Drop the last, partial batch of each epoch instead of training on it.
    pub drop_last: bool,
    /// Shuffle the training rows before every epoch (else they train in the order given).
    pub shuffle: bool,
    /// Stop when the validation loss has not improved for this many epochs, and keep the
    /// parameters of the best epoch: the validation rows given to `fit`, or else
    /// `validation_fraction` of the training rows held out.
    pub early_stopping: Option<usize>,
    /// The share of the training rows `fit` holds out for early stopping when it is given
    /// no validation rows (scikit-learn's `validation_fraction`).
    pub validation_fraction: f64,
    /// What early stopping watches: the validation loss (the default) or each epoch's
    /// training loss (scikit-learn's `early_stopping=False` with `n_iter_no_change`).
    pub monitor: Monitor,
    /// The least decrease of the watched loss that counts as an improvement for early
    /// stopping (scikit-learn's `tol`, Keras' `min_delta`); 0 counts any decrease.
    pub tol: f32,
}

/// What [`TrainConfig::early_stopping`] watches.
///
/// ```
/// use wgpu_mlp::{TrainConfig, train::Monitor};
/// // scikit-learn's MLPClassifier at its defaults: stop after 10 epochs in which the
/// // training loss fell by less than 1e-4, keep the last epoch's parameters
/// let config = TrainConfig { monitor: Monitor::TrainingLoss, tol: 1e-4, ..TrainConfig::default() };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Monitor {
    /// The loss on the validation rows (given to `fit`, or `validation_fraction` of the
    /// training rows held out); the best epoch's parameters are kept.
    #[default]
    ValidationLoss,
    /// Each epoch's mean training loss; no rows are held out and the last epoch's parameters
    /// are kept.
    TrainingLoss,
}

impl Default for TrainConfig {
    /// [`TrainConfig::classifier`]: settings that need no tuning on small tabular data.
    fn default() -> Self {
        TrainConfig::classifier()
    }
}

impl TrainConfig {
    /// scikit-learn `MLPClassifier`'s defaults with early stopping, the settings that work on
    /// small tabular data without tuning (and [`TrainConfig::default`]): one hidden layer of
    /// 100 ReLU units, Adam (lr 1e-3), softmax cross-entropy on logits, batches of up to 200
    /// rows (a smaller data set trains in one partial batch, its padding weighted 0), up to
    /// 200 epochs (scikit-learn's `max_iter`), stopping after 10 without improvement on a 10%
    /// hold-out.
    ///
    /// ```
    /// use wgpu_mlp::{Loss, TrainConfig};
    /// let config = TrainConfig { seed: 7, ..TrainConfig::default() };
    /// assert_eq!(config.loss, Loss::SoftmaxCrossEntropy);
    /// ```
    pub fn classifier() -> Self {
        TrainConfig {
            hidden: vec![100],
            optimizer: crate::optim::Adam::new(1e-3).into(),
            epochs: 200,
            batch_size: 200,
            seed: 0,
            init: crate::mlp::Init::FanIn,
            hidden_activation: Activation::Relu,
            output_activation: Activation::Identity,
            loss: Loss::SoftmaxCrossEntropy,
            schedule: Schedule::Constant,
            drop_last: false,
            shuffle: true,
            early_stopping: Some(10),
            validation_fraction: 0.1,
            monitor: Monitor::ValidationLoss,
            tol: 0.0,
        }
    }

    /// The classic backpropagation tutorial network this library started from: sigmoid
    /// layers (64 hidden units) and outputs, MSE, SGD (lr 0.5, momentum 0.9), 30 epochs of
    /// batches of 32, no early stopping. The benchmark workloads and many tests use it.
    pub fn classic() -> Self {
        TrainConfig {
            hidden: vec![64],
            optimizer: Sgd::new(0.5).momentum(0.9).into(),
            epochs: 30,
            batch_size: 32,
            hidden_activation: Activation::Sigmoid,
            output_activation: Activation::Sigmoid,
            loss: Loss::Mse,
            early_stopping: None,
            ..TrainConfig::classifier()
        }
    }

    /// [`TrainConfig::classifier`] for one real-valued target: MSE on an identity output
    /// (scikit-learn's `MLPRegressor` with early stopping).
    pub fn regressor() -> Self {
        TrainConfig {
            loss: Loss::Mse,
            ..TrainConfig::classifier()
        }
    }

    /// Whether early stopping holds rows out to watch (it watches the validation loss).
    pub(crate) fn holds_rows_out(&self) -> bool {
        self.early_stopping.is_some() && self.monitor == Monitor::ValidationLoss
    }

    /// Checks ranges: epochs ≥ 1, batch size ≥ 1, hidden sizes ≥ 1, the optimizer's.
    pub fn validate(&self) -> Result<()> {
        const OP: &str = "TrainConfig";
        self.optimizer.validate()?;
        self.schedule.validate()?;
        if let crate::mlp::Init::GlorotUniform { gain } = self.init
            && !(gain > 0.0 && gain.is_finite())
        {
            return Err(Error::invalid(OP, "init gain", "a finite value > 0", gain));
        }
        if self.epochs == 0 {
            return Err(Error::invalid(OP, "epochs", "at least 1", 0));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid(OP, "batch_size", "at least 1", 0));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(Error::invalid(OP, format!("hidden[{i}]"), "at least 1", 0));
        }
        if self.early_stopping == Some(0) {
            return Err(Error::invalid(OP, "early_stopping patience", "at least 1 epoch", 0));
        }
        if !(self.tol >= 0.0 && self.tol.is_finite()) {
            return Err(Error::invalid(OP, "tol", "a finite value ≥ 0", self.tol));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return Err(Error::invalid(
                OP,
                "validation_fraction",
                "a value in (0, 1)",
                self.validation_fraction,
            ));
        }
        self.loss.check_output_activation(OP, self.output_activation)
    }
}

/// What one epoch measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples (each weighted once).
    pub train_loss: f32,
    /// The learning rate the epoch trained with (see [`Schedule`]).
    pub lr: f32,
    /// Loss on the validation rows after the epoch.
    pub val_loss: Option<f32>,
    /// Accuracy on the validation rows after the epoch (classification).
    pub val_accuracy: Option<f32>,
}

/// Loss (and accuracy, for classification) of a model on some rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    /// Mean loss per sample.
    pub loss: f32,
    /// Fraction of samples whose largest output is their class.
    pub accuracy: Option<f32>,
}

/// A trained model with its history: what [`fit`], [`GridSearchCv`](crate::cv::GridSearchCv)
/// and [`Model::load`] give. With its scaler and class names attached it is the whole
/// fitted pipeline: it predicts on raw rows and saves as one file.
///
/// ```no_run
/// # fn demo(gpu: &wgpu_mlp::Gpu, data: &wgpu_mlp::Dataset, test: &[usize]) -> wgpu_mlp::Result<()> {
/// let model = wgpu_mlp::Model::load(gpu, "model.safetensors")?;
/// let x = data.features_of(test)?;
/// println!("accuracy {:.3}", model.score(data, test)?);
/// println!("classes {:?}", model.predict_class_names(&x)?);
/// println!("probabilities {:?}", model.predict_proba(&x)?);
/// # Ok(()) }
/// ```
pub struct Model {
    mlp: Mlp,
    /// Metrics of the epochs this call trained.
    history: Vec<EpochMetrics>,
    /// Epochs trained in all, resumed runs included.
    epochs_done: usize,
    seed: u64,
    /// The feature scaling fitted with it, applied to new rows by `predict`.
    scaler: Option<Scaler>,
    /// The text of each class (output order), for `predict_class_names`.
    class_names: Option<Vec<String>>,
    /// The input columns and task it was fitted with, where known.
    schema: Option<crate::data::Schema>,
    /// The column transformer its inputs go through (in place of `scaler`), if any.
    preprocessor: Option<crate::data::Preprocessor>,
    /// The standardisation of a regression's targets: outputs are mapped back through it.
    target_scaler: Option<Scaler>,
    /// Notes kept with the model (`info.` metadata entries).
    info: std::collections::BTreeMap<String, String>,
}

/// One model of a stacked run: the rows it trains on and its settings.
pub(crate) struct Lane<'a> {
    pub(crate) rows: &'a [usize],
    pub(crate) config: &'a TrainConfig,
    /// Fail with [`Error::Stalled`] when the model stops learning (a single model only).
    pub(crate) watch_stalls: bool,
}

impl<'a> Lane<'a> {
    pub(crate) fn new(rows: &'a [usize], config: &'a TrainConfig) -> Self {
        Lane {
            rows,
            config,
            watch_stalls: false,
        }
    }

    pub(crate) fn watched(rows: &'a [usize], config: &'a TrainConfig) -> Self {
        Lane {
            watch_stalls: true,
            ..Lane::new(rows, config)
        }
    }
}
