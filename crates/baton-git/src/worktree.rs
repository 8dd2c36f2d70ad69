//! A task's worktree and branch: create, save, describe, remove.

use std::path::{Path, PathBuf};

use baton_core::names::validate_branch_name;

use crate::{Git, GitError};

/// Where and how a task's working tree should exist.
///
/// A task works in a repository of its own (a working tree with its `.git`
/// directory inside), not in a worktree of the project: its commits and refs stay
/// there, and reach the project only when the launcher pushes the task's branch.
/// It borrows every object from `objects` (the launcher's mirror of the project,
/// through `objects/info/alternates`), so creating it copies nothing.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The working tree (its repository is `path/.git`).
    pub path: &'a Path,
    /// The objects directory it borrows from (read-only to it).
    pub objects: &'a Path,
    /// The task's branch.
    pub branch: &'a str,
    /// The commit a new branch starts from.
    pub base_commit: &'a str,
    /// The branch's last pushed commit, when it has one (a run on another host).
    pub head: Option<&'a str>,
    /// A newer snapshot of the working tree to restore on top of it.
    pub checkpoint: Option<&'a str>,
    /// Prerequisites' commits merged into a new branch, in order (name, commit).
    pub prerequisites: &'a [(String, String)],
}

/// A working tree ready for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Whether it was created now (a first run on this host) rather than found.
    pub created: bool,
    /// The branch's commit now.
    pub head: String,
}

fn invalid(what: &str, why: String) -> GitError {
    GitError::Failed { args: what.to_owned(), stderr: why, code: None }
}

/// Makes sure the task's working tree exists on its branch: found as it was, or
/// created from its last pushed commit (with the last checkpoint's files on top),
/// or from the base with the prerequisites merged in. A conflict between
/// prerequisites removes what was created and names the files.
pub async fn prepare(plan: &Plan<'_>) -> Result<Prepared, GitError> {
    validate_branch_name(plan.branch).map_err(|e| invalid("worktree", e.to_string()))?;
    for (name, _) in plan.prerequisites {
        validate_branch_name(name).map_err(|e| invalid("worktree", e.to_string()))?;
    }
    for commit in std::iter::once(plan.base_commit).chain(plan.head).chain(plan.checkpoint) {
        check_object_id(commit)?;
    }
    for (_, commit) in plan.prerequisites {
        check_object_id(commit)?;
    }
    if !plan.path.is_absolute() {
        return Err(invalid("worktree", format!("worktree path {} is not absolute", plan.path.display())));
    }
    if plan.path.join(".git").exists() {
        let wt = Git::new(plan.path);
        let current = wt.current_branch().await?;
        if current.as_deref() != Some(plan.branch) {
            return Err(invalid(
                "worktree",
                format!("{} is on {:?}, not on the task's branch {}", plan.path.display(), current, plan.branch),
            ));
        }
        let head = wt.resolve("HEAD").await?.unwrap_or_default();
        return Ok(Prepared { created: false, head });
    }
    let created = create(plan).await;
    if created.is_err() {
        let _ = std::fs::remove_dir_all(plan.path);
    }
    created
}

/// Makes an empty repository at `path` that borrows `objects`, with an author
/// for the agent's own commits when the host has none.
async fn init_borrowing(path: &Path, objects: &Path) -> Result<Git, GitError> {
    std::fs::create_dir_all(path).map_err(GitError::Spawn)?;
    let wt = Git::new(path);
    wt.run(["init", "-q", "--template="]).await?;
    set_alternates(&path.join(".git"), &[objects.to_owned()]).map_err(GitError::Spawn)?;
    if !wt.identity_env().await?.is_empty() {
        // The agent's own commits need an author too.
        wt.run(["config", "user.name", "Baton agent"]).await?;
        wt.run(["config", "user.email", "baton@localhost"]).await?;
    }
    Ok(wt)
}

/// Makes a spare task repository at `path`: borrowing `objects`, its files
/// checked out at `commit` with no branch yet. [`adopt_spare`] turns it into a
/// task's working tree in microseconds.
pub async fn make_spare(path: &Path, objects: &Path, commit: &str) -> Result<(), GitError> {
    check_object_id(commit)?;
    let made = async {
        let wt = init_borrowing(path, objects).await?;
        wt.run(["checkout", "-q", "--detach", commit]).await
    }
    .await;
    if made.is_err() {
        let _ = std::fs::remove_dir_all(path);
    }
    made.map(|_| ())
}

