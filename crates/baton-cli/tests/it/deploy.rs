//! The deployment files under `deploy/`: they parse, and every flag they give
//! `baton` is one the binary has.

use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use crate::harness::BATON;

fn deploy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The `--flags` of a `baton SUBCOMMAND …` command line, with the subcommand.
fn baton_flags(line: &str) -> Option<(String, Vec<String>)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| w.ends_with("/baton") || *w == "baton")?;
    let sub = words.get(at + 1)?.to_string();
    let flags = words[at + 2..].iter().filter(|w| w.starts_with("--")).map(|w| w.split('=').next().unwrap().to_owned());
    Some((sub, flags.collect()))
}

/// Checks every flag against `baton SUBCOMMAND --help`.
fn check(sub: &str, flags: &[String], from: &str) {
    let help = Command::new(BATON).args([sub, "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(!flags.is_empty(), "{from}: no flags found");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "{from}: `baton {sub}` has no {flag}"
        );
    }
}

/// Every string of a YAML document that runs `baton`.
fn commands(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(args)) = map.get("args") {
                let mut line: Vec<String> = match map.get("command") {
                    Some(Value::Array(c)) if c.iter().any(|x| x == "sh") => Vec::new(),
                    Some(Value::Array(c)) => c.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
                    _ => vec!["baton".to_owned()],
                };
                line.extend(args.iter().filter_map(|x| x.as_str().map(str::to_owned)));
                out.push(line.join(" "));
            }
            map.values().for_each(|x| commands(x, out));
        }
        Value::Array(items) => items.iter().for_each(|x| commands(x, out)),
        _ => {}
    }
}

#[test]
fn the_kubernetes_manifests_parse_and_name_real_flags() {
    let mut checked = 0;
    for entry in std::fs::read_dir(deploy().join("kubernetes")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            assert!(v["apiVersion"].is_string() && v["kind"].is_string(), "{}: {v}", entry.path().display());
            let mut lines = Vec::new();
            commands(&v, &mut lines);
            for line in lines {
                if let Some((sub, flags)) = baton_flags(&line) {
                    check(&sub, &flags, &entry.path().display().to_string());
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0, "no baton command found in the manifests");
}

#[test]
fn the_systemd_units_name_real_flags() {
    let mut checked = 0;
    for entry in std::fs::read_dir(deploy().join("systemd")).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        assert!(text.contains("KillMode=process"), "{}: agents must outlive a restart", entry.path().display());
        for line in text.lines().filter_map(|l| l.strip_prefix("ExecStart=")) {
            let (sub, flags) = baton_flags(line).expect("ExecStart runs baton");
            check(&sub, &flags, &entry.path().display().to_string());
            checked += 1;
        }
    }
    assert_eq!(checked, 2);
}

#[test]
fn the_queue_depth_metric_an_autoscaler_follows_exists() {
    let b = crate::harness::Baton::start_with(&["--no-launcher"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let text = rt.block_on(async { reqwest::get(format!("{}/metrics", b.url)).await.unwrap().text().await.unwrap() });
    assert!(text.contains("\nbaton_runs_queued "), "{text}");
    let scaler = std::fs::read_to_string(deploy().join("kubernetes/autoscaling.yaml")).unwrap();
    assert!(scaler.contains("baton_runs_queued"));
}
