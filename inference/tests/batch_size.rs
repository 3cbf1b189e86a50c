//! The batch size (tiles per model run, `--batch N|auto`) changes how tiles are grouped,
//! never the result: the shipped model over a fixture at batch 1, 4 (a short last batch)
//! and `auto` gives the same class map, and the same probabilities up to one float16 step
//! (2^-11) in under 0.1% of the values: the model computes in float16, and ONNX Runtime's
//! kernels round a few values differently for another batch shape. `auto` reports a
//! probed power of two within its cap, and a too small memory budget caps it at 1.

mod common;

use std::path::Path;

use common::{fixture, read_all, root};
use risk_inference::autobatch::BatchSize;
use risk_inference::pipeline::{self, Outputs, ProbsType, RunOptions, RunReport};
use risk_inference::predictor::Predictor;
use risk_inference::session::{Device, Model, SessionOptions};

fn run(
    predictor: &mut Predictor,
    dir: &Path,
    tag: &str,
    batch: BatchSize,
    budget: usize,
) -> (RunReport, Vec<u8>, Vec<f32>) {
    let (classes, probs) = (dir.join(format!("{tag}.tif")), dir.join(format!("{tag}_p.tif")));
    let outputs = Outputs {
        classes: Some(classes.clone()),
        probs: Some((probs.clone(), ProbsType::F32)),
        uncertainty: None,
    };
    let opts = RunOptions {
        tile: Some(128),
        overlap: Some(32),
        batch,
        memory_budget: budget,
        ..RunOptions::default()
    };
    let report = pipeline::run(
        predictor,
        &fixture("scene512.tif"),
        &outputs,
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    (report, read_all::<u8>(&classes), read_all::<f32>(&probs))
}

#[test]
fn batch_size_never_changes_the_result() {
    let options = SessionOptions {
        device: Device::Cpu,
        threads: 1,
        ..SessionOptions::default()
    };
    let model = Model::load(root().join("models/default.onnx"), &options).unwrap();
    let mut predictor = Predictor::from(model);
    let dir = tempfile::tempdir().unwrap();
    let (one, classes, probs) = run(&mut predictor, dir.path(), "b1", BatchSize::Tiles(1), 2 << 30);
    assert_eq!(one.batch, 1);
    // 512 px in 128 px tiles with 32 px overlap: ceil((512 - 32) / 96) = 5 per axis, 25
    // tiles, so batch 4 ends short.
    assert_eq!(one.tiles, 25);
    let (four, c4, p4) = run(&mut predictor, dir.path(), "b4", BatchSize::Tiles(4), 2 << 30);
    assert_eq!(four.batch, 4);
    let (auto, ca, pa) = run(&mut predictor, dir.path(), "auto", BatchSize::Auto, 2 << 30);
    assert!(
        auto.batch.is_power_of_two() && auto.batch <= 64,
        "auto chose {}",
        auto.batch
    );
    for (tag, c, p) in [("batch 4", &c4, &p4), ("auto", &ca, &pa)] {
        assert_eq!(c, &classes, "{tag}: class map differs from batch 1");
        let max = p
            .iter()
            .zip(&probs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{tag}: max |probability difference| to batch 1: {max:e}");
        let differ = p.iter().zip(&probs).filter(|(a, b)| a != b).count();
        assert!(
            max <= 1.0 / 2048.0 && differ * 1000 < probs.len(),
            "{tag}: {differ} probabilities differ from batch 1, by up to {max}"
        );
    }
    // 3 bands at 128x128: 12 floats x 4 bytes x 16384 px = 768 KiB per tile; a 2 MiB
    // budget leaves a quarter, 512 KiB, for batches: capped at 1 (a new predictor, since
    // the choice is remembered per tile shape).
    let model = Model::load(root().join("models/default.onnx"), &options).unwrap();
    let mut small = Predictor::from(model);
    let (capped, cc, _) = run(&mut small, dir.path(), "capped", BatchSize::Auto, 2 << 20);
    assert_eq!(capped.batch, 1);
    assert_eq!(cc, classes);
}
