//! Compiled pipelines persist on disk between `Gpu`s (and processes), and whatever lies at the
//! cache path never breaks a `Gpu`: a damaged file, one the driver refuses, a FIFO or a
//! directory is ignored, and killed processes' temporaries are removed at the next save.
//!
//! Its own test binary: it sets the cache folder through the environment (once, before any
//! `Gpu` of the binary opens), which no other test reads. Its tests share that folder and so
//! take turns (`turn`).

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};

use wgpu_mlp::raw::{MatmulKernel, MatmulLayout, Tensor, ops};
use wgpu_mlp::{Gpu, Mlp, Sgd};

/// Our header: magic (version 2), adapter key, payload length, payload checksum.
const MAGIC: &[u8; 8] = b"WMLPC\x00\x00\x02";
const HEADER: usize = 32;

/// This test's turn in the cache folder `dir`, which is empty at the start and removed at the end.
struct Turn {
    dir: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn turn() -> Turn {
    static TURN: Mutex<()> = Mutex::new(());
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    // A failed test poisons the lock; the others still run, one at a time.
    let guard = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wgpu-mlp-cache-test-{}", std::process::id()));
        // SAFETY: every test of this binary takes `TURN` before anything else, and the first
        // sets the variable before any `Gpu` (or thread of one) exists: nothing reads the
        // environment meanwhile.
        unsafe { std::env::set_var("WGPU_MLP_CACHE_DIR", &dir) };
        dir
    });
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    Turn {
        dir: dir.clone(),
        _guard: guard,
    }
}

/// The cache file of this adapter, under `dir`; `None` only where the adapter keeps no
/// pipeline cache, which must then not be Vulkan (not a skip: the others must say so).
fn cache_file(dir: &Path) -> Option<PathBuf> {
    let gpu = common::own_gpu();
    let Some(file) = gpu.pipeline_cache_file().map(Path::to_path_buf) else {
        assert_ne!(
            gpu.backend(),
            wgpu::Backend::Vulkan,
            "Vulkan adapters keep a pipeline cache"
        );
        return None;
    };
    assert!(file.starts_with(dir), "{file:?} is not under {dir:?}");
    Some(file)
}

/// One small matmul through `gpu`, checked (so the kernel really compiled and ran).
fn run_matmul(gpu: &Gpu) {
    let a = Tensor::from_slice(gpu, &[2, 3], &[1., 2., 3., 4., 5., 6.]).unwrap();
    let b = Tensor::from_slice(gpu, &[3, 1], &[1., 0., -1.]).unwrap();
    let c = Tensor::full(gpu, &[2, 1], f32::NAN).unwrap();
    let dispatch = ops::matmul(gpu, MatmulKernel::Naive, MatmulLayout::AB, &a, &b, &c, false).unwrap();
    gpu.run(&[&dispatch]).unwrap();
    assert_eq!(c.to_vec().unwrap(), vec![-2.0, -2.0]);
}

/// A fresh `Gpu` that trains a small net on xor (forward, backward, updates, predictions):
/// every kind of pipeline goes through the cache. Dropping it saves the cache.
fn train_on_fresh_gpu() {
    let gpu = common::own_gpu();
    let mut mlp = Mlp::builder(&[2, 8, 1]).seed(7).build(&gpu, 4, Sgd::new(0.5)).unwrap();
    mlp.set_batch(&[0., 0., 0., 1., 1., 0., 1., 1.], &[0., 1., 1., 0.])
        .unwrap();
    let before = mlp.batch_loss().unwrap();
    mlp.steps(200).unwrap();
    let after = mlp.batch_loss().unwrap();
    assert!(after.is_finite() && after < before, "loss {before} -> {after}");
    let outputs = mlp.batch_outputs().unwrap();
    assert!(
        outputs.len() == 4 && outputs.iter().all(|y| y.is_finite()),
        "{outputs:?}"
    );
    run_matmul(&gpu);
}

/// Runs `body` on a thread of its own; fails if it panics or takes longer than `limit` (a
/// hung read, say), without waiting for it.
fn within(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => thread.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("still running after {limit:?}: hung"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body ends by sending"),
        },
    }
}

/// FNV-1a, 64 bits, as in our header.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What our header says identifies this adapter.
fn adapter_key() -> u64 {
    let key = wgpu::util::pipeline_cache_key(common::own_gpu().adapter_info()).expect("a pipeline cache key");
    fnv(key.as_bytes())
}

/// `payload` behind a header of ours that is valid for the adapter `key`.
fn wrap(payload: &[u8], key: u64) -> Vec<u8> {
    let mut file = MAGIC.to_vec();
    for word in [key, payload.len() as u64, fnv(payload)] {
        file.extend_from_slice(&word.to_le_bytes());
    }
    file.extend_from_slice(payload);
    file
}

/// The cache file at `file` is ours, valid for this adapter: its payload.
#[track_caller]
fn our_payload(file: &Path) -> Vec<u8> {
    let bytes = std::fs::read(file).expect("the cache is written when the Gpu is dropped");
    assert!(
        bytes.len() > HEADER && bytes.starts_with(MAGIC),
        "{} bytes",
        bytes.len()
    );
    let payload = bytes[HEADER..].to_vec();
    assert_eq!(bytes[8..16], adapter_key().to_le_bytes(), "the adapter key");
    assert_eq!(bytes[16..24], (payload.len() as u64).to_le_bytes(), "the length");
    assert_eq!(bytes[24..32], fnv(&payload).to_le_bytes(), "the checksum");
    payload
}

