//! Every shipped runbook's sql and check steps against the simulator, over real TCP through
//! the app's own executor: the healthy scenario passes them all; each fault scenario fails
//! exactly the checks it lists; hostile operator values never change a statement's shape.

use std::collections::{BTreeMap, BTreeSet};

use btsdr::config::{Environment, MapSecrets};
use btsdr::engine::Variables;
use btsdr::runbook::expr::{Part, parse_template, quote_ident};
use btsdr::runbook::library::Library;
use btsdr::runbook::model::{Runbook, StepBody};
use btsdr::sim::drill::Drill;
use btsdr::sim::scenario::{NAMES, Scenario};
use btsdr::sql::executor::{TiberiusExecutor, run_once};
use btsdr::sql::types::{QueryOutput, SqlError, Statement};

fn library() -> Library {
    match Library::load(None) {
        Ok(l) => l,
        Err(d) => panic!("the shipped runbooks do not load: {d:?}"),
    }
}

/// Runbook defaults, then the drill's values, then overrides.
fn variables(rb: &Runbook, drill: &Drill, overrides: &BTreeMap<String, String>) -> Variables {
    let mut v = Variables::from_runbook(rb);
    for (k, val) in drill.variables() {
        if rb.variable(&k).is_some() {
            v.set(&k, val);
        }
    }
    for (k, val) in overrides {
        v.set(k, val.clone());
    }
    v
}

fn render(sql: &str, vars: &Variables) -> Result<String, String> {
    let mut out = String::new();
    for p in parse_template(sql)? {
        match p {
            Part::Lit(s) => out.push_str(&s),
            Part::Ident(n) => out.push_str(&quote_ident(
                vars.get(&n).ok_or(format!("no value for {n}"))?,
            )),
            other => return Err(format!("unexpected template part {other:?}")),
        }
    }
    Ok(out)
}

fn applicable(rb: &Runbook, step_id: &str, vars: &Variables) -> bool {
    let get = |n: &str| vars.get(n).map(str::to_string);
    let Some(sec) = rb.section_of(step_id) else {
        return false;
    };
    let Some(step) = rb.step(step_id) else {
        return false;
    };
    sec.when.as_ref().is_none_or(|c| c.eval(&get))
        && step.when.as_ref().is_none_or(|c| c.eval(&get))
}

fn statement(rb: &Runbook, step_id: &str, vars: &Variables) -> Statement {
    let step = rb.step(step_id).expect("step");
    let (role, db, sql, params, timeout) = step.statement().expect("sql/check step");
    Statement {
        role,
        database: render(db, vars).unwrap_or_else(|e| panic!("{step_id}: {e}")),
        sql: render(sql, vars).unwrap_or_else(|e| panic!("{step_id}: {e}")),
        params: params
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    vars.param(p).unwrap_or_else(|e| panic!("{step_id}: {e}")),
                )
            })
            .collect(),
        timeout_secs: timeout.min(60),
        long_running: false,
    }
}

/// Outcome of one step: Ok(()) or the failure text (SQL error or failed assertion messages).
fn outcome(
    rb: &Runbook,
    step_id: &str,
    vars: &Variables,
    result: Result<QueryOutput, SqlError>,
) -> Result<(), String> {
    let out = result.map_err(|e| format!("SQL error: {e}"))?;
    let StepBody::Check(c) = &rb.step(step_id).expect("step").body else {
        return Ok(());
    };
    let get = |n: &str| vars.get(n).map(str::to_string);
    let failed: Vec<String> = c
        .asserts
        .iter()
        .map(|a| a.check(out.first(), &get))
        .filter(|o| !o.passed)
        .map(|o| o.detail)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join(" | "))
    }
}

struct Harness {
    drill: Drill,
    exec: TiberiusExecutor,
}

