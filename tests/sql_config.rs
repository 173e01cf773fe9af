//! Config file parsing and validation: a good file, each bad case with its message and
//! position, the permission warning, secrets never shown.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use btsdr::config::{
    Auth, Config, ConfigError, Encrypt, EnvSecrets, MapSecrets, Secret, SecretSource, Target,
};
use btsdr_types::Role;

const GOOD: &str = r#"
[ui]
theme = "dark"          # someone else's table: ignored here

[environments.prod]
description = "Production group"

[environments.prod.source]
server = 'sql01\BIZTALK,1500'
auth = "sql"
user = "btsdr"
password_env = "BTSDR_TEST_PROD_PW"
database = "BizTalkMgmtDb"
connect_timeout_secs = 5
statement_timeout_secs = 900

[[environments.prod.msgbox]]
server = "sql02"
auth = "sql"
user = "btsdr"

[[environments.prod.msgbox]]
connection_string = "Server=tcp:sql03,1433;User ID=mb3;Database=BizTalkMsgBoxDb"

[environments.prod.destination]
server = "drsql"
auth = "sql"
user = "dr"
encrypt = "off"
trust_server_certificate = true

[environments.drill]
description = "simulator"
source = { server = "127.0.0.1,14333", auth = "sql", user = "sa", encrypt = "not_supported" }
msgbox = { server = "127.0.0.1,14333", auth = "sql", user = "sa", encrypt = "not_supported" }
"#;

fn bad(text: &str) -> Vec<(usize, usize, String)> {
    match Config::parse(text, "cfg.toml") {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(ConfigError::Invalid(d)) => d.into_iter().map(|d| (d.line, d.col, d.message)).collect(),
        Err(e) => panic!("unexpected {e}"),
    }
}

/// The one diagnostic of `text`, which must be at `line:col` and mention `needle`.
fn one_error(text: &str, line: usize, col: usize, needle: &str) {
    let d = bad(text);
    assert_eq!(d.len(), 1, "{d:?}");
    let (l, c, m) = &d[0];
    assert!(m.contains(needle), "message {m:?} lacks {needle:?}");
    assert_eq!((*l, *c), (line, col), "position of {m:?}");
}

#[test]
fn good_file() {
    let cfg = Config::parse(GOOD, "cfg.toml").unwrap();
    assert_eq!(cfg.environments.len(), 2);
    let prod = cfg.environment("prod").unwrap();
    assert_eq!(prod.description, "Production group");
    let src = prod.profile(Role::Source).unwrap();
    assert_eq!(
        src.target,
        Target::Server {
            host: "sql01".into(),
            instance: Some("BIZTALK".into()),
            port: Some(1500)
        }
    );
    assert_eq!(src.display_server(), "sql01\\BIZTALK,1500");
    assert_eq!(src.auth, Auth::Sql);
    assert_eq!(src.user.as_deref(), Some("btsdr"));
    assert_eq!(src.password_env.as_deref(), Some("BTSDR_TEST_PROD_PW"));
    assert_eq!(src.database.as_deref(), Some("BizTalkMgmtDb"));
    assert_eq!(
        src.encrypt,
        Some(Encrypt::Required),
        "required is the default"
    );
    assert!(!src.trust_server_certificate);
    assert_eq!(
        (src.connect_timeout_secs, src.statement_timeout_secs),
        (5, 900)
    );

    assert_eq!(prod.profiles(Role::Msgbox).len(), 2);
    let mb3 = &prod.msgbox[1];
    assert_eq!(
        mb3.user.as_deref(),
        Some("mb3"),
        "user taken from the connection string"
    );
    assert_eq!(
        mb3.encrypt,
        Some(Encrypt::Required),
        "a connection string without `Encrypt` is encrypted, as tiberius and ADO.NET default"
    );
    assert_eq!(mb3.display_server(), "tcp:sql03,1433");

    let dst = prod.profile(Role::Destination).unwrap();
    assert_eq!(dst.encrypt, Some(Encrypt::Off));
    assert!(dst.trust_server_certificate);
    assert!(
        cfg.warnings
            .iter()
            .any(|w| w.starts_with("cfg.toml:25:1: warning:")
                && w.contains("trust_server_certificate")),
        "{:#?}",
        cfg.warnings
    );

    let drill = cfg.environment("drill").unwrap();
    assert_eq!(drill.roles(), vec![Role::Source, Role::Msgbox]);
    assert_eq!(
        drill.profile(Role::Source).unwrap().encrypt,
        Some(Encrypt::NotSupported)
    );
    // Loopback + not_supported is the simulator: no warning for it.
    assert!(
        !cfg.warnings.iter().any(|w| w.contains("drill")),
        "{:#?}",
        cfg.warnings
    );
}

