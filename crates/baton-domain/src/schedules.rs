//! Work that starts by itself: schedules (a cron expression or an interval,
//! each firing a task linked to its schedule) and incoming webhooks
//! (triggers: a signed POST whose JSON fills a prompt template).
//!
//! Schedules fire from the timers, on the one replica that holds their lease,
//! and each firing moves the schedule's `next_at` by compare-and-set in the
//! transaction that creates its task: one firing per due time, whatever
//! happens. Firings missed while Baton was down follow `catch_up`; a firing
//! does not start while the previous task is open unless `overlap`.

use baton_core::api::CreateTask;
use baton_core::cron::{Cron, parse_every};
use baton_core::ids::{ProjectId, TaskId};
use baton_core::model::Project;
use baton_core::time::Timestamp;
use baton_core::triggers::{CatchUp, CreateSchedule, CreateTrigger, Schedule, Trigger, TriggerHit};
use baton_store::{StoreRead, StoreTx};
use serde_json::{Value, json};

use crate::Error;
use crate::scheduler::Effects;
use crate::state::Config;
use crate::tokens::Caller;

/// How late a firing may be and still count as on time (beyond it, or beyond
/// the schedule's period when that is shorter, it was missed, and `catch_up`
/// decides).
pub const ON_TIME_MS: i64 = 60_000;

/// When a schedule is next due after `after`.
fn next_due(cron: Option<&str>, every_ms: Option<u64>, after: Timestamp) -> Result<Timestamp, Error> {
    match (cron, every_ms) {
        (Some(expr), None) => Cron::parse(expr)
            .map_err(cron_error)?
            .next_after(after)
            .ok_or_else(|| Error::content(format!("cron expression {expr:?} never matches"), json!({ "given": expr }))),
        (None, Some(ms)) => Ok(after.plus_millis(ms as i64)),
        _ => Err(Error::combination("give exactly one of `cron` and `every`")),
    }
}

fn cron_error(e: baton_core::cron::CronError) -> Error {
    Error::InvalidAt {
        message: e.to_string(),
        details: json!({ "field": e.field, "position": e.position, "given": e.given }),
    }
}

/// A schedule from a request, checked: one of cron and every, a cron that
/// parses (its position named), an interval of at least a second, an agent
/// that exists, a prompt.
pub fn check(r: &dyn StoreRead, project: &Project, req: &CreateSchedule, source: &str) -> Result<Schedule, Error> {
    if req.prompt.trim().is_empty() {
        return Err(Error::invalid("a schedule needs a prompt"));
    }
    let every_ms = req
        .every
        .as_deref()
        .map(|e| parse_every(e).map_err(|m| Error::content(m, json!({ "field": "every", "given": e }))))
        .transpose()?;
    if let Some(agent) = &req.agent
        && r.agent(agent)?.is_none()
    {
        return Err(Error::not_found("agent", agent));
    }
    let now = Timestamp::now();
    let next_at = next_due(req.cron.as_deref(), every_ms, now)?;
    let name = req.name.clone().unwrap_or_else(|| baton_core::names::title_from_prompt(&req.prompt));
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("a schedule's name must be 1 to 100 characters"));
    }
    let id = match source {
        "config" => format!("sch-{}-{}", project.id.short(), slug(&name)),
        _ => crate::tokens::random_id("sch-"),
    };
    Ok(Schedule {
        id,
        name,
        project_id: project.id.clone(),
        cron: req.cron.clone(),
        every_ms,
        agent: req.agent.clone(),
        prompt: req.prompt.clone(),
        catch_up: req.catch_up,
        overlap: req.overlap,
        paused: false,
        source: source.into(),
        next_at,
        last_fired_at: None,
        last_task: None,
        last_note: None,
        created_at: now,
    })
}

