//! Drill-only: the operator's out-of-band fixes. Some faults are fixed outside SQL Server
//! (space freed on the backup share, share permissions granted in Windows); the simulator cannot
//! see that over TDS, so a drill's session tells the `Drill` which manual step the trainee
//! confirmed (`Drill::manual_done`, called in-process after the journal record is durable), and
//! the scenario's `[[faults.remedies]]` say which fault that step clears. Nothing here is
//! reachable from a client: no statement clears a fault.

use super::state::Group;

/// What a remedy clears (the names a scenario's `clears` may use).
pub const CLEARABLE: &[&str] = &["share_full", "restore_failing"];

/// Clears the faults the scenario's remedies name for `step` (`runbook:step`, compared
/// without case); returns what it cleared.
pub fn apply_remedies(g: &mut Group, step: &str) -> Vec<String> {
    let clears: Vec<String> = g
        .faults
        .remedies
        .iter()
        .filter(|(s, _)| s.eq_ignore_ascii_case(step))
        .map(|(_, c)| c.clone())
        .collect();
    for c in &clears {
        match c.as_str() {
            "share_full" => g.faults.share_full = false,
            "restore_failing" => g.faults.restore_failing = false,
            _ => {}
        }
    }
    clears
}
