//! Output files that never lie and inputs that are never lost: the one mechanism every
//! writer of the workspace (GeoTIFFs, CRF temporaries, metrics and reports, `.npy`
//! arrays, ONNX exports, checkpoints) goes through.
//!
//! - [`TempOutput`]: a file is written under a hidden temporary name beside its final
//!   path (same file system, so the rename is atomic), then *verified* (the caller's
//!   check: re-read the finished file) and only then renamed into place. Any failure
//!   removes the temporary file and leaves an older file under the final name untouched.
//! - Temporary names carry the process id and host (`.risk.tif.4242@node7.tmp.part`):
//!   every live one is kept in a process-wide registry, so that SIGINT / SIGTERM
//!   ([`install_signal_cleanup`]) remove them before the process exits with 130 / 143,
//!   and a later run on the same host removes the ones of processes that no longer exist
//!   (once per folder, logged), e.g. after a `kill -9` or a power cut. A sidecar GDAL
//!   writes beside a raster (`.aux.xml`: the attribute table) travels with it
//!   ([`TempOutput::with_sidecar`]).
//! - [`write_atomic`]: bytes written, flushed to the disk (`fsync`, which reports the
//!   delayed errors of network and journalled file systems), read back and compared.
//! - [`check_outputs`]: all output paths of a run, checked before any work: none is an
//!   input or another output (after resolving symbolic links), none is a folder, device,
//!   FIFO or socket.
//! - [`check_raster_output`]: a raster output's name says GeoTIFF (`.tif`, `.tiff`), the
//!   one format the maps are written in; any other name (`risk.png`, `risk`) is refused
//!   before any work instead of giving a GeoTIFF under a name that promises another format.
//! - [`os_reason`]: why a write failed, in the operating system's words ("No space left
//!   on device"), also when GDAL only says that a TIFF directory could not be written.
//!
//! Errors: [`OutputError`] for a write that failed (the OS reason in its text, without
//! Rust's `(os error N)`; the caller names the file), [`OutputPathError`] for an output
//! path refused before any work (a usage error; it names the path). Each message is whole
//! (the I/O error's text is in it, not behind `source()`), so a `{:#}` chain prints it once.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why writing a file failed; the caller names the file. The I/O error is kept, its
/// text (the OS reason) is part of the message.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot create ({})", io_msg(.0))]
    Create(std::io::Error),
    #[error("cannot write ({})", io_msg(.0))]
    Write(std::io::Error),
    #[error("cannot read it back ({})", io_msg(.0))]
    ReadBack(std::io::Error),
    #[error("read back {got} bytes that differ from the {written} written; the disk may be failing")]
    Differs { got: u64, written: u64 },
    #[error("cannot move the finished file into place ({})", io_msg(.0))]
    Rename(std::io::Error),
    #[error("cannot move its {suffix} sidecar into place ({})", io_msg(err))]
    Sidecar {
        suffix: &'static str,
        err: std::io::Error,
    },
}

/// An output path refused before any work (a usage error); each names the path and what
/// it is (`-o`, `--probs`, `the output of a.tif`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OutputPathError {
    #[error("{} ({what}): names a folder, not a file", path.display())]
    NamesFolder { what: String, path: PathBuf },
    #[error("{} ({what}): is {is}; outputs must be regular files", path.display())]
    NotRegular {
        what: String,
        path: PathBuf,
        /// `a folder`, `a device`, `a FIFO`, ...
        is: &'static str,
    },
    #[error("{} ({what}) would overwrite the input {}", path.display(), input.display())]
    OverwritesInput {
        what: String,
        path: PathBuf,
        input: PathBuf,
    },
    #[error("{} ({what}) and {} ({other_what}) are the same file", path.display(), other.display())]
    SameFile {
        what: String,
        path: PathBuf,
        other_what: String,
        other: PathBuf,
    },
    #[error(
        "{} ({what}): {}; outputs are GeoTIFF: use a .tif name, e.g. {}",
        path.display(),
        not_tif_reason(.ext.as_deref()),
        path.with_extension("tif").display()
    )]
    NotGeoTiff {
        what: String,
        path: PathBuf,
        /// The extension given (lower case), if any.
        ext: Option<String>,
    },
}

