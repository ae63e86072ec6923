//! What an [`Mlp`] reads back, as futures: the way to read in a browser, where the blocking
//! readers ([`Mlp::losses`], [`Mlp::parameters`], [`Mlp::batch_outputs`]) return
//! [`Error::Blocking`](crate::Error::Blocking). Natively they resolve at their first poll.

use super::{LayerParams, Mlp};
use crate::error::Result;

impl Mlp {
    /// [`Mlp::losses`] for async code: the loss of the last forward pass of every model.
    ///
    /// ```no_run
    /// # async fn train() -> wgpu_mlp::Result<()> {
    /// use wgpu_mlp::{Gpu, Mlp, Sgd};
    /// let gpu = Gpu::new_async().await?;
    /// let mut mlp = Mlp::builder(&[2, 8, 1]).build(&gpu, 4, Sgd::new(0.5))?;
    /// mlp.set_batch(&[0., 0., 0., 1., 1., 0., 1., 1.], &[0., 1., 1., 0.])?;
    /// mlp.steps(100)?;
    /// println!("loss {}", mlp.losses_async().await?[0]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn losses_async(&self) -> Result<Vec<f32>> {
        let loss = self.graph.loss_node();
        self.graph.live_value("Mlp::losses_async", loss)?.to_vec_async().await
    }

    /// [`Mlp::parameters`] for async code: every layer's weights and bias (every model's,
    /// model after model, for a stack).
    pub async fn parameters_async(&self) -> Result<Vec<LayerParams>> {
        let mut layers = Vec::with_capacity(self.weights.len());
        for (&w, &b) in self.weights.iter().zip(&self.biases) {
            layers.push(LayerParams {
                weights: self
                    .graph
                    .live_value("Mlp::parameters_async", w)?
                    .to_vec_async()
                    .await?,
                bias: self
                    .graph
                    .live_value("Mlp::parameters_async", b)?
                    .to_vec_async()
                    .await?,
            });
        }
        Ok(layers)
    }

    /// [`Mlp::batch_outputs`] for async code: the network's outputs for the batch written by
    /// [`Mlp::set_batch`] (forward only).
    pub async fn batch_outputs_async(&self) -> Result<Vec<f32>> {
        self.check_batch("Mlp::batch_outputs_async")?;
        self.graph.forward()?;
        self.graph
            .live_value("Mlp::batch_outputs_async", self.y)?
            .to_vec_async()
            .await
    }
}
