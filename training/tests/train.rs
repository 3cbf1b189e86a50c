//! config.yaml, tile grid, spatial split, and `train::fit` with `--resume` on the committed
//! 256 x 256 uint16 fixture (B0 on 64 px tiles, 8 training tiles: seconds on a CPU).

mod common;

use std::path::{Path, PathBuf};

use risk_inference::raster::Window;
use risk_training::config::{EncoderName, InvalidConfig, Precision, Schedule, TrainConfig};
use risk_training::data::split::split;
use risk_training::data::tiles::grid;
use risk_training::train::{self, TrainState};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

#[test]
fn shipped_config_holds_spec_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let text = std::fs::read_to_string(&path).expect("training/config.yaml");
    let cfg = TrainConfig::from_yaml_str(&text).expect("parse");
    let mut expected = TrainConfig::default();
    expected.data.image = "../out/scene2048_s1.tif".into();
    expected.data.labels = "../out/scene2048_s1_labels.tif".into();
    expected.out = "../out/runs/b4".into();
    assert_eq!(cfg, expected);
    // docs/spec.md, "Training".
    assert_eq!(
        (cfg.loss.gamma, cfg.loss.alpha.clone(), cfg.loss.coral_weight),
        (2.5, vec![0.4, 2.5, 2.0], 0.3)
    );
    assert_eq!(
        (cfg.optim.lr, cfg.optim.epochs, cfg.optim.patience),
        (1e-4, 60, 15)
    );
    assert_eq!(
        (cfg.sampling.k, cfg.sampling.seed, cfg.sampling.smote_target),
        (5, 42, 0.075)
    );
    assert_eq!(
        (cfg.model.encoder, cfg.optim.schedule, cfg.data.tile),
        (EncoderName::B4, Schedule::Cosine, 1024)
    );
}

#[test]
fn a_missing_config_is_one_message_naming_the_file() {
    let p = Path::new("/nonexistent/config.yaml");
    let line = format!(
        "{:#}",
        anyhow::Error::from(TrainConfig::from_yaml(p).unwrap_err())
    );
    assert!(
        line.starts_with("cannot read config /nonexistent/config.yaml: "),
        "{line}"
    );
    assert_eq!(line.matches("No such file or directory").count(), 1, "{line}");
}

#[test]
fn unknown_or_invalid_keys_are_errors() {
    let err = TrainConfig::from_yaml_str("optim:\n  learning_rate: 0.1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `learning_rate`"), "{err}");
    let err = TrainConfig::from_yaml_str("model:\n  encoder: b7\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("b7"), "{err}");
    let mut cfg =
        TrainConfig::from_yaml_str("data:\n  image: a.tif\n  labels: b.tif\n  tile: 100\n").unwrap();
    assert_eq!(cfg.validate(), Err(InvalidConfig::Tile(100)));
    assert!(cfg.validate().unwrap_err().to_string().contains("multiple of 32"));
    cfg.data.tile = 256;
    cfg.loss.alpha = vec![1.0, 2.0];
    assert!(
        cfg.validate()
            .unwrap_err()
            .to_string()
            .contains("loss.alpha needs 3")
    );
    cfg.loss.alpha = vec![1.0, 2.0, 3.0];
    cfg.compute.device = "gpu0".into();
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.starts_with("compute.device must be auto, cpu, cuda or cuda:N"),
        "{err}"
    );
    let err = TrainConfig::from_yaml_str("compute:\n  precision: bf8\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bf8"), "{err}");
}

#[test]
fn grid_covers_the_raster_with_edge_tiles_moved_back() {
    let g = grid(700, 433, 256, 256);
    let xs: Vec<usize> = g.iter().filter(|w| w.y == 0).map(|w| w.x).collect();
    let ys: Vec<usize> = g.iter().filter(|w| w.x == 0).map(|w| w.y).collect();
    assert_eq!(xs, vec![0, 256, 444]);
    assert_eq!(ys, vec![0, 177]);
    assert!(grid(200, 433, 256, 256).is_empty());
}

