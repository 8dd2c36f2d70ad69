//! Worksets: one task changes two repositories (an API and its client), one
//! merge lands both or neither — checks failing on the merged result, a base
//! moved between preparing and landing, the coordinator killed between the two
//! swaps.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{Baton, git_repo, sh};

/// Two projects, `api` and `web` (with `web_checks`), and the workset `full` of both.
async fn two_repositories(b: &Baton, web_checks: &[&str]) -> (PathBuf, PathBuf) {
    let api = git_repo(&b.dir.path().join("api"));
    let web = git_repo(&b.dir.path().join("web"));
    let _: Value = b.client.post("/api/projects", &json!({ "path": api, "name": "api" })).await.unwrap();
    let settings = json!({ "checks": web_checks });
    let _: Value =
        b.client.post("/api/projects", &json!({ "path": web, "name": "web", "settings": settings })).await.unwrap();
    let out = b.cli(&["workset", "add", "full", "api", "web"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (api, web)
}

/// A task on the workset whose agent changes the API in `api/` and its client
/// in `web/`, run to success.
async fn change_both(b: &Baton) -> String {
    let script = "test -d api/.git && test -d web/.git && echo 'pub fn v2() {}' > api/lib.rs && echo 'calls v2' > web/client.txt && echo changed both";
    b.agent("both", script).await;
    let id = b
        .task(json!({ "workset": "full", "project": "api", "prompt": "Rename the call to v2", "agent": "both" }))
        .await;
    let t = b.wait_for(&id, "the end", |t| t.task.status.is_finished()).await;
    if t.task.status != TaskStatus::Succeeded {
        let events = b.events(&id).await;
        panic!("{:?}\n{}", t.task, crate::real_agents::dump(&events));
    }
    assert_eq!(t.task.workset.as_ref().map(|w| w.parts.len()), Some(2));
    id
}

fn main_has(repo: &Path, file: &str) -> bool {
    sh(repo, &format!("git cat-file -e main:{file} 2>/dev/null && echo yes || echo no")).trim() == "yes"
}

fn head(repo: &Path, branch: &str) -> String {
    sh(repo, &format!("git rev-parse {branch}")).trim().to_owned()
}

async fn merge(b: &Baton, id: &str) -> (u16, Value) {
    b.post(&format!("/api/tasks/{id}/merge"), json!({})).await
}

async fn wait_file(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One task, one merge: each repository's `main` gets its half; the diff shows
/// both under their names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_merge_lands_the_change_in_both_repositories() {
    let b = Baton::start();
    let (api, web) = two_repositories(&b, &["test -f client.txt"]).await;
    let listed = b.cli(&["workset", "list", "--json"]);
    let sets: Vec<Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(sets[0]["names"], json!(["api", "web"]), "{sets:?}");
    let id = change_both(&b).await;
    let t = b.get(&id).await;
    assert!(
        t.task.check_results.iter().any(|c| c.command == "web: test -f client.txt" && c.passed),
        "{:?}",
        t.task.check_results
    );

    let diff = b.cli(&["diff", &id]);
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains("api/lib.rs") && text.contains("web/client.txt"), "{text}");

    let (status, body) = merge(&b, &id).await;
    assert_eq!(status, 200, "{body}");
    assert!(main_has(&api, "lib.rs") && main_has(&web, "client.txt"), "each main has its half");
    let t = b.get(&id).await;
    let parts = &t.task.workset.as_ref().unwrap().parts;
    assert_eq!(parts[0].merged_commit.as_deref(), Some(head(&api, "main").as_str()));
    assert_eq!(parts[1].merged_commit.as_deref(), Some(head(&web, "main").as_str()));
}

/// A check of `web` fails on the merged result: neither lands, both branches
/// are kept, and the error names `web`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_in_one_repository_lands_nothing() {
    let b = Baton::start();
    let (api, web) = two_repositories(&b, &["test ! -f forbidden"]).await;
    let id = change_both(&b).await;
    // Meanwhile `web`'s main gets what its check forbids.
    sh(&web, "echo no > forbidden && git add forbidden && git commit -qm forbidden");
    let (api_main, web_main) = (head(&api, "main"), head(&web, "main"));
    let (status, body) = merge(&b, &id).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("web") && message.contains("nothing landed"), "{message}");
    assert_eq!((head(&api, "main"), head(&web, "main")), (api_main, web_main), "neither base moved");
    let branch = b.get(&id).await.task.git.branch.unwrap();
    assert!(!head(&api, &branch).is_empty() && !head(&web, &branch).is_empty(), "both branches are kept");
}

