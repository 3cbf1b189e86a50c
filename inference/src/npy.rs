//! Minimal NumPy `.npy` reader and writer (format versions 1.0 to 3.0, little-endian,
//! C order) for the array types the CRF tools exchange with the Python reference
//! harness: `uint8` (`|u1`) and `float32` (`<f4`).
//!
//! Only what `numpy.save` writes for contiguous arrays is accepted; Fortran-order or
//! big-endian files are reported as [`NpyError::Unsupported`] instead of being misread.
//! Files are written under a temporary name beside the target and renamed into place.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// What can go wrong reading or writing a `.npy` file; every variant names the file.
/// Each message is whole (the I/O error's text is in it, not behind `source()`), so
/// that a `{:#}` chain prints it once.
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path}: not a .npy file ({reason})")]
    Format { path: PathBuf, reason: String },
    #[error("{path}: unsupported array: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: expected dtype {expected}, found {found}")]
    Dtype {
        path: PathBuf,
        expected: &'static str,
        found: String,
    },
    /// Writing failed, with the OS reason.
    #[error("{path}: {err}")]
    Write {
        path: PathBuf,
        err: crate::output::OutputError,
    },
}

/// Element types this module reads and writes.
pub trait NpyElement: Copy + Default {
    /// The `descr` string numpy writes for this type.
    const DESCR: &'static str;
    /// Size of one element in bytes.
    const SIZE: usize;
    fn from_le(bytes: &[u8]) -> Self;
    fn write_le(self, out: &mut Vec<u8>);
}

impl NpyElement for u8 {
    const DESCR: &'static str = "|u1";
    const SIZE: usize = 1;
    fn from_le(bytes: &[u8]) -> Self {
        bytes[0]
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.push(self);
    }
}

impl NpyElement for f32 {
    const DESCR: &'static str = "<f4";
    const SIZE: usize = 4;
    fn from_le(bytes: &[u8]) -> Self {
        f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
    fn write_le(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

/// An n-dimensional array in C order: `data.len() == shape.iter().product()`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a whole `.npy` file of element type `T`.
pub fn read_npy<T: NpyElement>(path: impl AsRef<Path>) -> Result<NpyArray<T>, NpyError> {
    let path = path.as_ref();
    let io = |err| NpyError::Io {
        path: path.to_owned(),
        err,
    };
    let format = |reason: &str| NpyError::Format {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let mut r = BufReader::new(File::open(path).map_err(io)?);
    let mut pre = [0u8; 8];
    r.read_exact(&mut pre).map_err(io)?;
    if &pre[..6] != MAGIC {
        return Err(format("bad magic string"));
    }
    let header_len = match pre[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).map_err(io)?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map_err(io)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format(&format!("format version {v} unknown"))),
    };
    let mut header = vec![0u8; header_len];
    r.read_exact(&mut header).map_err(io)?;
    let header = String::from_utf8_lossy(&header).into_owned();
    let descr = dict_value(&header, "descr").ok_or_else(|| format("header has no 'descr'"))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"').to_owned();
    if descr != T::DESCR {
        return Err(NpyError::Dtype {
            path: path.to_owned(),
            expected: T::DESCR,
            found: descr,
        });
    }
    let fortran = dict_value(&header, "fortran_order").ok_or_else(|| format("no 'fortran_order'"))?;
    if fortran.trim().starts_with("True") {
        return Err(NpyError::Unsupported {
            path: path.to_owned(),
            reason: "Fortran order (save a C-contiguous array)".into(),
        });
    }
    let shape_text = dict_value(&header, "shape").ok_or_else(|| format("header has no 'shape'"))?;
    let shape = parse_shape(&shape_text).ok_or_else(|| format(&format!("bad shape {shape_text}")))?;
    let count = shape
        .iter()
        .try_fold(1usize, |a, &b| a.checked_mul(b))
        .ok_or_else(|| format("shape overflows"))?;
    let mut bytes = vec![0u8; count * T::SIZE];
    r.read_exact(&mut bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => format(&format!("truncated: expected {count} elements")),
        _ => io(e),
    })?;
    let data = bytes.chunks_exact(T::SIZE).map(T::from_le).collect();
    Ok(NpyArray { shape, data })
}

/// Writes `data` with `shape` (C order) as a version 1.0 `.npy` file.
pub fn write_npy<T: NpyElement>(path: impl AsRef<Path>, shape: &[usize], data: &[T]) -> Result<(), NpyError> {
    let path = path.as_ref();
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(NpyError::Unsupported {
            path: path.to_owned(),
            reason: format!("shape {shape:?} holds {n} elements, data has {}", data.len()),
        });
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_text = if shape.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        T::DESCR,
        shape_text
    );
    // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
    let total = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    // Through a temporary file beside `path`, read back before it is renamed into place
    // (see [`crate::output`]): a failure never leaves a half-written file under the name.
    crate::output::write_with(path, |w| {
        w.write_all(MAGIC)?;
        w.write_all(&[1, 0])?;
        w.write_all(&(header.len() as u16).to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        let mut buf = Vec::with_capacity(1 << 16);
        for chunk in data.chunks(1 << 14) {
            buf.clear();
            for &v in chunk {
                v.write_le(&mut buf);
            }
            w.write_all(&buf)?;
        }
        Ok(())
    })
    .map_err(|err| NpyError::Write {
        path: path.to_owned(),
        err,
    })
}

/// The text after `'key':` in a numpy header dict, up to the next top-level comma.
fn dict_value(header: &str, key: &str) -> Option<String> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    let mut end = rest.len();
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    Some(rest[..end].trim().to_owned())
}

fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
        write_npy(&p, &[2, 3, 4], &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!((bytes.len() - 24 * 4) % 64, 0);
        let back: NpyArray<f32> = read_npy(&p).unwrap();
        assert_eq!(back.shape, vec![2, 3, 4]);
        assert_eq!(back.data, data);
        assert!(matches!(read_npy::<u8>(&p), Err(NpyError::Dtype { .. })));
        // Renamed into place: no temporary file is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.npy"]);
    }

    #[test]
    fn a_failed_write_names_the_file_once_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no_such_dir/a.npy");
        let e = write_npy(&p, &[2], &[1u8, 2]).unwrap_err();
        let line = format!("{:#}", anyhow::Error::from(e));
        assert!(line.starts_with(&p.display().to_string()), "{line}");
        assert_eq!(line.matches("No such file or directory").count(), 1, "{line}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
