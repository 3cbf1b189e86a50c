//! Maps a [`RiskUNet`]'s variable store onto an ONNX graph, layer by layer, following the
//! model's configuration (the same walk as `RiskUNet::forward_t` in inference mode):
//! encoder (static pads, BatchNorm folded, swish, SE), CBAM, decoder (nearest x2, concat,
//! conv-BN-ReLU), class head + Softmax -> `probs`, CORAL head + Sigmoid -> `ordinal`.
//! Dropout is the identity at inference and is not emitted.

use std::collections::HashMap;

use tch::{Kind, Tensor, nn};

use super::OnnxError;
use super::writer::{BatchNormParams, ConvWeights, GraphWriter, Pads, fold_batch_norm};
use crate::model::encoder::BN_EPS as ENCODER_BN_EPS;
use crate::model::unet::DEEPEST_STRIDE;
use crate::model::{StaticPad, UNetConfig};

/// BatchNorm epsilon of the decoder (PyTorch's default).
const DECODER_BN_EPS: f64 = 1e-5;

struct Vars(HashMap<String, Tensor>);

impl Vars {
    fn get(&self, name: &str) -> Result<(Vec<f32>, Vec<i64>), OnnxError> {
        let t = self
            .0
            .get(name)
            .ok_or_else(|| OnnxError::MissingVariable(name.into()))?;
        let flat = t
            .to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .contiguous()
            .view([-1]);
        let data = Vec::<f32>::try_from(&flat).map_err(|e| OnnxError::Tensor(e.to_string()))?;
        Ok((data, t.size()))
    }

    fn conv(&self, path: &str, bias: bool) -> Result<ConvWeights, OnnxError> {
        let (weight, shape) = self.get(&format!("{path}.weight"))?;
        let shape: [i64; 4] = shape
            .try_into()
            .map_err(|_| OnnxError::Tensor(format!("{path}.weight is not 4-D")))?;
        let bias = if bias {
            Some(self.get(&format!("{path}.bias"))?.0)
        } else {
            None
        };
        Ok(ConvWeights { weight, shape, bias })
    }

    fn bn(&self, path: &str, eps: f64) -> Result<BatchNormParams, OnnxError> {
        Ok(BatchNormParams {
            gamma: self.get(&format!("{path}.weight"))?.0,
            beta: self.get(&format!("{path}.bias"))?.0,
            mean: self.get(&format!("{path}.running_mean"))?.0,
            var: self.get(&format!("{path}.running_var"))?.0,
            eps,
        })
    }
}

fn pads(p: StaticPad) -> Pads {
    [p.top, p.left, p.bottom, p.right]
}

/// Conv (no bias) + BatchNorm folded into one Conv.
#[allow(clippy::too_many_arguments)]
fn conv_bn(
    g: &mut GraphWriter,
    v: &Vars,
    conv: &str,
    bn: &str,
    eps: f64,
    x: &str,
    stride: i64,
    groups: i64,
    p: Pads,
) -> Result<String, OnnxError> {
    let folded = fold_batch_norm(&v.conv(conv, false)?, &v.bn(bn, eps)?);
    Ok(g.conv(conv, x, &folded, stride, groups, p))
}

/// Squeeze and excitation: pool, 1x1 reduce, swish, 1x1 expand, sigmoid gate.
fn se_block(g: &mut GraphWriter, v: &Vars, block: &str, x: &str) -> Result<String, OnnxError> {
    let pooled = g.global_avg_pool(block, x);
    let reduce = format!("{block}._se_reduce");
    let r = g.conv(&reduce, &pooled, &v.conv(&reduce, true)?, 1, 1, [0; 4]);
    let r = g.swish(block, &r);
    let expand = format!("{block}._se_expand");
    let e = g.conv(&expand, &r, &v.conv(&expand, true)?, 1, 1, [0; 4]);
    let gate = g.sigmoid(block, &e);
    Ok(g.mul(block, &gate, x))
}

/// The encoder's six scales (input first), as ONNX value names.
fn encoder(g: &mut GraphWriter, v: &Vars, cfg: &UNetConfig, x: &str) -> Result<Vec<String>, OnnxError> {
    let enc = &cfg.encoder;
    let eps = ENCODER_BN_EPS;
    let mut features = vec![x.to_string()];
    let stem = conv_bn(
        g,
        v,
        "encoder._conv_stem",
        "encoder._bn0",
        eps,
        x,
        2,
        1,
        pads(enc.stem_pad()),
    )?;
    let mut h = g.swish("encoder._conv_stem", &stem);
    features.push(h.clone());
    for b in enc.blocks() {
        let p = format!("encoder._blocks.{}", b.index);
        let mut y = h.clone();
        if b.expand_ratio != 1 {
            let c = conv_bn(
                g,
                v,
                &format!("{p}._expand_conv"),
                &format!("{p}._bn0"),
                eps,
                &y,
                1,
                1,
                [0; 4],
            )?;
            y = g.swish(&p, &c);
        }
        let dw = format!("{p}._depthwise_conv");
        let c = conv_bn(
            g,
            v,
            &dw,
            &format!("{p}._bn1"),
            eps,
            &y,
            b.stride,
            b.expanded(),
            pads(b.pad),
        )?;
        y = g.swish(&p, &c);
        y = se_block(g, v, &p, &y)?;
        y = conv_bn(
            g,
            v,
            &format!("{p}._project_conv"),
            &format!("{p}._bn2"),
            eps,
            &y,
            1,
            1,
            [0; 4],
        )?;
        if b.has_skip() {
            y = g.add(&p, &y, &h);
        }
        h = y;
        if enc.out_indexes.contains(&b.index) {
            features.push(h.clone());
        }
    }
    Ok(features)
}

