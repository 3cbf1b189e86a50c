//! One command-line style across risk-infer, risk-eval and risk-crf (risk-train's is
//! checked in its own crate): each help opens with the command's own sentence, outputs are
//! `-o/--output`, older spellings still parse, help is grouped by topic in plain words,
//! and a raster output whose name is not `.tif` is refused before any work.

mod common;

use std::ffi::OsStr;
use std::process::{Command, Output};

use common::{files_in, fixture, root, stderr};

fn run(bin: &str, args: &[&dyn AsRef<OsStr>]) -> Output {
    let mut cmd = Command::new(bin);
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const INFER: &str = env!("CARGO_BIN_EXE_risk-infer");
const EVAL: &str = env!("CARGO_BIN_EXE_risk-eval");
const CRF: &str = env!("CARGO_BIN_EXE_risk-crf");

#[test]
fn each_help_opens_with_its_own_command_and_offers_dash_o() {
    let cases = [
        (INFER, "Turn rasters into risk maps"),
        (EVAL, "Score a risk map against labels"),
        (CRF, "Run the edge clean-up (dense CRF"),
    ];
    for (bin, about) in cases {
        for flag in ["-h", "--help"] {
            let o = run(bin, &[&flag]);
            assert_eq!(o.status.code(), Some(0), "{bin} {flag}: {}", stderr(&o));
            let help = stdout(&o);
            let first = help.lines().next().unwrap_or_default();
            assert!(first.starts_with(about), "{bin} {flag} opens with {first:?}");
            assert!(
                help.contains("-o, --output"),
                "{bin} {flag}: no -o/--output\n{help}"
            );
            // Not the library's description (Cargo.toml), which risk-eval used to show.
            assert!(!help.contains("Lean raster"), "{bin} {flag}");
        }
    }
}

#[test]
fn risk_infer_help_is_grouped_and_plain() {
    let short = stdout(&run(INFER, &[&"-h"]));
    let long = stdout(&run(INFER, &[&"--help"]));
    for heading in [
        "Input:",
        "Outputs:",
        "Model:",
        "Tiling:",
        "CRF (edge clean-up):",
        "Performance:",
        "GPU:",
    ] {
        assert!(
            short.lines().any(|l| l == heading) && long.lines().any(|l| l == heading),
            "no heading {heading:?}\n{short}"
        );
    }
    // Library words stay out of the short help (the long help may explain them).
    for jargon in ["page-locked", "intra-op", "epistemic", "V2"] {
        assert!(!short.contains(jargon), "-h says {jargon:?}\n{short}");
    }
    // `--crf default` names the CRF's standard settings; the option's default is `model`,
    // and both helps say so.
    let crf = &short[short.find("--crf <CRF>").expect("a --crf option")..];
    let crf = &crf[..crf.find("--crf-iters").expect("--crf-iters follows")];
    assert!(
        crf.contains("model (the default: as the model says)") && crf.contains("[default: model]"),
        "{crf}"
    );
    assert!(
        long.lines().any(|l| l.trim_start().starts_with("- model:")
            && l.ends_with("As the model's metadata says (risk.crf), else off. This is the default")),
        "{long}"
    );
}

#[test]
fn older_spellings_still_parse() {
    // Missing rasters make these runtime failures (exit 1), not usage errors (exit 2):
    // the hidden `--pred` / `--out` of risk-eval and `--out` of risk-crf are accepted.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.tif");
    let o = run(
        EVAL,
        &[
            &"--pred",
            &missing,
            &"--truth",
            &missing,
            &"--out",
            &dir.path().join("e"),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.tif"), "{}", stderr(&o));
    let o = run(
        EVAL,
        &[&missing, &"--truth", &missing, &"--output", &dir.path().join("e")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Both the positional and the flag: a usage error.
    let o = run(EVAL, &[&missing, &"--pred", &missing, &"--truth", &missing]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let npy = dir.path().join("missing.npy");
    let o = run(
        CRF,
        &[&"--img", &npy, &"--prob", &npy, &"--out", &dir.path().join("c")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("missing.npy"), "{}", stderr(&o));
}

#[test]
fn raster_outputs_not_named_tif_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scene = fixture("scene512.tif");
    let model = root().join("models/default.onnx");
    let good = d.join("risk.tif");
    // (case, arguments, the output as the error names it, what it says about it)
    type Case<'a> = (&'a str, Vec<&'a dyn AsRef<OsStr>>, &'a str, &'a str);
    let cases: [Case; 5] = [
        ("png", vec![&scene, &"-o", &"risk.png"], "risk.png (-o)", ".png"),
        ("jpg", vec![&scene, &"-o", &"risk.jpg"], "risk.jpg (-o)", ".jpg"),
        (
            "none",
            vec![&scene, &"-o", &"risk"],
            "risk (-o)",
            "has no extension",
        ),
        (
            "probs",
            vec![&scene, &"-o", &good, &"--probs", &"p.txt"],
            "p.txt (--probs)",
            ".txt",
        ),
        (
            "uncertainty",
            vec![&scene, &"-o", &good, &"--uncertainty", &"u.png"],
            "u.png (--uncertainty)",
            ".png",
        ),
    ];
    for (case, args, names, what) in cases {
        let mut cmd = Command::new(INFER);
        cmd.current_dir(d).args(["--quiet", "--model"]).arg(&model);
        for a in &args {
            cmd.arg(a);
        }
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{case}: {err}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{case}: {err}");
        assert!(
            lines[0].starts_with("risk-infer: usage error: ")
                && lines[0].contains(names)
                && lines[0].contains(what)
                && lines[0].contains("use a .tif name"),
            "{case}: {err}"
        );
        assert!(files_in(d).is_empty(), "{case}: {:?}", files_in(d));
    }
    // `mosaic -o` too.
    let o = Command::new(INFER)
        .current_dir(d)
        .args(["mosaic"])
        .arg(&scene)
        .args(["-o", "joined.png"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("joined.png (-o)"), "{}", stderr(&o));
    assert!(files_in(d).is_empty());
}
