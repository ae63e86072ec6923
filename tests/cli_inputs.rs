//! The `wgpu-mlp` command on awkward inputs, one regression test per defect found: each case
//! is either refused (exit 1, a short message on stderr naming the problem in the command
//! line's terms, no panic, no output file left behind) or answered right. Every run uses tiny
//! data and few epochs, in a folder of its own that is removed at the end.

mod cli_support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::*;

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
