//! `risk-infer`, `risk-eval` and the writers under hostile conditions (issue 22): a full
//! disk, outputs that would overwrite inputs or each other or are not files, signals,
//! non-finite pixels and models, argument limits, corrupt existing outputs, a closed
//! stderr, telemetry. Each test names the case it covers; nothing may be lost: an old
//! output stays intact, an input is never overwritten, no temporary file stays behind.
//!
//! Full-disk cases mount a 40 KiB tmpfs (root only); where mounting is not allowed they
//! print why and pass without checking.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{files_in, fixture, read_all, root, stderr};
use risk_inference::raster::{GeoRef, GeoTiffWriter, InputRaster, PixelType, Window, WriteOptions};

fn model() -> PathBuf {
    root().join("models/default.onnx")
}

fn infer_cmd(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-infer"));
    cmd.args(["--threads", "1", "--crf", "off", "--model"])
        .arg(model());
    for a in args {
        cmd.arg(a);
    }
    cmd
}

fn risk_infer(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = infer_cmd(args);
    cmd.arg("--quiet");
    cmd.output().expect("risk-infer runs")
}

/// A 128 x 128 crop of scene512 (the model's three bands; a part without nodata, with
/// all three classes in its labels) as pixel type `T`, with
/// `edit(x, y, band, value)` applied; `nodata` as given.
fn crop<T: PixelType + Copy>(path: &Path, nodata: Option<f64>, edit: impl Fn(usize, usize, usize, f64) -> T) {
    let (w, h) = (128, 128);
    let src = InputRaster::open(fixture("scene512.tif")).unwrap();
    let mut raw = vec![0f64; 3 * w * h];
    src.read_bands(&[1, 2, 3], Window::new(352, 128, w, h), &mut raw)
        .unwrap();
    let data: Vec<T> = raw
        .iter()
        .enumerate()
        .map(|(i, &v)| edit(i % w, (i / w) % h, i / (w * h), v))
        .collect();
    let georef = src.georef().offset(352.0, 128.0);
    let mut wr = GeoTiffWriter::create::<T>(
        path,
        w,
        h,
        3,
        &georef,
        WriteOptions {
            nodata,
            ..WriteOptions::default()
        },
    )
    .unwrap();
    wr.write_bands(Window::new(0, 0, w, h), &data).unwrap();
    wr.finish().unwrap();
}

fn small_input(dir: &Path) -> PathBuf {
    let p = dir.join("in.tif");
    crop::<u8>(&p, Some(0.0), |_, _, _, v| v as u8);
    p
}

/// Hidden temporary files (`.NAME.PID@HOST.TAG.part`) in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    files_in(dir)
        .into_iter()
        .filter(|n| n.starts_with('.') && n.contains(".part"))
        .collect()
}

fn assert_usage_error(o: &Output, case: &str, says: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{case}: {err}");
    assert!(
        err.starts_with("risk-infer: usage error: ") || err.contains("error: invalid value"),
        "{case}: {err}"
    );
    for s in says {
        assert!(err.contains(s), "{case}: does not say {s:?}: {err}");
    }
}

