//! The one error type of the library: every failure says what, where, and expected vs got.

/// Everything that can go wrong in `wgpu-mlp`.
///
/// ```
/// use wgpu_mlp::Error;
/// // Every variant's message says what, where, and expected vs got; a few carry more.
/// fn explain(err: &Error) -> String {
///     match err {
///         Error::InvalidArgument { what, expected, got, .. } => format!("{what}: {expected}, not {got}"),
///         other => other.to_string(),
///     }
/// }
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No adapter (hardware or software) could be found.
    #[error(
        "no GPU or software adapter found ({detail}). On Debian/Ubuntu install the software \
         adapter with `apt-get install -y mesa-vulkan-drivers libvulkan1`; otherwise check \
         the WGPU_BACKEND and WGPU_ADAPTER_NAME environment variables"
    )]
    NoAdapter {
        /// What was tried and seen.
        detail: String,
    },

    /// The adapter was found but the device could not be opened.
    #[error("could not open a device on adapter `{adapter}`: {reason}")]
    DeviceRequest {
        /// Name of the adapter.
        adapter: String,
        /// What wgpu said.
        reason: String,
    },

    /// A tensor or data set has a shape the operation cannot take.
    #[error("{op}: {what} has the wrong shape: expected {expected}, got {got}")]
    Shape {
        /// The operation that checked.
        op: &'static str,
        /// Which input.
        what: String,
        /// What was expected.
        expected: String,
        /// What was given.
        got: String,
    },

    /// A scalar argument (learning rate, momentum, batch size...) is out of range.
    #[error("{op}: invalid {what}: expected {expected}, got {got}")]
    InvalidArgument {
        /// The operation that checked.
        op: &'static str,
        /// Which argument.
        what: String,
        /// The accepted range.
        expected: String,
        /// What was given.
        got: String,
    },

    /// A tensor would not fit in one storage binding of this adapter.
    #[error(
        "{op}: {what} needs {bytes} bytes, above this adapter's limit of {limit} bytes per \
         storage buffer binding"
    )]
    TooLarge {
        /// The operation that checked.
        op: &'static str,
        /// Which tensor.
        what: String,
        /// Bytes needed.
        bytes: u64,
        /// The adapter's limit.
        limit: u64,
    },

    /// A data file or data set is malformed: ragged rows, non-numeric or non-finite cells,
    /// an empty file, a label out of range.
    #[error("{file}{}: {message}", location(*line, *column))]
    Data {
        /// The file (or a name for in-memory data).
        file: String,
        /// 1-based line (0 when the problem is not tied to a line).
        line: u64,
        /// 1-based column (0 when the problem is not tied to a column).
        column: usize,
        /// What is wrong, with what was expected and found.
        message: String,
    },

    /// Reading a file failed.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A checkpoint could not be written, or a file is not a valid checkpoint for this model.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong, with what was expected and found.
        message: String,
    },

    /// Training produced a non-finite loss. The parameters at the end of the last good epoch
    /// are kept here, so nothing NaN-filled reaches the caller.
    #[error("training diverged at epoch {epoch}, batch {batch}: loss {loss}; the last good parameters are kept")]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based mini-batch within the epoch whose loss was first non-finite.
        batch: usize,
        /// That loss.
        loss: f32,
        /// Parameters before the diverging epoch, per layer.
        last_good: Vec<crate::layer::LayerParams>,
    },

    /// Training stopped learning: the loss stayed put for `epochs` epochs and the network
    /// gives the same outputs for every row, its units saturated (sigmoid, tanh) or dead
    /// (ReLU). The parameters are left as trained; `settings` are the hyperparameters that
    /// led there.
    #[error(
        "training stalled at epoch {epoch}: the loss stayed at {loss} for {epochs} epochs and the network gives \
         the same outputs for every row (its units saturated or dead), training with {settings}; lower the \
         learning rate, standardise the features, or try another seed"
    )]
    Stalled {
        /// 1-based epoch at which the stall was recognised.
        epoch: usize,
        /// Epochs the loss had not moved for.
        epochs: usize,
        /// The stuck training loss.
        loss: f32,
        /// The run's hyperparameters (optimizer, learning rate, layers, activations, loss).
        settings: String,
    },

    /// The GPU reported an error (validation, out of memory, device lost) or a read-back failed.
    #[error("GPU error during {op}: {message}")]
    Gpu {
        /// The operation during which it surfaced.
        op: &'static str,
        /// What the driver or wgpu said.
        message: String,
    },

    /// A blocking call in a browser, where the page's one thread may not wait for the GPU.
    #[error(
        "{op} would block, and a browser page may not wait for its GPU: call the `_async` \
         twin (Gpu::new_async, Gpu::synchronize_async, Tensor::to_vec_async, Mlp::losses_async) and await it"
    )]
    Blocking {
        /// The call that would have waited.
        op: &'static str,
    },
}

/// ", line L, column C" with the parts that are known (1-based; 0 is unknown).
fn location(line: u64, column: usize) -> String {
    match (line, column) {
        (0, 0) => String::new(),
        (0, c) => format!(", column {c}"),
        (l, 0) => format!(", line {l}"),
        (l, c) => format!(", line {l}, column {c}"),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn shape(
        op: &'static str,
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Shape {
            op,
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }

    pub(crate) fn invalid(
        op: &'static str,
        what: impl Into<String>,
        expected: impl std::fmt::Display,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::InvalidArgument {
            op,
            what: what.into(),
            expected: expected.to_string(),
            got: got.to_string(),
        }
    }
}
