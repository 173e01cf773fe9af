//! Drill-only: the operator's out-of-band fixes. Some faults are fixed outside SQL Server
//! (space freed on the backup share, share permissions granted in Windows); the simulator cannot
//! see that, so a drill session tells it which manual step the trainee confirmed, and the
//! scenario's `[[faults.remedies]]` say which fault that step clears. No real SQL Server has
//! `sp_btsdr_drill_manual_done`: btsdr sends it only to its own simulator, in drills.

use super::exec::{Ctx, Fail, R};
use super::procs::{Args, info};

/// What a remedy clears (the names a scenario's `clears` may use).
pub const CLEARABLE: &[&str] = &["share_full", "restore_failing"];

/// `EXEC master.dbo.sp_btsdr_drill_manual_done @step = N'runbook:step'`.
pub fn manual_done(ctx: &mut Ctx, a: &Args) -> R<()> {
    let Some(step) = a.text("step") else {
        return Err(Fail::one(201, "Procedure expects parameter '@step'."));
    };
    let clears: Vec<String> = ctx
        .g
        .faults
        .remedies
        .iter()
        .filter(|(s, _)| s.eq_ignore_ascii_case(&step))
        .map(|(_, c)| c.clone())
        .collect();
    for c in &clears {
        match c.as_str() {
            "share_full" => ctx.g.faults.share_full = false,
            "restore_failing" => ctx.g.faults.restore_failing = false,
            _ => {}
        }
    }
    info(
        ctx,
        0,
        if clears.is_empty() {
            format!("drill: {step} changes nothing in this scenario")
        } else {
            format!("drill: {step} clears {}", clears.join(", "))
        },
    );
    Ok(())
}