#[test]
fn pipeline_cache_persists_and_survives_damage() {
    let folder = turn();
    let dir = &folder.dir;
    let Some(file) = cache_file(dir) else { return };
    let gpu = common::own_gpu();
    run_matmul(&gpu);
    drop(gpu);
    let saved = std::fs::read(&file).expect("the cache is written when the Gpu is dropped");
    our_payload(&file);

    // A damaged file: ignored, the device works, and the file is rewritten whole.
    let mut damaged = saved.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    damaged.truncate(damaged.len() - 3);
    std::fs::write(&file, &damaged).unwrap();
    let gpu = common::own_gpu();
    run_matmul(&gpu);
    drop(gpu);
    our_payload(&file);

    // Garbage of another origin, then the good file again: both load without error.
    std::fs::write(&file, b"not a pipeline cache").unwrap();
    run_matmul(&common::own_gpu());
    run_matmul(&common::own_gpu());
    our_payload(&file);
}

/// Files that pass our header but that wgpu refuses (its own header names another device;
/// its payload is garbage), and one of another adapter: training works with each, and the
/// file is rewritten good.
#[test]
fn files_the_driver_refuses_are_ignored() {
    let folder = turn();
    let dir = &folder.dir;
    let Some(file) = cache_file(dir) else { return };
    train_on_fresh_gpu();
    let good = our_payload(&file);
    // wgpu's header: magic, version (4), ABI (4), backend (1), then the adapter key (15).
    assert!(good.starts_with(b"WGPUPLCH"), "wgpu's pipeline cache header changed");
    let mut other_device = good.clone();
    other_device[17 + 7] ^= 0x5a; // the device id: wgpu refuses this one outright
    let garbage = b"whole and checksummed, but no pipeline cache".to_vec();
    let key = adapter_key();
    let cases = [
        ("wgpu's header of another device", wrap(&other_device, key)),
        ("a payload that is no pipeline cache", wrap(&garbage, key)),
        ("our header of another adapter", wrap(&other_device, key ^ 1)),
        ("an empty payload", wrap(&[], key)),
    ];
    for (what, bytes) in cases {
        std::fs::write(&file, &bytes).unwrap();
        train_on_fresh_gpu();
        let rewritten = our_payload(&file);
        assert_eq!(
            rewritten[..32],
            good[..32],
            "{what}: wgpu's header for this device again"
        );
    }
}

/// A FIFO at the cache path is not read (that would block) and is replaced by the save; a
/// directory is not read and is left alone.
#[test]
fn a_fifo_or_a_directory_at_the_path_is_ignored() {
    let folder = turn();
    let dir = &folder.dir;
    let Some(file) = cache_file(dir) else { return };
    let status = std::process::Command::new("mkfifo").arg(&file).status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "mkfifo {file:?}: {status:?}"
    );
    within(Duration::from_secs(60), train_on_fresh_gpu);
    assert!(
        std::fs::metadata(&file).unwrap().is_file(),
        "the FIFO is replaced by the save"
    );
    our_payload(&file);

    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("inside"), b"kept").unwrap();
    within(Duration::from_secs(60), train_on_fresh_gpu);
    assert_eq!(
        std::fs::read(file.join("inside")).unwrap(),
        b"kept",
        "the directory is left alone"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

/// A save removes the temporaries of dead processes, and only those.
#[test]
fn stale_temporaries_are_removed_at_the_save() {
    let folder = turn();
    let dir = &folder.dir;
    let Some(file) = cache_file(dir) else { return };
    let hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let minutes_ago = SystemTime::now() - Duration::from_secs(5 * 60);
    let me = std::process::id();
    let mut temporaries = vec![
        (".999999999.12345.tmp".to_string(), hours_ago, false), // a dead process's: goes
        (format!(".{me}.12345.tmp"), hours_ago, true),          // ours: another thread's, stays
        (format!(".{me}.23456.tmp"), minutes_ago, true),
        (".999999999.tmp".to_string(), hours_ago, true), // not named as ours
        ("999999999.12345.tmp".to_string(), hours_ago, true),
        (".x999999999.12345.tmp".to_string(), hours_ago, true),
    ];
    if cfg!(target_os = "linux") {
        temporaries.push((".999999998.12345.tmp".to_string(), minutes_ago, false)); // dead, by /proc
        temporaries.push((".1.12345.tmp".to_string(), hours_ago, true)); // pid 1 lives
    }
    for (name, modified, _) in &temporaries {
        let path = dir.join(name);
        std::fs::write(&path, b"half written").unwrap();
        let handle = std::fs::File::options().write(true).open(&path).unwrap();
        handle.set_modified(*modified).unwrap();
    }
    train_on_fresh_gpu();
    our_payload(&file);
    for (name, _, kept) in &temporaries {
        assert_eq!(
            dir.join(name).exists(),
            *kept,
            "{name} should be {}",
            if *kept { "kept" } else { "removed" }
        );
    }
}
