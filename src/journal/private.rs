//! Files a session writes: readable by the owner only (Unix mode 0600), never through a
//! symbolic link planted in the sessions folder.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Options that create files readable by the owner only and refuse to follow a symbolic
/// link at the last component (Unix: `O_NOFOLLOW`; Windows opens the link itself, which
/// [`refuse_link`] rules out first).
pub fn options() -> OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut o = OpenOptions::new();
        o.mode(0o600).custom_flags(libc::O_NOFOLLOW);
        o
    }
    #[cfg(not(unix))]
    {
        OpenOptions::new()
    }
}

/// An error when `path` is a symbolic link (or a junction on Windows).
pub(crate) fn refuse_link(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is a symbolic link: btsdr never writes through one (remove it)",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Writes a generated file: a new file (an earlier one of the same name is replaced, a
/// link or anything else that is not a regular file is refused), owner-only, synced.
pub(crate) fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
        refuse_link(dir)?;
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => fs::remove_file(path)?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a regular file (a link, folder or device): \
                     btsdr will not write there; remove it",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f: File = options().write(true).create_new(true).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_private_and_links_are_not_followed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("files").join("a.xml");
        write_new(&p, b"one").unwrap();
        write_new(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let target = dir.path().join("victim");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("files").join("b.xml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = write_new(&link, b"evil").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }
}
