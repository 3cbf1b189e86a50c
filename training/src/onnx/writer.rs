//! A small ONNX graph builder: one function per layer kind, each appending its nodes and
//! initialisers to a [`GraphWriter`] and returning the name of its output value.
//!
//! - Weights are `f32` slices; with `fp16` they are stored as float16 initialisers and the
//!   graph input / outputs are float16 too (the graph is then float16 end to end).
//! - BatchNorm is never emitted: [`fold_batch_norm`] folds it into the preceding
//!   convolution's weight and bias at export.
//! - Value names are unique (`{prefix}/{op}_{n}`); node names equal their first output.

use super::proto::{
    AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto,
    tensor_proto, tensor_shape_proto, type_proto,
};

/// A convolution's weight `(cout, cin / groups, k, k)` and bias `(cout)`, row-major.
#[derive(Clone, Debug)]
pub struct ConvWeights {
    pub weight: Vec<f32>,
    pub shape: [i64; 4],
    pub bias: Option<Vec<f32>>,
}

/// BatchNorm parameters and running statistics of `c` channels.
#[derive(Clone, Debug)]
pub struct BatchNormParams {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub eps: f64,
}

/// Folds an inference-mode BatchNorm into the convolution before it:
/// `w' = w * g / sqrt(v + eps)`, `b' = beta + (b - mean) * g / sqrt(v + eps)` (in f64).
pub fn fold_batch_norm(conv: &ConvWeights, bn: &BatchNormParams) -> ConvWeights {
    let cout = conv.shape[0] as usize;
    let per_out = conv.weight.len() / cout;
    let mut weight = conv.weight.clone();
    let mut bias = vec![0f32; cout];
    for o in 0..cout {
        let s = bn.gamma[o] as f64 / (bn.var[o] as f64 + bn.eps).sqrt();
        for w in &mut weight[o * per_out..(o + 1) * per_out] {
            *w = (*w as f64 * s) as f32;
        }
        let b = conv.bias.as_ref().map_or(0.0, |b| b[o] as f64);
        bias[o] = (bn.beta[o] as f64 + (b - bn.mean[o] as f64) * s) as f32;
    }
    ConvWeights {
        weight,
        shape: conv.shape,
        bias: Some(bias),
    }
}

/// Zero padding `[top, left, bottom, right]` (ONNX `pads` order for 2-D).
pub type Pads = [i64; 4];

/// Nodes, initialisers, inputs and outputs of one graph under construction.
#[derive(Debug, Default)]
pub struct GraphWriter {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    pub fp16: bool,
    counter: usize,
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

impl GraphWriter {
    pub fn new(fp16: bool) -> Self {
        Self {
            fp16,
            ..Default::default()
        }
    }

    /// The element type of the graph's values (FLOAT or FLOAT16).
    pub fn elem_type(&self) -> i32 {
        if self.fp16 {
            tensor_proto::DataType::Float16 as i32
        } else {
            tensor_proto::DataType::Float as i32
        }
    }

    fn fresh(&mut self, prefix: &str, op: &str) -> String {
        self.counter += 1;
        format!("{prefix}/{op}_{}", self.counter)
    }

    /// Appends one node with a fresh output name and returns that name.
    fn node(&mut self, prefix: &str, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(prefix, op);
        self.node_named(op, inputs, &out, attrs);
        out
    }

    /// Appends one node writing the value `output`.
    pub fn node_named(&mut self, op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(output.to_string()),
            op_type: Some(op.into()),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// A float initialiser (float16 when the graph is).
    pub fn weight(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        let raw: Vec<u8> = if self.fp16 {
            data.iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect()
        } else {
            data.iter().flat_map(|&v| v.to_le_bytes()).collect()
        };
        self.initializers.push(TensorProto {
            dims: dims.to_vec(),
            data_type: Some(self.elem_type()),
            name: Some(name.into()),
            raw_data: Some(raw),
            ..Default::default()
        });
        name.to_string()
    }

    /// Conv with explicit zero pads, stride, groups; weight and bias become initialisers
    /// `{name}.weight` / `{name}.bias`.
    pub fn conv(
        &mut self,
        name: &str,
        x: &str,
        w: &ConvWeights,
        stride: i64,
        groups: i64,
        pads: Pads,
    ) -> String {
        let wname = self.weight(&format!("{name}.weight"), &w.shape, &w.weight);
        let mut inputs = vec![x.to_string(), wname];
        if let Some(b) = &w.bias {
            inputs.push(self.weight(&format!("{name}.bias"), &[w.shape[0]], b));
        }
        let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let attrs = vec![
            attr_ints("kernel_shape", &w.shape[2..]),
            attr_ints("strides", &[stride, stride]),
            attr_ints("pads", &pads),
            attr_ints("dilations", &[1, 1]),
            attr_int("group", groups),
        ];
        self.node(name, "Conv", &refs, attrs)
    }

    /// Swish / SiLU: `x * sigmoid(x)`.
    pub fn swish(&mut self, prefix: &str, x: &str) -> String {
        let s = self.sigmoid(prefix, x);
        self.mul(prefix, x, &s)
    }

    pub fn sigmoid(&mut self, prefix: &str, x: &str) -> String {
        self.node(prefix, "Sigmoid", &[x], vec![])
    }

    pub fn relu(&mut self, prefix: &str, x: &str) -> String {
        self.node(prefix, "Relu", &[x], vec![])
    }

    pub fn mul(&mut self, prefix: &str, a: &str, b: &str) -> String {
        self.node(prefix, "Mul", &[a, b], vec![])
    }

    pub fn add(&mut self, prefix: &str, a: &str, b: &str) -> String {
        self.node(prefix, "Add", &[a, b], vec![])
    }

    /// `(N, C, H, W)` -> `(N, C, 1, 1)` mean.
    pub fn global_avg_pool(&mut self, prefix: &str, x: &str) -> String {
        self.node(prefix, "GlobalAveragePool", &[x], vec![])
    }

    /// `(N, C, H, W)` -> `(N, C, 1, 1)` max.
    pub fn global_max_pool(&mut self, prefix: &str, x: &str) -> String {
        self.node(prefix, "GlobalMaxPool", &[x], vec![])
    }

    /// `AveragePool` or `MaxPool` over non-overlapping `k x k` windows, a last partial
    /// window kept (`ceil_mode`) and averaged over the cells it holds, as PyTorch's
    /// `avg_pool2d(k, k, 0, ceil_mode=True, count_include_pad=False)` / `max_pool2d`.
    pub fn window_pool(&mut self, prefix: &str, op: &str, x: &str, k: i64) -> String {
        let mut attrs = vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("strides", &[k, k]),
            attr_int("ceil_mode", 1),
        ];
        if op == "AveragePool" {
            attrs.push(attr_int("count_include_pad", 0));
        }
        self.node(prefix, op, &[x], attrs)
    }

