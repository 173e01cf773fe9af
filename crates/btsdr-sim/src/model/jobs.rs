//! SQL Server Agent: running a job's steps against the model, writing sysjobhistory, and the
//! simulated clock's schedule loop.

use chrono::{Duration, NaiveDateTime};

use super::clock::SimClock;
use super::exec::{BatchState, Ctx};
use super::logship::{JOB_GET_HISTORY, JOB_RESTORE, JOB_TO_MARK};
use super::procs::step_message;
use super::state::{Group, InstanceId, Job, JobHistory, JobStep, Schedule};

/// SQL Agent keeps at most this many history rows per job (its default).
const HISTORY_PER_JOB: usize = 100;

pub fn step(
    id: i64,
    name: &str,
    db: &str,
    command: &str,
    on_success: i64,
    on_fail: i64,
) -> JobStep {
    JobStep {
        step_id: id,
        step_name: name.to_string(),
        subsystem: "TSQL".into(),
        database_name: db.to_string(),
        command: command.to_string(),
        on_success_action: on_success,
        on_fail_action: on_fail,
    }
}

/// Adds a job with one daily schedule every `interval` minutes (`None`: no schedule).
pub fn add_job(
    g: &mut Group,
    inst: InstanceId,
    name: &str,
    enabled: bool,
    steps: Vec<JobStep>,
    schedule: Option<(&str, i64)>,
) -> usize {
    let created = g.now() - Duration::days(400);
    let m = &mut g.instances[inst].msdb;
    let mut schedule_ids = Vec::new();
    if let Some((sname, interval)) = schedule {
        let sid = m.new_id();
        m.schedules.push(Schedule {
            schedule_id: sid,
            name: sname.to_string(),
            enabled: true,
            freq_type: 4,
            freq_interval: 1,
            freq_subday_type: if interval >= 1440 { 1 } else { 4 },
            freq_subday_interval: if interval >= 1440 { 0 } else { interval },
            active_start_time: 0,
        });
        schedule_ids.push(sid);
    }
    let id = m.new_id();
    m.jobs.push(Job {
        job_id: super::tables::new_job_id(id + 1000 * inst as i64),
        name: name.to_string(),
        enabled,
        description: String::new(),
        category: "Database Maintenance".into(),
        owner: "sa".into(),
        steps,
        schedule_ids,
        created,
        last_run: None,
        running: false,
        activity: Default::default(),
    });
    m.jobs.len() - 1
}

/// Creates the three log-shipping jobs on a destination if they are missing.
pub fn ensure_ls_jobs(g: &mut Group, inst: InstanceId) {
    let specs = [
        (
            JOB_GET_HISTORY,
            "exec [dbo].[bts_LogShippingGetBackupHistory]",
            Some(("Get Backup History Schedule", 1)),
        ),
        (
            JOB_RESTORE,
            "exec [dbo].[bts_LogShippingRestoreDatabases]",
            Some(("Restore Databases Schedule", 1)),
        ),
        (
            JOB_TO_MARK,
            "exec [dbo].[bts_LogShippingRestoreToMark]",
            None,
        ),
    ];
    for (name, cmd, sched) in specs {
        if g.instances[inst].msdb.job(name).is_none() {
            let steps = vec![step(
                1,
                name.trim_start_matches("BTS ")
                    .trim_start_matches("Server "),
                "master",
                cmd,
                1,
                2,
            )];
            add_job(g, inst, name, sched.is_some(), steps, sched);
        }
    }
}

/// Restore To Mark recreates the source's SQL Agent jobs on the destination (disabled when
/// they did not exist there, as the source configuration must be reviewed first).
pub fn copy_source_jobs(g: &mut Group, inst: InstanceId) {
    let src = g.mgmt.instance;
    let jobs: Vec<Job> = g.instances[src].msdb.jobs.clone();
    for mut j in jobs {
        if g.instances[inst].msdb.job(&j.name).is_some() {
            continue;
        }
        j.schedule_ids.clear();
        j.last_run = None;
        let id = g.instances[inst].msdb.new_id();
        j.job_id = super::tables::new_job_id(id + 7000);
        g.instances[inst].msdb.jobs.push(j);
    }
}

