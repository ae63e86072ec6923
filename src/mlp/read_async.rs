//! What an [`Mlp`] reads back, as futures: the way to read in a browser, where the blocking
//! readers ([`Mlp::losses`], [`Mlp::parameters`], [`Mlp::batch_outputs`]) return
//! [`Error::Blocking`](crate::Error::Blocking). Natively they resolve at their first poll.

use super::{LayerParams, Mlp};
use crate::device::Tensor;
use crate::error::Result;
use crate::graph::NodeId;

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
        self.read_layers_async(|node| self.graph.live_value("Mlp::parameters_async", node))
            .await
    }

    /// [`Mlp::velocities`] for async code.
    pub async fn velocities_async(&self) -> Result<Vec<LayerParams>> {
        self.read_layers_async(|node| self.graph.velocity("Mlp::velocities_async", node))
            .await
    }

    /// [`Mlp::second_moments`] for async code.
    pub async fn second_moments_async(&self) -> Result<Vec<LayerParams>> {
        self.read_layers_async(|node| self.graph.second_moment("Mlp::second_moments_async", node))
            .await
    }

    /// Centered RMSprop's gradient averages, for async code.
    pub(crate) async fn grad_averages_async(&self) -> Result<Vec<LayerParams>> {
        self.read_layers_async(|node| self.graph.grad_average("Mlp::grad_averages_async", node))
            .await
    }

    /// Each layer's weight and bias tensors of one kind (`tensor_of` a node), read back.
    async fn read_layers_async<'a>(
        &'a self,
        tensor_of: impl Fn(NodeId) -> Result<&'a Tensor>,
    ) -> Result<Vec<LayerParams>> {
        let mut layers = Vec::with_capacity(self.weights.len());
        for (&w, &b) in self.weights.iter().zip(&self.biases) {
            layers.push(LayerParams {
                weights: tensor_of(w)?.to_vec_async().await?,
                bias: tensor_of(b)?.to_vec_async().await?,
            });
        }
        Ok(layers)
    }

    /// [`Mlp::stacked_parameters`] for async code: every stacked model's parameters, model
    /// by model.
    pub async fn stacked_parameters_async(&self) -> Result<Vec<Vec<LayerParams>>> {
        self.split_models(self.parameters_async().await?)
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