fn slug(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// Adds a schedule made through the API.
pub fn add(tx: &mut dyn StoreTx, req: CreateSchedule) -> Result<Schedule, Error> {
    let project = crate::resolve::request_project(tx, req.project.as_deref(), None)?;
    let s = check(tx, &project, &req, "api")?;
    if tx.schedules()?.iter().any(|o| o.project_id == project.id && o.name == s.name) {
        return Err(Error::AlreadyExists {
            message: format!("project {} has a schedule named {:?} already", project.name, s.name),
            details: None,
        });
    }
    tx.put_schedule(&s, None)?;
    Ok(s)
}

/// Makes the project's `[[schedules]]` the config schedules it has: new ones
/// added, changed ones replaced (their next time kept when their timing is
/// the same), gone ones removed.
pub fn sync(tx: &mut dyn StoreTx, project: &Project) -> Result<(), Error> {
    let wanted: Vec<Schedule> =
        project.settings.schedules.iter().map(|req| check(tx, project, req, "config")).collect::<Result<_, _>>()?;
    for old in tx.schedules()?.into_iter().filter(|s| s.project_id == project.id && s.source == "config") {
        if !wanted.iter().any(|w| w.id == old.id) {
            tx.delete_schedule(&old.id)?;
        }
    }
    for mut s in wanted {
        if let Some(old) = tx.schedule(&s.id)?
            && old.cron == s.cron
            && old.every_ms == s.every_ms
        {
            (s.next_at, s.last_fired_at, s.last_task, s.last_note, s.paused) =
                (old.next_at, old.last_fired_at, old.last_task, old.last_note, old.paused);
            s.created_at = old.created_at;
        }
        tx.put_schedule(&s, None)?;
    }
    Ok(())
}

/// Pauses or resumes a schedule; a resumed one is next due from now.
pub fn set_paused(tx: &mut dyn StoreTx, id: &str, paused: bool) -> Result<Schedule, Error> {
    let mut s = tx.schedule(id)?.ok_or_else(|| Error::not_found("schedule", id))?;
    if s.paused && !paused {
        s.next_at = next_due(s.cron.as_deref(), s.every_ms, Timestamp::now())?;
    }
    s.paused = paused;
    tx.put_schedule(&s, None)?;
    Ok(s)
}

/// Removes a schedule made through the API (one from a project's
/// `[[schedules]]` is removed there, in the file).
pub fn remove(tx: &mut dyn StoreTx, id: &str) -> Result<(), Error> {
    let s = tx.schedule(id)?.ok_or_else(|| Error::not_found("schedule", id))?;
    if s.source == "config" {
        return Err(Error::conflict(format!(
            "schedule {} comes from the project's [[schedules]]: remove it there",
            s.name
        )));
    }
    tx.delete_schedule(id)?;
    Ok(())
}

/// Fires a schedule due at `now` (once per due time: false when another
/// writer moved it first), or skips it: missed while Baton was down with
/// `catch_up = skip`, or its previous task still open without `overlap`.
pub fn fire(tx: &mut dyn StoreTx, fx: &mut Effects, id: &str, now: Timestamp, config: &Config) -> Result<bool, Error> {
    let Some(mut s) = tx.schedule(id)? else { return Ok(false) };
    if s.paused || s.next_at > now {
        return Ok(false);
    }
    let due = s.next_at;
    // Late: past the grace (a minute, or the period when it is shorter), so
    // at least one due time went by while Baton was down.
    let period = next_due(s.cron.as_deref(), s.every_ms, due)?.millis_since(due);
    let late = now.millis_since(due) > ON_TIME_MS.min(period);
    let open = match &s.last_task {
        Some(t) => tx.task(t)?.is_some_and(|t| !t.status.is_settled()),
        None => false,
    };
    let note = match (late, s.catch_up, open && !s.overlap) {
        (true, CatchUp::Skip, _) => {
            Some(format!("skipped the firing due {due}: missed while Baton was down (catch_up = skip)"))
        }
        (_, _, true) => {
            Some(format!("skipped the firing due {due}: its previous task is still open (overlap = false)"))
        }
        _ => None,
    };
    match note {
        Some(n) => s.last_note = Some(n),
        None => {
            let req = CreateTask {
                project: Some(s.project_id.to_string()),
                prompt: s.prompt.clone(),
                title: Some(s.name.clone()),
                agent: s.agent.clone(),
                ..CreateTask::default()
            };
            let mut new = crate::scheduler::tasks::new_task(tx, &Caller::person(), req, config)?;
            new.asked.origin = Some(format!("schedule {}", s.id));
            let task = crate::scheduler::tasks::insert(tx, fx, new, TaskId::generate())?;
            s.last_fired_at = Some(now);
            s.last_note = Some(format!(
                "fired task {} for the time due {due}{}",
                task.id,
                if late { " (caught up)" } else { "" }
            ));
            s.last_task = Some(task.id);
        }
    }
    s.next_at =
        next_due(s.cron.as_deref(), s.every_ms, if late { now } else { due.max(now.plus_millis(-ON_TIME_MS)) })?;
    if s.next_at <= now {
        s.next_at = next_due(s.cron.as_deref(), s.every_ms, now)?;
    }
    if !tx.put_schedule(&s, Some(due))? {
        return Err(Error::conflict(format!("schedule {} was fired by another coordinator", s.id)));
    }
    Ok(true)
}

/// The placeholders a trigger's template may use besides `{{payload.…}}`.
const TRIGGER_NAMES: &[&str] = &["payload", "webhook_id", "trigger"];

fn template_names(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

/// Adds an incoming-webhook trigger; its secret is in the answer (only then).
pub fn add_trigger(tx: &mut dyn StoreTx, req: CreateTrigger) -> Result<Trigger, Error> {
    baton_core::names::validate_simple_name("trigger name", &req.name)?;
    let project = crate::resolve::request_project(tx, req.project.as_deref(), None)?;
    tx.agent(&req.agent)?.ok_or_else(|| Error::not_found("agent", &req.agent))?;
    if req.template.trim().is_empty() {
        return Err(Error::invalid("a trigger needs a template"));
    }
    let unknown: Vec<String> = template_names(&req.template)
        .into_iter()
        .filter(|n| !TRIGGER_NAMES.contains(&n.as_str()) && !n.starts_with("payload."))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::content(
            format!(
                "the template uses unknown placeholders {}; known: {{{{payload}}}}, {{{{payload.FIELD.…}}}}, {{{{webhook_id}}}}, {{{{trigger}}}}",
                unknown.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", ")
            ),
            json!({ "field": "template", "unknown": unknown }),
        ));
    }
    if tx.trigger(&req.name)?.is_some() {
        return Err(Error::AlreadyExists { message: format!("trigger {} exists already", req.name), details: None });
    }
    let secret = match &req.secret {
        Some(s) => crate::signature::Secret::parse(s).map_err(Error::invalid)?,
        None => crate::signature::Secret::generate(),
    };
    let t = Trigger {
        name: req.name,
        project_id: project.id,
        agent: req.agent,
        template: req.template,
        per_hour: req.per_hour.unwrap_or(60).max(1),
        secret: Some(secret.expose()),
        created_at: Timestamp::now(),
    };
    tx.put_trigger(&t)?;
    Ok(t)
}

