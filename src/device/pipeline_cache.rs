//! The driver's compiled pipelines kept on disk between processes (wgpu's
//! `Features::PIPELINE_CACHE`, Vulkan only), so a machine compiles each kernel once.
//!
//! The file lives under `$WGPU_MLP_CACHE_DIR`, else `$XDG_CACHE_HOME/wgpu-mlp`, else
//! `$HOME/.cache/wgpu-mlp`, named by the backend, adapter, driver and this crate's version;
//! `WGPU_MLP_PIPELINE_CACHE=0` turns it off. It is written atomically (a temporary file
//! `.{pid}.{nanos}.tmp` renamed over the old one) when the last handle to a [`crate::Gpu`]
//! goes, if new pipelines were compiled or the old file was refused.
//!
//! The cache can never break the tool; whatever lies at the path, the device opens and every
//! pipeline compiles:
//! - Our own header (magic, adapter key, length, checksum) guards the bytes handed to the
//!   driver: a truncated, corrupt or foreign file, or one written for another adapter (the
//!   key is a hash of `wgpu::util::pipeline_cache_key`), is ignored silently and rewritten.
//! - Data that passes our header but that wgpu or the driver still refuses (the pipeline cache
//!   comes back invalid, in an error scope) is ignored with one warning on stderr, and the
//!   cache starts empty, so no later pipeline creation sees an invalid cache.
//! - Something at the path that is not a regular file (a FIFO, a directory, a socket) is
//!   never read (reading a FIFO would block), with one warning; the save renames a regular
//!   file over it, except over a directory, which is left alone (nothing is saved).
//! - Each save first removes our temporaries that a killed process left in the folder: those
//!   whose process is gone (on Linux, no `/proc/{pid}`, and a minute old) or, where that cannot
//!   be told, an hour old; never this process's own.
//!
//! Mesa's lavapipe compiles at first dispatch and keeps its own disk cache, so there this adds
//! little; drivers that compile at pipeline creation gain the most.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Version 2 added the adapter key.
const MAGIC: &[u8; 8] = b"WMLPC\x00\x00\x02";
const HEADER: usize = 8 + 8 + 8 + 8; // magic, adapter key, payload length, payload checksum
/// A file larger than this is not a pipeline cache of ours (they are a few MiB).
const MAX_FILE_BYTES: u64 = 1 << 30;
/// A dead process's temporary is removed once this old (a live process in another PID
/// namespace, sharing the folder, has renamed its own long before).
const DEAD_GRACE: Duration = Duration::from_secs(60);
/// Where a process's liveness cannot be told, its temporary is removed once this old.
const UNKNOWN_GRACE: Duration = Duration::from_secs(3600);

/// A device's pipeline cache and where it is saved.
pub(crate) struct DiskPipelineCache {
    pub cache: wgpu::PipelineCache,
    pub path: PathBuf,
    /// Pipelines compiled through the cache since it was loaded.
    pub compiled: AtomicUsize,
    /// The adapter's key (see [`adapter_key`]).
    key: u64,
    /// The file at `path` was refused: rewrite it at the save even if nothing was compiled.
    refused: bool,
}

/// FNV-1a, 64 bits: enough to tell a damaged file from a good one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What identifies the adapter a cache was written for: a hash of wgpu's own key (Vulkan:
/// vendor and device), which wgpu checks too, but as an error rather than a fallback.
pub(crate) fn adapter_key(info: &wgpu::AdapterInfo) -> u64 {
    checksum(wgpu::util::pipeline_cache_key(info).unwrap_or_default().as_bytes())
}

/// The payload of a file we wrote for the adapter `key`, if it is whole and unchanged.
pub(crate) fn unwrap_file(bytes: &[u8], key: u64) -> Option<&[u8]> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return None;
    }
    let word = |i: usize| bytes.get(8 * i..8 * (i + 1))?.try_into().ok().map(u64::from_le_bytes);
    let (file_key, len, sum) = (word(1)?, word(2)?, word(3)?);
    let payload = &bytes[HEADER..];
    (file_key == key && payload.len() as u64 == len && checksum(payload) == sum).then_some(payload)
}

pub(crate) fn wrap_file(payload: &[u8], key: u64) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&key.to_le_bytes());
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

/// `wgpu-mlp: warning: {message}` on stderr, once per process for each `(what, path)`.
fn warn_once(what: &str, path: &Path, message: std::fmt::Arguments) {
    static SEEN: Mutex<Option<HashSet<(String, PathBuf)>>> = Mutex::new(None);
    let first = SEEN
        .lock()
        .map(|mut seen| {
            seen.get_or_insert_default()
                .insert((what.to_string(), path.to_path_buf()))
        })
        .unwrap_or(true);
    if first {
        eprintln!("wgpu-mlp: warning: {message}");
    }
}