/// Another change lands on `api` between the prepared merge and the swap: the
/// swap is refused, nothing lands; merging again lands both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_moved_between_prepare_and_swap_lands_nothing_and_a_retry_lands_both() {
    let pause = tempfile::tempdir().unwrap();
    let knob = pause.path().display().to_string();
    let b = Baton::start_custom(&[], &[("BATON_TEST_LANDING_PAUSE", &knob)], &[], |_| {});
    let (api, web) = two_repositories(&b, &[]).await;
    for stage in ["swapped-1", "swapped-2"] {
        std::fs::write(pause.path().join(format!("{stage}.go")), b"").unwrap();
    }
    let id = change_both(&b).await;
    let web_main = head(&web, "main");
    let merging = {
        let (client, id) = (b.client.clone(), id.clone());
        tokio::spawn(async move { client.post::<Value, _>(&format!("/api/tasks/{id}/merge"), &json!({})).await })
    };
    wait_file(&pause.path().join("prepared")).await;
    sh(&api, "echo other > other.txt && git add other.txt && git commit -qm 'another task landed'");
    let api_main = head(&api, "main");
    std::fs::write(pause.path().join("prepared.go"), b"").unwrap();
    let err = merging.await.unwrap().expect_err("the swap is refused");
    assert!(err.to_string().contains("nothing landed"), "{err}");
    assert_eq!((head(&api, "main"), head(&web, "main")), (api_main, web_main), "nothing landed");
    let (status, body) = merge(&b, &id).await;
    assert_eq!(status, 200, "{body}");
    assert!(main_has(&api, "lib.rs") && main_has(&api, "other.txt") && main_has(&web, "client.txt"));
}

/// `kill -9` of the coordinator after `api`'s base moved and before `web`'s:
/// the restarted coordinator finishes the landing from its journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_between_the_swaps_finishes_the_landing_on_restart() {
    let pause = tempfile::tempdir().unwrap();
    let knob = pause.path().display().to_string();
    let mut b = Baton::start_custom(&[], &[("BATON_TEST_LANDING_PAUSE", &knob)], &[], |_| {});
    let (api, web) = two_repositories(&b, &[]).await;
    std::fs::write(pause.path().join("prepared.go"), b"").unwrap();
    let id = change_both(&b).await;
    let web_main = head(&web, "main");
    let merging = {
        let (client, id) = (b.client.clone(), id.clone());
        tokio::spawn(async move { client.post::<Value, _>(&format!("/api/tasks/{id}/merge"), &json!({})).await })
    };
    wait_file(&pause.path().join("swapped-1")).await;
    assert!(main_has(&api, "lib.rs") && head(&web, "main") == web_main, "half-way: api moved, web not yet");
    b.kill9();
    let _ = merging.await;
    for stage in ["swapped-1", "swapped-2"] {
        std::fs::write(pause.path().join(format!("{stage}.go")), b"").unwrap();
    }
    b.restart();
    let t = b
        .wait_for(&id, "merged after the restart", |t| t.task.git.merge == baton_core::model::MergeState::Merged)
        .await;
    assert!(main_has(&api, "lib.rs") && main_has(&web, "client.txt"), "both landed");
    assert!(t.task.workset.unwrap().parts.iter().all(|p| p.merged_commit.is_some()));
}

/// A conflict in `web`: nothing lands, the agent is resumed with `web` named
/// and merges web's main there; the merge then lands both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_in_one_repository_resumes_the_agent_with_it_named() {
    let b = Baton::start();
    let (api, web) = two_repositories(&b, &[]).await;
    let script = r#"set -e
case "$BATON_PROMPT" in
  *"git -C web merge "*)
    c=$(printf '%s' "$BATON_PROMPT" | sed -n 's/.*git -C web merge \([0-9a-f]*\).*/\1/p' | head -1)
    git -C web -c user.email=a@b -c user.name=a merge -q "$c" || {
      echo 'calls v2, and keeps theirs' > web/client.txt
      git -C web add client.txt
      git -C web -c user.email=a@b -c user.name=a commit -qm 'Merge web main'
    }
    echo resolved ;;
  *) echo 'pub fn v2() {}' > api/lib.rs && echo 'calls v2' > web/client.txt && echo changed both ;;