fn lookup<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(payload, |v, key| match v {
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => v.get(key),
    })
}

/// The template with the payload's values in it.
pub fn render_trigger(t: &Trigger, webhook_id: &str, payload: &Value) -> String {
    let mut out = String::new();
    let mut rest = t.template.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            rest = &rest[start..];
            break;
        };
        let name = after[..end].trim();
        let value = match name {
            "payload" => serde_json::to_string_pretty(payload).unwrap_or_default(),
            "webhook_id" => webhook_id.to_owned(),
            "trigger" => t.name.clone(),
            n => match n.strip_prefix("payload.").and_then(|p| lookup(payload, p)) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            },
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A delivery to a trigger: a task from its payload, once per webhook id,
/// within its rate. The task, and whether it was made now.
pub fn fire_trigger(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    t: &Trigger,
    webhook_id: &str,
    payload: &Value,
    config: &Config,
) -> Result<(TaskId, bool), Error> {
    if let Some(hit) = tx.trigger_hit(&t.name, webhook_id)? {
        return Ok((hit.task_id, false));
    }
    let now = Timestamp::now();
    let taken = tx.trigger_hits_since(&t.name, now.plus_millis(-3_600_000))?;
    if taken >= u64::from(t.per_hour) {
        return Err(Error::RateLimited {
            message: format!(
                "trigger {} may start {} tasks an hour; it has started {taken} in the last hour",
                t.name, t.per_hour
            ),
            details: json!({ "limit": t.per_hour, "window_s": 3600, "used": taken }),
        });
    }
    let req = CreateTask {
        project: Some(t.project_id.to_string()),
        prompt: render_trigger(t, webhook_id, payload),
        title: Some(format!("{} ({})", t.name, webhook_id)),
        agent: Some(t.agent.clone()),
        ..CreateTask::default()
    };
    let mut new = crate::scheduler::tasks::new_task(tx, &Caller::person(), req, config)?;
    new.asked.origin = Some(format!("trigger {}", t.name));
    let task = crate::scheduler::tasks::insert(tx, fx, new, TaskId::generate())?;
    tx.add_trigger_hit(&TriggerHit {
        trigger: t.name.clone(),
        webhook_id: webhook_id.into(),
        task_id: task.id.clone(),
        at: now,
    })?;
    Ok((task.id, true))
}

/// The schedules of a project, or all.
pub fn list(r: &dyn StoreRead, project: Option<&ProjectId>) -> Result<Vec<Schedule>, Error> {
    Ok(r.schedules()?.into_iter().filter(|s| project.is_none_or(|p| &s.project_id == p)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_the_payloads_fields() {
        let t = Trigger {
            name: "alerts".into(),
            project_id: ProjectId::generate(),
            agent: "fixer".into(),
            template: "Fix {{payload.error.title}} in {{ payload.frames.0 }} ({{webhook_id}}, {{payload.missing}})"
                .into(),
            per_hour: 10,
            secret: None,
            created_at: Timestamp::now(),
        };
        let payload = json!({ "error": { "title": "TypeError: boom" }, "frames": ["app.js:10"] });
        assert_eq!(render_trigger(&t, "msg_1", &payload), "Fix TypeError: boom in app.js:10 (msg_1, )");
        assert_eq!(template_names("a {{payload.x}} {{ nope }}"), ["payload.x", "nope"]);
    }
}
