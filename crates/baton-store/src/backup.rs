//! Backups of an SQLite store: an online, consistent copy (`VACUUM INTO`,
//! taken while work goes on — the blobs are in the database), with the admin
//! token and the spools of runs not yet finished, in one `.tar.gz` with a
//! manifest; restored into an empty data directory, and verified.
//!
//! On PostgreSQL the database is backed up by PostgreSQL's own tools
//! (`pg_dump`, point-in-time recovery); see `docs/operations.md`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// What a backup says of itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `baton-backup`.
    pub format: String,
    /// The Baton that made it.
    pub baton: String,
    /// Its database's schema version.
    pub schema: i64,
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// How many tasks, events and documents it holds.
    pub tasks: i64,
    /// Events.
    pub events: i64,
    /// Documents.
    pub documents: i64,
    /// The spools of runs that were not finished (their later output is
    /// ingested after a restore).
    pub spools: Vec<String>,
}

/// Why a backup or a restore did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The target exists.
    #[error("{0} exists; pass --force to replace it")]
    Exists(PathBuf),
    /// The data directory to restore into is not empty.
    #[error("{0} is not empty: restore into a new or empty directory")]
    NotEmpty(PathBuf),
    /// Not a backup, or a damaged one.
    #[error("{file} is not a usable Baton backup: {why}")]
    Bad {
        /// The file.
        file: PathBuf,
        /// What is wrong, and where.
        why: String,
    },
    /// Made by a newer Baton.
    #[error(
        "{file} was made by Baton {baton} (database schema {schema}); this Baton knows schema {known} at most: restore it with that Baton or a newer one"
    )]
    Newer {
        /// The file.
        file: PathBuf,
        /// Its Baton.
        baton: String,
        /// Its schema.
        schema: i64,
        /// The newest this one knows.
        known: i64,
    },
    /// Reading or writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The database said no.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

fn db(e: rusqlite::Error) -> BackupError {
    BackupError::Store(StoreError::Database(Box::new(e)))
}

/// Counts a table's rows.
fn count(conn: &rusqlite::Connection, table: &str) -> i64 {
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap_or(0)
}

