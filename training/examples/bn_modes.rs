//! Validation metrics of a checkpoint with BatchNorm in evaluation mode (running
//! statistics, what the ONNX export ships) and in training mode (each tile's own batch
//! statistics). A large gap means the running statistics lag the weights: the diagnosis
//! of the edge run whose validation kappa stayed at chance (model.bn_momentum).
//!
//!     cargo run --release -p risk-training --example bn_modes -- CONFIG CHECKPOINT

use anyhow::Context;
use risk_inference::metrics::ConfusionMatrix;
use risk_training::config::TrainConfig;
use risk_training::model::RiskUNet;
use risk_training::train::Dataset;
use tch::{Device, Kind, Tensor, nn};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, config, checkpoint] = args.as_slice() else {
        anyhow::bail!("usage: bn_modes CONFIG CHECKPOINT");
    };
    let cfg = TrainConfig::from_yaml(std::path::Path::new(config))?;
    let data = Dataset::prepare(&cfg, &mut |l| eprintln!("{l}"))?;
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = RiskUNet::new(&vs.root(), &cfg.unet());
    vs.load(checkpoint)
        .with_context(|| format!("loading {checkpoint}"))?;
    for (name, train) in [("eval-mode BN ", false), ("train-mode BN", true)] {
        let mut matrix = ConfusionMatrix::new();
        for &i in &data.split.val {
            let tile = data.read_tile(i)?;
            let mut image = tile.image.clone();
            data.norm.apply(&mut image);
            let side = tile.side as i64;
            let xs = Tensor::from_slice(&image).view([1, -1, side, side]); // (1, C, T, T)
            // Train mode also drops head channels (Dropout2d); the BN difference dominates.
            let pred = tch::no_grad(|| model.forward_t(&xs, train).class_logits.argmax(1, false));
            let pred = Vec::<u8>::try_from(pred.to_kind(Kind::Uint8).flatten(0, -1))?;
            matrix.add(&tile.labels, &pred)?;
        }
        println!(
            "{name}: kappa {:.4}, class-1 precision {:.3}, class-2 recall {:.3}, rho {:.4}",
            matrix.cohen_kappa().unwrap_or(f64::NAN),
            matrix.class_metrics(1).precision,
            matrix.class_metrics(2).recall,
            matrix.spearman_rho().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}