/// Why a name other than `.tif` / `.tiff` cannot be a raster output.
fn not_tif_reason(ext: Option<&str>) -> String {
    match ext {
        Some(e) => format!(".{e} cannot hold a georeferenced class map"),
        None => "has no extension".to_string(),
    }
}

/// Temporary files of this process that exist (or are being created) now.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Folders already swept for stale temporary files by this process.
static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// This machine's name as used in temporary names: letters, digits and `-` only.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is writable for its length; gethostname NUL-terminates or
        // truncates within it.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        let name = if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            String::new()
        };
        let clean: String = name
            .split('.')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if clean.is_empty() { "host".into() } else { clean }
    })
}

/// The temporary name for `path`: hidden, beside it, naming this process and host, with
/// a `tag` that tells a run's temporaries apart (`tmp`, `cog`, `blend`, ...).
pub fn temp_path_for(path: &Path, tag: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}@{}.{tag}.part", std::process::id(), host()))
}

/// The process id in a temporary name of this host made by [`temp_path_for`].
fn owner_pid(file_name: &str) -> Option<i32> {
    let inner = file_name.strip_prefix('.')?;
    let inner = inner
        .strip_suffix(".part")
        .or_else(|| inner.strip_suffix(&format!(".part{SIDECAR}")))?;
    let suffix = format!("@{}", host());
    inner
        .split('.')
        .filter_map(|seg| seg.strip_suffix(&suffix))
        .find_map(|pid| pid.parse::<i32>().ok().filter(|&p| p > 0))
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes the temporary files in `dir` that processes of this host left behind and
/// that no longer run; logs each. Runs once per folder per process.
pub fn sweep_stale(dir: &Path) {
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id() as i32;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else { continue };
        if pid == me || process_exists(pid) {
            continue;
        }
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(&path).is_ok() {
            tracing::info!(
                "removed {}, a temporary file left by process {pid}, which no longer runs",
                path.display()
            );
        }
    }
}

/// A temporary file beside `final_path`, registered for removal on a signal; removed
/// when dropped unless [`commit`](Self::commit)ted.
pub struct TempOutput {
    final_path: PathBuf,
    temp_path: PathBuf,
    /// Suffix of a sidecar file that goes with the file (see [`Self::with_sidecar`]).
    sidecar: Option<&'static str>,
    done: bool,
}

/// GDAL's sidecar of a raster (`x.tif.aux.xml`): the GeoTIFF driver keeps a raster
/// attribute table there.
pub const SIDECAR: &str = ".aux.xml";

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl TempOutput {
    /// Reserves the temporary name for `final_path` (nothing is created yet). Sweeps the
    /// folder's stale temporaries first.
    pub fn new(final_path: &Path, tag: &str) -> Self {
        let dir = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sweep_stale(dir);
        let temp_path = temp_path_for(final_path, tag);
        live().push(temp_path.clone());
        Self {
            final_path: final_path.to_path_buf(),
            temp_path,
            sidecar: None,
            done: false,
        }
    }

    /// The file named the temporary's name + `suffix` (GDAL's [`SIDECAR`]), if the writer
    /// makes one, goes with the file: renamed to the final name + `suffix` on commit,
    /// removed on failure or a signal. A commit without one removes an older final
    /// name + `suffix`, which described the file being replaced.
    pub fn with_sidecar(mut self, suffix: &'static str) -> Self {
        live().push(with_suffix(&self.temp_path, suffix));
        self.sidecar = Some(suffix);
        self
    }

    /// The temporary path to write to.
    pub fn path(&self) -> &Path {
        &self.temp_path
    }

    /// The path the file will have once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Runs `verify` on the finished temporary file and, when it passes, renames it to
    /// the final path. On any failure the temporary file is removed and the final path
    /// is left as it was. The error is `verify`'s, or a failed rename as that type; it
    /// says why (the caller names the file).
    pub fn commit<E: From<OutputError>>(
        mut self,
        verify: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), E> {
        verify(&self.temp_path)?;
        std::fs::rename(&self.temp_path, &self.final_path).map_err(OutputError::Rename)?;
        self.done = true;
        if let Some(suffix) = self.sidecar {
            let (temp, fin) = (
                with_suffix(&self.temp_path, suffix),
                with_suffix(&self.final_path, suffix),
            );
            let moved = if temp.exists() {
                std::fs::rename(&temp, &fin)
            } else {
                std::fs::remove_file(&fin).or_else(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })
            };
            moved.map_err(|err| OutputError::Sidecar { suffix, err })?;
        }
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        let sidecar = self.sidecar.map(|s| with_suffix(&self.temp_path, s));
        if !self.done {
            let _ = std::fs::remove_file(&self.temp_path);
            if let Some(p) = &sidecar {
                let _ = std::fs::remove_file(p);
            }
        }
        live().retain(|p| p != &self.temp_path && Some(p) != sidecar.as_ref());
    }
}