esac"#;
    b.agent("both", script).await;
    let body = json!({ "workset": "full", "project": "api", "prompt": "Rename the call to v2", "agent": "both", "on_conflict": "resume" });
    let id = b.task(body).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    sh(&web, "echo 'calls v1' > client.txt && git add client.txt && git commit -qm 'their client'");
    let (status, body) = merge(&b, &id).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "merge_conflict", "{body}");
    assert_eq!(
        (body["error"]["details"]["repository"].as_str(), body["error"]["details"]["resumed"].as_bool()),
        (Some("web"), Some(true)),
        "{body}"
    );
    assert!(!main_has(&api, "lib.rs"), "nothing landed in api");
    let t = b
        .wait_for(&id, "merged after the agent resolved it", |t| {
            t.task.git.merge == baton_core::model::MergeState::Merged
        })
        .await;
    let resumed = t.runs.iter().find(|r| r.kind == baton_core::model::RunKind::Resume).expect("a resume");
    assert!(resumed.message.contains("`web/`") && resumed.message.contains("git -C web merge"), "{}", resumed.message);
    assert!(main_has(&api, "lib.rs"));
    assert_eq!(sh(&web, "git show main:client.txt").trim(), "calls v2, and keeps theirs");
}

/// `baton pr` of a workset task: one pull request per repository, on each
/// project's own forge, each linking the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_pr_opens_one_pull_request_per_repository_each_linking_the_other() {
    const TOKEN: &str = "ghp_faketokenforworksets";
    let b = Baton::start_custom(&[], &[("GITHUB_TOKEN", TOKEN)], &[], |_| {});
    let mut fakes = Vec::new();
    for name in ["api", "web"] {
        let repo = git_repo(&b.dir.path().join(name));
        let bare = tempfile::tempdir().unwrap();
        sh(bare.path(), "git init -q --bare -b main");
        sh(&repo, &format!("git remote add origin {} && git push -q origin main", bare.path().display()));
        let fake = baton_testkit::forge::FakeForge::with_bare(&format!("acme/{name}"), TOKEN, bare.path()).await;
        let forge = json!({ "kind": "github", "repo": format!("acme/{name}"), "api_url": fake.url, "poll_s": 0 });
        let body = json!({ "path": repo, "name": name, "settings": { "forge": forge } });
        let _: Value = b.client.post("/api/projects", &body).await.unwrap();
        fakes.push((fake, bare));
    }
    assert!(b.cli(&["workset", "add", "full", "api", "web"]).status.success());
    let id = change_both(&b).await;
    let out = b.cli(&["pr", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = b.get(&id).await;
    let urls: Vec<String> =
        t.task.workset.unwrap().parts.iter().map(|p| p.pr.clone().expect("a pull request each")).collect();
    for (i, (fake, _)) in fakes.iter().enumerate() {
        let pulls = fake.pulls();
        assert_eq!(pulls.len(), 1, "one pull request in {i}");
        assert!(pulls[0]["body"].as_str().unwrap().contains("Workset"), "{}", pulls[0]["body"]);
        let comments = fake.comments(pulls[0]["number"].as_u64().unwrap());
        let other = &urls[1 - i];
        assert!(comments.iter().any(|c| c["body"].as_str().unwrap_or("").contains(other.as_str())), "{comments:?}");
    }
}

/// A plan mixes a single-project task and a workset task after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_mixes_workset_and_single_project_tasks() {
    let b = Baton::start();
    let (api, web) = two_repositories(&b, &[]).await;
    b.agent("solo", "echo 'pub fn v1() {}' > lib.rs && echo wrote").await;
    b.agent("both", "test -f api/lib.rs && echo 'calls v1' > web/client.txt && echo wrote").await;
    let plan = json!({ "project": "api", "tasks": [
        { "name": "lib", "prompt": "Add v1", "agent": "solo" },
        { "name": "client", "prompt": "Call v1", "agent": "both", "workset": "full", "depends_on": ["lib"] },
    ] });
    let (status, made) = b.post("/api/plans", plan).await;
    assert_eq!(status, 201, "{made}");
    let (lib, client) =
        (made["plan"]["tasks"]["lib"].as_str().unwrap(), made["plan"]["tasks"]["client"].as_str().unwrap());
    let t = b.wait_status(client, TaskStatus::Succeeded).await;
    assert_eq!(t.task.workset.map(|w| w.parts.len()), Some(2));
    assert!(b.get(lib).await.task.workset.is_none());
    let (status, body) = merge(&b, client).await;
    assert_eq!(status, 200, "{body}");
    assert!(main_has(&api, "lib.rs") && main_has(&web, "client.txt"), "the prerequisite and the workset landed");
}

