//! Keys generated into the data directory (SPEC §4, §7): `master.key` and
//! `admin.key`, created with mode 0600 and reused on later starts.

use std::io::Write;
use std::path::{Path, PathBuf};

use wetoken_core::keys::generate_key;
use wetoken_core::secret::MasterKey;

/// Reads `dir/name`, or creates it with `make()` (mode 0600). Returns the
/// content and whether it was created now.
fn read_or_create(dir: &Path, name: &str, make: impl FnOnce() -> String) -> Result<(String, bool, PathBuf), String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => return Ok((s.trim().to_owned(), false, path)),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read {}: {e}", path.display()));
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let value = make();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(format!("{value}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((value, true, path))
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path)
            .map(|s| (s.trim().to_owned(), false, path.clone()))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Where the master key came from (for errors that must name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `WETOKEN_MASTER_KEY`.
    Setting,
    /// `master.key`, read.
    File(PathBuf),
    /// `master.key`, generated just now (the database decides whether it
    /// may be kept).
    Generated(PathBuf),
}

/// The master key: the setting, else `master.key` in the data dir.
pub fn master_key(setting: Option<&str>, data_dir: &Path) -> Result<(MasterKey, KeySource), String> {
    if let Some(k) = setting {
        let key = MasterKey::from_base64(k).map_err(|e| format!("WETOKEN_MASTER_KEY: {e}"))?;
        return Ok((key, KeySource::Setting));
    }
    let (k, created, path) = read_or_create(data_dir, "master.key", MasterKey::generate_base64)?;
    let key = MasterKey::from_base64(&k).map_err(|e| format!("{}: {e}", path.display()))?;
    if created {
        tracing::warn!(path = %path.display(), "generated a new master key; back it up: without it stored secrets cannot be read");
        Ok((key, KeySource::Generated(path)))
    } else {
        Ok((key, KeySource::File(path)))
    }
}

/// The shortest admin key accepted (SPEC §4): a guessable one is refused.
pub const MIN_ADMIN_KEY: usize = 32;

/// The admin key: the setting, else `admin.key` in the data dir; one shorter
/// than [`MIN_ADMIN_KEY`] characters is refused.
pub fn admin_key(setting: Option<&str>, data_dir: &Path) -> Result<String, String> {
    if let Some(k) = setting {
        if k.chars().count() < MIN_ADMIN_KEY {
            return Err(format!(
                "WETOKEN_ADMIN_KEY (admin_key) must be at least {MIN_ADMIN_KEY} characters; it has {}: \
                 leave it unset to have one generated into admin.key",
                k.chars().count()
            ));
        }
        return Ok(k.to_owned());
    }
    let (k, created, path) = read_or_create(data_dir, "admin.key", generate_key)?;
    if k.chars().count() < MIN_ADMIN_KEY {
        return Err(format!(
            "the admin key in {} must be at least {MIN_ADMIN_KEY} characters: remove the file to have one generated",
            path.display()
        ));
    }
    if created {
        tracing::warn!(path = %path.display(), "generated the admin key");
    } else {
        tracing::info!(path = %path.display(), "admin key read from file");
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let a = admin_key(None, dir.path()).unwrap();
        assert_eq!(admin_key(None, dir.path()).unwrap(), a, "reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("admin.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let k = master_key(None, dir.path()).unwrap();
        let (k, source) = (k.0, k.1);
        assert!(matches!(source, KeySource::Generated(_)));
        let sealed = k.seal("x", "b");
        assert_eq!(master_key(None, dir.path()).unwrap().0.open(&sealed, "b").unwrap(), "x");
        let given = "given-0123456789-0123456789-01234";
        assert_eq!(admin_key(Some(given), dir.path()).unwrap(), given);
        let e = admin_key(Some("admin"), dir.path()).unwrap_err();
        assert!(e.contains("WETOKEN_ADMIN_KEY") && e.contains("32"), "{e}");
        let short = tempfile::tempdir().unwrap();
        std::fs::write(short.path().join("admin.key"), "admin\n").unwrap();
        let e = admin_key(None, short.path()).unwrap_err();
        assert!(e.contains("admin.key") && e.contains("32"), "{e}");
        assert!(master_key(Some("bad"), dir.path()).is_err());
    }
}
