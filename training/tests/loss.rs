//! The losses against PyTorch 2.11 on fixed tensors. The numbers were computed once with
//! `tests/reference/loss_reference.py` (run with `.deps/smp-venv/bin/python`), which also
//! states the definitions; inputs are closed-form so both sides build them exactly.

use approx::assert_relative_eq;
use risk_training::loss::{LossConfig, coral_loss, focal_loss, risk_loss};
use risk_training::model::UNetOutput;
use tch::{Kind, Tensor};

const LABELS: [i64; 24] = [
    0, 1, 2, 255, 2, 2, 1, 0, 0, 0, 255, 1, 2, 0, 1, 1, 255, 255, 0, 2, 1, 0, 2, 0,
];

/// class logits (2, 3, 3, 4), ordinal logits (2, 2, 3, 4), labels (2, 3, 4).
fn inputs() -> (Tensor, Tensor, Tensor) {
    let i = Tensor::arange(72, (Kind::Float, tch::Device::Cpu));
    let logits = ((i * 0.7 + 0.3).sin() * 3.0).reshape([2, 3, 3, 4]);
    let j = Tensor::arange(48, (Kind::Float, tch::Device::Cpu));
    let ordinal = ((j * 0.9).cos() * 2.0 - 0.5).reshape([2, 2, 3, 4]);
    let labels = Tensor::from_slice(&LABELS).reshape([2, 3, 4]);
    (logits, ordinal, labels)
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).expect("tensor to vec")
}

#[test]
fn focal_loss_matches_pytorch() {
    let (logits, _, y) = inputs();
    let f = focal_loss(&logits, &y, &[0.4, 2.5, 2.0], 2.5, 255);
    assert_relative_eq!(scalar(&f), 4.18317890e+00, max_relative = 1e-6);
    let f = focal_loss(&logits, &y, &[1.0; 3], 2.0, 255);
    assert_relative_eq!(scalar(&f), 2.54697371e+00, max_relative = 1e-6);
    // gamma 0, alpha 1: F.cross_entropy(logits, y, ignore_index=255).
    let ce = focal_loss(&logits, &y, &[1.0; 3], 0.0, 255);
    assert_relative_eq!(scalar(&ce), 2.74969316e+00, max_relative = 1e-6);
    // uint8 labels (as read from a label raster) give the same value.
    let f8 = focal_loss(&logits, &y.to_kind(Kind::Uint8), &[0.4, 2.5, 2.0], 2.5, 255);
    assert_relative_eq!(scalar(&f8), 4.18317890e+00, max_relative = 1e-6);
}

#[test]
fn coral_loss_matches_pytorch() {
    let (_, ordinal, y) = inputs();
    assert_relative_eq!(
        scalar(&coral_loss(&ordinal, &y, 255)),
        1.98507476e+00,
        max_relative = 1e-6
    );
}

