//! Names that reach the file system or git: their rules, and slugs.
//!
//! User text never becomes a git option, a shell word or a path outside the place
//! it belongs to: every name is checked here before it is used.

/// A name that breaks the rules for its kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {why}")]
pub struct NameError {
    /// The kind of name (agent name, branch name, ...).
    pub kind: &'static str,
    /// What was given.
    pub value: String,
    /// The rule it breaks.
    pub why: &'static str,
}

fn refuse(kind: &'static str, value: &str, why: &'static str) -> NameError {
    NameError { kind, value: value.to_owned(), why }
}

/// [`validate_simple_name`]'s rules as a regular expression, for the API's
/// document.
pub const SIMPLE_NAME_PATTERN: &str = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// An agent's name: a simple name other than `status` (the cluster view's path).
pub const AGENT_NAME_PATTERN: &str = r"^(?!status$)(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$";

/// An agent's name, or `*` for every agent.
pub const AGENT_OR_ALL_PATTERN: &str = r"^(?:\*|(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63})$";

/// [`validate_branch_name`]'s rules as a regular expression, for the API's document.
pub const BRANCH_NAME_PATTERN: &str = r"^(?!-)(?!/)(?!@$)(?!\.)(?!.*//)(?!.*\.\.)(?!.*@\{)(?!.*[/.]$)(?!.*/\.)(?!.*\.lock/)(?!.*\.lock$)[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\\~^:?*\[\x00-\x1f\x7f-\x9f]{1,200}$";

/// Text of 1 to `max` characters (given as the schema's `maxLength`), not blank,
/// with no control characters: titles, models, tool names.
pub const LINE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Base64 with padding, as the standard alphabet's strict decoder takes it (the
/// unused bits of the last character zero), white space around it allowed.
pub const BASE64_PATTERN: &str =
    r"^\s*(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?\s*$";

/// A tag or label of text: no white space, no control characters.
pub const TAG_PATTERN: &str =
    r"^[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\x00-\x1f\x7f-\x9f]+$";

/// [`validate_label`]'s rules as a regular expression, for the API's document.
pub const LABEL_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}(=[A-Za-z0-9._-]{1,64})?$";

/// A webhook or trigger secret: `whsec_` and the canonical base64 of 24 to 64
/// bytes.
pub const SECRET_PATTERN: &str = r"^whsec_(?:(?:[A-Za-z0-9+/]{4}){8,20}(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?|(?:[A-Za-z0-9+/]{4}){21}(?:[A-Za-z0-9+/][AQgw]==)?)$";

/// A path inside a repository: relative, no empty or `..` segment, no NUL.
pub const REPO_PATH_PATTERN: &str = r"^(?!/)(?!.*//)(?!.*/$)(?!(?:.*/)?\.\.(?:/|$))[^\x00]+$";

/// A document rule's name pattern: no control characters, no `**`.
pub const DOC_RULE_PATTERN: &str = r"^(?!.*\*\*)[^\x00-\x1f\x7f-\x9f]+$";

/// A `pass_env` pattern: a variable name, or a prefix and `*`; never Baton's own
/// (`BATON_…`, or a prefix of it).
pub const PASS_ENV_PATTERN: &str = r"^(?!BATON_)(?!(?:B|BA|BAT|BATO|BATON)\*?$)[A-Za-z0-9_]+\*?$";

/// [`validate_image`]'s rules as a regular expression.
pub const IMAGE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$";

/// Text with something in it besides white space, as Rust's `trim` sees it (its
/// White_Space, which has U+0085 and not U+FEFF, unlike a regex's `\s`);
/// anchored, as schemathesis's coverage phase cannot pair an unanchored class
/// with a long maxLength.
pub const NOT_BLANK_PATTERN: &str = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// [`validate_media_type`]'s rules as a regular expression, for the API's document.
pub const MEDIA_TYPE_PATTERN: &str = r#"^(?=.{3,255}$)[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*( ?; ?[A-Za-z0-9!#$&^_.+-]+=([A-Za-z0-9!#$&^_.+-]+|"[ !#-:<-\[\]-~]*"))*$"#;

fn media_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
}

fn media_value(v: &str) -> bool {
    let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
    media_token(v) || (quoted && v[1..v.len() - 1].bytes().all(|b| (0x20..0x7f).contains(&b) && !b"\";\\".contains(&b)))
}

