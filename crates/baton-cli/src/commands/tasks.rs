//! `baton ps`, `show`, `logs`, `result`, `stop`, `resume`, `retry`, `approve`.

use baton_client::{Client, encode};
use std::collections::HashMap;

use baton_core::api::{RadarEntry, TaskDetail};
use baton_core::model::Task;
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use serde_json::json;

use super::follow::{self, Show};
use crate::cli::{IdArgs, LogsArgs, PsArgs, ResumeArgs, StopArgs, WaitIdArgs};
use crate::context::text_or_stdin;
use crate::error::CliError;
use crate::output::{EventPrinter, ago, bytes, cut, print_json, span, table};

/// Finished tasks older than this are hidden by `baton ps` without `--all`.
const PS_RECENT_MS: i64 = 24 * 3600 * 1000;

/// How many of the newest tasks `baton ps` looks among for ones finished lately.
const PS_RECENT_TASKS: u32 = 100;

pub async fn ps(client: &Client, args: PsArgs) -> Result<u8, CliError> {
    let project = args.project.as_deref().map(|p| format!("&project={}", encode(p))).unwrap_or_default();
    let now = Timestamp::now();
    let tasks: Vec<Task> = match (&args.status, args.all) {
        (Some(s), _) => client.tasks(&format!("limit=500{project}&status={}", encode(s))).await?,
        (None, true) => client.all_tasks(project.trim_start_matches('&')).await?,
        // What is open, and what finished lately among the newest: two short
        // reads, however long the history.
        (None, false) => {
            let open: Vec<&str> = TaskStatus::ALL.iter().filter(|s| !s.is_finished()).map(|s| s.as_str()).collect();
            let mut tasks = client.tasks(&format!("limit=500{project}&status={}", open.join(","))).await?;
            let recent = client.tasks(&format!("limit={PS_RECENT_TASKS}{project}")).await?;
            tasks.extend(recent.into_iter().filter(|t| t.status.is_finished()));
            tasks.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| b.id.as_str().cmp(a.id.as_str())));
            tasks.dedup_by(|a, b| a.id == b.id);
            tasks.retain(|t| !t.status.is_finished() || now.millis_since(t.updated_at) < PS_RECENT_MS);
            tasks
        }
    };
    if args.json {
        print_json(&tasks);
        return Ok(0);
    }
    if tasks.is_empty() {
        eprintln!("no tasks");
        return Ok(0);
    }
    let mut overlaps: HashMap<String, Vec<String>> = HashMap::new();
    for project in client.projects().await? {
        let radar: Vec<RadarEntry> = client.get(&format!("/api/projects/{}/radar", project.id)).await?;
        for entry in radar {
            let others = entry.overlaps.iter().map(|o| o.task_id.short()[..4].to_owned()).collect();
            overlaps.insert(entry.task_id.to_string(), others);
        }
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let elapsed = match (t.started_at, t.finished_at) {
                (Some(s), Some(f)) => span(f.millis_since(s)),
                (Some(s), None) => span(now.millis_since(s)),
                _ => "-".into(),
            };
            vec![
                t.id.to_string(),
                t.status.to_string(),
                t.agent.clone(),
                ago(t.created_at),
                elapsed,
                format!("${:.2}", t.usage.cost_usd),
                t.git.disk_bytes.map(bytes).unwrap_or_else(|| "-".into()),
                overlaps.get(t.id.as_str()).map(|o| o.join(",")).unwrap_or_else(|| "-".into()),
                cut(&t.title, 50),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "AGENT", "CREATED", "RAN", "COST", "DISK", "OVERLAPS", "TITLE"], &rows);
    Ok(0)
}

pub async fn show(client: &Client, args: IdArgs) -> Result<u8, CliError> {
    let detail = client.task(&args.id).await?;
    if args.json {
        print_json(&detail);
        return Ok(0);
    }
    print_detail(&detail);
    Ok(0)
}