/// A std I/O error's text without Rust's ` (os error N)` suffix.
pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Why writing into `dir` failed when the writer (GDAL) did not say: "No space left on
/// device" when the file system has no free block left for this user, else `None`.
pub fn os_reason(dir: &Path) -> Option<String> {
    let dir = match dir {
        d if d.as_os_str().is_empty() => Path::new("."),
        d => d,
    };
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0 && st.f_bavail == 0).then(|| io_msg(&std::io::Error::from_raw_os_error(libc::ENOSPC)))
}

/// 64-bit FNV-1a, to compare a file read back with the bytes written.
#[derive(Clone, Copy)]
pub struct Checksum(u64);

impl Default for Checksum {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub fn value(&self) -> u64 {
        self.0
    }
}

/// Flushes `file` to the disk (`fsync`: the delayed write errors of NFS, quotas and
/// journalled file systems surface here).
pub fn sync(file: &std::fs::File) -> std::io::Result<()> {
    file.sync_all()
}

/// Reads `path` back and checks that it holds `len` bytes whose checksum is `sum`.
pub fn verify_bytes(path: &Path, len: u64, sum: Checksum) -> Result<(), OutputError> {
    let mut f = std::fs::File::open(path).map_err(OutputError::ReadBack)?;
    let mut got = Checksum::default();
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = f.read(&mut buf).map_err(OutputError::ReadBack)?;
        if k == 0 {
            break;
        }
        got.update(&buf[..k]);
        n += k as u64;
    }
    if n != len || got.value() != sum.value() {
        return Err(OutputError::Differs { got: n, written: len });
    }
    Ok(())
}

/// Writes a file through `fill` into a temporary file beside `path`, flushes it to disk,
/// reads it back and compares, then renames it into place. The error says why, with the
/// OS reason (the caller names `path`); `path` is untouched on failure.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), OutputError> {
    let temp = TempOutput::new(path, "tmp");
    let file = std::fs::File::create(temp.path()).map_err(OutputError::Create)?;
    let mut w = Counting {
        inner: std::io::BufWriter::with_capacity(1 << 16, file),
        len: 0,
        sum: Checksum::default(),
    };
    let written = fill(&mut w)
        .and_then(|()| w.inner.flush())
        .and_then(|()| sync(w.inner.get_ref()));
    written.map_err(OutputError::Write)?;
    let (len, sum) = (w.len, w.sum);
    drop(w);
    temp.commit(|t| verify_bytes(t, len, sum))
}

/// [`write_with`] for bytes in memory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_with(path, |w| w.write_all(bytes))
}

