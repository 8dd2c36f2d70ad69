//! `sandbox = "container"`: an agent (and its setup and checks) in a Podman or
//! Docker container of its `image`, whichever runtime is installed (or the one
//! `container_runtime` names).
//!
//! The container sees the same places a bubblewrap sandbox makes writable,
//! bind-mounted at the same paths (worktree, cache, HOME; the spool and borrowed
//! objects read-only), with Baton's data directories hidden under an empty tmpfs
//! where a readable place holds them, runs as the launcher's user (so what it writes stays
//! theirs), and gets the agent's named environment and nothing else: the
//! runtime's own process gets the launcher's container settings (`CONTAINERS_*`,
//! `DOCKER_*`, `XDG_RUNTIME_DIR`) plus the agent's variables, and passes the
//! agent's on by name (`-e NAME`), so no value is ever on a command line.
//!
//! Stop is the container's own: `stop -t GRACE` (SIGTERM, then SIGKILL after the
//! grace period), then `rm -f` whatever is left; the supervisor does it (see
//! `supervisor`), so it holds after a launcher restart too. Network: `full` is the
//! host's network, `none` no network at all (an allowlist needs bubblewrap).
//! Output: with Podman the container writes straight to the supervisor's spool
//! files (`--log-driver=passthrough`); Docker relays it through its attach stream.

use std::path::{Path, PathBuf};

use baton_core::sandbox::ContainerRuntime;
use serde::{Deserialize, Serialize};

/// The container of a run: what the supervisor needs to stop and remove it,
/// and what runs in it (kept in the run's spec, so a restarted launcher has it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The runtime's program (`/usr/bin/podman`).
    pub runtime: PathBuf,
    /// The agent's container's name (`baton-<run>`).
    pub name: String,
    /// The image.
    pub image: String,
    /// Directories mounted writable, at the same paths.
    pub writable: Vec<PathBuf>,
    /// Directories mounted read-only.
    pub readable: Vec<PathBuf>,
    /// Directories hidden (Baton's data directories, where a readable place
    /// holds them), each behind its skeleton: a directory holding only the
    /// mount points of the places inside it, mounted read-only over it (the
    /// runtimes do not mount a tmpfs in order with the binds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<(PathBuf, PathBuf)>,
    /// The working directory.
    pub cwd: PathBuf,
    /// Whether it has no network at all (else the host's).
    pub offline: bool,
    /// The runtime process's own environment (the launcher's container settings).
    pub runtime_env: Vec<(String, String)>,
    /// The agent's program, arguments and the names of its variables (for a
    /// warm container, which is not started with them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<InContainer>,
    /// The warm container the run was handed, when it was (see `warm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<crate::warm::Slot>,
}

/// What runs in a container: the agent's program, its arguments, and the names
/// of its variables (their values are in the spec's environment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InContainer {
    pub program: String,
    pub args: Vec<String>,
    pub vars: Vec<String>,
}

/// Why a container cannot be made.
pub(crate) fn runtime(wanted: Option<ContainerRuntime>, path: Option<&str>) -> Result<PathBuf, String> {
    let candidates: Vec<ContainerRuntime> = match wanted {
        Some(r) => vec![r],
        None => vec![ContainerRuntime::Podman, ContainerRuntime::Docker],
    };
    for c in &candidates {
        if let Some(p) = baton_agents::executor::find_program(c.program(), path, Path::new("/")) {
            return Ok(p);
        }
    }
    let names: Vec<&str> = candidates.iter().map(|c| c.program()).collect();
    Err(format!(
        "sandbox = \"container\" needs {}, which is not installed on this launcher (apt-get install podman)",
        names.join(" or ")
    ))
}

/// Whether the runtime has `image` (never pulled: a run does not download).
pub(crate) async fn check_image(runtime: &Path, image: &str, env: &[(String, String)]) -> Result<(), String> {
    match image_id(runtime, image, env).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!(
            "container image {image} does not exist on this launcher; build or pull it first ({} pull {image})",
            runtime.display()
        )),
        Err(e) => Err(format!("could not run {}: {e}", runtime.display())),
    }
}

/// The id of the image `image` names now (none: there is no such image).
pub(crate) async fn image_id(runtime: &Path, image: &str, env: &[(String, String)]) -> std::io::Result<Option<String>> {
    let mut cmd = tokio::process::Command::new(runtime);
    cmd.args(["image", "inspect", "--format", "{{.Id}}", image])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = cmd.output().await?;
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Ok((out.status.success() && !id.is_empty()).then_some(id))
}

