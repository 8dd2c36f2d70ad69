//! Pull requests: a task's branch pushed to a real bare repository (the remote)
//! and proposed on the testkit's fake GitHub; its CI and its merge followed
//! through signed webhooks and polls.

use std::path::Path;
use std::time::Duration;

use baton_core::api::TaskDetail;
use baton_core::model::{MergeState, PrState};
use baton_core::status::TaskStatus;
use baton_testkit::forge::{FakeForge, send_webhook};
use serde_json::json;

use crate::harness::{Baton, sh};

const TOKEN: &str = "ghp_faketokenforbatontests";
const SECRET: &str = "it's a secret to everybody";
const REPO: &str = "acme/widgets";

/// A coordinator whose project has a forge (the fake) and a remote (a bare
/// repository); `top` goes before the `[forge]` table, `forge` inside it.
struct Forged {
    b: Baton,
    fake: FakeForge,
    bare: tempfile::TempDir,
}

async fn forged(top: &str, forge: &str, env: &[(&str, &str)]) -> Forged {
    let bare = tempfile::tempdir().unwrap();
    sh(bare.path(), "git init -q --bare -b main");
    let fake = FakeForge::with_bare(REPO, TOKEN, bare.path()).await;
    let config = format!(
        "{top}\n[forge]\nkind = \"github\"\nrepo = \"{REPO}\"\napi_url = \"{}\"\nwebhook_secret_env = \"GH_HOOK_SECRET\"\n{forge}\n",
        fake.url
    );
    let remote = bare.path().display().to_string();
    let b = Baton::start_custom(&[], env, &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
        sh(repo, &format!("git remote add origin {remote} && git push -q origin main"));
    });
    Forged { b, fake, bare }
}

const ENV: &[(&str, &str)] = &[("GITHUB_TOKEN", TOKEN), ("GH_HOOK_SECRET", SECRET)];

/// Writes a feature; resumed with a CI log that says `TypeError: boom`, fixes it.
const FEATURE: &str = r#"if [ "$BATON_RESUME" = 1 ]; then case "$BATON_PROMPT" in *"TypeError: boom"*) echo fixed > fix.txt;; esac; else echo feature > feature.txt; env > seen-env.txt; fi; git add -A && git commit -qm "work"; echo '{"type":"result","text":"Added the feature."}'"#;