/// Runs job `idx` on `inst` from step index `start`, writing step and outcome history.
// TODO(issue 16): split (one function per job step kind).
#[allow(clippy::too_many_lines)]
pub fn run_job(
    g: &mut Group,
    inst: InstanceId,
    idx: usize,
    start: usize,
    invoked_by: &str,
) -> bool {
    let Some(job) = g.instances[inst].msdb.jobs.get(idx).cloned() else {
        return false;
    };
    let started = g.now();
    let account = g.instances[inst].agent_account.clone();
    if let Some(j) = g.instances[inst].msdb.jobs.get_mut(idx) {
        // A scheduled run begins here; one from sp_start_job was requested earlier.
        let a = &mut j.activity;
        if !j.running {
            a.requested = Some(started);
            a.started = Some(started);
        }
        a.stopped = None;
        a.history_id = None;
        j.running = true;
    }
    let mut ok = true;
    let mut last = None;
    let mut i = start;
    let mut guard = 0;
    while let Some(s) = job.steps.get(i) {
        guard += 1;
        if guard > 50 {
            break;
        }
        let mut b = BatchState {
            db: s.database_name.clone(),
            login: account.clone(),
            in_job: true,
            ..Default::default()
        };
        let r = {
            let mut ctx = Ctx {
                g: &mut *g,
                inst,
                b: &mut b,
                depth: 1,
            };
            ctx.run_text(&s.command)
        };
        let (status, msg, msg_id, sev) = match &r {
            Ok(_) => (
                1,
                format!("Executed as user: {account}. The step succeeded."),
                0,
                0,
            ),
            Err(f) => {
                let text: Vec<String> = f.0.iter().map(step_message).collect();
                let first = f.0.first();
                (
                    0,
                    format!(
                        "Executed as user: {account}. {}.  The step failed.",
                        text.join(" ")
                    ),
                    first.map_or(0, |e| i64::from(e.number)),
                    first.map_or(16, |e| i64::from(e.severity)),
                )
            }
        };
        push_history(
            g,
            inst,
            &job.job_id,
            s.step_id,
            &s.step_name,
            msg_id,
            sev,
            &msg,
            status,
            started,
        );
        last = Some((s.step_id, s.step_name.clone()));
        let action = if r.is_ok() {
            s.on_success_action
        } else {
            s.on_fail_action
        };
        match action {
            1 => {
                ok = true;
                break;
            }
            2 => {
                ok = false;
                break;
            }
            _ => {
                if i + 1 >= job.steps.len() {
                    ok = r.is_ok();
                }
                i += 1;
            }
        }
    }
    let (sid, sname) = last.unwrap_or((0, String::new()));
    let msg = format!(
        "The job {}.  The Job was invoked by {invoked_by}.  The last step to run was step {sid} ({sname}).",
        if ok { "succeeded" } else { "failed" }
    );
    let outcome = push_history(
        g,
        inst,
        &job.job_id,
        0,
        "(Job outcome)",
        0,
        0,
        &msg,
        i64::from(ok),
        started,
    );
    let now = g.now();
    if let Some(j) = g.instances[inst].msdb.jobs.get_mut(idx) {
        j.last_run = Some(started);
        j.running = false;
        j.activity.stopped = Some(now);
        j.activity.history_id = Some(outcome);
        j.activity.last_step = (sid > 0).then_some(sid);
    }
    ok
}

#[allow(clippy::too_many_arguments)]
fn push_history(
    g: &mut Group,
    inst: InstanceId,
    job_id: &str,
    step_id: i64,
    step_name: &str,
    msg_id: i64,
    sev: i64,
    msg: &str,
    status: i64,
    at: NaiveDateTime,
) -> i64 {
    let m = &mut g.instances[inst].msdb;
    let id = m.new_id();
    m.history.push(JobHistory {
        instance_id: id,
        job_id: job_id.to_string(),
        step_id,
        step_name: step_name.to_string(),
        sql_message_id: msg_id,
        sql_severity: sev,
        message: msg.to_string(),
        run_status: status,
        at,
        duration_secs: if step_id == 0 { 2 } else { 1 },
    });
    let count = m.history.iter().filter(|h| h.job_id == job_id).count();
    if count > HISTORY_PER_JOB
        && let Some(pos) = m.history.iter().position(|h| h.job_id == job_id)
    {
        m.history.remove(pos);
    }
    id
}

/// The next time after `t` a schedule fires (daily schedules only).
fn next_fire(s: &Schedule, t: NaiveDateTime) -> Option<NaiveDateTime> {
    if !s.enabled || s.freq_type != 4 {
        return None;
    }
    let interval = if s.freq_subday_type == 1 {
        1440
    } else {
        s.interval_minutes()
    };
    let start = s.active_start_time;
    let offset = (start / 10000) * 60 + (start / 100 % 100);
    let day = t.date().and_hms_opt(0, 0, 0)?;
    let mins = (t - day).num_seconds().div_euclid(60);
    let k = if mins >= offset {
        (mins - offset) / interval + 1
    } else {
        0
    };
    let x = day + Duration::minutes(offset + k * interval);
    if x >= day + Duration::days(1) {
        Some(day + Duration::days(1) + Duration::minutes(offset))
    } else {
        Some(x)
    }
}