/// Takes a backup of the data directory `dir` (its `baton.db`, its `token`
/// and the spools under `runs/` of runs not finished) into `out`.
pub fn take(dir: &Path, out: &Path, force: bool) -> Result<Manifest, BackupError> {
    if out.exists() && !force {
        return Err(BackupError::Exists(out.to_owned()));
    }
    let db_path = dir.join("baton.db");
    if !db_path.is_file() {
        return Err(BackupError::Bad { file: db_path, why: "no database here".into() });
    }
    let work = tempfile::Builder::new().prefix(".backup-").tempdir_in(dir).map_err(io("make a work directory"))?;
    let snapshot = work.path().join("baton.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(db)?;
    // One read transaction: a consistent copy, while writers go on.
    conn.execute("VACUUM INTO ?1", [snapshot.to_string_lossy()]).map_err(db)?;
    let schema: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
    let copy = rusqlite::Connection::open(&snapshot).map_err(db)?;
    let running: Vec<String> = copy
        .prepare("SELECT id FROM runs WHERE status IN ('claimed', 'running')")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    let manifest = Manifest {
        format: "baton-backup".into(),
        baton: env!("CARGO_PKG_VERSION").into(),
        schema,
        taken_at: baton_core::time::Timestamp::now().to_rfc3339(),
        tasks: count(&copy, "tasks"),
        events: count(&copy, "events"),
        documents: count(&copy, "documents"),
        spools: running.iter().filter(|id| dir.join("runs").join(id).is_dir()).cloned().collect(),
    };
    drop(copy);
    let partial = out.with_extension("partial");
    let file = File::create(&partial).map_err(io(format!("create {}", partial.display())))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let mut header = tar::Header::new_gnu();
    header.set_size(json.len() as u64);
    header.set_mode(0o600);
    header.set_cksum();
    tar.append_data(&mut header, "manifest.json", json.as_slice()).map_err(io("write the manifest"))?;
    tar.append_path_with_name(&snapshot, "baton.db").map_err(io("write the database"))?;
    // The admin token and the embedded launcher's id: the restored Baton is the
    // same Baton (its launcher takes up the runs of the spools below).
    for name in ["token", "launcher.id"] {
        if dir.join(name).is_file() {
            tar.append_path_with_name(dir.join(name), name).map_err(io(format!("write {name}")))?;
        }
    }
    for id in &manifest.spools {
        // A run that ended meanwhile may have had its spool removed: nothing to take up.
        match tar.append_dir_all(format!("runs/{id}"), dir.join("runs").join(id)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.map_err(io(format!("write the spool of {id}")))?,
        }
    }
    tar.into_inner().and_then(|gz| gz.finish()).and_then(|f| f.sync_all()).map_err(io("finish the backup"))?;
    std::fs::rename(&partial, out).map_err(io(format!("move the backup to {}", out.display())))?;
    set_private(out);
    Ok(manifest)
}

#[cfg(unix)]
fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// Reads a backup's manifest, checking it was made by a Baton whose schema
/// this one knows.
fn manifest_of(file: &Path, known: i64) -> Result<Manifest, BackupError> {
    let bad = |why: String| BackupError::Bad { file: file.to_owned(), why };
    let f = File::open(file).map_err(io(format!("open {}", file.display())))?;
    let mut archive = tar::Archive::new(GzDecoder::new(f));
    let entries = archive.entries().map_err(|e| bad(format!("not a tar.gz: {e}")))?;
    // The manifest is the archive's first entry.
    if let Some(entry) = entries.into_iter().next() {
        let mut entry = entry.map_err(|e| bad(format!("damaged: {e}")))?;
        if entry.path().ok().as_deref() == Some(Path::new("manifest.json")) {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(|e| bad(format!("its manifest cannot be read: {e}")))?;
            let m: Manifest =
                serde_json::from_str(&text).map_err(|e| bad(format!("its manifest does not parse: {e}")))?;
            if m.format != "baton-backup" {
                return Err(bad(format!("its manifest says format {:?}", m.format)));
            }
            if m.schema > known {
                return Err(BackupError::Newer { file: file.to_owned(), baton: m.baton, schema: m.schema, known });
            }
            return Ok(m);
        }
    }
    Err(bad("it has no manifest.json first".into()))
}

/// Unpacks a backup into `dir` (which must be empty or not exist), checks
/// the database's integrity, and leaves a note for the first start.
pub fn restore(file: &Path, dir: &Path, known: i64, spools_from: Option<&Path>) -> Result<Manifest, BackupError> {
    if dir.exists() && std::fs::read_dir(dir).map_err(io(format!("read {}", dir.display())))?.next().is_some() {
        return Err(BackupError::NotEmpty(dir.to_owned()));
    }
    let manifest = manifest_of(file, known)?;
    std::fs::create_dir_all(dir).map_err(io(format!("create {}", dir.display())))?;
    let f = File::open(file).map_err(io(format!("open {}", file.display())))?;
    let mut archive = tar::Archive::new(GzDecoder::new(f));
    archive.set_preserve_permissions(true);
    archive
        .unpack(dir)
        .map_err(|e| BackupError::Bad { file: file.to_owned(), why: format!("it does not unpack: {e}") })?;
    integrity(&dir.join("baton.db")).map_err(|why| BackupError::Bad { file: file.to_owned(), why })?;
    // On the same host, the spools as they are now: what the agents printed
    // after the backup is ingested at the first start.
    if let Some(old) = spools_from {
        for id in &manifest.spools {
            let (from, to) = (old.join("runs").join(id), dir.join("runs").join(id));
            for entry in std::fs::read_dir(&from).into_iter().flatten().flatten() {
                if entry.path().is_file() {
                    std::fs::copy(entry.path(), to.join(entry.file_name()))
                        .map_err(io(format!("copy the spool of {id}")))?;
                }
            }
        }
    }
    let note = serde_json::json!({ "restored_from": file, "taken_at": manifest.taken_at, "restored_at": baton_core::time::Timestamp::now().to_rfc3339() });
    let mut n = File::create(dir.join("restored.json")).map_err(io("write restored.json"))?;
    n.write_all(note.to_string().as_bytes()).map_err(io("write restored.json"))?;
    Ok(manifest)
}

/// Opens a copy of a backup's database and runs SQLite's integrity check;
/// the manifest, or what is wrong and where.
pub fn verify(file: &Path, known: i64) -> Result<Manifest, BackupError> {
    let manifest = manifest_of(file, known)?;
    let work = tempfile::tempdir().map_err(io("make a work directory"))?;
    let f = File::open(file).map_err(io(format!("open {}", file.display())))?;
    let mut archive = tar::Archive::new(GzDecoder::new(f));
    archive
        .unpack(work.path())
        .map_err(|e| BackupError::Bad { file: file.to_owned(), why: format!("it does not unpack: {e}") })?;
    integrity(&work.path().join("baton.db")).map_err(|why| BackupError::Bad { file: file.to_owned(), why })?;
    Ok(manifest)
}

/// SQLite's integrity check of `path`: `Ok` or its findings (which name the
/// tables, indexes and pages).
pub fn integrity(path: &Path) -> Result<(), String> {
    let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("the database does not open: {e}"))?;
    let found: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| format!("the database is not readable: {e}"))?;
    match found.as_slice() {
        [ok] if ok == "ok" => Ok(()),
        problems => Err(format!("the integrity check found: {}", problems.join("; "))),
    }
}