/// A launcher on another host (namespaces, sharing nothing but a URL and a
/// token) runs a workset task from a mirror of each repository; the merge
/// lands both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launcher_on_another_host_runs_a_workset_task_from_mirrors() {
    let b = Baton::start_with(&["--no-launcher"]);
    let (api, web) = two_repositories(&b, &["test -f client.txt"]).await;
    let token = b.launcher_token("far").await;
    let host = crate::fleet::Host::start_hiding(&b, "far", &b.url, &token, &[], &[&api, &web]);
    let me = host.launcher(&b).await;
    let script = format!(
        "test ! -e {}/README.md && test -f api/README.md && test -f web/README.md && echo 'pub fn v2() {{}}' > api/lib.rs && echo 'calls v2' > web/client.txt && echo 'from mirrors'",
        api.display()
    );
    b.agent("both", &script).await;
    let id = b.task(json!({ "workset": "full", "project": "api", "prompt": "Rename", "agent": "both" })).await;
    let t = b.wait_within(Duration::from_secs(60), &id, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs[0].launcher_id.as_ref(), Some(&me.id));
    assert!(t.task.git.worktree.as_deref().unwrap().starts_with(&host.dir.display().to_string()));
    let (status, body) = merge(&b, &id).await;
    assert_eq!(status, 200, "{body}");
    assert!(main_has(&api, "lib.rs") && main_has(&web, "client.txt"));
}

/// Bad input: an unknown project, a project twice, names that collide, a
/// project whose agents work in its checkout; nothing is made.
#[tokio::test]
async fn bad_worksets_are_refused_and_nothing_is_made() {
    let b = Baton::start();
    let api = git_repo(&b.dir.path().join("api"));
    let _: Value = b.client.post("/api/projects", &json!({ "path": api, "name": "api" })).await.unwrap();
    let api2 = git_repo(&b.dir.path().join("api2"));
    let _: Value = b.client.post("/api/projects", &json!({ "path": api2, "name": "API" })).await.unwrap();
    let flat = git_repo(&b.dir.path().join("flat"));
    let settings = json!({ "worktrees": false });
    let _: Value =
        b.client.post("/api/projects", &json!({ "path": flat, "name": "flat", "settings": settings })).await.unwrap();
    for (projects, status, code, says) in [
        (json!(["api", "nope"]), 404, "not_found", "nope"),
        (json!(["api", "api"]), 422, "invalid_combination", "twice"),
        (json!(["api", "API"]), 422, "invalid_combination", "rename"),
        (json!(["api", "flat"]), 422, "invalid_combination", "worktrees = false"),
        (json!(["api"]), 422, "invalid_combination", "2 to 16"),
    ] {
        let (got, body) = b.post("/api/worksets", json!({ "name": "set", "projects": projects })).await;
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(code)), "{projects}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{body}");
    }
    let sets: Vec<Value> = b.client.get("/api/worksets").await.unwrap();
    assert!(sets.is_empty());
    let (got, body) = b.post("/api/tasks", json!({ "workset": "nope", "project": "api", "prompt": "x" })).await;
    assert_eq!(got, 404, "{body}");
    // An agent that works in one project only takes no task on a workset.
    let web = git_repo(&b.dir.path().join("web"));
    let _: Value = b.client.post("/api/projects", &json!({ "path": web, "name": "web" })).await.unwrap();
    let (got, _) = b.post("/api/worksets", json!({ "name": "pair", "projects": ["api", "web"] })).await;
    assert_eq!(got, 201);
    b.agent_def(json!({ "name": "api-only", "executor": "command", "command": ["true"], "projects": ["api"] })).await;
    let (got, body) =
        b.post("/api/tasks", json!({ "workset": "pair", "project": "api", "prompt": "x", "agent": "api-only" })).await;
    assert_eq!((got, body["error"]["code"].as_str()), (422, Some("invalid_combination")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("works only in api"), "{body}");
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert!(tasks.is_empty());
}
