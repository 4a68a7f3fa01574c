//! The generated plans under `plans/` match what `lakehouse render --write`
//! would write today.

use std::path::Path;

use lakehouse::model::Project;
use lakehouse::model::render::{render_all, stale_plans};

#[test]
fn plans_directory_is_up_to_date() {
    let project = Project::adventure_works().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let stale = stale_plans(&project, &dir).unwrap();
    assert!(
        stale.is_empty(),
        "plans/ is stale; run `cargo run -- render --write` and commit. Stale files: {stale:?}"
    );
}

#[test]
fn every_frame_has_a_plan_with_its_pit_hook_first() {
    let project = Project::adventure_works().unwrap();
    let models = render_all(&project).unwrap();
    assert_eq!(models.iter().filter(|m| m.namespace == "dab").count(), 58);
    let m = models
        .iter()
        .find(|m| m.name == "frame__adventure_works__sales_order_details")
        .unwrap();
    let first_column = m.text.lines().find(|l| l.starts_with("--   ")).unwrap();
    assert_eq!(first_column, "--   _pit_hook__order_line__sales Utf8");
    assert!(m.text.contains(
        "PARTITION BY [das.raw__adventure_works__sales_order_details.sales_order_detail_id]"
    ));
}
