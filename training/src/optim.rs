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
//! State file (safetensors): `exp_avg.<name>`, `exp_avg_sq.<name>` for each trainable
//! variable `<name>` of the store, and `step` (int64 scalar). A test checks the steps
//! against libtorch's own AdamW and a save / load round trip.

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
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> i64 {
        self.step
    }

    /// Zeroes the gradients, back-propagates `loss` and takes one step.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
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