#[test]
fn spatial_split_never_shares_a_block() {
    // 8 x 8 tiles of 64 px, blocks of 2 x 2 tiles, plus overlapping tiles (stride 32).
    for stride in [64, 32] {
        let tiles = grid(512, 512, 64, stride);
        let s = split(&tiles, 128, 0.25, 0.25, 42);
        assert_eq!(s, split(&tiles, 128, 0.25, 0.25, 42), "deterministic for a seed");
        let total = s.train.len() + s.val.len() + s.test.len() + s.dropped.len();
        assert_eq!(total, tiles.len());
        let block_of = |w: &Window| (w.x / 128, w.y / 128);
        for (a, b) in [(&s.train, &s.val), (&s.train, &s.test), (&s.val, &s.test)] {
            for &i in a.iter() {
                for &j in b.iter() {
                    assert!(
                        tiles[i].intersect(&tiles[j]).is_none(),
                        "tiles {i} and {j} overlap across splits"
                    );
                    assert_ne!(block_of(&tiles[i]), block_of(&tiles[j]));
                }
            }
        }
        // 16 blocks: 4 validation, 4 test, 8 training.
        if stride == 64 {
            assert_eq!(
                (s.train.len(), s.val.len(), s.test.len(), s.dropped.len()),
                (32, 16, 16, 0)
            );
        } else {
            assert!(!s.dropped.is_empty());
        }
    }
    assert_ne!(
        split(&grid(512, 512, 64, 64), 128, 0.25, 0.25, 1).val,
        split(&grid(512, 512, 64, 64), 128, 0.25, 0.25, 42).val
    );
}

fn small_config(out: &Path, epochs: usize) -> TrainConfig {
    let mut cfg = TrainConfig::default();
    cfg.data.image = fixture("scene256_nir_u16.tif");
    cfg.data.labels = fixture("scene256_nir_u16_labels.tif");
    cfg.data.scale = 10_000.0; // reflectance x 10000
    cfg.data.tile = 64;
    cfg.data.block_tiles = 2;
    cfg.data.val_fraction = 0.25;
    cfg.data.test_fraction = 0.25;
    cfg.model.encoder = EncoderName::B0;
    cfg.optim.epochs = epochs;
    cfg.optim.batch_size = 4;
    cfg.optim.lr = 1e-3;
    cfg.out = out.to_path_buf();
    cfg.validate().expect("valid config");
    cfg
}

#[test]
fn fit_writes_checkpoints_and_resume_continues() {
    let _rng = common::rng_lock();
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = Vec::new();
    let first = train::fit(&small_config(dir.path(), 1), false, &mut |l| lines.push(l)).expect("fit 1 epoch");
    assert_eq!(first.state.epochs_done, 1);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("train: ") && l.contains("tiles")),
        "{lines:?}"
    );
    for f in [
        "last.safetensors",
        "last.optim.safetensors",
        "best.safetensors",
        "best.optim.safetensors",
        "state.json",
        "log.csv",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    let weights_1 = tch::Tensor::read_safetensors(dir.path().join("last.safetensors")).unwrap();
    // Resume with a longer schedule: starts at epoch 2, keeps the first epoch's history.
    let second = train::fit(&small_config(dir.path(), 2), true, &mut |l| lines.push(l)).expect("resume");
    assert!(
        lines.iter().any(|l| l.contains("resumed after epoch 1")),
        "{lines:?}"
    );
    assert_eq!(second.state.epochs_done, 2);
    assert_eq!(
        second.state.history.iter().map(|h| h.epoch).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(second.state.history[0], first.state.history[0]);
    let state: TrainState =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(state.epochs_done, 2);
    let csv = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    // The second epoch trained on: the conv stem moved.
    let weights_2 = tch::Tensor::read_safetensors(dir.path().join("last.safetensors")).unwrap();
    let stem = |w: &[(String, tch::Tensor)]| {
        w.iter()
            .find(|(n, _)| n == "encoder._conv_stem.weight")
            .map(|(_, t)| t.copy())
            .unwrap()
    };
    assert!(!stem(&weights_1).equal(&stem(&weights_2)));
    let h = &second.state.history[1];
    assert!(h.val_loss.is_finite() && h.train_loss.is_finite());
    assert!(h.val_kappa.is_some_and(|k| (-1.0..=1.0).contains(&k)));

    // The optimiser state was saved and restored: 8 training tiles in batches of 4 are
    // 2 AdamW steps per epoch, so the state after the resumed epoch says step 4.
    let step = |dir: &Path| {
        tch::Tensor::read_safetensors(dir.join("last.optim.safetensors"))
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == "step")
            .map(|(_, t)| t.int64_value(&[0]))
            .unwrap()
    };
    assert_eq!(step(dir.path()), 4);
    // And the resumed run ends where an uninterrupted two-epoch run ends (same batches,
    // augmentation, dropout draws, moments): weights equal up to float reassociation.
    let straight = tempfile::tempdir().expect("tempdir");
    let uninterrupted =
        train::fit(&small_config(straight.path(), 2), false, &mut |_| {}).expect("fit 2 epochs");
    assert_eq!(step(straight.path()), 4);
    let weights_3 = tch::Tensor::read_safetensors(straight.path().join("last.safetensors")).unwrap();
    let mut worst = 0f64;
    for (name, a) in &weights_2 {
        let (_, b) = weights_3.iter().find(|(n, _)| n == name).expect("same variables");
        worst = worst.max((a - b).abs().max().double_value(&[]));
    }
    assert!(
        worst < 1e-5,
        "resumed and uninterrupted weights differ by {worst}"
    );
    let (r, u) = (&second.state.history[1], &uninterrupted.state.history[1]);
    assert!((r.val_loss - u.val_loss).abs() < 1e-4, "{r:?} vs {u:?}");
}

