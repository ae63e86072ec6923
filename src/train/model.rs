//! A trained model: checkpoints, evaluation, prediction.

use crate::error::{Error, Result};
use crate::mlp::Mlp;

use super::batches::Evaluation;
use super::*;

impl Model {
    /// Saves a checkpoint of the model with the trainer's epoch count and seed, for
    /// [`resume`]. See [`Mlp::save`].
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.mlp.save_with(
            path.as_ref(),
            &[("epoch", self.epochs_done.to_string()), ("seed", self.seed.to_string())],
        )
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
        let data = self.upload_rows("Model::predict", x)?;
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
