//! The metrics of the hash strategy: what the build records (on the
//! partition that runs it) and what each probe partition records.

use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, Gauge, MetricBuilder, Time,
};

/// Metrics recorded by the build, on the partition that runs it.
#[derive(Clone)]
pub(crate) struct BuildMetrics {
    pub right_rows: Count,
    pub build_time: Time,
    pub elapsed_compute: Time,
    pub peak_mem: Gauge,
}

pub(super) struct ProbeMetrics {
    pub(super) baseline: BaselineMetrics,
    pub(super) left_rows: Count,
    pub(super) candidates: Count,
    pub(super) probe_time: Time,
    pub(super) output_time: Time,
    pub(super) peak_mem: Gauge,
}

/// Metrics of the hash strategy for `partition`: build and probe side.
pub(crate) fn hash_metrics(
    metrics: &ExecutionPlanMetricsSet,
    partition: usize,
) -> (BuildMetrics, BaselineMetrics, [Count; 2], [Time; 2]) {
    let baseline = BaselineMetrics::new(metrics, partition);
    let build = BuildMetrics {
        right_rows: MetricBuilder::new(metrics).counter("right_input_rows", partition),
        build_time: MetricBuilder::new(metrics).subset_time("build_time", partition),
        elapsed_compute: baseline.elapsed_compute().clone(),
        peak_mem: MetricBuilder::new(metrics).gauge("peak_mem_used", partition),
    };
    let counts = [
        MetricBuilder::new(metrics).counter("left_input_rows", partition),
        MetricBuilder::new(metrics).counter("candidate_pairs", partition),
    ];
    let times = [
        MetricBuilder::new(metrics).subset_time("probe_time", partition),
        MetricBuilder::new(metrics).subset_time("build_output_time", partition),
    ];
    (build, baseline, counts, times)
}
