//! A drill's simulator follows its session's journal (TUI and batch alike).

/// Drills only, after `record` is durable in the session's journal: a confirmed manual step
/// is done on the simulated group (`DrillHands::manual_done`: the scenario's remedies for it,
/// UpdateDatabase.vbs when the step runs it) and logged for the drill's snapshot. The one
/// channel from a drill session to its simulator for what happens outside SQL Server; the TUI
/// (`launch::LiveOpener::journaled`) and batch drills (`batch::driver`) both call it.
pub fn follow_record(
    hands: &btsdr_sim::drill::DrillHands,
    runbook: &crate::runbook::model::Runbook,
    record: &crate::engine::Record,
) -> Option<btsdr_sim::drill::ManualDone> {
    let (crate::engine::Event::ManualConfirmed { .. }, Some(step)) = (&record.event, &record.step)
    else {
        return None;
    };
    let commands: Vec<&str> = match runbook.step(step).map(|s| &s.body) {
        Some(crate::runbook::model::StepBody::Manual(m)) => {
            m.commands.iter().map(|c| c.run.as_str()).collect()
        }
        _ => Vec::new(),
    };
    let done = hands.manual_done(&runbook.id, step, &commands);
    tracing::info!(step = %step, cleared = ?done.cleared, update_database = done.update_database, "drill: manual step performed on the simulator");
    Some(done)
}
