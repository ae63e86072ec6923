//! Matmul kernel choice by measurement: tuned once per shape bucket, kept in a file per
//! adapter and driver, read back by the next `Gpu` (no re-timing), damaged lines ignored.
//! Forced on here (`WGPU_MLP_AUTOTUNE=1`) since CPU adapters keep the fixed choice; its own
//! test binary, as it sets the environment.

mod common;

use wgpu_mlp::raw::{MatmulKernel, MatmulLayout};
use wgpu_mlp::{Mlp, Sgd};

#[test]
fn autotune_measures_once_and_remembers() {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-autotune-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: this binary's only test; nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("WGPU_MLP_CACHE_DIR", &dir);
        std::env::set_var("WGPU_MLP_AUTOTUNE", "1");
    }
    let gpu = common::own_gpu();
    // Candidates are Vec4 and Tiled: a shape Vec4 cannot take gets Tiled.
    assert_eq!(
        MatmulKernel::choose(&gpu, MatmulLayout::AB, 7, 13, 5),
        MatmulKernel::Tiled
    );
    let chosen = MatmulKernel::choose(&gpu, MatmulLayout::AB, 64, 64, 64);
    assert!(matches!(chosen, MatmulKernel::Vec4 | MatmulKernel::Tiled), "{chosen:?}");
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("autotune-"))
        .expect("the tuning file is written");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("AB 64 64 64 {chosen:?}")), "{text}");
    assert!(text.contains("AB 8 16 8 Tiled"), "{text}");

    // A later Gpu reads the file instead of timing: an entry written by hand is obeyed, and
    // damaged lines cost nothing but a re-tune.
    let other = if chosen == MatmulKernel::Vec4 {
        MatmulKernel::Tiled
    } else {
        MatmulKernel::Vec4
    };
    std::fs::write(
        &file,
        format!("AB 64 64 64 {other:?}\nABt 64 64 64 Nonsense\n\u{0}garbage\n"),
    )
    .unwrap();
    let gpu = common::own_gpu();
    assert_eq!(MatmulKernel::choose(&gpu, MatmulLayout::AB, 64, 64, 64), other);
    assert_eq!(
        MatmulKernel::choose(&gpu, MatmulLayout::AB, 60, 50, 40),
        other,
        "same bucket"
    );
    let abt = MatmulKernel::choose(&gpu, MatmulLayout::ABt, 64, 64, 64);
    assert!(matches!(abt, MatmulKernel::Vec4 | MatmulKernel::Tiled), "{abt:?}");

    // Training through tuned kernels still trains.
    let mut mlp = Mlp::builder(&[5, 7, 3]).seed(3).build(&gpu, 6, Sgd::new(0.5)).unwrap();
    mlp.set_batch(&[0.1; 30], &[0.5; 18]).unwrap();
    let before = mlp.batch_loss().unwrap();
    mlp.steps(20).unwrap();
    assert!(mlp.batch_loss().unwrap() < before);
    let _ = std::fs::remove_dir_all(&dir);
}
