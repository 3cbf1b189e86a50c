//! `--batch auto`: the number of tiles per model run, chosen by trying.
//!
//! A GPU runs a batch of tiles in about the time of one tile until its cores are busy;
//! past that point the time grows with the batch, and past its memory the run fails.
//! ONNX Runtime does not say beforehand how much memory a batch needs (it depends on the
//! provider, its kernels and the arena), so [`choose`] measures: it doubles the batch from
//! 1 and, at each size, runs one warm-up batch (the first run of a shape allocates, and
//! TensorRT builds an engine for it) and then [`TIMED_RUNS`] timed ones, keeping the
//! fastest. It stops at the first size that fails (out of memory), that exceeds the cap,
//! or whose throughput (tiles per second) is less than [`MIN_GAIN`] better than the
//! previous size's, and returns the size with the best throughput before that point.
//!
//! The cap is the caller's: `risk-infer` bounds the batch by the host memory budget
//! (the batch buffers of a run must fit in a quarter of it) and by [`MAX_BATCH`].
//! [`crate::predictor::Predictor::auto_batch`] runs the probe on zero tiles of the run's
//! tile shape and remembers the answer per shape, so a list of rasters probes once.
//!
//! On a CPU the throughput rarely gains from batching (every core is busy on one tile), so
//! `auto` there usually settles at 1 or 2 after about 3 x (1 + 2 + 4) tile runs of probing.
//! With TensorRT each probed size builds an engine (minutes without `--trt-cache`); with
//! the cache the engines are kept for the runs that follow.

use std::str::FromStr;
use std::time::Duration;

/// Largest batch the probe tries.
pub const MAX_BATCH: usize = 64;
/// Relative throughput gain a doubling must bring to be kept (10%).
pub const MIN_GAIN: f64 = 0.10;
/// Timed runs per size after the warm-up (the fastest counts).
pub const TIMED_RUNS: usize = 2;

/// Tiles per model run: a number, or `auto` (probed, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSize {
    Tiles(usize),
    Auto,
}

/// A batch size that is neither a positive number nor `auto` (the text given, trimmed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("batch must be a positive number of tiles or 'auto', got {0:?}")]
pub struct ParseBatchError(pub String);

impl FromStr for BatchSize {
    type Err = ParseBatchError;

    fn from_str(s: &str) -> Result<Self, ParseBatchError> {
        match s.trim() {
            "auto" => Ok(Self::Auto),
            n => match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Self::Tiles(n)),
                _ => Err(ParseBatchError(n.to_string())),
            },
        }
    }
}

/// Bytes of host memory per tile of a batch: the reader's normalised tiles for the batches
/// in flight (up to 3: two queued, one running) and the probabilities, plus, with several
/// views, the predictor's view buffers (about 6 batch-sized arrays of input and output).
pub fn bytes_per_tile(channels: usize, h: usize, w: usize, views: usize) -> usize {
    let floats = 3 * channels + 3 + if views > 1 { 6 * (channels + 3) } else { 0 };
    floats * h * w * 4
}

/// One size the probe tried; `E` is the timed run's error.
#[derive(Clone, Debug, PartialEq)]
pub struct Trial<E> {
    pub batch: usize,
    /// Tiles per second, or why the run failed.
    pub outcome: Result<f64, E>,
}

/// The chosen batch and every trial, for the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice<E> {
    pub batch: usize,
    pub trials: Vec<Trial<E>>,
}

impl<E: std::fmt::Display> std::fmt::Display for Choice<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "batch {} (probed:", self.batch)?;
        for t in &self.trials {
            match &t.outcome {
                Ok(tps) => write!(f, " {}: {tps:.2} tiles/s;", t.batch)?,
                Err(e) => write!(f, " {}: failed ({e});", t.batch)?,
            }
        }
        write!(f, ")")
    }
}

