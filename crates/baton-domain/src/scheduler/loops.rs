//! The feedback loops: what a task's checks, a conflict, a reviewer or its pull
//! request's CI say goes back to the agent that wrote the code, as the next turn
//! of the same session, a bounded number of times.
//!
//! - **Checks**: a run whose acceptance checks fail is resumed with the failing
//!   commands and the end of their output (`fix_attempts`, default 2).
//! - **Conflicts**: with `on_conflict = "resume"`, a merge refused for a conflict
//!   resumes the agent with the files and the base's new head; once its fix
//!   passes the checks, the merge is queued again.
//! - **Reviews**: with `review_by`, a reviewer agent reads the work on a copy of
//!   the branch once the checks pass and answers a verdict in a schema;
//!   requested changes go back to the author (`review_rounds`, default 2).
//!
//! Each step is an event on the task's timeline (`data.loop`), and each attempt a
//! run of the session.

use baton_core::agent::AgentDef;
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::TaskId;
use baton_core::model::{
    DEFAULT_FIX_ATTEMPTS, DEFAULT_REVIEW_ROUNDS, Feedback, Loops, MAX_LOOP_ROUNDS, OnConflict, Project, Review,
    ReviewComment, Run, RunKind, Session, Task, Verdict,
};
use baton_core::status::TaskStatus;
use baton_core::text::tail;
use baton_core::time::Timestamp;
use baton_store::StoreTx;
use serde::Deserialize;
use serde_json::json;

use super::Effects;
use super::emit::save_task;
use super::tasks::{NewTask, fail, insert, queue_run, set_status, stop_task, succeed};
use crate::Error;
use crate::resolve;

/// How much of one check's output goes back to the agent.
const CHECK_OUTPUT: usize = 4000;

/// What a request asks of the loops (each falls back to the agent's, then the
/// project's setting).
#[derive(Debug, Default)]
pub(crate) struct Ask {
    pub fix_attempts: Option<u32>,
    pub on_conflict: Option<OnConflict>,
    pub review_by: Option<String>,
    pub review_rounds: Option<u32>,
}

/// A new task's loops, from its request, its agent and its project.
pub(crate) fn settings(tx: &dyn StoreTx, project: &Project, agent: &AgentDef, ask: Ask) -> Result<Loops, Error> {
    let s = &project.settings;
    let fix_attempts = ask.fix_attempts.or(agent.fix_attempts).or(s.fix_attempts).unwrap_or(DEFAULT_FIX_ATTEMPTS);
    let review_rounds = ask.review_rounds.or(s.review_rounds).unwrap_or(DEFAULT_REVIEW_ROUNDS);
    if fix_attempts > MAX_LOOP_ROUNDS || review_rounds > MAX_LOOP_ROUNDS {
        return Err(Error::invalid(format!("`fix_attempts` and `review_rounds` must be at most {MAX_LOOP_ROUNDS}")));
    }
    let (review_by, from) = match (ask.review_by, &agent.review_by, &s.review_by) {
        (Some(r), _, _) => (Some(r), "the request".to_owned()),
        (None, Some(r), _) => (Some(r.clone()), format!("agent {}'s definition", agent.name)),
        (None, None, Some(r)) => (Some(r.clone()), format!("project {}'s settings", project.name)),
        _ => (None, String::new()),
    };
    if let Some(name) = &review_by
        && tx.agent(name)?.is_none()
    {
        return Err(Error::unknown(format!(
            "`review_by` in {from} names agent {name:?}, which is not defined (`baton agents` lists them)"
        )));
    }
    Ok(Loops {
        fix_attempts,
        on_conflict: ask.on_conflict.or(s.on_conflict).unwrap_or_default(),
        review_by,
        review_rounds,
        ..Loops::default()
    })
}

/// Records a step of a feedback loop (a check, a review, a pull request) on the
/// task's timeline.
pub fn record_step(
    tx: &mut dyn StoreTx,
    task: &Task,
    kind: &str,
    message: String,
    extra: serde_json::Value,
) -> Result<(), Error> {
    tracing::info!(task = %task.id, kind, "{message}");
    let data = json!({ "message": message, "loop": { "kind": kind, "detail": extra } });
    tx.append_event(task.session_id.as_ref(), None, Some(&task.id), NewEvent::new(EventKind::Log, data))?;
    Ok(())
}

