//! Mixed precision through `risk_training::amp` on the CPU (bfloat16 autocast, what this
//! machine can run): convolutions run in bfloat16 inside the region and float32 outside,
//! the state is restored after the region (also after a panic in it), the B0 model's loss
//! under autocast stays within bfloat16 rounding of the float32 loss, and the gradients
//! land in the float32 weights.

use risk_training::amp;
use risk_training::loss::{LossConfig, risk_loss};
use risk_training::model::{RiskUNet, UNetConfig};
use tch::{Device, Kind, Tensor, nn};

fn conv_kind() -> Kind {
    let x = Tensor::ones([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    let w = Tensor::ones([4, 3, 3, 3], (Kind::Float, Device::Cpu));
    x.conv2d(&w, None::<Tensor>, [1, 1], [1, 1], [1, 1], 1).kind()
}

#[test]
fn bf16_autocast_on_the_cpu() {
    let before = amp::dtype(Device::Cpu).unwrap();
    assert_eq!(conv_kind(), Kind::Float);
    let bf16 = Some((Device::Cpu, Kind::BFloat16));
    assert_eq!(amp::autocast(bf16, conv_kind).unwrap(), Kind::BFloat16);
    // Nested: the inner region ends, the outer one is still on.
    let nested = amp::autocast(bf16, || (amp::autocast(bf16, conv_kind).unwrap(), conv_kind())).unwrap();
    assert_eq!(nested, (Kind::BFloat16, Kind::BFloat16));
    assert_eq!(conv_kind(), Kind::Float);
    assert_eq!(amp::dtype(Device::Cpu).unwrap(), before);
    assert_eq!(amp::autocast(None, conv_kind).unwrap(), Kind::Float);
    let panicked = std::panic::catch_unwind(|| amp::autocast(bf16, || panic!("inside")));
    assert!(panicked.is_err());
    assert_eq!(conv_kind(), Kind::Float, "a panic leaves autocast off");
    // Only float16 and bfloat16 are autocast dtypes.
    assert!(amp::autocast(Some((Device::Cpu, Kind::Double)), conv_kind).is_err());
}

#[test]
fn b0_loss_under_bf16_matches_fp32() {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = RiskUNet::new(&vs.root(), &UNetConfig::b0());
    let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(3, [2, 64, 64], (Kind::Int64, Device::Cpu));
    let cfg = LossConfig::default();
    let fp32 = tch::no_grad(|| {
        risk_loss(&model.forward_t(&x, false), &y, &cfg)
            .total
            .double_value(&[])
    });
    let bf16 = Some((Device::Cpu, Kind::BFloat16));
    let out = amp::autocast(bf16, || model.forward_t(&x, false)).unwrap();
    assert_eq!(out.class_logits.kind(), Kind::BFloat16);
    let loss = amp::autocast(bf16, || risk_loss(&out, &y, &cfg).total).unwrap();
    assert_eq!(loss.kind(), Kind::Float, "the loss is computed in float32");
    let mixed = loss.double_value(&[]);
    // bfloat16 keeps 8 significant bits (relative rounding 2^-8 = 0.4% per op).
    let rel = (mixed - fp32).abs() / fp32;
    assert!(rel < 0.02, "loss fp32 {fp32} vs bf16 {mixed}: relative {rel}");
    loss.backward();
    let stem = &vs.variables()["encoder._conv_stem.weight"];
    assert_eq!(stem.kind(), Kind::Float);
    let grad = stem.grad();
    assert_eq!(grad.kind(), Kind::Float);
    assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
}