/// What a file type is, in words, for the warning about a path that is not a regular file.
fn describe(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        } else if file_type.is_socket() {
            return "a socket";
        } else if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "something else"
    }
}

/// The bytes of the cache file, `None` where there are none to use; `refused` is true where
/// something is at `path` that must be replaced. Only a regular file is read (a FIFO would
/// block the read), and only one of a plausible size.
fn read_cache_file(path: &Path) -> (Option<Vec<u8>>, bool) {
    let Ok(meta) = std::fs::metadata(path) else {
        return (None, false); // none yet (or out of reach: the save fails as quietly)
    };
    let p = path.display();
    if !meta.is_file() {
        let kind = describe(meta.file_type());
        let (fate, fix) = if meta.is_dir() {
            ("compiled pipelines are not kept", "remove it (rm -r)")
        } else {
            (
                "replaced by the cache at the next save",
                "if it must stay, set WGPU_MLP_PIPELINE_CACHE=0",
            )
        };
        let message = format_args!("pipeline cache {p} is {kind}, not a regular file: ignored, {fate}; {fix}");
        warn_once(kind, path, message);
        return (None, !meta.is_dir());
    }
    if meta.len() > MAX_FILE_BYTES {
        let n = meta.len();
        warn_once(
            "size",
            path,
            format_args!("pipeline cache {p} is {n} bytes, too large: ignored and rebuilt"),
        );
        return (None, true);
    }
    match std::fs::read(path) {
        Ok(bytes) => (Some(bytes), false),
        Err(_) => (None, false),
    }
}

/// wgpu's multi-line error text (`Caused by:` and an indented chain) on one line.
fn one_line(text: &str) -> String {
    let parts: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "Caused by:")
        .collect();
    parts.join(": ")
}

/// A pipeline cache from `data`, in error scopes: `Err` where wgpu or the driver refused it
/// (the cache it returns is then invalid, and every pipeline created with it would fail).
fn create_cache(device: &wgpu::Device, data: Option<&[u8]>) -> Result<wgpu::PipelineCache, String> {
    let scopes = [
        wgpu::ErrorFilter::OutOfMemory,
        wgpu::ErrorFilter::Internal,
        wgpu::ErrorFilter::Validation,
    ]
    .map(|filter| device.push_error_scope(filter));
    // SAFETY: `data` is a payload that `PipelineCache::get_data` returned: our checksum says
    // it is the bytes we saved, whole, and our key that they were saved for this adapter.
    // wgpu checks its own header (adapter, driver, version), and with `fallback` starts empty
    // when the driver changed; what it still refuses shows in the scopes.
    let cache = unsafe {
        device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
            label: Some("wgpu-mlp pipelines"),
            data,
            fallback: true,
        })
    };
    // Scopes pop in the reverse order of their pushes.
    let errors: Vec<String> = scopes
        .into_iter()
        .rev()
        .filter_map(|scope| pollster::block_on(scope.pop()))
        .map(|e| one_line(&e.to_string()))
        .collect();
    if errors.is_empty() {
        Ok(cache)
    } else {
        Err(errors.join("; "))
    }
}

impl DiskPipelineCache {
    /// Loads (or starts) the cache for `device`; `None` where the device has no pipeline
    /// cache, none was wanted, or none could be made even empty.
    pub fn open(device: &wgpu::Device, info: &wgpu::AdapterInfo) -> Option<Self> {
        if !device.features().contains(wgpu::Features::PIPELINE_CACHE) || !wanted(info) {
            return None;
        }
        let path = pipelines_file(info)?;
        let (bytes, mut refused) = read_cache_file(&path);
        let key = adapter_key(info);
        let data = bytes.as_deref().and_then(|b| unwrap_file(b, key));
        refused |= bytes.is_some() && data.is_none();
        let p = path.display();
        let cache = match create_cache(device, data) {
            Ok(cache) => cache,
            Err(error) if data.is_some() => {
                let fix = "it is rewritten at the next save; if this repeats, set WGPU_MLP_PIPELINE_CACHE=0";
                warn_once(
                    "refused",
                    &path,
                    format_args!("pipeline cache {p} was refused by the driver ({error}): ignored; {fix}"),
                );
                refused = true;
                create_cache(device, None).ok()?
            }
            Err(error) => {
                warn_once(
                    "create",
                    &path,
                    format_args!("no pipeline cache ({error}): kernels compile each run"),
                );
                return None;
            }
        };
        Some(Self {
            cache,
            path,
            compiled: AtomicUsize::new(0),
            key,
            refused,
        })
    }

