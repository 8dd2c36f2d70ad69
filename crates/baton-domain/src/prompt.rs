//! Rendering a worker's prompt: the task, the project's context, what its
//! prerequisites produced, and the checks its work must pass.
//!
//! An agent may define `prompt_template` with placeholders; without one, the prompt
//! is the task with a section for each of those that has something to say.

use baton_core::agent::AgentDef;
use baton_core::model::{Project, Task};
use baton_store::StoreRead;

use crate::Error;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] =
    &["task", "title", "task_id", "project", "project_context", "branch", "base_branch", "prerequisites", "checks"];

/// The results of a task's prerequisites, one section each.
fn prerequisites(r: &dyn StoreRead, task: &Task) -> Result<String, Error> {
    let mut text = String::new();
    for id in &task.depends_on {
        let Some(dep) = r.task(id)? else { continue };
        let result = dep.result.as_deref().unwrap_or("(no result was reported)");
        text.push_str(&format!("### {} — {}\n{}\n\n", dep.id, dep.title, result.trim()));
    }
    Ok(text.trim_end().to_owned())
}

fn checks(task: &Task) -> String {
    task.checks.iter().map(|c| format!("- `{c}`")).collect::<Vec<_>>().join("\n")
}

/// The prompt for the first turn of `task`.
pub fn render(r: &dyn StoreRead, task: &Task, agent: &AgentDef, project: &Project) -> Result<String, Error> {
    let prerequisites = prerequisites(r, task)?;
    let checks = checks(task);
    let context = project.settings.context.clone().unwrap_or_default();
    let Some(template) = &agent.prompt_template else {
        let mut text = task.prompt.trim().to_owned();
        if !context.trim().is_empty() {
            text.push_str(&format!("\n\n## Project\n{}", context.trim()));
        }
        if !prerequisites.is_empty() {
            text.push_str(&format!("\n\n## Results of the tasks this one builds on\n{prerequisites}"));
        }
        if !checks.is_empty() {
            text.push_str(&format!("\n\n## Acceptance checks\nThese commands must pass in your working directory when you are done:\n{checks}"));
        }
        return Ok(text);
    };
    let value = |name: &str| -> String {
        match name {
            "task" => task.prompt.clone(),
            "title" => task.title.clone(),
            "task_id" => task.id.to_string(),
            "project" => project.name.clone(),
            "project_context" => context.clone(),
            "branch" => task.git.branch.clone().unwrap_or_default(),
            "base_branch" => task.git.base_branch.clone().unwrap_or_default(),
            "prerequisites" => prerequisites.clone(),
            "checks" => checks.clone(),
            _ => String::new(),
        }
    };
    Ok(fill(template, value))
}

/// Replaces `{{name}}` placeholders (spaces inside the braces allowed).
fn fill(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("}}") {
            Some(end) => {
                let name = rest[start + 2..start + 2 + end].trim();
                if PLACEHOLDERS.contains(&name) {
                    out.push_str(&value(name));
                } else {
                    out.push_str(&rest[start..start + 4 + end]);
                }
                rest = &rest[start + 4 + end..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholders a template uses that Baton does not know.
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start + 2..].find("}}") else { break };
        let name = rest[start + 2..start + 2 + end].trim();
        if !PLACEHOLDERS.contains(&name) {
            unknown.push(name.to_owned());
        }
        rest = &rest[start + 4 + end..];
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_unknown_ones_kept() {
        let out = fill("Do {{ task }} in {{project}}; {{nope}} {{", |n| format!("<{n}>"));
        assert_eq!(out, "Do <task> in <project>; {{nope}} {{");
        assert_eq!(unknown_placeholders("{{task}} {{ nope }} {{checks}}"), ["nope"]);
    }
}
