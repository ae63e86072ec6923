//! The Python package (python/): built from this checkout with maturin into a virtual
//! environment (`pip install ./python[test]`, as the README gives it) and tested there with
//! pytest — scikit-learn's own estimator checks on both estimators, accuracy beside
//! scikit-learn's MLP, pickling across processes, the stacked searches against scikit-learn's
//! GridSearchCV (python/tests/).
//!
//! The environment lives under target/python-venv and is rebuilt only when the package's
//! sources changed; `pip` needs the network (PyPI) the first time. `WGPU_MLP_PYTHON` names
//! another Python to make it with (default `python3`, 3.9 or newer, with venv). Without one
//! the test fails saying so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The newest modification time of the files under `dir` (the package's sources).
fn newest_under(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name == "__pycache__" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        let time = if path.is_dir() {
            newest_under(&path)
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH)
        };
        newest = newest.max(time);
    }
    newest
}

fn run(command: &mut Command, what: &str) {
    let status = command.status();
    assert!(status.as_ref().is_ok_and(|s| s.success()), "{what} failed ({status:?})");
}

/// PATH with the environment's bin/ first (maturin's Python entry runs its binary from there).
fn with_venv_on_path(venv: &Path) -> std::ffi::OsString {
    let mut paths = vec![venv.join("bin")];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).unwrap_or_default()
}

/// A virtual environment with the package built from this checkout.
fn environment() -> PathBuf {
    let venv = root().join("target").join("python-venv");
    let python = venv.join("bin").join("python");
    let stamp = venv.join("built-from");
    let sources = [root().join("python"), root().join("src"), root().join("shaders")]
        .iter()
        .map(|dir| newest_under(dir))
        .chain([std::fs::metadata(root().join("Cargo.toml"))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH)])
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let built = std::fs::metadata(&stamp).and_then(|m| m.modified()).ok();
    if built.is_some_and(|t| t >= sources) && python.exists() {
        return python;
    }
    if !python.exists() {
        let base = std::env::var("WGPU_MLP_PYTHON").unwrap_or_else(|_| "python3".into());
        run(
            Command::new(&base).args(["-m", "venv"]).arg(&venv),
            &format!(
                "{base} -m venv {} (install python3 and python3-venv, or set WGPU_MLP_PYTHON)",
                venv.display()
            ),
        );
        run(
            Command::new(&python).args(["-m", "pip", "install", "-q", "--upgrade", "pip"]),
            "pip upgrade (needs PyPI)",
        );
    }
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "-q",
            "maturin>=1.7,<2",
            "numpy",
            "scipy",
            "scikit-learn",
            "pytest",
            "pandas",
        ]),
        "pip install of the package's build and test dependencies (needs PyPI)",
    );
    // The package itself, built by maturin from this checkout into its own target folder
    // (this test runs while cargo holds the workspace's).
    run(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--force-reinstall",
                "--no-deps",
                "--no-build-isolation",
            ])
            .arg(root().join("python"))
            .env("CARGO_TARGET_DIR", root().join("target").join("python-build"))
            .env("PATH", with_venv_on_path(&venv)),
        "pip install ./python (maturin build of the package)",
    );
    std::fs::write(&stamp, "").expect("stamp written");
    python
}

#[test]
fn python_package_passes_its_pytest_suite() {
    let python = environment();
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"])
        .arg(root().join("python").join("tests"))
        .current_dir(root())
        .output()
        .expect("pytest runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "pytest failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // scikit-learn's checks ran (none collected would also "pass")
    assert!(stdout.contains("passed"), "no Python test ran:\n{stdout}");
}
