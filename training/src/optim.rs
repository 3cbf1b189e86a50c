//! AdamW (Loshchilov & Hutter 2019) over the trainable tensors of a `tch` variable store,
//! with its state in the open, so that checkpoints carry it and `--resume` continues with
//! the same moment estimates (tch's `nn::Optimizer` keeps them inside libtorch, out of
//! reach).
//!
//! One step, per parameter `p` with gradient `g`, step count `t` (from 1), as
//! `torch.optim.AdamW` (amsgrad off):
//!
//! ```text
//! p <- p (1 - lr wd)
//! m <- b1 m + (1 - b1) g            v <- b2 v + (1 - b2) g^2
//! p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//! ```
//!
//! Mixed precision ([`LossScaler`], as `torch.cuda.amp.GradScaler`): float16 gradients
//! underflow, so the loss is multiplied by a scale (2^16 at first) before the backward
//! pass and the gradients divided by it before the step. A step whose gradients hold an
//! inf or NaN is skipped and the scale halved; after 2000 steps in a row without one the
//! scale doubles. Powers of two make the scaling exact: with finite gradients a scaled
//! step equals the unscaled one bit for bit (tested).
//!
//! State file (safetensors): `exp_avg.<name>`, `exp_avg_sq.<name>` for each trainable
//! variable `<name>` of the store, `step` (int64 scalar) and, with loss scaling,
//! `loss_scale` (float64) and `loss_scale_growth` (int64: finite steps since the last
//! change). A test checks the steps against libtorch's own AdamW and a save / load round
//! trip.

use std::collections::HashMap;
use std::path::Path;

use tch::{TchError, Tensor, nn};

/// Hyper-parameters (PyTorch's defaults except the weight decay, which the config sets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-2,
        }
    }
}

/// Dynamic loss scaling for float16 mixed precision (the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScaler {
    /// Current factor of the loss.
    pub scale: f64,
    /// Finite steps since the scale last changed.
    pub growth: i64,
}

impl LossScaler {
    /// PyTorch's `GradScaler` defaults.
    pub const INIT_SCALE: f64 = 65536.0;
    pub const GROWTH_INTERVAL: i64 = 2000;

    pub fn new() -> Self {
        Self {
            scale: Self::INIT_SCALE,
            growth: 0,
        }
    }

    /// After a step: halve on non-finite gradients, double after a run of finite ones.
    fn update(&mut self, finite: bool) {
        if finite {
            self.growth += 1;
            if self.growth == Self::GROWTH_INTERVAL {
                self.scale *= 2.0;
                self.growth = 0;
            }
        } else {
            self.scale *= 0.5;
            self.growth = 0;
        }
    }
}

impl Default for LossScaler {
    fn default() -> Self {
        Self::new()
    }
}

/// Moment estimates of one parameter.
struct Slot {
    name: String,
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
}

/// AdamW over the trainable variables of a var store.
pub struct AdamW {
    cfg: AdamWConfig,
    lr: f64,
    step: i64,
    slots: Vec<Slot>,
    scaler: Option<LossScaler>,
}

impl AdamW {
    /// Zero moments for every trainable variable of `vs`, in name order.
    pub fn new(vs: &nn::VarStore, cfg: AdamWConfig, lr: f64) -> Self {
        let mut named: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = named
            .into_iter()
            .map(|(name, param)| Slot {
                exp_avg: param.zeros_like().detach(),
                exp_avg_sq: param.zeros_like().detach(),
                name,
                param,
            })
            .collect();
        Self {
            cfg,
            lr,
            step: 0,
            slots,
            scaler: None,
        }
    }

    /// Turns on dynamic loss scaling (mixed precision) from its initial state.
    pub fn with_loss_scaling(mut self) -> Self {
        self.scaler = Some(LossScaler::new());
        self
    }

