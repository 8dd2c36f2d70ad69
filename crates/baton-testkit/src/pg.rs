//! PostgreSQL for tests: throwaway databases on the server `scripts/test`
//! starts (`BATON_TEST_PG`), and private clusters a test may stop and start
//! (an outage), made with `scripts/pg-cluster`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The URL of the test server (`postgres://USER:PASSWORD@HOST:PORT/postgres`),
/// when one was given.
pub fn server() -> Option<String> {
    std::env::var("BATON_TEST_PG").ok().filter(|u| !u.is_empty())
}

/// Whether the suite runs on PostgreSQL (`BATON_TEST_STORE=postgres`).
pub fn wanted() -> bool {
    std::env::var("BATON_TEST_STORE").as_deref() == Ok("postgres")
}

/// A database of its own on a server, dropped (with its connections) at the end.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    admin: String,
    name: String,
}

impl TestDatabase {
    /// A fresh database on the test server; panics without one.
    pub fn create() -> Self {
        let admin = server().expect("BATON_TEST_PG names no PostgreSQL server (scripts/test starts one)");
        Self::create_on(&admin)
    }

    /// A fresh database on the server at `admin`.
    pub fn create_on(admin: &str) -> Self {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("random");
        let name = format!("t_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let admin_url = admin.to_owned();
        let sql = format!("CREATE DATABASE {name}");
        // The client runs a runtime of its own: never inside the caller's.
        std::thread::spawn(move || {
            let mut client =
                postgres::Client::connect(&admin_url, postgres::NoTls).expect("the test PostgreSQL server");
            client.batch_execute(&sql).expect("create a test database");
        })
        .join()
        .expect("create a test database");
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Self { url: format!("{base}/{name}"), admin: admin.to_owned(), name }
    }

    /// Runs SQL in this database.
    pub fn execute(&self, sql: &str) {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            client.batch_execute(&sql).expect("run SQL");
        })
        .join()
        .expect("run SQL");
    }
}

impl TestDatabase {
    /// The first column of a query's rows, as integers.
    pub fn integers(&self, sql: &str) -> Vec<i64> {
        let (url, sql) = (self.url.clone(), sql.to_owned());
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("connect");
            client.query(&sql, &[]).expect("query").iter().map(|r| r.get::<_, i64>(0)).collect()
        })
        .join()
        .expect("query")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// A private PostgreSQL cluster (its own server process), removed at the end.
pub struct Cluster {
    dir: PathBuf,
    /// The superuser's URL.
    pub url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster")
}

fn run(args: &[&str]) -> String {
    let out = Command::new(script()).args(args).output().expect("run scripts/pg-cluster");
    assert!(out.status.success(), "pg-cluster {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Cluster {
    /// Creates and starts a cluster (about a second).
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("baton-pg.").tempdir().expect("a temporary directory").keep();
        let url = run(&["start", dir.to_str().unwrap()]);
        Self { dir, url }
    }

    /// Stops the server (connections are cut; the data stays).
    pub fn pause(&self) {
        run(&["pause", self.dir.to_str().unwrap()]);
    }

    /// Starts the server again on the same port.
    pub fn resume(&self) {
        run(&["resume", self.dir.to_str().unwrap()]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).args(["stop", self.dir.to_str().unwrap()]).output();
    }
}