/// Moves a spare made by [`make_spare`] at `commit` to `path` and puts it on a
/// new `branch` at that commit: the task's working tree, as [`prepare`] would
/// have made it from the base with no prerequisites. `path` must not exist.
pub async fn adopt_spare(spare: &Path, path: &Path, branch: &str, commit: &str) -> Result<Prepared, GitError> {
    validate_branch_name(branch).map_err(|e| invalid("worktree", e.to_string()))?;
    check_object_id(commit)?;
    if path.exists() {
        return Err(invalid("worktree", format!("{} already exists", path.display())));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(GitError::Spawn)?;
    }
    std::fs::rename(spare, path).map_err(GitError::Spawn)?;
    let git_dir = path.join(".git");
    let refname = format!("refs/heads/{branch}");
    let written = if git_dir.join("reftable").exists() {
        // Refs not kept as files: git writes them.
        let wt = Git::new(path);
        match wt.run(["update-ref", refname.as_str(), commit]).await {
            Ok(_) => wt.run(["symbolic-ref", "HEAD", refname.as_str()]).await.map(|_| ()),
            Err(e) => Err(e),
        }
    } else {
        // A loose ref and HEAD, as `git checkout -b` leaves them.
        let file = git_dir.join(&refname);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(file.parent().unwrap_or(&git_dir))?;
            std::fs::write(&file, format!("{commit}\n"))?;
            std::fs::write(git_dir.join("HEAD"), format!("ref: {refname}\n"))
        };
        write().map_err(GitError::Spawn)
    };
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(path);
        return Err(e);
    }
    Ok(Prepared { created: true, head: commit.to_owned() })
}

async fn create(plan: &Plan<'_>) -> Result<Prepared, GitError> {
    let wt = init_borrowing(plan.path, plan.objects).await?;
    let start = match (plan.checkpoint, plan.head) {
        (Some(checkpoint), _) => format!("{checkpoint}^"),
        (None, Some(head)) => head.to_owned(),
        (None, None) => plan.base_commit.to_owned(),
    };
    wt.run(["checkout", "-q", "-B", plan.branch, start.as_str()]).await?;
    if let Some(checkpoint) = plan.checkpoint {
        // The snapshot's files, as uncommitted changes on top of the agent's HEAD then.
        wt.run(["read-tree", "-u", "--reset", checkpoint]).await?;
        wt.run(["reset", "-q"]).await?;
    } else if plan.head.is_none() {
        merge_prerequisites(&wt, plan.prerequisites).await?;
    }
    let head = wt.resolve("HEAD").await?.unwrap_or_default();
    Ok(Prepared { created: true, head })
}

async fn merge_prerequisites(wt: &Git, prerequisites: &[(String, String)]) -> Result<(), GitError> {
    if prerequisites.is_empty() {
        return Ok(());
    }
    let identity = wt.identity_env().await?;
    for (name, commit) in prerequisites {
        let message = format!("Merge prerequisite {name}");
        let merged = wt
            .run_with_env(
                ["merge", "--no-ff", "--no-edit", "--quiet", "-m", message.as_str(), commit.as_str()],
                &identity,
            )
            .await;
        if let Err(e) = merged {
            let conflicts = wt.run(["diff", "--name-only", "--diff-filter=U"]).await.unwrap_or_default();
            let files: Vec<String> = conflicts.lines().map(str::to_owned).collect();
            if files.is_empty() {
                return Err(e);
            }
            return Err(GitError::Conflict { what: format!("prerequisite {name}"), files });
        }
    }
    Ok(())
}

/// Writes `objects/info/alternates` of the repository at `git_dir`: the object
/// directories it may read from without copying.
pub fn set_alternates(git_dir: &Path, dirs: &[PathBuf]) -> std::io::Result<()> {
    let info = git_dir.join("objects/info");
    std::fs::create_dir_all(&info)?;
    let text: String = dirs.iter().map(|d| format!("{}\n", d.display())).collect();
    std::fs::write(info.join("alternates"), text)
}

/// Refuses anything but a full hexadecimal object id (SHA-1 or SHA-256).
pub fn check_object_id(id: &str) -> Result<(), GitError> {
    if matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(invalid("object id", format!("{id:?} is not a full commit id")))
    }
}

