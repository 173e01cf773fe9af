//! `btsdr check` over real TCP against the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::BTreeSet;
use std::sync::Arc;

use btsdr::batch::check::{CheckOptions, CheckStatus, CheckSummary, ProgressStyle, check};
use btsdr::batch::{Answers, Target};
use btsdr::config::{Encrypt, Environment, MapSecrets, ServerProfile};
use btsdr::runbook::library::Library;
use btsdr::runbook::model::Runbook;
use btsdr_sim::drill::Drill;
use serde_json::Value as J;

fn runbook(id: &str) -> Arc<Runbook> {
    let lib = Library::load(None).expect("embedded runbooks load");
    lib.get(id).unwrap_or_else(|| panic!("runbook {id}"))
}

fn opts(rb: &str, target: Target, dir: &std::path::Path, json: bool) -> CheckOptions {
    CheckOptions {
        runbook: runbook(rb),
        target,
        data_dir: dir.to_path_buf(),
        operator: "tester".into(),
        only: vec![],
        include_opt_in: false,
        json,
        sets: vec![],
        answers: Answers::default(),
        progress: ProgressStyle::Quiet,
        keep_open: false,
        width: None,
    }
}

async fn run(o: CheckOptions) -> (CheckSummary, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let s = check(o, &mut out, &mut err).await;
    (
        s,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[tokio::test]
async fn healthy_passes_and_is_journaled() {
    let drill = Drill::start("healthy").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let (s, out, err) = run(opts(
        "readiness",
        Target::from_drill(&drill).unwrap(),
        dir.path(),
        false,
    ))
    .await;
    eprintln!("check on healthy: {:?}\n{out}{err}", t.elapsed());
    assert_eq!(s.code, 0, "{out}{err}");
    assert!(s.results.iter().any(|r| r.status == CheckStatus::Pass));
    for r in &s.results {
        assert!(
            matches!(
                r.status,
                CheckStatus::Pass | CheckStatus::Skipped | CheckStatus::NotApplicable
            ),
            "{} is {:?}: {}",
            r.id,
            r.status,
            r.evidence_line
        );
    }
    assert!(out.contains("CHECK") && out.contains("WHAT TO DO"), "{out}");
    // The opt-in check is not run: no evidence, and what to do says how to run it.
    let opt_in = s
        .results
        .iter()
        .find(|r| r.id == "daily.verifyonly")
        .unwrap();
    assert_eq!(
        (opt_in.status, opt_in.evidence_line.as_str()),
        (CheckStatus::Skipped, "not run")
    );
    assert!(opt_in.advice.iter().any(|a| a.contains("--include-opt-in")));
    // The run is a closed, intact session.
    let read = btsdr::journal::read_records(s.journal.as_deref().unwrap()).unwrap();
    assert!(read.report.is_intact());
    let names: Vec<&str> = read.entries.iter().map(|r| r.event.name()).collect();
    assert_eq!(names.first(), Some(&"session_started"));
    assert_eq!(names.last(), Some(&"session_closed"));
    assert_eq!(
        names.iter().filter(|n| **n == "step_finished").count(),
        s.results.iter().filter(|r| r.duration_ms.is_some()).count()
    );
    drill.shutdown().await;
}

/// Every scenario fails exactly the checks it lists (for readiness and every runbook it names).
#[tokio::test]
async fn scenarios_fail_exactly_their_expected_checks() {
    let names: Vec<String> = btsdr_sim::scenario::EMBEDDED
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(names.iter().any(|n| n == "healthy"), "scenarios: {names:?}");
    // `btsdr check` runs health checks only; scenarios also list checks that only a full
    // runbook run reaches (tests/sim_runbooks.rs holds those to account).
    let lib = btsdr::runbook::library::Library::load(None).unwrap();
    let is_health = |key: &str| {
        key.split_once(':')
            .and_then(|(rb, id)| lib.get(rb).and_then(|r| r.step(id).map(|s| (r.clone(), s.clone()))))
            .is_some_and(|(_, s)| matches!(s.body, btsdr::runbook::model::StepBody::Check(ref c) if c.health && !c.opt_in))
    };
    let mut problems = Vec::new();
    for name in &names {
        let drill = Drill::start(name).await.unwrap();
        let expected: BTreeSet<String> = drill
            .scenario
            .expect_failing_checks
            .iter()
            .filter(|k| is_health(k))
            .cloned()
            .collect();
        let mut runbooks: BTreeSet<String> = expected
            .iter()
            .filter_map(|e| e.split_once(':').map(|(r, _)| r.to_string()))
            .collect();
        runbooks.insert("readiness".into());
        let mut failing = BTreeSet::new();
        let mut codes = Vec::new();
        for rb in &runbooks {
            let dir = tempfile::tempdir().unwrap();
            let (s, out, err) = run(opts(
                rb,
                Target::from_drill(&drill).unwrap(),
                dir.path(),
                false,
            ))
            .await;
            codes.push(s.code);
            for r in &s.results {
                match r.status {
                    CheckStatus::Fail => {
                        failing.insert(format!("{rb}:{}", r.id));
                    }
                    CheckStatus::Error => problems.push(format!(
                        "{name}: {rb}:{} could not run: {}\n{out}{err}",
                        r.id, r.evidence_line
                    )),
                    _ => {}
                }
            }
        }
        if failing != expected {
            problems.push(format!(
                "{name}: failing {failing:?}, expected {expected:?}"
            ));
        }
        let want = if expected.is_empty() { 0 } else { 1 };
        if codes.iter().copied().max() != Some(want) {
            problems.push(format!("{name}: exit codes {codes:?}, expected {want}"));
        }
        drill.shutdown().await;
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn unreachable_server_is_exit_2() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again
    let mut p = ServerProfile::sql_login("127.0.0.1", Some(port), "btsdr", Encrypt::NotSupported);
    p.connect_timeout_secs = 3;
    let env = Environment {
        name: "nowhere".into(),
        description: String::new(),
        source: Some(p),
        msgbox: vec![],
        destination: None,
    };
    let secrets = MapSecrets::new().with(btsdr_types::Role::Source, "btsdr", "x");
    let target = Target::from_environment(&env, &secrets).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts("readiness", target, dir.path(), false);
    o.sets = vec![("source_sql_server".into(), "SQLBTS01".into())];
    let (s, out, err) = run(o).await;
    assert_eq!(s.code, 2, "{out}{err}");
    assert!(s.results.iter().any(|r| r.status == CheckStatus::Error));
    assert!(
        out.contains("cannot connect") && out.contains("reachable"),
        "{out}"
    );
}

/// A validator for the JSON Schema keywords docs/check-result.schema.json uses.
fn validate(schema: &J, v: &J, path: &str, errs: &mut Vec<String>) {
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        other => panic!("schema uses type {other}"),
    };
    for (k, s) in schema.as_object().unwrap() {
        match k.as_str() {
            "type" => {
                let ok = match s {
                    J::String(t) => type_ok(t),
                    J::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap())),
                    _ => panic!("bad type"),
                };
                if !ok {
                    errs.push(format!("{path}: {v} is not {s}"));
                }
            }
            "enum" => {
                if !s.as_array().unwrap().contains(v) {
                    errs.push(format!("{path}: {v} not in {s}"));
                }
            }
            "const" => {
                if s != v {
                    errs.push(format!("{path}: {v} != {s}"));
                }
            }
            "minimum" => {
                if v.as_f64().is_some_and(|x| x < s.as_f64().unwrap()) {
                    errs.push(format!("{path}: {v} < {s}"));
                }
            }
            "minLength" => {
                if v.as_str()
                    .is_some_and(|x| (x.chars().count() as u64) < s.as_u64().unwrap())
                {
                    errs.push(format!("{path}: too short"));
                }
            }
            "required" => {
                for f in s.as_array().unwrap() {
                    if v.get(f.as_str().unwrap()).is_none() {
                        errs.push(format!("{path}: missing {f}"));
                    }
                }
            }
            "properties" => {
                if let Some(o) = v.as_object() {
                    for (f, fs) in s.as_object().unwrap() {
                        if let Some(x) = o.get(f) {
                            validate(fs, x, &format!("{path}.{f}"), errs);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if s == &J::Bool(false)
                    && let Some(o) = v.as_object()
                {
                    let props = schema["properties"].as_object().unwrap();
                    for f in o.keys().filter(|f| !props.contains_key(*f)) {
                        errs.push(format!("{path}: unexpected field {f}"));
                    }
                }
            }
            "items" => {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    validate(s, x, &format!("{path}[{i}]"), errs);
                }
            }
            "oneOf" => {
                let n = s
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|alt| {
                        let mut e = Vec::new();
                        validate(alt, v, path, &mut e);
                        e.is_empty()
                    })
                    .count();
                if n != 1 {
                    errs.push(format!("{path}: matches {n} of oneOf"));
                }
            }
            "$schema" | "$id" | "title" | "description" => {}
            other => panic!("the test validator does not know schema keyword {other}"),
        }
    }
}

#[tokio::test]
async fn json_lines_match_the_documented_schema() {
    let schema: J = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/check-result.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // A failing scenario and opt-in checks give every status and field shape.
    let drill = Drill::start("stale-full").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts(
        "readiness",
        Target::from_drill(&drill).unwrap(),
        dir.path(),
        true,
    );
    o.include_opt_in = true;
    let (s, out, err) = run(o).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), s.results.len(), "{out}{err}");
    let mut errs = Vec::new();
    for l in &lines {
        let v: J = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        validate(&schema, &v, "$", &mut errs);
    }
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    // The validator itself rejects a wrong object.
    let mut bad: J = serde_json::from_str(lines[0]).unwrap();
    bad["status"] = "ok".into();
    bad["extra"] = 1.into();
    let mut e = Vec::new();
    validate(&schema, &bad, "$", &mut e);
    assert_eq!(e.len(), 2, "{e:?}");
    drill.shutdown().await;
}
