//! The network of a sandboxed agent whose policy is not `full`: a network
//! namespace of its own with only a loopback, and two ways out that Baton keeps.
//!
//! - Baton's own URL: inside, `baton sandbox-net` listens on the coordinator's
//!   address (its port on loopback; its host name mapped to loopback in the
//!   sandbox's `/etc/hosts`), and passes each connection, byte for byte, through
//!   a Unix socket in the run's spool to the launcher, which connects it to the
//!   coordinator. TLS goes through untouched, so certificates still check.
//! - An allowlist: an HTTP `CONNECT` proxy the launcher serves on another Unix
//!   socket, reached inside as `HTTPS_PROXY`/`HTTP_PROXY`, which opens tunnels to
//!   listed `host:port` only (and to Baton), and answers 403 to the rest.
//!
//! With `none` there is no proxy: Baton's URL is the only way out.
//!
//! `baton sandbox-net` runs inside the sandbox, before the agent: it starts its
//! listeners, then the agent as its child, ignores the stop signals itself (the
//! agent's process group gets them, and the agent decides), and exits with the
//! agent's status. It is plain threads: a handful of connections per agent.

use std::io;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::sandbox::NetworkPolicy;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

/// The file name of the socket to Baton, in the run's spool.
pub(crate) const BATON_SOCKET: &str = "baton.sock";

/// The file name of the egress proxy's socket, in the run's spool.
pub(crate) const PROXY_SOCKET: &str = "proxy.sock";

/// The loopback port the proxy listens on inside a sandbox.
pub(crate) const PROXY_PORT: u16 = 3128;

/// `baton sandbox-net --forward ADDR=SOCKET… -- PROGRAM ARGS…`, inside a sandbox;
/// the exit code.
pub fn main(args: &[String]) -> i32 {
    let Some(split) = args.iter().position(|a| a == "--") else {
        eprintln!("baton sandbox-net: usage: --forward ADDR=SOCKET... -- PROGRAM ARGS...");
        return 2;
    };
    let (flags, command) = (&args[..split], &args[split + 1..]);
    let mut forwards = Vec::new();
    let mut it = flags.iter();
    while let Some(flag) = it.next() {
        match (flag.as_str(), it.next().and_then(|v| v.split_once('='))) {
            ("--forward", Some((addr, socket))) => forwards.push((addr.to_owned(), PathBuf::from(socket))),
            _ => {
                eprintln!("baton sandbox-net: unknown argument {flag}");
                return 2;
            }
        }
    }
    for (addr, socket) in forwards {
        let listener = match TcpListener::bind(&addr) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("baton sandbox-net: cannot listen on {addr}: {e}");
                return 1;
            }
        };
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let socket = socket.clone();
                std::thread::spawn(move || {
                    if let Ok(out) = UnixStream::connect(&socket) {
                        splice(conn, out);
                    }
                });
            }
        });
    }
    let Some((program, rest)) = command.split_first() else {
        eprintln!("baton sandbox-net: no program to run");
        return 2;
    };
    use nix::sys::signal::{SigHandler, Signal, signal};
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: setting a disposition to "ignore" has no handler to race with.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    // SAFETY: only signal(2), async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
                signal(sig, SigHandler::SigDfl).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    match cmd.status() {
        Ok(status) => status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        Err(e) => {
            eprintln!("baton sandbox-net: could not start {program}: {e}");
            127
        }
    }
}

/// Copies both ways between a TCP connection and a Unix one until both end.
fn splice(tcp: TcpStream, unix: UnixStream) {
    let (Ok(tcp2), Ok(unix2)) = (tcp.try_clone(), unix.try_clone()) else { return };
    let up = std::thread::spawn(move || {
        let (mut from, mut to) = (tcp2, unix2);
        let _ = io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
    let (mut from, mut to) = (unix, tcp);
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = up.join();
}

/// The coordinator's address as the launcher reaches it, and as agents name it.
#[derive(Debug, Clone)]
pub(crate) struct Coordinator {
    /// Its host (a name or an address).
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl Coordinator {
    /// From its URL.
    pub fn of(url: &str) -> Option<Self> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split('/').next()?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
            _ => (authority, if url.starts_with("https://") { 443 } else { 80 }),
        };
        Some(Self { host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port })
    }

    /// Whether its host is an IP address (else a name to map in `/etc/hosts`).
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }

    /// Where `baton sandbox-net` listens inside: the coordinator's port, on its
    /// loopback address when the URL names one, else on 127.0.0.1.
    pub fn inside(&self) -> String {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_loopback() && ip.is_ipv4() => format!("{ip}:{}", self.port),
            _ => format!("127.0.0.1:{}", self.port),
        }
    }

    /// `BATON_URL` inside: the same, but a non-loopback address becomes 127.0.0.1.
    pub fn url_inside(&self, url: &str) -> String {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) if !ip.is_loopback() => url.replacen(&self.host, "127.0.0.1", 1),
            _ => url.to_owned(),
        }
    }
}