/// Commits everything uncommitted in the working tree (new files included,
/// ignored ones not), without running hooks. Whether there was anything to
/// commit. `git` is the agent's repository as Baton may touch it: run inside the
/// agent's sandbox, since its configuration is the agent's to write.
pub async fn commit_wip(wt: &Git, message: &str) -> Result<bool, GitError> {
    if uncommitted(wt).await?.is_empty() {
        return Ok(false);
    }
    wt.run(["add", "--all"]).await?;
    let (clean, _) = wt.probe(["diff", "--cached", "--quiet"]).await?;
    if clean {
        return Ok(false);
    }
    let identity = wt.identity_env().await?;
    wt.run_with_env(["commit", "--no-verify", "--quiet", "-m", message], &identity).await?;
    Ok(true)
}

/// A snapshot of the working tree that touches nothing the agent sees: its
/// files (uncommitted changes and new files included) go through a temporary
/// index into a commit whose parent is HEAD, kept as `refs/baton/checkpoint`.
/// The snapshot's commit and tree.
pub async fn snapshot(wt: &Git) -> Result<(String, String), GitError> {
    let index = ("GIT_INDEX_FILE", ".git/baton-snapshot.index".to_owned());
    let env = std::slice::from_ref(&index);
    wt.run_with_env(["read-tree", "HEAD"], env).await?;
    wt.run_with_env(["add", "--all"], env).await?;
    let tree = wt.run_with_env(["write-tree"], env).await?.trim().to_owned();
    let mut identity = wt.identity_env().await?;
    identity.push(index);
    let commit = wt
        .run_with_env(
            ["commit-tree", tree.as_str(), "-p", "HEAD", "-m", "Baton checkpoint of the working tree"],
            &identity,
        )
        .await?
        .trim()
        .to_owned();
    wt.run(["update-ref", "refs/baton/checkpoint", commit.as_str()]).await?;
    Ok((commit, tree))
}

/// What a branch changed against the commit it started from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The branch's commit.
    pub head: String,
    /// Its commits since the base, oldest first.
    pub commits: Vec<String>,
    /// The files it changes.
    pub files: Vec<String>,
    /// `git diff --shortstat`.
    pub stat: Option<String>,
}

/// Describes `rev` (a branch, or `HEAD` in a worktree) against `base_commit`, in
/// two git calls.
pub async fn summarize(dir: &Path, base_commit: &str, rev: &str) -> Result<Summary, GitError> {
    let git = Git::new(dir);
    let range = format!("{base_commit}..{rev}");
    let commits: Vec<String> =
        git.run(["rev-list", "--reverse", range.as_str()]).await?.lines().map(str::to_owned).collect();
    let head = commits.last().cloned().unwrap_or_else(|| base_commit.to_owned());
    let numstat = git.run(["diff", "--numstat", "--no-textconv", "-z", base_commit, head.as_str()]).await?;
    let (files, insertions, deletions) = parse_numstat(&numstat);
    let stat = (!files.is_empty()).then(|| {
        let plural = |n: usize, one: &str, many: &str| if n == 1 { one.to_owned() } else { many.to_owned() };
        let mut s = format!("{} {} changed", files.len(), plural(files.len(), "file", "files"));
        if insertions > 0 {
            s.push_str(&format!(", {insertions} {}(+)", plural(insertions, "insertion", "insertions")));
        }
        if deletions > 0 {
            s.push_str(&format!(", {deletions} {}(-)", plural(deletions, "deletion", "deletions")));
        }
        s
    });
    Ok(Summary { head, commits, files, stat })
}