#[test]
fn fit_in_bf16_on_the_cpu() {
    let _rng = common::rng_lock();
    tch::set_num_threads(2);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = small_config(dir.path(), 1);
    cfg.compute.precision = Precision::Bf16;
    let mut lines = Vec::new();
    let summary = train::fit(&cfg, false, &mut |l| lines.push(l)).expect("fit 1 epoch in bf16");
    assert!(lines.iter().any(|l| l.contains("autocast bfloat16")), "{lines:?}");
    let h = &summary.state.history[0];
    assert!(h.train_loss.is_finite() && h.val_loss.is_finite(), "{h:?}");
    // Weights stay float32 under mixed precision.
    let weights = tch::Tensor::read_safetensors(dir.path().join("last.safetensors")).unwrap();
    assert!(weights.iter().all(|(_, t)| t.kind() != tch::Kind::BFloat16));
}

#[test]
fn extra_scenes_go_wholly_to_their_split() {
    // Train on all of scene512 (no block split), validate on scene700x433, another
    // scene (seed) the model never trains on.
    let mut cfg = TrainConfig::default();
    cfg.data.image = fixture("scene512.tif");
    cfg.data.labels = fixture("scene512_labels.tif");
    cfg.data.tile = 128;
    cfg.data.val_fraction = 0.0;
    cfg.data.test_fraction = 0.0;
    let text = format!(
        "image: {}\nlabels: {}\nsplit: val\n",
        fixture("scene700x433.tif").display(),
        fixture("scene700x433_labels.tif").display()
    );
    cfg.data.scenes = vec![serde_norway::from_str(&text).unwrap()];
    cfg.validate().unwrap();
    let mut lines = Vec::new();
    let data = train::Dataset::prepare(&cfg, &mut |l| lines.push(l)).unwrap();
    let primary = grid(512, 512, 128, 128).len();
    let other = grid(700, 433, 128, 128).len(); // 6 x 4 tiles, every one labelled enough
    assert_eq!(data.windows.len(), primary + other, "{lines:?}");
    assert_eq!(data.split.train, (0..primary).collect::<Vec<_>>());
    assert_eq!(data.split.val, (primary..primary + other).collect::<Vec<_>>());
    assert!(data.split.test.is_empty());
    assert!(data.split.val.iter().all(|&i| data.windows[i].0 == 1));
    // A validation tile is read from its own scene.
    let (_, w) = data.windows[primary + other - 1];
    assert_eq!((w.x, w.y), (700 - 128, 433 - 128));
    let tile = data.read_tile(primary + other - 1).unwrap();
    let other_src = risk_training::data::tiles::TileSource::open(
        &fixture("scene700x433.tif"),
        &fixture("scene700x433_labels.tif"),
        &[1, 2, 3],
        255.0,
    )
    .unwrap();
    assert_eq!(tile, other_src.read(w).unwrap());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("scene700x433.tif: 24 tiles to val")),
        "{lines:?}"
    );
}

