//! `fit --plots`: every model's loss per epoch as the search reports it, drawn with the grid's
//! scores.

use super::say;

/// Every model's training loss per epoch, and the refit's validation loss, as the search
/// reports them, for `--plots`.
#[derive(Default)]
pub struct Curves {
    /// (grid point, fold or None for the refit) → train losses.
    train: std::collections::HashMap<(usize, Option<usize>), Vec<f32>>,
    refit_validation: Vec<f32>,
}

impl Curves {
    pub fn record(&mut self, p: &wgpu_mlp::cv::CvProgress) {
        self.train
            .entry((p.point, p.fold))
            .or_default()
            .push(p.metrics.train_loss);
        if let (None, Some(loss)) = (p.fold, p.metrics.val_loss) {
            self.refit_validation.push(loss);
        }
    }

    /// grid.svg, and loss.svg where the search ran here (a merge has no curves).
    pub fn write(&self, dir: &str, data_name: &str, report: &wgpu_mlp::cv::CvReport) -> super::Outcome {
        use wgpu_mlp::cv::plots::{Series, grid_scores_svg, loss_curves_svg};
        std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
        let save = |name: &str, svg: String| {
            std::fs::write(format!("{dir}/{name}"), svg).map_err(|e| format!("{dir}/{name}: {e}"))
        };
        save(
            "grid.svg",
            grid_scores_svg(&format!("{data_name}: cross-validation"), report),
        )?;
        let best = report.best_index;
        let mut folds: Vec<(usize, &Vec<f32>)> = self
            .train
            .iter()
            .filter_map(|(&(p, k), losses)| (p == best).then_some((k?, losses)))
            .collect();
        folds.sort_by_key(|&(k, _)| k);
        let mut series: Vec<Series> = folds
            .into_iter()
            .map(|(k, losses)| Series {
                name: format!("fold {} train", k + 1),
                values: losses.clone(),
                dashed: false,
            })
            .collect();
        if let Some(losses) = self.train.get(&(best, None)) {
            series.push(Series {
                name: "refit train".into(),
                values: losses.clone(),
                dashed: false,
            });
        }
        if !self.refit_validation.is_empty() {
            series.push(Series {
                name: "refit validation".into(),
                values: self.refit_validation.clone(),
                dashed: true,
            });
        }
        if !series.is_empty() {
            save(
                "loss.svg",
                loss_curves_svg(&format!("{data_name}: the best point's loss"), &series),
            )?;
        }
        say!("plots written to {dir}");
        Ok(())
    }
}
