//! Feature scaling fitted on training rows: standardisation or min-max, as an affine map.

use super::Dataset;
use crate::error::{Error, Result};

/// How features are scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaling {
    /// Zero mean, unit variance per feature (constant features are only centred).
    Standardize,
    /// Each feature into [0, 1] (constant features map to 0).
    MinMax,
}

/// A per-feature affine map `x' = (x − shift) · scale`, fitted on training rows only and
/// applied unchanged to validation and test rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Scaler {
    shift: Vec<f32>,
    scale: Vec<f32>,
}

impl Scaler {
    /// Fits on the rows `rows` of `data` (and nothing else).
    pub fn fit(scaling: Scaling, data: &Dataset, rows: &[usize]) -> Result<Self> {
        if rows.is_empty() {
            return Err(Error::invalid("Scaler::fit", "rows", "at least one row", 0));
        }
        let d = data.n_features;
        if let Some(&bad) = rows.iter().find(|&&r| r >= data.len()) {
            return Err(Error::invalid("Scaler::fit", "row", format!("< {}", data.len()), bad));
        }
        let column = |j: usize| rows.iter().map(move |&r| data.features[r * d + j] as f64);
        let (shift, scale) = (0..d)
            .map(|j| match scaling {
                Scaling::Standardize => {
                    let mean = column(j).sum::<f64>() / rows.len() as f64;
                    let var = column(j).map(|v| (v - mean).powi(2)).sum::<f64>() / rows.len() as f64;
                    let std = var.sqrt();
                    (mean as f32, if std > 0.0 { (1.0 / std) as f32 } else { 1.0 })
                }
                Scaling::MinMax => {
                    let lo = column(j).fold(f64::INFINITY, f64::min);
                    let hi = column(j).fold(f64::NEG_INFINITY, f64::max);
                    (lo as f32, if hi > lo { (1.0 / (hi - lo)) as f32 } else { 0.0 })
                }
            })
            .unzip();
        Ok(Scaler { shift, scale })
    }

    /// Applies the map to every row of `data`.
    pub fn transform(&self, data: &mut Dataset) -> Result<()> {
        if data.n_features != self.shift.len() {
            return Err(Error::shape(
                "Scaler::transform",
                "features",
                self.shift.len(),
                data.n_features,
            ));
        }
        self.transform_rows(&mut data.features)
    }

    /// A scaler from its parts (as [`Scaler::shift`] and [`Scaler::scale`] give them, e.g.
    /// read back from a saved model): `x ↦ (x − shift) · scale` per feature.
    pub fn from_parts(shift: Vec<f32>, scale: Vec<f32>) -> Result<Self> {
        const OP: &str = "Scaler::from_parts";
        if shift.is_empty() || shift.len() != scale.len() {
            return Err(Error::shape(OP, "scale", shift.len().max(1), scale.len()));
        }
        if let Some(i) = shift.iter().chain(&scale).position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                OP,
                format!("value {i}"),
                "finite shifts and scales",
                "a NaN or infinity",
            ));
        }
        Ok(Scaler { shift, scale })
    }

    /// Applies the map to rows given as a flat row-major slice (new rows to predict).
    pub fn transform_rows(&self, x: &mut [f32]) -> Result<()> {
        let d = self.shift.len();
        if !x.len().is_multiple_of(d) {
            return Err(Error::shape(
                "Scaler::transform_rows",
                "x",
                format!("rows of {d} features"),
                format!("{} values", x.len()),
            ));
        }
        for row in x.chunks_mut(d) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.shift[j]) * self.scale[j];
            }
        }
        Ok(())
    }

    /// The per-feature shift (mean or minimum).
    pub fn shift(&self) -> &[f32] {
        &self.shift
    }

    /// The per-feature scale (1/std or 1/range).
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }
}