    /// The loss scaler's state, when loss scaling is on.
    pub fn loss_scaler(&self) -> Option<LossScaler> {
        self.scaler
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// Zeroes the gradients, back-propagates `loss` and takes one step. With loss scaling,
    /// back-propagates `loss x scale`, unscales the gradients and skips the step when one
    /// is not finite. Returns whether a step was taken.
    pub fn backward_step(&mut self, loss: &Tensor) -> bool {
        self.zero_grad();
        let Some(mut scaler) = self.scaler else {
            loss.backward();
            self.step();
            return true;
        };
        (loss * scaler.scale).backward();
        let finite = tch::no_grad(|| {
            // One flag tensor per gradient, read back once: a read per parameter would wait
            // on the GPU a few hundred times per step.
            let mut flags = Vec::with_capacity(self.slots.len());
            for s in &mut self.slots {
                let mut grad = s.param.grad();
                if grad.defined() {
                    let _ = grad.g_mul_scalar_(1.0 / scaler.scale);
                    flags.push(grad.isfinite().all());
                }
            }
            flags.is_empty() || bool::try_from(Tensor::stack(&flags, 0).all()).unwrap_or(false)
        });
        scaler.update(finite);
        self.scaler = Some(scaler);
        if finite {
            self.step();
        }
        finite
    }

    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            s.param.zero_grad();
        }
    }

    /// One AdamW step with the current gradients (parameters without one are skipped).
    pub fn step(&mut self) {
        self.step += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.cfg;
        let bias1 = 1.0 - beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        let step_size = self.lr / bias1;
        tch::no_grad(|| {
            for s in &mut self.slots {
                let grad = s.param.grad();
                if !grad.defined() {
                    continue;
                }
                let _ = s.param.g_mul_scalar_(1.0 - self.lr * weight_decay);
                let _ = s.exp_avg.g_mul_scalar_(beta1);
                let _ = s.exp_avg.g_add_(&(&grad * (1.0 - beta1)));
                let _ = s.exp_avg_sq.g_mul_scalar_(beta2);
                let _ = s.exp_avg_sq.addcmul_(&grad, &grad.g_mul_scalar(1.0 - beta2));
                let denom = s.exp_avg_sq.sqrt() / bias2_sqrt + eps;
                let _ = s.param.addcdiv_(&(&s.exp_avg * -step_size), &denom);
            }
        });
    }

    /// Writes the moments and the step count to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<(), TchError> {
        let step = Tensor::from_slice(&[self.step]);
        let mut named: Vec<(String, &Tensor)> = Vec::with_capacity(2 * self.slots.len() + 1);
        for s in &self.slots {
            named.push((format!("exp_avg.{}", s.name), &s.exp_avg));
            named.push((format!("exp_avg_sq.{}", s.name), &s.exp_avg_sq));
        }
        named.push(("step".to_string(), &step));
        let scaler = self
            .scaler
            .map(|sc| (Tensor::from_slice(&[sc.scale]), Tensor::from_slice(&[sc.growth])));
        if let Some((scale, growth)) = &scaler {
            named.push(("loss_scale".to_string(), scale));
            named.push(("loss_scale_growth".to_string(), growth));
        }
        Tensor::write_safetensors(&named, path)
    }

    /// Restores what [`AdamW::save`] wrote; every trainable variable must have its two
    /// moments there, with the same shape.
    pub fn load(&mut self, path: &Path) -> Result<(), TchError> {
        let mut stored: HashMap<String, Tensor> = Tensor::read_safetensors(path)?.into_iter().collect();
        let missing = |name: &str| {
            TchError::FileFormat(format!(
                "{}: no {name} (optimizer state of another model?)",
                path.display()
            ))
        };
        let step = stored.remove("step").ok_or_else(|| missing("step"))?;
        self.step = step.int64_value(&[0]);
        if let Some(scaler) = self.scaler.as_mut() {
            // A state saved without loss scaling (an fp32 run resumed in fp16) starts the
            // scaler afresh.
            if let (Some(scale), Some(growth)) =
                (stored.remove("loss_scale"), stored.remove("loss_scale_growth"))
            {
                scaler.scale = scale.double_value(&[0]);
                scaler.growth = growth.int64_value(&[0]);
            }
        }
        tch::no_grad(|| {
            for s in &mut self.slots {
                for (prefix, dst) in [("exp_avg", &mut s.exp_avg), ("exp_avg_sq", &mut s.exp_avg_sq)] {
                    let key = format!("{prefix}.{}", s.name);
                    let src = stored.remove(&key).ok_or_else(|| missing(&key))?;
                    if src.size() != dst.size() {
                        return Err(TchError::Shape(format!(
                            "{}: {key} has shape {:?}, the variable {:?}",
                            path.display(),
                            src.size(),
                            dst.size()
                        )));
                    }
                    dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
                }
            }
            Ok(())
        })
    }
}
