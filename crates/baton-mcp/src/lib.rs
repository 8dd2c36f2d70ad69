//! Baton's MCP server: the tools a lead — a person's Claude Code, or an agent run
//! by Baton — uses to hand out work and keep talking: start, follow, resume, stop,
//! approve, diff and merge tasks, submit plans, and share documents.
//!
//! It is a thin client of the coordinator's REST API, served over stdio (`baton
//! mcp`, for `.mcp.json`) and over streamable HTTP (`/mcp` on the coordinator).
//! Every call carries the caller's own token — the session token of an agent run
//! by Baton, the admin token, or one it was given — so the tasks an agent starts
//! are its children, subject to its delegation rules. Failures come back as tool
//! errors a model can read, never as a crash of the server.

mod args;

use std::time::Duration;

use baton_client::{Client, ClientError, encode};
use baton_core::api::{CreateTask, DocDetail, DocSearch, PushDoc, SearchMode, TaskDetail};
use baton_core::memory::{AgentMessage, JournalNote, Me, MemoryBlock, SendToAgent, WriteBlock};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde_json::{Value, json};

pub use args::*;

/// What the server tells clients about itself.
const INSTRUCTIONS: &str = "Baton runs coding agents on git worktrees. Use start_task to hand work to an \
agent (it runs on its own branch; wait=none returns at once so you can keep talking, callback=true \
brings its result back to you when it ends), task_status / task_result / list_tasks to follow it, \
resume_task to continue its conversation, task_diff and merge_task to review and land its work, \
submit_plan for a DAG of tasks, doc_push / doc_query / doc_read to share knowledge with other agents, \
memory_view / memory_write / memory_search / journal_append for your own memory between tasks, and send_message \
to another agent's inbox.";

/// Longest a diff returned to a model may be.
const MAX_DIFF: usize = 100_000;

/// The MCP server.
#[derive(Clone)]
pub struct BatonMcp {
    /// The coordinator, with the token of a stdio server's caller.
    client: Client,
}

/// A tool's answer: text for the model, or an error it can read.
type Answer = Result<String, String>;

