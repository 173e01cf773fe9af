//! Opens sessions for the TUI: new runs against a configured environment, drills on the
//! built-in simulator, and resumed sessions (journal replay). Used by `btsdr`, `btsdr drill`
//! and `btsdr run`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;

use crate::app::Request;
use crate::app::driver::{Opened, Opener};
use crate::config::DrillConfig;
use crate::config::{Config, EnvSecrets, Environment};
use crate::engine::Event;
use crate::engine::{Engine, EngineOptions, Variables};
use crate::journal::{self, JournalWriter};
use crate::runbook::library::Library;
use crate::runbook::model::Runbook;
use crate::sql::deferred::DeferredExecutor;
use crate::sql::executor::{Executor, TiberiusExecutor};
use btsdr_sim::drill::Drill;
use btsdr_types::Role;

/// Runbook variable values as `(name, value)`.
type Vars = Vec<(String, String)>;

pub use crate::config::DRILL_PREFIX;

/// The runbook a drill walks through.
pub const DRILL_RUNBOOK: &str = "backup";

pub struct LiveOpener {
    pub library: Library,
    pub config: Config,
    pub data_dir: PathBuf,
    /// Running simulators; dropped (and stopped) with the opener.
    /// Each with the number `start_drill` gave it.
    drills: Arc<std::sync::Mutex<Vec<(u64, Drill)>>>,
    /// The number of the drill the last `start_drill` / `running_drill` returned.
    last_drill: u64,
    /// Runbook for drills (`btsdr drill --runbook`).
    pub drill_runbook: String,
    pub dry_run: bool,
    pub two_person_rule: bool,
    /// Passwords typed at the terminal before the UI started (see `config::secrets`).
    pub prompted: crate::config::MapSecrets,
    /// Who is at the keyboard now (`--operator`, `BTSDR_OPERATOR`, the OS user): a resumed
    /// session's records are attributed to them, and a change of hands is journaled.
    pub operator: Option<String>,
    /// Runbook values from `--set` / `--answers` (validated by the CLI against the runbook it
    /// names): the next new session takes them, over the runbook's, environment's and
    /// drill scenario's values.
    pub sets: Vec<(String, String)>,
    /// The open session when it is a drill: its simulator follows it.
    current: Option<CurrentDrill>,
}

/// The drill session the TUI has open.
struct CurrentDrill {
    runbook: Arc<Runbook>,
    /// Its simulator's number in `LiveOpener::drills` (absent until it listens).
    drill: u64,
    /// The session's output folder, which holds the simulator's snapshot.
    files_dir: PathBuf,
}

/// The runbook variable that says whether the group uses log shipping.
pub const LOG_SHIPPING_VAR: &str = "use_log_shipping";

/// The simulator's snapshot in a drill session's output folder (`btsdr_sim::replay`).
pub const SIM_SNAPSHOT: &str = "simulator.json";

impl LiveOpener {
    pub fn new(library: Library, config: Config, data_dir: PathBuf) -> LiveOpener {
        LiveOpener {
            library,
            config,
            data_dir,
            drills: Arc::default(),
            last_drill: 0,
            drill_runbook: DRILL_RUNBOOK.to_string(),
            dry_run: false,
            two_person_rule: false,
            prompted: crate::config::MapSecrets::new(),
            operator: None,
            sets: Vec::new(),
            current: None,
        }
    }

    fn runbook(&self, id: &str) -> Result<Arc<Runbook>, String> {
        self.library.get(id).ok_or_else(|| {
            format!(
                "no runbook `{id}`; available: {}",
                self.library.ids().join(", ")
            )
        })
    }

