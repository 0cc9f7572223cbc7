//! The engine with a scripted source: cadence, per-state refresh, failure
//! and recovery, clock steps.