/// A 40 KiB tmpfs mounted on a fresh folder, unmounted when dropped; `None` (with a
/// message) where mounting is not allowed.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(case: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=40k", "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("{case}: skipped, mounting a tmpfs is not allowed here (needs root)");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk up: the next write fails with "No space left on device".
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = [7u8; 1024];
        while f.write_all(&block).and_then(|()| f.flush()).is_ok() {}
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Case 1: a full disk gives exit 1, one line naming the output and the OS reason, and
/// the earlier output intact, for every writer of a run (class map, probabilities,
/// uncertainty, the CRF's temporaries, the mosaic).
#[test]
fn full_disk_fails_and_keeps_the_old_output() {
    let Some(disk) = SmallDisk::mount("full_disk_fails_and_keeps_the_old_output") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let input = small_input(work.path());
    let d = disk.path();
    // An earlier, valid output on the disk, then the disk filled up.
    let out = d.join("OUT.tif");
    let o = risk_infer(&[&input, &"-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let old = std::fs::read(&out).unwrap();
    disk.fill();
    let elsewhere = work.path().join("risk.tif");
    let cases: Vec<(&str, Vec<&dyn AsRef<std::ffi::OsStr>>)> = vec![
        ("class map", vec![&input, &"-o", &out]),
        ("probabilities", vec![&input, &"-o", &elsewhere, &"--probs", &out]),
        (
            "uncertainty",
            vec![&input, &"-o", &elsewhere, &"--uncertainty", &out],
        ),
        ("CRF", vec![&input, &"-o", &out, &"--crf", &"default"]),
        ("mosaic", vec![&"mosaic", &input, &"-o", &out]),
    ];
    for (case, args) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-infer"));
        cmd.args(args).arg("--quiet");
        if case != "mosaic" {
            cmd.args(["--threads", "1", "--model"]).arg(model());
            if case != "CRF" {
                cmd.args(["--crf", "off"]);
            }
        }
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{case}: {err}");
        assert_eq!(err.lines().count(), 1, "{case}: {err}");
        assert!(
            err.contains("OUT.tif") && err.contains("No space left on device"),
            "{case}: {err}"
        );
        assert!(
            !err.contains("not a raster") && !err.contains("Error msg"),
            "{case}: {err}"
        );
        assert!(!err.contains(".part"), "{case}: names a hidden temporary: {err}");
        assert_eq!(
            std::fs::read(&out).unwrap(),
            old,
            "{case}: the old output changed"
        );
        assert!(temporaries(d).is_empty(), "{case}: {:?}", files_in(d));
        let _ = std::fs::remove_file(&elsewhere);
    }
}

/// Case 1, risk-eval: metrics and report files on a full disk.
#[test]
fn full_disk_under_risk_eval_is_reported_and_leaves_nothing() {
    let Some(disk) = SmallDisk::mount("full_disk_under_risk_eval_is_reported_and_leaves_nothing") else {
        return;
    };
    disk.fill();
    let out = disk.path().join("eval");
    let o = Command::new(env!("CARGO_BIN_EXE_risk-eval"))
        .arg(fixture("scene512_labels.tif"))
        .arg("--truth")
        .arg(fixture("scene512_labels.tif"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(files_in(disk.path()), vec!["filler"], "{err}");
}

/// Case 2: a side output naming the input is refused before any work; the input stays.
#[test]
fn side_output_over_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let before = std::fs::read(&input).unwrap();
    let link = d.join("link.tif");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    for (flag, target) in [("--probs", &input), ("--uncertainty", &input), ("--probs", &link)] {
        let o = risk_infer(&[&input, &"-o", &d.join("o.tif"), &flag, target]);
        assert_usage_error(&o, flag, &[flag, "overwrite the input"]);
    }
    let o = risk_infer(&[&input, &"-o", &input]);
    assert_usage_error(&o, "-o", &["overwrite the input"]);
    assert_eq!(std::fs::read(&input).unwrap(), before);
    assert_eq!(files_in(d), vec!["in.tif", "link.tif"]);
}

/// Case 3: batch outputs that collide, or land on another input, are refused.
#[test]
fn colliding_batch_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["a", "b", "od"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let (a, b) = (d.join("a/x.tif"), d.join("b/x.tif"));
    crop::<u8>(&a, Some(0.0), |_, _, _, v| v as u8);
    std::fs::copy(&a, &b).unwrap();
    let out = d.join("out");
    let o = risk_infer(&[&a, &b, &"--out-dir", &out]);
    assert_usage_error(&o, "same stem", &["a/x.tif", "b/x.tif", "same file"]);
    assert!(!out.exists(), "nothing is created on a usage error");
    let (od_a, od_a_risk) = (d.join("od/a.tif"), d.join("od/a_risk.tif"));
    std::fs::copy(&a, &od_a).unwrap();
    std::fs::copy(&a, &od_a_risk).unwrap();
    let o = risk_infer(&[&od_a, &od_a_risk, &"--out-dir", &d.join("od")]);
    assert_usage_error(&o, "output over an input", &["a_risk.tif", "overwrite the input"]);
    assert_eq!(std::fs::read(&od_a_risk).unwrap(), std::fs::read(&a).unwrap());
}

/// Case 4: two outputs on one path are refused; the existing file stays as it was.
#[test]
fn two_outputs_on_one_path_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let out = d.join("OUT.tif");
    std::fs::write(&out, b"earlier").unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    let o = risk_infer(&[&input, &"-o", &out, &"--probs", &d.join("sub/../OUT.tif")]);
    assert_usage_error(&o, "-o = --probs", &["OUT.tif", "same file"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"earlier");
    assert!(temporaries(d).is_empty());
}

/// Case 5: devices, FIFOs and folders are not outputs.
#[test]
fn outputs_that_are_not_regular_files_are_refused() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let fifo = d.join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let o = risk_infer(&[&input, &"-o", &fifo]);
    assert_usage_error(&o, "FIFO", &["fifo", "a FIFO"]);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // A device node (root only; /dev/null itself is checked the same way, never written).
    let null = d.join("null");
    if Command::new("mknod")
        .arg(&null)
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success())
    {
        let o = risk_infer(&[&input, &"-o", &null]);
        assert_usage_error(&o, "device", &["null", "a device"]);
        assert!(std::fs::metadata(&null).unwrap().file_type().is_char_device());
    } else {
        eprintln!("device case skipped: mknod is not allowed here");
    }
    let o = risk_infer(&[&input, &"-o", &"/dev/null"]);
    assert_usage_error(&o, "/dev/null", &["a device"]);
    let o = risk_infer(&[&input, &"-o", &d.join("newdir/")]);
    assert_usage_error(&o, "trailing slash", &["names a folder"]);
    assert!(temporaries(d).is_empty(), "{:?}", files_in(d));
}

