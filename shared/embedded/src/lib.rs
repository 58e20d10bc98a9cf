//! The embedded store: SQLite on local disk, for `dev` and tests. It implements the same
//! single-table [`ItemStore`] port as DynamoDB, so the registry and the built-in data adapter
//! run unchanged on it, and a restart loses nothing.
//!
//! Calls run inline under a mutex: each is a local B-tree operation of a few microseconds,
//! cheaper than a hop to a blocking thread.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use switchboard::ports::{
    Item, ItemStore, Key, MAX_TRANSACT_ITEMS, Page, Precondition, SkRange, StoreError, Write,
};
use switchboard::ports::{SecretError, SecretStore};
use switchboard::secrets::{CredentialRef, SecretValue};

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS items (
    tbl     TEXT NOT NULL,
    pk      TEXT NOT NULL,
    sk      TEXT NOT NULL,
    data    TEXT NOT NULL,
    version INTEGER NOT NULL,
    counter INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tbl, pk, sk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// One SQLite database holding every table.
#[derive(Clone)]
pub struct Embedded {
    conn: Arc<Mutex<Connection>>,
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::Internal(format!("embedded store: {e}"))
}

impl Embedded {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        Self::init(conn)
    }

    /// A private in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(internal)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(internal)?;
        conn.execute_batch(SCHEMA).map_err(internal)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// A named table in this database (`registry`, `data`, …).
    pub fn table(&self, name: &str) -> Arc<dyn ItemStore> {
        Arc::new(EmbeddedTable {
            conn: self.conn.clone(),
            tbl: name.to_owned(),
        })
    }

    pub fn registry_table(&self) -> Arc<dyn ItemStore> {
        self.table("registry")
    }

    pub fn data_table(&self) -> Arc<dyn ItemStore> {
        self.table("data")
    }

    /// The local stand-in for Secrets Manager: the same references resolve offline. Values
    /// sit in their own table, apart from the registry.
    pub fn secret_store(&self) -> Arc<dyn SecretStore> {
        Arc::new(EmbeddedSecrets {
            conn: self.conn.clone(),
        })
    }
}

struct EmbeddedSecrets {
    conn: Arc<Mutex<Connection>>,
}

impl EmbeddedSecrets {
    fn lock(&self) -> Result<MutexGuard<'_, Connection>, SecretError> {
        self.conn
            .lock()
            .map_err(|_| SecretError::Unavailable("embedded store: lock poisoned".into()))
    }
}

#[async_trait]
impl SecretStore for EmbeddedSecrets {
    async fn fetch(&self, reference: &CredentialRef) -> Result<SecretValue, SecretError> {
        let conn = self.lock()?;
        let value: Option<String> = conn
            .query_row(
                "SELECT value FROM secrets WHERE name = ?1",
                params![reference.name()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| SecretError::Unavailable(format!("embedded store: {e}")))?;
        match value {
            Some(v) => SecretValue::from_secret_string(&v),
            None => Err(SecretError::NotFound(reference.to_string())),
        }
    }

    async fn put(&self, name: &str, value: &SecretValue) -> Result<CredentialRef, SecretError> {
        let reference = CredentialRef::parse(name).map_err(SecretError::Invalid)?;
        self.lock()?
            .execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value.to_secret_string()],
            )
            .map_err(|e| SecretError::Unavailable(format!("embedded store: {e}")))?;
        Ok(reference)
    }
}

/// The least string greater than every string starting with `p` (`None`: there is none).
/// SQLite compares text as UTF-8 bytes, which order as the characters do.
fn successor(p: &str) -> Option<String> {
    let mut chars: Vec<char> = p.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub struct EmbeddedTable {
    conn: Arc<Mutex<Connection>>,
    tbl: String,
}

fn read_row(pk: String, sk: String, data: String, version: i64) -> Result<Item, StoreError> {
    let data = serde_json::from_str(&data).map_err(internal)?;
    let version = u64::try_from(version).map_err(internal)?;
    Ok(Item {
        key: Key { pk, sk },
        data,
        version,
    })
}

impl EmbeddedTable {
    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn
            .lock()
            .map_err(|_| StoreError::Internal("embedded store: lock poisoned".into()))
    }

    fn current_version(tx: &Connection, tbl: &str, key: &Key) -> Result<Option<u64>, StoreError> {
        tx.query_row(
            "SELECT version FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
            params![tbl, key.pk, key.sk],
            |r| r.get::<_, i64>(0),
        )
        .optional()
        .map_err(internal)?
        .map(|v| u64::try_from(v).map_err(internal))
        .transpose()
    }

    fn check(current: Option<u64>, pre: Precondition, key: &Key) -> Result<(), StoreError> {
        let ok = match pre {
            Precondition::None => true,
            Precondition::NotExists => current.is_none(),
            Precondition::Exists => current.is_some(),
            Precondition::Version(v) => current == Some(v),
        };
        if ok {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                key: key.to_string(),
                current,
                found: None,
            })
        }
    }

    fn put_in(
        tx: &Transaction<'_>,
        tbl: &str,
        key: &Key,
        data: &Value,
        pre: Precondition,
    ) -> Result<u64, StoreError> {
        let current = Self::current_version(tx, tbl, key)?;
        Self::check(current, pre, key)?;
        let next = current.unwrap_or(0) + 1;
        let text = serde_json::to_string(data).map_err(internal)?;
        tx.execute(
            "INSERT INTO items (tbl, pk, sk, data, version) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tbl, pk, sk) DO UPDATE SET data = excluded.data, version = excluded.version",
            params![tbl, key.pk, key.sk, text, i64::try_from(next).map_err(internal)?],
        )
        .map_err(internal)?;
        Ok(next)
    }
}

