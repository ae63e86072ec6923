//! How a kernel is declared, once, in its op's home (`src/ops/X.rs` beside `shaders/X.wgsl`):
//! - its parameter block with [`wgsl_struct!`]: the Rust struct the host fills (`#[repr(C)]`,
//!   `Pod`) and, as `WGSL`, the same struct in WGSL;
//! - its storage buffers with [`wgsl_bindings!`]: a Rust constant per binding, which the host
//!   builder binds by, and, as `WGSL`, the `@group(0) @binding(i) var<storage, …>` lines;
//! - the numbers both sides use (codes, flags, workgroup sizes) with [`wgsl_consts!`]: Rust
//!   constants and a function listing them, emitted as WGSL `const`s ahead of the shader;
//! - its shader module as a [`Shader`] (those parts, then the shader file) and its entry
//!   points as [`Kernel`]s.
//!
//! The shader files declare none of these themselves (a test in `ops` scans them), so the two
//! sides cannot drift apart. Every struct field is a 4-byte scalar or an array of `vec4<u32>`
//! and every struct a multiple of 16 bytes, so the Rust and WGSL layouts are the same by
//! construction (`ops`' tests check every declared struct).

use crate::device::gpu::Gpu;

/// Where every kernel finds its parameter block (`Dispatch` binds it there).
pub(crate) const PARAMS_BINDING: u32 = 0;

/// A number declared in Rust and emitted into WGSL as a `const`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum WgslConst {
    U32(u32),
    F32(f32),
}

impl From<u32> for WgslConst {
    fn from(value: u32) -> Self {
        WgslConst::U32(value)
    }
}

impl From<f32> for WgslConst {
    fn from(value: f32) -> Self {
        WgslConst::F32(value)
    }
}

/// The WGSL declaration of one constant: `const NAME: u32 = 3u;`. An f32 is written with
/// the shortest digits that read back as the same f32.
pub(crate) fn wgsl_const(name: &str, value: WgslConst) -> String {
    match value {
        WgslConst::U32(v) => format!("const {name}: u32 = {v}u;\n"),
        WgslConst::F32(v) => format!("const {name}: f32 = {v:?}f;\n"),
    }
}

/// One piece of a shader module's text, joined in order when it is compiled.
pub(crate) enum Part {
    /// Text fixed when the crate is built: a shader file, a struct or bindings declaration.
    Text(&'static str),
    /// Constants declared in Rust (a [`wgsl_consts!`] list), emitted as WGSL `const`s.
    Consts(fn() -> Vec<(String, WgslConst)>),
}

/// One WGSL module: its file name (for messages and the pipeline cache) and its parts.
pub(crate) struct Shader {
    pub file: &'static str,
    pub parts: &'static [Part],
    /// Compile without naga's bounds checks and loop bounding. Only for shaders whose every
    /// index is clamped in range by the shader itself from host-validated shapes.
    pub trusted: bool,
}

impl Shader {
    /// The module's whole text.
    pub(crate) fn source(&self) -> String {
        let mut text = String::new();
        for part in self.parts {
            match part {
                Part::Text(t) => text.push_str(t),
                Part::Consts(list) => list().into_iter().for_each(|(n, v)| text.push_str(&wgsl_const(&n, v))),
            }
        }
        text
    }
}

/// Override constants a kernel takes from the adapter it runs on (e.g. a workgroup size).
pub(crate) type AdapterConstants = fn(&Gpu) -> Vec<(&'static str, f64)>;

/// One entry point of a [`Shader`] with its pipeline-overridable constants: what
/// `Gpu::pipeline` compiles and `Dispatch` binds.
#[derive(Clone, Copy)]
pub(crate) struct Kernel {
    pub shader: &'static Shader,
    pub entry: &'static str,
    /// Override constants fixed by the declaration (a matmul's layout).
    pub constants: &'static [(&'static str, f64)],
    /// Override constants chosen per adapter, if any.
    pub adapter_constants: Option<AdapterConstants>,
}

impl Kernel {
    /// The entry point `entry` of `shader`, with no override constants.
    pub(crate) const fn new(shader: &'static Shader, entry: &'static str) -> Self {
        Kernel {
            shader,
            entry,
            constants: &[],
            adapter_constants: None,
        }
    }

