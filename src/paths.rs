//! Where btsdr keeps things: config (runbooks, keys, environments), data (sessions,
//! journals, reports) and logs. `BTSDR_CONFIG_DIR` / `BTSDR_DATA_DIR` override them.

use std::path::PathBuf;

use directories::ProjectDirs;

fn project() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "btsdr")
}

pub fn config_dir() -> PathBuf {
    std::env::var_os("BTSDR_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| project().map(|p| p.config_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(".btsdr/config"))
}

pub fn data_dir() -> PathBuf {
    std::env::var_os("BTSDR_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| project().map(|p| p.data_dir().to_path_buf()))
        .unwrap_or_else(|| PathBuf::from(".btsdr/data"))
}

pub fn log_dir() -> PathBuf {
    data_dir().join("logs")
}

/// User runbooks that override or extend the embedded ones.
pub fn user_runbooks_dir() -> PathBuf {
    config_dir().join("runbooks")
}
