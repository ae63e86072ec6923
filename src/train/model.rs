//! A trained model: its pipeline's parts, evaluation, prediction (its file: model_file.rs).

use crate::device::gpu::block_on;
use crate::error::{Error, Result};
use crate::mlp::Mlp;
use crate::ops::OutputLink;

use super::batches::Evaluation;
use super::*;

impl Model {
    /// Classification or regression: the schema's, else a model with class names, a
    /// cross-entropy loss or several outputs classifies.
    pub fn task(&self) -> Task {
        match &self.schema {
            Some(schema) => schema.task,
            None if self.class_names.is_some()
                || self.mlp.loss_function().link() != OutputLink::Identity
                || self.n_outputs() > 1 =>
            {
                Task::Classification
            }
            None => Task::Regression,
        }
    }

    /// What the model reads: the feature columns by name where the training file had a
    /// header, and where its label was (see [`crate::data::read_features`]).
    pub fn schema(&self) -> Schema {
        self.schema.clone().unwrap_or(Schema {
            feature_names: None,
            label_name: None,
            label_position: None,
            task: self.task(),
            feature_kinds: Vec::new(),
            feature_columns: Vec::new(),
            n_columns: None,
            na_values: None,
        })
    }

    /// Attaches the input schema (as [`Dataset::schema`](crate::data::Dataset::schema) gives it):
    /// [`Model::save`] keeps it, `predict` matches columns by it. Its feature names must be
    /// as many as the model's inputs.
    pub fn with_schema(mut self, schema: Schema) -> Result<Model> {
        if let Some(names) = &schema.feature_names
            && names.len() != self.n_features()
        {
            return Err(Error::shape(
                "Model::with_schema",
                "feature_names",
                self.n_features(),
                names.len(),
            ));
        }
        self.schema = Some(schema);
        Ok(self)
    }

