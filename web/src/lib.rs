//! The browser demo's bridge (issue #27): what `web/index.html` calls, over the library's
//! async API, on the visitor's GPU through WebGPU. Build and serve it with `bash web/build.sh`
//! (see the README's "In a browser").
//!
//! Every method that waits for the GPU returns a `Promise`; a `Demo` holds one data set and
//! the last model trained on it.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use wgpu_mlp::cv::{CvProgress, Folds};
use wgpu_mlp::data::{CsvOptions, Scaler, Scaling, stratified_split};
use wgpu_mlp::train::fit_with_progress_async;
use wgpu_mlp::{Adam, Dataset, Gpu, GpuDataset, GridSearchCv, Model, ParamGrid, StratifiedKFold, TrainConfig};

/// The main job's data (scikit-learn's digits: 8×8 images, 16 grey levels, 10 classes).
const DIGITS: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The share of rows held out to score a model (stratified by class).
const HELD_OUT: f64 = 0.2;

struct State {
    gpu: Gpu,
    data: Option<Dataset>,
    model: Option<Rc<Model>>,
}

/// The page's session: its GPU, its data set and its model.
#[wasm_bindgen]
pub struct Demo {
    state: Rc<RefCell<State>>,
}

fn js_error(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// The session's device and (a copy of) its data set, or the error a page shows.
fn gpu_and_data(state: &RefCell<State>) -> Result<(Gpu, Dataset), JsValue> {
    let state = state.borrow();
    let data = state.data.clone().ok_or_else(|| js_error("load a data set first"))?;
    Ok((state.gpu.clone(), data))
}

/// The session's model, or the error a page shows.
fn model_of(state: &RefCell<State>) -> Result<Rc<Model>, JsValue> {
    state
        .borrow()
        .model
        .clone()
        .ok_or_else(|| js_error("train a model first"))
}

/// Opens the page's GPU: a `Promise` of a [`Demo`].
#[wasm_bindgen]
pub fn open() -> Promise {
    future_to_promise(async {
        let gpu = Gpu::new_async().await.map_err(js_error)?;
        let state = State {
            gpu,
            data: None,
            model: None,
        };
        Ok(Demo {
            state: Rc::new(RefCell::new(state)),
        }
        .into())
    })
}

#[wasm_bindgen]
impl Demo {
    /// The adapter, as the browser describes it (browsers may hide its name).
    pub fn adapter(&self) -> String {
        let state = self.state.borrow();
        let info = state.gpu.adapter_info();
        let name = if info.name.is_empty() {
            "unnamed adapter"
        } else {
            &info.name
        };
        format!("{name} ({:?}, {:?})", info.backend, info.device_type)
    }

    /// Loads the digits data set; returns a one-line summary.
    pub fn load_digits(&self) -> Result<String, JsValue> {
        self.load_csv(DIGITS, "digits.csv.gz")
    }

    /// Loads a CSV file's bytes (plain or gzip; the label in the last column, a header
    /// recognised where it is clear) for classification; returns a one-line summary.
    pub fn load_csv(&self, bytes: &[u8], name: &str) -> Result<String, JsValue> {
        let data = Dataset::from_csv_bytes(bytes, name, &CsvOptions::default()).map_err(js_error)?;
        let classes = data.class_names.as_ref().map_or(data.n_outputs, Vec::len);
        let summary = format!(
            "{name}: {} rows, {} features, {classes} classes",
            data.len(),
            data.n_features
        );
        let mut state = self.state.borrow_mut();
        state.data = Some(data);
        state.model = None;
        Ok(summary)
    }

    /// Loads a model file (from `wgpu-mlp fit -o`, `Model::save` or this page's download) as
    /// the page's model; returns a one-line summary.
    pub fn load_model(&self, bytes: &[u8], name: &str) -> Result<String, JsValue> {
        let mut state = self.state.borrow_mut();
        let model = Model::from_bytes(&state.gpu, bytes, name).map_err(js_error)?;
        let summary = format!(
            "{name}: layers {:?}, {} inputs, {} outputs",
            model.mlp().sizes(),
            model.n_features(),
            model.n_outputs()
        );
        state.model = Some(Rc::new(model));
        Ok(summary)
    }

    /// The loaded data set's feature count (0 before one is loaded).
    pub fn n_features(&self) -> usize {
        self.state.borrow().data.as_ref().map_or(0, |d| d.n_features)
    }

    /// Trains a classifier on four fifths of the rows (Adam at `lr`, one hidden ReLU layer of
    /// `hidden` units, softmax cross-entropy, batches of 32), standardised by statistics of
    /// those rows only. `on_epoch(epoch, train_loss, held_out_loss, held_out_accuracy)` is
    /// called after every epoch. A `Promise` of the accuracy on the fifth held out.
    pub fn train(&self, hidden: usize, lr: f32, epochs: usize, on_epoch: Function) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (gpu, data) = gpu_and_data(&state)?;
            let (model, accuracy) = train(&gpu, &data, (hidden, lr, epochs), &on_epoch).await?;
            state.borrow_mut().model = Some(Rc::new(model));
            Ok(JsValue::from_f64(accuracy))
        })
    }

    /// A 5-fold stratified grid search over `lrs` × `hiddens` (the rest as [`Demo::train`]),
    /// every fold × point model trained together as stacked GPU jobs, on the training four
    /// fifths; the winner refitted on them and scored on the held-out fifth, and kept as the
    /// page's model. `on_epoch(point, fold, epoch, train_loss)` (fold −1 for the refit) after
    /// every epoch of every model. A `Promise` of a report: one line per point, best first,
    /// then the held-out accuracy.
    pub fn search(&self, lrs: Vec<f32>, hiddens: Vec<usize>, epochs: usize, on_epoch: Function) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (gpu, data) = gpu_and_data(&state)?;
            let (model, report) = search(&gpu, &data, (lrs, hiddens, epochs), &on_epoch).await?;
            state.borrow_mut().model = Some(Rc::new(model));
            Ok(JsValue::from_str(&report))
        })
    }

    /// Class probabilities for one row of raw feature values (as in the data set: the
    /// model standardises them): a `Promise` of a `Float32Array`.
    pub fn predict(&self, values: Vec<f32>) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let model = model_of(&state)?;
            let p = model.predict_proba_async(&values).await.map_err(js_error)?;
            Ok(js_sys::Float32Array::from(&p[..]).into())
        })
    }

    /// The model file (the same format as `wgpu-mlp fit -o`): a `Promise` of a `Uint8Array`.
    pub fn model_bytes(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let model = model_of(&state)?;
            let bytes = model.to_bytes_async().await.map_err(js_error)?;
            Ok(Uint8Array::from(&bytes[..]).into())
        })
    }
}

