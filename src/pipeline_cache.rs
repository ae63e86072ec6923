//! The driver's compiled pipelines kept on disk between processes (wgpu's
//! `Features::PIPELINE_CACHE`, Vulkan only), so a machine compiles each kernel once.
//!
//! The file lives under `$WGPU_MLP_CACHE_DIR`, else `$XDG_CACHE_HOME/wgpu-mlp`, else
//! `$HOME/.cache/wgpu-mlp`, named by the backend, adapter, driver and this crate's version;
//! `WGPU_MLP_PIPELINE_CACHE=0` turns it off. It is written atomically (a temporary file
//! renamed over the old one) when the last handle to a [`crate::Gpu`] goes, if new pipelines
//! were compiled. Our own header (magic, length, checksum) guards the bytes handed to the
//! driver: a truncated, corrupt or foreign file is ignored and rewritten, never an error.
//! Mesa's lavapipe compiles at first dispatch and keeps its own disk cache, so there this adds
//! little; drivers that compile at pipeline creation gain the most.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const MAGIC: &[u8; 8] = b"WMLPC\x00\x00\x01";
const HEADER: usize = 8 + 8 + 8; // magic, payload length, payload checksum

/// A device's pipeline cache and where it is saved.
pub(crate) struct DiskPipelineCache {
    pub cache: wgpu::PipelineCache,
    pub path: PathBuf,
    /// Pipelines compiled through the cache since it was loaded.
    pub compiled: AtomicUsize,
}

/// FNV-1a, 64 bits: enough to tell a damaged file from a good one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The payload of a file we wrote, if it is whole and unchanged.
pub(crate) fn unwrap_file(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return None;
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().ok()?);
    let sum = u64::from_le_bytes(bytes[16..24].try_into().ok()?);
    let payload = &bytes[HEADER..];
    (payload.len() as u64 == len && checksum(payload) == sum).then_some(payload)
}

pub(crate) fn wrap_file(payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&checksum(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("WGPU_MLP_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("wgpu-mlp")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("wgpu-mlp")))
}

/// `{what}-{backend}-{vendor}-{device}-{driver}-v{crate version}.{ext}` in the cache folder:
/// one file per adapter, driver and crate version.
pub(crate) fn file_for(info: &wgpu::AdapterInfo, what: &str, ext: &str) -> Option<PathBuf> {
    let id: String = format!(
        "{:?}-{:x}-{:x}-{}-{}",
        info.backend, info.vendor, info.device, info.driver, info.driver_info
    )
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '_'
        }
    })
    .collect();
    Some(cache_dir()?.join(format!("{what}-{id}-v{}.{ext}", env!("CARGO_PKG_VERSION"))))
}

/// The pipeline cache file, where wgpu keeps pipeline caches for this adapter (Vulkan).
fn pipelines_file(info: &wgpu::AdapterInfo) -> Option<PathBuf> {
    wgpu::util::pipeline_cache_key(info)?;
    file_for(info, "pipelines", "bin")
}

/// Whether to ask for `Features::PIPELINE_CACHE` on this adapter.
pub(crate) fn wanted(info: &wgpu::AdapterInfo) -> bool {
    std::env::var("WGPU_MLP_PIPELINE_CACHE").map_or(true, |v| v != "0") && pipelines_file(info).is_some()
}

impl DiskPipelineCache {
    /// Loads (or starts) the cache for `device`; `None` where the device has no pipeline
    /// cache or none was wanted.
    pub fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<Self> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE) || !wanted(info) {
            return None;
        }
        let path = pipelines_file(info)?;
        let bytes = std::fs::read(&path).unwrap_or_default();
        let data = unwrap_file(&bytes);
        // SAFETY: `data` is a payload that `PipelineCache::get_data` returned (our checksum
        // says it is the bytes we saved, whole); wgpu checks its own header (adapter, driver,
        // version) and with `fallback` starts empty when that does not match.
        let cache = unsafe {
            device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                label: Some("wgpu-mlp pipelines"),
                data,
                fallback: true,
            })
        };
        Some(Self {
            cache,
            path,
            compiled: AtomicUsize::new(0),
        })
    }

    /// Writes the cache if pipelines were compiled since it was loaded; failures are ignored
    /// (a cache that cannot be written is only a slower next start).
    pub fn save(&self) {
        if self.compiled.load(Ordering::Relaxed) == 0 {
            return;
        }
        if let Some(data) = self.cache.get_data() {
            let _ = write_atomically(&self.path, &wrap_file(&data));
        }
    }
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or(std::io::ErrorKind::NotFound)?;
    std::fs::create_dir_all(dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{}.{nanos}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_refused() {
        let payload = b"pipeline bytes".to_vec();
        let file = wrap_file(&payload);
        assert_eq!(unwrap_file(&file), Some(&payload[..]));
        assert_eq!(unwrap_file(&file[..file.len() - 1]), None, "truncated");
        let mut flipped = file.clone();
        flipped[HEADER + 3] ^= 1;
        assert_eq!(unwrap_file(&flipped), None, "corrupt payload");
        let mut foreign = file.clone();
        foreign[0] = b'X';
        assert_eq!(unwrap_file(&foreign), None, "not ours");
        assert_eq!(unwrap_file(&[]), None, "empty");
        let mut longer = file;
        longer.push(0);
        assert_eq!(unwrap_file(&longer), None, "extended");
    }
}