/// Case 6: a writer whose final rename fails removes its temporary file.
#[test]
fn failed_rename_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let georef = GeoRef::north_up(32633, 600_000.0, 5_000_000.0, 2.0).unwrap();
    let mut w = GeoTiffWriter::create::<u8>(
        dir.path().join("newdir/"),
        8,
        8,
        1,
        &georef,
        WriteOptions::default(),
    )
    .unwrap();
    w.write_band(1, Window::new(0, 0, 8, 8), &[1u8; 64]).unwrap();
    let e = w.finish().unwrap_err().to_string();
    assert!(e.contains("newdir"), "{e}");
    assert!(files_in(dir.path()).is_empty(), "{:?}", files_in(dir.path()));
}

/// Case 6: SIGTERM and SIGINT remove the run's temporary files and exit 143 / 130; a
/// later run removes the stale temporary file of a process that is gone.
#[test]
fn signals_remove_temporaries_and_stale_ones_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = fixture("scene512.tif");
    let out = d.join("risk.tif");
    for (signal, code) in [(libc_sig::TERM, 143), (libc_sig::INT, 130)] {
        let child = infer_cmd(&[&input, &"-o", &out, &"--probs", &d.join("p.tif")])
            .arg("--quiet")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the temporary files (created before the model runs).
        let t0 = Instant::now();
        while temporaries(d).len() < 2 {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "no temporary file appeared"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(code), "{signal}: {}", stderr(&o));
        assert!(files_in(d).is_empty(), "{signal}: {:?}", files_in(d));
    }
    // A temporary file named after a process that no longer runs, on this host.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let mine = risk_inference::output::temp_path_for(&out, "tmp");
    let me = format!(".{}@", std::process::id());
    let stale = d.join(
        mine.file_name()
            .unwrap()
            .to_string_lossy()
            .replace(&me, &format!(".{pid}@")),
    );
    // (The input is made first, elsewhere: this process sweeps the folders it writes to.)
    let elsewhere = tempfile::tempdir().unwrap();
    let input = small_input(elsewhere.path());
    std::fs::write(&stale, b"half a raster").unwrap();
    let o = infer_cmd(&[&input, &"-o", &out]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale.exists());
    assert!(
        stderr(&o).contains(&format!("left by process {pid}")),
        "{}",
        stderr(&o)
    );
}

/// Signal names for `kill -NAME`.
mod libc_sig {
    pub const TERM: &str = "TERM";
    pub const INT: &str = "INT";
}

/// Case 7: non-finite pixels are nodata and their neighbours are scored as at any
/// nodata edge: a NaN strip (nodata NaN, or no nodata at all) gives exactly the map of
/// the same strip as 0 with nodata 0.
#[test]
fn nan_pixels_are_nodata_and_do_not_spread() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let strip = |x: usize| (60..68).contains(&x);
    let zero = d.join("zero.tif");
    crop::<f32>(
        &zero,
        Some(0.0),
        |x, _, _, v| if strip(x) { 0.0 } else { v as f32 },
    );
    let nan = d.join("nan.tif");
    crop::<f32>(
        &nan,
        Some(f64::NAN),
        |x, _, _, v| {
            if strip(x) { f32::NAN } else { v as f32 }
        },
    );
    // No nodata value declared.
    let bare = d.join("bare.tif");
    crop::<f64>(&bare, None, |x, _, _, v| if strip(x) { f64::NAN } else { v });
    // One NaN band is enough to make a pixel nodata.
    let one = d.join("one.tif");
    crop::<f64>(
        &one,
        None,
        |x, _, b, v| if strip(x) && b == 1 { f64::NAN } else { v },
    );
    let mut maps = Vec::new();
    for input in [&zero, &nan, &bare, &one] {
        let out = d.join(format!(
            "{}_risk.tif",
            input.file_stem().unwrap().to_string_lossy()
        ));
        // The crops hold the u8 scene's values as floats: the model's own scale applies.
        let o = risk_infer(&[input, &"-o", &out, &"--input-scale", &"model"]);
        assert!(o.status.success(), "{}", stderr(&o));
        maps.push(read_all::<u8>(&out));
    }
    let m = &maps[0];
    assert!((0..128).all(|y| (60..68).all(|x| m[y * 128 + x] == 255)));
    assert!(m.contains(&2), "the crop has High pixels");
    let differ = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    assert_eq!(differ(&maps[1], m), 0, "NaN strip with nodata NaN");
    assert_eq!(differ(&maps[2], m), 0, "NaN strip without nodata");
    let one = &maps[3];
    assert!((0..128).all(|y| (60..68).all(|x| one[y * 128 + x] == 255)));
    assert!(one.iter().enumerate().all(|(i, &c)| (c == 255) == strip(i % 128)));
    // All NaN: all nodata, said in the log.
    let all = d.join("all.tif");
    crop::<f64>(&all, None, |_, _, _, _| f64::NAN);
    let out = d.join("all_risk.tif");
    let o = infer_cmd(&[&all, &"-o", &out, &"--input-scale", &"model"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("non-finite"), "{}", stderr(&o));
    assert!(read_all::<u8>(&out).iter().all(|&c| c == 255));
}