fn print_detail(d: &TaskDetail) {
    let t = &d.task;
    println!("task     {}  {}", t.id, t.title);
    match &t.reason {
        Some(r) => println!("status   {} ({r})", t.status),
        None => println!("status   {}", t.status),
    }
    println!("agent    {}", t.agent);
    println!("project  {}", t.project_id);
    if !t.depends_on.is_empty() {
        let deps: Vec<String> = t.depends_on.iter().map(ToString::to_string).collect();
        println!("after    {}", deps.join(", "));
    }
    println!("created  {} ({} ago)", t.created_at, ago(t.created_at));
    if let Some(s) = t.started_at {
        println!("started  {s}");
    }
    if let Some(f) = t.finished_at {
        println!("finished {f}");
    }
    if let Some(b) = &t.git.branch {
        println!("branch   {b}");
    }
    if let Some(w) = &t.git.worktree {
        let host = t.git.launcher.as_ref().map(|l| format!(" on {l}")).unwrap_or_default();
        println!("worktree {w}{host}{}", t.git.disk_bytes.map(|b| format!(" ({})", bytes(b))).unwrap_or_default());
    }
    if let Some(isolation) = &t.isolation {
        println!("sandbox: {isolation}");
    }
    if let Some(stat) = &t.git.diff_stat {
        println!(
            "changes  {stat} in {} commit(s){}",
            t.git.commits.len(),
            if t.git.wip_committed { ", WIP committed by Baton" } else { "" }
        );
    }
    match t.git.merge {
        baton_core::model::MergeState::Merged => {
            println!("merged   {}", t.git.merged_commit.as_deref().unwrap_or(""));
        }
        baton_core::model::MergeState::Conflict => println!("merge    refused: conflicts with its base"),
        _ => {}
    }
    for c in &t.check_results {
        let verdict = if c.passed { "passed".to_owned() } else { format!("FAILED (exit {:?})", c.exit_code) };
        println!("check    {} {verdict}", c.command);
    }
    for o in &d.overlaps {
        println!("overlaps {} on {}", o.task_id, o.files.join(", "));
    }
    print_loops(t);
    println!("usage    {} tokens in, {} out, ${:.4}", t.usage.input_tokens, t.usage.output_tokens, t.usage.cost_usd);
    if t.max_retries > 0 {
        println!("retries  {}/{}", t.retries, t.max_retries);
    }
    for s in &d.sessions {
        let agent_session = s.agent_session_id.as_deref().map(|a| format!(" (agent session {a})")).unwrap_or_default();
        println!("session  {} {}{agent_session}", s.id, s.status);
    }
    for r in &d.runs {
        let exit = match (r.exit_code, r.signal) {
            (Some(c), _) => format!(" exit {c}"),
            (None, Some(sig)) => format!(" signal {sig}"),
            _ => String::new(),
        };
        let error = r.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        println!("run      {} {} {}{exit}{error}", r.id, r.kind_name(), r.status);
        if r.kind == baton_core::model::RunKind::Resume {
            let first: String =
                r.message.lines().find(|l| !l.trim().is_empty()).unwrap_or("").chars().take(100).collect();
            println!("           ↳ {first}");
        }
    }
    if let Some(result) = &t.result {
        println!("result\n{}", indent(result));
    }
}

