//! Waiting, which only native code may do: error scopes around one device call (a buffer, a
//! pipeline, a bind group), read at once, and [`block_on`] for the blocking entry points.
//!
//! Natively the scope's verdict is waited for, so an error names the call that caused it. In
//! a browser a scope's verdict is a promise, which synchronous code may not wait on (the page
//! has one thread), so no scope is pushed there: an error goes to the device's uncaptured
//! error handler and comes out of the next awaited sync or read-back
//! ([`Gpu::synchronize_async`](crate::Gpu::synchronize_async),
//! [`Tensor::to_vec_async`](crate::raw::Tensor::to_vec_async)) as an [`Error::Gpu`](crate::Error::Gpu).

/// Open error scopes, innermost last.
pub(crate) struct Scopes {
    #[cfg(not(target_arch = "wasm32"))]
    guards: Vec<wgpu::ErrorScopeGuard>,
}

impl Scopes {
    /// Opens one scope per filter, in order (the last is innermost).
    pub fn push(device: &wgpu::Device, filters: &[wgpu::ErrorFilter]) -> Scopes {
        #[cfg(not(target_arch = "wasm32"))]
        {
            Scopes {
                guards: filters.iter().map(|&filter| device.push_error_scope(filter)).collect(),
            }
        }
        #[cfg(target_arch = "wasm32")]
        {
            let _ = (device, filters);
            Scopes {}
        }
    }

    /// Closes the scopes, innermost first, and gives the first error any of them caught
    /// (always `None` in a browser: see the module docs).
    pub fn pop(self) -> Option<wgpu::Error> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let mut first = None;
            for guard in self.guards.into_iter().rev() {
                let caught = pollster::block_on(guard.pop());
                first = first.or(caught);
            }
            first
        }
        #[cfg(target_arch = "wasm32")]
        {
            None
        }
    }
}

/// Runs `future` to completion on this thread: native only. A browser's page has one thread
/// that must not wait, so there the blocking entry points return
/// [`Error::Blocking`](crate::Error::Blocking) and their
/// `_async` twins are the way in.
pub(crate) fn block_on<T>(
    op: &'static str,
    future: impl Future<Output = crate::error::Result<T>>,
) -> crate::error::Result<T> {
    #[cfg(target_arch = "wasm32")]
    {
        drop(future);
        Err(crate::error::Error::Blocking { op })
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = op;
        pollster::block_on(future)
    }
}
