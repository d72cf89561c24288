//! Where oomward keeps its files: in the directories systemd gives the unit
//! (`StateDirectory=`, `RuntimeDirectory=`), else in /var/lib/oomward and /run/oomward. The
//! variables also let a test give a daemon directories of its own.

use std::path::PathBuf;

/// The first directory of a systemd directory variable (colon-separated, absolute), else
/// `fallback`.
fn systemd_dir(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .and_then(|v| {
            let v = v.to_str()?.split(':').next()?.to_string();
            v.starts_with('/').then(|| PathBuf::from(v))
        })
        .unwrap_or_else(|| PathBuf::from(fallback))
}

/// The state directory: `$STATE_DIRECTORY`, else /var/lib/oomward.
pub fn state_dir() -> PathBuf {
    systemd_dir("STATE_DIRECTORY", "/var/lib/oomward")
}

/// The runtime directory: `$RUNTIME_DIRECTORY`, else /run/oomward.
pub fn runtime_dir() -> PathBuf {
    systemd_dir("RUNTIME_DIRECTORY", "/run/oomward")
}

/// Where the last config that loaded is kept, for a start whose config does not load.
pub fn last_good_path() -> PathBuf {
    state_dir().join("last-good.toml")
}