/// Case 7: values that overflow the model's normalisation are clamped (and logged), not
/// turned into NaN probabilities; a model that returns NaN stops the run, named.
#[test]
fn huge_values_are_clamped_and_a_nan_model_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huge = d.join("huge.tif");
    crop::<f64>(&huge, None, |x, _, _, v| if x < 32 { 1e30 } else { v });
    let out = d.join("huge_risk.tif");
    let o = infer_cmd(&[&huge, &"-o", &out, &"--input-scale", &"model"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("clamped"), "{}", stderr(&o));
    let classes = read_all::<u8>(&out);
    assert!(classes.iter().all(|&c| c <= 2), "every pixel scored");
    // models/toy.onnx with its box filter weights (1/25 and 1/225) made NaN.
    let mut m = std::fs::read(root().join("models/toy.onnx")).unwrap();
    let mut patched = 0;
    for w in [1.0f32 / 25.0, 1.0 / 225.0] {
        let bytes = w.to_le_bytes();
        for i in 0..m.len() - 3 {
            if m[i..i + 4] == bytes {
                m[i..i + 4].copy_from_slice(&f32::NAN.to_le_bytes());
                patched += 1;
            }
        }
    }
    assert!(patched > 0);
    let nan_model = d.join("nan.onnx");
    std::fs::write(&nan_model, m).unwrap();
    let out = d.join("risk.tif");
    let o = Command::new(env!("CARGO_BIN_EXE_risk-infer"))
        .args(["--quiet", "--threads", "1", "--crf", "off", "--model"])
        .arg(&nan_model)
        .arg(small_input(d))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("nan.onnx") && err.contains("non-finite"), "{err}");
    assert!(!out.exists());
}

