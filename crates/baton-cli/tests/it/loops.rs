//! The feedback loops: an agent fixes what its checks, a conflict and a
//! reviewer said, as further runs of its own session.

use baton_core::api::TaskDetail;
use baton_core::model::{MergeState, Verdict};
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::Baton;

const COMMIT: &str = "git add -A && git commit -qm";

async fn ended(b: &Baton, id: &str) -> TaskDetail {
    b.wait_for(id, "the end", |t| t.task.status.is_finished()).await
}

/// The loop steps on a task's timeline: (kind, message).
async fn steps(b: &Baton, id: &str) -> Vec<(String, String)> {
    b.events(id)
        .await
        .iter()
        .filter(|e| !e.data["loop"].is_null())
        .map(|e| (e.data["loop"]["kind"].as_str().unwrap().to_owned(), e.data["message"].as_str().unwrap().to_owned()))
        .collect()
}

/// Writes 4 where the check wants 3, until a resumed turn's prompt tells it
/// what the check said.
const FIXER: &str = r#"if [ "$BATON_RESUME" = 1 ]; then case "$BATON_PROMPT" in *"expected 3 got 4"*) echo 3 > answer.txt;; esac; else echo 4 > answer.txt; fi; git add -A && git commit -qm "answer $(cat answer.txt)""#;
const CHECK: &str = r#"a=$(cat answer.txt); [ "$a" = 3 ] || { echo "expected 3 got $a" >&2; exit 1; }"#;

#[tokio::test]
async fn a_failing_check_goes_back_to_the_agent_which_fixes_it() {
    let b = Baton::start();
    b.agent("fixer", FIXER).await;
    let id = b.task(json!({ "prompt": "write the answer", "agent": "fixer", "checks": [CHECK] })).await;
    let t = ended(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs.len(), 2, "the same session, two runs");
    assert!(t.runs.iter().all(|r| r.session_id == t.runs[0].session_id));
    let resumed = &t.runs[1].message;
    assert!(resumed.contains("expected 3 got 4") && resumed.contains(CHECK), "{resumed}");
    assert!(resumed.contains("fix attempt 1 of 2"), "{resumed}");
    assert_eq!(t.task.loops.check_fixes, 1);
    assert!(t.task.check_results.iter().all(|c| c.passed));
    assert_eq!(b.sh(&format!("git show {}:answer.txt", t.task.git.branch.as_deref().unwrap())), "3");
    let steps = steps(&b, &id).await;
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].0, "checks");
    let show = String::from_utf8_lossy(&b.cli(&["show", &id]).stdout).into_owned();
    assert!(show.contains("checks failed"), "baton show tells the attempt: {show}");
}

#[tokio::test]
async fn an_agent_that_never_fixes_its_checks_fails_after_its_attempts() {
    let b = Baton::start();
    b.agent("stubborn", &format!("echo 4 > answer.txt; {COMMIT} four --allow-empty")).await;
    let id = b.task(json!({ "prompt": "x", "agent": "stubborn", "checks": [CHECK], "fix_attempts": 1 })).await;
    let t = ended(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    let reason = t.task.reason.clone().unwrap();
    assert!(reason.starts_with("checks still failing after 1 attempt: check `"), "{reason}");
    assert_eq!(t.runs.len(), 2);
    let off = b.task(json!({ "prompt": "x", "agent": "stubborn", "checks": [CHECK], "fix_attempts": 0 })).await;
    let t = ended(&b, &off).await;
    assert_eq!((t.task.status, t.runs.len()), (TaskStatus::Failed, 1), "0 turns the loop off");
    assert!(t.task.reason.unwrap().starts_with("check `"));
}

#[tokio::test]
async fn a_conflicting_merge_goes_back_to_the_agent_which_resolves_it_and_lands() {
    let b = Baton::start();
    b.agent("edit-one", &format!("sed -i 's/hello/hello from one/' README.md && {COMMIT} one")).await;
    // On its resumed turn it merges the commit the prompt names, and resolves.
    let resolve = r#"sha=$(printf %s "$BATON_PROMPT" | grep -o 'git merge [0-9a-f]*' | head -1 | cut -d' ' -f3); git merge "$sha" >/dev/null 2>&1; echo "hello from one and two" > README.md; git add -A && git commit -qm "merge the base""#;
    let script = format!(
        r#"if [ "$BATON_RESUME" = 1 ]; then {resolve}; else sed -i 's/hello/hello from two/' README.md && {COMMIT} two; fi"#
    );
    b.agent("edit-two", &script).await;
    let one = b.task(json!({ "prompt": "one", "agent": "edit-one" })).await;
    let two = b.task(json!({ "prompt": "two", "agent": "edit-two", "on_conflict": "resume" })).await;
    ended(&b, &one).await;
    ended(&b, &two).await;
    assert!(b.cli(&["merge", &one]).status.success());
    let out = b.cli(&["merge", &two]);
    assert_eq!(out.status.code(), Some(4), "the merge itself is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resumed to resolve it"), "{stderr}");
    let t = b.wait_for(&two, "the merge after the fix", |t| t.task.git.merge == MergeState::Merged).await;
    assert_eq!(t.task.loops.conflict_fixes, 1);
    assert_eq!(t.runs.len(), 2);
    assert!(t.runs[1].message.contains("README.md"), "{}", t.runs[1].message);
    assert_eq!(b.sh("git show main:README.md"), "hello from one and two");
    let one_commit = b.get(&one).await.task.git.merged_commit.unwrap();
    assert_eq!(b.sh(&format!("git merge-base --is-ancestor {one_commit} main && echo yes")), "yes");
    let kinds: Vec<String> = steps(&b, &two).await.into_iter().map(|s| s.0).collect();
    assert_eq!(kinds, ["conflict"]);
}

