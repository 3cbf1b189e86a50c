//! `risk-train decide`'s pieces: the `risk.decision` metadata written through the training
//! crate's ONNX protobuf code and read back by ONNX Runtime (`risk_inference::session`),
//! and the fit on a model's own blended probabilities of a scene.

use std::path::PathBuf;

use risk_inference::decision::{self, Decision, Targets};
use risk_inference::session::{Device, Model, SessionOptions};
use risk_training::decision::{fit_on_scene, set_metadata};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(path: &std::path::Path) -> Model {
    let options = SessionOptions {
        device: Device::Cpu,
        threads: 1,
        ..SessionOptions::default()
    };
    Model::load(path, &options).unwrap()
}

#[test]
fn decision_metadata_round_trip_keeps_everything_else() {
    let dir = tempfile::tempdir().unwrap();
    let toy = root().join("models/toy.onnx");
    let out = dir.path().join("ruled.onnx");
    let before = load(&toy).info().clone();
    assert_eq!(
        Decision::of_model(&load(&toy)),
        Ok(Decision::default()),
        "no rule: argmax"
    );
    let json = r#"{"rule": "logit_offsets", "offsets": [0, 1.5, -0.25], "feasible": false}"#;
    set_metadata(&toy, &out, decision::METADATA_KEY, json).unwrap();
    // Replaced, not added twice, when written again (in place).
    let json2 = r#"{"rule": "logit_offsets", "offsets": [0, 0.75, -0.5]}"#;
    set_metadata(&out, &out, decision::METADATA_KEY, json2).unwrap();
    let mut model = load(&out);
    assert_eq!(Decision::of_model(&model), Ok(Decision::new(0.75, -0.5)));
    let mut props = model.info().properties.clone();
    assert_eq!(props.remove(decision::METADATA_KEY).as_deref(), Some(json2));
    assert_eq!(props, before.properties);
    // The graph is untouched: same probabilities on a batch.
    let (n, h, w) = (1, 32, 32);
    let input: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
        .collect();
    let (mut a, mut b) = (vec![0f32; 3 * h * w], vec![0f32; 3 * h * w]);
    load(&toy).run(&input, n, h, w, &mut a).unwrap();
    model.run(&input, n, h, w, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

/// The fit on the toy model's own probabilities of a fixture scene: a feasible rule meets
/// both targets; a fallback to the best kappa under the recall constraint is at least as
/// good as the argmax whenever the argmax meets that constraint (the argmax is one of the
/// grid's offset pairs).
#[test]
fn fit_on_scene_scores_what_it_chose() {
    let fixtures = root().join("fixtures");
    let fit = fit_on_scene(
        &[&root().join("models/toy.onnx")],
        &fixtures.join("scene700x433.tif"),
        &fixtures.join("scene700x433_labels.tif"),
        &Targets::default(),
    )
    .unwrap();
    assert!(fit.pixels > 250_000, "{}", fit.pixels);
    println!("{fit:?}");
    if fit.feasible {
        assert!(
            fit.chosen.recall_2 >= 0.93 && fit.chosen.precision_1 >= 0.22,
            "{fit:?}"
        );
        assert!(fit.fallback.is_none());
    } else {
        assert_eq!(
            fit.fallback.as_deref(),
            Some("max kappa with recall_2"),
            "{fit:?}"
        );
        if fit.argmax.recall_2 >= 0.93 {
            assert!(fit.chosen.kappa >= fit.argmax.kappa - 1e-3, "{fit:?}");
        }
    }
}

/// An ensemble's rule is fitted on its members' averaged probabilities, as risk-infer
/// averages them: the same offsets as a fit on the mean of each member's own probability
/// map, computed apart here (the shipped model and a random-init B0 export, which share
/// the input contract, on a fixture scene).
#[test]
fn ensemble_fit_is_the_fit_on_the_averaged_probabilities() {
    use risk_inference::pipeline::{self, Outputs, ProbsType, RunOptions};
    use risk_inference::predictor::Predictor;
    let dir = tempfile::tempdir().unwrap();
    let second = dir.path().join("random_b0.onnx");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_risk-train"))
        .args(["export", "--random-init", "--encoder", "b0", "-o"])
        .arg(&second)
        .status()
        .unwrap();
    assert!(status.success());
    let first = root().join("models/default.onnx");
    let image = root().join("fixtures/scene700x433.tif");
    let labels = root().join("fixtures/scene700x433_labels.tif");
    let targets = Targets::default();
    let ensemble = fit_on_scene(&[&first, &second], &image, &labels, &targets).unwrap();
    // Each member alone, with the first member's tiling (as the ensemble runs).
    let tiling = load(&first).info().clone();
    let opts = RunOptions {
        tile: Some(tiling.tile_size),
        overlap: Some(tiling.tile_overlap),
        ..RunOptions::default()
    };
    let alone = |model: &std::path::Path, name: &str| {
        let probs = dir.path().join(name);
        let outputs = Outputs {
            classes: None,
            probs: Some((probs.clone(), ProbsType::F32)),
            uncertainty: None,
        };
        pipeline::run(
            &mut Predictor::from(load(model)),
            &image,
            &outputs,
            &opts,
            &mut |_, _| {},
        )
        .unwrap();
        decision::read_fit_inputs(&probs, &labels).unwrap()
    };
    let (a, truth) = alone(&first, "a.tif");
    let (b, _) = alone(&second, "b.tif");
    let mean: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x + y) / 2.0).collect();
    assert!(
        a.iter().zip(&mean).any(|(x, m)| (x - m).abs() > 0.05),
        "the members differ"
    );
    let apart = decision::fit(&mean, &truth, &targets).unwrap();
    assert_eq!(ensemble.decision, apart.decision);
    assert_eq!(ensemble.pixels, apart.pixels);
    assert!(
        (ensemble.chosen.kappa - apart.chosen.kappa).abs() < 1e-4,
        "{ensemble:?} vs {apart:?}"
    );
}