/// The end of a resume message: the task again when the agent's CLI kept no
/// conversation to resume.
fn reminder(task: &Task, session: &Session) -> String {
    match session.agent_session_id {
        Some(_) => String::new(),
        None => format!("\n\n## The task you were working on\n\n{}\n", task.prompt.trim()),
    }
}

/// A run's checks failed: the agent is resumed with them while fix attempts
/// are left, else the task fails saying so. Whether the loop handled it (false
/// when the task has no check loop).
pub(crate) fn checks_failed(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    run: &Run,
    session: Session,
) -> Result<bool, Error> {
    let allowed = task.loops.fix_attempts;
    if allowed == 0 {
        return Ok(false);
    }
    let failing: Vec<_> = task.check_results.iter().filter(|c| !c.passed).collect();
    if task.loops.check_fixes >= allowed {
        let n = task.loops.check_fixes;
        let why = run.error.as_deref().unwrap_or("a check failed");
        let reason = format!("checks still failing after {n} attempt{}: {why}", if n == 1 { "" } else { "s" });
        record_step(tx, task, "checks", reason.clone(), json!({ "attempt": n, "of": allowed, "gave_up": true }))?;
        fail(tx, fx, task, Some(reason))?;
        return Ok(true);
    }
    task.loops.check_fixes += 1;
    let attempt = task.loops.check_fixes;
    let mut message = String::new();
    message.push_str(&format!(
        "Your work is committed, but its acceptance checks failed. Fix the code so that they pass, \
         then commit. The checks run again when you finish (fix attempt {attempt} of {allowed}).\n"
    ));
    for check in &failing {
        let how = match check.exit_code {
            Some(code) => format!("failed with exit code {code}"),
            None => "did not finish".to_owned(),
        };
        message.push_str(&format!(
            "\n## `{}` {how}\n\nThe end of its output:\n\n```\n{}\n```\n",
            check.command,
            tail(check.output_tail.trim_end(), CHECK_OUTPUT)
        ));
    }
    message.push_str(&reminder(task, &session));
    let commands: Vec<&str> = failing.iter().map(|c| c.command.as_str()).collect();
    let text = format!(
        "checks failed ({}); resuming the agent to fix them (attempt {attempt} of {allowed})",
        commands.join(", ")
    );
    record_step(tx, task, "checks", text, json!({ "attempt": attempt, "of": allowed, "checks": commands }))?;
    queue_run(tx, fx, task, RunKind::Resume, message, Some(session), None)?;
    save_task(tx, task)?;
    Ok(true)
}

/// A merge was refused for a conflict: with `on_conflict = "resume"` and fix
/// attempts left, the agent is resumed to merge the base's new head and resolve,
/// and the merge is queued again once its fix passes. Whether it was resumed.
pub fn merge_conflicted(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    base: &str,
    base_head: Option<&str>,
    files: &[String],
) -> Result<bool, Error> {
    conflicted(tx, fx, task, None, base, base_head, files)
}

/// The same for one repository of a workset task: the agent is told which
/// (its directory) and merges that repository's base there.
pub(crate) fn workset_conflicted(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    repository: &str,
    base: &str,
    base_head: Option<&str>,
    files: &[String],
) -> Result<bool, Error> {
    conflicted(tx, fx, task, Some(repository), base, base_head, files)
}