/// A classification data set split for the demo: four fifths to train on (stratified), the
/// fifth held out, standardised by the four fifths' statistics and uploaded.
struct Split {
    labels: Vec<usize>,
    train: Vec<usize>,
    held_out: Vec<usize>,
    scaler: Scaler,
    on_gpu: GpuDataset,
}

impl Split {
    fn of(gpu: &Gpu, data: &Dataset) -> Result<Split, JsValue> {
        let labels = data
            .labels
            .clone()
            .ok_or_else(|| js_error("the data set has no class labels"))?;
        let (train, held_out) = stratified_split(&labels, HELD_OUT, 0).map_err(js_error)?;
        let scaler = Scaler::fit(Scaling::Standardize, data, &train).map_err(js_error)?;
        let mut scaled = data.clone();
        scaler.transform(&mut scaled).map_err(js_error)?;
        let on_gpu = GpuDataset::upload(gpu, &scaled).map_err(js_error)?;
        Ok(Split {
            labels,
            train,
            held_out,
            scaler,
            on_gpu,
        })
    }

    /// A model trained on the split, made whole: it standardises raw rows itself and names
    /// the data set's classes (so its file predicts raw rows in the CLI too).
    fn finish(&self, model: Model, data: &Dataset) -> Result<Model, JsValue> {
        let model = model.with_scaler(self.scaler.clone());
        match data.class_names.clone() {
            Some(names) => model.with_class_names(names).map_err(js_error),
            None => Ok(model),
        }
    }

