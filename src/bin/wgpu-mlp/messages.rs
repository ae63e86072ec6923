//! What the command line says: output that survives a closed pipe, and the library's errors
//! worded in the command line's terms (its options, not Rust names).

use std::io::Write;

/// Writes one line to standard output; once that fails (a closed pipe), stays quiet.
pub fn say(line: std::fmt::Arguments) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// A warning on standard error.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("warning: {message}");
}

/// A note on standard error.
pub fn note(message: impl std::fmt::Display) {
    eprintln!("note: {message}");
}

/// Whether `e` is a write to a reader that went away.
pub fn is_closed_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        if let Some(csv) = err.downcast_ref::<csv::Error>()
            && let csv::ErrorKind::Io(io) = csv.kind()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// The command line's option for a setting the library names.
fn option_for(what: &str) -> Option<&'static str> {
    let what = what.trim_start_matches("optimizer ");
    Some(match what {
        "lr" => "--lr",
        "momentum" | "beta1" => "--momentum",
        "weight_decay" => "--weight-decay",
        "batch_size" => "--batch-size",
        "epochs" => "--epochs",
        "hidden" | "hidden sizes" | "sizes" => "--hidden",
        "n_splits" | "folds" => "--folds",
        "test_fraction" | "test_fraction (and rows)" => "--test-fraction",
        "hidden_activation" => "--activation",
        "optimizer" => "--optimizer",
        "early_stopping" => "--early-stopping",
        _ => return None,
    })
}

/// `e` as the command line's user should read it.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    match e.downcast_ref::<wgpu_mlp::Error>() {
        Some(wgpu_mlp::Error::InvalidArgument {
            what, expected, got, ..
        }) => match option_for(what) {
            Some(option) => format!("{option}: expected {expected}, got {got}"),
            None => format!("invalid {what}: expected {expected}, got {got}"),
        },
        Some(wgpu_mlp::Error::Shape {
            what, expected, got, ..
        }) => {
            format!("{what} has the wrong shape: expected {expected}, got {got}")
        }
        Some(wgpu_mlp::Error::TooLarge { what, bytes, limit, .. }) => format!(
            "{what} needs {} MiB, above this adapter's limit of {} MiB per buffer: use smaller --hidden or --batch-size",
            bytes >> 20,
            limit >> 20
        ),
        _ => e.to_string(),
    }
}
