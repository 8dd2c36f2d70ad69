//! `baton diff`, `baton merge`, `baton clean`.

use baton_client::{Client, ClientError, encode};
use baton_core::api::{CleanReport, CleanRequest, Diff, ErrorCode, MergeTask};
use baton_core::model::{MergeStrategy, Task};

use crate::cli::{CleanArgs, DiffArgs, IdArgs, MergeArgs, Strategy};
use crate::error::CliError;
use crate::output::print_json;

pub async fn diff(client: &Client, args: DiffArgs) -> Result<u8, CliError> {
    let diff: Diff = client.get(&format!("/api/tasks/{}/diff", encode(&args.id))).await?;
    if args.json {
        print_json(&diff);
    } else if args.stat {
        print!("{}", diff.stat);
        for f in &diff.untracked {
            println!(" {f} (new, not committed yet)");
        }
    } else {
        print!("{}", diff.patch);
        for f in &diff.untracked {
            eprintln!("new file, not committed yet: {f}");
        }
    }
    Ok(0)
}

pub async fn merge(client: &Client, args: MergeArgs) -> Result<u8, CliError> {
    let strategy = args.strategy.map(|s| match s {
        Strategy::Merge => MergeStrategy::Merge,
        Strategy::Squash => MergeStrategy::Squash,
        Strategy::Rebase => MergeStrategy::Rebase,
    });
    let result: Result<Task, ClientError> = client
        .post(&format!("/api/tasks/{}/merge", encode(&args.id)), &MergeTask { strategy, force: args.force })
        .await;
    match result {
        Ok(task) => {
            if args.json {
                print_json(&task);
            } else {
                let commit = task.git.merged_commit.as_deref().map(|c| &c[..c.len().min(12)]).unwrap_or("?");
                let base = task.git.base_branch.as_deref().unwrap_or("the base");
                println!("merged {} into {base} ({commit})", task.id);
            }
            Ok(0)
        }
        Err(ClientError::Api { code: ErrorCode::MergeConflict, message, details, .. }) => {
            if args.json {
                print_json(&details);
            }
            eprintln!("error: {message}");
            if let Some(files) = details.as_ref().and_then(|d| d["files"].as_array()) {
                for f in files {
                    eprintln!("  conflict: {}", f.as_str().unwrap_or(""));
                }
            }
            Ok(4)
        }
        Err(e) => Err(e.into()),
    }
}

/// `baton pr`: push the task's branch and open its pull request.
pub async fn pr(client: &Client, args: IdArgs) -> Result<u8, CliError> {
    let task: Task = client.post(&format!("/api/tasks/{}/pr", encode(&args.id)), &serde_json::json!({})).await?;
    if args.json {
        print_json(&task);
    } else if let Some(pr) = &task.pr {
        println!("opened pull request #{} for {}: {}", pr.number, task.id, pr.url);
    }
    Ok(0)
}

fn print_report(r: &CleanReport) {
    let path = r.worktree.as_deref().unwrap_or("-");
    if r.removed {
        println!("removed  {}  {path}", r.task_id);
        return;
    }
    println!("kept     {}  {path}: {}", r.task_id, r.refused.as_deref().unwrap_or(""));
    for f in &r.uncommitted {
        println!("           uncommitted: {f}");
    }
    for c in &r.unmerged_commits {
        println!("           unmerged commit: {c}");
    }
}

pub async fn clean(client: &Client, args: CleanArgs) -> Result<u8, CliError> {
    let req = CleanRequest { force: args.force };
    let mut reports = Vec::new();
    if args.ids.is_empty() {
        reports = client.post("/api/clean", &req).await?;
    } else {
        for id in &args.ids {
            let result: Result<CleanReport, ClientError> =
                client.post(&format!("/api/tasks/{}/clean", encode(id)), &req).await;
            match result {
                Ok(r) => reports.push(r),
                Err(ClientError::Api { code: ErrorCode::Conflict, details: Some(details), .. }) => {
                    match serde_json::from_value::<CleanReport>(details) {
                        Ok(r) => reports.push(r),
                        Err(e) => {
                            return Err(CliError::Unexpected { what: "a clean report", source: Some(e.into()) });
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if args.json {
        print_json(&reports);
    } else if reports.is_empty() {
        eprintln!("nothing to clean");
    } else {
        reports.iter().for_each(print_report);
    }
    Ok(if reports.iter().any(|r| !r.removed) { 4 } else { 0 })
}
