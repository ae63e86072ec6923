//! The `wgpu-mlp` command: help and exit codes (0 done, 1 bad input, 2 usage), `fit` on a CSV
//! as found in the wild (a header, `;`, class names) saving a model that `predict`, in
//! another process, answers with class names, the same ones the library's `Model::load`
//! gives, and `info`.

mod common;

use std::process::{Command, Output};

use common::*;

fn wgpu_mlp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(args)
        .output()
        .expect("the wgpu-mlp binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_usage_errors() {
    for args in [
        &["--help"][..],
        &["fit", "--help"],
        &["predict", "--help"],
        &["info", "--help"],
    ] {
        let out = wgpu_mlp(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Usage: wgpu-mlp"),
            "{args:?} prints its usage"
        );
    }
    for args in [
        &[][..],
        &["fit"],
        &["fit", "x.csv", "--lr", "fast"],
        &["predict", "model"],
        &["nonsense"],
    ] {
        let out = wgpu_mlp(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} is a usage error: {}",
            text(&out.stderr)
        );
    }
    let out = wgpu_mlp(&["fit", "/nonexistent/data.csv"]);
    assert_eq!(out.status.code(), Some(1), "a missing file is bad input");
    assert!(
        text(&out.stderr).contains("/nonexistent/data.csv"),
        "names the file: {}",
        text(&out.stderr)
    );
}