#[test]
fn password_key_refused_with_position() {
    one_error(
        "[environments.a.source]\nserver = \"s\"\nuser = \"u\"\npassword = \"hunter2\"\n",
        4,
        12,
        "`password` is not allowed",
    );
}

#[test]
fn password_in_connection_string_refused() {
    let d =
        bad("[environments.a.source]\nconnection_string = \"Server=s;User ID=u;Pwd=hunter2\"\n");
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].0, d[0].1), (2, 21));
    assert!(d[0].2.contains("passwords are not allowed"));
    assert!(
        !d[0].2.contains("hunter2"),
        "the secret is echoed: {}",
        d[0].2
    );
}

#[test]
fn unknown_keys_rejected_inside_environments_and_profiles() {
    one_error(
        "[environments.a]\ndescripton = \"x\"\n",
        2,
        1,
        "unknown field `descripton`",
    );
    one_error(
        "[environments.a.source]\nserver = \"s\"\nuser = \"u\"\nport = 1433\n",
        4,
        1,
        "unknown field `port`",
    );
    one_error(
        "[environments.a]\n[environments.a.witness]\nserver = \"s\"\n",
        2,
        17,
        "unknown field `witness`",
    );
    // Unknown top-level tables belong to others.
    assert!(Config::parse("[keys]\nquit = \"q\"\n[whatever]\nx = 1\n", "c").is_ok());
}

#[test]
fn toml_syntax_error_has_position() {
    one_error(
        "[environments.a.source]\nserver = \"s\n",
        2,
        12,
        "invalid basic string",
    );
}

#[test]
fn bad_values() {
    let base = "[environments.a.source]\nserver = \"s\"\nuser = \"u\"\n";
    one_error(
        &format!("{base}auth = \"kerberos\"\n"),
        4,
        8,
        "unknown `auth` value `kerberos`",
    );
    one_error(
        &format!("{base}encrypt = \"yes\"\n"),
        4,
        11,
        "unknown `encrypt` value `yes`",
    );
    one_error(
        &format!("{base}connect_timeout_secs = 0\n"),
        4,
        24,
        "out of range",
    );
    one_error(
        &format!("{base}statement_timeout_secs = -5\n"),
        4,
        26,
        "out of range",
    );
    one_error(
        &format!("{base}password_env = \"MY-VAR\"\n"),
        4,
        16,
        "must name an environment variable",
    );
    one_error(
        "[environments.a.source]\nserver = \"s,99999\"\nuser = \"u\"\n",
        2,
        10,
        "not a port number",
    );
    one_error(
        "[environments.a.source]\nserver = 'h\\'\nuser = \"u\"\n",
        2,
        10,
        "instance name",
    );
    one_error(
        "[environments.a.source]\nconnection_string = \"Server=s\"\nserver = \"s\"\nuser = \"u\"\n",
        3,
        10,
        "both `server` and `connection_string`",
    );
}

#[test]
fn missing_pieces() {
    one_error(
        "[environments.a.source]\nuser = \"u\"\n",
        1,
        1,
        "no `server` or `connection_string`",
    );
    one_error(
        "[environments.a.source]\nserver = \"s\"\n",
        1,
        1,
        "needs a `user`",
    );
    one_error(
        "[environments.empty]\ndescription = \"x\"\n",
        1,
        1,
        "has no server",
    );
    one_error(
        "[environments.a.source]\nserver = \"s\"\nauth = \"windows\"\nuser = \"bob\"\n",
        4,
        8,
        "has no domain",
    );
    one_error(
        "[environments.a.source]\nserver = \"s\"\nauth = \"integrated\"\nuser = 'D\\bob'\n",
        4,
        8,
        "makes no sense with auth = \"integrated\"",
    );
    one_error(
        "[environments.'a b'.source]\nserver = \"s\"\nuser = \"u\"\n",
        1,
        15,
        "name `a b`",
    );
    one_error("[environments.a]\nmsgbox = []\n", 2, 10, "empty list");
}