fn explain(e: ClientError) -> String {
    match e {
        ClientError::Api { message, code, .. } => format!("{message} ({code})"),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(&other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// What a model needs to know about a task, without its event history.
fn summary(t: &TaskDetail) -> Value {
    json!({
        "id": t.task.id,
        "title": t.task.title,
        "status": t.task.status,
        "reason": t.task.reason,
        "agent": t.task.agent,
        "branch": t.task.git.branch,
        "head": t.task.git.head,
        "files_changed": t.task.git.files_changed,
        "checks": t.task.check_results.iter().map(|c| json!({ "command": c.command, "passed": c.passed })).collect::<Vec<_>>(),
        "result": t.task.result,
        "usage": t.task.usage,
        "depends_on": t.task.depends_on,
        "conflicts_with": t.overlaps.iter().map(|o| json!({ "task": o.task_id, "files": o.files })).collect::<Vec<_>>(),
    })
}

impl BatonMcp {
    /// A server calling the coordinator through `client`; over HTTP, each call
    /// uses the token of the request that carried it instead.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The client for one call: the HTTP request's own bearer token when there is
    /// one, else the server's.
    fn client(&self, ctx: &RequestContext<RoleServer>) -> Client {
        let token = ctx
            .extensions
            .get::<http::request::Parts>()
            .and_then(|p| p.headers.get("authorization"))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().strip_prefix("Bearer ").or_else(|| v.trim().strip_prefix("bearer ")))
            .map(|t| t.trim().to_owned());
        match token {
            Some(t) => self.client.with_token(Some(t)),
            None => self.client.clone(),
        }
    }

    async fn detail(client: &Client, task: &str) -> Result<TaskDetail, String> {
        client.task(task).await.map_err(explain)
    }

    /// Waits until a task ends (or needs someone: blocked, awaiting approval).
    async fn wait(client: &Client, id: &str, limit: Duration) -> Result<TaskDetail, String> {
        let start = tokio::time::Instant::now();
        loop {
            let left = limit.saturating_sub(start.elapsed()).as_secs().clamp(1, 600);
            let t: TaskDetail =
                client.get(&format!("/api/tasks/{}/wait?timeout_s={left}", encode(id))).await.map_err(explain)?;
            if t.task.status.ends_a_wait() || start.elapsed() >= limit {
                return Ok(t);
            }
        }
    }

    /// The agent the caller's token speaks for.
    async fn me(client: &Client) -> Result<String, String> {
        let me: Me = client.get("/api/me").await.map_err(explain)?;
        me.agent.ok_or_else(|| "memory belongs to an agent: this needs an agent's session token".to_owned())
    }

    /// A search of the context store (`query` holds the filters): the hits with
    /// why each matched, and what limited the search.
    async fn search(
        &self,
        ctx: &RequestContext<RoleServer>,
        q: &str,
        mode: Option<SearchMode>,
        mut query: Vec<String>,
        with_tags: bool,
    ) -> Answer {
        query.push(format!("q={}", encode(q)));
        if let Some(m) = mode {
            query.push(format!("mode={}", m.as_str()));
        }
        let client = self.client(ctx);
        let found: DocSearch = client.get(&format!("/api/docs/search?{}", query.join("&"))).await.map_err(explain)?;
        let hits: Vec<Value> = found
            .hits
            .iter()
            .map(|h| {
                let mut hit = json!({ "name": h.doc.name, "version": h.doc.version, "updated_at": h.doc.updated_at, "matched": h.matched, "match": h.snippet });
                if with_tags {
                    hit["tags"] = json!(h.doc.tags);
                }
                hit
            })
            .collect();
        let mut answer = json!({ "mode": found.mode, "hits": hits });
        if found.partial {
            answer["partial"] = json!(format!("{} documents still wait to be embedded", found.pending));
        }
        if let Some(note) = found.note {
            answer["note"] = json!(note);
        }
        Ok(pretty(&answer))
    }

    async fn answer_for(client: &Client, id: &str, wait: Option<Wait>, wait_s: Option<u64>) -> Answer {
        let t = match wait.unwrap_or_default() {
            Wait::None => Self::detail(client, id).await?,
            Wait::UntilDone => Self::wait(client, id, Duration::from_secs(wait_s.unwrap_or(3600))).await?,
        };
        Ok(pretty(&summary(&t)))
    }
}

#[tool_router]
impl BatonMcp {
    #[tool(
        description = "List the agents you can start tasks with: name, executor, description, tags, whether its CLI is installed on a launcher, and whom it may delegate to.",
        annotations(read_only_hint = true)
    )]
    async fn list_agents(&self, ctx: RequestContext<RoleServer>) -> Answer {
        let agents = self.client(&ctx).agents().await.map_err(explain)?;
        let list: Vec<Value> = agents
            .iter()
            .map(|a| {
                json!({
                    "name": a.def.name, "executor": a.def.executor, "description": a.def.description,
                    "tags": a.def.tags, "available": a.available, "delegates_to": a.def.delegates_to,
                })
            })
            .collect();
        Ok(pretty(&list))
    }

    #[tool(
        description = "Start a task: an agent works on the prompt in its own git worktree and branch. With wait=none (the default) it returns the new task at once so you can keep working; with wait=until_done it returns when the task has ended, with its result. With callback=true (when you are yourself an agent run by Baton) the task's result is delivered to you as a new message when it ends."
    )]
    async fn start_task(&self, Parameters(a): Parameters<StartTask>, ctx: RequestContext<RoleServer>) -> Answer {
        let client = self.client(&ctx);
        let req = CreateTask {
            project: a.project,
            prompt: a.prompt,
            title: a.title,
            agent: a.agent,
            tags: a.tags.unwrap_or_default(),
            depends_on: a.depends_on.unwrap_or_default(),
            checks: a.checks,
            timeout_s: a.timeout_s,
            max_retries: a.max_retries,
            budget_usd: a.budget_usd,
            approval: a.approval.map(baton_core::api::Approval),
            branch: None,
            callback: a.callback.unwrap_or(false),
            ..Default::default()
        };
        let task = client.create_task(&req).await.map_err(explain)?;
        Self::answer_for(&client, task.id.as_str(), a.wait, a.wait_timeout_s).await
    }

    #[tool(
        description = "Continue a finished task's conversation with a new message: the same agent session, in the same worktree. wait works as for start_task."
    )]
    async fn resume_task(&self, Parameters(a): Parameters<ResumeTaskArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let client = self.client(&ctx);
        let task = client.resume_task(&a.task, &a.message).await.map_err(explain)?;
        Self::answer_for(&client, task.id.as_str(), a.wait, a.wait_timeout_s).await
    }

    #[tool(
        description = "A task's status: state and reason, agent, branch and last commit, files changed, checks, result, cost, and which other live tasks touch the same files.",
        annotations(read_only_hint = true)
    )]
    async fn task_status(&self, Parameters(a): Parameters<TaskRef>, ctx: RequestContext<RoleServer>) -> Answer {
        Ok(pretty(&summary(&Self::detail(&self.client(&ctx), &a.task).await?)))
    }

    #[tool(
        description = "What a task's agent answered (its final message), once the task has ended.",
        annotations(read_only_hint = true)
    )]
    async fn task_result(&self, Parameters(a): Parameters<TaskRef>, ctx: RequestContext<RoleServer>) -> Answer {
        let t = Self::detail(&self.client(&ctx), &a.task).await?;
        match (&t.task.result, t.task.status.is_finished()) {
            (Some(result), true) => Ok(format!("Task {} {}:\n{result}", t.task.id, t.task.status)),
            (None, true) => Ok(format!(
                "Task {} {} without a result{}",
                t.task.id,
                t.task.status,
                t.task.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default()
            )),
            (_, false) => Err(format!("task {} is {}; it has no result yet", t.task.id, t.task.status)),
        }
    }

    #[tool(
        description = "List tasks, newest first, optionally of one project or in some states. A full page answers {tasks, next}: pass next as before for the page after.",
        annotations(read_only_hint = true)
    )]
    async fn list_tasks(&self, Parameters(a): Parameters<ListTasks>, ctx: RequestContext<RoleServer>) -> Answer {
        let mut query = vec![format!("limit={}", a.limit.unwrap_or(50).clamp(1, 500))];
        if let Some(p) = &a.project {
            query.push(format!("project={}", encode(p)));
        }
        if let Some(s) = &a.status {
            query.push(format!("status={}", encode(s)));
        }
        if let Some(b) = &a.before {
            query.push(format!("before={}", encode(b)));
        }
        let (tasks, next) = self.client(&ctx).tasks_page(&query.join("&")).await.map_err(explain)?;
        let list: Vec<Value> = tasks
            .iter()
            .map(|t| json!({ "id": t.id, "title": t.title, "status": t.status, "agent": t.agent, "branch": t.git.branch, "reason": t.reason }))
            .collect();
        match next {
            // A full page: the next one is asked for with `before`.
            Some(next) => Ok(pretty(&json!({ "tasks": list, "next": next }))),
            None => Ok(pretty(&list)),
        }
    }

    #[tool(
        description = "Stop a task: its agent is interrupted, then killed after a grace period; its work is committed on its branch."
    )]
    async fn stop_task(&self, Parameters(a): Parameters<StopTaskArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let t = self.client(&ctx).stop_task(&a.task, a.reason).await.map_err(explain)?;
        Ok(format!("Task {} is {}", t.id, t.status))
    }

    #[tool(description = "Approve a task that waits for approval, so it can start.")]
    async fn approve_task(&self, Parameters(a): Parameters<TaskRef>, ctx: RequestContext<RoleServer>) -> Answer {
        let t = self.client(&ctx).task_action(&a.task, "approve").await.map_err(explain)?;
        Ok(format!("Task {} is {}", t.id, t.status))
    }

    #[tool(
        description = "What a task changed against its base branch: the files, a diff stat, and the patch (long patches are cut).",
        annotations(read_only_hint = true)
    )]
    async fn task_diff(&self, Parameters(a): Parameters<TaskRef>, ctx: RequestContext<RoleServer>) -> Answer {
        let diff: baton_core::api::Diff =
            self.client(&ctx).get(&format!("/api/tasks/{}/diff", encode(&a.task))).await.map_err(explain)?;
        let mut patch = diff.patch;
        if patch.len() > MAX_DIFF {
            let mut at = MAX_DIFF;
            while !patch.is_char_boundary(at) {
                at -= 1;
            }
            patch.truncate(at);
            patch.push_str("\n… (cut; use `baton diff` for the whole patch)\n");
        }
        Ok(format!("{} against {}\n{}\n{patch}", diff.branch, diff.base, diff.stat))
    }

    #[tool(
        description = "Merge a succeeded task's branch into its base (after its unmerged prerequisites), with the project's strategy or the one given. A conflicting merge is refused and the conflicting files are named; the base is left untouched."
    )]
    async fn merge_task(&self, Parameters(a): Parameters<MergeArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let body = json!({ "strategy": a.strategy });
        let result: Value =
            self.client(&ctx).post(&format!("/api/tasks/{}/merge", encode(&a.task)), &body).await.map_err(
                |e| match &e {
                    ClientError::Api { details: Some(d), .. } => format!("{}\n{}", explain_ref(&e), pretty(d)),
                    _ => explain(e),
                },
            )?;
        Ok(pretty(&result))
    }

    #[tool(
        description = "Submit a plan: a DAG of tasks in one call (as a JSON object, or YAML text), with names for dependencies, shared defaults, approval gates and an optional synthesis task. The whole plan is checked before anything is created."
    )]
    async fn submit_plan(&self, Parameters(a): Parameters<SubmitPlan>, ctx: RequestContext<RoleServer>) -> Answer {
        let plan = match a.plan {
            Value::String(text) => serde_norway::from_str::<Value>(&text)
                .map_err(|e| format!("the plan is not valid YAML or JSON: {e}"))?,
            other => other,
        };
        let created: Value = self.client(&ctx).post_safely("/api/plans", &plan).await.map_err(|e| match &e {
            ClientError::Api { details: Some(d), .. } => format!("{}\n{}", explain_ref(&e), pretty(d)),
            _ => explain(e),
        })?;
        Ok(pretty(&created))
    }

    #[tool(
        description = "Write a document to the shared context store (a new version when the name exists; earlier versions are kept). Other agents find it with doc_query."
    )]
    async fn doc_push(&self, Parameters(a): Parameters<DocPushArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let req = PushDoc {
            name: a.name,
            content: Some(a.content),
            tags: a.tags,
            metadata: a.metadata,
            relations: a.relations,
            project: a.project,
            append: a.append.unwrap_or(false),
            ..Default::default()
        };
        let d = self.client(&ctx).push_doc(&req).await.map_err(explain)?;
        Ok(format!("{} version {} ({} bytes)", d.doc.name, d.doc.version, d.doc.size))
    }

    #[tool(
        description = "Read a document of the shared context store (its current version, or an earlier one).",
        annotations(read_only_hint = true)
    )]
    async fn doc_read(&self, Parameters(a): Parameters<DocReadArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let d: DocDetail = self.client(&ctx).doc(&a.name, a.version).await.map_err(explain)?;
        match d.doc.content {
            Some(text) => Ok(text),
            None => Ok(format!("{} is binary ({}, {} bytes)", d.doc.name, d.doc.content_type, d.doc.size)),
        }
    }

    #[tool(
        description = "Search the shared context store by words and by meaning (names, tags and content; passages whose meaning is near your query are found even without the same words), or list the newest documents. Returns names, tags, why each matched (words, meaning or both) and the passage.",
        annotations(read_only_hint = true)
    )]
    async fn doc_query(&self, Parameters(a): Parameters<DocQueryArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let mut query = vec![format!("limit={}", a.limit.unwrap_or(10).clamp(1, 100))];
        if let Some(tags) = a.tags.filter(|t| !t.is_empty()) {
            query.push(format!("tag={}", encode(&tags.join(","))));
        }
        if let Some(p) = &a.prefix {
            query.push(format!("prefix={}", encode(p)));
        }
        if let Some(q) = a.query.as_deref().filter(|q| !q.trim().is_empty()) {
            return self.search(&ctx, q, a.mode, query, true).await;
        }
        let hits = self.client(&ctx).docs(&query.join("&")).await.map_err(explain)?;
        let list: Vec<Value> = hits
            .iter()
            .map(|h| json!({ "name": h.doc.name, "tags": h.doc.tags, "version": h.doc.version, "updated_at": h.doc.updated_at, "match": h.snippet }))
            .collect();
        Ok(pretty(&list))
    }

    #[tool(
        description = "A document's metadata, tags, relations, versions and the documents that refer to it.",
        annotations(read_only_hint = true)
    )]
    async fn doc_info(&self, Parameters(a): Parameters<DocName>, ctx: RequestContext<RoleServer>) -> Answer {
        let d = self.client(&ctx).doc(&a.name, None).await.map_err(explain)?;
        let mut value = serde_json::to_value(&d).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.remove("content");
            obj.remove("content_base64");
        }
        Ok(pretty(&value))
    }

    #[tool(
        description = "Your memory, kept by Baton between your tasks: each block (label, size against its limit, version, text) and your journal's newest entries. With a label, every version of that block.",
        annotations(read_only_hint = true)
    )]
    async fn memory_view(&self, Parameters(a): Parameters<MemoryViewArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let client = self.client(&ctx);
        let agent = Self::me(&client).await?;
        let path = match &a.label {
            Some(label) => format!("/api/agents/{}/memory/{}", encode(&agent), encode(label)),
            None => format!("/api/agents/{}/memory", encode(&agent)),
        };
        let value: Value = client.get(&path).await.map_err(explain)?;
        Ok(pretty(&value))
    }

    #[tool(
        description = "Write a block of your memory: replace its text, or append a line. Each block has a limit in characters; a write past it is refused with the block's size and limit (nothing is cut), so make room first. Every version is kept."
    )]
    async fn memory_write(
        &self,
        Parameters(a): Parameters<MemoryWriteArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Answer {
        let client = self.client(&ctx);
        let agent = Self::me(&client).await?;
        let w = WriteBlock { text: a.text, mode: a.mode.unwrap_or_default(), ..WriteBlock::default() };
        let path = format!("/api/agents/{}/memory/{}", encode(&agent), encode(&a.label));
        let b: MemoryBlock = client.put(&path, &w).await.map_err(|e| match &e {
            ClientError::Api { details: Some(d), .. } => format!("{}\n{}", explain_ref(&e), pretty(d)),
            _ => explain(e),
        })?;
        Ok(format!("{} is version {} ({} of {} characters)", b.label, b.version, b.chars(), b.limit))
    }

    #[tool(
        description = "Search your archival memory by words and by meaning: the documents under agents/YOUR_NAME/ in the context store (write them with doc_push), ranked by relevance. Never another agent's.",
        annotations(read_only_hint = true)
    )]
    async fn memory_search(
        &self,
        Parameters(a): Parameters<MemorySearchArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Answer {
        let client = self.client(&ctx);
        let agent = Self::me(&client).await?;
        let query = vec![
            format!("limit={}", a.limit.unwrap_or(10).clamp(1, 100)),
            format!("prefix={}", encode(&format!("agents/{agent}/"))),
        ];
        if let Some(q) = a.query.as_deref().filter(|q| !q.trim().is_empty()) {
            return self.search(&ctx, q, a.mode, query, false).await;
        }
        let hits = client.docs(&query.join("&")).await.map_err(explain)?;
        let list: Vec<Value> = hits
            .iter()
            .map(|h| json!({ "name": h.doc.name, "updated_at": h.doc.updated_at, "match": h.snippet }))
            .collect();
        Ok(pretty(&list))
    }

    #[tool(
        description = "Add a note to your journal. Baton records each task's end there itself; the newest entries reach you when a task starts."
    )]
    async fn journal_append(
        &self,
        Parameters(a): Parameters<JournalAppendArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Answer {
        let client = self.client(&ctx);
        let agent = Self::me(&client).await?;
        let e: Value = client
            .post(&format!("/api/agents/{}/journal", encode(&agent)), &JournalNote { text: a.text })
            .await
            .map_err(explain)?;
        Ok(format!("noted (entry {})", e["seq"]))
    }

    #[tool(
        description = "Send a message to another agent's inbox. If you may delegate to it, it is woken and takes the message before its queued tasks, and how it ended comes back to you; otherwise the message waits for its next task."
    )]
    async fn send_message(
        &self,
        Parameters(a): Parameters<SendMessageArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Answer {
        let client = self.client(&ctx);
        let req = SendToAgent { text: a.text, project: None };
        let path = format!("/api/agents/{}/messages", encode(&a.to));
        let m: AgentMessage = match &a.key {
            Some(key) => client.post_once(&path, key, &req).await,
            None => client.post(&path, &req).await,
        }
        .map_err(explain)?;
        Ok(pretty(&json!({ "id": m.id, "state": m.state, "task": m.task_id })))
    }

    #[tool(
        description = "For the project's lead: say you are done. Refused while any task of the project is still open (they are listed); then Baton stops keeping you alive."
    )]
    async fn lead_done(&self, ctx: RequestContext<RoleServer>) -> Answer {
        let client = self.client(&ctx);
        let me: Me = client.get("/api/me").await.map_err(explain)?;
        let project = me.project.ok_or_else(|| "this needs the lead's session token".to_owned())?;
        let path = format!("/api/projects/{}/lead/done", encode(&project));
        let v: Value = client.post(&path, &json!({})).await.map_err(|e| match &e {
            ClientError::Api { details: Some(d), .. } => format!("{}\n{}", explain_ref(&e), pretty(d)),
            _ => explain(e),
        })?;
        Ok(format!("done: the lead of {} rests for good", v["project"].as_str().unwrap_or(&project)))
    }

    #[tool(
        description = "For the project's lead: set a timer. Baton wakes you in in_s seconds with your note, as your next turn; end your turn meanwhile (waiting costs nothing)."
    )]
    async fn lead_wake_me(&self, Parameters(a): Parameters<LeadWakeArgs>, ctx: RequestContext<RoleServer>) -> Answer {
        let client = self.client(&ctx);
        let me: Me = client.get("/api/me").await.map_err(explain)?;
        let project = me.project.ok_or_else(|| "this needs the lead's session token".to_owned())?;
        let body = json!({ "in_s": a.in_s, "note": a.note.unwrap_or_default() });
        let _: Value =
            client.post(&format!("/api/projects/{}/lead/wake", encode(&project)), &body).await.map_err(explain)?;
        Ok(format!("you will be woken in {} s", a.in_s))
    }

    #[tool(
        description = "Claude Code's permission prompt: asks the people in the task's chat thread (Allow / Deny) whether a tool may be used; without an answer in time, the agent's policy decides."
    )]
    async fn permission_prompt(
        &self,
        Parameters(a): Parameters<PermissionPromptArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Answer {
        let client = self.client(&ctx);
        let asked: Value = client
            .post("/api/permissions", &json!({ "tool_name": a.tool_name, "input": a.input }))
            .await
            .map_err(explain)?;
        let id = asked["id"].as_str().unwrap_or_default().to_owned();
        let mut req = asked;
        while req["state"] == "pending" {
            req = client.get(&format!("/api/permissions/{}/wait?timeout_s=20", encode(&id))).await.map_err(explain)?;
        }
        let answer = match req["state"].as_str() {
            Some("allowed") => json!({ "behavior": "allow", "updatedInput": a.input }),
            _ => {
                json!({ "behavior": "deny", "message": format!("{} was denied by {}", a.tool_name, req["by"].as_str().unwrap_or("policy")) })
            }
        };
        Ok(answer.to_string())
    }

    #[tool(
        description = "Delete a document and all its versions from the shared context store.",
        annotations(destructive_hint = true)
    )]
    async fn doc_delete(&self, Parameters(a): Parameters<DocName>, ctx: RequestContext<RoleServer>) -> Answer {
        self.client(&ctx).delete_doc(&a.name).await.map_err(explain)?;
        Ok(format!("deleted {}", a.name))
    }
}