/// Case 8: argument limits are usage errors that state the accepted range.
#[test]
fn argument_limits_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let out = d.join("o.tif");
    for (args, says) in [
        (vec!["--threads", "100000"], "4x the"),
        (vec!["--tile", "0"], "multiple of 32, at least 64"),
        (vec!["--tile", "31"], "multiple of 32, at least 64"),
        (vec!["--tile", "100"], "multiple of 32, at least 64"),
        (
            vec!["--tile", "128", "--overlap", "200"],
            "less than half the tile",
        ),
        (
            vec!["--tile", "128", "--overlap", "64"],
            "less than half the tile",
        ),
        (vec!["--crf", "default", "--crf-iters", "101"], "0..=100"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_risk-infer"))
            .args(["--quiet", "--model"])
            .arg(model())
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(files_in(d), vec!["in.tif"]);
}

/// Case 10: `--skip-existing` scores again over a corrupt or foreign output.
#[test]
fn skip_existing_trusts_only_finished_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let out = d.join("in_risk.tif");
    let o = risk_infer(&[&input, &"--out-dir", &d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let good = std::fs::read(&out).unwrap();
    let classes = read_all::<u8>(&out);
    for (case, bytes) in [
        ("truncated", good[..good.len() / 2].to_vec()),
        (
            "another grid",
            std::fs::read(fixture("scene512_labels.tif")).unwrap(),
        ),
    ] {
        std::fs::write(&out, bytes).unwrap();
        let o = risk_infer(&[&input, &"--out-dir", &d, &"--skip-existing"]);
        assert!(o.status.success(), "{case}: {}", stderr(&o));
        assert_eq!(read_all::<u8>(&out), classes, "{case}: scored again");
    }
    // A finished output is skipped untouched.
    let before = std::fs::metadata(&out).unwrap().modified().unwrap();
    let o = risk_infer(&[&input, &"--out-dir", &d, &"--skip-existing"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(&out).unwrap().modified().unwrap(), before);
}

/// Case 10: an error printed into a closed stderr is exit 1, not a panic (101).
#[test]
fn errors_into_a_closed_stderr_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_risk-infer"))
        .args(["--model"])
        .arg(model())
        .arg(dir.path().join("missing.tif"))
        .arg("-o")
        .arg(dir.path().join("o.tif"))
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_risk-eval"))
        .args(["missing.tif", "--truth", "missing.tif", "-o"])
        .arg(dir.path().join("eval"))
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// Case 10: a failed risk-eval leaves no empty output folder; a folder as `--model` is
/// called a folder.
#[test]
fn minor_failures_say_what_is_wrong_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("eval");
    let o = Command::new(env!("CARGO_BIN_EXE_risk-eval"))
        .arg(fixture("scene512_labels.tif"))
        .arg("--truth")
        .arg(fixture("scene700x433_labels.tif"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!out.exists(), "{:?}", files_in(d));
    let o = Command::new(env!("CARGO_BIN_EXE_risk-infer"))
        .args(["--quiet", "--model"])
        .arg(d)
        .arg(small_input(d))
        .arg("-o")
        .arg(d.join("o.tif"))
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("is a folder, not a model file"), "{err}");
    assert!(!err.contains("Error msg: ''"), "{err}");
}

/// Case 9: no telemetry. risk-infer runs under strace in a namespace without network and
/// with the CA certificates hidden (as in a minimal chroot): with ONNX Runtime's telemetry
/// client on, it says "No readable CA bundle was found; telemetry HTTPS uploads will be
/// unavailable" and opens its event store under ~/.cache/Microsoft; off, neither, and no
/// socket is opened nor connect() attempted.
#[test]
fn no_telemetry_and_no_connection_attempt() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !have("strace") || !have("unshare") {
        eprintln!("skipped: strace or unshare is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let input = small_input(d);
    let trace = d.join("trace.txt");
    let script = format!(
        "for c in /etc/ssl /etc/pki /var/lib/ca-certificates /usr/share/ca-certificates; do \
           if [ -d $c ]; then mount -t tmpfs none $c || exit 3; fi; done; \
         exec strace -f -qq -e trace=socket,connect,openat -o {} {} --threads 1 --crf off --model {} {} -o {}",
        trace.display(),
        env!("CARGO_BIN_EXE_risk-infer"),
        model().display(),
        input.display(),
        d.join("o.tif").display()
    );
    let o = Command::new("unshare")
        .args(["-m", "-n", "sh", "-c", &script])
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("ORT_DISABLE_TELEMETRY")
        .output()
        .unwrap();
    let err = stderr(&o);
    if !o.status.success() && !trace.exists() {
        eprintln!("skipped: unshare / mount / strace not allowed here: {err}");
        return;
    }
    assert!(o.status.success(), "{err}");
    assert!(!err.to_lowercase().contains("telemetry"), "{err}");
    let calls = std::fs::read_to_string(&trace).unwrap();
    assert!(calls.contains("o.tif"), "strace saw the run:\n{calls}");
    for call in ["socket(", "connect("] {
        assert!(!calls.contains(call), "{call}\n{calls}");
    }
    assert!(
        !calls.contains("onnxruntime.db"),
        "telemetry event store opened:\n{calls}"
    );
}

/// risk-eval never writes over an input: a truth raster named like one of its outputs
/// (`classes.tif`, written when scoring `--probs`) in the output folder is refused before
/// any work, and stays byte-identical.
#[test]
fn risk_eval_refuses_an_output_folder_where_it_would_overwrite_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let probs = d.join("probs.tif");
    let o = risk_infer(&[
        &fixture("scene512.tif"),
        &"-o",
        &d.join("risk.tif"),
        &"--probs",
        &probs,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let truth = d.join("classes.tif");
    std::fs::copy(fixture("scene512_labels.tif"), &truth).unwrap();
    let before = std::fs::read(&truth).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_risk-eval"))
        .arg("--probs")
        .arg(&probs)
        .arg("--truth")
        .arg(&truth)
        .arg("-o")
        .arg(d)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("would overwrite the input"), "{err}");
    assert_eq!(std::fs::read(&truth).unwrap(), before);
    assert!(!d.join("metrics.json").exists());
}