/// Chooses a batch size up to `cap` (at least 1) by calling `time(batch)`, which runs one
/// batch of that many tiles and returns its duration. A failure at batch 1 is returned as
/// the error; a failure at a larger size ends the probe.
pub fn choose<E: std::fmt::Display>(
    cap: usize,
    mut time: impl FnMut(usize) -> Result<Duration, E>,
) -> Result<Choice<E>, E> {
    let cap = cap.clamp(1, MAX_BATCH);
    let mut measure = |batch: usize| -> Result<f64, E> {
        time(batch)?; // warm-up
        let mut best = Duration::MAX;
        for _ in 0..TIMED_RUNS {
            best = best.min(time(batch)?);
        }
        Ok(batch as f64 / best.as_secs_f64().max(1e-9))
    };
    let first = measure(1)?;
    let mut trials = vec![Trial {
        batch: 1,
        outcome: Ok(first),
    }];
    let (mut chosen, mut best) = (1, first);
    let mut batch = 2;
    while batch <= cap {
        match measure(batch) {
            Err(e) => {
                trials.push(Trial {
                    batch,
                    outcome: Err(e),
                });
                break;
            }
            Ok(tps) => {
                trials.push(Trial {
                    batch,
                    outcome: Ok(tps),
                });
                if tps < best * (1.0 + MIN_GAIN) {
                    break;
                }
                (chosen, best) = (batch, tps);
            }
        }
        batch *= 2;
    }
    Ok(Choice {
        batch: chosen,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The failure of [`device`] above its memory: the batch size.
    #[derive(Debug, PartialEq, thiserror::Error)]
    #[error("out of memory at {0}")]
    struct OutOfMemory(usize);

    /// A device that runs up to `width` tiles in `base` seconds, then linearly more, and
    /// fails above `memory` tiles.
    fn device(width: usize, base: f64, memory: usize) -> impl FnMut(usize) -> Result<Duration, OutOfMemory> {
        move |b| {
            if b > memory {
                return Err(OutOfMemory(b));
            }
            Ok(Duration::from_secs_f64(
                base * (b.max(width) as f64 / width as f64),
            ))
        }
    }

    fn sizes<E>(c: &Choice<E>) -> Vec<usize> {
        c.trials.iter().map(|t| t.batch).collect()
    }

    #[test]
    fn parses_batch_sizes() {
        assert_eq!("auto".parse(), Ok(BatchSize::Auto));
        assert_eq!("8".parse(), Ok(BatchSize::Tiles(8)));
        assert!("0".parse::<BatchSize>().is_err());
        assert!("big".parse::<BatchSize>().is_err());
        // 3 bands at 512x512, one view: (9 + 3) floats x 4 bytes per pixel = 12 MiB.
        assert_eq!(bytes_per_tile(3, 512, 512, 1), 12 << 20);
    }

    #[test]
    fn cpu_like_device_keeps_one() {
        // Time proportional to the batch: 10 tiles/s at every size, no gain at 2.
        let c = choose(64, device(1, 0.1, usize::MAX)).unwrap();
        assert_eq!(c.batch, 1);
        assert_eq!(sizes(&c), [1, 2]);
        assert!((c.trials[0].outcome.as_ref().unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn gpu_like_device_fills_its_width() {
        // 8 tiles in the time of one: throughput 10, 20, 40, 80, then 80 at 16 -> 8.
        let c = choose(64, device(8, 0.1, usize::MAX)).unwrap();
        assert_eq!(c.batch, 8);
        assert_eq!(sizes(&c), [1, 2, 4, 8, 16]);
        assert!((c.trials[3].outcome.as_ref().unwrap() - 80.0).abs() < 1e-6);
    }

    #[test]
    fn out_of_memory_stops_the_probe() {
        let c = choose(64, device(64, 0.1, 12)).unwrap();
        assert_eq!(c.batch, 8);
        assert_eq!(sizes(&c), [1, 2, 4, 8, 16]);
        assert_eq!(c.trials[4].outcome, Err(OutOfMemory(16)));
        assert_eq!(
            c.trials[4].outcome.as_ref().unwrap_err().to_string(),
            "out of memory at 16"
        );
    }

    #[test]
    fn cap_bounds_the_batch() {
        let c = choose(5, device(64, 0.1, usize::MAX)).unwrap();
        assert_eq!(c.batch, 4);
        assert_eq!(sizes(&c), [1, 2, 4]);
        let c = choose(1000, device(1000, 0.1, usize::MAX)).unwrap();
        assert_eq!(c.batch, MAX_BATCH);
        let c = choose(0, device(64, 0.1, usize::MAX)).unwrap();
        assert_eq!(c.batch, 1);
    }

    #[test]
    fn failure_at_one_is_the_error() {
        assert_eq!(
            choose(64, device(1, 0.1, 0)).unwrap_err().to_string(),
            "out of memory at 1"
        );
    }

    #[test]
    fn fastest_timed_run_counts() {
        // Warm-up 1 s, then 0.2 s and 0.1 s: 10 tiles/s for batch 1.
        let mut runs = [1.0, 0.2, 0.1].into_iter();
        let c = choose(1, |_| {
            Ok::<_, OutOfMemory>(Duration::from_secs_f64(runs.next().unwrap()))
        })
        .unwrap();
        assert_eq!(
            c.trials,
            [Trial {
                batch: 1,
                outcome: Ok(10.0)
            }]
        );
    }
}
