//! The API's bearer token: created on first start into `<state>/token` with mode 0600.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::DaemonError;

/// The file name of the token inside the state directory.
pub const TOKEN_FILE: &str = "token";

/// Reads the token from `state_dir`, creating a fresh random one (mode 0600) when absent.
pub fn load_or_create(state_dir: &Path) -> Result<String, DaemonError> {
    let path = state_dir.join(TOKEN_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim().to_owned();
        if token.len() >= 32 {
            return Ok(token);
        }
    }
    let io = |source| DaemonError::StateFile {
        path: path.clone(),
        source,
    };
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    file.write_all(token.as_bytes()).map_err(io)?;
    Ok(token)
}

/// Reads an existing token (for clients).
pub fn read(state_dir: &Path) -> Result<String, DaemonError> {
    let path = state_dir.join(TOKEN_FILE);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|source| DaemonError::StateFile { path, source })
}

/// Compares two tokens in time independent of where they differ.
pub(crate) fn matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn token_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        assert_eq!(read(dir.path()).unwrap(), first);
        assert!(matches(&first, &first));
        assert!(!matches("x", &first));
    }
}
