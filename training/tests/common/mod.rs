//! Helpers shared by the training test binaries (each uses a subset).
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

/// tch's RNG is global and the tests of one binary run on parallel threads: a test that
/// seeds and then draws (or trains, and compares with a second seeded run) holds this lock
/// for its whole body, so that another test's `manual_seed` or draws cannot land between
/// and make two "identical" runs differ.
static TCH_RNG: Mutex<()> = Mutex::new(());

pub fn rng_lock() -> MutexGuard<'static, ()> {
    TCH_RNG.lock().unwrap_or_else(|e| e.into_inner())
}