fn conflicted(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    repository: Option<&str>,
    base: &str,
    base_head: Option<&str>,
    files: &[String],
) -> Result<bool, Error> {
    let allowed = task.loops.fix_attempts;
    if task.loops.on_conflict != OnConflict::Resume || allowed == 0 || task.status != TaskStatus::Succeeded {
        return Ok(false);
    }
    if task.loops.conflict_fixes >= allowed {
        let text = format!("the merge still conflicts after {} attempts; a person must resolve it", allowed);
        record_step(
            tx,
            task,
            "conflict",
            text,
            json!({ "attempt": task.loops.conflict_fixes, "of": allowed, "gave_up": true }),
        )?;
        return Ok(false);
    }
    let Some(session_id) = task.session_id.clone() else { return Ok(false) };
    let session = resolve::session(tx, &session_id)?;
    task.loops.conflict_fixes += 1;
    task.loops.remerge = true;
    let attempt = task.loops.conflict_fixes;
    let what = base_head.map_or_else(|| format!("`{base}`"), |h| format!("`{h}` (the head of `{base}`)"));
    let list: String = files.iter().map(|f| format!("- `{f}`\n")).collect();
    let (yours, git, into) = match repository {
        Some(repo) => (format!("Your branch in `{repo}/`"), format!("git -C {repo} merge"), format!("{repo}'s {base}")),
        None => ("Your branch".to_owned(), "git merge".to_owned(), base.to_owned()),
    };
    let message = format!(
        "{yours} could not be merged into `{base}`: changes that landed there since you started conflict \
         with yours in these files:\n\n{list}\nMerge {what} into your branch (`{git} {}`), resolve each conflict \
         keeping the intent of both sides, and commit the merge. The checks run again when you finish, and the \
         merge is tried again (conflict fix {attempt} of {allowed}).{}",
        base_head.unwrap_or(base),
        reminder(task, &session),
    );
    let text = format!(
        "merging into {into} conflicts in {}; resuming the agent to resolve it (attempt {attempt} of {allowed})",
        files.join(", ")
    );
    record_step(
        tx,
        task,
        "conflict",
        text,
        json!({ "attempt": attempt, "of": allowed, "base": base, "base_head": base_head, "files": files, "repository": repository }),
    )?;
    queue_run(tx, fx, task, RunKind::Resume, message, Some(session), None)?;
    save_task(tx, task)?;
    Ok(true)
}

/// Whether a task whose checks passed must be reviewed before it succeeds.
pub(crate) fn review_wanted(task: &Task) -> bool {
    task.loops.review_by.is_some() && task.review_of.is_none() && !task.loops.approved_at(task.git.head.as_deref())
}

/// Hands a task's work to its reviewer: a task of the reviewer agent on a copy
/// of the branch, whose answer decides what follows ([`review_settled`]).
pub(crate) fn start_review(tx: &mut dyn StoreTx, fx: &mut Effects, task: &mut Task) -> Result<(), Error> {
    let name = task.loops.review_by.clone().unwrap_or_default();
    let Some(agent) = tx.agent(&name)? else {
        let reason = format!("review failed: the reviewer agent {name:?} is no longer defined");
        return fail(tx, fx, task, Some(reason));
    };
    let (Some(branch), Some(head)) = (task.git.branch.clone(), task.git.head.clone()) else {
        return succeed(tx, fx, task, None);
    };
    if task.git.commits.is_empty() {
        // Nothing was committed: nothing to review.
        return succeed(tx, fx, task, None);
    }
    let project = resolve::project(tx, &task.project_id)?;
    let round = task.loops.reviews.len() + 1;
    let title: String = format!("Review of {}", task.title).chars().take(200).collect();
    let prompt = review_prompt(task, &head);
    let new = NewTask {
        require: task.require.clone(),
        review_of: Some(task.id.clone()),
        base: Some((branch, head.clone())),
        ..NewTask::made(&project, agent, prompt, title)
    };
    let reviewer = insert(tx, fx, new, TaskId::generate())?;
    task.loops.reviews.push(Review {
        reviewer: name.clone(),
        task_id: Some(reviewer.id.clone()),
        commit: Some(head),
        verdict: None,
        comments: Vec::new(),
        error: None,
        output: None,
        corrected: false,
        at: Timestamp::now(),
    });
    set_status(task, TaskStatus::Reviewing, None)?;
    let done = if task.checks.is_empty() { "the agent finished" } else { "checks passed" };
    let text = format!("{done}; {name} reviews the work in task {} (review {round})", reviewer.id);
    record_step(tx, task, "review", text, json!({ "round": round, "reviewer": name, "review_task": reviewer.id }))?;
    save_task(tx, task)?;
    Ok(())
}

/// What a reviewer is asked.
fn review_prompt(task: &Task, head: &str) -> String {
    let base = task.git.base_commit.as_deref().unwrap_or("the base");
    let files: String = task.git.files_changed.iter().map(|f| format!("- `{f}`\n")).collect();
    format!(
        "Review a change another agent made. Your working directory is a copy of its branch at {head}; \
         nothing you change there is kept. Read the change with `git diff {base} HEAD` (and `git log {base}..HEAD`), \
         judge whether it does what was asked, correctly and cleanly, and answer.\n\n\
         ## What was asked\n\n{}\n\n## Files changed\n\n{files}\n\
         ## Your answer\n\nAnswer with one JSON object and nothing else:\n\n\
         {{\"verdict\": \"approve\" | \"changes_requested\", \"comments\": [{{\"file\": \"path\", \"line\": 12, \"body\": \"what to change and why\"}}]}}\n\n\
         `file` and `line` are optional; `comments` may be empty when you approve.",
        task.prompt.trim()
    )
}

