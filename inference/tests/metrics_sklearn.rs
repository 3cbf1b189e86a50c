//! The metrics against scikit-learn 1.9.1 and SciPy 1.17.1 on fixed label arrays, including
//! degenerate ones (one class only, an empty class, constant truth or prediction, nodata).
//! The expected numbers were computed once by `reference/metrics_reference.py` into
//! `reference/metrics_cases.rs`; no Python runs here.

use approx::assert_abs_diff_eq;
use risk_inference::metrics::{ConfusionMatrix, Metrics};

#[path = "reference/metrics_cases.rs"]
mod cases;

use cases::{CASES, Case};

const TOL: f64 = 1e-12;

fn metrics(case: &Case) -> Metrics {
    ConfusionMatrix::from_labels(case.truth, case.pred)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
        .metrics()
}

fn assert_optional(name: &str, what: &str, got: Option<f64>, want: Option<f64>) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= TOL, "{name} {what}: got {g}, scikit-learn {w}"),
        (None, None) => {}
        _ => panic!("{name} {what}: got {got:?}, reference {want:?} (None = NaN)"),
    }
}

#[test]
fn cohen_kappa_matches_cohen_kappa_score() {
    for case in CASES {
        let m = metrics(case);
        assert_optional(case.name, "kappa", m.cohen_kappa, case.kappa);
    }
}

#[test]
fn quadratic_kappa_matches_cohen_kappa_score_quadratic() {
    for case in CASES {
        let m = metrics(case);
        assert_optional(
            case.name,
            "quadratic kappa",
            m.quadratic_kappa,
            case.quadratic_kappa,
        );
    }
}

#[test]
fn spearman_matches_scipy_spearmanr() {
    for case in CASES {
        let m = metrics(case);
        assert_optional(case.name, "spearman", m.spearman_rho, case.spearman);
    }
}

#[test]
fn accuracy_matches_accuracy_score() {
    for case in CASES {
        let m = metrics(case);
        assert_abs_diff_eq!(m.accuracy.unwrap(), case.accuracy, epsilon = TOL);
    }
}

#[test]
fn per_class_scores_match_precision_recall_fscore_support_and_jaccard() {
    for case in CASES {
        let m = metrics(case);
        for k in 0..3 {
            let c = m.classes[k];
            let at = |what: &str| format!("{} class {k} {what}", case.name);
            assert!(
                (c.precision - case.precision[k]).abs() <= TOL,
                "{}",
                at("precision")
            );
            assert!((c.recall - case.recall[k]).abs() <= TOL, "{}", at("recall"));
            assert!((c.f1 - case.f1[k]).abs() <= TOL, "{}", at("F1"));
            assert!((c.iou - case.iou[k]).abs() <= TOL, "{}", at("IoU"));
            assert_eq!(c.support, case.support[k], "{}", at("support"));
        }
    }
}

#[test]
fn nodata_pairs_are_left_out() {
    let case = CASES.iter().find(|c| c.name == "with_nodata").unwrap();
    let m = metrics(case);
    let labelled = case
        .truth
        .iter()
        .zip(case.pred)
        .filter(|(t, p)| **t != 255 && **p != 255)
        .count();
    assert_eq!(m.pixels as usize, labelled);
    assert_eq!(m.nodata_pixels as usize, case.truth.len() - labelled);
}

#[test]
fn streaming_in_pieces_gives_the_same_metrics() {
    // The trainer adds batch by batch; the order and split must not matter.
    for case in CASES {
        let mut m = ConfusionMatrix::new();
        for (t, p) in case.truth.chunks(7).zip(case.pred.chunks(7)).rev() {
            m.add(t, p).unwrap();
        }
        assert_eq!(m.metrics(), metrics(case), "{}", case.name);
    }
}