/// Makes, under `dir`, a skeleton of each hidden directory: its places'
/// mount points and nothing else. Each hidden directory and its skeleton.
pub(crate) fn skeletons(
    dir: &Path,
    hidden: &[PathBuf],
    places: &[&PathBuf],
) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    for (i, h) in hidden.iter().filter(|h| h.is_dir()).enumerate() {
        let skeleton = dir.join(format!("hidden-{i}"));
        std::fs::create_dir_all(&skeleton)?;
        for p in places {
            let Ok(inside) = p.strip_prefix(h) else { continue };
            if inside.as_os_str().is_empty() {
                continue;
            }
            let point = skeleton.join(inside);
            if p.is_dir() {
                std::fs::create_dir_all(&point)?;
            } else {
                if let Some(parent) = point.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&point, b"")?;
            }
        }
        out.push((h.clone(), skeleton));
    }
    Ok(out)
}

/// The runtime process's own environment: the launcher's container settings.
pub(crate) fn runtime_env(host: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    host.iter()
        .filter(|(k, _)| {
            k.starts_with("CONTAINERS_")
                || k.starts_with("DOCKER_")
                || k.starts_with("XDG_")
                || matches!(k.as_str(), "PATH" | "HOME" | "USER" | "TMPDIR")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Container {
    /// `run` arguments for a container named `name` running `program args`,
    /// with the agent's variables (`vars`, passed by name).
    pub fn run_args(&self, name: &str, vars: &[String], program: &str, args: &[String], stdin: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--rm".into(), "--name".into(), name.into(), "--pull=never".into()];
        if self.runtime.file_name().is_some_and(|n| n == "podman") {
            // The container's stdout and stderr are the runtime's own (the spool's
            // files): nothing relayed through an attach socket, so nothing lost
            // when a container exits at once.
            a.push("--log-driver=passthrough".into());
        }
        if stdin {
            a.push("-i".into());
        }
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        a.extend(["--user".into(), format!("{uid}:{gid}")]);
        a.extend(["--network".into(), if self.offline { "none" } else { "host" }.into()]);
        // The runtime mounts parents first, whatever the order here.
        for (dir, skeleton) in &self.hidden {
            a.extend(["-v".into(), format!("{}:{}:ro", skeleton.display(), dir.display())]);
        }
        for dir in &self.writable {
            a.extend(["-v".into(), format!("{0}:{0}", dir.display())]);
        }
        for dir in &self.readable {
            a.extend(["-v".into(), format!("{0}:{0}:ro", dir.display())]);
        }
        a.extend(["-w".into(), self.cwd.display().to_string()]);
        for v in vars {
            a.extend(["-e".into(), v.clone()]);
        }
        a.push(self.image.clone());
        a.push(program.into());
        a.extend(args.iter().cloned());
        a
    }
}

/// Asks a runtime to stop a container (SIGTERM, SIGKILL after `grace_s`),
/// without waiting; for the supervisor, which reaps it.
pub fn stop(
    runtime: &Path,
    name: &str,
    grace_s: u64,
    env: &[(String, String)],
) -> std::io::Result<std::process::Child> {
    std::process::Command::new(runtime)
        .args(["stop", "-t", &grace_s.to_string(), name])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

/// Removes a container whatever its state, and waits for that.
pub fn remove(runtime: &Path, name: &str, env: &[(String, String)]) {
    let _ = std::process::Command::new(runtime)
        .args(["rm", "-f", "-t", "0", name])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::Container;
    use std::path::PathBuf;

    fn container(runtime: &str) -> Container {
        Container {
            runtime: PathBuf::from(runtime),
            name: "baton-r-1".into(),
            image: "img".into(),
            writable: vec![PathBuf::from("/w")],
            readable: vec![],
            hidden: vec![],
            cwd: PathBuf::from("/w"),
            offline: true,
            runtime_env: vec![],
            agent: None,
            warm: None,
        }
    }

    #[test]
    fn podman_hands_the_container_the_spool_files_and_docker_relays() {
        let podman = container("/usr/bin/podman").run_args("baton-r-1", &["BATON_URL".into()], "sh", &[], true);
        assert!(podman.contains(&"--log-driver=passthrough".to_owned()), "{podman:?}");
        assert!(podman.contains(&"-i".to_owned()) && podman.ends_with(&["img".to_owned(), "sh".to_owned()]));
        let docker = container("/usr/bin/docker").run_args("baton-r-1", &[], "sh", &[], false);
        assert!(!docker.iter().any(|a| a.starts_with("--log-driver")), "{docker:?}");
    }
}
