//! Adapter selection by name: a name that matches nothing is an error listing the adapters,
//! never a panic (wgpu's own `initialize_adapter_from_env` would panic). Its own test
//! binary, because it sets a process-wide environment variable.

#[test]
fn unknown_adapter_name_is_an_error() {
    // SAFETY: this binary's only test; nothing else reads the environment concurrently.
    unsafe { std::env::set_var("WGPU_ADAPTER_NAME", "no-such-adapter-anywhere") };
    let err = wgpu_mlp::Gpu::new().unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, wgpu_mlp::Error::NoAdapter { .. }), "{message}");
    assert!(message.contains("no-such-adapter-anywhere"), "{message}");
    assert!(message.contains("apt-get install -y mesa-vulkan-drivers"), "{message}");
}