/// A reviewer that asks for a test note until the file has one.
fn reviewer_script(approve_when: &str) -> String {
    format!(
        r#"if grep -q '{approve_when}' notes.txt; then v='{{"verdict":"approve","comments":[]}}'; else v='{{"verdict":"changes_requested","comments":[{{"file":"notes.txt","line":1,"body":"say that it is tested"}}]}}'; fi; python3 -c 'import json,sys; print(json.dumps({{"type":"result","text":sys.argv[1]}}))' "$v""#
    )
}

const AUTHOR: &str = r#"if [ "$BATON_RESUME" = 1 ]; then case "$BATON_PROMPT" in *"say that it is tested"*) echo "draft, tested" > notes.txt;; *) echo more >> notes.txt;; esac; else echo draft > notes.txt; fi; git add -A && git commit -qm notes"#;

#[tokio::test]
async fn a_reviewer_asks_for_changes_the_author_makes_them_and_the_reviewer_approves() {
    let b = Baton::start();
    b.agent("author", AUTHOR).await;
    b.agent("reviewer", &reviewer_script("tested")).await;
    let id = b.task(json!({ "prompt": "write notes", "agent": "author", "review_by": "reviewer" })).await;
    let t = ended(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let reviews = &t.task.loops.reviews;
    assert_eq!(reviews.len(), 2, "{reviews:?}");
    assert_eq!(reviews[0].verdict, Some(Verdict::ChangesRequested));
    assert_eq!(reviews[0].comments[0].body, "say that it is tested");
    assert_eq!(reviews[0].comments[0].file.as_deref(), Some("notes.txt"));
    assert_eq!(reviews[1].verdict, Some(Verdict::Approve));
    assert_ne!(reviews[0].commit, reviews[1].commit, "each review reads the commit of its round");
    assert_eq!(t.runs.len(), 2);
    assert!(t.runs[1].message.contains("`notes.txt:1` — say that it is tested"), "{}", t.runs[1].message);
    // The reviewer worked on a copy of the branch.
    let reviewer = b.get(reviews[0].task_id.as_ref().unwrap().as_str()).await;
    assert_eq!(reviewer.task.review_of.as_ref().map(|r| r.as_str()), Some(id.as_str()));
    assert_eq!(reviewer.task.git.base_branch, t.task.git.branch);
    assert_ne!(reviewer.task.git.branch, t.task.git.branch);
    let out = b.cli(&["merge", "--force", reviews[0].task_id.as_ref().unwrap().as_str()]);
    assert!(!out.status.success(), "a reviewer's copy is never merged");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is the review of task"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let author_branch = t.task.git.branch.clone().unwrap();
    assert_eq!(b.sh(&format!("git rev-parse {author_branch}")), t.task.git.head.clone().unwrap());
    let kinds: Vec<String> = steps(&b, &id).await.into_iter().map(|s| s.0).collect();
    assert_eq!(kinds, ["review", "review", "review", "review"], "asked, changes, asked, approved");
    // Work changed after the approval is reviewed again before it may land.
    let out = b.cli(&["resume", &id, "add more"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t =
        b.wait_for(&id, "the second review", |t| t.task.loops.reviews.len() == 3 && t.task.status.is_finished()).await;
    assert_eq!(t.task.loops.reviews[2].commit, t.task.git.head);
    assert!(b.cli(&["merge", &id]).status.success(), "approved work merges");
}

#[tokio::test]
async fn a_task_stopped_in_review_stops_its_reviewer_and_is_cancelled_once() {
    let b = Baton::start();
    b.agent("author", AUTHOR).await;
    b.agent("slow", "sleep 30").await;
    let id = b.task(json!({ "prompt": "x", "agent": "author", "review_by": "slow" })).await;
    let t = b.wait_status(&id, TaskStatus::Reviewing).await;
    let reviewer = t.task.loops.reviews[0].task_id.as_ref().unwrap().to_string();
    assert!(b.cli(&["stop", &id]).status.success());
    let t = ended(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Cancelled);
    let r = ended(&b, &reviewer).await;
    assert_eq!(r.task.status, TaskStatus::Cancelled);
    assert!(r.task.reason.unwrap().contains("the reviewed task was stopped"));
    let settled: Vec<String> = b
        .events(&id)
        .await
        .iter()
        .filter(|e| {
            e.kind == baton_core::event::EventKind::Task
                && e.data["status"].as_str().is_some_and(|s| s == "cancelled" || s == "failed")
        })
        .map(|e| e.data["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(settled, ["cancelled"], "ended once, as cancelled");
    assert!(t.task.loops.reviews[0].error.is_none());
}

#[tokio::test]
async fn work_without_approval_is_not_merged_unless_forced() {
    let b = Baton::start();
    b.agent("author", AUTHOR).await;
    b.agent("picky", &reviewer_script("never-there")).await;
    let id = b.task(json!({ "prompt": "x", "agent": "author", "review_by": "picky", "review_rounds": 1 })).await;
    let t = ended(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert!(t.task.reason.as_deref().unwrap().contains("still requests changes after 1 round;"), "{:?}", t.task.reason);
    assert_eq!(t.task.loops.reviews.len(), 2);
    let main = b.sh("git rev-parse main");
    let out = b.cli(&["merge", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, body) = b.post(&format!("/api/tasks/{id}/merge"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("review_required")));
    assert_eq!(b.sh("git rev-parse main"), main, "nothing changed");
    assert!(b.cli(&["merge", "--force", &id]).status.success());
}

#[tokio::test]
async fn an_answer_outside_the_schema_gets_one_correction_then_fails_the_review() {
    let b = Baton::start();
    b.agent("author", AUTHOR).await;
    b.agent("chatty", r#"echo '{"type":"result","text":"LGTM, ship it"}'"#).await;
    let id = b.task(json!({ "prompt": "x", "agent": "author", "review_by": "chatty" })).await;
    let t = ended(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    let reason = t.task.reason.unwrap();
    assert!(reason.starts_with("review failed: the reviewer's answer does not fit the schema"), "{reason}");
    let review = &t.task.loops.reviews[0];
    assert_eq!(review.output.as_deref(), Some("LGTM, ship it"), "the answer is kept");
    assert!(review.corrected);
    let reviewer = b.get(review.task_id.as_ref().unwrap().as_str()).await;
    assert_eq!(reviewer.runs.len(), 2, "one corrective turn");
    assert!(reviewer.runs[1].message.contains("\"verdict\""));
}

#[tokio::test]
async fn bad_loop_settings_are_refused() {
    let b = Baton::start();
    b.agent("author", AUTHOR).await;
    for (body, status, code) in [
        (json!({ "project": "repo", "prompt": "x", "agent": "author", "review_by": "nobody" }), 404, "not_found"),
        (json!({ "project": "repo", "prompt": "x", "agent": "author", "fix_attempts": 11 }), 400, "invalid_argument"),
        (json!({ "project": "repo", "prompt": "x", "agent": "author", "on_conflict": "pray" }), 400, "invalid_body"),
    ] {
        let (got, answer) = b.post("/api/tasks", body.clone()).await;
        assert_eq!((got, answer["error"]["code"].as_str()), (status, Some(code)), "{body}: {answer}");
    }
    let list: Value = reqwest::Client::new()
        .get(format!("{}/api/tasks", b.url))
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(0), "nothing was created: {list}");
}

/// A real Claude Code reviewer, against the fake model, reads the branch with
/// its own tool and answers a verdict that fits the schema.
#[tokio::test]
async fn a_real_claude_code_reviewer_answers_in_the_schema() {
    use baton_testkit::{FakeModel, Script, Step};
    let verdict =
        r#"{"verdict": "approve", "comments": [{"file": "notes.txt", "line": 1, "body": "Clear and tested."}]}"#;
    let fake = FakeModel::start(Script::new(vec![
        Step::bash("git log --oneline -3 && git diff HEAD~1 HEAD"),
        Step::text(verdict),
    ]))
    .await
    .unwrap();
    let b = Baton::start();
    b.agent("author", AUTHOR).await;
    b.agent_def(crate::real_agents::Cli::Claude.def("claude-reviewer", &fake.url, &b.dir.path().join("home"))).await;
    let id = b.task(json!({ "prompt": "write notes", "agent": "author", "review_by": "claude-reviewer" })).await;
    let t =
        b.wait_within(std::time::Duration::from_secs(120), &id, "the review", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?} {:?}", t.task.reason, t.task.loops.reviews);
    let review = &t.task.loops.reviews[0];
    assert_eq!(review.verdict, Some(Verdict::Approve));
    assert_eq!(review.comments[0].body, "Clear and tested.");
    assert_eq!(review.comments[0].line, Some(1));
    let reviewer = b.get(review.task_id.as_ref().unwrap().as_str()).await;
    assert_eq!(reviewer.task.agent, "claude-reviewer");
    let events = b.events(review.task_id.as_ref().unwrap().as_str()).await;
    assert!(
        events.iter().any(|e| e.data.to_string().contains("notes")),
        "the reviewer read the change with its own tool"
    );
}