/// Runs every scheduled job that falls due in `(sched_checked, until]`, in time order.
fn run_until(g: &mut Group, until: NaiveDateTime) {
    let speed = g.clock.speed;
    loop {
        let from = g.sched_checked;
        let mut next: Option<NaiveDateTime> = None;
        for inst in &g.instances {
            for j in inst.msdb.jobs.iter().filter(|j| j.enabled) {
                for sid in &j.schedule_ids {
                    if let Some(s) = inst.msdb.schedules.iter().find(|s| s.schedule_id == *sid)
                        && let Some(t) = next_fire(s, from)
                        && t <= until
                    {
                        next = Some(next.map_or(t, |n: NaiveDateTime| n.min(t)));
                    }
                }
            }
        }
        let Some(t) = next else { break };
        g.clock = SimClock::new(t, 0.0);
        for inst in 0..g.instances.len() {
            let due: Vec<(usize, String)> = {
                let m = &g.instances[inst].msdb;
                m.jobs
                    .iter()
                    .enumerate()
                    .filter(|(_, j)| j.enabled && !j.running)
                    .filter_map(|(i, j)| {
                        j.schedule_ids.iter().find_map(|sid| {
                            let s = m.schedules.iter().find(|s| s.schedule_id == *sid)?;
                            (next_fire(s, from) == Some(t))
                                .then(|| (i, format!("Schedule {} ({})", s.schedule_id, s.name)))
                        })
                    })
                    .collect()
            };
            for (i, by) in due {
                run_job(g, inst, i, 0, &by);
            }
        }
        g.sched_checked = t;
    }
    g.sched_checked = until;
    g.clock = SimClock::new(until, speed);
}

/// Moves the clock forward by `d`, running scheduled jobs on the way.
pub fn advance(g: &mut Group, d: Duration) {
    let until = g.now() + d;
    run_until(g, until);
}

/// History of a run that ended before the simulation (its step and outcome rows, as Agent
/// writes them); the Agent session has restarted since, so no activity row refers to it.
pub fn record_past_run(g: &mut Group, inst: InstanceId, name: &str, at: NaiveDateTime, ok: bool) {
    let Some(job) = g.instances[inst].msdb.job(name).cloned() else {
        return;
    };
    let status = i64::from(ok);
    let word = if ok { "succeeded" } else { "failed" };
    for s in &job.steps {
        push_history(
            g,
            inst,
            &job.job_id,
            s.step_id,
            &s.step_name,
            0,
            0,
            &format!(
                "Executed as user: {}. The step {word}.",
                g.instances[inst].agent_account
            ),
            status,
            at,
        );
    }
    let msg = format!("The job {word}.  The Job was invoked by User sa.");
    push_history(
        g,
        inst,
        &job.job_id,
        0,
        "(Job outcome)",
        0,
        0,
        &msg,
        status,
        at,
    );
}

/// Asks SQL Server Agent to run job `idx` (sp_start_job): the job is running from now, its
/// steps run and their history is written later, before a later statement (see `catch_up`).
pub fn request_run(g: &mut Group, inst: InstanceId, idx: usize, start_step: usize, by: &str) {
    let now = g.now();
    let Some(j) = g.instances[inst].msdb.jobs.get_mut(idx) else {
        return;
    };
    j.running = true;
    j.activity = super::state::Activity {
        requested: Some(now),
        started: Some(now),
        ..Default::default()
    };
    let statements_left = if j.name.eq_ignore_ascii_case(super::logship::JOB_TO_MARK) {
        g.faults.restore_to_mark_statements
    } else {
        0
    };
    g.pending_runs.push(super::state::PendingRun {
        inst,
        job: idx,
        start_step,
        invoked_by: by.to_string(),
        statements_left,
    });
}

/// Ends the runs sp_start_job asked for whose time has come.
fn finish_requested_runs(g: &mut Group) {
    let mut due = Vec::new();
    g.pending_runs.retain_mut(|r| {
        if r.statements_left == 0 {
            due.push(r.clone());
            false
        } else {
            r.statements_left -= 1;
            true
        }
    });
    for r in due {
        run_job(g, r.inst, r.job, r.start_step, &r.invoked_by);
    }
}

/// Runs the jobs that fell due while real time passed (called before each request).
pub fn catch_up(g: &mut Group) {
    finish_requested_runs(g);
    let now = g.now();
    if now > g.sched_checked {
        let speed = g.clock.speed;
        let base = g.clock.clone();
        run_until(g, now);
        // Keep the running clock anchored to real time.
        g.clock = base;
        g.clock.speed = speed;
    }
}
