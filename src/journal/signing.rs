//! Signatures that mean something: a signer signs a journal's head with their SSH key
//! (SSHSIG, the format `ssh-keygen -Y sign` and git's SSH signing use), and anyone verifies
//! it offline against an `allowed_signers` file (OpenSSH's format, as git uses it).
//!
//! A signature covers the session id, the record number and the SHA-256 of that record's
//! line, so it vouches for every record up to it (the chain links them). Signatures live in
//! the sidecar `<journal>.sigs`, one JSON object per line. A typed sign-off name without a
//! valid signature by an allowed key is shown as unsigned.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::chain::{read_file_lines_sha256, verify};

/// The SSHSIG namespace: a signature made for btsdr journals means nothing elsewhere.
pub(crate) const NAMESPACE: &str = "btsdr-journal";

/// `<journal>.sigs`.
pub fn sigs_path(journal: &Path) -> PathBuf {
    let mut s = journal.as_os_str().to_owned();
    s.push(".sigs");
    PathBuf::from(s)
}

/// One line of the `.sigs` sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureLine {
    pub principal: String,
    pub session: String,
    pub seq: u64,
    pub line_sha256: String,
    pub time: DateTime<Utc>,
    /// The armored `-----BEGIN SSH SIGNATURE-----` block.
    pub signature: String,
}

/// The exact bytes signed.
pub fn message(session: &str, seq: u64, line_sha256: &str, principal: &str) -> String {
    format!(
        "btsdr journal signature v1\nsession: {session}\nrecord: {seq}\nline-sha256: {line_sha256}\nsigner: {principal}\n"
    )
}

/// The session id a journal file is named for (`<id>.jsonl`).
pub(crate) fn session_of(journal: &Path) -> String {
    journal
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Why a key could not be read, a journal not signed, or an allowed_signers file not read.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("cannot read the key {}: {source}", path.display())]
    ReadKey { path: PathBuf, source: io::Error },
    #[error(
        "{} is not an OpenSSH private key ({source}); make one with `ssh-keygen -t ed25519`",
        path.display()
    )]
    NotAKey {
        path: PathBuf,
        source: ssh_key::Error,
    },
    /// The passphrase could not be asked for (no terminal, input closed).
    #[error("{0}")]
    Passphrase(String),
    #[error("wrong passphrase for {}", path.display())]
    WrongPassphrase { path: PathBuf },
    #[error(
        "`{0}` cannot be a signer name: use the principal of the allowed_signers file, e.g. alice@example.com (no spaces)"
    )]
    BadPrincipal(String),
    #[error("{0}")]
    Unreadable(#[from] io::Error),
    #[error("{} failed verification at {at}: a damaged journal is never signed", journal.display())]
    Damaged { journal: PathBuf, at: String },
    #[error("{} has no record to sign", journal.display())]
    Empty { journal: PathBuf },
    #[error("cannot sign with this key: {0}")]
    Sign(ssh_key::Error),
    #[error("cannot encode the signature: {0}")]
    Encode(ssh_key::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    /// A line of an allowed_signers file, as `file:line:1: what`.
    #[error("{0}")]
    AllowedSigners(String),
    #[error("cannot read {}: {source}", path.display())]
    ReadSigners { path: PathBuf, source: io::Error },
}

/// Reads an OpenSSH private key; `passphrase` is asked for only when the key is encrypted.
pub fn load_key(
    path: &Path,
    passphrase: impl FnOnce() -> Result<String, String>,
) -> Result<PrivateKey, SigningError> {
    let text = fs::read_to_string(path).map_err(|source| SigningError::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    let key = PrivateKey::from_openssh(text.trim()).map_err(|source| SigningError::NotAKey {
        path: path.to_path_buf(),
        source,
    })?;
    if key.is_encrypted() {
        let pass = passphrase().map_err(SigningError::Passphrase)?;
        key.decrypt(pass.as_bytes())
            .map_err(|_| SigningError::WrongPassphrase {
                path: path.to_path_buf(),
            })
    } else {
        Ok(key)
    }
}

/// Signs the journal's current head as `principal` and appends the signature to the
/// sidecar. Refuses a journal that does not verify.
pub fn sign(
    journal: &Path,
    key: &PrivateKey,
    principal: &str,
) -> Result<SignatureLine, SigningError> {
    let principal = principal.trim();
    if principal.is_empty() || principal.chars().any(char::is_whitespace) {
        return Err(SigningError::BadPrincipal(principal.to_string()));
    }
    let report = verify(journal)?;
    if let Some(bad) = &report.first_bad {
        return Err(SigningError::Damaged {
            journal: journal.to_path_buf(),
            at: bad.to_string(),
        });
    }
    if report.records == 0 {
        return Err(SigningError::Empty {
            journal: journal.to_path_buf(),
        });
    }
    let session = session_of(journal);
    let msg = message(&session, report.last_seq, &report.head, principal);
    let sig = key
        .sign(NAMESPACE, HashAlg::Sha512, msg.as_bytes())
        .map_err(SigningError::Sign)?;
    let line = SignatureLine {
        principal: principal.to_string(),
        session,
        seq: report.last_seq,
        line_sha256: report.head.clone(),
        time: Utc::now(),
        signature: sig.to_pem(LineEnding::LF).map_err(SigningError::Encode)?,
    };
    let mut text = serde_json::to_string(&line)?;
    text.push('\n');
    let path = sigs_path(journal);
    super::private::refuse_link(&path)?;
    let mut f = super::private::options()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|source| SigningError::Open {
            path: path.clone(),
            source,
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|source| SigningError::Write {
            path: path.clone(),
            source,
        })?;
    Ok(line)
}

/// One entry of an `allowed_signers` file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: Vec<String>,
    pub key: PublicKey,
    /// `namespaces="..."`: the key signs only these (none: any).
    pub namespaces: Option<Vec<String>>,
}

impl AllowedSigner {
    fn allows(&self, principal: &str, key: &PublicKey) -> bool {
        self.key.key_data() == key.key_data()
            && self.principals.iter().any(|p| p == principal)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|n| n.iter().any(|n| n == NAMESPACE))
    }
}

