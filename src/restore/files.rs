//! Reading the backup files on the instance that restores: list the folder, then
//! `RESTORE HEADERONLY` each `.bak` file. Read-only; the folder and each file are bound as
//! parameters.
//!
//! Listing: `EXEC master.sys.xp_dirtree @folder, 1, 1` (names directly in the folder, with a
//! `file` flag). Chosen over `sys.dm_os_enumerate_filesystem` because that function exists
//! only from SQL Server 2017 and BizTalk Server 2020 also supports SQL Server 2016; but
//! xp_dirtree is undocumented (its columns `subdirectory`, `depth`, `file` are as widely
//! described, not from Microsoft) and a folder it cannot read gives no rows rather than an
//! error, so an empty listing is reported as "no files", naming the folder and the server.
//! Both read as the SQL Server service account, which must be able to read the share.

use btsdr_types::{Param, Role, SqlError, Statement, ValueRef};

use super::plan::HeaderRow;
use crate::sql::{Executor, run_once};

/// Why the headers could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    #[error("listing {folder} with xp_dirtree failed: {error}")]
    List { folder: String, error: SqlError },
    #[error("RESTORE HEADERONLY FROM DISK = '{file}' failed: {error}")]
    Header { file: String, error: SqlError },
    #[error("RESTORE HEADERONLY FROM DISK = '{file}' answered without {what}")]
    Shape { file: String, what: String },
}

/// The folder joined with a file name, with the folder's own kind of slash.
pub fn join(folder: &str, name: &str) -> String {
    let url = folder.starts_with("https://") || folder.starts_with("http://");
    let sep = if url { '/' } else { '\\' };
    if folder.ends_with(['\\', '/']) {
        format!("{folder}{name}")
    } else {
        format!("{folder}{sep}{name}")
    }
}

fn stmt(role: Role, sql: &str, params: Vec<(String, Param)>, timeout_secs: u64) -> Statement {
    Statement {
        role,
        database: "master".into(),
        sql: sql.into(),
        params,
        timeout_secs,
        long_running: false,
    }
}

/// The `.bak` files directly in `folder`, as full paths, sorted.
pub async fn list_backup_files(
    exec: &dyn Executor,
    role: Role,
    folder: &str,
    timeout_secs: u64,
) -> Result<Vec<String>, ReadError> {
    let out = run_once(
        exec,
        stmt(
            role,
            "EXEC master.sys.xp_dirtree @folder, 1, 1;",
            vec![("folder".into(), Param::Text(folder.into()))],
            timeout_secs,
        ),
    )
    .await
    .map_err(|error| ReadError::List {
        folder: folder.into(),
        error,
    })?;
    let mut files = Vec::new();
    if let Some(rs) = out.first() {
        for i in 0..rs.rows.len() {
            let is_file = rs.get(i, "file").and_then(ValueRef::as_f64) == Some(1.0);
            let Some(name) = rs.get(i, "subdirectory").and_then(ValueRef::as_str) else {
                continue;
            };
            let bak = name
                .len()
                .checked_sub(4)
                .and_then(|n| name.get(n..))
                .is_some_and(|ext| ext.eq_ignore_ascii_case(".bak"));
            if is_file && bak {
                files.push(join(folder, name));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn lsn(v: Option<ValueRef<'_>>) -> Option<u128> {
    match v? {
        ValueRef::Decimal(s) | ValueRef::Text(s) => {
            let s = s.trim();
            s.split('.').next().unwrap_or(s).parse().ok()
        }
        ValueRef::Int(i) => u128::try_from(i).ok(),
        _ => None,
    }
}

/// One file's header (the first backup set on the file: BizTalk writes one set per file).
pub async fn read_header(
    exec: &dyn Executor,
    role: Role,
    file: &str,
    timeout_secs: u64,
) -> Result<HeaderRow, ReadError> {
    let out = run_once(
        exec,
        stmt(
            role,
            "RESTORE HEADERONLY FROM DISK = @file;",
            vec![("file".into(), Param::Text(file.into()))],
            timeout_secs,
        ),
    )
    .await
    .map_err(|error| ReadError::Header {
        file: file.into(),
        error,
    })?;
    let shape = |what: &str| ReadError::Shape {
        file: file.into(),
        what: what.into(),
    };
    let rs = out
        .first()
        .filter(|rs| !rs.rows.is_empty())
        .ok_or_else(|| shape("a row"))?;
    let text = |c: &str| rs.get(0, c).and_then(ValueRef::as_str).map(str::to_string);
    Ok(HeaderRow {
        file: file.into(),
        server: text("ServerName").ok_or_else(|| shape("ServerName"))?,
        database: text("DatabaseName").ok_or_else(|| shape("DatabaseName"))?,
        backup_type: rs
            .get(0, "BackupType")
            .and_then(ValueRef::as_f64)
            .map(|f| f as i64)
            .ok_or_else(|| shape("BackupType"))?,
        first_lsn: lsn(rs.get(0, "FirstLSN")).ok_or_else(|| shape("FirstLSN"))?,
        last_lsn: lsn(rs.get(0, "LastLSN")).ok_or_else(|| shape("LastLSN"))?,
        database_backup_lsn: lsn(rs.get(0, "DatabaseBackupLSN")).unwrap_or(0),
        start: match rs.get(0, "BackupStartDate") {
            Some(ValueRef::DateTime(s) | ValueRef::Text(s)) => s.to_string(),
            _ => String::new(),
        },
        size_bytes: lsn(rs.get(0, "BackupSize"))
            .and_then(|b| u64::try_from(b).ok())
            .unwrap_or(0),
    })
}

/// Lists `folder` on `role`'s server and reads every `.bak` file's header, one at a time.
pub async fn read_folder(
    exec: &dyn Executor,
    role: Role,
    folder: &str,
    timeout_secs: u64,
) -> Result<Vec<HeaderRow>, ReadError> {
    let mut rows = Vec::new();
    for file in list_backup_files(exec, role, folder, timeout_secs).await? {
        rows.push(read_header(exec, role, &file, timeout_secs).await?);
    }
    Ok(rows)
}
