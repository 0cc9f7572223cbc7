//! One-shot output of a snapshot: an aligned table for people, JSON for scripts.

pub mod findings;
pub mod json;
pub mod table;
pub mod transitions;