fn explain_ref(e: &ClientError) -> String {
    match e {
        ClientError::Api { message, code, .. } => format!("{message} ({code})"),
        other => other.to_string(),
    }
}

#[tool_handler]
impl ServerHandler for BatonMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("baton", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Serves MCP over stdin/stdout until the client goes away.
pub async fn serve_stdio(client: Client) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use rmcp::ServiceExt;
    let running = BatonMcp::new(client).serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}

/// The `/mcp` service: MCP over streamable HTTP, each call made with the token of
/// the request that carried it.
pub fn http_service(
    coordinator: Client,
) -> rmcp::transport::StreamableHttpService<
    BatonMcp,
    rmcp::transport::streamable_http_server::session::local::LocalSessionManager,
> {
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    // The coordinator checks Host and Origin for every route, /mcp included. No
    // SSE priming events: nothing here can resume a stream (no event store), and
    // the empty event breaks older clients (Gemini CLI's parses it as JSON).
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts().with_sse_retry(None);
    let mut sessions = LocalSessionManager::default();
    sessions.session_config.sse_retry = None;
    StreamableHttpService::new(move || Ok(BatonMcp::new(coordinator.clone())), std::sync::Arc::new(sessions), config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_object_schema_with_described_fields() {
        let tools = BatonMcp::tool_router().list_all();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        for want in [
            "list_agents",
            "start_task",
            "resume_task",
            "task_status",
            "task_result",
            "list_tasks",
            "stop_task",
            "approve_task",
            "task_diff",
            "merge_task",
            "submit_plan",
            "doc_push",
            "doc_read",
            "doc_query",
            "doc_info",
            "doc_delete",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        for tool in &tools {
            let schema = serde_json::to_value(&*tool.input_schema).unwrap();
            assert_eq!(schema["type"], "object", "{}", tool.name);
            for (field, prop) in schema["properties"].as_object().into_iter().flatten() {
                assert!(
                    prop["description"].as_str().is_some_and(|d| !d.is_empty())
                        || prop.get("$ref").is_some()
                        || prop.get("allOf").is_some()
                        || prop.get("anyOf").is_some(),
                    "{}.{field} has no description: {prop}",
                    tool.name
                );
            }
            assert!(tool.description.as_deref().is_some_and(|d| d.len() > 20), "{}", tool.name);
        }
    }
}
