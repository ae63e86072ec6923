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
    // Candidates are Vec4 and Tiled, and where Tiled's 128×128 tiles would be fewer than
    // 256 the small-tile kernels too: a shape Vec4 cannot take never gets it...
    let odd = MatmulKernel::choose(&gpu, MatmulLayout::AB, 7, 13, 5);
    assert!(
        odd != MatmulKernel::Vec4 && odd.supports(MatmulLayout::AB, 7, 13, 5),
        "{odd:?}"
    );
    // ...a product of 256 large tiles times only the large-tile kernels...
    let large = MatmulKernel::choose(&gpu, MatmulLayout::AB, 2048, 4, 2048);
    assert!(matches!(large, MatmulKernel::Vec4 | MatmulKernel::Tiled), "{large:?}");
    // ...and a bias gradient never gets Vec4, which has no row of ones.
    let bias = MatmulKernel::choose_for_bias_grad(&gpu, 65, 32, 64);
    assert!(bias != MatmulKernel::Vec4, "{bias:?}");
    let chosen = MatmulKernel::choose(&gpu, MatmulLayout::AB, 64, 64, 64);
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("autotune-"))
        .expect("the tuning file is written");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("AB 64 64 64 {chosen:?}")), "{text}");
    assert!(text.contains(&format!("AB 8 16 8 {odd:?}")), "{text}");
    assert!(text.contains(&format!("AB 2048 4 2048 {large:?}")), "{text}");

    // A later Gpu reads the file instead of timing: an entry written by hand is obeyed, and
    // damaged lines cost nothing but a re-tune.
    // (a kernel that takes any shape, so the bucket's other shapes can use it too)
    let other = if chosen == MatmulKernel::Tiled {
        MatmulKernel::Naive
    } else {
        MatmulKernel::Tiled
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
    assert!(abt.supports(MatmulLayout::ABt, 64, 64, 64), "{abt:?}");

    // Training through tuned kernels still trains.
    let mut mlp = Mlp::builder(&[5, 7, 3]).seed(3).build(&gpu, 6, Sgd::new(0.5)).unwrap();
    mlp.set_batch(&[0.1; 30], &[0.5; 18]).unwrap();
    let before = mlp.batch_loss().unwrap();
    mlp.steps(20).unwrap();
    assert!(mlp.batch_loss().unwrap() < before);
    let _ = std::fs::remove_dir_all(&dir);
}
