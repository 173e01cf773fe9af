//! Opens sessions for the TUI: new runs against a configured environment, drills on the
//! built-in simulator, and resumed sessions (journal replay). Used by `btsdr`, `btsdr drill`
//! and `btsdr run`.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;

use crate::app::Request;
use crate::app::driver::{Opened, Opener};
use crate::config::{Config, EnvSecrets, Environment, MapSecrets, SecretSource};
use crate::engine::{Engine, EngineOptions, Variables};
use crate::journal::{self, Event, JournalWriter};
use crate::runbook::library::Library;
use crate::runbook::model::{Role, Runbook};
use crate::sim::drill::Drill;
use crate::sql::executor::{Executor, TiberiusExecutor};

/// Environment names of drill sessions: `drill:SCENARIO`.
pub const DRILL_PREFIX: &str = "drill:";

/// The runbook a drill walks through.
pub const DRILL_RUNBOOK: &str = "backup";

pub struct LiveOpener {
    pub library: Library,
    pub config: Config,
    pub data_dir: PathBuf,
    /// Running simulators; dropped (and stopped) with the opener.
    drills: Vec<Drill>,
    /// Runbook for drills (`btsdr drill --runbook`).
    pub drill_runbook: String,
    pub dry_run: bool,
    pub two_person_rule: bool,
}

impl LiveOpener {
    pub fn new(library: Library, config: Config, data_dir: PathBuf) -> LiveOpener {
        LiveOpener {
            library,
            config,
            data_dir,
            drills: Vec::new(),
            drill_runbook: DRILL_RUNBOOK.to_string(),
            dry_run: false,
            two_person_rule: false,
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

    fn start_drill(&mut self, scenario: &str) -> Result<usize, String> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "internal error: no async runtime".to_string())?;
        let drill = tokio::task::block_in_place(|| handle.block_on(Drill::start(scenario)))?;
        self.drills.push(drill);
        Ok(self.drills.len() - 1)
    }

    fn create(
        &mut self,
        runbook: Arc<Runbook>,
        env: &Environment,
        secrets: &dyn SecretSource,
        mut opts: EngineOptions,
        extra_vars: &[(String, String)],
    ) -> Result<Opened, String> {
        let executor: Arc<dyn Executor> =
            Arc::new(TiberiusExecutor::new(env, secrets).map_err(|e| e.to_string())?);
        let now = Utc::now();
        let (id, writer) =
            journal::create_session(&self.data_dir, now, &runbook.id).map_err(|e| {
                format!(
                    "cannot create the session journal in {}: {e}",
                    self.data_dir.display()
                )
            })?;
        opts.session_id = id.clone();
        opts.environment.clone_from(&env.name);
        let mut vars = Variables::from_runbook(&runbook);
        for role in Role::ALL {
            if let Some(p) = env.profile(role) {
                let name = format!("{}_sql_server", role.as_str());
                if vars.get(&name).is_some_and(str::is_empty) || vars.get(&name).is_none() {
                    vars.set(&name, p.display_server());
                }
            }
        }
        for (k, v) in extra_vars {
            vars.set(k, v.clone());
        }
        let engine = Engine::new(runbook, vars, opts);
        Ok(Opened {
            engine,
            journal: writer,
            executor,
            files_dir: self.files_dir(&id),
        })
    }

    fn files_dir(&self, session_id: &str) -> PathBuf {
        journal::sessions_dir(&self.data_dir).join(format!("{session_id}.files"))
    }

    fn resume(&mut self, session_id: &str, operator: Option<&str>) -> Result<Opened, String> {
        let path = journal::session_path(&self.data_dir, session_id)?;
        let read = journal::read_records(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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
        let mut opts = started_opts;
        if let Some(op) = operator {
            opts.operator = op.to_string();
        }
        let (env, secrets): (Environment, Box<dyn SecretSource>) =
            if let Some(scenario) = environment.strip_prefix(DRILL_PREFIX).filter(|_| drill) {
                let i = self.start_drill(scenario)?;
                let d = &self.drills[i];
                let mut env = d.environment();
                env.name = environment.clone();
                (env, Box::new(d.secrets()))
            } else {
                let env = self.environment(&environment)?;
                let s = EnvSecrets::for_environment(&env);
                (env, Box::new(s))
            };
        let executor: Arc<dyn Executor> =
            Arc::new(TiberiusExecutor::new(&env, secrets.as_ref()).map_err(|e| e.to_string())?);
        let mut vars = Variables::from_runbook(&runbook);
        if drill {
            for (k, v) in self.drills.last().map(Drill::variables).unwrap_or_default() {
                vars.set(&k, v);
            }
        }
        let engine = Engine::replay(runbook, vars, opts, &read.entries)?;
        let (writer, report) = JournalWriter::open_append(&path)
            .map_err(|e| format!("cannot reopen {}: {e}", path.display()))?;
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

impl LiveOpener {
    /// Renders a session's HTML report into `<data dir>/reports/` and says where it is (the
    /// terminal cannot show it).
    fn write_report(&self, session_id: &str) -> String {
        let path = match journal::session_path(&self.data_dir, session_id) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let read = match journal::read_records(&path) {
            Ok(r) => r,
            Err(e) => return format!("cannot read {}: {e}", path.display()),
        };
        let runbook = read.entries.iter().find_map(|r| match &r.event {
            Event::SessionStarted { runbook_id, .. } => self.library.get(runbook_id),
            _ => None,
        });
        let rep = crate::report::build(
            &read.entries,
            runbook.as_deref(),
            &read.report.to_string(),
            &read.report.head,
            read.report.is_intact(),
        );
        let dir = self.data_dir.join("reports");
        let out = dir.join(format!("{session_id}.html"));
        match std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(&out, crate::report::html(&rep)))
        {
            Ok(()) => format!(
                "Report written to {} — open it in a browser to read or print it (`btsdr report {session_id}` prints it as Markdown).",
                out.display()
            ),
            Err(e) => format!("cannot write the report to {}: {e}", out.display()),
        }
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
            } => {
                let runbook = self.runbook(&runbook_id)?;
                let env = self.environment(&environment)?;
                let secrets = EnvSecrets::for_environment(&env);
                let opts = EngineOptions {
                    dry_run: self.dry_run,
                    two_person_rule: self.two_person_rule,
                    operator,
                    rto_minutes,
                    rpo_minutes,
                    declared_at: Some(Utc::now()),
                    ..EngineOptions::default()
                };
                self.create(runbook, &env, &secrets, opts, &[])
            }
            Request::Drill {
                scenario,
                operator,
                rto_minutes,
            } => {
                let runbook = self.runbook(&self.drill_runbook.clone())?;
                let i = self.start_drill(&scenario)?;
                let (mut env, secrets, vars) = {
                    let d = &self.drills[i];
                    (d.environment(), d.secrets(), d.variables())
                };
                env.name = format!("{DRILL_PREFIX}{scenario}");
                let opts = EngineOptions {
                    dry_run: self.dry_run,
                    two_person_rule: self.two_person_rule,
                    operator,
                    drill: true,
                    rto_minutes,
                    rpo_minutes: Some(15),
                    declared_at: Some(Utc::now()),
                    ..EngineOptions::default()
                };
                let vars: Vec<(String, String)> = vars.into_iter().collect();
                self.create(runbook, &env, &secrets as &MapSecrets, opts, &vars)
            }
            Request::Resume { session_id } => self.resume(&session_id, None),
            Request::Recover => {
                let list = journal::list_sessions(&self.data_dir).map_err(|e| e.to_string())?;
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
            Request::OpenReport { path } => Err(self.write_report(&path)),
        }
    }
}