/// The feedback loops: what went back to the agent, the reviews, the pull request.
fn print_loops(t: &baton_core::model::Task) {
    let l = &t.loops;
    let mut fixes = Vec::new();
    for (n, what) in
        [(l.check_fixes, "checks failed"), (l.conflict_fixes, "conflicts"), (l.forge_fixes, "CI or PR reviews")]
    {
        if n > 0 {
            fixes.push(format!("{what}: {n} of {} attempts", l.fix_attempts));
        }
    }
    if !fixes.is_empty() {
        println!("fixes    {}", fixes.join("; "));
    }
    for (i, r) in l.reviews.iter().enumerate() {
        let verdict = match (r.verdict, &r.error) {
            (Some(baton_core::model::Verdict::Approve), _) => "approved".to_owned(),
            (Some(baton_core::model::Verdict::ChangesRequested), _) => "changes requested".to_owned(),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "in progress".to_owned(),
        };
        let by = r.task_id.as_ref().map_or_else(|| "a person".to_owned(), ToString::to_string);
        println!("review   {} by {} ({by}): {verdict}", i + 1, r.reviewer);
        for c in &r.comments {
            let place = match (&c.file, c.line) {
                (Some(f), Some(n)) => format!("{f}:{n}: "),
                (Some(f), None) => format!("{f}: "),
                _ => String::new(),
            };
            println!("           - {place}{}", c.body);
        }
    }
    if let Some(pr) = &t.pr {
        let state = match pr.state {
            baton_core::model::PrState::Open => "open",
            baton_core::model::PrState::Closed => "closed",
            baton_core::model::PrState::Merged => "merged",
        };
        println!("pr       #{} {state} {}", pr.number, pr.url);
    }
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for baton_core::model::Run {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            baton_core::model::RunKind::Start => "start",
            baton_core::model::RunKind::Resume => "resume",
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

pub async fn logs(client: &Client, args: LogsArgs) -> Result<u8, CliError> {
    let detail = client.task(&args.id).await?;
    let id = detail.task.id.to_string();
    if args.follow && !detail.task.status.is_at_rest() {
        let stream = follow::open(client, &id, Some(0)).await?;
        let show = if args.json { Show::Json } else { Show::Progress };
        if show == Show::Progress {
            // `logs -f` prints to stdout like `logs`; progress lines go to stderr only for `run --wait`.
            let done = follow_to_stdout(client, &id, stream).await?;
            return Ok(follow::exit_code(&done));
        }
        let done = follow::follow(client, &id, stream, show).await?;
        return Ok(follow::exit_code(&done));
    }
    let mut printer = EventPrinter::default();
    let mut after = 0;
    loop {
        let page = client.task_events(&id, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in &page {
            if args.json {
                println!("{}", serde_json::to_string(e).unwrap_or_default());
            } else if let Some(line) = printer.line(e) {
                println!("{line}");
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    Ok(0)
}

/// Like [`follow::follow`], printing lines on stdout.
async fn follow_to_stdout(client: &Client, id: &str, mut stream: baton_client::EventStream) -> Result<Task, CliError> {
    let mut printer = EventPrinter::default();
    loop {
        match stream.next().await {
            Ok(Some(e)) => {
                if let Some(line) = printer.line(&e) {
                    println!("{line}");
                }
                if e.kind == baton_core::event::EventKind::Task
                    && let Some(status) =
                        e.data["status"].as_str().and_then(|s| s.parse::<baton_core::status::TaskStatus>().ok())
                    && status.is_at_rest()
                {
                    return Ok(client.task(id).await?.task);
                }
            }
            _ => {
                let detail = client.task(id).await?;
                if detail.task.status.is_at_rest() {
                    return Ok(detail.task);
                }
                return follow::follow(client, id, follow::open(client, id, None).await?, Show::Quiet).await;
            }
        }
    }
}

pub async fn result(client: &Client, args: IdArgs) -> Result<u8, CliError> {
    let t = client.task(&args.id).await?.task;
    if args.json {
        print_json(&json!({ "id": t.id, "status": t.status, "result": t.result, "reason": t.reason }));
        return Ok(0);
    }
    match &t.result {
        Some(r) => println!("{r}"),
        None if !t.status.is_at_rest() => {
            return Err(CliError::NoResult { task: t.id.to_string(), status: t.status });
        }
        None => eprintln!(
            "task {} {} without a result{}",
            t.id,
            t.status,
            t.reason.map(|r| format!(": {r}")).unwrap_or_default()
        ),
    }
    Ok(0)
}

/// Acts on a task; with `wait`, follows it until it settles.
async fn act<F, Fut>(client: &Client, id: &str, wait: bool, json_out: bool, action: F) -> Result<u8, CliError>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Task, baton_client::ClientError>>,
{
    let id = client.task(id).await?.task.id.to_string();
    let stream = if wait { Some(follow::open(client, &id, None).await?) } else { None };
    let task = action(id.clone()).await?;
    let Some(stream) = stream else {
        if json_out {
            print_json(&task);
        } else {
            println!("{} {}", task.id, task.status);
        }
        return Ok(0);
    };
    let done = if task.status.is_at_rest() {
        task
    } else {
        follow::follow(client, &id, stream, if json_out { Show::Quiet } else { Show::Progress }).await?
    };
    if json_out {
        print_json(&done);
    } else {
        follow::announce(&done);
    }
    Ok(follow::exit_code(&done))
}

pub async fn stop(client: &Client, args: StopArgs) -> Result<u8, CliError> {
    let reason = args.reason.clone();
    let code =
        act(client, &args.id, args.wait, args.json, |id| async move { client.stop_task(&id, reason).await }).await?;
    // A stopped task is cancelled: that is what was asked for.
    Ok(if args.wait && code == 1 { 0 } else { code })
}

pub async fn resume(client: &Client, args: ResumeArgs) -> Result<u8, CliError> {
    let message = text_or_stdin(&args.message)?;
    let req = baton_core::api::ResumeTask { message, budget_usd: args.budget };
    act(client, &args.id, args.wait, args.json, |id| async move { client.resume_task_with(&id, &req).await }).await
}

pub async fn retry(client: &Client, args: WaitIdArgs) -> Result<u8, CliError> {
    act(client, &args.id, args.wait, args.json, |id| async move { client.task_action(&id, "retry").await }).await
}

pub async fn approve(client: &Client, args: IdArgs) -> Result<u8, CliError> {
    act(client, &args.id, false, args.json, |id| async move { client.task_action(&id, "approve").await }).await
}