/// On the oracle's probabilities of a generator-v2 scene (the Bayes-optimal class
/// probabilities: the best any model can give), the binned fit reaches the best feasible
/// kappa of an exhaustive search, computed pixel by pixel on a 0.1 grid of offsets over
/// [-3, 3]^2, within 0.01.
#[test]
fn fit_on_the_oracle_reaches_the_best_feasible_point() {
    use risk_training::synth::oracle::HiddenCdf;
    use risk_training::synth::stats::Scene;
    use risk_training::synth::{Generator, SynthConfig};
    let cfg = SynthConfig {
        width: 256,
        height: 256,
        seed: 31,
        generator: Generator::V2,
        ..SynthConfig::default()
    };
    let scene = Scene::generate(&cfg, &HiddenCdf::new(Generator::V2));
    let (probs, labels) = (&scene.oracle, &scene.block.labels);
    let targets = Targets::default();
    let fit = decision::fit(probs, labels, &targets).unwrap();
    let mut best: Option<f64> = None;
    for i in -30..=30 {
        for j in -30..=30 {
            let rule = Decision::new(i as f64 / 10.0, j as f64 / 10.0);
            let s = decision::Scores::of(&decision::confusion(&rule, probs, labels));
            if s.meets(&targets) && best.is_none_or(|b| s.kappa > b) {
                best = Some(s.kappa);
            }
        }
    }
    let best = best.expect("the oracle reaches the targets on a 0.1 grid");
    println!(
        "fit {:?}: kappa {} (exhaustive best {best})",
        fit.decision.offsets, fit.chosen.kappa
    );
    assert!(fit.feasible, "{fit:?}");
    assert!(
        fit.chosen.kappa >= best - 0.01,
        "fit {} vs exhaustive {best}",
        fit.chosen.kappa
    );
}