    fn environment(&self, name: &str) -> Result<Environment, String> {
        self.config.environment(name).cloned().ok_or_else(|| {
            let have: Vec<&String> = self.config.environments.keys().collect();
            if have.is_empty() {
                format!(
                    "no environment `{name}`: {} defines none. Add [environments.{name}] (see 'Against real servers' in the README) or try `btsdr drill`",
                    self.config.path.as_ref().map_or_else(|| "the config file".to_string(), |p| p.display().to_string())
                )
            } else {
                format!("no environment `{name}`; configured: {}", have.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            }
        })
    }

    /// Starts the simulator for `scenario` in the background and returns an executor that
    /// queues statements until it listens, plus the scenario's runbook values. The UI is up
    /// at once; building the scenario's history takes a few hundred milliseconds.
    fn start_drill(&mut self, scenario: &str) -> Result<(Arc<dyn Executor>, Vars), String> {
        self.start_drill_replaying(scenario, Vec::new(), Vec::new())
    }

    /// Like `start_drill`, after running `events` (a snapshot's) again on the new group.
    fn start_drill_replaying(
        &mut self,
        scenario: &str,
        events: Vec<btsdr_sim::replay::SimEvent>,
        remap: Vec<(Role, Role)>,
    ) -> Result<(Arc<dyn Executor>, Vars), String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "internal error: no async runtime".to_string())?;
        let sc = btsdr_sim::scenario::Scenario::load(scenario)?;
        let vars: Vec<(String, String)> = btsdr_sim::drill::scenario_variables(&sc)
            .into_iter()
            .collect();
        let deferred = DeferredExecutor::new(Role::ALL.to_vec(), "the drill simulator");
        let ready = deferred.clone();
        let drills = Arc::clone(&self.drills);
        self.last_drill += 1;
        let number = self.last_drill;
        handle.spawn(async move {
            match Drill::start_replaying(sc, None, &events).await {
                Ok(drill) => {
                    let env = remapped(&drill.environment(), &remap);
                    let exec = TiberiusExecutor::new(&env, &drill.secrets())
                        .map(|e| Arc::new(e) as Arc<dyn Executor>)
                        .map_err(|e| e.to_string());
                    drills
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((number, drill));
                    ready.resolve(exec);
                }
                Err(e) => {
                    tracing::error!(error = %e, "the drill simulator did not start");
                    ready.resolve(Err(format!("the drill simulator did not start: {e}")));
                }
            }
        });
        Ok((Arc::new(deferred), vars))
    }

    /// What the session journals about `env`'s connections (and a config file other users
    /// can read), as `check` and `run --batch` do.
    fn security_warnings(&self, env: &Environment) -> Vec<String> {
        let profiles = env
            .roles()
            .into_iter()
            .flat_map(|r| env.profiles(r).iter().flat_map(|p| p.warnings()));
        self.config
            .file_warning
            .clone()
            .into_iter()
            .chain(profiles)
            .collect()
    }

    /// Options of a new session, declared now.
    fn new_options(
        &self,
        operator: String,
        drill: bool,
        rto_minutes: Option<u32>,
        rpo_minutes: Option<u32>,
    ) -> EngineOptions {
        EngineOptions {
            dry_run: self.dry_run,
            two_person_rule: self.two_person_rule,
            operator,
            drill,
            rto_minutes,
            rpo_minutes,
            declared_at: Some(Utc::now()),
            ..EngineOptions::default()
        }
    }

    /// The simulator of `scenario` this process already runs (a new connection to it), or a
    /// new one.
    fn running_drill(
        &mut self,
        scenario: &str,
        remap: &[(Role, Role)],
    ) -> Result<(Arc<dyn Executor>, Vars), String> {
        let running = self
            .drills
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .rev()
            .find(|(_, d)| d.scenario.name == scenario)
            .map(|(n, d)| {
                (
                    *n,
                    d.environment(),
                    d.secrets(),
                    d.variables().into_iter().collect(),
                )
            });
        match running {
            Some((number, env, secrets, vars)) => {
                self.last_drill = number;
                let env = remapped(&env, remap);
                let exec = TiberiusExecutor::new(&env, &secrets).map_err(|e| e.to_string())?;
                Ok((Arc::new(exec), vars))
            }
            None => self.start_drill_replaying(scenario, Vec::new(), remap.to_vec()),
        }
    }

    fn create(
        &mut self,
        runbook: Arc<Runbook>,
        env_name: &str,
        executor: Arc<dyn Executor>,
        mut opts: EngineOptions,
        defaults: &[(String, String)],
        overrides: &[(String, String)],
    ) -> Result<Opened, String> {
        let now = Utc::now();
        let (id, writer) =
            journal::create_session(&self.data_dir, now, &runbook.id).map_err(|e| {
                format!(
                    "cannot create the session journal in {}: {e}",
                    self.data_dir.display()
                )
            })?;
        opts.session_id = id.clone();
        opts.environment = env_name.to_string();
        let mut vars = Variables::from_runbook(&runbook);
        for (k, v) in defaults {
            if vars.get(k).is_none_or(str::is_empty) {
                vars.set(k, v.clone());
            }
        }
        for (k, v) in overrides {
            vars.set(k, v.clone());
        }
        for (k, v) in std::mem::take(&mut self.sets) {
            vars.set(&k, v);
        }
        self.current = env_name
            .strip_prefix(DRILL_PREFIX)
            .filter(|_| opts.drill)
            .map(|_| CurrentDrill {
                runbook: Arc::clone(&runbook),
                drill: self.last_drill,
                files_dir: self.files_dir(&id),
            });
        let engine = Engine::new(runbook, vars, opts);
        Ok(Opened {
            engine,
            journal: writer,
            executor,
            files_dir: self.files_dir(&id),
        })
    }

    /// The simulator's snapshot a drill session left (empty when it has none).
    fn drill_snapshot(&self, session_id: &str, scenario: &str) -> Vec<btsdr_sim::replay::SimEvent> {
        let path = self.files_dir(session_id).join(SIM_SNAPSHOT);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the simulator snapshot; the drill starts fresh");
                return Vec::new();
            }
        };
        match serde_json::from_str::<btsdr_sim::replay::Snapshot>(&text) {
            Ok(s) if s.version == btsdr_sim::replay::SNAPSHOT_VERSION && s.scenario == scenario => {
                s.events
            }
            Ok(s) => {
                tracing::warn!(path = %path.display(), version = s.version, scenario = %s.scenario, "the simulator snapshot is not for this drill; it starts fresh");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the simulator snapshot does not parse; the drill starts fresh");
                Vec::new()
            }
        }
    }

    /// Saves the running simulator's snapshot into the drill session's output folder.
    fn save_snapshot(&self, cur: &CurrentDrill) {
        let snap = {
            let drills = self
                .drills
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match drills.iter().find(|(n, _)| *n == cur.drill) {
                Some((_, d)) => d.snapshot(),
                None => return,
            }
        };
        let text = match serde_json::to_string(&snap) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot serialise the simulator snapshot");
                return;
            }
        };
        let path = cur.files_dir.join(SIM_SNAPSHOT);
        let tmp = cur.files_dir.join(format!("{SIM_SNAPSHOT}.tmp"));
        let res = std::fs::create_dir_all(&cur.files_dir)
            .and_then(|()| {
                let _ = std::fs::remove_file(&tmp);
                journal::private::write_new(&tmp, text.as_bytes())
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = res {
            tracing::warn!(path = %path.display(), error = %e, "cannot save the simulator snapshot");
        }
    }

    fn files_dir(&self, session_id: &str) -> PathBuf {
        journal::sessions_dir(&self.data_dir).join(format!("{session_id}.files"))
    }

    // TODO(issue 16): split (the replay of the journal, the drill snapshot, the hand-over).
    #[allow(clippy::too_many_lines)]
    fn resume(&mut self, session_id: &str, operator: Option<&str>) -> Result<Opened, String> {
        let path = journal::session_path(&self.data_dir, session_id)?;
        if !path.exists() {
            return Err(format!(
                "no session `{session_id}` in {}: `btsdr sessions` lists them",
                journal::sessions_dir(&self.data_dir).display()
            ));
        }
        let read = journal::read_records(&path).map_err(|e| e.to_string())?;
        if !read.report.is_intact() {
            return Err(format!(
                "{}: {} — it cannot be resumed; `btsdr report {session_id}` still shows what verified",
                path.display(),
                read.report
            ));
        }
        let Some((runbook_id, environment, drill, started_opts)) =
            read.entries.iter().find_map(|r| match &r.event {
                Event::SessionStarted {
                    runbook_id,
                    environment,
                    drill,
                    operator,
                    rto_minutes,
                    rpo_minutes,
                    declared_at,
                    dry_run,
                    two_person_rule,
                    session_id,
                    plan,
                    ..
                } => Some((
                    runbook_id.clone(),
                    environment.clone(),
                    *drill,
                    EngineOptions {
                        dry_run: *dry_run,
                        two_person_rule: *two_person_rule,
                        operator: operator.clone(),
                        session_id: session_id.clone(),
                        environment: environment.clone(),
                        drill: *drill,
                        rto_minutes: *rto_minutes,
                        rpo_minutes: *rpo_minutes,
                        declared_at: *declared_at,
                        plan: plan.clone(),
                        // Journaled when the session started.
                        security_warnings: Vec::new(),
                    },
                )),
                _ => None,
            })
        else {
            return Err(format!(
                "{}: the session never started (no session_started record)",
                path.display()
            ));
        };
        let runbook = self.runbook(&runbook_id)?;
        // The server variables the session started with (a repointed part names the
        // destination's server as its source).
        let journaled: Vec<(String, String)> = read
            .entries
            .iter()
            .find_map(|r| match &r.event {
                Event::SessionStarted { variables, .. } => Some(
                    variables
                        .iter()
                        .map(|v| (v.name.clone(), v.value.clone()))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default();
        let mut opts = started_opts;
        if let Some(op) = operator {
            opts.operator = op.to_string();
        }
        let mut vars = Variables::from_runbook(&runbook);
        let executor: Arc<dyn Executor> =
            if let Some(scenario) = environment.strip_prefix(DRILL_PREFIX).filter(|_| drill) {
                // The group as the session left it: the snapshot's statements run again.
                let events = self.drill_snapshot(session_id, scenario);
                let sc = btsdr_sim::scenario::Scenario::load(scenario)?;
                let names = btsdr_sim::drill::scenario_variables(&sc);
                let remap = remap_from(&journaled, &|r: Role| {
                    names.get(&format!("{}_sql_server", r.as_str())).cloned()
                });
                let (exec, drill_vars) = self.start_drill_replaying(scenario, events, remap)?;
                for (k, v) in drill_vars {
                    vars.set(&k, v);
                }
                exec
            } else {
                let env = self.environment(&environment)?;
                let remap = remap_from(&journaled, &|r: Role| {
                    env.profile(r).map(|p| p.display_server())
                });
                let env = remapped(&env, &remap);
                let from_env = EnvSecrets::for_environment(&env);
                let secrets = crate::config::Chain(&from_env, &self.prompted);
                Arc::new(TiberiusExecutor::new(&env, &secrets).map_err(|e| e.to_string())?)
            };
        let original = opts.operator.clone();
        self.current = environment
            .strip_prefix(DRILL_PREFIX)
            .filter(|_| drill)
            .map(|_| CurrentDrill {
                runbook: Arc::clone(&runbook),
                drill: self.last_drill,
                files_dir: self.files_dir(session_id),
            });
        let mut engine = Engine::replay(runbook, vars, opts, &read.entries)?;
        let (mut writer, report) = JournalWriter::open_append(&path)
            .map_err(|e| format!("cannot reopen {}: {e}", path.display()))?;
        // Attribute what follows to whoever is at the keyboard now, and journal the hand-over.
        let current = operator
            .map(str::to_string)
            .or_else(|| self.operator.clone())
            .filter(|o| !o.trim().is_empty());
        if let Some(current) = current.filter(|c| *c != original) {
            let last = read
                .entries
                .last()
                .map_or(original.as_str(), |r| &r.operator);
            if current != last {
                writer
                    .append(crate::engine::Record::new(
                        chrono::Utc::now(),
                        &current,
                        None,
                        Event::Note {
                            text: format!("hand-over: {last} hands the session to {current}"),
                        },
                    ))
                    .map_err(|e| e.to_string())?;
            }
            engine.set_operator(&current);
        }
        if let Some(t) = report.torn {
            tracing::warn!(
                line = t.line,
                bytes = t.bytes,
                "cut off a torn last journal line before resuming"
            );
        }
        Ok(Opened {
            engine,
            journal: writer,
            executor,
            files_dir: self.files_dir(session_id),
        })
    }
}

impl Opener for LiveOpener {
    fn open(&mut self, req: Request) -> Result<Opened, String> {
        match req {
            Request::Start {
                runbook_id,
                environment,
                operator,
                rto_minutes,
                rpo_minutes,
                repoint,
            } => {
                let runbook = self.runbook(&runbook_id)?;
                let drill = environment.strip_prefix(DRILL_PREFIX);
                let opts = self.new_options(operator, drill.is_some(), rto_minutes, rpo_minutes);
                let remap: Vec<(Role, Role)> = if repoint {
                    vec![
                        (Role::Source, Role::Destination),
                        (Role::Msgbox, Role::Destination),
                    ]
                } else {
                    Vec::new()
                };
                if let Some(scenario) = drill {
                    // A runbook (a failure plan's part) practised on the simulator: later
                    // parts continue on the group the earlier ones changed.
                    let (executor, vars) = self.running_drill(scenario, &remap)?;
                    let vars = repointed_vars(vars, &remap);
                    return self.create(runbook, &environment, executor, opts, &[], &vars);
                }
                let env = remapped(&self.environment(&environment)?, &remap);
                let mut opts = opts;
                opts.security_warnings = self.security_warnings(&env);
                let secrets = EnvSecrets::for_environment(&env);
                let secrets = crate::config::Chain(&secrets, &self.prompted);
                let executor: Arc<dyn Executor> =
                    Arc::new(TiberiusExecutor::new(&env, &secrets).map_err(|e| e.to_string())?);
                let servers: Vec<(String, String)> = Role::ALL
                    .into_iter()
                    .filter_map(|r| {
                        env.profile(r)
                            .map(|p| (format!("{}_sql_server", r.as_str()), p.display_server()))
                    })
                    .collect();
                // No destination configured: ask whether the group uses log shipping (an empty
                // answer, which the variables popup asks for) rather than assume it does and
                // fail every log-shipping step on the missing server.
                let ask: Vec<(String, String)> =
                    if env.destination.is_none() && runbook.variable(LOG_SHIPPING_VAR).is_some() {
                        vec![(LOG_SHIPPING_VAR.to_string(), String::new())]
                    } else {
                        Vec::new()
                    };
                self.create(runbook, &env.name, executor, opts, &servers, &ask)
            }
            Request::Drill {
                scenario,
                operator,
                rto_minutes,
            } => {
                let runbook = self.runbook(&self.drill_runbook.clone())?;
                let (executor, vars) = self.start_drill(&scenario)?;
                let opts = self.new_options(operator, true, rto_minutes, Some(15));
                let env_name = format!("{DRILL_PREFIX}{scenario}");
                self.create(runbook, &env_name, executor, opts, &[], &vars)
            }
            Request::Resume { session_id } => self.resume(&session_id, None),
            Request::Recover => {
                let list =
                    journal::list_open_sessions(&self.data_dir).map_err(|e| e.to_string())?;
                let open = list
                    .iter()
                    .filter(|s| s.status == journal::SessionStatus::Open && s.intact)
                    .max_by_key(|s| s.last_activity)
                    .ok_or(
                        "there is no unfinished session to resume; start a runbook or a drill",
                    )?;
                let id = open.id.clone();
                self.resume(&id, None)
            }
        }
    }

    /// Renders a session's HTML report into `<data dir>/reports/` and says where it is (the
    /// terminal cannot show it).
    fn report(&mut self, session_id: &str) -> Result<String, String> {
        let path = journal::session_path(&self.data_dir, session_id)?;
        let (rep, _) = crate::report::from_journal(&path, Some(&self.library))
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let dir = self.data_dir.join("reports");
        let out = dir.join(format!("{session_id}.html"));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&out, crate::report::html(&rep)))
            .map(|()| format!(
                "Report written to {} — open it in a browser to read or print it (`btsdr report {session_id}` prints it as Markdown).",
                out.display()
            ))
            .map_err(|e| format!("cannot write the report to {}: {e}", out.display()))
    }

    /// A drill's simulator follows its session: a confirmed manual step is done on the
    /// simulated group (`batch::drill::follow_record`: remedies, UpdateDatabase.vbs), and
    /// the group's snapshot is saved for a later resume.
    fn journaled(&mut self, record: &crate::engine::Record) {
        let Some(cur) = self.current.as_ref() else {
            return;
        };
        if matches!(record.event, Event::ManualConfirmed { .. }) {
            let drills = self
                .drills
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((_, d)) = drills.iter().find(|(n, _)| *n == cur.drill) {
                crate::batch::drill::follow_record(&d.hands(), &cur.runbook, record);
            }
        }
        self.save_snapshot(cur);
    }
}

/// `env` with each `(role, served_by)` role's profiles replaced by `served_by`'s (after a
/// failover the destination's server is the source). Roles `served_by` lacks are kept.
fn remapped(env: &Environment, remap: &[(Role, Role)]) -> Environment {
    let mut out = env.clone();
    for (role, by) in remap {
        let profiles = env.profiles(*by).to_vec();
        if profiles.is_empty() {
            continue;
        }
        match role {
            Role::Source => out.source = profiles.first().cloned(),
            Role::Msgbox => out.msgbox = profiles,
            Role::Destination => out.destination = profiles.first().cloned(),
        }
    }
    out
}

/// The server variables of a repointed part: the roles name the server that serves them.
fn repointed_vars(mut vars: Vars, remap: &[(Role, Role)]) -> Vars {
    let get = |vars: &Vars, r: Role| {
        let key = format!("{}_sql_server", r.as_str());
        vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    };
    for (role, by) in remap {
        if let Some(server) = get(&vars, *by) {
            let key = format!("{}_sql_server", role.as_str());
            vars.retain(|(k, _)| *k != key);
            vars.push((key, server));
        }
    }
    vars
}

/// The remap a resumed session was started with: a role whose journaled
/// `{role}_sql_server` names another role's server (`server_of`) is served by that role.
fn remap_from(
    journaled: &[(String, String)],
    server_of: &dyn Fn(Role) -> Option<String>,
) -> Vec<(Role, Role)> {
    let mut out = Vec::new();
    for role in [Role::Source, Role::Msgbox] {
        let key = format!("{}_sql_server", role.as_str());
        let Some(want) = journaled.iter().find(|(k, _)| *k == key).map(|(_, v)| v) else {
            continue;
        };
        if server_of(role).is_some_and(|own| own.eq_ignore_ascii_case(want)) {
            continue;
        }
        if server_of(Role::Destination).is_some_and(|d| d.eq_ignore_ascii_case(want)) {
            out.push((role, Role::Destination));
        }
    }
    out
}

/// Ended sessions Home offers a report of.
pub const HOME_REPORTS: usize = 5;

/// Which runbooks a scenario's faults show up in: those of the checks it fails, the restore
/// procedures for a connection dropped mid-restore, every runbook for a healthy group.
fn exercised_by(s: &btsdr_sim::scenario::Scenario) -> String {
    let mut ids: Vec<&str> = s
        .expect_failing_checks
        .iter()
        .filter_map(|c| c.split_once(':').map(|(rb, _)| rb))
        .collect();
    if s.faults.drop_during_restore {
        ids.extend(["restore", "disaster-recovery"]);
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        "every runbook passes".into()
    } else {
        format!("fails in {}", ids.join(", "))
    }
}

/// Home screen entries: unfinished sessions (newest first), failure classes, runbooks, drill
/// scenarios, reports of the newest ended sessions.
pub fn home_items(lib: &Library, data_dir: &std::path::Path) -> Vec<crate::app::HomeItem> {
    use crate::app::HomeItem;
    let mut items = Vec::new();
    let sessions = crate::journal::list_for_home(data_dir, HOME_REPORTS).unwrap_or_else(|e| {
        tracing::error!(error = %e, "sessions unavailable on the home screen");
        Default::default()
    });
    // Newest first: the run interrupted last is the likeliest one to resume.
    // Every open session (Home's list scrolls): an unfinished incident is never hidden.
    for s in sessions.open.iter().filter(|s| s.intact) {
        items.push(HomeItem::Resume {
            session_id: s.id.clone(),
            runbook: s.runbook_id.clone(),
            started: s
                .started
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            // Where first (the drill scenario or environment), then who: what tells two
            // sessions of one runbook apart when the line is cut.
            summary: format!(
                "on {} by {}{}",
                s.environment,
                s.operator,
                if s.in_doubt > 0 {
                    format!(", {} in doubt", s.in_doubt)
                } else {
                    String::new()
                }
            ),
        });
    }
    // "Something failed?": the failure classes, in the documented order.
    match crate::guide::Plan::all(lib) {
        Ok(plans) => items.extend(plans.into_iter().map(HomeItem::Failure)),
        Err(e) => tracing::error!(error = %e, "failure guide unavailable on the home screen"),
    }
    for rb in &lib.runbooks {
        items.push(HomeItem::Start {
            runbook_id: rb.id.clone(),
            title: rb.title.clone(),
        });
    }
    // Drills by scenario name (what `--scenario NAME` takes), `healthy` first.
    let mut drills: Vec<(String, String)> = btsdr_sim::scenario::EMBEDDED
        .iter()
        .map(|(name, text)| {
            let scenario = name.to_string();
            let title = btsdr_sim::scenario::Scenario::parse(text, name)
                .map(|s| {
                    let first = s.description.lines().next().unwrap_or("").trim();
                    format!("[{}] {first}", exercised_by(&s))
                })
                .unwrap_or_default();
            (scenario, title)
        })
        .collect();
    drills.sort_by(|a, b| (a.0 != "healthy", &a.0).cmp(&(b.0 != "healthy", &b.0)));
    items.extend(
        drills
            .into_iter()
            .map(|(scenario, title)| HomeItem::Drill { scenario, title }),
    );
    for s in &sessions.ended {
        items.push(HomeItem::Report {
            path: s.id.clone(),
            title: format!(
                "{} — {} ({})",
                s.title,
                s.environment,
                s.last_activity
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default()
            ),
        });
    }
    items
}