/// Files, insertions and deletions from `git diff --numstat -z` (renames give
/// their new name; binary files count no lines).
pub(crate) fn parse_numstat(text: &str) -> (Vec<String>, usize, usize) {
    let mut files = Vec::new();
    let (mut ins, mut del) = (0usize, 0usize);
    let mut parts = text.split('\0');
    while let Some(entry) = parts.next() {
        let mut fields = entry.splitn(3, '\t');
        let (Some(a), Some(d), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        ins = ins.saturating_add(a.parse::<usize>().unwrap_or(0));
        del = del.saturating_add(d.parse::<usize>().unwrap_or(0));
        if path.is_empty() {
            // A rename: the old and the new name follow as their own fields.
            let _old = parts.next();
            if let Some(new) = parts.next().filter(|n| !n.is_empty()) {
                files.push(new.to_owned());
            }
        } else {
            files.push(path.to_owned());
        }
    }
    files.sort();
    (files, ins, del)
}

/// Files changed in a working tree against `base_commit`, committed or not, new
/// files included (for the conflict radar).
pub async fn changed_files(wt: &Git, base_commit: &str) -> Result<Vec<String>, GitError> {
    let mut files = split_z(&wt.run(["diff", "--name-only", "-z", base_commit]).await?);
    files.extend(split_z(&wt.run(["ls-files", "--others", "--exclude-standard", "-z"]).await?));
    files.sort();
    files.dedup();
    Ok(files)
}

/// Files with uncommitted changes in a working tree (new files included).
pub async fn uncommitted(wt: &Git) -> Result<Vec<String>, GitError> {
    let out = wt.run(["status", "--porcelain=v1", "-z", "--untracked-files=all"]).await?;
    Ok(parse_status_z(&out))
}

/// The paths of `git status --porcelain=v1 -z` (a rename or copy names its new
/// path; its old one follows and is skipped).
pub(crate) fn parse_status_z(out: &str) -> Vec<String> {
    let mut files = Vec::new();
    let mut entries = out.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        if let Some(path) = entry.get(3..).filter(|p| !p.is_empty()) {
            files.push(path.to_owned());
        }
        if entry.starts_with('R') || entry.starts_with('C') {
            entries.next();
        }
    }
    files
}

/// Commits on `branch` that `base` does not have.
pub async fn unmerged_commits(repo: &Path, base: &str, branch: &str) -> Result<Vec<String>, GitError> {
    let range = format!("{base}..{branch}");
    let out = Git::new(repo).run(["log", "--format=%h %s", range.as_str()]).await?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Deletes `branch` of `repo` when `base` has all its commits (else keeps it).
/// Whether it was deleted.
pub async fn delete_branch_if_merged(repo: &Path, branch: &str, base: &str) -> Result<bool, GitError> {
    let git = Git::new(repo);
    if git.branch_exists(branch).await? && unmerged_commits(repo, base, branch).await?.is_empty() {
        git.run(["branch", "-D", branch]).await?;
        return Ok(true);
    }
    Ok(false)
}

/// Bytes used by the files under `dir` (symbolic links not followed).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

pub(crate) fn split_z(text: &str) -> Vec<String> {
    text.split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The patch and `--stat` of commit `rev` against `base` in `repo`.
pub async fn diff(repo: &Path, base: &str, rev: &str) -> Result<(String, String), GitError> {
    diff_under(repo, base, rev, None).await
}

/// The same, its paths under `dir/` (a workset task's repository, named).
pub async fn diff_under(repo: &Path, base: &str, rev: &str, dir: Option<&str>) -> Result<(String, String), GitError> {
    let git = Git::new(repo);
    let prefixes = dir.map(|d| [format!("--src-prefix=a/{d}/"), format!("--dst-prefix=b/{d}/")]);
    let mut args = vec!["diff", "--no-color", "--no-ext-diff", "--no-textconv"];
    if let Some([a, b]) = &prefixes {
        args.extend([a.as_str(), b.as_str()]);
    }
    args.extend([base, rev]);
    let patch = git.run(args.clone()).await?;
    args.insert(1, "--stat");
    let stat = git.run(args).await?;
    Ok((patch, stat))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found while writing the fuzz targets: a status entry whose third byte is
    /// inside a character was sliced there, and numstat's sums could overflow.
    #[test]
    fn fuzz_status_entry_cut_inside_a_character_and_numstat_overflow() {
        assert_eq!(parse_status_z("Aé\0 M ok.rs\0"), ["ok.rs"]);
        assert!(parse_status_z("é\0").is_empty());
        let huge = format!("{m}\t{m}\ta\0{m}\t1\tb\0", m = usize::MAX);
        let (files, ins, del) = parse_numstat(&huge);
        assert_eq!((files.len(), ins, del), (2, usize::MAX, usize::MAX));
        let (files, _, _) = parse_numstat("1\t1\t\0old\0\0");
        assert!(files.is_empty(), "a rename without a new name names no file");
    }
}
