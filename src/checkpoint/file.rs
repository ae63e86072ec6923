//! The checkpoint file itself: safetensors holding f32 tensors and text metadata, with our
//! format version and a checksum over both, written atomically. Decoding checks everything
//! that can be checked without a GPU (header, checksum, dtype, finiteness), so a damaged,
//! truncated or foreign file is refused here with a message, never a panic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::checkpoint_error;
use crate::error::{Error, Result};

/// The format this library writes; files without it are from before it was numbered.
pub(crate) const FORMAT_VERSION: u32 = 2;

/// A checkpoint in memory: metadata and named f32 tensors (shape, values).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CheckpointFile {
    pub metadata: BTreeMap<String, String>,
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

/// FNV-1a, 64 bits, over the metadata (sorted, without the checksum itself) and the tensors
/// (sorted by name: name, shape, bytes): any changed byte changes it.
fn checksum(metadata: &BTreeMap<String, String>, tensors: &BTreeMap<String, (Vec<usize>, Vec<f32>)>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (key, value) in metadata.iter().filter(|(k, _)| k.as_str() != "checksum") {
        eat(&(key.len() as u64).to_le_bytes());
        eat(key.as_bytes());
        eat(&(value.len() as u64).to_le_bytes());
        eat(value.as_bytes());
    }
    for (name, (shape, values)) in tensors {
        eat(&(name.len() as u64).to_le_bytes());
        eat(name.as_bytes());
        eat(&(shape.len() as u64).to_le_bytes());
        shape.iter().for_each(|&d| eat(&(d as u64).to_le_bytes()));
        eat(bytemuck::cast_slice(values));
    }
    format!("fnv1a64:{hash:016x}")
}

impl CheckpointFile {
    /// The file's bytes, with the format version and the checksum added.
    pub(crate) fn encode(&self, path: &Path) -> Result<Vec<u8>> {
        let mut metadata = self.metadata.clone();
        metadata.insert("format_version".into(), FORMAT_VERSION.to_string());
        let sum = checksum(&metadata, &self.tensors);
        metadata.insert("checksum".into(), sum);
        let views = self
            .tensors
            .iter()
            .map(|(name, (shape, values))| {
                TensorView::new(Dtype::F32, shape.clone(), bytemuck::cast_slice(values))
                    .map(|view| (name.clone(), view))
                    .map_err(|e| checkpoint_error(path, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata: std::collections::HashMap<String, String> = metadata.into_iter().collect();
        safetensors::serialize(views, Some(metadata)).map_err(|e| checkpoint_error(path, e.to_string()))
    }

    /// Reads a file's bytes: a safetensors file of f32 tensors, whole (its checksum matches
    /// where it has one; files from before the format was numbered have none), every value
    /// finite.
    pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<CheckpointFile> {
        if !looks_like_safetensors(bytes) {
            return Err(checkpoint_error(path, not_a_model(bytes)));
        }
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| checkpoint_error(path, format!("damaged or not a model file: {e}")))?;
        let tensors = SafeTensors::deserialize(bytes)
            .map_err(|e| checkpoint_error(path, format!("damaged or not a model file: {e}")))?;
        let metadata: BTreeMap<String, String> = header
            .metadata()
            .as_ref()
            .ok_or_else(|| checkpoint_error(path, "no metadata: not a wgpu-mlp model file"))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut file = CheckpointFile {
            metadata,
            tensors: BTreeMap::new(),
        };
        for (name, view) in tensors.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(checkpoint_error(
                    path,
                    format!("{name} is {:?}, expected F32", view.dtype()),
                ));
            }
            let values: Vec<f32> = bytemuck::pod_collect_to_vec::<u8, f32>(view.data());
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(checkpoint_error(
                    path,
                    format!(
                        "{name}[{i}] is {}: the file is damaged (parameters must be finite)",
                        values[i]
                    ),
                ));
            }
            file.tensors.insert(name, (view.shape().to_vec(), values));
        }
        file.check_version(path)?;
        Ok(file)
    }