/// A reviewer's answer, as the schema says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    verdict: Verdict,
    #[serde(default)]
    comments: Vec<ReviewComment>,
}

/// Reads a reviewer's answer: the JSON object in it, checked against the schema.
fn parse_answer(output: &str) -> Result<Answer, String> {
    let text = output.trim();
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err("it contains no JSON object".into());
    };
    if end < start {
        return Err("it contains no JSON object".into());
    }
    let answer: Answer = serde_json::from_str(&text[start..=end]).map_err(|e| format!("{e}"))?;
    if answer.comments.iter().any(|c| c.body.trim().is_empty()) {
        return Err("a comment has an empty `body`".into());
    }
    if answer.verdict == Verdict::ChangesRequested && answer.comments.is_empty() {
        return Err("`changes_requested` needs at least one comment saying what to change".into());
    }
    Ok(answer)
}

/// A reviewer's task settled: its verdict is recorded on the reviewed task, which
/// succeeds (approved, or out of rounds), goes back to its author (changes
/// requested), or fails (the review failed). An answer outside the schema gets
/// one corrective turn first.
pub(crate) fn review_settled(tx: &mut dyn StoreTx, fx: &mut Effects, reviewer: &Task) -> Result<(), Error> {
    let Some(author_id) = &reviewer.review_of else { return Ok(()) };
    let Some(mut task) = tx.task(author_id)? else { return Ok(()) };
    let current = task.loops.reviews.last().is_some_and(|r| r.task_id.as_ref() == Some(&reviewer.id));
    if task.status != TaskStatus::Reviewing || !current {
        return Ok(());
    }
    if reviewer.status != TaskStatus::Succeeded {
        let why = reviewer.reason.clone().unwrap_or_else(|| reviewer.status.to_string());
        let error = format!("the reviewer's task {} {}: {why}", reviewer.id, reviewer.status);
        return review_failed(tx, fx, &mut task, error, reviewer.result.clone());
    }
    let output = reviewer.result.clone().unwrap_or_default();
    match parse_answer(&output) {
        Ok(answer) => verdict_given(tx, fx, &mut task, answer),
        Err(why) if !task.loops.reviews.last().is_some_and(|r| r.corrected) => {
            correct_reviewer(tx, fx, &mut task, reviewer, &why)
        }
        Err(why) => {
            let error = format!("the reviewer's answer does not fit the schema ({why})");
            review_failed(tx, fx, &mut task, error, Some(output))
        }
    }
}

/// Asks the reviewer once more, in its session, for an answer in the schema.
fn correct_reviewer(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    reviewer: &Task,
    why: &str,
) -> Result<(), Error> {
    let Some(session_id) = reviewer.session_id.clone() else {
        return review_failed(tx, fx, task, format!("the reviewer's answer does not fit the schema ({why})"), None);
    };
    if let Some(review) = task.loops.reviews.last_mut() {
        review.corrected = true;
    }
    let text = format!("the reviewer's answer does not fit the schema ({why}); asking it once more");
    record_step(tx, task, "review", text, json!({ "corrective": true, "why": why }))?;
    save_task(tx, task)?;
    let mut reviewer = resolve::task(tx, &reviewer.id)?;
    let session = resolve::session(tx, &session_id)?;
    let message = format!(
        "Your answer could not be read: {why}. Answer again with only one JSON object of this shape, and nothing \
         else:\n\n{{\"verdict\": \"approve\" | \"changes_requested\", \"comments\": [{{\"file\": \"path\", \"line\": 12, \"body\": \"…\"}}]}}"
    );
    queue_run(tx, fx, &mut reviewer, RunKind::Resume, message, Some(session), None)?;
    save_task(tx, &reviewer)?;
    Ok(())
}

/// The review failed: the task fails, the reviewer's answer kept on the review.
fn review_failed(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    error: String,
    output: Option<String>,
) -> Result<(), Error> {
    if let Some(review) = task.loops.reviews.last_mut() {
        review.error = Some(error.clone());
        review.output = output;
    }
    record_step(tx, task, "review", format!("review failed: {error}"), json!({ "failed": true }))?;
    fail(tx, fx, task, Some(format!("review failed: {error}")))
}