/// The launcher's side of one sandboxed run's network: the sockets it serves,
/// which end when this is dropped.
pub(crate) struct Egress {
    /// The serving tasks.
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Egress {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Egress {
    /// Serves the run's sockets in `spool_dir`: the way to Baton, and (for an
    /// allowlist) the proxy.
    pub fn serve(spool_dir: &Path, coordinator: &Coordinator, policy: &NetworkPolicy) -> io::Result<Egress> {
        let mut tasks = Vec::new();
        let baton = bind(&spool_dir.join(BATON_SOCKET))?;
        let target = format!("{}:{}", coordinator.host, coordinator.port);
        tasks.push(tokio::spawn(async move {
            while let Ok((conn, _)) = baton.accept().await {
                let target = target.clone();
                tokio::spawn(async move {
                    if let Ok(out) = tokio::net::TcpStream::connect(&target).await {
                        let (mut a, mut b) = (conn, out);
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                });
            }
        }));
        if let NetworkPolicy::Allow(_) = policy {
            let proxy = bind(&spool_dir.join(PROXY_SOCKET))?;
            let policy = Arc::new(policy.clone());
            let coordinator = Arc::new(coordinator.clone());
            tasks.push(tokio::spawn(async move {
                while let Ok((conn, _)) = proxy.accept().await {
                    let (policy, coordinator) = (Arc::clone(&policy), Arc::clone(&coordinator));
                    tokio::spawn(async move { tunnel(conn, &policy, &coordinator).await });
                }
            }));
        }
        Ok(Egress { tasks })
    }
}

fn bind(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path)
}

/// One proxy connection: `CONNECT host:port`, allowed or refused.
async fn tunnel(conn: tokio::net::UnixStream, policy: &NetworkPolicy, coordinator: &Coordinator) {
    let mut reader = tokio::io::BufReader::new(conn);
    let mut first = String::new();
    if reader.read_line(&mut first).await.is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header).await {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut conn = reader.into_inner();
    let mut words = first.split_whitespace();
    let target = match (words.next(), words.next()) {
        (Some("CONNECT"), Some(target)) => target.to_owned(),
        _ => {
            let _ = conn
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\nonly CONNECT is proxied\r\n")
                .await;
            return;
        }
    };
    let Some((host, port)) = target.rsplit_once(':').and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
    else {
        let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
        return;
    };
    let baton = host.eq_ignore_ascii_case(&coordinator.host) && port == coordinator.port;
    if !baton && !policy.allows(&host, port) {
        tracing::info!(%host, port, "refused a sandboxed agent's connection outside its allowlist");
        let body = format!("{host}:{port} is not in this agent's network allowlist\n");
        let reply = format!("HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let _ = conn.write_all(reply.as_bytes()).await;
        return;
    }
    match tokio::net::TcpStream::connect((host.as_str(), port)).await {
        Ok(mut out) => {
            if conn.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_ok() {
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut out).await;
            }
        }
        Err(e) => {
            let reply = format!("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nX-Error: {e}\r\n\r\n");
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    }
}

/// The `/etc/hosts` of a sandbox whose coordinator has a host name: that name
/// on loopback, where `baton sandbox-net` listens.
pub(crate) fn hosts_file(coordinator: &Coordinator) -> String {
    let mut text = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
    if !coordinator.is_ip() && coordinator.host != "localhost" {
        text.push_str(&format!("127.0.0.1\t{}\n", coordinator.host));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coordinator_is_reached_at_its_own_port_inside() {
        let c = Coordinator::of("http://127.0.0.1:7077").unwrap();
        assert_eq!(
            (c.inside(), c.url_inside("http://127.0.0.1:7077")),
            ("127.0.0.1:7077".into(), "http://127.0.0.1:7077".into())
        );
        let c = Coordinator::of("https://coord.example:8443/").unwrap();
        assert_eq!((c.host.as_str(), c.port, c.is_ip()), ("coord.example", 8443, false));
        assert!(hosts_file(&c).contains("127.0.0.1\tcoord.example"));
        let c = Coordinator::of("http://10.0.0.5:7077").unwrap();
        assert_eq!(c.url_inside("http://10.0.0.5:7077"), "http://127.0.0.1:7077");
        assert_eq!(Coordinator::of("https://coord.example").unwrap().port, 443);
    }
}