    pub(crate) const fn with_constants(mut self, constants: &'static [(&'static str, f64)]) -> Self {
        self.constants = constants;
        self
    }

    pub(crate) const fn with_adapter_constants(mut self, constants: AdapterConstants) -> Self {
        self.adapter_constants = Some(constants);
        self
    }

    /// Every override constant for `gpu`: the declared ones, then the adapter's.
    pub(crate) fn constants_for(&self, gpu: &Gpu) -> Vec<(&'static str, f64)> {
        let mut constants = self.constants.to_vec();
        if let Some(adapter) = self.adapter_constants {
            constants.extend(adapter(gpu));
        }
        constants
    }
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.entry, self.shader.file)?;
        for (name, value) in self.constants {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// The WGSL spelling of a field type `wgsl_struct!` accepts.
macro_rules! wgsl_type {
    (u32) => {
        "u32"
    };
    (f32) => {
        "f32"
    };
    ([[u32; 4]; $n:literal]) => {
        concat!("array<vec4<u32>, ", stringify!($n), ">")
    };
}

/// The WGSL size in bytes of a field type `wgsl_struct!` accepts.
macro_rules! wgsl_size {
    (u32) => {
        4
    };
    (f32) => {
        4
    };
    ([[u32; 4]; $n:literal]) => {
        16 * $n
    };
}

/// A `#[repr(C)]` Pod struct of u32/f32 fields (and `[[u32; 4]; N]` arrays, WGSL's
/// `array<vec4<u32>, N>`) and, as `WGSL`, its WGSL declaration; `WGSL_SIZE` is its size
/// as WGSL lays it out, which the tests compare with Rust's.
macro_rules! wgsl_struct {
    ($(#[doc = $doc:literal])* struct $name:ident { $($(#[doc = $field_doc:literal])* $field:ident : $ty:tt,)* }) => {
        $(#[doc = $doc])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        pub(crate) struct $name {
            $($(#[doc = $field_doc])* pub $field: $ty,)*
        }

        #[allow(dead_code)] // WGSL_SIZE is read by the tests
        impl $name {
            /// The WGSL declaration of this struct.
            pub(crate) const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $("    ", stringify!($field), ": ", $crate::device::kernel::wgsl_type!($ty), ",\n",)*
                "}\n"
            );
            /// Its size in WGSL: the fields back to back (every struct here puts its
            /// `vec4` arrays after a multiple of four scalars, so none is padded).
            pub(crate) const WGSL_SIZE: usize = 0 $(+ $crate::device::kernel::wgsl_size!($ty))*;
        }
    };
}

/// A unit struct with one `u32` constant per binding and, as `WGSL`, their declarations.
macro_rules! wgsl_bindings {
    ($(#[doc = $doc:literal])* struct $name:ident {
        $($(#[doc = $binding_doc:literal])* $constant:ident = $index:literal => $access:literal $var:ident : $ty:literal,)*
    }) => {
        $(#[doc = $doc])*
        pub(crate) struct $name;

        #[allow(dead_code)] // each constant is bound by some builder; not all by every one
        impl $name {
            $($(#[doc = $binding_doc])* pub(crate) const $constant: u32 = $index;)*
            /// The WGSL declarations of these bindings.
            pub(crate) const WGSL: &'static str = concat!(
                $("@group(0) @binding(", stringify!($index), ") var<storage, ", $access, "> ",
                  stringify!($var), ": ", $ty, ";\n",)*
            );
        }
    };
}

/// Rust constants (u32 or f32) and `fn $list()` naming them all, for a shader's
/// [`Part::Consts`]: each number is written once, here, and the WGSL reads the same name.
macro_rules! wgsl_consts {
    ($vis:vis fn $list:ident; $($(#[doc = $doc:literal])* const $name:ident : $ty:ident = $value:expr;)*) => {
        $($(#[doc = $doc])* $vis const $name: $ty = $value;)*

        /// These constants by name, emitted into the WGSL of the shaders that use them.
        $vis fn $list() -> Vec<(String, $crate::device::kernel::WgslConst)> {
            vec![$((stringify!($name).to_string(), $crate::device::kernel::WgslConst::from($name)),)*]
        }
    };
}

pub(crate) use {wgsl_bindings, wgsl_consts, wgsl_size, wgsl_struct, wgsl_type};

#[cfg(test)]
mod tests {
    use super::*;

    wgsl_struct! {
        /// A test struct with an array.
        struct Probe {
            a: u32,
            b: f32,
            c: u32,
            d: u32,
            rows: [[u32; 4]; 2],
        }
    }

    wgsl_bindings! {
        /// Test bindings.
        struct ProbeBindings {
            PARAMS = 0 => "read" params_buffer: "Probe",
            OUTPUT = 1 => "read_write" output: "array<f32>",
        }
    }

    wgsl_consts! {
        fn probe_constants;
        const PROBE_CODE: u32 = 7;
        const PROBE_SLOPE: f32 = 0.01;
    }

    #[test]
    fn declarations_read_as_wgsl() {
        assert_eq!(
            Probe::WGSL,
            "struct Probe {\n    a: u32,\n    b: f32,\n    c: u32,\n    d: u32,\n    rows: array<vec4<u32>, 2>,\n}\n"
        );
        assert_eq!(Probe::WGSL_SIZE, size_of::<Probe>());
        assert_eq!(
            ProbeBindings::WGSL,
            "@group(0) @binding(0) var<storage, read> params_buffer: Probe;\n\
             @group(0) @binding(1) var<storage, read_write> output: array<f32>;\n"
        );
        assert_eq!(ProbeBindings::OUTPUT, 1);
        let text: String = probe_constants().into_iter().map(|(n, v)| wgsl_const(&n, v)).collect();
        assert_eq!(text, "const PROBE_CODE: u32 = 7u;\nconst PROBE_SLOPE: f32 = 0.01f;\n");
    }

    #[test]
    fn f32_constants_read_back_exactly() {
        for v in [0.01f32, 1e-8, 0.797_884_6, 1.0, 3.4e38] {
            let text = wgsl_const("X", WgslConst::F32(v));
            let digits = text.trim_start_matches("const X: f32 = ").trim_end_matches("f;\n");
            assert_eq!(digits.parse::<f32>().ok(), Some(v), "{text}");
        }
    }
}