    /// Predicts on rows whose columns are named (`names`, one per value of a row; `x`
    /// row-major): the columns are put in the model's order, extra ones ignored, a missing
    /// one is an error naming it. For models fitted on a file with a header.
    ///
    /// ```no_run
    /// # fn demo(model: &wgpu_mlp::Model) -> wgpu_mlp::Result<()> {
    /// // Two rows, their columns in any order, with an id the model does not use.
    /// let y = model.predict_named(&["petal_width", "id", "sepal_length", "petal_length", "sepal_width"],
    ///                             &[0.2, 1.0, 5.1, 1.4, 3.5, 1.8, 2.0, 6.3, 4.9, 2.7])?;
    /// # Ok(()) }
    /// ```
    pub fn predict_named(&self, names: &[impl AsRef<str>], x: &[f32]) -> Result<Vec<f32>> {
        self.predict(&crate::data::select_columns(&self.schema(), names, x)?)
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

    /// Names the classes (in output order, as [`Dataset::class_names`](crate::data::Dataset::class_names)
    /// gives them): [`Model::predict_class_names`] answers with them and [`Model::save`] keeps
    /// them. Their count must be the model's output count.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Model> {
        let outputs = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        if names.len() != outputs {
            return Err(Error::shape("Model::with_class_names", "names", outputs, names.len()));
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

    /// Features per row the model takes: its input columns (before its preprocessor, if it
    /// has one).
    pub fn n_features(&self) -> usize {
        self.preprocessor.as_ref().map_or(self.mlp.sizes()[0], |p| p.n_inputs())
    }

    /// Attaches the column transformer the model was trained behind: [`Model::predict`] then
    /// takes coded rows (see [`crate::data::Preprocessor`]) and [`Model::save`] keeps it. Its
    /// outputs must be the network's inputs.
    pub fn with_preprocessor(mut self, preprocessor: crate::data::Preprocessor) -> Result<Model> {
        if preprocessor.n_outputs() != self.mlp.sizes()[0] {
            return Err(Error::shape(
                "Model::with_preprocessor",
                "outputs",
                self.mlp.sizes()[0],
                preprocessor.n_outputs(),
            ));
        }
        self.preprocessor = Some(preprocessor);
        Ok(self)
    }

    /// The attached column transformer, if any.
    pub fn preprocessor(&self) -> Option<&crate::data::Preprocessor> {
        self.preprocessor.as_ref()
    }

    /// The standardisation of a regression's targets, if any (see
    /// [`Model::with_target_scaler`]).
    pub fn target_scaler(&self) -> Option<&Scaler> {
        self.target_scaler.as_ref()
    }

    /// Attaches the standardisation of a regression's targets (fitted on its training rows):
    /// [`Model::predict`] maps the network's outputs back to the targets' units.
    pub fn with_target_scaler(mut self, scaler: Scaler) -> Result<Model> {
        if scaler.shift().len() != self.n_outputs() {
            return Err(Error::shape(
                "Model::with_target_scaler",
                "scaler",
                self.n_outputs(),
                scaler.shift().len(),
            ));
        }
        self.target_scaler = Some(scaler);
        Ok(self)
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
        let evaluation = Evaluation::new(data, &self.mlp, &[rows])?;
        Ok(block_on("Model::evaluate", evaluation.run_one(&self.mlp))?.0)
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
        block_on("Model::predict_rows", self.predict_rows_async(data, rows))
    }

    /// [`Model::predict_rows`] for async code (in a browser).
    pub async fn predict_rows_async(&self, data: &GpuDataset, rows: &[usize]) -> Result<Vec<f32>> {
        data.check_rows("Model::predict_rows", "rows", rows)?;
        self.check_data("Model::predict_rows", data)?;
        let evaluation = Evaluation::new(data, &self.mlp, &[rows])?;
        Ok(evaluation.run_one(&self.mlp).await?.1)
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
        block_on("Model::predict", self.predict_async(x))
    }

    /// [`Model::predict`] for async code: the way to predict in a browser.
    pub async fn predict_async(&self, x: &[f32]) -> Result<Vec<f32>> {
        let data = match (&self.preprocessor, &self.scaler) {
            (Some(preprocessor), _) => {
                let width = preprocessor.n_inputs();
                if x.is_empty() || !x.len().is_multiple_of(width) {
                    return Err(Error::shape(
                        "Model::predict",
                        "x",
                        format!("rows of {width} values"),
                        x.len(),
                    ));
                }
                self.upload_rows("Model::predict", &preprocessor.transform_rows(x)?)?
            }
            (None, Some(scaler)) => {
                let mut scaled = x.to_vec();
                scaler.transform_rows(&mut scaled)?;
                self.upload_rows("Model::predict", &scaled)?
            }
            (None, None) => self.upload_rows("Model::predict", x)?,
        };
        let rows: Vec<usize> = (0..data.len()).collect();
        let mut outputs = self.predict_rows_async(&data, &rows).await?;
        if let Some(target) = &self.target_scaler {
            let width = self.n_outputs();
            for (i, v) in outputs.iter_mut().enumerate() {
                let j = i % width;
                *v = *v / target.scale()[j] + target.shift()[j];
            }
        }
        if let Some(i) = outputs.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "Model::predict",
                format!("output of row {}", i / self.n_outputs() + 1),
                "a finite value",
                format!(
                    "{}: the model's parameters overflow on this row (a damaged model, or inputs far outside the training range)",
                    outputs[i]
                ),
            ));
        }
        Ok(outputs)
    }

    /// The class of each row of `x` (see [`Model::predict`]): the index of its largest
    /// output (the first of equals), for a model trained on one-hot class targets.
    pub fn predict_class(&self, x: &[f32]) -> Result<Vec<usize>> {
        block_on("Model::predict_class", self.predict_class_async(x))
    }

    /// [`Model::predict_class`] for async code (in a browser).
    pub async fn predict_class_async(&self, x: &[f32]) -> Result<Vec<usize>> {
        if self.task() == Task::Regression {
            return Err(Error::invalid(
                "Model::predict_class",
                "the model",
                "a classifier",
                "a regression model: use predict for its values",
            ));
        }
        let outputs = self.predict_async(x).await?;
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
        block_on("Model::predict_proba", self.predict_proba_async(x))
    }

    /// [`Model::predict_proba`] for async code (in a browser).
    pub async fn predict_proba_async(&self, x: &[f32]) -> Result<Vec<f32>> {
        let loss = self.mlp.loss_function();
        let link = loss.link();
        if link == OutputLink::Identity {
            return Err(Error::invalid(
                "Model::predict_proba",
                "the model's loss",
                "cross_entropy or binary_cross_entropy (whose outputs are logits)",
                format!("{}: use predict for its outputs", loss.name()),
            ));
        }
        let logits = self.predict_async(x).await?;
        let width = self.mlp.sizes()[self.mlp.sizes().len() - 1];
        Ok(logits
            .chunks(width)
            .flat_map(|row| {
                let row: Vec<f64> = row.iter().map(|&v| v as f64).collect();
                let top = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let total: f64 = row.iter().map(|v| (v - top).exp()).sum();
                row.into_iter()
                    .map(move |v| match link {
                        OutputLink::Sigmoid => (1.0 / (1.0 + (-v).exp())) as f32,
                        OutputLink::Softmax | OutputLink::Identity => ((v - top).exp() / total) as f32,
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
            return Err(Error::invalid(
                op,
                format!("row {}, feature {}", i / inputs + 1, i % inputs + 1),
                "a value (this model was fitted without a preprocessor to fill missing ones; fit it again)",
                x[i],
            ));
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
            schema: None,
            notes: Vec::new(),
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