/// A writer that counts and checksums what goes through it.
struct Counting<W: Write> {
    inner: W,
    len: u64,
    sum: Checksum,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sum.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and so in every thread it starts
/// later) and starts a thread that, on one of them, removes this process's temporary
/// files and exits with 128 + the signal number (130, 143, 129). Call first in `main`,
/// before any other thread starts.
pub fn install_signal_cleanup() {
    // SAFETY: plain libc signal-set calls on a zeroed, local sigset_t.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        set
    };
    let spawned = std::thread::Builder::new().name("signals".into()).spawn(move || {
        loop {
            let mut sig = 0;
            // SAFETY: `set` is a valid signal set; `sig` receives the number.
            if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                continue;
            }
            let temps = live();
            for p in temps.iter() {
                let _ = std::fs::remove_file(p);
            }
            let _ = writeln!(
                std::io::stderr(),
                "interrupted (signal {sig}); {} temporary file(s) removed",
                temps.len()
            );
            // SAFETY: ends the process at once, without running destructors of
            // threads still inside GDAL or ONNX Runtime (the lock stays held, so no
            // new temporary file can be registered meanwhile).
            unsafe { libc::_exit(128 + sig) };
        }
    });
    if spawned.is_err() {
        // No handler thread: let the signals act as before.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
}

/// A path resolved as the file system will see it: symbolic links followed, `..`
/// removed; for a file that does not exist yet, its folder resolved and its name kept.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let name = path.file_name();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (std::fs::canonicalize(parent), name) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// Checks a run's output paths before any work: every output names a regular file (or
/// none yet), ends in a file name, and differs from every input and every other output
/// once symbolic links and `..` are resolved. `outputs` are `(what, path)`, e.g.
/// `("--probs", p)` or `("the output of a.tif", p)`. The error (a usage error) names the
/// paths: `out/x_risk.tif (the output of b/x.tif) and ... are the same file`.
pub fn check_outputs(inputs: &[&Path], outputs: &[(&str, &Path)]) -> Result<(), OutputPathError> {
    let resolved_inputs: Vec<PathBuf> = inputs.iter().map(|p| resolve(p)).collect();
    // Resolved path, then the output as given and what it is.
    let mut seen: Vec<(PathBuf, &Path, &str)> = Vec::new();
    for &(what, out) in outputs {
        let (what_s, path) = (what.to_string(), out.to_path_buf());
        let text = out.as_os_str().as_encoded_bytes();
        if text.ends_with(b"/") || out.file_name().is_none() {
            return Err(OutputPathError::NamesFolder { what: what_s, path });
        }
        if let Ok(meta) = std::fs::metadata(out) {
            let kind = meta.file_type();
            if !kind.is_file() {
                let is = if kind.is_dir() {
                    "a folder"
                } else {
                    use std::os::unix::fs::FileTypeExt;
                    if kind.is_char_device() || kind.is_block_device() {
                        "a device"
                    } else if kind.is_fifo() {
                        "a FIFO"
                    } else if kind.is_socket() {
                        "a socket"
                    } else {
                        "not a regular file"
                    }
                };
                return Err(OutputPathError::NotRegular {
                    what: what_s,
                    path,
                    is,
                });
            }
        }
        let r = resolve(out);
        if let Some(i) = resolved_inputs.iter().position(|p| p == &r) {
            return Err(OutputPathError::OverwritesInput {
                what: what_s,
                path,
                input: inputs[i].to_path_buf(),
            });
        }
        if let Some(&(_, other, other_what)) = seen.iter().find(|(p, _, _)| p == &r) {
            return Err(OutputPathError::SameFile {
                what: what_s,
                path,
                other_what: other_what.to_string(),
                other: other.to_path_buf(),
            });
        }
        seen.push((r, out, what));
    }
    Ok(())
}

