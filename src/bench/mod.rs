//! Benchmark data generators and runners used by `lakehouse bench` and the
//! criterion benches.

pub mod elt;
pub mod elt_growth;
pub mod pit_join;
pub mod scale;
pub mod transform;
pub mod warehouse_size;