/// CBAM: channel attention (shared MLP over avg and max pools, over the whole map or
/// over windows of `window` cells) then spatial attention.
fn cbam(g: &mut GraphWriter, v: &Vars, x: &str, window: i64) -> Result<String, OnnxError> {
    let p = "attention";
    let fc1 = v.conv("attention.channel_fc1", true)?;
    let fc2 = v.conv("attention.channel_fc2", true)?;
    let (avg, max) = if window == 0 {
        (g.global_avg_pool(p, x), g.global_max_pool(p, x))
    } else {
        (
            g.window_pool(p, "AveragePool", x, window),
            g.window_pool(p, "MaxPool", x, window),
        )
    };
    let mlp = |g: &mut GraphWriter, pooled: &str, tag: &str| {
        let h = g.conv(
            &format!("attention.channel_fc1.{tag}"),
            pooled,
            &fc1,
            1,
            1,
            [0; 4],
        );
        let h = g.relu(p, &h);
        g.conv(&format!("attention.channel_fc2.{tag}"), &h, &fc2, 1, 1, [0; 4])
    };
    let a = mlp(g, &avg, "avg");
    let m = mlp(g, &max, "max");
    let sum = g.add(p, &a, &m);
    let mut gate = g.sigmoid(p, &sum);
    if window != 0 {
        gate = g.repeat_cells_like(p, &gate, window, x);
    }
    let xs = g.mul(p, x, &gate);
    let mean_c = g.reduce_mean(p, &xs, &[1]);
    let max_c = g.reduce_max(p, &xs, &[1]);
    let cat = g.concat(p, &[&mean_c, &max_c], 1);
    let spatial = v.conv("attention.spatial", false)?;
    let k = spatial.shape[2] / 2;
    let s = g.conv("attention.spatial", &cat, &spatial, 1, 1, [k; 4]);
    let s = g.sigmoid(p, &s);
    Ok(g.mul(p, &xs, &s))
}

/// The smp U-Net decoder over the six scales.
fn decoder(g: &mut GraphWriter, v: &Vars, features: &[String]) -> Result<String, OnnxError> {
    let mut xs = features[5].clone();
    for i in 0..5 {
        let p = format!("decoder.blocks.{i}");
        let up = g.upsample2x(&p, &xs);
        let cat = if i < 4 {
            g.concat(&p, &[&up, &features[4 - i]], 1)
        } else {
            up
        };
        let mut h = cat;
        for c in ["conv1", "conv2"] {
            let conv = format!("{p}.{c}.0");
            let bn = format!("{p}.{c}.1");
            let y = conv_bn(g, v, &conv, &bn, DECODER_BN_EPS, &h, 1, 1, [1; 4])?;
            h = g.relu(&p, &y);
        }
        xs = h;
    }
    Ok(xs)
}

/// Builds the whole graph into `g`: input `image`, outputs `probs` and `ordinal`.
pub fn build_graph(g: &mut GraphWriter, vs: &nn::VarStore, cfg: &UNetConfig) -> Result<(), OnnxError> {
    let v = Vars(vs.variables());
    let mut features = encoder(g, &v, cfg, "image")?;
    if cfg.attention {
        let deepest = features[5].clone();
        features[5] = cbam(g, &v, &deepest, cfg.attention_window / DEEPEST_STRIDE)?;
    }
    let decoded = decoder(g, &v, &features)?;
    let head = v.conv("segmentation_head.0", true)?;
    let logits = g.conv("segmentation_head.0", &decoded, &head, 1, 1, [1; 4]);
    g.softmax_into(&logits, 1, "probs");
    // CORAL: one shared 1x1 weight and K-1 biases = one Conv with the weight repeated.
    let (w, shape) = v.get("coral.weight")?;
    let (bias, _) = v.get("coral.bias")?;
    let k = bias.len();
    let coral = ConvWeights {
        weight: w.repeat(k),
        shape: [k as i64, shape[1], 1, 1],
        bias: Some(bias),
    };
    let ord = g.conv("coral", &decoded, &coral, 1, 1, [0; 4]);
    g.node_named("Sigmoid", &[&ord], "ordinal", vec![]);
    Ok(())
}
