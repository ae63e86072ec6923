//! The `wgpu-mlp` command on awkward inputs, one regression test per defect found: each case
//! is either refused (exit 1, a short message on stderr naming the problem in the command
//! line's terms, no panic, no output file left behind) or answered right. Every run uses tiny
//! data and few epochs, in a folder of its own that is removed at the end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BIN: &str = env!("CARGO_BIN_EXE_wgpu-mlp");
const SPECIES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// A folder of its own per test, removed when the test ends (passed or failed).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("wgpu-mlp-cli-inputs-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }

    fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
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

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, None)
}

/// Runs the binary, `stdin` (if any) written to its standard input from a thread of its own.
fn run_with_stdin(args: &[&str], stdin: Option<&[u8]>) -> Output {
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
fn fit(data: &str, model: &str, extra: &[&str]) -> Output {
    let mut args = vec!["fit", data, "-o", model, "--folds", "2", "-q"];
    if !extra.contains(&"--epochs") {
        args.extend(["--epochs", "3"]);
    }
    args.extend(extra);
    run(&args)
}

fn no_panic(out: &Output, what: &str) {
    let err = text(&out.stderr);
    for bad in ["panicked", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{what}: panic text on stderr:\n{err}");
    }
}

/// Exit 0 without panic text; returns stdout.
fn succeeded(out: &Output, what: &str) -> String {
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
fn refused_any(out: &Output, fragments: &[&str], left: &[&str]) -> String {
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

fn refused(out: &Output, fragment: &str, left: &[&str]) -> String {
    refused_any(out, &[fragment], left)
}

/// Three well-separated blobs, row i of class i % 3, its three features written with 3 decimals.
fn blobs(n: usize, seed: u64) -> Vec<([String; 3], usize)> {
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
fn two_classes(n: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let (a, b) = (rng.random_range(-0.5f32..0.5), rng.random_range(-0.5f32..0.5));
            format!("{:.3},{b:.3},{}", a + 3.0 * (i % 2) as f32, i % 2)
        })
        .collect()
}

/// The blobs with header `sl,sw,pl,species`, each row also written by `row` under `header`.
fn blob_file(s: &Scratch, name: &str, header: &str, row: &dyn Fn(usize, &[String; 3], &str) -> String) -> String {
    let mut csv = format!("{header}\n");
    for (i, (x, c)) in blobs(90, 7).iter().enumerate() {
        csv += &row(i, x, SPECIES[*c]);
        csv.push('\n');
    }
    s.write(name, csv)
}

fn blob_train(s: &Scratch) -> String {
    blob_file(s, "train.csv", "sl,sw,pl,species", &|_, x, c| {
        format!("{},{},{},{c}", x[0], x[1], x[2])
    })
}

/// 1. Columns matched by header name: reordered, an extra column, the label first; a missing one.
#[test]
fn predict_matches_columns_by_header_name() {
    let s = Scratch::new("columns");
    let (train, model) = (blob_train(&s), s.path("m.safetensors"));
    succeeded(&fit(&train, &model, &["--epochs", "30", "--lr", "0.05"]), "fit");
    let base = succeeded(&run(&["predict", &model, &train]), "predict on the training file");
    let answers: Vec<&str> = base.lines().collect();
    assert_eq!(answers[0], "class");
    let right = blobs(90, 7)
        .iter()
        .zip(&answers[1..])
        .filter(|((_, c), a)| SPECIES[*c] == **a)
        .count();
    assert!(
        right >= 85,
        "separable blobs are classified right ({right} of 90):\n{base}"
    );

    let reordered = blob_file(&s, "reordered.csv", "pl,sl,species,sw", &|_, x, c| {
        format!("{},{},{c},{}", x[2], x[0], x[1])
    });
    let with_id = blob_file(&s, "with_id.csv", "id,sl,sw,pl,species", &|i, x, c| {
        format!("{i},{},{},{},{c}", x[0], x[1], x[2])
    });
    let label_first = blob_file(&s, "label_first.csv", "species,sl,sw,pl", &|_, x, c| {
        format!("{c},{},{},{}", x[0], x[1], x[2])
    });
    for (file, ignored) in [
        (&reordered, &["species"][..]),
        (&with_id, &["id", "species"]),
        (&label_first, &["species"]),
    ] {
        let out = run(&["predict", &model, file]);
        assert_eq!(
            succeeded(&out, file),
            base,
            "{file}: the same predictions line for line"
        );
        let err = text(&out.stderr);
        let note = err.lines().find(|l| l.contains("ignored column(s)"));
        let note = note.unwrap_or_else(|| panic!("{file}: a note on the ignored columns; stderr:\n{err}"));
        for name in ignored {
            assert!(note.contains(name), "{file}: the note names {name:?}: {note}");
        }
    }
    let missing = blob_file(&s, "missing.csv", "sl,sw,species", &|_, x, c| {
        format!("{},{},{c}", x[0], x[1])
    });
    let predictions = s.path("pred.csv");
    let out = run(&["predict", &model, &missing, "-o", &predictions]);
    refused(&out, "needs feature column(s) \"pl\"", &[&predictions]);
}

/// 2. A headerless file whose first row has a text cell is refused at line 1, not taken as a header.
#[test]
fn headerless_first_row_with_text_is_refused() {
    let s = Scratch::new("headerless");
    let mut rows = two_classes(60, 2);
    rows[0] = "1.5,abc,0".into();
    let data = s.write("data.csv", rows.join("\n") + "\n");
    let model = s.path("m.safetensors");
    let err = refused(&fit(&data, &model, &[]), "line 1", &[&model]);
    assert!(err.contains("--header"), "suggests --header:\n{err}");
}

/// 3. A trailing delimiter on every line: the label is the last non-empty column.
#[test]
fn trailing_delimiter_on_every_line() {
    let s = Scratch::new("trailing");
    let data = s.write("data.csv", two_classes(60, 3).join(",\n") + ",\n");
    let model = s.path("m.safetensors");
    let out = fit(&data, &model, &[]);
    let stdout = succeeded(&out, "fit");
    assert!(
        text(&out.stderr).contains("empty in every row"),
        "{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("60 samples, 2 features, 2 outputs"), "{stdout}");
    assert!(stdout.contains("label: column 3"), "{stdout}");
    let predictions = succeeded(&run(&["predict", &model, &data]), "predict on the same file");
    assert_eq!(predictions.lines().count(), 61, "a header and 60 rows:\n{predictions}");
    assert!(
        predictions.lines().skip(1).all(|l| l == "0" || l == "1"),
        "{predictions}"
    );
}

/// 4. One label value throughout.
#[test]
fn one_class_is_refused() {
    let s = Scratch::new("one-class");
    let rows: String = (0..40).map(|i| format!("{i},{},1\n", i * 2)).collect();
    let data = s.write("data.csv", format!("a,b,y\n{rows}"));
    let model = s.path("m.safetensors");
    refused(&fit(&data, &model, &[]), "one class", &[&model]);
}

/// 5. Gzip: two members read whole; trailing garbage refused.
#[test]
fn gzip_members_and_garbage() {
    let s = Scratch::new("gzip");
    let rows = two_classes(60, 5);
    let gz = |lines: &[String]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all((lines.join("\n") + "\n").as_bytes()).unwrap();
        e.finish().unwrap()
    };
    let two = [gz(&rows[..30]), gz(&rows[30..])].concat();
    let data = s.write("two.csv.gz", &two);
    let model = s.path("m.safetensors");
    let stdout = succeeded(&fit(&data, &model, &["--no-header"]), "fit on two gzip members");
    assert!(
        stdout.contains(&format!("{data}: 60 samples")),
        "all 60 rows:\n{stdout}"
    );

    let garbage = s.write("garbage.csv.gz", [gz(&rows), b"garbage\n".to_vec()].concat());
    let model = s.path("g.safetensors");
    refused(&fit(&garbage, &model, &["--no-header"]), "gzip", &[&model]);
}

/// 6. Damaged, edited, truncated model files and swapped arguments.
#[test]
fn damaged_model_files_are_refused() {
    let s = Scratch::new("model-files");
    let (train, model) = (blob_train(&s), s.path("m.safetensors"));
    succeeded(&fit(&train, &model, &[]), "fit");
    let bytes = std::fs::read(&model).unwrap();
    let predictions = s.path("pred.csv");
    let predict = |model: &str| run(&["predict", model, &train, "-o", &predictions]);
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let (header, tensors) = bytes[8..].split_at(header_len);

    // (a) class_names edited to two names for three outputs, the header's length kept.
    let names = br#",\"virginica\""#;
    let at = header
        .windows(names.len())
        .position(|w| w == names)
        .expect("class_names in the header");
    let edited = [
        &bytes[..8],
        &header[..at],
        &header[at + names.len()..],
        &[b' '; 14][..],
        tensors,
    ]
    .concat();
    assert_eq!(edited.len(), bytes.len());
    let edited = s.write("edited.safetensors", edited);
    refused(&predict(&edited), "checksum", &[&predictions]);

    // The same inconsistency in a file from before checksums (no format version): still refused.
    let mut json: serde_json::Value = serde_json::from_slice(header).unwrap();
    let meta = json["__metadata__"].as_object_mut().unwrap();
    meta.remove("checksum");
    meta.remove("format_version");
    meta.insert("class_names".into(), "setosa\u{1f}versicolor".into());
    let mut header = serde_json::to_vec(&json).unwrap();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let old = [&(header.len() as u64).to_le_bytes()[..], &header, tensors].concat();
    let old = s.write("old.safetensors", old);
    refused(&predict(&old), "inconsistent", &[&predictions]);

    // (b) any one bit flipped in the tensor data.
    assert!(tensors.len() > 1000, "the last 1000 bytes are tensor data");
    let mut rng = StdRng::seed_from_u64(6);
    let flipped_path = s.path("flipped.safetensors");
    for _ in 0..50 {
        let (at, bit) = (bytes.len() - 1 - rng.random_range(0..1000), rng.random_range(0..8));
        let mut flipped = bytes.clone();
        flipped[at] ^= 1 << bit;
        std::fs::write(&flipped_path, &flipped).unwrap();
        let out = predict(&flipped_path);
        assert_ne!(
            out.status.code(),
            Some(0),
            "byte {at} bit {bit} flipped: predict answered"
        );
        refused_any(&out, &["checksum", "damaged", "not a wgpu-mlp model"], &[&predictions]);
    }

    // (c) truncated.
    let cut_path = s.path("cut.safetensors");
    for len in [0, 8, 100, header_len + 8, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut_path, &bytes[..len]).unwrap();
        refused_any(
            &predict(&cut_path),
            &["checksum", "damaged", "not a wgpu-mlp model", "empty"],
            &[&predictions],
        );
    }

    // (d) arguments swapped: the rows given as the model, plain or gzipped.
    let out = run(&["predict", &train, &model, "-o", &predictions]);
    refused(&out, "the model comes first", &[&predictions]);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(&std::fs::read(&train).unwrap()).unwrap();
    let train_gz = s.write("train.csv.gz", e.finish().unwrap());
    let out = run(&["predict", &train_gz, &model, "-o", &predictions]);
    refused(&out, "the model comes first", &[&predictions]);
}

/// 7. Huge class labels neither panic nor abort; real-valued labels without --regression refused.
#[test]
fn label_values() {
    let s = Scratch::new("labels");
    let rows = two_classes(40, 7);
    let relabel = |rows: &mut [String], at: usize, label: &str| {
        let features = rows[at].rsplit_once(',').unwrap().0.to_string();
        rows[at] = format!("{features},{label}");
    };
    let mut once = rows.clone();
    relabel(&mut once, 5, "18446744073709551615");
    relabel(&mut once, 7, "1e12");
    let data = s.write("once.csv", format!("a,b,y\n{}\n", once.join("\n")));
    let out = fit(&data, &s.path("once.safetensors"), &[]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit 0 or 1, not a signal: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    no_panic(&out, "labels 18446744073709551615 and 1e12 once each");

    let mut twice = rows.clone();
    for (at, label) in [
        (3, "18446744073709551615"),
        (9, "18446744073709551615"),
        (5, "1e12"),
        (11, "1e12"),
    ] {
        relabel(&mut twice, at, label);
    }
    let data = s.write("twice.csv", format!("a,b,y\n{}\n", twice.join("\n")));
    let stdout = succeeded(&fit(&data, &s.path("twice.safetensors"), &[]), "huge labels twice each");
    assert!(
        stdout.contains("classes (in output order): 0, 1, 1000000000000, 18446744073709551615"),
        "{stdout}"
    );

    let mut rng = StdRng::seed_from_u64(8);
    let floats: String = (0..200)
        .map(|i| {
            format!(
                "{i},{:.3},{:.3}\n",
                rng.random_range(0.0..1.0f32),
                rng.random_range(0.0..100.0f32)
            )
        })
        .collect();
    let data = s.write("floats.csv", format!("a,b,y\n{floats}"));
    let model = s.path("floats.safetensors");
    refused(&fit(&data, &model, &[]), "--regression", &[&model]);
}

/// 8. A 1 MB text cell is shown cut.
#[test]
fn long_cells_are_cut_in_messages() {
    let s = Scratch::new("long-cell");
    let mut rows: Vec<String> = (0..40).map(|i| format!("{i},{},{}", i % 7, i % 2)).collect();
    rows[10] = format!("{},3,0", "x".repeat(1 << 20));
    let data = s.write("data.csv", format!("a,b,y\n{}\n", rows.join("\n")));
    let model = s.path("m.safetensors");
    let err = refused(&fit(&data, &model, &[]), "characters", &[&model]);
    assert!(err.len() < 1000, "{} bytes on stderr", err.len());
}

/// 9. Missing folders of -o created; -o naming a folder refused before any training.
#[test]
fn output_folders() {
    let s = Scratch::new("output");
    let data = s.write("data.csv", format!("a,b,y\n{}\n", two_classes(40, 9).join("\n")));
    let nested = s.path("models/sub/x.safetensors");
    succeeded(&fit(&data, &nested, &[]), "-o in missing folders");
    assert!(Path::new(&nested).is_file(), "{nested} saved");

    let folder = s.path("models");
    for output in [folder.clone(), format!("{folder}/")] {
        let started = Instant::now();
        let out = fit(&data, &output, &["--epochs", "200"]);
        refused(&out, "folder", &[]);
        assert!(
            text(&out.stdout).is_empty(),
            "refused before opening the GPU or training:\n{}",
            text(&out.stdout)
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            Path::new(&folder).is_dir() && Path::new(&nested).is_file(),
            "the folder is untouched"
        );
    }
}

/// 10 and 11. SGD with a learning rate; a batch size above the rows, clipped.
#[test]
fn sgd_and_oversized_batches() {
    let s = Scratch::new("options");
    let data = s.write("data.csv", format!("a,b,y\n{}\n", two_classes(60, 10).join("\n")));
    let model = s.path("m.safetensors");
    succeeded(
        &fit(&data, &model, &["--optimizer", "sgd", "--lr", "0.01"]),
        "--optimizer sgd --lr 0.01",
    );
    assert!(Path::new(&model).is_file());

    let started = Instant::now();
    let out = fit(&data, &s.path("b.safetensors"), &["--batch-size", "100000"]);
    succeeded(&out, "--batch-size 100000");
    assert!(text(&out.stderr).contains("clipped"), "{}", text(&out.stderr));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

/// 12. --proba on a regression model.
#[test]
fn proba_on_a_regression_is_refused() {
    let s = Scratch::new("proba");
    let rows: String = (0..60)
        .map(|i| format!("{i},{},{:.2}\n", i % 5, i as f32 * 0.5 + 1.0))
        .collect();
    let data = s.write("data.csv", format!("a,b,y\n{rows}"));
    let model = s.path("m.safetensors");
    succeeded(&fit(&data, &model, &["--regression"]), "fit --regression");
    let predictions = s.path("pred.csv");
    let out = run(&["predict", "--proba", &model, &data, "-o", &predictions]);
    refused(&out, "--proba", &[&predictions]);
}

/// 13. A reader that went away: quiet exit, no panic, no error.
#[test]
fn closed_stdout_is_quiet() {
    let s = Scratch::new("closed-stdout");
    let (train, model) = (blob_train(&s), s.path("m.safetensors"));
    succeeded(&fit(&train, &model, &[]), "fit");
    let rows: String = (0..20000)
        .map(|i| format!("{}.5,-{}.25,{}\n", i % 7, i % 5, i % 3))
        .collect();
    let rows = s.write("rows.csv", format!("sl,sw,pl\n{rows}"));
    let mut child = Command::new(BIN)
        .args(["predict", &model, &rows])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before the child writes a byte
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    no_panic(&out, "a closed stdout");
    assert!(!err.lines().any(|l| l.starts_with("error:")), "no error line:\n{err}");
    assert_eq!(out.status.code(), Some(0), "{:?}\n{err}", out.status);
}

/// 14. No data rows; the label named twice; column 0.
#[test]
fn empty_files_ambiguous_and_zeroth_columns() {
    let s = Scratch::new("empty");
    let model = s.path("m.safetensors");
    let header_only = s.write("header_only.csv", "a,b,y\n");
    refused(&fit(&header_only, &model, &[]), "no data rows", &[&model]);
    let empty = s.write("empty.csv", "");
    refused(&fit(&empty, &model, &[]), "no data rows", &[&model]);

    let rows: String = (0..20).map(|i| format!("{i},{},{}\n", i % 2, i % 2)).collect();
    let twice = s.write("twice.csv", format!("a,y,y\n{rows}"));
    refused(&fit(&twice, &model, &["--label-column", "y"]), "ambiguous", &[&model]);
    let data = s.write("data.csv", format!("a,b,y\n{}\n", two_classes(40, 14).join("\n")));
    refused(
        &fit(&data, &model, &["--label-column", "0"]),
        "numbered from 1",
        &[&model],
    );
}

/// 15. Training data on standard input, as - or /dev/stdin.
#[test]
fn training_data_on_stdin() {
    let s = Scratch::new("stdin");
    let csv = format!("a,b,y\n{}\n", two_classes(40, 15).join("\n"));
    for (name, file) in [("-", "dash.safetensors"), ("/dev/stdin", "dev.safetensors")] {
        let model = s.path(file);
        let args = ["fit", name, "-o", &model, "--epochs", "3", "--folds", "2", "-q"];
        let stdout = succeeded(&run_with_stdin(&args, Some(csv.as_bytes())), name);
        assert!(stdout.contains(&format!("{name}: 40 samples, 2 features")), "{stdout}");
        assert!(Path::new(&model).is_file(), "{name}: model saved");
    }
}

/// 16. A test file laid out otherwise than the training file.
#[test]
fn test_data_with_other_columns_is_refused() {
    let s = Scratch::new("test-data");
    let (train, model) = (blob_train(&s), s.path("m.safetensors"));
    let other = blob_file(&s, "other.csv", "sl,sw,species", &|_, x, c| {
        format!("{},{},{c}", x[0], x[1])
    });
    let out = fit(&train, &model, &["--test-data", &other]);
    refused(&out, "laid out as the training file", &[&model]);
}

/// 17. A temporary file left by a killed save is removed by the next save.
#[test]
fn stale_temporaries_are_removed() {
    let s = Scratch::new("stale");
    let data = s.write("data.csv", format!("a,b,y\n{}\n", two_classes(40, 17).join("\n")));
    let stale = s.write(".x.safetensors.tmp-999999999", b"half a model");
    let model = s.path("x.safetensors");
    succeeded(&fit(&data, &model, &[]), "fit");
    assert!(Path::new(&model).is_file());
    assert!(!Path::new(&stale).exists(), "{stale} was not removed");
}
