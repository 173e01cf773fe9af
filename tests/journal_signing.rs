//! Signatures that mean something (issue 14): a key made in the test signs a journal;
//! verification is offline against an allowed_signers file; forged, altered, untrusted and
//! swapped journals are told apart. Also `btsdr journal verify`'s exit codes, as a process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::fs;
use std::path::{Path, PathBuf};
mod cli_support;

use btsdr::engine::{Event, Record};
use btsdr::journal::JournalWriter;
use btsdr::journal::signing::{self, SigStatus};
use chrono::{TimeZone, Utc};
use ssh_key::{Algorithm, LineEnding, PrivateKey};

fn key() -> PrivateKey {
    PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap()
}

fn allowed(principal: &str, k: &PrivateKey) -> Vec<signing::AllowedSigner> {
    let line = format!(
        "{principal} namespaces=\"btsdr-journal\" {}",
        k.public_key().to_openssh().unwrap()
    );
    signing::parse_allowed_signers(&line, "allowed_signers").unwrap()
}

/// A session journal named like btsdr names them, with a SessionStarted first record.
fn session(dir: &Path, id: &str, notes: usize) -> PathBuf {
    let path = dir.join(format!("{id}.jsonl"));
    let mut w = JournalWriter::create(&path).unwrap();
    let at = Utc.with_ymd_and_hms(2026, 12, 5, 3, 0, 0).unwrap();
    w.append(Record::new(
        at,
        "alice",
        None,
        Event::SessionStarted {
            session_id: id.into(),
            runbook_id: "readiness".into(),
            title: "Readiness".into(),
            version: "1".into(),
            content_hash: String::new(),
            environment: "drill:healthy".into(),
            operator: "alice".into(),
            rto_minutes: None,
            rpo_minutes: None,
            declared_at: None,
            drill: true,
            dry_run: false,
            two_person_rule: false,
            review: false,
            variables: vec![],
            plan: None,
        },
    ))
    .unwrap();
    for i in 0..notes {
        w.append(Record::new(
            at,
            "alice",
            None,
            Event::Note {
                text: format!("note {i}"),
            },
        ))
        .unwrap();
    }
    path
}

fn statuses(path: &Path, allowed: &[signing::AllowedSigner]) -> Vec<SigStatus> {
    signing::check_signatures(path, allowed)
        .unwrap()
        .into_iter()
        .map(|s| s.status)
        .collect()
}

#[test]
fn a_signature_by_an_allowed_key_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let path = session(dir.path(), "20261205-030000-readiness", 3);
    let alice = key();
    let line = signing::sign(&path, &alice, "alice@example.com").unwrap();
    assert_eq!(line.seq, 4);
    let got = statuses(&path, &allowed("alice@example.com", &alice));
    assert!(
        matches!(got.as_slice(), [SigStatus::Valid { .. }]),
        "{got:?}"
    );
    // The same signature, judged with nobody allowed: good but not trusted.
    let got = statuses(&path, &[]);
    assert!(
        matches!(got.as_slice(), [SigStatus::UnknownSigner { .. }]),
        "{got:?}"
    );
}

#[test]
fn a_forged_sign_off_is_not_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = session(dir.path(), "20261205-030001-readiness", 2);
    let alice = key();
    let mallory = key();
    let trusted = allowed("ciso@example.com", &alice);
    // Mallory signs with her own key under the CISO's name: a good signature, untrusted.
    signing::sign(&path, &mallory, "ciso@example.com").unwrap();
    // Mallory edits a genuine signature line to claim the CISO signed it.
    signing::sign(&path, &alice, "alice@example.com").unwrap();
    let sigs = signing::sigs_path(&path);
    let text = fs::read_to_string(&sigs).unwrap();
    let last = text.lines().last().unwrap().replace(
        "\"principal\":\"alice@example.com\"",
        "\"principal\":\"ciso@example.com\"",
    );
    fs::write(&sigs, format!("{text}{last}\n")).unwrap();
    let got = statuses(&path, &trusted);
    assert!(
        matches!(got[0], SigStatus::UnknownSigner { .. }),
        "{:?}",
        got[0]
    );
    assert!(matches!(got[2], SigStatus::Invalid { .. }), "{:?}", got[2]);
    assert!(!got.iter().any(SigStatus::is_valid));
}

