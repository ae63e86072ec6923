//! A trained model: checkpoints, evaluation, prediction.

use crate::error::{Error, Result};
use crate::mlp::Mlp;

use super::batches::Evaluation;
use super::*;

/// Joins class names in a saved model's metadata (a character names do not hold).
const CLASS_NAME_SEPARATOR: &str = "\u{1f}";

impl Model {
    /// Saves the fitted pipeline in one safetensors file, atomically: the network and its
    /// optimizer state ([`Mlp::save`]), the trainer's epoch count and seed (for [`resume`]),
    /// and the scaler when one is attached ([`Model::with_scaler`]). [`Model::load`] reads it
    /// back whole.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let mut extra = vec![("epoch", self.epochs_done.to_string()), ("seed", self.seed.to_string())];
        if let Some(names) = &self.class_names {
            extra.push(("class_names", names.join(CLASS_NAME_SEPARATOR)));
        }
        if let Some(scaler) = &self.scaler {
            // f32's Display is the shortest text that reads back to the same bits.
            let join = |v: &[f32]| v.iter().map(f32::to_string).collect::<Vec<_>>().join(",");
            extra.push(("scaler_shift", join(scaler.shift())));
            extra.push(("scaler_scale", join(scaler.scale())));
        }
        self.mlp.save_with(path.as_ref(), &extra)
    }

    /// Loads a pipeline saved by [`Model::save`] onto `gpu`: the network with its batch size
    /// and optimizer state, and its scaler if it had one; it predicts what the saved model
    /// predicted, to the bit. A damaged file or one from another format is an
    /// [`Error::Checkpoint`].
    ///
    /// ```no_run
    /// # fn demo(gpu: &wgpu_mlp::Gpu) -> wgpu_mlp::Result<()> {
    /// let model = wgpu_mlp::Model::load(gpu, "digits.safetensors")?;
    /// let classes = model.predict_class(&[0.0; 64])?; // one raw row, scaled by the saved scaler
    /// # Ok(()) }
    /// ```
    pub fn load(gpu: &crate::Gpu, path: impl AsRef<std::path::Path>) -> Result<Model> {
        let path = path.as_ref();
        let (mlp, meta) = Mlp::load_with(gpu, path, None)?;
        let bad = |what: &str| crate::checkpoint::checkpoint_error(path, format!("{what} is not readable"));
        let number =
            |key: &str| -> Result<u64> { meta.get(key).map_or(Ok(0), |text| text.parse().map_err(|_| bad(key))) };
        let floats = |key: &str| -> Result<Option<Vec<f32>>> {
            meta.get(key)
                .map(|text| text.split(',').map(|v| v.parse().map_err(|_| bad(key))).collect())
                .transpose()
        };
        let scaler = match (floats("scaler_shift")?, floats("scaler_scale")?) {
            (Some(shift), Some(scale)) => Some(Scaler::from_parts(shift, scale)?),
            (None, None) => None,
            _ => return Err(bad("the scaler (half of it is missing)")),
        };
        let class_names = meta
            .get("class_names")
            .map(|text| text.split(CLASS_NAME_SEPARATOR).map(str::to_string).collect());
        Ok(Model {
            mlp,
            history: Vec::new(),
            epochs_done: number("epoch")? as usize,
            seed: number("seed")?,
            scaler,
            class_names,
        })
    }

    /// Attaches the feature scaling the model was trained with: [`Model::predict`] and its
    /// kin then take raw rows, and [`Model::save`] keeps it.
    pub fn with_scaler(mut self, scaler: Scaler) -> Model {
        self.scaler = Some(scaler);
        self
    }

    /// The attached scaler, if any.
    pub fn scaler(&self) -> Option<&Scaler> {
        self.scaler.as_ref()
    }

    /// Names the classes (in output order, as [`Dataset::class_names`](crate::Dataset::class_names)
    /// gives them): [`Model::predict_class_names`] answers with them and [`Model::save`] keeps
    /// them. Their count must be the model's output count.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Model> {
        let outputs = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        if names.len() != outputs {
            return Err(Error::shape("Model::with_class_names", "names", outputs, names.len()));
        }
        if let Some(name) = names.iter().find(|n| n.contains(CLASS_NAME_SEPARATOR)) {
            return Err(Error::invalid(
                "Model::with_class_names",
                "name",
                "no U+001F character",
                name,
            ));
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// The class names, if given.
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// The class name of each row of `x` ([`Model::predict_class`] through the names given
    /// with [`Model::with_class_names`]; the class numbers as text without them).
    pub fn predict_class_names(&self, x: &[f32]) -> Result<Vec<String>> {
        let classes = self.predict_class(x)?;
        Ok(classes
            .into_iter()
            .map(|c| match &self.class_names {
                Some(names) => names[c].clone(),
                None => c.to_string(),
            })
            .collect())
    }

    /// Features per row the model takes.
    pub fn n_features(&self) -> usize {
        self.mlp.sizes()[0]
    }

    /// Outputs per row the model gives (classes, for a classifier).
    pub fn n_outputs(&self) -> usize {
        self.mlp.sizes()[self.mlp.sizes().len() - 1]
    }

    /// Epochs trained in all (resumed runs included).
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Per-epoch metrics of the training run.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// The network.
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// Loss and accuracy on `rows` of `data`.
    pub fn evaluate(&self, data: &GpuDataset, rows: &[usize]) -> Result<Scores> {
        data.check_rows("Model::evaluate", "rows", rows)?;
        self.check_data("Model::evaluate", data)?;
        Ok(Evaluation::new(data, &self.mlp, &[rows])?.run_one(&self.mlp)?.0)
    }

    /// scikit-learn's `score` on `rows` of a data set on the host, its features raw as read
    /// (the attached scaler applies): the share of rows whose predicted class is their label
    /// for classification, the coefficient of determination R² (averaged over outputs) for
    /// regression.
    ///
    /// ```no_run
    /// # fn demo(model: &wgpu_mlp::Model, data: &wgpu_mlp::Dataset, test: &[usize]) -> wgpu_mlp::Result<()> {
    /// println!("test accuracy {:.3}", model.score(data, test)?);
    /// # Ok(()) }
    /// ```
    pub fn score(&self, data: &Dataset, rows: &[usize]) -> Result<f64> {
        const OP: &str = "Model::score";
        let outputs = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        if data.n_outputs != outputs {
            return Err(Error::shape(OP, "data set outputs", outputs, data.n_outputs));
        }
        if rows.is_empty() {
            return Err(Error::invalid(OP, "rows", "at least one row", 0));
        }
        let x = data.features_of(rows)?;
        if let Some(labels) = &data.labels {
            let predicted = self.predict_class(&x)?;
            let right = rows.iter().zip(&predicted).filter(|&(&r, &p)| labels[r] == p).count();
            return Ok(right as f64 / rows.len() as f64);
        }
        let predicted = self.predict(&x)?;
        let r2_of_output = |j: usize| {
            let target = |i: usize| data.targets[rows[i] * outputs + j] as f64;
            let mean = (0..rows.len()).map(target).sum::<f64>() / rows.len() as f64;
            let total: f64 = (0..rows.len()).map(|i| (target(i) - mean).powi(2)).sum();
            let residual: f64 = (0..rows.len())
                .map(|i| (target(i) - predicted[i * outputs + j] as f64).powi(2))
                .sum();
            // scikit-learn's convention for a constant target: perfect is 1, anything else 0.
            match (total > 0.0, residual > 0.0) {
                (true, _) => 1.0 - residual / total,
                (false, false) => 1.0,
                (false, true) => 0.0,
            }
        };
        Ok((0..outputs).map(r2_of_output).sum::<f64>() / outputs as f64)
    }

    /// The network's outputs for `rows` of a data set already on the GPU, (rows, outputs)
    /// row-major.
    pub fn predict_rows(&self, data: &GpuDataset, rows: &[usize]) -> Result<Vec<f32>> {
        data.check_rows("Model::predict_rows", "rows", rows)?;
        self.check_data("Model::predict_rows", data)?;
        Ok(Evaluation::new(data, &self.mlp, &[rows])?.run_one(&self.mlp)?.1)
    }

    /// The network's outputs for new rows `x` (any number of rows, row-major, `inputs` values
    /// each, scaled as the training data was), (rows, outputs) row-major. Uploaded once and
    /// run in batches of the model's batch size.
    ///
    /// ```no_run
    /// # fn demo(model: &wgpu_mlp::Model) -> wgpu_mlp::Result<()> {
    /// let x = [0.1, -0.3, 0.7, 0.0, 0.5, 0.2]; // two rows of three features
    /// let outputs = model.predict(&x)?;          // two rows of the model's outputs
    /// let classes = model.predict_class(&x)?;    // the largest output of each row
    /// # Ok(()) }
    /// ```
    pub fn predict(&self, x: &[f32]) -> Result<Vec<f32>> {
        let data = match &self.scaler {
            Some(scaler) => {
                let mut scaled = x.to_vec();
                scaler.transform_rows(&mut scaled)?;
                self.upload_rows("Model::predict", &scaled)?
            }
            None => self.upload_rows("Model::predict", x)?,
        };
        let rows: Vec<usize> = (0..data.len()).collect();
        self.predict_rows(&data, &rows)
    }

    /// The class of each row of `x` (see [`Model::predict`]): the index of its largest
    /// output (the first of equals), for a model trained on one-hot class targets.
    pub fn predict_class(&self, x: &[f32]) -> Result<Vec<usize>> {
        let outputs = self.predict(x)?;
        let width = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        Ok(outputs
            .chunks(width)
            .map(|row| {
                row.iter()
                    .enumerate()
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |best, (i, &v)| if v > best.1 { (i, v) } else { best },
                    )
                    .0
            })
            .collect())
    }

    /// Class probabilities for each row of `x` (see [`Model::predict`]), (rows, outputs)
    /// row-major: the softmax of the logits for [`Loss::SoftmaxCrossEntropy`], each output's
    /// sigmoid for [`Loss::BinaryCrossEntropy`]. A model trained on MSE has no probabilities:
    /// an error that says so.
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<f32>> {
        let loss = self.mlp.loss_function();
        if loss == Loss::Mse {
            return Err(Error::invalid(
                "Model::predict_proba",
                "the model's loss",
                "cross_entropy or binary_cross_entropy (whose outputs are logits)",
                "mse: use predict for its outputs",
            ));
        }
        let logits = self.predict(x)?;
        let width = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        Ok(logits
            .chunks(width)
            .flat_map(|row| {
                let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = row.iter().map(|v| (v - top).exp()).sum();
                row.into_iter()
                    .map(move |v| match loss {
                        Loss::BinaryCrossEntropy => (1.0 / (1.0 + (-v).exp())) as f32,
                        _ => ((v - top).exp() / total) as f32,
                    })
                    .collect::<Vec<_>>()
            })
            .collect())
    }

    /// `x` as a data set on the model's GPU (no targets), after checking its shape.
    fn upload_rows(&self, op: &'static str, x: &[f32]) -> Result<GpuDataset> {
        let sizes = self.mlp.sizes();
        let (inputs, outputs) = (sizes[0], sizes[sizes.len() - 1]);
        if x.is_empty() || !x.len().is_multiple_of(inputs) {
            return Err(Error::shape(
                op,
                "x",
                format!("rows of {inputs} features (a non-empty multiple of {inputs} values)"),
                format!("{} values", x.len()),
            ));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(op, format!("x[{i}]"), "a finite value", x[i]));
        }
        let rows = x.len() / inputs;
        let data = crate::data::Dataset {
            name: "rows to predict".into(),
            features: x.to_vec(),
            n_features: inputs,
            targets: vec![0.0; rows * outputs],
            n_outputs: outputs,
            labels: None,
            class_names: None,
        };
        GpuDataset::upload(self.mlp.graph().gpu(), &data)
    }

    fn check_data(&self, op: &'static str, data: &GpuDataset) -> Result<()> {
        let sizes = self.mlp.sizes();
        let (inputs, outputs) = (sizes[0], sizes[sizes.len() - 1]);
        if (data.n_features, data.n_outputs) != (inputs, outputs) {
            return Err(Error::shape(
                op,
                "data set",
                format!("{inputs} features, {outputs} outputs"),
                format!("{} features, {} outputs", data.n_features, data.n_outputs),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("mlp", &self.mlp)
            .field("epochs", &self.history.len())
            .finish()
    }
}