#[test]
fn combined_loss_and_gradients_match_pytorch() {
    let (logits, ordinal, y) = inputs();
    let output = UNetOutput {
        class_logits: logits.set_requires_grad(true),
        ordinal_logits: ordinal.set_requires_grad(true),
    };
    let parts = risk_loss(&output, &y, &LossConfig::default());
    assert_relative_eq!(scalar(&parts.total), 4.77870131e+00, max_relative = 1e-6);
    assert_relative_eq!(
        scalar(&parts.total),
        scalar(&parts.focal) + 0.3 * scalar(&parts.coral),
        max_relative = 1e-6
    );
    parts.total.backward();
    let grad_class = values(&output.class_logits.grad());
    let grad_ordinal = values(&output.ordinal_logits.grad());
    let expected_class = [
        -1.58558320e-02,
        1.43874168e-01,
        1.10187069e-01,
        0.0,
        5.02494659e-05,
        2.92640834e-07,
        6.88133703e-04,
        -2.09561642e-02,
        -2.21149977e-02,
        -1.49930427e-02,
        0.0,
        1.30399048e-01,
        1.57433189e-02,
        -1.44728824e-01,
        8.62407149e-04,
        0.0,
        3.20881372e-06,
        6.26301073e-07,
        -8.81399512e-02,
        1.95127223e-02,
        2.19536647e-02,
        1.48834912e-02,
        0.0,
        -1.32914916e-01,
        1.12513044e-04,
        8.54634563e-04,
        -1.11049481e-01,
        0.0,
        -5.34583050e-05,
        -9.18941055e-07,
        8.74518156e-02,
        1.44344475e-03,
        1.61335949e-04,
        1.09551860e-04,
        0.0,
        2.51586619e-03,
        3.35857645e-02,
        -4.79507571e-06,
        1.29467681e-01,
        8.63285884e-02,
        0.0,
        0.0,
        -2.10530460e-02,
        6.24023203e-04,
        1.07631922e-06,
        -1.13149267e-02,
        9.93572623e-02,
        -3.26765843e-07,
        7.15504959e-02,
        4.38437428e-06,
        -1.32428437e-01,
        -1.31119519e-01,
        0.0,
        0.0,
        7.54749309e-03,
        1.15951113e-01,
        -1.41056637e-06,
        1.12207038e-02,
        5.86695224e-03,
        7.11936536e-08,
        -1.05136253e-01,
        4.10705951e-07,
        2.96075642e-03,
        4.47909161e-02,
        0.0,
        0.0,
        1.35055510e-02,
        -1.16575144e-01,
        3.34245783e-07,
        9.42231709e-05,
        -1.05224214e-01,
        2.55572900e-07,
    ];
    let expected_ordinal = [
        1.22636175e-02,
        -4.83450666e-03,
        -1.08300000e-02,
        0.0,
        -1.36250807e-02,
        -1.07304947e-02,
        -4.74918215e-03,
        1.22629851e-02,
        1.00782095e-02,
        4.07231739e-03,
        0.0,
        -1.36060631e-02,
        4.37079230e-03,
        1.03341779e-02,
        -2.73891375e-03,
        0.0,
        -1.10235205e-02,
        -1.36770569e-02,
        1.41383498e-03,
        4.47383709e-03,
        1.04155624e-02,
        1.22579215e-02,
        0.0,
        3.88252642e-03,
        -1.36927525e-02,
        1.43463525e-03,
        -1.04214279e-02,
        -4.50503593e-03,
        0.0,
        0.0,
        3.79046076e-03,
        -1.37076629e-02,
        -1.35436449e-02,
        4.68496326e-03,
        -4.42761183e-03,
        1.22477775e-02,
        -5.29022049e-03,
        3.70032201e-03,
        1.27819635e-03,
        1.47902023e-03,
        0.0,
        0.0,
        1.22407926e-02,
        -5.38706779e-03,
        3.61211435e-03,
        1.26481045e-03,
        -1.34973470e-02,
        4.90250438e-03,
    ];
    for (got, want) in grad_class.iter().zip(expected_class) {
        assert!(
            (got - want).abs() <= 1e-8 + 1e-5 * want.abs(),
            "class grad {got} vs {want}"
        );
    }
    for (got, want) in grad_ordinal.iter().zip(expected_ordinal) {
        assert!(
            (got - want).abs() <= 1e-8 + 1e-5 * want.abs(),
            "ordinal grad {got} vs {want}"
        );
    }
    assert_eq!((grad_class.len(), grad_ordinal.len()), (72, 48));
}

#[test]
fn all_nodata_batch_gives_zero_not_nan() {
    let (logits, ordinal, _) = inputs();
    let none = Tensor::full([2, 3, 4], 255, (Kind::Int64, tch::Device::Cpu));
    assert_eq!(
        scalar(&focal_loss(&logits, &none, &[0.4, 2.5, 2.0], 2.5, 255)),
        0.0
    );
    assert_eq!(scalar(&coral_loss(&ordinal, &none, 255)), 0.0);
}
