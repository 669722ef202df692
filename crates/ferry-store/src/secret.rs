//! Secrets: values encrypted with XChaCha20-Poly1305 under a key kept in a file outside
//! the database, so a copied database (or backup) reveals nothing without the key file.
//!
//! Each value gets a fresh random 192-bit nonce; the app, env and name are bound in as
//! associated data, so a ciphertext moved to another row fails to decrypt instead of
//! silently becoming another secret. Values are [`SecretValue`]s, whose `Debug` is
//! redacted, and no error message carries a value.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroize;

use crate::Store;
use crate::error::{Error, Result, query};
use crate::row;

/// A secret's plaintext. Its `Debug` output is redacted; read it with [`expose`](Self::expose).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Vec<u8>);

impl SecretValue {
    /// Wraps a plaintext value.
    pub fn new(value: impl Into<Vec<u8>>) -> Self {
        Self(value.into())
    }

    /// The plaintext bytes. Call this only where the value is handed to the service.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The plaintext as text, if it is UTF-8 (for environment variables).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        // Leave no copy of the plaintext in freed memory.
        self.0.zeroize();
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

impl From<String> for SecretValue {
    fn from(value: String) -> Self {
        Self(value.into_bytes())
    }
}

impl From<&str> for SecretValue {
    fn from(value: &str) -> Self {
        Self(value.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for SecretValue {
    fn from(value: Vec<u8>) -> Self {
        Self(value)
    }
}

/// A stored secret's name and when it was last set (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretEntry {
    /// The app.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The secret's name.
    pub name: String,
    /// When it was last set.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Access to the encrypted secrets of a [`Store`], holding the key.
pub struct Secrets {
    store: Store,
    cipher: XChaCha20Poly1305,
    key_file: PathBuf,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("store", &self.store)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

/// The associated data binding a ciphertext to its row.
fn aad(app: &str, env: &str, name: &str) -> Vec<u8> {
    format!("ferry-secret-v1\0{app}\0{env}\0{name}").into_bytes()
}

impl Store {
    /// Opens the secrets of this store with the key in `key_file`, creating the key
    /// (32 random bytes, hex, file mode 0600, parent directory 0700) on first use.
    ///
    /// Refuses a key file that group or others may read or write.
    pub fn secrets(&self, key_file: &Path) -> Result<Secrets> {
        let key = load_or_create_key(key_file)?;
        Ok(Secrets {
            store: self.clone(),
            cipher: XChaCha20Poly1305::new(&key),
            key_file: key_file.to_path_buf(),
        })
    }
}

impl Secrets {
    /// Sets (creates or replaces) a secret.
    pub async fn set(&self, app: &str, env: &str, name: &str, value: &SecretValue) -> Result<()> {
        let (ciphertext, nonce) = self.encrypt(app, env, name, value)?;
        sqlx::query(
            "INSERT INTO secrets (app, env, name, ciphertext, nonce, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (app, env, name) DO UPDATE SET ciphertext = excluded.ciphertext, \
             nonce = excluded.nonce, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(app)
        .bind(env)
        .bind(name)
        .bind(ciphertext)
        .bind(nonce)
        .bind(self.store.now_ms())
        .execute(&self.store.pool)
        .await
        .map_err(query("store secret"))?;
        Ok(())
    }

    /// A secret's value, if it is set.
    pub async fn get(&self, app: &str, env: &str, name: &str) -> Result<Option<SecretValue>> {
        let row = sqlx::query(
            "SELECT ciphertext, nonce FROM secrets WHERE app = $1 AND env = $2 AND name = $3",
        )
        .bind(app)
        .bind(env)
        .bind(name)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(query("read secret"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let ciphertext: Vec<u8> = row::get(&row, "ciphertext")?;
        let nonce: Vec<u8> = row::get(&row, "nonce")?;
        self.decrypt(app, env, name, &ciphertext, &nonce).map(Some)
    }

    /// Every secret of `app`/`env` with its value, by name: what a deploy injects.
    pub async fn get_all(&self, app: &str, env: &str) -> Result<Vec<(String, SecretValue)>> {
        let rows = sqlx::query(
            "SELECT name, ciphertext, nonce FROM secrets WHERE app = $1 AND env = $2 ORDER BY name",
        )
        .bind(app)
        .bind(env)
        .fetch_all(&self.store.pool)
        .await
        .map_err(query("read secrets"))?;
        rows.iter()
            .map(|row| {
                let name: String = row::get(row, "name")?;
                let ciphertext: Vec<u8> = row::get(row, "ciphertext")?;
                let nonce: Vec<u8> = row::get(row, "nonce")?;
                let value = self.decrypt(app, env, &name, &ciphertext, &nonce)?;
                Ok((name, value))
            })
            .collect()
    }

    /// The names of the secrets of `app`/`env`, sorted, without values.
    pub async fn list(&self, app: &str, env: &str) -> Result<Vec<SecretEntry>> {
        let rows = sqlx::query(
            "SELECT app, env, name, updated_at_ms FROM secrets WHERE app = $1 AND env = $2 \
             ORDER BY name",
        )
        .bind(app)
        .bind(env)
        .fetch_all(&self.store.pool)
        .await
        .map_err(query("list secrets"))?;
        rows.iter()
            .map(|row| {
                Ok(SecretEntry {
                    app: row::get(row, "app")?,
                    env: row::get(row, "env")?,
                    name: row::get(row, "name")?,
                    updated_at: row::time(row, "updated_at_ms")?,
                })
            })
            .collect()
    }

    /// Removes a secret; returns whether it existed.
    pub async fn remove(&self, app: &str, env: &str, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM secrets WHERE app = $1 AND env = $2 AND name = $3")
            .bind(app)
            .bind(env)
            .bind(name)
            .execute(&self.store.pool)
            .await
            .map_err(query("remove secret"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Re-encrypts every secret of the store (all apps and environments) under a fresh key
    /// written to `new_key_file`, which must not exist yet. All or nothing: one
    /// transaction that holds off other writers of secrets; if any secret cannot be
    /// decrypted with the current key, nothing changes and the new key file is removed.
    ///
    /// Afterwards only the new key reads the secrets: move it over the old key file.
    /// Returns the number of secrets re-encrypted and a handle using the new key.
    pub async fn rotate_key(&self, new_key_file: &Path) -> Result<(usize, Secrets)> {
        if new_key_file.exists() {
            return Err(Error::KeyFile {
                path: new_key_file.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the new key file already exists",
                ),
            });
        }
        let rotated = self.store.secrets(new_key_file)?;
        match self.reencrypt_all(&rotated).await {
            Ok(count) => Ok((count, rotated)),
            Err(e) => {
                // Nothing was committed under the new key, so it protects nothing.
                let _ = fs::remove_file(new_key_file);
                Err(e)
            }
        }
    }

    async fn reencrypt_all(&self, rotated: &Secrets) -> Result<usize> {
        let mut tx = self
            .store
            .pool
            .begin()
            .await
            .map_err(query("begin key rotation"))?;
        // Hold off every other writer of secrets until commit, so no secret is written
        // under the old key meanwhile. SQLite takes its single write lock with the first
        // writing statement, even one that changes nothing.
        let hold = match self.store.backend {
            crate::Backend::Postgres => "LOCK TABLE secrets IN SHARE ROW EXCLUSIVE MODE",
            crate::Backend::Sqlite => "UPDATE secrets SET nonce = nonce WHERE 1 = 0",
        };
        sqlx::query(hold)
            .execute(&mut *tx)
            .await
            .map_err(query("lock secrets for key rotation"))?;
        let rows = sqlx::query("SELECT app, env, name, ciphertext, nonce FROM secrets")
            .fetch_all(&mut *tx)
            .await
            .map_err(query("read secrets for key rotation"))?;
        for row in &rows {
            let app: String = row::get(row, "app")?;
            let env: String = row::get(row, "env")?;
            let name: String = row::get(row, "name")?;
            let ciphertext: Vec<u8> = row::get(row, "ciphertext")?;
            let nonce: Vec<u8> = row::get(row, "nonce")?;
            let value = self.decrypt(&app, &env, &name, &ciphertext, &nonce)?;
            let (ciphertext, nonce) = rotated.encrypt(&app, &env, &name, &value)?;
            sqlx::query(
                "UPDATE secrets SET ciphertext = $1, nonce = $2 \
                 WHERE app = $3 AND env = $4 AND name = $5",
            )
            .bind(ciphertext)
            .bind(nonce)
            .bind(&app)
            .bind(&env)
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(query("store re-encrypted secret"))?;
        }
        tx.commit().await.map_err(query("commit key rotation"))?;
        Ok(rows.len())
    }

    /// Encrypts a value for its row: the ciphertext and the fresh nonce.
    fn encrypt(
        &self,
        app: &str,
        env: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<(Vec<u8>, Vec<u8>)> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose(),
                    aad: &aad(app, env, name),
                },
            )
            .map_err(|_| Error::Encrypt {
                app: app.to_owned(),
                env: env.to_owned(),
                name: name.to_owned(),
            })?;
        Ok((ciphertext, nonce.to_vec()))
    }

    fn decrypt(
        &self,
        app: &str,
        env: &str,
        name: &str,
        ciphertext: &[u8],
        nonce: &[u8],
    ) -> Result<SecretValue> {
        let failed = || Error::Decrypt {
            app: app.to_owned(),
            env: env.to_owned(),
            name: name.to_owned(),
        };
        if nonce.len() != 24 {
            return Err(failed());
        }
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad(app, env, name),
                },
            )
            .map(SecretValue)
            .map_err(|_| failed())
    }
}

/// Reads the key, or creates it if the file does not exist yet.
fn load_or_create_key(path: &Path) -> Result<Key> {
    let io_error = |source| Error::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    match fs::metadata(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key(path)?,
        Err(e) => return Err(io_error(e)),
    }
    let meta = fs::metadata(path).map_err(io_error)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::KeyFilePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = fs::read_to_string(path).map_err(io_error)?;
    let key = decode_hex_key(text.trim());
    text.zeroize();
    key.ok_or_else(|| Error::KeyFileInvalid {
        path: path.to_path_buf(),
    })
}

/// Writes a fresh key. The key goes to a private temporary file first and is then
/// hard-linked into place, which fails if the file appeared meanwhile: two processes
/// creating the key at once end up sharing one complete key, never a half-written one.
fn create_key(path: &Path) -> Result<()> {
    let io_error = |source| Error::KeyFile {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_error)?;
    }
    let mut key = XChaCha20Poly1305::generate_key(&mut OsRng);
    let mut hex = String::with_capacity(65);
    for b in key.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex.push('\n');
    key.as_mut_slice().zeroize();
    // Unique per process and per call, so concurrent creators never share a temp file.
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        ATTEMPT.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp_name);
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(hex.as_bytes())?;
        hex.zeroize();
        file.sync_all()?;
        match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
            _ => Ok(()),
        }
    })();
    // The temporary name is ours alone; failing to remove it leaves only a stray copy.
    let _ = fs::remove_file(&tmp);
    written.map_err(io_error)
}

fn decode_hex_key(text: &str) -> Option<Key> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = Key::default();
    for (i, slot) in key.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_value_is_redacted() {
        let value = SecretValue::from("hunter2-very-secret");
        let shown = format!("{value:?} {:?}", Some(vec![value.clone()]));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redacted"));
        assert_eq!(value.expose_str(), Some("hunter2-very-secret"));
    }

    #[test]
    fn key_hex_round_trips_and_rejects_garbage() {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(decode_hex_key(&hex), Some(key));
        assert_eq!(decode_hex_key(&hex[..62]), None);
        assert_eq!(decode_hex_key(&"zz".repeat(32)), None);
        assert_eq!(decode_hex_key(&"é".repeat(32)), None);
    }
}