    /// Writes the cache if pipelines were compiled since it was loaded, or the file was
    /// refused; failures are ignored (a cache that cannot be written is only a slower start).
    pub fn save(&self) {
        if self.compiled.load(Ordering::Relaxed) == 0 && !self.refused {
            return;
        }
        if let Some(data) = self.cache.get_data() {
            let _ = write_atomically(&self.path, &wrap_file(&data, self.key));
        }
    }
}

/// Writes `bytes` to `path` through a temporary renamed over it, so a reader sees the old file
/// or the new one, whole. Removes stale temporaries first; a directory at `path` is an error.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or(std::io::ErrorKind::NotFound)?;
    std::fs::create_dir_all(dir)?;
    remove_stale_temporaries(dir);
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(std::io::ErrorKind::IsADirectory.into());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{}.{nanos}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The process id in the name of one of our temporaries, `.{pid}.{nanos}.tmp`.
fn temporary_pid(name: &str) -> Option<u32> {
    let (pid, nanos) = name.strip_prefix('.')?.strip_suffix(".tmp")?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(nanos) {
        pid.parse().ok()
    } else {
        None
    }
}

/// Whether a temporary of process `pid`, last written `age` ago, was left by a dead process.
fn is_stale(pid: u32, age: Duration) -> bool {
    if pid == std::process::id() {
        return false; // ours: another thread may be writing it now
    }
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        return age >= DEAD_GRACE && !Path::new("/proc").join(pid.to_string()).exists();
    }
    age >= UNKNOWN_GRACE
}

/// Removes the temporaries in `dir` that processes killed between write and rename left.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(temporary_pid) else {
            continue;
        };
        // `DirEntry::metadata` does not follow links: only our own regular files go.
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let age = meta.modified().ok().and_then(|t| t.elapsed().ok()).unwrap_or_default();
        if meta.is_file() && is_stale(pid, age) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_files_are_refused() {
        let payload = b"pipeline bytes".to_vec();
        let file = wrap_file(&payload, 42);
        assert_eq!(unwrap_file(&file, 42), Some(&payload[..]));
        assert_eq!(unwrap_file(&file, 43), None, "another adapter's");
        assert_eq!(unwrap_file(&file[..file.len() - 1], 42), None, "truncated");
        let mut flipped = file.clone();
        flipped[HEADER + 3] ^= 1;
        assert_eq!(unwrap_file(&flipped, 42), None, "corrupt payload");
        let mut foreign = file.clone();
        foreign[0] = b'X';
        assert_eq!(unwrap_file(&foreign, 42), None, "not ours");
        let mut old = file.clone();
        old[7] = 1;
        assert_eq!(unwrap_file(&old, 42), None, "version 1");
        assert_eq!(unwrap_file(&[], 42), None, "empty");
        assert_eq!(unwrap_file(&file[..HEADER - 1], 42), None, "header only, short");
        let mut longer = file;
        longer.push(0);
        assert_eq!(unwrap_file(&longer, 42), None, "extended");
    }

    #[test]
    fn adapter_keys_differ_by_device() {
        let info = |device| wgpu::AdapterInfo {
            device,
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan)
        };
        assert_eq!(adapter_key(&info(1)), adapter_key(&info(1)));
        assert_ne!(adapter_key(&info(1)), adapter_key(&info(2)));
    }

    #[test]
    fn only_our_temporaries_of_dead_processes_are_stale() {
        assert_eq!(temporary_pid(".123.456789.tmp"), Some(123));
        for name in [
            "123.456.tmp",
            ".123.tmp",
            ".12a.456.tmp",
            ".123.456.tmp.x",
            "..456.tmp",
            ".1.2.3.tmp",
        ] {
            assert_eq!(temporary_pid(name), None, "{name}");
        }
        let hours = Duration::from_secs(7200);
        assert!(!is_stale(std::process::id(), hours), "our own, however old");
        assert!(is_stale(999_999_999, hours), "a dead pid, old");
        assert!(!is_stale(999_999_999, Duration::ZERO), "a dead pid, just written");
        if cfg!(target_os = "linux") {
            assert!(is_stale(999_999_999, 2 * DEAD_GRACE), "a dead pid, past the grace");
            assert!(!is_stale(1, hours), "pid 1 lives");
        }
    }
}