/// A media type (`text/markdown`, `application/json; charset=utf-8`): a type and
/// a subtype of RFC 6838's characters (no wildcards), then `; name=value`
/// parameters, a value plain or quoted (printable ASCII without `"`, `;` or
/// `\`); 3 to 255 characters.
pub fn validate_media_type(value: &str) -> Result<(), NameError> {
    const KIND: &str = "media type";
    if value.len() < 3 || value.len() > 255 {
        return Err(refuse(KIND, value, "must be 3 to 255 characters"));
    }
    let parts: Vec<&str> = value.split(';').collect();
    let last = parts.len() - 1;
    for (i, part) in parts.into_iter().enumerate() {
        let part = if i > 0 { part.strip_prefix(' ').unwrap_or(part) } else { part };
        let part = if i < last { part.strip_suffix(' ').unwrap_or(part) } else { part };
        if i == 0 {
            let starts_well = |s: &str| s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
            let essence = part.split_once('/').is_some_and(|(main, sub)| {
                media_token(main) && media_token(sub) && starts_well(main) && starts_well(sub)
            });
            if !essence {
                return Err(refuse(KIND, value, "must be type/subtype, as text/markdown"));
            }
        } else if !part.split_once('=').is_some_and(|(name, v)| media_token(name) && media_value(v)) {
            return Err(refuse(KIND, value, "parameters must be ; name=value"));
        }
    }
    Ok(())
}

/// Whether content of this media type is JSON (`application/json`,
/// `application/problem+json`, `text/json`).
pub fn is_json_media_type(value: &str) -> bool {
    let sub = media_subtype(value);
    sub == "json" || sub.ends_with("+json")
}

/// Whether content of this media type is YAML (`application/yaml`,
/// `text/x-yaml`, `application/vnd.x+yaml`).
pub fn is_yaml_media_type(value: &str) -> bool {
    let sub = media_subtype(value);
    sub == "yaml" || sub == "x-yaml" || sub.ends_with("+yaml")
}

fn media_subtype(value: &str) -> String {
    let essence = value.split(';').next().unwrap_or_default();
    essence.split_once('/').map(|(_, sub)| sub.trim().to_ascii_lowercase()).unwrap_or_default()
}

/// [`validate_doc_name`]'s rules as a regular expression, for the API's document
/// (all but the length).
pub const DOC_NAME_PATTERN: &str = "^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$";

/// Agent and project names: 1 to 64 characters of `[A-Za-z0-9._-]`, starting with a
/// letter or digit.
pub fn validate_simple_name(kind: &'static str, name: &str) -> Result<(), NameError> {
    if name.is_empty() || name.len() > 64 {
        return Err(refuse(kind, name, "must be 1 to 64 characters"));
    }
    if !name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return Err(refuse(kind, name, "must start with a letter or a digit"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(refuse(kind, name, "may only contain letters, digits, '.', '_' and '-'"));
    }
    if name.contains("..") {
        return Err(refuse(kind, name, "must not contain '..'"));
    }
    Ok(())
}

/// A git branch name, by the rules of `git check-ref-format`, and a little stricter:
/// no leading `-` (it would read as an option), no white space or control
/// characters, no `..`, `@{`, `\`, `~^:?*[`, no component starting with `.` or
/// ending with `.lock`, no trailing `/` or `.`.
pub fn validate_branch_name(name: &str) -> Result<(), NameError> {
    const KIND: &str = "branch name";
    if name.is_empty() || name.chars().count() > 200 {
        return Err(refuse(KIND, name, "must be 1 to 200 characters"));
    }
    if name.starts_with('-') {
        return Err(refuse(KIND, name, "must not start with '-'"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(KIND, name, "must not contain white space or control characters"));
    }
    if name.contains("..") || name.contains("@{") || name == "@" {
        return Err(refuse(KIND, name, "must not contain '..' or '@{' or be '@'"));
    }
    if name.chars().any(|c| "\\~^:?*[".contains(c)) {
        return Err(refuse(KIND, name, "must not contain any of \\ ~ ^ : ? * ["));
    }
    if name.ends_with('/') || name.ends_with('.') || name.starts_with('/') || name.contains("//") {
        return Err(refuse(KIND, name, "must not start or end with '/', end with '.', or contain '//'"));
    }
    if name.split('/').any(|c| c.starts_with('.') || c.ends_with(".lock")) {
        return Err(refuse(KIND, name, "no component may start with '.' or end with '.lock'"));
    }
    Ok(())
}

/// A container image reference (`alpine:3.20`, `registry.example/team/agent@sha256:…`):
/// 1 to 255 characters of letters, digits and `._-/:@`, not starting with `-`.
pub fn validate_image(image: &str) -> Result<(), NameError> {
    const KIND: &str = "container image";
    if image.is_empty() || image.len() > 255 {
        return Err(refuse(KIND, image, "must be 1 to 255 characters"));
    }
    if !image.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) {
        return Err(refuse(KIND, image, "must start with a letter or a digit"));
    }
    if !image.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b)) {
        return Err(refuse(KIND, image, "may only contain letters, digits and . _ - / : @"));
    }
    Ok(())
}

