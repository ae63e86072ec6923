//! What the command line says: output that survives a closed pipe, and the library's errors
//! worded in the command line's terms (its options, not Rust names).

use std::io::Write;

/// Why writing to standard output failed, other than a closed pipe (a full disk...).
static WRITE_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Writes one line to standard output; once that fails, stays quiet: a closed pipe (`| head`)
/// is the reader's choice, any other failure is reported by [`write_failure`] at the end.
pub fn say(line: std::fmt::Arguments) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|_| out.flush()) {
        CLOSED.store(true, Ordering::Relaxed);
        if e.kind() != std::io::ErrorKind::BrokenPipe
            && let Ok(mut failure) = WRITE_FAILURE.lock()
        {
            *failure = Some(e.to_string());
        }
    }
}

/// A failure to write to standard output that was not a closed pipe, if one happened.
pub fn write_failure() -> Option<String> {
    WRITE_FAILURE.lock().ok().and_then(|f| f.clone())
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
    let what = what
        .trim_start_matches("optimizer ")
        .split('[')
        .next()
        .unwrap_or(what)
        .trim();
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
        "early_stopping" | "early_stopping patience" => "--early-stopping",
        "class_weight" => "--class-weight",
        "scoring" => "--scoring",
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
