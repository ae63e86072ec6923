//! Shared by the command-line tests: a scratch folder per test, running the release binary,
//! and the checks every refusal must pass (exit 1, the message, no panic, no leftovers).
#![allow(dead_code, unused_imports)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const BIN: &str = env!("CARGO_BIN_EXE_wgpu-mlp");
pub const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// A folder of its own per test, removed when the test ends (passed or failed).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wgpu-mlp-cli-inputs-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

/// Runs the binary, `stdin` (if any) written to its standard input from a thread of its own.
pub fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the wgpu-mlp binary runs");
    let writer = stdin.map(|bytes| {
        let (mut pipe, bytes) = (child.stdin.take().unwrap(), bytes.to_vec());
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        })
    });
    let out = child.wait_with_output().unwrap();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    out
}

/// `fit DATA -o MODEL --folds 2 -q` (and `--epochs 3` unless `extra` gives epochs).
pub fn fit(data: &str, model: &str, extra: &[&str]) -> Output {
    let mut args = vec!["fit", data, "-o", model, "--folds", "2", "-q"];
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "3"]);
    }
    args.extend(extra);
    run(&args)
}

pub fn no_panic(out: &Output, what: &str) {
    let err = text(&out.stderr);
    for bad in ["panicked", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{what}: panic text on stderr:\n{err}");
    }
}

/// Exit 0 without panic text; returns stdout.
pub fn succeeded(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: expected success\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    no_panic(out, what);
    text(&out.stdout)
}

/// Exit 1, stderr short and naming the problem with one of `fragments`, no panic text, no
/// Rust names, none of `left` written; returns stderr.
pub fn refused_any(out: &Output, fragments: &[&str], left: &[&str]) -> String {
    let err = text(&out.stderr);
    let what = format!("expected a refusal naming one of {fragments:?}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}\nstdout:\n{}\nstderr:\n{err}",
        text(&out.stdout)
    );
    assert!(fragments.iter().any(|f| err.contains(f)), "{what}; stderr:\n{err}");
    assert!(
        err.len() < 2000,
        "{what}: a short message, got {} bytes:\n{err}",
        err.len()
    );
    no_panic(out, &what);
    for rust in ["CsvOptions", "GridSearchCv", "Tensor::", "::"] {
        assert!(
            !err.contains(rust),
            "{what}: a Rust name ({rust:?}) in the message:\n{err}"
        );
    }
    for path in left {
        assert!(
            !Path::new(path).exists(),
            "{what}: {path} was left behind; stderr:\n{err}"
        );
    }
    err
}

pub fn refused(out: &Output, fragment: &str, left: &[&str]) -> String {
    refused_any(out, &[fragment], left)
}

/// Three well-separated blobs, row i of class i % 3, its three features written with 3 decimals.
pub fn blobs(n: usize, seed: u64) -> Vec<([String; 3], usize)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let c = (i % 3) as f32;
            let mut u = || rng.random_range(-0.5f32..0.5);
            let x = [u() + 3.0 * c, u() - 2.0 * c, u() + c];
            (x.map(|v| format!("{v:.3}")), i % 3)
        })
        .collect()
}

/// Two classes, `n` rows `a,b,label` without a header, label 1 rows shifted by 3 in `a`.
pub fn two_classes(n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (a, b) = (rng.random_range(-0.5f32..0.5), rng.random_range(-0.5f32..0.5));
            format!("{:.3},{b:.3},{}", a + 3.0 * (i % 2) as f32, i % 2)
        })
        .collect()
}

/// The blobs with header `sl,sw,pl,species`, each row also written by `row` under `header`.
pub fn blob_file(s: &Scratch, name: &str, header: &str, row: &dyn Fn(usize, &[String; 3], &str) -> String) -> String {
    let mut csv = format!("{header}\n");
    for (i, (x, c)) in blobs(90, 7).iter().enumerate() {
        csv += &row(i, x, SPECIES[*c]);
        csv.push('\n');
    }
    s.write(name, csv)
}

pub fn blob_train(s: &Scratch) -> String {
    blob_file(s, "train.csv", "sl,sw,pl,species", &|_, x, c| {
        format!("{},{},{},{c}", x[0], x[1], x[2])
    })
}
