//! Turning what a user typed into the thing it names: whole ids, unique id
//! prefixes (`t-4k9m` or `4k9m`), and project names.

use baton_core::ids::{IdRef, ProjectId, RunId, SessionId, TaskId};
use baton_core::model::{Project, Run, Session, Task};
use baton_store::StoreRead;

use crate::Error;

fn resolve<T: std::str::FromStr<Err = baton_core::ids::IdError>>(
    r: &dyn StoreRead,
    text: &str,
    prefix: &'static str,
    kind: &'static str,
) -> Result<T, Error> {
    match IdRef::<T>::parse(text, prefix, kind) {
        Ok(IdRef::Exact(id)) => Ok(id),
        Ok(IdRef::Prefix(p)) => {
            let found = r.ids_with_prefix(kind, &p, 5)?;
            match found.as_slice() {
                [] => Err(Error::not_found(kind, text)),
                [one] => one.parse::<T>().map_err(Error::from),
                many => Err(Error::Ambiguous { kind, text: text.to_owned(), candidates: many.to_vec() }),
            }
        }
        Err(_) => Err(Error::not_found(kind, text)),
    }
}

/// A task id from text.
pub fn task_id(r: &dyn StoreRead, text: &str) -> Result<TaskId, Error> {
    resolve(r, text, TaskId::PREFIX, TaskId::KIND)
}

/// A session id from text.
pub fn session_id(r: &dyn StoreRead, text: &str) -> Result<SessionId, Error> {
    resolve(r, text, SessionId::PREFIX, SessionId::KIND)
}

/// A run id from text.
pub fn run_id(r: &dyn StoreRead, text: &str) -> Result<RunId, Error> {
    resolve(r, text, RunId::PREFIX, RunId::KIND)
}

/// A task that must exist.
pub fn task(r: &dyn StoreRead, id: &TaskId) -> Result<Task, Error> {
    r.task(id)?.ok_or_else(|| Error::not_found("task", id))
}

/// A session that must exist.
pub fn session(r: &dyn StoreRead, id: &SessionId) -> Result<Session, Error> {
    r.session(id)?.ok_or_else(|| Error::not_found("session", id))
}

/// A run that must exist.
pub fn run(r: &dyn StoreRead, id: &RunId) -> Result<Run, Error> {
    r.run(id)?.ok_or_else(|| Error::not_found("run", id))
}

/// A project that must exist, by id.
pub fn project(r: &dyn StoreRead, id: &ProjectId) -> Result<Project, Error> {
    r.project(id)?.ok_or_else(|| Error::not_found("project", id))
}

/// A project by id, unique id prefix, or name.
pub fn project_ref(r: &dyn StoreRead, text: &str) -> Result<Project, Error> {
    if let Some(p) = r.project_by_name(text)? {
        return Ok(p);
    }
    match resolve::<ProjectId>(r, text, ProjectId::PREFIX, ProjectId::KIND) {
        Ok(id) => project(r, &id),
        Err(e @ Error::Ambiguous { .. }) => Err(e),
        Err(_) => Err(Error::not_found("project", text)),
    }
}

/// A task by id or unique prefix.
pub fn task_ref(r: &dyn StoreRead, text: &str) -> Result<Task, Error> {
    task(r, &task_id(r, text)?)
}

/// The project a request is about: the one it names, else its calling session's,
/// else the only one registered.
pub fn request_project(
    r: &dyn StoreRead,
    named: Option<&str>,
    session_project: Option<&ProjectId>,
) -> Result<Project, Error> {
    match (named, session_project) {
        (Some(p), _) => project_ref(r, p),
        (None, Some(id)) => project(r, id),
        (None, None) => match r.projects()?.as_slice() {
            [only] => Ok(only.clone()),
            [] => {
                Err(Error::invalid("no project is registered: run `baton up` in a repository, or `baton project add`"))
            }
            _ => {
                Err(Error::invalid("`project` is required when several projects are registered (a project id or name)"))
            }
        },
    }
}