#[test]
fn several_errors_in_file_order() {
    let d = bad(
        "[environments.a.source]\nserver = \"s\"\nauth = \"x\"\nuser = \"u\"\n\
         [environments.b.source]\nserver = \"t\"\nencrypt = \"maybe\"\nuser = \"u\"\n",
    );
    let pos: Vec<_> = d.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(pos, vec![(3, 8), (7, 11)]);
}

#[test]
fn windows_auth_parses_and_warns_off_windows() {
    let cfg = Config::parse(
        "[environments.a.source]\nserver = \"s\"\nauth = \"windows\"\nuser = 'CONTOSO\\bts'\n",
        "c",
    )
    .unwrap();
    let p = cfg.environment("a").unwrap().profile(Role::Source).unwrap();
    assert_eq!(p.auth, Auth::Windows);
    assert_eq!(p.user.as_deref(), Some("CONTOSO\\bts"));
    if cfg!(windows) {
        assert!(cfg.warnings.is_empty());
    } else {
        assert!(
            cfg.warnings
                .iter()
                .any(|w| w.contains("not compiled into this non-Windows build"))
        );
    }
}

#[test]
fn not_supported_encryption_warns_off_loopback() {
    let cfg = Config::parse(
        "[environments.a.source]\nserver = \"db.example\"\nuser = \"u\"\nencrypt = \"not_supported\"\n",
        "c",
    )
    .unwrap();
    assert!(
        cfg.warnings.iter().any(|w| w.contains("unencrypted")),
        "{:?}",
        cfg.warnings
    );
}

#[test]
fn load_file_and_permission_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, GOOD).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cfg = Config::load(Some(&path)).unwrap();
        assert_eq!(cfg.path.as_deref(), Some(path.as_path()));
        assert!(
            cfg.warnings[0].contains("can be read by other users (mode 644)"),
            "{:?}",
            cfg.warnings
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let cfg = Config::load(Some(&path)).unwrap();
        assert!(!cfg.warnings.iter().any(|w| w.contains("other users")));
    }
    let missing = dir.path().join("nope.toml");
    match Config::load(Some(&missing)) {
        Err(ConfigError::Io { path, .. }) => assert!(path.ends_with("nope.toml")),
        other => panic!("{other:?}"),
    }
    // Diagnostics name the file.
    std::fs::write(&path, "[environments.a]\nbogus = 1\n").unwrap();
    let e = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:2:1: error:", path.display())),
        "{e}"
    );
}

#[test]
fn env_secrets_read_the_named_variable() {
    let cfg = Config::parse(GOOD, "c").unwrap();
    let prod = cfg.environment("prod").unwrap();
    let secrets = EnvSecrets::for_environment(prod);
    assert_eq!(
        secrets.variable(Role::Source, "btsdr"),
        Some("BTSDR_TEST_PROD_PW")
    );
    assert_eq!(secrets.variable(Role::Msgbox, "btsdr"), None);
    // SAFETY: this test alone uses this variable; tests reading it run in this function.
    unsafe { std::env::set_var("BTSDR_TEST_PROD_PW", "s3cret") };
    assert_eq!(
        secrets.password(Role::Source, "btsdr").as_deref(),
        Some("s3cret")
    );
    assert_eq!(secrets.password(Role::Destination, "dr"), None);
    unsafe { std::env::remove_var("BTSDR_TEST_PROD_PW") };
    assert_eq!(secrets.password(Role::Source, "btsdr"), None);
}

#[test]
fn secrets_are_redacted_in_debug() {
    let s = Secret::new("hunter2");
    assert!(!format!("{s:?} {s}").contains("hunter2"));
    let m = MapSecrets::new().with(Role::Source, "sa", "hunter2");
    assert!(!format!("{m:?}").contains("hunter2"));
    assert_eq!(m.password(Role::Source, "sa").as_deref(), Some("hunter2"));
}