#[test]
fn a_signature_does_not_survive_a_rewritten_record_or_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = session(dir.path(), "20261205-030002-readiness", 2);
    let alice = key();
    let trusted = allowed("alice", &alice);
    signing::sign(&a, &alice, "alice").unwrap();
    // The signed record rewritten (chain resealed would also change its hash).
    let text = fs::read_to_string(&a).unwrap();
    fs::write(&a, text.replace("note 1", "note X")).unwrap();
    let got = statuses(&a, &trusted);
    assert!(matches!(got[0], SigStatus::Invalid { .. }), "{got:?}");
    // An earlier record edited: the chain breaks before the signed record, which no longer
    // vouches for anything.
    let c = session(dir.path(), "20261205-030006-readiness", 3);
    signing::sign(&c, &alice, "alice").unwrap();
    let text = fs::read_to_string(&c).unwrap();
    fs::write(&c, text.replacen("note 0", "note Z", 1)).unwrap();
    let got = statuses(&c, &trusted);
    assert!(matches!(got[0], SigStatus::Invalid { .. }), "{got:?}");
    // A signature copied next to another session's journal.
    let b = session(dir.path(), "20261205-030003-readiness", 2);
    fs::copy(signing::sigs_path(&a), signing::sigs_path(&b)).unwrap();
    let got = statuses(&b, &trusted);
    assert!(matches!(got[0], SigStatus::Invalid { .. }), "{got:?}");
}

#[test]
fn an_encrypted_key_asks_for_its_passphrase() {
    let dir = tempfile::tempdir().unwrap();
    let k = key()
        .encrypt(&mut rand_core::OsRng, "correct horse")
        .unwrap();
    let p = dir.path().join("id_ed25519");
    fs::write(&p, k.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    assert!(signing::load_key(&p, || Ok("wrong".into())).is_err());
    assert!(signing::load_key(&p, || Ok("correct horse".into())).is_ok());
}

#[test]
fn allowed_signers_errors_say_where() {
    let err = signing::parse_allowed_signers("# ok\nalice@example.com\n", "signers")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("signers:2:1:"), "{err}");
}

/// Exit code and stdout + stderr of `btsdr ARGS` with `dir/data` and `dir/config`.
fn btsdr(args: &[&str], dir: &Path) -> (i32, String) {
    let r = cli_support::btsdr(dir, args);
    (r.code.unwrap_or(-1), r.out + &r.err)
}

#[test]
fn journal_verify_exit_codes_and_signatures_as_a_process() {
    let dir = tempfile::tempdir().unwrap();
    let (data, config) = (dir.path().join("data"), dir.path().join("config"));
    let sessions = data.join("sessions");
    fs::create_dir_all(&sessions).unwrap();
    fs::create_dir_all(&config).unwrap();
    let id = "20261205-030004-readiness";
    let path = session(&sessions, id, 2);
    let alice = key();
    let kp = dir.path().join("id_ed25519");
    fs::write(&kp, alice.to_openssh(LineEnding::LF).unwrap().as_bytes()).unwrap();
    let (code, out) = btsdr(
        &[
            "journal",
            "sign",
            id,
            "--key",
            kp.to_str().unwrap(),
            "--as",
            "alice",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}");
    // No allowed signers yet: intact journal, signature not trusted, exit 0.
    let (code, out) = btsdr(&["journal", "verify", id], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("NOT TRUSTED"), "{out}");
    fs::write(
        config.join("allowed_signers"),
        format!("alice {}\n", alice.public_key().to_openssh().unwrap()),
    )
    .unwrap();
    let (code, out) = btsdr(&["journal", "verify", id], dir.path());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("signature by alice over record 3: VALID"),
        "{out}"
    );
    let (code, out) = btsdr(&["report", id], dir.path());
    assert_eq!(code, 0, "{out}");
    // Swapped with another session's file: exit 1, and the report says so and exits 1.
    let other = session(&sessions, "20261205-030005-readiness", 1);
    fs::rename(&path, dir.path().join("tmp")).unwrap();
    fs::rename(&other, &path).unwrap();
    fs::rename(
        btsdr::journal::chain::head_path(&other),
        btsdr::journal::chain::head_path(&path),
    )
    .unwrap();
    let (code, out) = btsdr(&["journal", "verify", id], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("swapped"), "{out}");
    let (code, out) = btsdr(&["report", id], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("JOURNAL DAMAGED"), "{out}");
    // Not a journal at all: exit 2.
    let (code, out) = btsdr(&["journal", "verify", "/dev/null"], dir.path());
    assert_eq!(code, 2, "{out}");
}