    /// An int64 initialiser.
    pub fn int64_const(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(tensor_proto::DataType::Int64 as i32),
            name: Some(name.into()),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            ..Default::default()
        });
        name.to_string()
    }

    /// Each cell of `(N, C, a, b)` `x` repeated `k x k` times, cut to the height and width
    /// of `like` (`(N, *, h, w)` with `h <= a k`, `w <= b k`): nearest Resize, then Slice.
    pub fn repeat_cells_like(&mut self, prefix: &str, x: &str, k: i64, like: &str) -> String {
        let up = self.resize_nearest(prefix, x, &format!("{prefix}.repeat_scales"), k as f32);
        let hw = self.node(
            prefix,
            "Shape",
            &[like],
            vec![attr_int("start", 2), attr_int("end", 4)],
        );
        let starts = self.int64_const(&format!("{prefix}.slice_starts"), &[0, 0]);
        let axes = self.int64_const(&format!("{prefix}.slice_axes"), &[2, 3]);
        self.node(prefix, "Slice", &[&up, &starts, &hw, &axes], vec![])
    }

    /// Mean over `axes`, dimensions kept (opset 17: `axes` is an attribute).
    pub fn reduce_mean(&mut self, prefix: &str, x: &str, axes: &[i64]) -> String {
        self.node(
            prefix,
            "ReduceMean",
            &[x],
            vec![attr_ints("axes", axes), attr_int("keepdims", 1)],
        )
    }

    /// Max over `axes`, dimensions kept (opset 17: `axes` is an attribute).
    pub fn reduce_max(&mut self, prefix: &str, x: &str, axes: &[i64]) -> String {
        self.node(
            prefix,
            "ReduceMax",
            &[x],
            vec![attr_ints("axes", axes), attr_int("keepdims", 1)],
        )
    }

    pub fn concat(&mut self, prefix: &str, xs: &[&str], axis: i64) -> String {
        self.node(prefix, "Concat", xs, vec![attr_int("axis", axis)])
    }

    /// Nearest-neighbour x2 upsampling as PyTorch's `upsample_nearest2d`
    /// (`asymmetric` coordinates, `floor` rounding).
    pub fn upsample2x(&mut self, prefix: &str, x: &str) -> String {
        self.resize_nearest(prefix, x, &format!("{prefix}.scales"), 2.0)
    }

    /// `Resize` of `(N, C, H, W)` `x` by `scale` along H and W, nearest neighbour as
    /// PyTorch's `upsample_nearest2d`; the scales initialiser is called `scales_name`.
    fn resize_nearest(&mut self, prefix: &str, x: &str, scales_name: &str, scale: f32) -> String {
        // Scales stay float32 whatever the graph type (Resize requires it).
        self.initializers.push(TensorProto {
            dims: vec![4],
            data_type: Some(tensor_proto::DataType::Float as i32),
            name: Some(scales_name.to_string()),
            raw_data: Some(
                [1f32, 1.0, scale, scale]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            ..Default::default()
        });
        let attrs = vec![
            attr_str("mode", "nearest"),
            attr_str("coordinate_transformation_mode", "asymmetric"),
            attr_str("nearest_mode", "floor"),
        ];
        self.node(prefix, "Resize", &[x, "", scales_name], attrs)
    }

    /// Softmax over `axis`, written to the value `output`.
    pub fn softmax_into(&mut self, x: &str, axis: i64, output: &str) {
        self.node_named("Softmax", &[x], output, vec![attr_int("axis", axis)]);
    }

    /// Graph input or output `(N, channels, H, W)` with symbolic N, H, W.
    pub fn nchw_value(&self, name: &str, channels: i64) -> ValueInfoProto {
        use tensor_shape_proto::dimension::Value;
        let dim = |v: Value| tensor_shape_proto::Dimension {
            value: Some(v),
            ..Default::default()
        };
        let shape = TensorShapeProto {
            dim: vec![
                dim(Value::DimParam("N".into())),
                dim(Value::DimValue(channels)),
                dim(Value::DimParam("H".into())),
                dim(Value::DimParam("W".into())),
            ],
        };
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(self.elem_type()),
                    shape: Some(shape),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}
