//! Where btsdr keeps things: config (runbooks, keys, environments), data (sessions,
//! journals, reports) and logs. `BTSDR_CONFIG_DIR` / `BTSDR_DATA_DIR` override them.
//!
//! On Windows the config is roaming (`%APPDATA%\btsdr\config`: environments and runbooks
//! follow the operator to another jump host) and the data is local
//! (`%LOCALAPPDATA%\btsdr\data`): a journal is fsynced per record, which on a roaming
//! profile redirected to a file server would stall on the network a disaster may have taken
//! down, and a roaming sync at logoff could replace a newer journal with an older copy.
//! On Linux and macOS both are the usual XDG / Application Support folders.

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "btsdr")
}

/// A folder named by an environment variable; an empty value counts as unset (a shell
/// variable that expanded to nothing must not mean the current folder).
fn env_dir(value: Option<std::ffi::OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

pub(crate) fn config_dir() -> PathBuf {
    env_dir(std::env::var_os("BTSDR_CONFIG_DIR"))
        .or_else(|| project().map(|p| p.config_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(".btsdr/config"))
}

pub fn data_dir() -> PathBuf {
    env_dir(std::env::var_os("BTSDR_DATA_DIR"))
        .or_else(|| project().map(|p| p.data_local_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(".btsdr/data"))
}

pub(crate) fn log_dir() -> PathBuf {
    data_dir().join("logs")
}

/// User runbooks that override or extend the embedded ones.
pub(crate) fn user_runbooks_dir() -> PathBuf {
    config_dir().join("runbooks")
}

#[cfg(test)]
mod tests {
    use super::env_dir;

    #[test]
    fn an_empty_variable_is_unset() {
        assert_eq!(env_dir(None), None);
        assert_eq!(env_dir(Some("".into())), None);
        assert_eq!(
            env_dir(Some("/srv/btsdr".into())),
            Some("/srv/btsdr".into())
        );
    }
}
