//! Model structure checks that need no Python: the static "same" pads of the stride-2
//! convolutions (the table in `docs/spec.md`, "Model", read from smp 0.6.0), block counts
//! and skip channels of `docs/spec.md` ("Model"), head shapes, and the weight-import error.

use risk_training::model::{
    EncoderConfig, ParameterCounts, RiskUNet, StaticPad, UNetConfig, WeightError, import_tensors,
};
use tch::{Device, Kind, Tensor, nn};

fn pad(left: i64, right: i64) -> StaticPad {
    StaticPad {
        left,
        right,
        top: left,
        bottom: right,
    }
}

/// Pads of the stride-2 convolutions: stem, then the first block of stages 2, 3, 4, 6.
fn stride2_pads(cfg: &EncoderConfig) -> Vec<StaticPad> {
    let mut pads = vec![cfg.stem_pad()];
    pads.extend(cfg.blocks().iter().filter(|b| b.stride == 2).map(|b| b.pad));
    pads
}

#[test]
fn static_same_pads_match_smp_table() {
    // docs/spec.md, "Model" (the pads table): b0 (224) and b4 (380).
    assert_eq!(
        stride2_pads(&EncoderConfig::b0()),
        vec![pad(0, 1), pad(0, 1), pad(1, 2), pad(0, 1), pad(1, 2)]
    );
    assert_eq!(
        stride2_pads(&EncoderConfig::b4()),
        vec![pad(0, 1), pad(0, 1), pad(2, 2), pad(0, 1), pad(1, 2)]
    );
    // The odd one is B4's `_blocks.6._depthwise_conv` (5x5, stride 2).
    let b4 = EncoderConfig::b4().blocks();
    assert_eq!((b4[6].kernel, b4[6].stride, b4[6].pad), (5, 2, pad(2, 2)));
    // Stride-1 convolutions pad (k - 1) / 2 on each side.
    assert!(
        b4.iter()
            .filter(|b| b.stride == 1)
            .all(|b| b.pad == pad((b.kernel - 1) / 2, (b.kernel - 1) / 2))
    );
}

#[test]
fn block_layout_follows_spec() {
    let b4 = EncoderConfig::b4();
    let blocks = b4.blocks();
    assert_eq!(blocks.len(), 32);
    assert_eq!(b4.stem_channels(), 48);
    assert_eq!(b4.skip_channels(3), [3, 48, 32, 56, 160, 448]);
    // Stage 1 has expand ratio 1; SE squeezes to a quarter of the block input.
    assert_eq!((blocks[0].expand_ratio, blocks[0].se_channels), (1, 12));
    assert_eq!(
        (blocks[2].input, blocks[2].expanded(), blocks[2].se_channels),
        (24, 144, 6)
    );
    // Drop-connect grows linearly to 0.2 * 31 / 32.
    assert!((blocks[31].drop_connect - 0.2 * 31.0 / 32.0).abs() < 1e-12);
    let b0 = EncoderConfig::b0();
    assert_eq!(b0.blocks().len(), 16);
    assert_eq!(b0.skip_channels(3), [3, 32, 24, 40, 112, 320]);
}

#[test]
fn forward_shapes_of_both_heads() {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = RiskUNet::new(&vs.root(), &UNetConfig::b0());
    let xs = Tensor::randn([2, 3, 64, 96], (Kind::Float, Device::Cpu));
    let out = tch::no_grad(|| model.forward_t(&xs, false));
    assert_eq!(out.class_logits.size(), [2, 3, 64, 96]);
    assert_eq!(out.ordinal_logits.size(), [2, 2, 64, 96]);
    // CORAL: both ordinal logits share one weight, so they differ by the bias gap (0.5).
    let gap = (&out.ordinal_logits.get(0).get(0) - &out.ordinal_logits.get(0).get(1)).abs();
    assert!((gap.max().double_value(&[]) - 0.5).abs() < 1e-6);
    assert!((gap.min().double_value(&[]) - 0.5).abs() < 1e-6);
    let features = model.features_t(&xs, false);
    let shapes: Vec<Vec<i64>> = features.iter().map(|f| f.size()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![2, 3, 64, 96],
            vec![2, 32, 32, 48],
            vec![2, 24, 16, 24],
            vec![2, 40, 8, 12],
            vec![2, 112, 4, 6],
            vec![2, 320, 2, 3],
        ]
    );
}

#[test]
fn attention_and_coral_parameters_are_counted_apart() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = RiskUNet::new(&vs.root(), &UNetConfig::b0());
    let c = ParameterCounts::of(&vs);
    // CBAM on 320 channels: MLP 320 -> 20 -> 320 with biases, 7x7 conv 2 -> 1 without.
    assert_eq!(c.attention, 320 * 20 + 20 + 20 * 320 + 320 + 2 * 49);
    // CORAL: one 1x1 weight over 8 channels plus 2 biases.
    assert_eq!(c.coral, 8 + 2);
    assert_eq!(c.other, 0);
}

#[test]
fn import_lists_missing_unexpected_and_misshaped_tensors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = RiskUNet::new(&vs.root(), &UNetConfig::b0().without_attention());
    let mut tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("coral."))
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    // A clean import succeeds and reports the CORAL head as left at its initialisation.
    let before = vs.variables()["encoder._conv_stem.weight"].copy();
    let changed: Vec<(String, Tensor)> = tensors
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                if n == "encoder._conv_stem.weight" {
                    t.ones_like()
                } else {
                    t.copy()
                },
            )
        })
        .collect();
    let report = import_tensors(&vs, changed, "mem").expect("a full state dict imports");
    assert_eq!(
        report.kept_init,
        vec!["coral.bias".to_string(), "coral.weight".to_string()]
    );
    let after = vs.variables()["encoder._conv_stem.weight"].copy();
    assert!(after.equal(&before.ones_like()));

    tensors.retain(|(n, _)| n != "decoder.blocks.0.conv1.0.weight");
    tensors.push((
        "decoder.blocks.9.conv1.0.weight".into(),
        Tensor::zeros([1], (Kind::Float, Device::Cpu)),
    ));
    tensors.push(("encoder._bn0.num_batches_tracked".into(), Tensor::from(3i64)));
    for (n, t) in tensors.iter_mut() {
        if n == "segmentation_head.0.weight" {
            *t = Tensor::zeros([3, 16, 3, 3], (Kind::Float, Device::Cpu));
        }
    }
    let err = import_tensors(&vs, tensors, "b4_weights.safetensors").unwrap_err();
    let WeightError::Mismatch { mismatch, .. } = &err else {
        panic!("expected a mismatch, got {err}");
    };
    assert_eq!(
        mismatch.missing,
        vec!["decoder.blocks.0.conv1.0.weight".to_string()]
    );
    assert_eq!(
        mismatch.unexpected,
        vec!["decoder.blocks.9.conv1.0.weight".to_string()]
    );
    assert_eq!(mismatch.mis_shaped.len(), 1);
    assert_eq!(mismatch.mis_shaped[0].model, vec![3, 8, 3, 3]);
    let msg = err.to_string();
    assert!(msg.contains("b4_weights.safetensors"), "{msg}");
    assert!(
        msg.contains("segmentation_head.0.weight (model [3, 8, 3, 3], file [3, 16, 3, 3])"),
        "{msg}"
    );
    // Nothing was copied by the failed import.
    assert!(vs.variables()["encoder._conv_stem.weight"].equal(&before.ones_like()));
}