#[test]
fn fit_then_predict_in_other_processes_gives_class_names() {
    let gpu = gpu();
    let (seed, mut rng) = seeded_rng();
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-cli-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Three well-separated blobs named by species, ';'-separated, with a header.
    let names = ["setosa", "versicolor", "virginica"];
    let mut csv = String::from("width;length;depth;species\n");
    let mut rows = String::new();
    for i in 0..90 {
        let class = i % 3;
        let x = uniform(&mut rng, 3, -0.5, 0.5);
        let line = format!("{};{};{}", x[0] + 3.0 * class as f32, x[1] - 2.0 * class as f32, x[2]);
        csv += &format!("{line};{}\n", names[class]);
        if i < 12 {
            rows += &format!("{line}\n");
        }
    }
    let (train_path, rows_path) = (dir.join("train.csv"), dir.join("rows.csv"));
    let model_path = dir.join("model.safetensors");
    std::fs::write(&train_path, csv).unwrap();
    std::fs::write(&rows_path, rows).unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();

    let seed_text = (seed % 1000).to_string();
    let plots = path(&dir.join("plots"));
    let fit = wgpu_mlp(&[
        "fit",
        &path(&train_path),
        "-o",
        &path(&model_path),
        "--folds",
        "3",
        "--seed",
        &seed_text,
        "--plots",
        &plots,
    ]);
    let stdout = text(&fit.stdout);
    assert_eq!(
        fit.status.code(),
        Some(0),
        "seed {seed}: {}\n{stdout}",
        text(&fit.stderr)
    );
    assert!(
        stdout.contains("classes (in output order): setosa, versicolor, virginica"),
        "{stdout}"
    );
    assert!(stdout.contains("test accuracy"), "{stdout}");
    for name in ["grid.svg", "loss.svg"] {
        let svg = std::fs::read_to_string(format!("{plots}/{name}")).unwrap();
        assert!(svg.starts_with("<svg"), "{name}");
        assert_eq!(svg.contains("polyline"), name == "loss.svg", "{name}: its lines");
    }

    let predict = wgpu_mlp(&["predict", &path(&model_path), &path(&rows_path)]);
    assert_eq!(predict.status.code(), Some(0), "{}", text(&predict.stderr));
    let answered: Vec<String> = text(&predict.stdout).lines().map(str::to_string).collect();
    assert_eq!(answered[0], "class");
    let want: Vec<&str> = (0..12).map(|i| names[i % 3]).collect();
    assert_eq!(
        &answered[1..],
        &want[..],
        "seed {seed}: separable blobs are classified right"
    );

    // The library loading the same file answers the same.
    let model = wgpu_mlp::Model::load(&gpu, &model_path).unwrap();
    let x = wgpu_mlp::data::read_features(&rows_path, &Default::default(), &model.schema(), model.n_features())
        .unwrap()
        .features;
    assert_eq!(model.predict_class_names(&x).unwrap(), want);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn info_names_the_adapter() {
    let gpu = gpu();
    let out = wgpu_mlp(&["info"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("* {}", gpu.adapter_name())),
        "{}",
        text(&out.stdout)
    );
}

/// A search cut into 3 shards run as 3 processes (as a Slurm array or a Kubernetes Indexed
/// Job would, the index from SLURM_ARRAY_TASK_ID for one of them), then merged, ranks the
/// grid and refits exactly as the search in one go; a merge with a shard missing is refused.
#[test]
fn three_shards_merged_equal_the_whole_search() {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-shards-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("digits.csv.gz");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/data/digits.csv.gz"), &data).unwrap();
    let (data, shards) = (data.to_str().unwrap().to_string(), dir.join("shards"));
    let shards = shards.to_str().unwrap().to_string();
    let model = dir.join("m.safetensors").to_str().unwrap().to_string();
    let options = [
        "fit",
        &data,
        "--lr",
        "0.003,0.03",
        "--activation",
        "relu,tanh",
        "--epochs",
        "3",
        "--early-stopping",
        "off",
        "--folds",
        "3",
        "-q",
        "-o",
        &model,
        "--shard-dir",
        &shards,
    ];
    let with = |extra: &[&str]| -> Vec<String> { options.iter().chain(extra).map(|s| s.to_string()).collect() };
    let run = |args: Vec<String>, env: Option<(&str, &str)>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"));
        command.args(&args);
        if let Some((name, value)) = env {
            command.env(name, value);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(with(&["--shard", "0/3"]), None);
    run(with(&["--shard", "3"]), Some(("SLURM_ARRAY_TASK_ID", "1")));
    let missing = Command::new(env!("CARGO_BIN_EXE_wgpu-mlp"))
        .args(with(&["--merge", &shards]))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "a merge without shard 2 is refused");
    assert!(
        text(&missing.stderr).contains("shard is missing"),
        "{}",
        text(&missing.stderr)
    );
    run(with(&["--shard", "2/3"]), None);
    let table = |stdout: String| -> Vec<String> {
        stdout
            .lines()
            .filter(|l| l.starts_with("   ") || l.starts_with("best") || l.starts_with("test"))
            .map(str::to_string)
            .collect()
    };
    let merged = table(run(with(&["--merge", &shards]), None));
    let whole = table(run(with(&[]), None));
    assert_eq!(merged.len(), 4 + 2, "four grid points, best, test: {merged:?}");
    assert_eq!(merged, whole, "ranks, mean and fold scores, winner and its test score");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--test-data`: every row of the training file trains, the test file scores, its classes
/// matched by name (here the test file holds only two of the three classes).
#[test]
fn a_separate_test_file_is_scored_by_class_name() {
    let (seed, mut rng) = seeded_rng();
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-test-data-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let names = ["alpha", "beta", "gamma"];
    let mut write = |file: &str, rows: usize, classes: &[usize]| {
        let mut csv = String::from("x;y;label\n");
        for i in 0..rows {
            let class = classes[i % classes.len()];
            let noise = uniform(&mut rng, 2, -0.4, 0.4);
            csv += &format!("{};{};{}\n", noise[0] + 4.0 * class as f32, noise[1], names[class]);
        }
        let path = dir.join(file);
        std::fs::write(&path, csv).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (train, test) = (write("train.csv", 90, &[0, 1, 2]), write("test.csv", 20, &[2, 1]));
    let model = dir.join("m.safetensors").to_str().unwrap().to_string();
    let out = wgpu_mlp(&["fit", &train, "--test-data", &test, "--folds", "3", "-q", "-o", &model]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "seed {seed}: {}", text(&out.stderr));
    assert!(
        stdout.contains("all train; test: ") && stdout.contains("20 samples"),
        "{stdout}"
    );
    assert!(stdout.contains("test accuracy 100.00%"), "seed {seed}: {stdout}");
    std::fs::remove_dir_all(&dir).ok();
}
