//! Loading agent definitions from a repository: `.claude/agents/*.md` (Claude
//! Code's own files, used unchanged) and `.baton/agents/*.md`. When both define
//! the same name, Baton's file wins.

use std::path::{Path, PathBuf};

use baton_core::agent::{AgentDef, AgentDefError, ExecutorKind};

/// A definition file that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("agent definition {path}: {error}")]
pub struct LoadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong with it.
    #[source]
    pub error: LoadErrorKind,
}

/// Why a definition file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// It could not be read.
    #[error("could not read the file")]
    Read(#[source] std::io::Error),
    /// Its content is not a valid definition.
    #[error(transparent)]
    Invalid(#[from] AgentDefError),
}

/// The definitions of a repository, and the files that were refused.
pub fn load_repository(root: &Path) -> (Vec<AgentDef>, Vec<LoadError>) {
    let mut defs: Vec<AgentDef> = Vec::new();
    let mut errors = Vec::new();
    for dir in [root.join(".claude").join("agents"), root.join(".baton").join("agents")] {
        let (found, errs) = load_dir(&dir, ExecutorKind::ClaudeCode);
        errors.extend(errs);
        for def in found {
            defs.retain(|d| d.name != def.name);
            defs.push(def);
        }
    }
    (defs, errors)
}

/// The `*.md` definitions in one directory (none when it does not exist).
pub fn load_dir(dir: &Path, default_executor: ExecutorKind) -> (Vec<AgentDef>, Vec<LoadError>) {
    let mut defs = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (defs, errors);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md") && p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let result = std::fs::read_to_string(&path).map_err(LoadErrorKind::Read).and_then(|text| {
            AgentDef::from_markdown(&text, &stem, &path.display().to_string(), default_executor)
                .map_err(LoadErrorKind::from)
        });
        match result {
            Ok(def) => defs.push(def),
            Err(error) => errors.push(LoadError { path, error }),
        }
    }
    (defs, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baton_files_override_claude_files() {
        let dir = tempfile::tempdir().unwrap();
        let claude = dir.path().join(".claude/agents");
        let baton = dir.path().join(".baton/agents");
        std::fs::create_dir_all(&claude).unwrap();
        std::fs::create_dir_all(&baton).unwrap();
        std::fs::write(claude.join("rev.md"), "---\nname: rev\ndescription: from claude\n---\nx").unwrap();
        std::fs::write(claude.join("other.md"), "---\ndescription: only claude\n---\ny").unwrap();
        std::fs::write(baton.join("rev.md"), "---\nname: rev\ndescription: from baton\ncommand: [cat]\n---\n").unwrap();
        std::fs::write(baton.join("broken.md"), "no front matter").unwrap();
        std::fs::write(baton.join("notes.txt"), "ignored").unwrap();
        let (defs, errors) = load_repository(dir.path());
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["other", "rev"]);
        assert_eq!(defs[1].description, "from baton");
        assert_eq!(defs[1].executor, ExecutorKind::Command);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].path.ends_with("broken.md"));
    }
}