/// A verdict in the schema: recorded, then acted on.
fn verdict_given(tx: &mut dyn StoreTx, fx: &mut Effects, task: &mut Task, answer: Answer) -> Result<(), Error> {
    let requested = task.loops.reviews.iter().filter(|r| r.verdict == Some(Verdict::ChangesRequested)).count() as u32;
    let reviewer = task.loops.reviews.last().map(|r| r.reviewer.clone()).unwrap_or_default();
    if let Some(review) = task.loops.reviews.last_mut() {
        review.verdict = Some(answer.verdict);
        review.comments = answer.comments.clone();
    }
    let n = match answer.comments.len() {
        1 => "1 comment".to_owned(),
        n => format!("{n} comments"),
    };
    let comments = json!({ "verdict": answer.verdict, "comments": answer.comments });
    if answer.verdict == Verdict::Approve {
        record_step(tx, task, "review", format!("{reviewer} approved the work ({n})"), comments)?;
        return succeed(tx, fx, task, None);
    }
    let allowed = task.loops.review_rounds;
    if requested >= allowed {
        let reason = format!(
            "{reviewer} still requests changes after {}; `baton merge --force` lands it anyway",
            rounds(allowed)
        );
        record_step(tx, task, "review", reason.clone(), comments)?;
        return succeed(tx, fx, task, Some(reason));
    }
    let round = requested + 1;
    record_step(
        tx,
        task,
        "review",
        format!("{reviewer} requested changes ({n}); back to the author (round {round} of {allowed})"),
        comments,
    )?;
    let Some(session_id) = task.session_id.clone() else { return succeed(tx, fx, task, None) };
    let session = resolve::session(tx, &session_id)?;
    let mut message = String::new();
    message.push_str(&format!(
        "A reviewer ({reviewer}) read your work and asks for changes (round {round} of {allowed}). Address each \
         comment, commit, and keep the checks passing; the work is reviewed again when you finish.\n\n"
    ));
    message.push_str(&comment_list(&answer.comments));
    message.push_str(&reminder(task, &session));
    queue_run(tx, fx, task, RunKind::Resume, message, Some(session), None)?;
    save_task(tx, task)?;
    Ok(())
}

/// "1 round", "2 rounds".
fn rounds(n: u32) -> String {
    if n == 1 { "1 round".to_owned() } else { format!("{n} rounds") }
}

/// Review comments as a list, each with its file and line.
pub fn comment_list(comments: &[ReviewComment]) -> String {
    let mut list = String::new();
    for c in comments {
        let place = match (&c.file, c.line) {
            (Some(f), Some(l)) => format!("`{f}:{l}` — "),
            (Some(f), None) => format!("`{f}` — "),
            _ => String::new(),
        };
        list.push_str(&format!("- {place}{}\n", c.body.trim()));
    }
    list
}

/// What the forge said of a task's pull request (failed check runs, a review
/// requesting changes), acted on once each: the agent is resumed with all of it
/// in one turn while fix attempts are left. What comes while the agent works is
/// kept on the pull request and given when it is idle again (a check run's, only
/// if no other commit was pushed meanwhile). Whether the agent was resumed.
pub fn forge_feedback(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    items: Vec<Feedback>,
) -> Result<bool, Error> {
    let Some(pr) = task.pr.as_mut() else { return Ok(false) };
    let pushed = pr.pushed.clone();
    let mut items: Vec<Feedback> = items
        .into_iter()
        .filter(|f| !pr.handled.contains(&f.key) && f.commit.as_ref().is_none_or(|c| Some(c) == pushed.as_ref()))
        .collect();
    items.dedup_by(|a, b| a.key == b.key);
    if items.is_empty() {
        return Ok(false);
    }
    if task.status != TaskStatus::Succeeded {
        for f in items {
            if !pr.waiting.iter().any(|w| w.key == f.key) {
                pr.waiting.push(f);
            }
        }
        save_task(tx, task)?;
        return Ok(false);
    }
    pr.waiting.retain(|w| !items.iter().any(|f| f.key == w.key));
    pr.handled.extend(items.iter().map(|f| f.key.clone()));
    let summary = items.iter().map(|f| f.summary.as_str()).collect::<Vec<_>>().join("; ");
    pr.last_feedback = Some(summary.clone());
    let keys: Vec<&str> = items.iter().map(|f| f.key.as_str()).collect();
    let allowed = task.loops.fix_attempts;
    if task.loops.forge_fixes >= allowed {
        let text = format!("{summary}; no fix attempts are left ({allowed} used), so a person must look");
        record_step(tx, task, "forge", text, json!({ "keys": keys, "gave_up": true }))?;
        save_task(tx, task)?;
        return Ok(false);
    }
    let Some(session_id) = task.session_id.clone() else { return Ok(false) };
    let session = resolve::session(tx, &session_id)?;
    task.loops.forge_fixes += 1;
    let attempt = task.loops.forge_fixes;
    let text = format!("{summary}; resuming the agent to fix it (attempt {attempt} of {allowed})");
    record_step(tx, task, "forge", text, json!({ "keys": keys, "attempt": attempt, "of": allowed }))?;
    let said: Vec<&str> = items.iter().map(|f| f.message.trim_end()).collect();
    let message = format!("{}\n\n(Fix attempt {attempt} of {allowed}.){}", said.join("\n\n"), reminder(task, &session));
    queue_run(tx, fx, task, RunKind::Resume, message, Some(session), None)?;
    save_task(tx, task)?;
    Ok(true)
}