/// Issue 14: `Password=` hidden after a `{...}` value passed the "no passwords" check,
/// because btsdr split the string differently from tiberius (which then logged in with it).
#[test]
fn password_smuggled_past_a_braced_value_is_found() {
    for cs in [
        "Server=s;User ID=u;Application Name={;X='};Password=hunter2;Y=''",
        "Server=s;User ID=u;Application Name={a;b};PWD=hunter2",
        "Server=s;User ID=u;App='x;y';Password=hunter2",
    ] {
        let text = format!(
            "[environments.a.source]\nconnection_string = \"{}\"\n",
            cs.replace('"', "\\\"")
        );
        let d = bad(&text);
        assert_eq!(d.len(), 1, "{cs}: {d:?}");
        assert!(d[0].2.contains("passwords are not allowed"), "{cs}: {d:?}");
    }
}

/// Issue 14: `Encrypt=DANGER_PLAINTEXT` logged in in clear text with no warning. Every
/// spelling is mapped; clear text needs btsdr's own `encrypt = "..."` and is then warned.
#[test]
fn every_encrypt_spelling_is_mapped_and_clear_text_needs_the_profile_to_say_so() {
    let profile = |cs: &str, extra: &str| {
        format!(
            "[environments.a.source]\nconnection_string = \"Server=db.example;User ID=u;{cs}\"\n{extra}"
        )
    };
    let encrypt_of = |cs: &str, extra: &str| {
        let cfg = Config::parse(&profile(cs, extra), "c").unwrap_or_else(|e| panic!("{cs}: {e}"));
        let p = cfg.environments["a"].source.clone().unwrap();
        (p.encrypt, p.trust_server_certificate, cfg.warnings)
    };
    for cs in [
        "",
        "Encrypt=true",
        "Encrypt=YES",
        "Encrypt=Mandatory",
        "encrypt = mandatory ",
    ] {
        let (e, trust, w) = encrypt_of(cs, "");
        assert_eq!(e, Some(Encrypt::Required), "{cs}");
        assert!(!trust && w.is_empty(), "{cs}: {w:?}");
    }
    for (cs, word, needle) in [
        (
            "Encrypt=DANGER_PLAINTEXT",
            "not_supported",
            "turns encryption off",
        ),
        (
            "Encrypt=danger_plaintext",
            "not_supported",
            "turns encryption off",
        ),
        ("Encrypt=false", "off", "encrypts only the login"),
        ("Encrypt=No", "off", "encrypts only the login"),
        ("Encrypt=Optional", "off", "encrypts only the login"),
    ] {
        let d = bad(&profile(cs, ""));
        assert_eq!(d.len(), 1, "{cs}: {d:?}");
        assert!(d[0].2.contains(needle), "{cs}: {d:?}");
        assert_eq!((d[0].0, d[0].1), (2, 21), "{cs}");
        // Said in btsdr's words too: accepted, and warned about.
        let (e, _, w) = encrypt_of(cs, &format!("encrypt = \"{word}\"\n"));
        assert_ne!(e, Some(Encrypt::Required), "{cs}");
        assert!(
            w.iter()
                .any(|w| w.contains("clear text") || w.contains("unencrypted")),
            "{cs}: {w:?}"
        );
    }
    for cs in [
        "Encrypt=strict",
        "Encrypt=maybe",
        "TrustServerCertificate=perhaps",
    ] {
        let d = bad(&profile(cs, ""));
        assert_eq!(d.len(), 1, "{cs}: {d:?}");
        assert!(d[0].2.contains("bad connection string"), "{cs}: {d:?}");
    }
    for cs in [
        "TrustServerCertificate=true",
        "Trust Server Certificate=Yes",
    ] {
        let (_, trust, w) = encrypt_of(cs, "");
        assert!(trust, "{cs}");
        assert!(
            w.iter().any(|w| w.contains("trust_server_certificate")),
            "{cs}: {w:?}"
        );
    }
}