/// Checks that a raster output (`what`: `-o`, `--probs`, ...) is named as the GeoTIFF it
/// will be: `.tif` or `.tiff`, in any case. The maps are GeoTIFFs (class values, nodata
/// 255 and the input's georeferencing, which PNG, JPEG or text cannot all hold), so another
/// extension is a usage error naming the file and the fix.
pub fn check_raster_output(what: &str, path: &Path) -> Result<(), OutputPathError> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
    if matches!(ext.as_deref(), Some("tif" | "tiff")) {
        return Ok(());
    }
    Err(OutputPathError::NotGeoTiff {
        what: what.to_string(),
        path: path.to_path_buf(),
        ext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_hidden_beside_the_target_and_name_their_process() {
        let p = temp_path_for(Path::new("/data/out/risk.tif"), "tmp");
        assert_eq!(p.parent(), Some(Path::new("/data/out")));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".risk.tif.") && name.ends_with(".tmp.part"),
            "{name}"
        );
        assert_eq!(owner_pid(&name), Some(std::process::id() as i32));
        assert_eq!(owner_pid(".risk.tif.123.tmp.part"), None, "no host: not ours");
        let sidecar = format!("{name}{SIDECAR}");
        assert_eq!(owner_pid(&sidecar), Some(std::process::id() as i32), "{sidecar}");
        assert_eq!(owner_pid("risk.tif"), None);
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_swept_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A child that has exited: its pid no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".a.tif.{dead}@{}.tmp.part", host()));
        let mine = temp_path_for(&dir.path().join("b.tif"), "tmp");
        let other_host = dir.path().join(format!(".c.tif.{dead}@elsewhere.tmp.part"));
        for p in [&stale, &mine, &other_host] {
            std::fs::write(p, b"x").unwrap();
        }
        sweep_stale(dir.path());
        assert!(!stale.exists());
        assert!(mine.exists() && other_host.exists());
    }

    #[test]
    fn write_atomic_replaces_only_after_the_bytes_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new bytes").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new bytes");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Into a missing folder: one line naming the file and the OS reason.
        let e = write_atomic(&dir.path().join("no/m.json"), b"x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("No such file or directory"), "{e}");
    }

    #[test]
    fn outputs_that_are_inputs_others_or_not_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("x.tif");
        std::fs::write(&input, b"x").unwrap();
        let link = d.join("link.tif");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let out = d.join("o.tif");
        let ok = check_outputs(&[&input], &[("-o", &out), ("--probs", &d.join("p.tif"))]);
        assert_eq!(ok, Ok(()));
        let e = check_outputs(&[&input], &[("-o", &out), ("--probs", &input)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--probs") && e.contains("overwrite the input"), "{e}");
        let e = check_outputs(&[&input], &[("-o", &link)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("overwrite the input"), "symlink: {e}");
        let dotted = d.join("sub/../o.tif");
        std::fs::create_dir(d.join("sub")).unwrap();
        let e = check_outputs(&[&input], &[("-o", &out), ("--probs", &dotted)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("same file"), "{e}");
        let e = check_outputs(&[], &[("-o", Path::new("/dev/null"))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("a device"), "{e}");
        let e = check_outputs(&[], &[("-o", d)]).unwrap_err().to_string();
        assert!(e.contains("folder"), "{e}");
        let e = check_outputs(&[], &[("-o", Path::new("d/newdir/"))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("names a folder"), "{e}");
    }

    #[test]
    fn raster_outputs_must_be_named_tif() {
        for ok in ["risk.tif", "a/b.TIF", "x.tiff", "parts/risk.2.tif"] {
            assert_eq!(check_raster_output("-o", Path::new(ok)), Ok(()), "{ok}");
        }
        let e = check_raster_output("-o", Path::new("out/risk.png"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "out/risk.png (-o): .png cannot hold a georeferenced class map; outputs are GeoTIFF: \
             use a .tif name, e.g. out/risk.tif"
        );
        for bad in ["p.jpg", "p.txt", "p.tif.part", "p"] {
            let e = check_raster_output("--probs", Path::new(bad))
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("{bad} (--probs): ")) && e.contains(".tif"),
                "{e}"
            );
        }
    }
}
