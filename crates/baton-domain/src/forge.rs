//! What the domain asks of a project's forge, and nothing more: the trait the
//! forge integration (`baton-forge`) implements and the coordinator hands in.
//! The domain decides when to merge through the forge; the integration speaks
//! to it.

use std::future::Future;
use std::pin::Pin;

use baton_core::model::{MergeStrategy, Project, Task};

use crate::Error;

/// A future the forge answers with.
pub type ForgeFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// A project's forge, as the merge queue needs it.
pub trait Forge: Send + Sync {
    /// Merges `task`'s open pull request through the forge's API with
    /// `strategy`, and answers with the merge commit. A refusal (branch
    /// protection, a required check) is [`Error::ForgeRefused`], and changes
    /// nothing.
    fn merge_pull<'a>(
        &'a self,
        project: &'a Project,
        task: &'a Task,
        strategy: MergeStrategy,
    ) -> ForgeFuture<'a, String>;
}

/// No forge integration: merges through a forge are refused.
#[derive(Debug, Clone, Copy)]
pub struct NoForge;

impl Forge for NoForge {
    fn merge_pull<'a>(
        &'a self,
        project: &'a Project,
        _task: &'a Task,
        _strategy: MergeStrategy,
    ) -> ForgeFuture<'a, String> {
        let name = project.name.clone();
        Box::pin(async move {
            Err(Error::unavailable(format!("project {name} merges through its forge, and this coordinator has none")))
        })
    }
}
