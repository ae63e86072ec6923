//! The registry and the shaders against the declarations: every declared kernel's module is
//! valid WGSL with its entry point, and no shader carries its own copy of a number, struct
//! or binding that the Rust side declares.

use std::collections::HashSet;

use super::all_kernels;
use crate::device::gpu::Gpu;
use crate::device::kernel::Part;

/// Every declared kernel compiles (naga validates the module; the pipeline needs the entry
/// point). The subgroup kernels only where the adapter has subgroups.
#[test]
fn every_declared_kernel_compiles() {
    let gpu = Gpu::new().expect("an adapter (lavapipe in CI)");
    let kernels = all_kernels();
    let entries: HashSet<_> = kernels.iter().map(|k| k.entry).collect();
    assert!(entries.len() >= 18, "{entries:?}");
    for kernel in kernels {
        let needs_subgroups = ["matmul_subgroup", "matmul_grouped_mixed"].contains(&kernel.entry);
        if needs_subgroups && !gpu.has_subgroups() {
            continue;
        }
        // The unrolled matmuls take seconds each on lavapipe: one layout each is enough to
        // show the module and entry point are right (the others differ by constants only).
        if kernel
            .constants
            .iter()
            .any(|&(name, value)| name == "TRANS_A" && value != 0.0)
        {
            continue;
        }
        gpu.pipeline(kernel).unwrap_or_else(|e| panic!("{kernel:?}: {e}"));
    }
}

/// The shaders declare no `const`, struct or binding of their own that Rust declares, and
/// no workgroup size or index stride as a bare number: those come from the emitted header.
#[test]
fn shaders_hold_no_copy_of_a_rust_declaration() {
    // What the Rust side declares: every emitted constant and every generated struct.
    let mut declared = HashSet::new();
    for kernel in all_kernels() {
        for part in kernel.shader.parts {
            match part {
                Part::Consts(list) => declared.extend(list().into_iter().map(|(name, _)| name)),
                Part::Text(text) => {
                    if let Some(rest) = text.strip_prefix("struct ") {
                        declared.insert(rest.split(' ').next().unwrap_or("").to_string());
                    }
                }
            }
        }
    }
    assert!(
        declared.contains("ACT_RELU") && declared.contains("MatmulParams"),
        "{declared:?}"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for entry in std::fs::read_dir(&dir).expect("shaders/") {
        let path = entry.expect("a shader file").path();
        let text = std::fs::read_to_string(&path).expect("WGSL text");
        let file = path.display();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").trim();
            for prefix in ["const ", "struct ", "override "] {
                if let Some(rest) = code.strip_prefix(prefix) {
                    let name = rest.split([':', ' ', '{']).next().unwrap_or("");
                    assert!(!declared.contains(name), "{file}:{}: {name} is declared in Rust", i + 1);
                }
            }
            assert!(
                !code.starts_with("@group("),
                "{file}:{}: bindings are declared in Rust",
                i + 1
            );
            if let Some(size) = code.strip_prefix("@compute @workgroup_size(") {
                assert!(
                    !size.starts_with(|c: char| c.is_ascii_digit()) || size.starts_with("1)"),
                    "{file}:{}: a workgroup size as a bare number: declare it in Rust",
                    i + 1
                );
            }
        }
    }
}