/// A launcher label: `name` or `name=value`, each part 1 to 64 characters of
/// `[A-Za-z0-9._-]`.
pub fn validate_label(label: &str) -> Result<(), NameError> {
    const KIND: &str = "label";
    let ok = |part: &str| {
        !part.is_empty() && part.len() <= 64 && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let valid = match label.split_once('=') {
        Some((k, v)) => ok(k) && ok(v),
        None => ok(label),
    };
    if !valid {
        return Err(refuse(KIND, label, "must be name or name=value, of letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// Document names: 1 to 200 characters of `[A-Za-z0-9._-]` in `/`-separated
/// segments (`notes/api.md`); no empty segment, no segment starting with `.` (so no
/// `..`), no leading or trailing `/`.
pub fn validate_doc_name(name: &str) -> Result<(), NameError> {
    const KIND: &str = "document name";
    if name.is_empty() || name.len() > 200 {
        return Err(refuse(KIND, name, "must be 1 to 200 characters"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b)) {
        return Err(refuse(KIND, name, "may only contain letters, digits, '.', '_', '-' and '/'"));
    }
    if name.split('/').any(|s| s.is_empty() || s.starts_with('.')) {
        return Err(refuse(
            KIND,
            name,
            "no segment may be empty or start with '.' (no '..', no leading or trailing '/')",
        ));
    }
    Ok(())
}

/// A short, safe slug of a title for a branch name: lowercase ASCII letters and
/// digits joined by single dashes, at most 40 characters; `task` when nothing is left.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut dash = false;
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c);
        } else {
            dash = true;
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() { "task".to_owned() } else { slug }
}

/// A task's branch: `baton/<short-id>-<slug-of-title>`.
pub fn task_branch(id: &crate::ids::TaskId, title: &str) -> String {
    format!("baton/{}-{}", id.short(), slugify(title))
}

/// A title from a prompt: its first non-empty line, cut to 80 characters.
pub fn title_from_prompt(prompt: &str) -> String {
    let line = prompt.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("untitled");
    if line.chars().count() > 80 {
        let cut: String = line.chars().take(79).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_names_follow_git_rules() {
        for ok in ["baton/4k9m-fix-login", "main", "feature/x.y", "a-b_c"] {
            assert!(validate_branch_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "-rf", "a..b", "a b", "a\tb", "a\u{7}b", "a~1", "a^", "x:y", "what?", "a*", "a[", "a\\b", "a/", "a.",
            "/a", "a//b", ".hidden", "x/.y", "a.lock", "x/y.lock", "@", "a@{1}",
        ] {
            assert!(validate_branch_name(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn slugs_are_safe() {
        assert_eq!(slugify("Fix the login bug!"), "fix-the-login-bug");
        assert_eq!(slugify("  --rf /etc/passwd; rm -rf ~ "), "rf-etc-passwd-rm-rf");
        assert_eq!(slugify("../../.."), "task");
        assert_eq!(slugify("日本語"), "task");
        assert_eq!(slugify(&"a".repeat(100)).len(), 40);
        for t in ["-x", "a..b", "x.lock", "$(whoami)", "`id`", "a\nb"] {
            assert!(validate_branch_name(&format!("baton/abc-{}", slugify(t))).is_ok(), "{t}");
        }
    }

    #[test]
    fn simple_names() {
        assert!(validate_simple_name("agent name", "code-reviewer").is_ok());
        assert!(validate_simple_name("agent name", "a.b_c-1").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a..b", "a b", &"x".repeat(65)] {
            assert!(validate_simple_name("agent name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn titles() {
        assert_eq!(title_from_prompt("\n\n  Fix it\nmore"), "Fix it");
        assert_eq!(title_from_prompt(&"x".repeat(100)).chars().count(), 80);
    }

    #[test]
    fn media_types() {
        for ok in ["text/markdown", "application/json; charset=utf-8", "image/svg+xml", "a/b;x=\"y z\"", "a/b ; c=d"] {
            assert!(validate_media_type(ok).is_ok(), "{ok}");
        }
        for bad in ["", "text", "*/*", "text/*", "/x", "a/b;", "a/b; c", "a/b\n", "a/b;c=\"x;y\"", "a/ b", "a/b "] {
            assert!(validate_media_type(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(is_json_media_type("application/problem+json; charset=utf-8") && is_json_media_type("text/JSON"));
        assert!(is_yaml_media_type("application/x-yaml") && !is_yaml_media_type("text/plain"));
    }
}