    /// The share of the held-out rows whose predicted class is their label.
    async fn accuracy(&self, model: &Model, data: &Dataset) -> Result<f64, JsValue> {
        let x = data.features_of(&self.held_out).map_err(js_error)?;
        let predicted = model.predict_class_async(&x).await.map_err(js_error)?;
        let right = (self.held_out.iter().zip(&predicted))
            .filter(|&(&r, &p)| self.labels[r] == p)
            .count();
        Ok(right as f64 / self.held_out.len() as f64)
    }
}

/// One model on `data`'s training four fifths, scored on the rest.
async fn train(
    gpu: &Gpu,
    data: &Dataset,
    (hidden, lr, epochs): (usize, f32, usize),
    on_epoch: &Function,
) -> Result<(Model, f64), JsValue> {
    let split = Split::of(gpu, data)?;
    let config = TrainConfig {
        hidden: vec![hidden],
        epochs,
        batch_size: 32,
        optimizer: Adam::new(lr).into(),
        early_stopping: None,
        ..TrainConfig::classifier()
    };
    let mut report = |m: &wgpu_mlp::train::EpochMetrics| {
        let nan = |v: Option<f32>| v.map_or(f64::NAN, f64::from);
        let args = [
            JsValue::from_f64(m.epoch as f64),
            JsValue::from_f64(f64::from(m.train_loss)),
            JsValue::from_f64(nan(m.val_loss)),
            JsValue::from_f64(nan(m.val_accuracy)),
        ];
        let _ = on_epoch.apply(&JsValue::NULL, &args.into_iter().collect());
    };
    let trained = fit_with_progress_async(&split.on_gpu, &split.train, Some(&split.held_out), &config, &mut report)
        .await
        .map_err(js_error)?;
    let model = split.finish(trained, data)?;
    let accuracy = split.accuracy(&model, data).await?;
    Ok((model, accuracy))
}

/// The grid search of [`Demo::search`]: its refitted winner and its report.
async fn search(
    gpu: &Gpu,
    data: &Dataset,
    (lrs, hiddens, epochs): (Vec<f32>, Vec<usize>, usize),
    on_epoch: &Function,
) -> Result<(Model, String), JsValue> {
    let split = Split::of(gpu, data)?;
    let search = GridSearchCv {
        grid: ParamGrid {
            lr: lrs,
            hidden: hiddens.into_iter().map(|h| vec![h]).collect(),
            epochs: vec![epochs],
            batch_size: vec![32],
            ..ParamGrid::default()
        },
        folds: Folds::Stratified(StratifiedKFold {
            n_splits: 5,
            shuffle: true,
            seed: 0,
        }),
        base: TrainConfig {
            optimizer: Adam::new(1e-3).into(),
            early_stopping: None,
            ..TrainConfig::classifier()
        },
        ..GridSearchCv::default()
    };
    let mut report_epoch = |p: CvProgress| {
        let fold = p.fold.map_or(-1.0, |k| k as f64);
        let args = [
            p.point as f64,
            fold,
            p.metrics.epoch as f64,
            f64::from(p.metrics.train_loss),
        ];
        let _ = on_epoch.apply(&JsValue::NULL, &args.into_iter().map(JsValue::from_f64).collect());
    };
    let report = search
        .fit_with_progress_async(&split.on_gpu, &split.train, &mut report_epoch)
        .await
        .map_err(js_error)?;
    let mut lines: Vec<(f32, String)> = report
        .results
        .iter()
        .map(|r| {
            (
                r.mean,
                format!(
                    "{:.4} ± {:.4}  lr {} hidden {:?}",
                    r.mean, r.std, r.params.lr, r.params.hidden
                ),
            )
        })
        .collect();
    lines.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best = report
        .best_model
        .ok_or_else(|| js_error("the search refitted no model"))?;
    let model = split.finish(best, data)?;
    let accuracy = split.accuracy(&model, data).await?;
    let mut text: Vec<String> = lines.into_iter().map(|(_, line)| line).collect();
    text.push(format!(
        "refitted winner: {:.2}% of the held-out fifth right",
        100.0 * accuracy
    ));
    Ok((model, text.join("\n")))
}