async fn succeeded(b: &Baton, agent: &str) -> TaskDetail {
    let id = b.task(json!({ "prompt": "add the feature", "title": "Add the feature", "agent": agent })).await;
    let t = b.wait_for(&id, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    t
}

fn bare_head(bare: &Path, branch: &str) -> String {
    sh(bare, &format!("git rev-parse refs/heads/{branch}")).trim().to_owned()
}

fn hook_url(b: &Baton) -> String {
    format!("{}/api/forge/github", b.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_pr_pushes_the_branch_and_opens_a_pull_request() {
    let f = forged("", "poll_s = 0", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    let out = f.b.cli(&["pr", &id]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("opened pull request #1 for"), "{stdout}");
    let branch = t.task.git.branch.clone().unwrap();
    assert_eq!(bare_head(f.bare.path(), &branch), t.task.git.head.clone().unwrap(), "pushed to the remote");
    let pulls = f.fake.pulls();
    assert_eq!(pulls.len(), 1);
    let pr = &pulls[0];
    assert_eq!((pr["head"]["ref"].as_str(), pr["base"]["ref"].as_str()), (Some(branch.as_str()), Some("main")));
    assert_eq!(pr["title"], "Add the feature");
    let body = pr["body"].as_str().unwrap();
    assert!(body.starts_with("Added the feature."), "{body}");
    assert!(body.contains("**Cost**") && body.contains(&format!("/#/tasks/{id}")), "{body}");
    let created = f.fake.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(created.header("authorization"), format!("Bearer {TOKEN}"));
    let t = f.b.get(&id).await;
    let recorded = t.task.pr.unwrap();
    assert_eq!((recorded.number, recorded.state), (1, PrState::Open));
    assert_eq!(recorded.url, pr["html_url"].as_str().unwrap());
    let env = sh(f.bare.path(), &format!("git show {branch}:seen-env.txt"));
    assert!(!env.contains(TOKEN) && !env.contains(SECRET), "the forge's secrets never reach the agent");
    let again = f.b.cli(&["pr", &id]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has pull request #1"));
    assert_eq!(f.fake.pulls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_check_run_goes_back_to_the_agent_and_its_fix_is_pushed_to_the_same_pull_request() {
    let f = forged("", "poll_s = 0", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    assert!(f.b.cli(&["pr", &id]).status.success());
    let head = t.task.git.head.clone().unwrap();
    let check =
        f.fake.add_check_run(&head, "ci / test", Some("failure"), "running tests\nTypeError: boom\n  at widget.js:3\n");
    let (status, answer) = send_webhook(&hook_url(&f.b), SECRET, "check_run", &f.fake.check_run_event(check)).await;
    assert_eq!(status, 200, "{answer}");
    let t =
        f.b.wait_for(&id, "the fix pushed", |t| {
            t.task.status == TaskStatus::Succeeded
                && t.task.loops.forge_fixes == 1
                && t.task.pr.as_ref().and_then(|p| p.pushed.clone()) == t.task.git.head
                && t.task.git.head.as_deref() != Some(head.as_str())
        })
        .await;
    assert_eq!(t.runs.len(), 2, "the same session, resumed");
    assert!(t.runs[1].message.contains("TypeError: boom") && t.runs[1].message.contains("ci / test"));
    let branch = t.task.git.branch.clone().unwrap();
    let new_head = t.task.git.head.clone().unwrap();
    assert_eq!(bare_head(f.bare.path(), &branch), new_head);
    assert_eq!(sh(f.bare.path(), &format!("git show {branch}:fix.txt")).trim(), "fixed");
    assert_eq!(f.fake.pulls()[0]["head"]["sha"], new_head, "the same pull request shows the fix");
    assert_eq!(f.fake.pulls().len(), 1);
    // The same delivery again (a check of a commit the PR no longer has) changes nothing.
    let (status, answer) = send_webhook(&hook_url(&f.b), SECRET, "check_run", &f.fake.check_run_event(check)).await;
    assert_eq!(status, 200);
    assert!(answer.contains("ignored"), "{answer}");
    assert_eq!(f.b.get(&id).await.runs.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_merged_on_github_marks_the_task_merged_and_bad_signatures_change_nothing() {
    let f = forged("", "poll_s = 0", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    assert!(f.b.cli(&["pr", &id]).status.success());
    let sha = f.fake.merge_on_github(1);
    let event = f.fake.pull_request_event(1, "closed");
    let (status, answer) = send_webhook(&hook_url(&f.b), "not the secret", "pull_request", &event).await;
    assert_eq!(status, 401, "{answer}");
    assert!(answer.contains("unauthorized"), "{answer}");
    let unsigned = reqwest::Client::new()
        .post(hook_url(&f.b))
        .header("X-GitHub-Event", "pull_request")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    assert_eq!(f.b.get(&id).await.task.git.merge, MergeState::None, "nothing changed");

    let (status, answer) =
        send_webhook(&hook_url(&f.b), SECRET, "issues", &json!({ "repository": { "full_name": REPO } })).await;
    assert_eq!(status, 200);
    assert!(answer.contains("ignored"), "{answer}");
    let (status, _) = send_webhook(&hook_url(&f.b), SECRET, "pull_request", &event).await;
    assert_eq!(status, 200);
    let t = f.b.get(&id).await;
    assert_eq!(t.task.git.merge, MergeState::Merged);
    assert_eq!(t.task.git.merged_commit.as_deref(), Some(sha.as_str()));
    assert_eq!(t.task.pr.unwrap().state, PrState::Merged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_via_forge_merges_through_the_api_and_a_protected_branch_is_reported() {
    let f = forged("merge_via = \"forge\"", "poll_s = 0", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    assert!(f.b.cli(&["pr", &id]).status.success());
    let local_main = f.b.sh("git rev-parse main");
    f.fake.protect("main");
    let out = f.b.cli(&["merge", &id]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("405") && stderr.contains("Repository rule violations"), "{stderr}");
    let t = f.b.get(&id).await;
    assert_eq!((t.task.git.merge, t.task.pr.as_ref().unwrap().state), (MergeState::None, PrState::Open));
    assert_eq!(f.b.sh("git rev-parse main"), local_main, "nothing changed locally");
    assert_eq!(bare_head(f.bare.path(), "main"), local_main, "nor on the remote");

    // Unprotected (a fresh forge on the same remote would be the same): a second task.
    let g = forged("merge_via = \"forge\"", "poll_s = 0", ENV).await;
    g.b.agent("feature", FEATURE).await;
    let t = succeeded(&g.b, "feature").await;
    let id = t.task.id.to_string();
    assert!(g.b.cli(&["pr", &id]).status.success());
    let local_main = g.b.sh("git rev-parse main");
    let out = g.b.cli(&["merge", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = g.b.get(&id).await;
    assert_eq!(t.task.git.merge, MergeState::Merged);
    let merged = bare_head(g.bare.path(), "main");
    assert_eq!(t.task.git.merged_commit.as_deref(), Some(merged.as_str()), "the forge's merge commit");
    assert_eq!(sh(g.bare.path(), "git show main:feature.txt").trim(), "feature");
    assert_eq!(g.b.sh("git rev-parse main"), local_main, "Baton's own queue did not merge");
    let merge = g.fake.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(merge.json()["sha"], t.task.git.head.clone().unwrap(), "merged at the head Baton pushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_baton_polls_with_conditional_requests() {
    let f = forged("auto_pr = true", "poll_s = 1", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    let t = f.b.wait_for(&id, "the pull request auto_pr opens", |t| t.task.pr.is_some()).await;
    let head = t.task.git.head.clone().unwrap();
    f.fake.add_check_run(&head, "lint", Some("success"), "");
    f.fake.add_check_run(&head, "test", Some("failure"), "TypeError: boom");
    let t =
        f.b.wait_within(Duration::from_secs(30), &id, "the poll to see the failure", |t| t.task.loops.forge_fixes == 1)
            .await;
    assert!(t.task.pr.unwrap().last_feedback.unwrap().contains("test failed"));
    f.b.wait_for(&id, "the fix pushed", |t| {
        t.task.pr.as_ref().and_then(|p| p.pushed.clone()) == t.task.git.head
            && t.task.git.head.as_deref() != Some(head.as_str())
    })
    .await;
    // Later polls ask only for changes.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let conditional = f
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/pulls/1") && !r.header("if-none-match").is_empty())
            .count();
        if conditional >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no poll asked only for changes (If-None-Match)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_forge_setups_and_empty_tasks_are_refused_with_nothing_changed() {
    // The token's variable is not set.
    let f = forged("", "poll_s = 0", &[("GH_HOOK_SECRET", SECRET)]).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let out = f.b.cli(&["pr", t.task.id.as_str()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GITHUB_TOKEN, which is not set"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.fake.pulls().is_empty());

    // A remote that does not exist.
    let f = forged("", "remote = \"upstream\"\npoll_s = 0", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let out = f.b.cli(&["pr", t.task.id.as_str()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no remote named \"upstream\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.fake.pulls().is_empty() && f.fake.requests().is_empty(), "the forge was not called");

    // A task without commits.
    f.b.agent("idle", "true").await;
    let t = succeeded(&f.b, "idle").await;
    let out = f.b.cli(&["pr", t.task.id.as_str()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no commits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(f.b.get(t.task.id.as_str()).await.task.pr.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_requesting_changes_on_github_goes_back_to_the_agent_with_its_comments() {
    let f = forged("", "poll_s = 0", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    assert!(f.b.cli(&["pr", &id]).status.success());
    let approving = f.fake.add_review(1, "APPROVED", "fine by me", &[]);
    let (status, answer) =
        send_webhook(&hook_url(&f.b), SECRET, "pull_request_review", &f.fake.review_event(1, approving)).await;
    assert_eq!(status, 200);
    assert!(answer.contains("ignored"), "an approval asks nothing of the agent: {answer}");
    let review = f.fake.add_review(
        1,
        "CHANGES_REQUESTED",
        "Please handle the error.",
        &[("feature.txt", 1, "TypeError: boom here")],
    );
    let (status, _) =
        send_webhook(&hook_url(&f.b), SECRET, "pull_request_review", &f.fake.review_event(1, review)).await;
    assert_eq!(status, 200);
    let head = t.task.git.head.clone().unwrap();
    let t =
        f.b.wait_for(&id, "the fix pushed", |t| {
            t.task.pr.as_ref().and_then(|p| p.pushed.clone()) == t.task.git.head
                && t.task.git.head.as_deref() != Some(head.as_str())
        })
        .await;
    let message = &t.runs[1].message;
    assert!(
        message.contains("Please handle the error.") && message.contains("`feature.txt:1` — TypeError: boom here"),
        "{message}"
    );
    assert_eq!(f.fake.pulls()[0]["head"]["sha"], t.task.git.head.clone().unwrap());
}

/// The whole loop, unattended: the agent's first attempt fails its check and it
/// fixes it, a reviewer agent approves, and a pull request opens by itself
/// (`auto_pr`) saying so. Every step is on the task's timeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_from_lunch_to_an_approved_pull_request_whose_checks_pass() {
    let f = forged("auto_pr = true\nreview_by = \"approver\"", "poll_s = 0", ENV).await;
    let fixer = r#"if [ "$BATON_RESUME" = 1 ]; then case "$BATON_PROMPT" in *"expected 3 got 4"*) echo 3 > answer.txt;; esac; else echo 4 > answer.txt; fi; git add -A && git commit -qm "answer $(cat answer.txt)"; echo '{"type":"result","text":"The answer is written."}'"#;
    f.b.agent("fixer", fixer).await;
    let verdict = r#"{"verdict":"approve","comments":[]}"#;
    f.b.agent(
        "approver",
        &format!(
            "python3 -c 'import json,sys; print(json.dumps({{\"type\":\"result\",\"text\":sys.argv[1]}}))' '{verdict}'"
        ),
    )
    .await;
    let check = r#"a=$(cat answer.txt); [ "$a" = 3 ] || { echo "expected 3 got $a" >&2; exit 1; }"#;
    let id = f
        .b
        .task(json!({ "prompt": "write the answer", "title": "Write the answer", "agent": "fixer", "checks": [check] }))
        .await;
    let t = f.b.wait_for(&id, "the pull request", |t| t.task.pr.is_some()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert_eq!((t.task.loops.check_fixes, t.task.loops.reviews.len()), (1, 1));
    let body = f.fake.pulls()[0]["body"].as_str().unwrap().to_owned();
    assert!(body.contains("✅ `a=$(cat answer.txt)") && body.contains("**Review**: approver approved"), "{body}");
    assert_eq!(f.fake.pulls()[0]["head"]["sha"], t.task.git.head.clone().unwrap());
    let steps: Vec<String> =
        f.b.events(&id).await.iter().filter_map(|e| e.data["loop"]["kind"].as_str().map(str::to_owned)).collect();
    assert_eq!(steps, ["checks", "review", "review", "pr"], "fixed, reviewed, approved, proposed");
}

/// What GitHub says while the agent works is kept and given to it when it is
/// idle again: a review that arrives during a CI fix is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_that_arrives_while_the_agent_works_waits_for_it() {
    let f = forged("", "poll_s = 0", ENV).await;
    let slow = r#"if [ "$BATON_RESUME" = 1 ]; then sleep 1; echo "$BATON_PROMPT" >> prompts.txt; else echo feature > feature.txt; fi; git add -A && git commit -qm work"#;
    f.b.agent("slow", slow).await;
    let t = succeeded(&f.b, "slow").await;
    let id = t.task.id.to_string();
    assert!(f.b.cli(&["pr", &id]).status.success());
    let head = t.task.git.head.clone().unwrap();
    let check = f.fake.add_check_run(&head, "test", Some("failure"), "TypeError: boom");
    assert_eq!(send_webhook(&hook_url(&f.b), SECRET, "check_run", &f.fake.check_run_event(check)).await.0, 200);
    f.b.wait_status(&id, TaskStatus::Running).await;
    let review = f.fake.add_review(1, "CHANGES_REQUESTED", "Rename it.", &[]);
    let (status, _) =
        send_webhook(&hook_url(&f.b), SECRET, "pull_request_review", &f.fake.review_event(1, review)).await;
    assert_eq!(status, 200);
    assert_eq!(f.b.get(&id).await.task.pr.unwrap().waiting.len(), 1, "kept while the agent works");
    let t = f.b.wait_for(&id, "both fixes", |t| t.runs.len() == 3 && t.task.status == TaskStatus::Succeeded).await;
    assert!(t.runs[1].message.contains("TypeError: boom") && t.runs[2].message.contains("Rename it."));
    assert_eq!(t.task.loops.forge_fixes, 2);
    assert!(t.task.pr.unwrap().waiting.is_empty());
}

/// With `auto_merge` through the forge, a pull request merges once its check
/// runs are green; a review from outside the repository's people asks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_green_pull_request_merges_itself_through_the_forge() {
    let f = forged("auto_pr = true\nauto_merge = true\nmerge_via = \"forge\"", "poll_s = 1", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let t = succeeded(&f.b, "feature").await;
    let id = t.task.id.to_string();
    let t = f.b.wait_for(&id, "the pull request", |t| t.task.pr.is_some()).await;
    assert_eq!(t.task.git.merge, MergeState::None, "not before its checks ran");
    let head = t.task.git.head.clone().unwrap();
    f.fake.add_check_run(&head, "lint", Some("success"), "");
    let t =
        f.b.wait_within(Duration::from_secs(30), &id, "the merge", |t| t.task.git.merge == MergeState::Merged).await;
    assert_eq!(t.task.pr.unwrap().state, PrState::Merged);
    assert_eq!(sh(f.bare.path(), "git show main:feature.txt").trim(), "feature");
}

/// The task a forge issue or comment started, by its origin.
async fn task_of(b: &Baton, origin: &str) -> Option<serde_json::Value> {
    let all: Vec<serde_json::Value> = b.client.get("/api/tasks").await.unwrap();
    all.into_iter().find(|t| t["origin"].as_str() == Some(origin))
}

#[tokio::test]
async fn a_labelled_issue_becomes_a_task_whose_pull_request_fixes_it_and_at_baton_on_the_pull_request_resumes_it() {
    let f = forged("auto_pr = true", "issue_agent = \"feature\"", ENV).await;
    f.b.agent("feature", FEATURE).await;
    let n = f.fake.open_issue("Add the feature", "We need feature.txt, please.", &["baton"]);
    f.fake.add_comment(n, "maintainer", "MEMBER", "Keep it small.");
    let (status, answer) = send_webhook(&hook_url(&f.b), SECRET, "issues", &f.fake.issue_event(n, "labeled")).await;
    assert_eq!(status, 200, "{answer}");
    let origin = format!("issue {REPO}#{n}");
    let task = task_of(&f.b, &origin).await.expect("a task for the issue");
    let id = task["id"].as_str().unwrap().to_owned();
    let prompt = task["prompt"].as_str().unwrap();
    assert!(
        prompt.contains("We need feature.txt") && prompt.contains("Keep it small."),
        "the issue and its thread: {prompt}"
    );
    assert!(f.fake.reactions().contains(&(format!("issues/{n}"), "eyes".into())), "👀");
    assert!(
        f.fake.comments(n).iter().any(|c| c["body"].as_str().is_some_and(|b| b.contains(&id))),
        "the issue links the task"
    );
    // The same delivery again starts nothing.
    send_webhook(&hook_url(&f.b), SECRET, "issues", &f.fake.issue_event(n, "labeled")).await;
    let t = f.b.wait_within(Duration::from_secs(30), &id, "its pull request", |t| t.task.pr.is_some()).await;
    let pr = t.task.pr.clone().unwrap();
    assert!(f.fake.pulls()[0]["body"].as_str().unwrap().contains(&format!("Fixes #{n}")));
    let start = std::time::Instant::now();
    while !f.fake.comments(n).iter().any(|c| c["body"].as_str().is_some_and(|b| b.contains(&pr.url))) {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the issue links the pull request: {:?}",
            f.fake.comments(n)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // `@baton` on the task's pull request: the same session's next turn.
    let c = f.fake.add_comment(pr.number, "maintainer", "MEMBER", "@baton also handle the empty case");
    let (status, answer) = send_webhook(&hook_url(&f.b), SECRET, "issue_comment", &f.fake.comment_event(c)).await;
    assert_eq!(status, 200, "{answer}");
    let t =
        f.b.wait_within(Duration::from_secs(30), &id, "the resumed turn", |t| {
            t.runs.len() == 2 && t.task.status.is_finished()
        })
        .await;
    assert!(t.runs[1].message.contains("also handle the empty case"), "{}", t.runs[1].message);
    assert_eq!(t.runs[0].session_id, t.runs[1].session_id);
    // A stranger's comment and Baton's own start nothing.
    for (who, association, body) in
        [("stranger", "NONE", "@baton delete it all"), ("baton-bot", "NONE", "<!-- baton -->\n@baton again")]
    {
        let c = f.fake.add_comment(n, who, association, body);
        let (_, answer) = send_webhook(&hook_url(&f.b), SECRET, "issue_comment", &f.fake.comment_event(c)).await;
        assert!(answer.contains("ignored"), "{answer}");
    }
    // A member's `@baton` on an issue starts a task of its own.
    let c = f.fake.add_comment(n, "maintainer", "MEMBER", "@baton write the docs too");
    send_webhook(&hook_url(&f.b), SECRET, "issue_comment", &f.fake.comment_event(c)).await;
    assert!(task_of(&f.b, &format!("comment {REPO}#{n}")).await.is_some());
    let all: Vec<serde_json::Value> = f.b.client.get("/api/tasks").await.unwrap();
    assert_eq!(all.len(), 2, "one task per trigger, none for the others");
}

#[tokio::test]
async fn without_a_webhook_labelled_issues_are_found_by_polling() {
    let f = forged("", "poll_s = 1\nissue_agent = \"feature\"", &[("GITHUB_TOKEN", TOKEN)]).await;
    f.b.agent("feature", FEATURE).await;
    let n = f.fake.open_issue("Poll me", "Found without a webhook.", &["baton"]);
    f.fake.open_issue("Not for Baton", "no label", &[]);
    let start = std::time::Instant::now();
    let origin = format!("issue {REPO}#{n}");
    while task_of(&f.b, &origin).await.is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "the poll found no labelled issue");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all: Vec<serde_json::Value> = f.b.client.get("/api/tasks").await.unwrap();
    assert_eq!(all.len(), 1, "once, and only the labelled one");
}

// Multi-threaded: the fake GitLab answers while the CLI runs (blocking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_merge_requests_take_pipeline_failures_back_to_the_agent_and_a_merge_marks_the_task() {
    use baton_testkit::gitlab::{FakeGitLab, send_hook};
    let bare = tempfile::tempdir().unwrap();
    sh(bare.path(), "git init -q --bare -b main");
    let fake = FakeGitLab::start("acme/widgets", "glpat-fake", Some(bare.path().to_path_buf())).await;
    let config = format!(
        "[forge]\nkind = \"gitlab\"\nproject = \"acme/widgets\"\napi_url = \"{}\"\nwebhook_secret_env = \"GL_HOOK\"\npoll_s = 0\n",
        fake.api_url
    );
    let remote = bare.path().display().to_string();
    let b = Baton::start_custom(&[], &[("GITLAB_TOKEN", "glpat-fake"), ("GL_HOOK", "gl-secret")], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
        sh(repo, &format!("git remote add origin {remote} && git push -q origin main"));
    });
    b.agent("feature", FEATURE).await;
    let t = succeeded(&b, "feature").await;
    let id = t.task.id.to_string();
    let out = b.cli(&["pr", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mrs = fake.merge_requests();
    assert_eq!(mrs.len(), 1);
    assert_eq!(mrs[0]["source_branch"].as_str(), t.task.git.branch.as_deref());
    assert!(mrs[0]["description"].as_str().unwrap().contains(&id), "the description links the task");
    let head = mrs[0]["sha"].as_str().unwrap().to_owned();
    let url = format!("{}/api/forge/gitlab", b.url);
    // A failed pipeline: the agent gets the failed job's trace, and its fix goes to the same merge request.
    let pid = fake.add_pipeline(&head, "failed", &[("lint", "success", "ok"), ("test", "failed", "TypeError: boom")]);
    let (status, answer) = send_hook(&url, "not the secret", "Pipeline Hook", &fake.pipeline_event(pid)).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = send_hook(&url, "gl-secret", "Pipeline Hook", &fake.pipeline_event(pid)).await;
    assert_eq!(status, 200, "{answer}");
    let t = b
        .wait_within(Duration::from_secs(30), &id, "the fix pushed", |t| {
            t.task.loops.forge_fixes == 1
                && t.task.pr.as_ref().and_then(|p| p.pushed.clone()) == t.task.git.head
                && t.task.git.head.as_deref() != Some(head.as_str())
        })
        .await;
    assert!(t.runs.last().unwrap().message.contains("TypeError: boom"), "{}", t.runs.last().unwrap().message);
    assert_eq!(fake.merge_requests().len(), 1, "the same merge request");
    assert_eq!(fake.merge_requests()[0]["sha"].as_str(), t.task.git.head.as_deref());
    // Merged on GitLab: the task is merged.
    fake.merge_on_gitlab(1);
    let (status, _) = send_hook(&url, "gl-secret", "Merge Request Hook", &fake.merge_request_event(1, "merge")).await;
    assert_eq!(status, 200);
    b.wait_for(&id, "merged", |t| t.task.git.merge == MergeState::Merged).await;
    // An issue given the trigger label starts a task, as on GitHub.
    let issue = json!({ "object_kind": "issue", "project": { "id": 42, "path_with_namespace": "acme/widgets" },
        "object_attributes": { "iid": 7, "title": "Add the feature", "description": "Please.", "state": "opened" },
        "labels": [{ "title": "baton" }] });
    let (status, answer) = send_hook(&url, "gl-secret", "Issue Hook", &issue).await;
    assert_eq!(status, 200, "{answer}");
    let all: Vec<serde_json::Value> = b.client.get("/api/tasks").await.unwrap();
    assert!(all.iter().any(|t| t["origin"] == "issue acme/widgets#7"), "{answer}");
}
