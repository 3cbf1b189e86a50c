//! risk-infer and risk-crf link no plotting code. The `plot` feature's crates (`image` and
//! `ab_glyph`, the PNG figures of `metrics::plot` / `metrics::report`) are reached only by
//! risk-eval; the library keeps them behind the feature and the linker drops what a binary
//! never calls. Checked on the built binaries' symbol tables with binutils' `nm`, with
//! risk-eval as the control that the check sees those crates where they are linked.

use std::process::Command;

/// How many defined symbols of `binary` belong to one of `crates` (demangled paths that
/// start with `crate::`, also as the self type of a trait impl: `<crate::T as ...>`).
fn symbols_of(binary: &str, crates: &[&str]) -> usize {
    let out = Command::new("nm")
        .args(["--demangle", "--defined-only", binary])
        .output()
        .expect("binutils' nm runs");
    assert!(
        out.status.success(),
        "nm {binary}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.splitn(3, ' ').nth(2))
        .filter(|name| {
            let name = name.trim_start_matches('<');
            crates.iter().any(|c| name.starts_with(&format!("{c}::")))
        })
        .count()
}

const PLOT_CRATES: &[&str] = &["image", "ab_glyph", "ab_glyph_rasterizer", "png"];

#[test]
fn risk_infer_and_risk_crf_link_no_plotting_crates() {
    assert!(symbols_of(env!("CARGO_BIN_EXE_risk-eval"), &["image"]) > 0);
    assert!(symbols_of(env!("CARGO_BIN_EXE_risk-eval"), &["ab_glyph"]) > 0);
    assert_eq!(symbols_of(env!("CARGO_BIN_EXE_risk-infer"), PLOT_CRATES), 0);
    assert_eq!(symbols_of(env!("CARGO_BIN_EXE_risk-crf"), PLOT_CRATES), 0);
}