#[test]
fn scenes_in_yaml_resolve_paths_and_reject_unknown_splits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let yaml = "data:\n  image: a.tif\n  labels: a_l.tif\n  scenes:\n    - {image: b.tif, labels: b_l.tif, split: test}\n";
    std::fs::write(&path, yaml).unwrap();
    let cfg = TrainConfig::from_yaml(&path).unwrap();
    assert_eq!(cfg.data.scenes.len(), 1);
    assert_eq!(cfg.data.scenes[0].image, dir.path().join("b.tif"));
    assert_eq!(cfg.data.scenes[0].labels, dir.path().join("b_l.tif"));
    assert_eq!(cfg.data.scenes[0].split, risk_training::data::split::Split::Test);
    std::fs::write(&path, yaml.replace("split: test", "split: validation")).unwrap();
    let err = TrainConfig::from_yaml(&path).unwrap_err().to_string();
    assert!(err.contains("c.yaml") && err.contains("validation"), "{err}");
}

#[test]
fn nodata_holes_in_a_tile_take_their_nearest_valid_values() {
    // scene512's top-left tile holds the swath-edge triangle (nodata: image 0, label 255).
    let src = risk_training::data::tiles::TileSource::open(
        &fixture("scene512.tif"),
        &fixture("scene512_labels.tif"),
        &[1, 2, 3],
        255.0,
    )
    .unwrap();
    let w = Window::new(0, 0, 128, 128);
    let tile = src.read(w).unwrap();
    let raster = risk_inference::raster::InputRaster::open(fixture("scene512.tif")).unwrap();
    let mut raw = vec![0u8; 3 * w.pixels()];
    raster.read_bands(&[1, 2, 3], w, &mut raw).unwrap();
    let n = w.pixels();
    let hole = |i: usize| (0..3).all(|b| raw[b * n + i] == 0);
    let holes = (0..n).filter(|&i| hole(i)).count();
    assert!(holes > 100, "the tile holds {holes} nodata pixels");
    let mut next_to_valid = 0;
    let inv = (1.0f64 / 255.0) as f32; // as TileSource scales
    for i in 0..n {
        let px: Vec<f32> = (0..3).map(|b| tile.image[b * n + i]).collect();
        if !hole(i) {
            // Valid pixels are the raw values x 1/255.
            let want: Vec<f32> = (0..3).map(|b| raw[b * n + i] as f32 * inv).collect();
            assert_eq!(px, want);
            continue;
        }
        assert!(px.iter().any(|&v| v > 0.0), "hole pixel {i} is still black");
        // A hole pixel beside valid ones holds the mean of those (ring 1 of the fill).
        let (x, y) = (i % 128, i / 128);
        let mut nbrs = Vec::new();
        if x > 0 {
            nbrs.push(i - 1)
        }
        if x < 127 {
            nbrs.push(i + 1)
        }
        if y > 0 {
            nbrs.push(i - 128)
        }
        if y < 127 {
            nbrs.push(i + 128)
        }
        let valid: Vec<usize> = nbrs.into_iter().filter(|&j| !hole(j)).collect();
        if !valid.is_empty() {
            next_to_valid += 1;
            for (b, &got) in px.iter().enumerate() {
                let sum: f64 = valid.iter().map(|&j| (raw[b * n + j] as f32 * inv) as f64).sum();
                let want = (sum / valid.len() as f64) as f32;
                assert_eq!(got, want, "hole pixel ({x}, {y}) band {b}");
            }
        }
        assert_eq!(tile.labels[i], 255, "a hole pixel keeps its nodata label");
    }
    assert!(next_to_valid > 10);
}

#[test]
fn an_error_into_a_closed_stderr_is_exit_1_not_a_panic() {
    // eprintln! panics on a broken pipe (exit 101); risk-train's own code must come out.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_risk-train"))
        .args(["fit", "/nonexistent/config.yaml"])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}
