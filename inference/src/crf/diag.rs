//! The CRF's timing switch. `RISK_CRF_TIMING` (any value) logs its timings through
//! `tracing` at info level: each lattice build's steps (`risk-crf grid ...`,
//! `risk-crf lattice ...`) and each run's build / inference split (`risk-crf timing: ...`,
//! the line `bench/crf_vs_pydensecrf.sh` reads from `risk-crf`'s stderr). Without it the
//! run's split is logged at debug level only. (`RISK_CRF_ISA`, which forces the kernels,
//! is read where they are chosen, `Isa::detect`.)

/// Whether `RISK_CRF_TIMING` asks for the timings at info level.
pub(super) fn timing_requested() -> bool {
    std::env::var_os("RISK_CRF_TIMING").is_some()
}