/// Parses OpenSSH's allowed_signers format: `principals [options] keytype base64 [comment]`
/// (ssh-keygen(1), "ALLOWED SIGNERS"). Principals are matched exactly (no wildcards);
/// `cert-authority` entries and validity windows are not supported and say so.
pub fn parse_allowed_signers(text: &str, file: &str) -> Result<Vec<AllowedSigner>, SigningError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |what: &str| SigningError::AllowedSigners(format!("{file}:{}:1: {what}", i + 1));
        let tokens = split_tokens(line);
        let Some(principals) = tokens.first() else {
            continue;
        };
        let key_at = tokens
            .iter()
            .position(|t| is_key_type(t))
            .ok_or_else(|| at("no key type (e.g. ssh-ed25519) on this line"))?;
        if key_at == 0 {
            return Err(at(
                "the line starts with a key: put the signer's name first",
            ));
        }
        let mut namespaces = None;
        for opt in &tokens[1..key_at] {
            for o in opt.split(',') {
                let (name, value) = o.split_once('=').unwrap_or((o, ""));
                match name.to_ascii_lowercase().as_str() {
                    "namespaces" => {
                        namespaces = Some(
                            value
                                .trim_matches('"')
                                .split(',')
                                .map(str::to_string)
                                .collect(),
                        );
                    }
                    other => {
                        return Err(at(&format!(
                            "option `{other}` is not supported by btsdr; list the signer's key itself"
                        )));
                    }
                }
            }
        }
        let b64 = tokens
            .get(key_at + 1)
            .ok_or_else(|| at("the key type is not followed by the key"))?;
        let key = PublicKey::from_openssh(&format!("{} {b64}", tokens[key_at]))
            .map_err(|e| at(&format!("the public key cannot be read ({e})")))?;
        out.push(AllowedSigner {
            principals: principals
                .trim_matches('"')
                .split(',')
                .map(str::to_string)
                .collect(),
            key,
            namespaces,
        });
    }
    Ok(out)
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-")
}