async fn harness(name: &str) -> Harness {
    let mut sc = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
    sc.clock_speed = 0.0;
    let drill = Drill::start_with(sc, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let env: Environment = drill.environment();
    let secrets: MapSecrets = drill.secrets();
    let exec = TiberiusExecutor::new(&env, &secrets).unwrap_or_else(|e| panic!("{e}"));
    Harness { drill, exec }
}

/// The runbooks whose checks describe the steady state (what `btsdr check` runs); the
/// restore and disaster-recovery checks verify their own procedure's results.
const STEADY: &[&str] = &["backup", "readiness"];

/// Runs every check of the steady-state runbooks; returns `runbook:step -> failure`.
async fn run_checks(h: &Harness, lib: &Library) -> BTreeMap<String, String> {
    let mut failures = BTreeMap::new();
    for rb in lib
        .runbooks
        .iter()
        .filter(|r| STEADY.contains(&r.id.as_str()))
    {
        let vars = variables(rb, &h.drill, &BTreeMap::new());
        for (_, step) in rb.steps() {
            if !matches!(step.body, StepBody::Check(_)) || !applicable(rb, &step.id, &vars) {
                continue;
            }
            let stmt = statement(rb, &step.id, &vars);
            let r = run_once(&h.exec, stmt).await;
            if let Err(e) = outcome(rb, &step.id, &vars, r) {
                failures.insert(format!("{}:{}", rb.id, step.id), e);
            }
        }
    }
    failures
}

/// Runs one runbook's sql and check steps in order, doing the simulated equivalent of the
/// manual steps the later checks depend on (UpdateDatabase.vbs).
async fn run_procedure(h: &Harness, rb: &Runbook) -> BTreeMap<String, String> {
    let mut failures = BTreeMap::new();
    let vars = variables(rb, &h.drill, &BTreeMap::new());
    for (_, step) in rb.steps() {
        if !applicable(rb, &step.id, &vars) {
            continue;
        }
        if let StepBody::Manual(m) = &step.body {
            if m.commands
                .iter()
                .any(|c| c.run.contains("UpdateDatabase.vbs"))
            {
                h.drill.simulate_update_database();
            }
            continue;
        }
        if step.statement().is_none() {
            continue;
        }
        let stmt = statement(rb, &step.id, &vars);
        let r = run_once(&h.exec, stmt).await;
        if let Err(e) = outcome(rb, &step.id, &vars, r) {
            failures.insert(format!("{}:{}", rb.id, step.id), e);
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_passes_every_check() {
    let lib = library();
    let h = harness("healthy").await;
    let failures = run_checks(&h, &lib).await;
    h.drill.shutdown().await;
    assert!(
        failures.is_empty(),
        "checks failing on the healthy scenario:\n{failures:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_scenarios_fail_exactly_their_checks() {
    let lib = library();
    let mut problems = Vec::new();
    for name in NAMES.iter().filter(|n| **n != "healthy") {
        let h = harness(name).await;
        let failures = run_checks(&h, &lib).await;
        let got: BTreeSet<String> = failures.keys().cloned().collect();
        let want: BTreeSet<String> = h
            .drill
            .scenario
            .expect_failing_checks
            .iter()
            .cloned()
            .collect();
        if got != want {
            problems.push(format!("{name}: expected {want:?}\n  got {failures:#?}"));
        }
        // They fail on their assertions, with the runbook's message, not on a SQL error.
        for (id, why) in &failures {
            if why.starts_with("SQL error") || why.starts_with("cannot evaluate") {
                problems.push(format!(
                    "{name}: {id} failed without reaching its assertions: {why}"
                ));
            }
        }
        h.drill.shutdown().await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_runs_every_sql_and_check_step() {
    let lib = library();
    let mut all = BTreeMap::new();
    for rb in &lib.runbooks {
        let h = harness("healthy").await;
        all.extend(run_procedure(&h, rb).await);
        h.drill.shutdown().await;
    }
    assert!(
        all.is_empty(),
        "steps failing on the healthy scenario:\n{all:#?}"
    );
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_values_stay_parameters() {
    let lib = library();
    let hostile = [
        "O'Brien",
        "x]; DROP DATABASE master; --",
        "'; DROP DATABASE BizTalkMgmtDb; --",
        "名前\u{202e}ünï",
        &"A".repeat(10_000),
    ];
    let h = harness("healthy").await;
    // Every case is counted: a test that sends nothing proves nothing.
    let (mut sent, mut answered, mut server_errors, mut refused) = (0, 0, 0, 0);
    for rb in &lib.runbooks {
        for (_, step) in rb.steps() {
            let Some((_, _, _, params, _)) = step.statement() else {
                continue;
            };
            for p in params {
                for bad in hostile {
                    let mut o = BTreeMap::new();
                    o.insert(p.clone(), bad.to_string());
                    let vars = variables(rb, &h.drill, &o);
                    if !applicable(rb, &step.id, &vars) || !matches!(step.body, StepBody::Check(_))
                    {
                        continue;
                    }
                    if vars.param(p).is_err() {
                        refused += 1; // the variable's own rule refused the value
                        continue;
                    }
                    let stmt = statement(rb, &step.id, &vars);
                    sent += 1;
                    match run_once(&h.exec, stmt).await {
                        Ok(_) => answered += 1,
                        // A syntax error would mean the value became part of the statement's
                        // text (102 incorrect syntax, 105 unclosed quote, 156 near a keyword).
                        Err(SqlError::Server {
                            number, message, ..
                        }) if [102, 105, 156].contains(&number) => {
                            panic!(
                                "{}:{} with {p} = {bad:.40?}: the value changed the statement's shape: {message}",
                                rb.id, step.id
                            )
                        }
                        // Another SQL error (a database of that name does not exist...) is an
                        // answer about the value, as SQL Server would give it.
                        Err(SqlError::Server { .. }) => server_errors += 1,
                        Err(e) => panic!(
                            "{}:{} with {p} = {bad:.40?}: not an answer: {e}",
                            rb.id, step.id
                        ),
                    }
                }
            }
        }
    }
    eprintln!(
        "hostile values: {sent} statements sent ({answered} answered, {server_errors} SQL errors), {refused} values refused by their variable's rule"
    );
    assert!(sent >= 20, "only {sent} statements were sent");
    assert!(
        answered > 0,
        "no statement with a hostile value was answered"
    );
    // The databases are all still there.
    {
        let g = btsdr::sim::model::lock(&h.drill.group);
        assert!(g.instances.iter().all(|i| i.db("master").is_some()));
        assert!(g.instances[0].db("BizTalkMgmtDb").is_some());
    }
    h.drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_during_restore_surfaces_as_a_dropped_connection() {
    let h = harness("drop-during-restore").await;
    let file = {
        let g = btsdr::sim::model::lock(&h.drill.group);
        let r = g
            .mgmt
            .history
            .iter()
            .rev()
            .find(|r| r.backup_type == "db" && r.database_name == "SSODB")
            .expect("a full backup of SSODB");
        format!("{}{}", r.file_location, r.file_name)
    };
    let stmt = |sql: &str, params: Vec<(String, btsdr::sql::types::Param)>| Statement {
        role: btsdr::runbook::model::Role::Destination,
        database: "master".into(),
        sql: sql.into(),
        params,
        timeout_secs: 60,
        long_running: false,
    };
    let restore = "RESTORE DATABASE [SSODB] FROM DISK = @f WITH NORECOVERY, REPLACE";
    let p = vec![("f".to_string(), btsdr::sql::types::Param::Text(file))];
    let first = run_once(&h.exec, stmt(restore, p.clone())).await;
    assert!(matches!(first, Err(SqlError::Dropped { .. })), "{first:?}");
    // The outcome is unknown to the client; the server left the database RESTORING.
    let state = run_once(
        &h.exec,
        stmt(
            "SELECT state_desc FROM sys.databases WHERE name = N'SSODB'",
            vec![],
        ),
    )
    .await
    .expect("state");
    assert_eq!(
        state
            .first()
            .and_then(|s| s.get(0, "state_desc"))
            .map(|v| v.to_string())
            .as_deref(),
        Some("RESTORING")
    );
    let again = run_once(&h.exec, stmt(restore, p)).await;
    assert!(again.is_ok(), "{again:?}");
    h.drill.shutdown().await;
}