    /// The format version and the checksum: both or neither (a file from before them).
    fn check_version(&self, path: &Path) -> Result<()> {
        let version = self.metadata.get("format_version");
        let stored = self.metadata.get("checksum");
        match (version, stored) {
            (None, None) => Ok(()),
            (Some(version), Some(stored)) => {
                let version: u32 = version.parse().map_err(|_| {
                    checkpoint_error(
                        path,
                        format!("format_version {version:?} is not a number: the file is damaged"),
                    )
                })?;
                if version > FORMAT_VERSION {
                    return Err(checkpoint_error(
                        path,
                        format!(
                            "written in format {version} by a newer wgpu-mlp ({}); this is {} (format {FORMAT_VERSION}): upgrade to read it",
                            self.metadata.get("library_version").map_or("?", String::as_str),
                            env!("CARGO_PKG_VERSION")
                        ),
                    ));
                }
                if *stored != checksum(&self.metadata, &self.tensors) {
                    return Err(checkpoint_error(
                        path,
                        "the checksum does not match: the file was damaged or edited after it was saved; fit the model again",
                    ));
                }
                Ok(())
            }
            _ => Err(checkpoint_error(
                path,
                "the file is damaged: it has a format version or a checksum but not both",
            )),
        }
    }

    /// The metadata entry `key`, or an error naming it.
    pub(crate) fn get(&self, path: &Path, key: &str) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| checkpoint_error(path, format!("metadata lacks {key:?}")))
    }

    /// Whether it carries our format version (and so a checksum).
    pub(crate) fn versioned(&self) -> bool {
        self.metadata.contains_key("format_version")
    }
}

/// safetensors' start: an 8-byte header length, then a JSON object.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() > 9
        && u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default()) <= (bytes.len() - 8) as u64
        && bytes[8] == b'{'
}

/// What a file that is not a model looks like, with the likely mistake.
fn not_a_model(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(512)];
    let text = head
        .iter()
        .all(|&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80);
    if bytes.is_empty() {
        "the file is empty, not a wgpu-mlp model file".into()
    } else if bytes.starts_with(&[0x1f, 0x8b]) || (text && head.contains(&b',')) {
        "not a wgpu-mlp model file: it looks like CSV data (the model comes first: wgpu-mlp predict MODEL ROWS.csv)"
            .into()
    } else {
        "not a wgpu-mlp model file (or a damaged one): it does not start as a safetensors file".into()
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and
/// syncs the directory: readers see the old file or the new one, never a torn one. Our
/// temporary files left beside it by processes that died are removed first.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        file: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| checkpoint_error(path, "the path names no file"))?
        .to_string_lossy()
        .to_string();
    if path.is_dir() {
        return Err(checkpoint_error(path, "is a folder: give a file name to save to"));
    }
    // Renaming over a device or a pipe would replace it (as root, /dev/null itself).
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_file() && !m.file_type().is_symlink()) {
        return Err(checkpoint_error(
            path,
            "is not a regular file (a device or a pipe): give a file name to save to",
        ));
    }
    remove_stale_temporaries(dir, &file_name);
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(dir) = std::fs::File::open(dir) {
            dir.sync_all().ok(); // not every platform syncs directories
        }
        Ok(())
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result.map_err(io)
}

/// Removes `.{file_name}.tmp-{pid}` files in `dir` whose process is gone (on Linux, no
/// `/proc/{pid}`; elsewhere, older than an hour).
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let prefix = format!(".{file_name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && process_gone(pid, &entry) {
            std::fs::remove_file(entry.path()).ok();
        }
    }
}

fn process_gone(pid: u32, entry: &std::fs::DirEntry) -> bool {
    if cfg!(target_os = "linux") {
        return !Path::new(&format!("/proc/{pid}")).exists();
    }
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > 3600)
}
