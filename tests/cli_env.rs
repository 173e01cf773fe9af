//! Issue 18: an environment written from the docs, against the simulator over real TCP, with
//! the real binary as a child process: the readiness check on a healthy group, the master
//! secret record, a dry run without passwords, a variable `check` cannot guess, and what a
//! wrong `encrypt` says.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

mod cli_support;
use cli_support::{Run, expect};

use btsdr_sim::drill::Drill;

/// A running simulator (healthy group) and a home whose config names it as `drill`.
struct Sim {
    rt: tokio::runtime::Runtime,
    drill: Option<Drill>,
    dir: tempfile::TempDir,
    password: String,
}

impl Sim {
    fn start() -> Sim {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let drill = rt.block_on(Drill::start("healthy")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let password = drill.password.clone();
        let sim = Sim {
            rt,
            drill: Some(drill),
            dir,
            password,
        };
        sim.config(|t| t);
        sim
    }

    fn drill(&self) -> &Drill {
        self.drill.as_ref().unwrap()
    }

    /// Writes the config the simulator prints (`btsdr sim`), changed by `edit`.
    fn config(&self, edit: impl Fn(String) -> String) {
        let path = self.dir.path().join("config/config.toml");
        std::fs::write(&path, edit(self.drill().env_toml())).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    fn run(&self, args: &[&str], password: bool) -> Run {
        let mut c = cli_support::command(self.dir.path(), args);
        c.env_remove("BTSDR_DRILL_PASSWORD");
        if password {
            c.env("BTSDR_DRILL_PASSWORD", &self.password);
        }
        cli_support::finish(c)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(d) = self.drill.take() {
            self.rt.block_on(d.shutdown());
        }
    }
}

/// `check --env` on a healthy group fails only on the master secret record; the advice's
/// command exists, records it, and then the check passes. `--only` finds the built-in check.
#[test]
fn master_secret_advice_records_it_and_the_check_passes() {
    let sim = Sim::start();
    let help = sim.run(&["changelog", "add", "--help"], false);
    assert!(help.out.contains("master-secret"), "{}", help.out);

    let r = sim.run(&["check", "--env", "drill"], true);
    expect(&r, 1, "healthy group, no master secret backup recorded");
    let failing: Vec<&str> = r.out.lines().filter(|l| l.contains(" FAIL ")).collect();
    assert_eq!(failing.len(), 1, "{}", r.out);
    assert!(
        failing[0].starts_with("changelog.master-secret"),
        "{}",
        r.out
    );
    assert!(failing[0].contains("--category master-secret"), "{}", r.out);
    assert!(
        r.out.lines().any(|l| l.contains("backup_path is empty.")
            && l.contains("give backup_path: --set backup_path=VALUE")),
        "{}",
        r.out
    );
    // Piped: full lines, and no progress lines on stderr.
    assert!(r.out.lines().any(|l| l.chars().count() > 200), "{}", r.out);
    assert!(
        !r.err.lines().any(|l| l.starts_with("running ")
            || l.starts_with("finished ")
            || l.starts_with("queued ")),
        "progress without a terminal:\n{}",
        r.err
    );

    let only = [
        "check",
        "--env",
        "drill",
        "--only",
        "changelog.master-secret",
    ];
    expect(&sim.run(&only, true), 1, "--only the built-in check");

    let add = sim.run(
        &[
            "changelog",
            "add",
            "Backed up the SSO master secret to \\\\fs01\\dr\\SSO",
            "--category",
            "master-secret",
        ],
        false,
    );
    expect(&add, 0, "changelog add");
    let r = sim.run(&only, true);
    expect(&r, 0, "--only after recording");
    assert!(r.out.contains("PASS"), "{}", r.out);
    expect(
        &sim.run(&["check", "--env", "drill"], true),
        0,
        "whole check",
    );
}

/// A dry run sends nothing, so it needs no password, and it closes its session.
#[test]
fn dry_run_needs_no_password_and_closes_its_session() {
    let sim = Sim::start();
    let answers = sim.dir.path().join("answers.toml");
    std::fs::write(
        &answers,
        "backup_path = '\\\\fs01\\bts\\'\ndr_store = '\\\\fs01\\dr\\'\n",
    )
    .unwrap();
    let r = sim.run(
        &[
            "run",
            "backup",
            "--batch",
            "--dry-run",
            "--env",
            "drill",
            "--answers",
            answers.to_str().unwrap(),
        ],
        false,
    );
    expect(&r, 0, "dry run without a password");
    assert!(!r.out.contains("Sign off"), "{}", r.out);
    let last = r.out.lines().last().unwrap_or("");
    assert!(
        last.starts_with("dry run finished:")
            && last.contains("would run")
            && last.contains("nothing was sent")
            && last.contains("closed"),
        "{}",
        r.out
    );
    let s = sim.run(&["sessions"], false);
    let line = s
        .out
        .lines()
        .find(|l| l.contains("backup"))
        .unwrap_or_default();
    assert!(line.contains("closed"), "{}", s.out);
}

/// `check --runbook backup` cannot guess the backup location: it says how to give it.
#[test]
fn check_says_how_to_give_a_variable_it_needs() {
    let sim = Sim::start();
    let r = sim.run(&["check", "--env", "drill", "--runbook", "backup"], true);
    expect(&r, 2, "backup_path missing");
    assert!(
        r.err
            .contains("--set backup_path=VALUE --set dr_store=VALUE"),
        "every missing variable in one message: {}",
        r.err
    );
    let r = sim.run(
        &[
            "check",
            "--env",
            "drill",
            "--runbook",
            "backup",
            "--set",
            "backup_path=\\\\fs01\\bts\\",
            "--set",
            "dr_store=\\\\fs01\\dr\\",
        ],
        true,
    );
    assert_ne!(
        r.code,
        Some(2),
        "given both, the checks run:\n{}{}",
        r.out,
        r.err
    );
}

/// The simulator's certificate is validated: without its CA (`trust_cert_ca`) the connection
/// fails and the error names the key; `encrypt = "off"` (TLS for the login) validates too.
#[test]
fn an_untrusted_certificate_names_the_key() {
    let sim = Sim::start();
    let without_ca = |t: String| {
        t.lines()
            .filter(|l| !l.starts_with("trust_cert_ca"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (off, what) in [(false, "encrypt = required"), (true, "encrypt = off")] {
        sim.config(|t| {
            let t = without_ca(t);
            if off {
                t.replace("encrypt = \"required\"", "encrypt = \"off\"")
            } else {
                t
            }
        });
        let r = sim.run(
            &[
                "check",
                "--env",
                "drill",
                "--only",
                "daily.job-state",
                "--json",
            ],
            true,
        );
        expect(&r, 2, what);
        assert!(r.out.contains("trust_cert_ca"), "{what}: {}", r.out);
        assert!(!r.out.contains("firewall"), "{what}: {}", r.out);
    }
    sim.config(|t| t.replace("encrypt = \"required\"", "encrypt = \"off\""));
    let r = sim.run(
        &["check", "--env", "drill", "--only", "daily.job-state"],
        true,
    );
    expect(&r, 0, "encrypt = off with the drill's CA");
}

/// docs/CONFIG.md names every key the config parser accepts (read from its source) and every
/// `encrypt` value, and the README links it.
#[test]
fn config_doc_names_every_key() {
    let root = env!("CARGO_MANIFEST_DIR");
    let src = std::fs::read_to_string(format!("{root}/src/config/mod.rs")).unwrap();
    let doc = std::fs::read_to_string(format!("{root}/docs/CONFIG.md")).unwrap();
    let mut keys = Vec::new();
    for name in ["struct RawEnvironment {", "struct RawProfile {"] {
        let body = src.split(name).nth(1).unwrap().split('}').next().unwrap();
        for line in body.lines().map(str::trim) {
            if let Some((k, _)) = line.split_once(':')
                && !k.starts_with("//")
                && !k.is_empty()
            {
                keys.push(k.to_string());
            }
        }
    }
    assert!(keys.len() >= 16, "{keys:?}");
    for k in keys.iter().map(String::as_str).chain([
        "required",
        "off",
        "not_supported",
        "sql",
        "windows",
        "integrated",
    ]) {
        assert!(
            doc.contains(&format!("`{k}`")),
            "docs/CONFIG.md misses `{k}`"
        );
    }
    assert!(doc.contains("[[environments.prod.msgbox]]"));
    assert!(doc.contains("chmod 600"));
    assert!(doc.contains("Server does not allow the requested encryption level"));
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let real = readme.split("## Against real servers").nth(1).unwrap();
    let section = real.split("\n## ").next().unwrap();
    assert!(
        section.contains("(docs/CONFIG.md)"),
        "README links docs/CONFIG.md"
    );
}

/// A wrong password: the login error names the keys to check.
#[test]
fn a_wrong_password_names_the_keys() {
    let mut sim = Sim::start();
    sim.password = "wrong".into();
    let r = sim.run(
        &[
            "check",
            "--env",
            "drill",
            "--only",
            "daily.job-state",
            "--json",
        ],
        true,
    );
    expect(&r, 2, "wrong password");
    assert!(
        r.out.contains("18456") || r.out.contains("Login failed"),
        "{}",
        r.out
    );
    assert!(r.out.contains("`password_env`"), "{}", r.out);
}