/// A task in review is stopped: its reviewer's task is stopped too.
pub(crate) fn stop_review(tx: &mut dyn StoreTx, fx: &mut Effects, task: &Task, reason: &str) -> Result<(), Error> {
    let Some(reviewer_id) = task.loops.reviews.last().and_then(|r| r.task_id.clone()) else { return Ok(()) };
    if let Some(reviewer) = tx.task(&reviewer_id)?
        && !reviewer.status.is_finished()
    {
        stop_task(tx, fx, &reviewer.id, Some(format!("the reviewed task was stopped: {reason}")))?;
    }
    Ok(())
}

/// Refuses to merge a reviewer's task (its branch is a throwaway copy of the
/// reviewed one), and a reviewed task whose last verdict is not `approve`,
/// unless forced.
pub fn merge_gate(task: &Task, force: bool) -> Result<(), Error> {
    if let Some(reviewed) = &task.review_of {
        return Err(Error::conflict(format!(
            "task {} is the review of task {reviewed}: its branch is a copy for reading and is never merged",
            task.id
        )));
    }
    if force || task.loops.review_by.is_none() || task.loops.approved_at(task.git.head.as_deref()) {
        return Ok(());
    }
    let last = match task.loops.reviews.last() {
        Some(r) => match r.verdict {
            Some(Verdict::Approve) => "its work changed since the reviewer approved it".to_owned(),
            Some(Verdict::ChangesRequested) => "its last verdict is changes_requested".to_owned(),
            None => "its review did not give a verdict".to_owned(),
        },
        None => "it was never reviewed".to_owned(),
    };
    Err(Error::ReviewRequired {
        message: format!("task {} needs its reviewer's approval and {last}; `--force` merges it anyway", task.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_noisy_text_and_checked_against_the_schema() {
        let ok = parse_answer("Here it is:\n```json\n{\"verdict\": \"approve\", \"comments\": []}\n```").unwrap();
        assert_eq!(ok.verdict, Verdict::Approve);
        let changes = parse_answer(
            r#"{"verdict":"changes_requested","comments":[{"file":"a.rs","line":3,"body":"name it"},{"body":"tests"}]}"#,
        )
        .unwrap();
        assert_eq!(changes.comments.len(), 2);
        assert_eq!(changes.comments[0].line, Some(3));
        for bad in [
            "LGTM",
            r#"{"verdict":"maybe"}"#,
            r#"{"verdict":"approve","score":5}"#,
            r#"{"verdict":"changes_requested","comments":[]}"#,
            r#"{"verdict":"changes_requested","comments":[{"body":" "}]}"#,
            r#"{"verdict":"approve","comments":[{"file":"a","line":"x","body":"b"}]}"#,
            r#"{"comments":[]}"#,
        ] {
            assert!(parse_answer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn comments_are_listed_with_their_place() {
        let c = |file: Option<&str>, line, body: &str| ReviewComment {
            file: file.map(str::to_owned),
            line,
            body: body.into(),
        };
        let list = comment_list(&[
            c(Some("a.rs"), Some(3), "name it"),
            c(Some("b.rs"), None, " test it "),
            c(None, None, "ok"),
        ]);
        assert_eq!(list, "- `a.rs:3` — name it\n- `b.rs` — test it\n- ok\n");
    }
}