#[async_trait]
impl ItemStore for EmbeddedTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .query_row(
                "SELECT data, version FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
                params![self.tbl, key.pk, key.sk],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
            )
            .optional()
            .map_err(internal)?;
        row.map(|(d, v)| read_row(key.pk.clone(), key.sk.clone(), d, v))
            .transpose()
    }

    async fn put(&self, key: &Key, data: &Value, pre: Precondition) -> Result<u64, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(internal)?;
        let v = Self::put_in(&tx, &self.tbl, key, data, pre)?;
        tx.commit().map_err(internal)?;
        Ok(v)
    }

    async fn delete(&self, key: &Key, pre: Precondition) -> Result<bool, StoreError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(internal)?;
        let current = Self::current_version(&tx, &self.tbl, key)?;
        Self::check(current, pre, key)?;
        let n = tx
            .execute(
                "DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
                params![self.tbl, key.pk, key.sk],
            )
            .map_err(internal)?;
        tx.commit().map_err(internal)?;
        Ok(n > 0)
    }

    async fn query_range(
        &self,
        pk: &str,
        range: &SkRange,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Page<Item>, StoreError> {
        let conn = self.lock()?;
        // Fetch one extra row to know whether another page follows.
        let want = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX - 1) + 1);
        // Bounds the primary key's B-tree seeks to; a prefix is every key from it up to, not
        // including, the first string that sorts after all its continuations.
        let (lo, hi) = match range {
            SkRange::All => (String::new(), None),
            SkRange::Between(lo, hi) => (lo.clone(), Some(("<=", hi.clone()))),
            SkRange::Prefix(p) => (p.clone(), successor(p).map(|s| ("<", s))),
        };
        let (from, start) = match after {
            Some(a) if *a >= *lo => (">", a.to_owned()),
            _ => (">=", lo),
        };
        // Separate statements, not `?5 IS NULL OR …`: the planner bounds its seek only by
        // conditions it can see.
        let sql = format!(
            "SELECT sk, data, version FROM items WHERE tbl = ?1 AND pk = ?2 AND sk {from} ?3 {} ORDER BY sk LIMIT ?4",
            match &hi {
                Some((op, _)) => format!("AND sk {op} ?5"),
                None => String::new(),
            }
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(internal)?;
        let rows = match &hi {
            Some((_, hi)) => stmt.query(params![self.tbl, pk, start, want, hi]),
            None => stmt.query(params![self.tbl, pk, start, want]),
        }
        .map_err(internal)?;
        let rows = rows.mapped(|r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        });
        let mut items = Vec::new();
        for row in rows {
            let (sk, data, version) = row.map_err(internal)?;
            items.push(read_row(pk.to_owned(), sk, data, version)?);
        }
        let next = match limit {
            Some(l) if items.len() > l => {
                items.truncate(l);
                items.last().map(|i| i.key.sk.clone())
            }
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT data, version FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
            )
            .map_err(internal)?;
        let mut out = Vec::with_capacity(keys.len());
        let mut seen = std::collections::HashSet::new();
        for key in keys {
            if !seen.insert(key) {
                continue;
            }
            let row = stmt
                .query_row(params![self.tbl, key.pk, key.sk], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(internal)?;
            if let Some((d, v)) = row {
                out.push(read_row(key.pk.clone(), key.sk.clone(), d, v)?);
            }
        }
        Ok(out)
    }

    async fn transact_write(&self, writes: &[Write<'_>]) -> Result<(), StoreError> {
        if writes.len() > MAX_TRANSACT_ITEMS {
            return Err(internal(format!(
                "transaction of {} items exceeds {MAX_TRANSACT_ITEMS}",
                writes.len()
            )));
        }
        let mut seen = std::collections::HashSet::with_capacity(writes.len());
        if let Some(dup) = writes.iter().find(|w| !seen.insert(w.key())) {
            return Err(internal(format!(
                "a transaction names item {} twice",
                dup.key()
            )));
        }
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(internal)?;
        for write in writes {
            // Dropping `tx` on error rolls every earlier write back.
            match *write {
                Write::Put { key, data, pre } => {
                    Self::put_in(&tx, &self.tbl, key, data, pre)?;
                }
                Write::Check { key, pre } => {
                    let current = Self::current_version(&tx, &self.tbl, key)?;
                    Self::check(current, pre, key)?;
                }
                Write::Delete { key, pre } => {
                    let current = Self::current_version(&tx, &self.tbl, key)?;
                    Self::check(current, pre, key)?;
                    tx.execute(
                        "DELETE FROM items WHERE tbl = ?1 AND pk = ?2 AND sk = ?3",
                        params![self.tbl, key.pk, key.sk],
                    )
                    .map_err(internal)?;
                }
            }
        }
        tx.commit().map_err(internal)
    }

    async fn increment(&self, key: &Key) -> Result<u64, StoreError> {
        let conn = self.lock()?;
        let n: i64 = conn
            .query_row(
                "INSERT INTO items (tbl, pk, sk, data, version, counter) VALUES (?1, ?2, ?3, 'null', 1, 1)
                 ON CONFLICT (tbl, pk, sk) DO UPDATE SET counter = counter + 1, version = version + 1
                 RETURNING counter",
                params![self.tbl, key.pk, key.sk],
                |r| r.get(0),
            )
            .map_err(internal)?;
        u64::try_from(n).map_err(internal)
    }
}