/// Splits on spaces outside double quotes.
fn split_tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                start.get_or_insert(i);
            }
            c if c.is_whitespace() && !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// What a signature proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigStatus {
    /// The signature is good, covers this journal, and the key is allowed for the principal.
    Valid { fingerprint: String },
    /// Cryptographically good, but the key is not in allowed_signers for this principal.
    UnknownSigner { fingerprint: String },
    /// Forged, altered or not for this journal.
    Invalid { why: String },
}

impl SigStatus {
    pub fn is_valid(&self) -> bool {
        matches!(self, SigStatus::Valid { .. })
    }
}

impl fmt::Display for SigStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigStatus::Valid { fingerprint } => write!(f, "VALID (allowed signer, {fingerprint})"),
            SigStatus::UnknownSigner { fingerprint } => write!(
                f,
                "NOT TRUSTED: a good signature by a key not in allowed_signers for this name ({fingerprint})"
            ),
            SigStatus::Invalid { why } => write!(f, "INVALID: {why}"),
        }
    }
}

/// A signature as checked.
#[derive(Debug, Clone)]
pub struct CheckedSignature {
    pub principal: String,
    pub seq: u64,
    pub time: Option<DateTime<Utc>>,
    pub status: SigStatus,
}

/// Checks every signature of a journal (none when it has no `.sigs`).
pub fn check_signatures(
    journal: &Path,
    allowed: &[AllowedSigner],
) -> io::Result<Vec<CheckedSignature>> {
    let text = match fs::read_to_string(sigs_path(journal)) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let hashes = read_file_lines_sha256(journal)?;
    // A signature vouches for its record and, through the chain, every record before it:
    // only as far as the chain verifies.
    let verified = verify(journal)?.records;
    let session = session_of(journal);
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut c = check_one(l, &session, &hashes, allowed);
            if c.seq as usize > verified && !matches!(c.status, SigStatus::Invalid { .. }) {
                c.status = SigStatus::Invalid {
                    why: format!(
                        "the journal verifies only up to record {verified}, so record {} and the records it vouches for are not the ones that were signed",
                        c.seq
                    ),
                };
            }
            c
        })
        .collect())
}

fn check_one(
    line: &str,
    session: &str,
    hashes: &[String],
    allowed: &[AllowedSigner],
) -> CheckedSignature {
    let bad = |why: String| CheckedSignature {
        principal: String::new(),
        seq: 0,
        time: None,
        status: SigStatus::Invalid { why },
    };
    let s: SignatureLine = match serde_json::from_str(line) {
        Ok(s) => s,
        Err(e) => return bad(format!("unreadable signature line ({e})")),
    };
    let status = (|| {
        let sig = SshSig::from_pem(s.signature.as_bytes())
            .map_err(|e| format!("not an SSH signature ({e})"))?;
        let key = PublicKey::from(sig.public_key().clone());
        let msg = message(&s.session, s.seq, &s.line_sha256, &s.principal);
        key.verify(NAMESPACE, msg.as_bytes(), &sig)
            .map_err(|_| "the signature does not match what it claims to sign".to_string())?;
        if s.session != session {
            return Err(format!(
                "signed for session {}, not this file's {session}",
                s.session
            ));
        }
        let at = usize::try_from(s.seq).ok().and_then(|n| n.checked_sub(1));
        if at.and_then(|i| hashes.get(i)) != Some(&s.line_sha256) {
            return Err(format!(
                "record {} is not the one that was signed: the journal changed after signing",
                s.seq
            ));
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Ok(if allowed.iter().any(|a| a.allows(&s.principal, &key)) {
            SigStatus::Valid { fingerprint }
        } else {
            SigStatus::UnknownSigner { fingerprint }
        })
    })()
    .unwrap_or_else(|why| SigStatus::Invalid { why });
    CheckedSignature {
        principal: s.principal,
        seq: s.seq,
        time: Some(s.time),
        status,
    }
}

/// Reads `path` as an allowed_signers file; a missing file is an empty list.
pub(crate) fn load_allowed_signers(path: &Path) -> Result<Vec<AllowedSigner>, SigningError> {
    match fs::read_to_string(path) {
        Ok(t) => parse_allowed_signers(&t, &path.display().to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(SigningError::ReadSigners {
            path: path.to_path_buf(),
            source,
        }),
    }
}
