//! One training step timed, the Rust side of `bench/train_step.sh`: the same work as
//! `bench/reference/smp_ref.py train-step` (train mode, forward, cross-entropy on the class
//! logits, backward, AdamW lr 1e-3 weight decay 1e-2, on a fixed random batch; median after 2
//! warm-up steps), optionally with the full V2.5 step (CBAM + focal + 0.3 CORAL).
//!
//!     cargo run --release -p risk-training --example train_step -- \
//!         --encoder b0 --batch 4 --size 256 --steps 10 --threads 2 [--full]
//!
//! The last stdout line is JSON.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use risk_training::loss::{LossConfig, risk_loss};
use risk_training::model::{ParameterCounts, RiskUNet, UNetConfig};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

struct Args {
    encoder: String,
    batch: i64,
    size: i64,
    steps: usize,
    warmup: usize,
    threads: i32,
    full: bool,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        encoder: "b0".into(),
        batch: 4,
        size: 256,
        steps: 10,
        warmup: 2,
        threads: 2,
        full: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--full" {
            a.full = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--encoder" => a.encoder = value,
            "--batch" => a.batch = value.parse()?,
            "--size" => a.size = value.parse()?,
            "--steps" => a.steps = value.parse()?,
            "--warmup" => a.warmup = value.parse()?,
            "--threads" => a.threads = value.parse()?,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let a = parse()?;
    tch::set_num_threads(a.threads);
    tch::manual_seed(0);
    let cfg = match a.encoder.as_str() {
        "b0" => UNetConfig::b0(),
        "b4" => UNetConfig::b4(),
        other => bail!("unknown encoder {other} (b0 or b4)"),
    };
    let cfg = if a.full { cfg } else { cfg.without_attention() };
    let vs = nn::VarStore::new(Device::Cpu);
    let model = RiskUNet::new(&vs.root(), &cfg);
    let mut opt = nn::AdamW {
        wd: 1e-2,
        ..Default::default()
    }
    .build(&vs, 1e-3)?;
    let xs = Tensor::randn([a.batch, 3, a.size, a.size], (Kind::Float, Device::Cpu));
    let ys = Tensor::randint(3, [a.batch, a.size, a.size], (Kind::Int64, Device::Cpu));
    let loss_cfg = LossConfig::default();
    let (mut times, mut losses) = (Vec::new(), Vec::new());
    for i in 0..a.warmup + a.steps {
        let t0 = Instant::now();
        opt.zero_grad();
        let out = model.forward_t(&xs, true);
        let loss = if a.full {
            risk_loss(&out, &ys, &loss_cfg).total
        } else {
            out.class_logits
                .cross_entropy_loss::<Tensor>(&ys, None, tch::Reduction::Mean, -100, 0.0)
        };
        loss.backward();
        opt.step();
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        losses.push(loss.double_value(&[]));
        eprintln!("step {i}: {ms:.1} ms, loss {:.4}", losses[i]);
        if i >= a.warmup {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    let median = if times.len() % 2 == 1 {
        times[times.len() / 2]
    } else {
        0.5 * (times[times.len() / 2 - 1] + times[times.len() / 2])
    };
    let json = serde_json::json!({
        "cmd": "train-step", "impl": "rust-tch", "encoder": a.encoder, "full": a.full,
        "batch": a.batch, "size": a.size, "threads": a.threads, "steps": a.steps,
        "median_ms": (median * 10.0).round() / 10.0, "min_ms": (times[0] * 10.0).round() / 10.0,
        "max_ms": (times[times.len() - 1] * 10.0).round() / 10.0,
        "first_loss": losses[0], "last_loss": losses[losses.len() - 1],
        "params": ParameterCounts::of(&vs).total(),
    });
    println!("{json}");
    Ok(())
}
