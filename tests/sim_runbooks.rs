//! Every shipped runbook's sql and check steps against the simulator, over real TCP through
//! the app's own executor: the healthy scenario passes them all; each fault scenario fails
//! exactly the checks it lists; hostile operator values never change a statement's shape.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::{BTreeMap, BTreeSet};

use btsdr::config::{DrillConfig, Environment, MapSecrets};
use btsdr::engine::Variables;
use btsdr::runbook::expr::{Part, escape_xml, parse_template, quote_ident, render_template};
use btsdr::runbook::library::Library;
use btsdr::runbook::model::{Escape, Runbook, StepBody};
use btsdr::sql::executor::{TiberiusExecutor, run_once};
use btsdr_sim::drill::Drill;
use btsdr_sim::scenario::{NAMES, Scenario};
use btsdr_types::{QueryOutput, ResultSet, SqlError, Statement};

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
    harness_with(Scenario::load(name).unwrap_or_else(|e| panic!("{e}"))).await
}

async fn harness_with(mut sc: Scenario) -> Harness {
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
    run_procedure_with(h, rb, &BTreeMap::new()).await
}

/// [`run_procedure`] with variable overrides.
async fn run_procedure_with(
    h: &Harness,
    rb: &Runbook,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut failures = BTreeMap::new();
    let vars = variables(rb, &h.drill, overrides);
    for (_, step) in rb.steps() {
        if !applicable(rb, &step.id, &vars) {
            continue;
        }
        if let StepBody::Manual(m) = &step.body {
            // Confirmed, as the app tells the drill (remedies, UpdateDatabase.vbs).
            let commands: Vec<&str> = m.commands.iter().map(|c| c.run.as_str()).collect();
            h.drill.manual_done(&rb.id, &step.id, &commands);
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
        // They fail on their assertions, with the runbook's message, not on a SQL error
        // (but where the scenario's schema differs: then SQL Server's error is the catch).
        for (id, why) in failures
            .iter()
            .filter(|_| !h.drill.scenario.expect_sql_errors)
        {
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
        let g = btsdr_sim::model::lock(&h.drill.group);
        assert!(g.instances.iter().all(|i| i.db("master").is_some()));
        assert!(g.instances[0].db("BizTalkMgmtDb").is_some());
    }
    h.drill.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_during_restore_surfaces_as_a_dropped_connection() {
    let h = harness("drop-during-restore").await;
    let file = {
        let g = btsdr_sim::model::lock(&h.drill.group);
        let r = g
            .mgmt
            .history
            .iter()
            .rev()
            .find(|r| r.backup_type == "db" && r.database_name == "SSODB")
            .expect("a full backup of SSODB");
        format!("{}{}", r.file_location, r.file_name)
    };
    let stmt = |sql: &str, params: Vec<(String, btsdr_types::Param)>| Statement {
        role: btsdr_types::Role::Destination,
        database: "master".into(),
        sql: sql.into(),
        params,
        timeout_secs: 60,
        long_running: false,
    };
    let restore = "RESTORE DATABASE [SSODB] FROM DISK = @f WITH NORECOVERY, REPLACE";
    let p = vec![("f".to_string(), btsdr_types::Param::Text(file))];
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

/// Runs a runbook's sql and check steps in order (as `run_procedure`) and keeps each step's
/// first result set, the evidence a generate step's `#each` reads.
async fn evidence_of(
    h: &Harness,
    rb: &Runbook,
    vars: &Variables,
    update_database: bool,
) -> (BTreeMap<String, ResultSet>, BTreeMap<String, String>) {
    let mut evidence = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for (_, step) in rb.steps() {
        if !applicable(rb, &step.id, vars) {
            continue;
        }
        if let StepBody::Manual(m) = &step.body {
            if update_database {
                let commands: Vec<&str> = m.commands.iter().map(|c| c.run.as_str()).collect();
                h.drill.manual_done(&rb.id, &step.id, &commands);
            }
            continue;
        }
        if step.statement().is_none() {
            continue;
        }
        let r = run_once(&h.exec, statement(rb, &step.id, vars)).await;
        if let Some(set) = r.as_ref().ok().and_then(|o| o.first()) {
            evidence.insert(step.id.clone(), set.clone());
        }
        if let Err(e) = outcome(rb, &step.id, vars, r) {
            failures.insert(step.id.clone(), e);
        }
    }
    (evidence, failures)
}

/// A generate step's file, rendered from the evidence as the engine renders it.
fn generated(
    rb: &Runbook,
    step_id: &str,
    vars: &Variables,
    evidence: &BTreeMap<String, ResultSet>,
) -> String {
    let Some(StepBody::Generate(g)) = rb.step(step_id).map(|s| &s.body) else {
        panic!("{}:{step_id} is not a generate step", rb.id);
    };
    assert!(matches!(g.escape, Escape::Xml), "{step_id} must escape XML");
    let parts = parse_template(&g.template).unwrap_or_else(|e| panic!("{step_id}: {e}"));
    let get = |n: &str| vars.get(n).map(str::to_string);
    let rows = |s: &str| evidence.get(s).cloned();
    render_template(&parts, &escape_xml, &get, &rows).unwrap_or_else(|e| panic!("{step_id}: {e}"))
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The healthy group (Rules Engine and BAM configured) with a second, non-master MessageBox
/// whose name sorts before the master's, so the file must order by master, not by name.
fn scenario_with_rules_bam_two_msgboxes() -> Scenario {
    Scenario::load("several-msgboxes").unwrap_or_else(|e| panic!("{e}"))
}

/// The healthy group without the Rules Engine and BAM databases: adm_Group names neither.
fn scenario_core_only() -> Scenario {
    let mut sc = Scenario::load("healthy").unwrap_or_else(|e| panic!("{e}"));
    sc.databases.retain(|d| {
        !matches!(
            d.name.as_str(),
            "BizTalkRuleEngineDb" | "BAMPrimaryImport" | "BAMAlertsApplication"
        )
    });
    sc
}

/// Runs `runbook` on the scenario and compares its generated update file with the fixture
/// written from Microsoft's documented SampleUpdateInfo.xml format.
async fn update_info_matches(runbook: &str, step_id: &str, sc: Scenario, fixture_name: &str) {
    let lib = library();
    let rb = lib.get(runbook).expect("runbook");
    let h = harness_with(sc).await;
    let mut o = BTreeMap::new();
    o.insert("bam_analysis_server".to_string(), "SSASDR01".to_string());
    let vars = variables(&rb, &h.drill, &o);
    let (evidence, failures) = evidence_of(&h, &rb, &vars, true).await;
    h.drill.shutdown().await;
    assert!(
        failures.is_empty(),
        "{runbook}: steps failing:\n{failures:#?}"
    );
    let got = generated(&rb, step_id, &vars, &evidence);
    let want = fixture(fixture_name);
    assert_eq!(
        got.trim_end(),
        want.trim_end(),
        "{runbook}:{step_id} differs from tests/fixtures/{fixture_name}:\n{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_update_info_has_rules_engine_bam_and_the_master_first() {
    update_info_matches(
        "restore",
        "db.sample-update-info",
        scenario_with_rules_bam_two_msgboxes(),
        "update-info-rules-bam.xml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_update_info_leaves_out_what_is_not_configured() {
    update_info_matches(
        "restore",
        "db.sample-update-info",
        scenario_core_only(),
        "update-info-core.xml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_update_info_has_rules_engine_bam_and_the_master_first() {
    update_info_matches(
        "disaster-recovery",
        "group.sample-update-info",
        scenario_with_rules_bam_two_msgboxes(),
        "update-info-rules-bam.xml",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dr_update_info_leaves_out_what_is_not_configured() {
    update_info_matches(
        "disaster-recovery",
        "group.sample-update-info",
        scenario_core_only(),
        "update-info-core.xml",
    )
    .await;
}

/// Without UpdateDatabase.vbs the restored group still names both old instances: db.old-names
/// must list every adm_Group server column that is set, and the MessageBoxes, which live on the
/// old MessageBox instance (found only because that name is searched too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_names_finds_every_group_column_and_both_old_instances() {
    let lib = library();
    let rb = lib.get("restore").expect("restore");
    let h = harness("healthy").await;
    let vars = variables(&rb, &h.drill, &BTreeMap::new());
    let (evidence, failures) = evidence_of(&h, &rb, &vars, false).await;
    h.drill.shutdown().await;
    assert!(
        failures.contains_key("db.old-names"),
        "db.old-names passed although UpdateDatabase.vbs never ran: {failures:#?}"
    );
    let set = evidence.get("db.old-names").expect("db.old-names rows");
    let found: BTreeSet<String> = (0..set.rows.len())
        .filter_map(|i| {
            let place = set.get(i, "place")?.to_string();
            let item = set.get(i, "item")?.to_string();
            Some(format!("{place}.{item}"))
        })
        .collect();
    for want in [
        "adm_Group.TrackingDBServerName",
        "adm_Group.SubscriptionDBServerName",
        "adm_Group.BamDBServerName",
        "adm_Group.RuleEngineDBServerName",
        "adm_Group.SSOServerName",
        "adm_MessageBox.BizTalkMsgBoxDb",
        "adm_OtherBackupDatabases.SSODB",
    ] {
        assert!(
            found.contains(want),
            "{want} missing from {found:#?}\n{set:#?}"
        );
    }
    // Tracking Analysis is not configured (''): never reported.
    assert!(
        !found.contains("adm_Group.TrackAnalysisServerName"),
        "{found:#?}"
    );
}

/// End to end, `]` in an identifier: every check step of the shipped runbooks that names a
/// database through `{{ident:x}}` is started by the engine (its own rendering) with a hostile
/// value and sent to the simulator over TCP. SQL Server must see one bracket-quoted name (an
/// answer about that name, never a syntax error), and nothing else may run: `master` stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_in_an_identifier_never_changes_the_statement() {
    use btsdr::engine::{Effect, Engine, EngineOptions, Input};
    let lib = library();
    let h = harness("healthy").await;
    let hostile = "Biz]Talk]; DROP DATABASE master; --";
    let (mut sent, mut with_ident) = (0, BTreeSet::new());
    for rb in &lib.runbooks {
        for (_, step) in rb.steps() {
            let StepBody::Check(c) = &step.body else {
                continue;
            };
            let idents: Vec<String> = parse_template(&c.sql)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| match p {
                    Part::Ident(n) => Some(n),
                    _ => None,
                })
                .collect();
            for name in idents {
                let mut o = BTreeMap::new();
                o.insert(name.clone(), hostile.to_string());
                let mut vars = variables(rb, &h.drill, &o);
                if !applicable(rb, &step.id, &vars) {
                    continue;
                }
                // The shipped variable rules already refuse `]` in names; take the rule off
                // so the quoting itself is what is tested (and fill what a start requires).
                let mut open = (**rb).clone();
                for v in open.variables.iter_mut() {
                    let unset = vars.get(&v.name).is_none_or(str::is_empty);
                    if v.name == name || (v.required && unset) {
                        v.pattern = None;
                        v.min_len = None;
                        v.max_len = None;
                        v.choices.clear();
                    }
                    if v.required && unset {
                        vars.set(&v.name, "placeholder".to_string());
                    }
                }
                let rb = std::sync::Arc::new(open);
                let mut e = Engine::new(
                    rb,
                    vars,
                    EngineOptions {
                        operator: "t".into(),
                        session_id: "s".into(),
                        environment: "drill:healthy".into(),
                        drill: true,
                        ..EngineOptions::default()
                    },
                );
                let started = e.handle(Input::Start, chrono::Utc::now());
                assert!(
                    !started.iter().any(|f| matches!(f, Effect::Refused { .. })),
                    "{}: {started:?}",
                    step.id
                );
                let fx = e.handle(Input::Run(step.id.clone()), chrono::Utc::now());
                let Some(mut stmt) = fx.into_iter().find_map(|f| match f {
                    Effect::RunSql { statement, .. } => Some(statement),
                    _ => None,
                }) else {
                    continue; // waits for another step: not startable on its own
                };
                assert!(
                    stmt.sql.contains("[Biz]]Talk]]; DROP DATABASE master; --]"),
                    "{}:{} did not bracket-quote {name}: {}",
                    rb_id(&lib, &step.id),
                    step.id,
                    stmt.sql
                );
                stmt.timeout_secs = stmt.timeout_secs.min(60);
                sent += 1;
                with_ident.insert(format!("{}:{name}", step.id));
                match run_once(&h.exec, stmt).await {
                    Err(SqlError::Server {
                        number, message, ..
                    }) if [102, 105, 156].contains(&number) => panic!(
                        "{}: the value changed the statement's shape: {message}",
                        step.id
                    ),
                    Ok(_) | Err(SqlError::Server { .. }) => {}
                    Err(e) => panic!("{}: not an answer: {e}", step.id),
                }
            }
        }
    }
    assert!(
        sent >= 3,
        "only {sent} statements with identifiers were sent"
    );
    let master = Statement {
        role: btsdr_types::Role::Source,
        database: "master".into(),
        sql: "SELECT name FROM sys.databases WHERE name = N'master'".into(),
        params: vec![],
        timeout_secs: 30,
        long_running: false,
    };
    let out = run_once(&h.exec, master)
        .await
        .expect("the simulator answers");
    assert_eq!(out.sets[0].rows.len(), 1, "master was dropped");
    eprintln!("identifiers: {sent} statements sent for {with_ident:?}");
}

fn rb_id<'a>(lib: &'a Library, step: &str) -> &'a str {
    lib.runbooks
        .iter()
        .find(|r| r.step(step).is_some())
        .map_or("?", |r| r.id.as_str())
}

/// Runs the named steps of `runbook` in order with `overrides`; each step's rows or failure.
async fn run_steps(
    h: &Harness,
    runbook: &str,
    steps: &[&str],
    overrides: &[(&str, &str)],
) -> BTreeMap<String, Result<ResultSet, String>> {
    let lib = library();
    let rb = lib.get(runbook).expect("runbook");
    let o: BTreeMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let vars = variables(&rb, &h.drill, &o);
    let mut out = BTreeMap::new();
    for id in steps {
        assert!(applicable(&rb, id, &vars), "{runbook}:{id} does not apply");
        let r = run_once(&h.exec, statement(&rb, id, &vars)).await;
        let rows = r
            .as_ref()
            .ok()
            .and_then(|o| o.first().cloned())
            .unwrap_or_default();
        out.insert(id.to_string(), outcome(&rb, id, &vars, r).map(|()| rows));
    }
    out
}

const PLAN: &[&str] = &["db.reachable-marks", "db.plan-chain", "db.plan-final"];

/// Fix 2: a partial set between the last full set and the newest mark breaks the chain; the
/// plan must refuse (it used to skip the partial set and plan a chain with a gap) and
/// db.reachable-marks must list only marks before the partial set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_set_after_the_last_full_set_is_never_planned_across() {
    let h = harness("partial-set").await;
    let r = run_steps(&h, "restore", PLAN, &[("use_log_shipping", "false")]).await;
    h.drill.shutdown().await;
    for id in ["db.plan-chain", "db.plan-final"] {
        let why = r[id]
            .as_ref()
            .err()
            .unwrap_or_else(|| panic!("{id} planned across the partial set: {r:#?}"));
        assert!(why.contains("partial"), "{id}: {why}");
    }
    let marks = r["db.reachable-marks"]
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!marks.rows.is_empty());
    // The partial set ran 25 minutes before 02:40: every reachable mark is older.
    for i in 0..marks.rows.len() {
        let m = marks
            .get(i, "mark_name")
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert!(
            m.as_str() < "BTS_2026_11_21_02_15",
            "{m} is after the partial set"
        );
    }
    // A mark before the partial set can still be planned.
    let older = marks
        .get(0, "mark_name")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let h = harness("partial-set").await;
    let r = run_steps(
        &h,
        "restore",
        PLAN,
        &[
            ("use_log_shipping", "false"),
            ("target_mark", older.as_str()),
        ],
    )
    .await;
    h.drill.shutdown().await;
    for id in PLAN {
        assert!(r[*id].is_ok(), "{id} to {older}: {:?}", r[*id]);
    }
}

/// Without a partial set the newest mark is planned: one full and later logs per database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_plans_the_newest_mark_without_log_shipping() {
    let h = harness("healthy").await;
    let r = run_steps(&h, "restore", PLAN, &[("use_log_shipping", "false")]).await;
    h.drill.shutdown().await;
    for id in PLAN {
        assert!(r[*id].is_ok(), "{id}: {:?}", r[*id]);
    }
    let newest = r["db.reachable-marks"]
        .as_ref()
        .map(|s| s.get(0, "mark_name").map(|v| v.to_string()))
        .ok()
        .flatten();
    let final_mark = r["db.plan-final"]
        .as_ref()
        .map(|s| s.get(0, "stop_mark").map(|v| v.to_string()))
        .ok()
        .flatten();
    assert!(newest.is_some());
    assert_eq!(newest, final_mark);
}

/// Every scenario that names procedure steps (`expect_failing_steps`): running the runbook's
/// statements in order on it, each named step fails on its own assertion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_scenarios_fail_their_procedure_steps() {
    let lib = library();
    let mut problems = Vec::new();
    let mut seen = 0;
    for name in NAMES {
        let sc = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
        let want = sc.expect_failing_steps.clone();
        let overrides = sc.procedure_variables.clone();
        let runbooks: BTreeSet<&str> = want
            .iter()
            .filter_map(|id| id.split_once(':').map(|(r, _)| r))
            .collect();
        for rb_id in runbooks {
            let rb = lib
                .get(rb_id)
                .unwrap_or_else(|| panic!("{name}: no runbook {rb_id}"));
            let h = harness(name).await;
            let failures = run_procedure_with(&h, &rb, &overrides).await;
            h.drill.shutdown().await;
            for id in want.iter().filter(|w| w.starts_with(&format!("{rb_id}:"))) {
                seen += 1;
                match failures.get(id) {
                    None => problems.push(format!("{name}: {id} passed")),
                    Some(why) if why.starts_with("SQL error") && !sc.expect_sql_errors => problems
                        .push(format!(
                            "{name}: {id} failed on SQL, not its assertions: {why}"
                        )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(seen >= 2, "no scenario names procedure steps");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Fix 4: Restore To Mark's outcome is this run's, not the newest history row: while the run
/// started tonight goes on, the check says "still running" (an earlier rehearsal's success
/// used to pass it); when it ends in failure, the check fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_to_mark_outcome_judges_the_run_just_started() {
    let h = harness("restore-to-mark-running").await;
    let steps = ["db.ls-restore-to-mark", "db.ls-restore-to-mark-outcome"];
    let r = run_steps(&h, "restore", &steps, &[]).await;
    assert!(r["db.ls-restore-to-mark"].is_ok(), "{r:#?}");
    let why = r["db.ls-restore-to-mark-outcome"]
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("passed while the job runs: {r:#?}"));
    assert!(why.contains("still running"), "{why}");
    assert!(!why.contains("failed:"), "{why}");
    // Let the job run to its end (it ends after a few statements), then look again.
    for _ in 0..8 {
        let _ = run_once(
            &h.exec,
            Statement {
                role: btsdr_types::Role::Destination,
                database: "master".into(),
                sql: "SELECT 1 AS x;".into(),
                params: Vec::new(),
                timeout_secs: 30,
                long_running: false,
            },
        )
        .await;
    }
    let r = run_steps(&h, "restore", &["db.ls-restore-to-mark-outcome"], &[]).await;
    h.drill.shutdown().await;
    let why = r["db.ls-restore-to-mark-outcome"]
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("passed although the run failed: {r:#?}"));
    assert!(why.contains("Restore To Mark failed"), "{why}");
    assert!(!why.contains("still running"), "{why}");
}

/// Fix 3: on blob storage (http:// as Microsoft's example, and https://) the restore plan reads
/// every file FROM URL with '/' separators, as sp_BackupBizTalk wrote them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_backups_are_planned_from_url() {
    for name in ["blob-http", "blob-https"] {
        let h = harness(name).await;
        let r = run_steps(&h, "restore", PLAN, &[("use_log_shipping", "false")]).await;
        h.drill.shutdown().await;
        for id in ["db.plan-chain", "db.plan-final"] {
            let rows = r[id]
                .as_ref()
                .unwrap_or_else(|e| panic!("{name} {id}: {e}"));
            assert!(!rows.rows.is_empty(), "{name} {id}: no rows");
            for i in 0..rows.rows.len() {
                let device = rows
                    .get(i, "device")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let file = rows
                    .get(i, "backup_file")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                assert_eq!(device, "URL", "{name} {id}: {file}");
                assert!(
                    file.starts_with(name.trim_start_matches("blob-")) && !file.contains('\\'),
                    "{name} {id}: {file}"
                );
            }
        }
    }
}
