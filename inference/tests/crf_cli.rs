//! The `risk-crf` binary: on the committed pydensecrf fixtures (see `crf_parity.rs`) its
//! `labels.npy` and `Q.npy` agree with pydensecrf's; bad input gets one error line that
//! names the file, exit code 1, and no output directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::files_in;
use risk_inference::npy::{read_npy, write_npy};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/crf")
        .join(name)
}

fn risk_crf(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_risk-crf"));
    for a in args {
        cmd.arg(a);
    }
    cmd.env("RAYON_NUM_THREADS", "2").output().unwrap()
}

/// The fixture probabilities as the reference used them (`prob_u8 / 255`, float32).
fn write_prob(dir: &Path) -> PathBuf {
    let pq = read_npy::<u8>(data("s256_prob_u8.npy")).unwrap();
    let prob: Vec<f32> = pq.data.iter().map(|&q| q as f32 / 255.0).collect();
    let p = dir.join("prob.npy");
    write_npy(&p, &pq.shape, &prob).unwrap();
    p
}

#[test]
fn writes_pydensecrf_labels_and_marginals() {
    let dir = tempfile::tempdir().unwrap();
    let prob = write_prob(dir.path());
    let out = dir.path().join("out");
    let img = data("s256_img.npy");
    let o = risk_crf(&[
        &"--img",
        &img,
        &"--prob",
        &prob,
        &"--preset",
        &"enhanced",
        &"-o",
        &out,
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8(o.stdout).unwrap();
    assert!(
        stdout.contains("\"width\": 256, \"height\": 256") && stdout.contains("\"iterations\": 8"),
        "{stdout}"
    );
    assert_eq!(files_in(&out), ["Q.npy", "labels.npy"]);

    let labels = read_npy::<u8>(out.join("labels.npy")).unwrap();
    let want = read_npy::<u8>(data("s256_labels_enhanced.npy")).unwrap();
    assert_eq!(labels.shape, [256, 256]);
    let agree = labels.data.iter().zip(&want.data).filter(|(a, b)| a == b).count() as f64 / 65536.0;
    assert!(agree >= 0.999, "label agreement {agree}");

    let q = read_npy::<f32>(out.join("Q.npy")).unwrap();
    let q_ref = read_npy::<f32>(data("s256_q_enhanced_every16.npy")).unwrap();
    assert_eq!(q.shape, [3, 256, 256]);
    let m = q_ref.shape[1];
    let mut max_diff = 0f32;
    for c in 0..3 {
        for k in 0..m {
            max_diff = max_diff.max((q.data[c * 65536 + k * 16] - q_ref.data[c * m + k]).abs());
        }
    }
    println!("risk-crf enhanced 256x256: label agreement {agree:.6}, max |Q diff| {max_diff:.3e}");
    assert!(max_diff < 1e-4, "max |Q diff| {max_diff}");
}

#[test]
fn bad_input_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let missing = dir.path().join("missing_img.npy");
    let prob = write_prob(dir.path());
    let img = data("s256_img.npy");
    let crop = dir.path().join("crop.npy");
    write_npy(&crop, &[3, 100, 256], &vec![0.5f32; 3 * 100 * 256]).unwrap();

    let cases: [(&[&dyn AsRef<std::ffi::OsStr>], &Path, &str); 3] = [
        (
            &[&"--img", &missing, &"--prob", &prob],
            &missing,
            "No such file or directory",
        ),
        (
            &[&"--img", &prob, &"--prob", &prob],
            &prob,
            "expected dtype |u1, found <f4",
        ),
        (
            &[&"--img", &img, &"--prob", &crop],
            &crop,
            "expected (3, 256, 256)",
        ),
    ];
    for (args, file, what) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(&[&"-o", &out]);
        let o = risk_crf(&all);
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(&file.display().to_string()), "{err}");
        assert_eq!(err.matches(what).count(), 1, "{err}");
        assert!(!out.exists(), "{err}");
    }
}
