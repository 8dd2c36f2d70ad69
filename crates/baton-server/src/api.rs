//! The HTTP routes. Each resource has its own module of thin handlers.

mod agents;
mod chat;
mod conversation;
mod dashboard;
mod docs;
pub(crate) mod http;
pub(crate) mod idempotency;
mod launchers;
mod leads;
mod memory;
mod meta;
mod openapi;
mod plans;
mod projects;
mod runs;
mod schedules;
mod sessions;
mod stream;
mod tasks;
mod tokens;
mod webhooks;
mod worksets;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use baton_core::api::ErrorCode;

use self::openapi::{Op, Ops};
use crate::ServerConfig;
use crate::auth;
use crate::error::AppError;
use baton_domain::AppState;

/// The largest event batch a launcher may send, in bytes.
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The largest session state (an agent CLI's conversation files, base64) a
/// launcher may save, in bytes.
const MAX_STATE_BYTES: usize = 96 * 1024 * 1024;

/// The coordinator's API under `/api`: every route with what the document says of it.
pub(crate) fn api_ops() -> Ops {
    let ops = vec![
        Op::get("/projects", projects::list, "List projects"),
        Op::post("/projects", projects::create, "Register a git repository as a project (admin)"),
        Op::get("/projects/{id}", projects::show, "A project by id, prefix or name"),
        Op::get("/projects/{id}/radar", projects::radar, "The project's conflict radar")
            .about("Every live task of the project (queued, running, checking, succeeded or failed, and not merged) that changes some of the same files as another live task, with the files they share, so a coming merge conflict shows before it happens. A task is never reported against its own prerequisites, whose work its branch contains."),
        Op::post("/projects/{id}/reload", projects::reload, "Read a project's settings and agent files again"),
        Op::get("/projects/{id}/config", projects::config, "A project's configuration file (admin)")
            .about("The text of `.baton/config.toml` in the project's checkout (empty when it has none), and where it is."),
        Op::put("/projects/{id}/config", projects::write_config, "Write a project's configuration file (admin)")
            .about("Checks the TOML by the rules `baton project reload` applies, writes it to `.baton/config.toml` in the project's checkout (left uncommitted) and reloads the project. Nothing is written when it breaks a rule: 400 invalid_argument with `details.line` and `details.column` for TOML that does not parse."),
        Op::get("/projects/{id}/files", projects::files, "Paths of a project's files at a branch")
            .about("The files of the branch `ref` (the project's default branch by default) whose path contains `q`, in the repository's order, for completing `@` paths in a prompt. 404 for a branch that does not exist."),
        Op::get("/projects/{id}/branches", projects::branches, "The branches a task may start from")
            .about("Every local branch of the project's repository but Baton's own task branches (`baton/…`), the default branch first."),
        Op::get("/pools", projects::pools, "List concurrency pools"),
        Op::get("/stats/hourly", projects::hourly, "The fleet's work hour by hour")
            .about("For each of the last `hours` hours (24 by default), oldest first: the tasks that ended in it by status, the queue's depth at its end (sampled every 30 s; none before sampling began) and what agents spent in it by project and by agent. Read from aggregates kept up to date as tasks end and agents spend, so it costs the same after a million tasks as after ten."),
        Op::get("/costs", projects::costs, "Tokens and money spent")
            .about("What the agents' sessions spent, in tokens and US dollars: in total, per project (keyed by project id), per agent (keyed by name), and per project and agent."),
        Op::post("/hooks", projects::hook, "Record a Claude Code hook")
            .about("What `baton hook` sends: a Claude Code hook's JSON, recorded as events of the session that stands for that Claude Code session. The first hook of a Claude Code session creates an external task and session for it (Baton shows them but never runs, stops or resumes them), in the project its `cwd` is in. Prompts become `message` events, tool uses `tool_call` and `tool_result`, SessionStart `init`, other hooks `hook` events, with the hook's JSON as each event's raw form; Stop and SessionEnd make the session idle (SessionEnd also ends the task), and every hook counts as a heartbeat of the project's lead. A hook from a session Baton runs itself is answered with `ignored`. Refused with 400 invalid_argument when the body is not an object or its session_id or hook_event_name is missing or invalid, with 404 not_found when its `cwd` is in none of several registered projects, and with 409 conflict when no project is registered. Needs the admin token or a session token (launcher tokens get 403)."),
        Op::post("/login-links", dashboard::login_link, "A new one-time dashboard login link")
            .about("Admin only. The link (valid 15 minutes, usable once) sets an HttpOnly cookie holding a fresh dashboard token and redirects to `/`; `baton dashboard` prints one."),
        Op::get("/docs", docs::list, "List or search the context store's documents")
            .about("Documents without their content. With `q`, a full-text search ranked by relevance (best first), each with its `score` and the matching `snippet`; every word must match, the last also as a prefix, and operators are taken as plain words. Without `q`, newest first.")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))),
        Op::post("/docs", docs::push, "Create a document, or write a new version of it")
            .about("Writes version 1 of a new document (201) or the next version of an existing one (200); earlier versions are kept, and fields left out of an edit keep their values. Give exactly one of `content` (text) and `content_base64` (bytes, stored as a file). Refused with 400 invalid_argument for an unsafe name, content_base64 that is not base64, a content_type that is not a media type, or invalid tags or relation targets; with 400 invalid_body for unknown fields; and with 422 invalid_combination for both or neither of content and content_base64, or content that is not what its JSON or YAML content_type says. Announced as a `document` event. Needs the admin token or a session token (launcher tokens get 403); a session token is recorded as `written_by`.")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)))
            .returns::<baton_core::api::DocDetail>("200", "replaced"),
        Op::get("/docs/search", docs::search, "Search the context store by words, by meaning, or both")
            .about("The documents found, best first, each with why (`matched`: words, meaning or both), its `score` and the passage that matched (`snippet`). `mode` is hybrid (the default when an embeddings endpoint is configured: the word ranking and the meaning ranking fused by reciprocal rank fusion), words (full-text search; the default without an endpoint, and then `note` says so) or meaning (the passages whose embeddings are nearest the query's). Tags, project and prefix filter before ranking. `partial` is true while documents wait to be embedded (`pending`) or when the query could not be embedded (hybrid then searches words only, and `note` says why). Refused with 400 invalid_argument for an unknown mode or a query over 2,000 characters, with 422 invalid_combination for hybrid or meaning without an embeddings endpoint, and with 503 unavailable for a meaning search the endpoint cannot embed."),
        Op::get("/docs/index", docs::index, "The meaning index: its model, backlog and failures")
            .about("The embeddings endpoint, the model and dimensions of the stored vectors, how many documents wait to be embedded, and those that could not be (with why: an endpoint answering vectors of the wrong dimension marks its document until a reindex)."),
        Op::post("/docs/index", docs::reindex, "Embed every document again (admin)")
            .about("Queues every text document to be embedded again and clears the failures (`baton doc reindex`); answers the index's state with how many were queued. Searches keep using the current vectors meanwhile."),
        Op::get("/docs/{*name}", docs::show, "A document with its content and versions")
            .about("The document's latest version (or `version`), with its content (a binary one's bytes in `content_base64`), every version newest first, and the documents whose relations name it. GET /api/raw/docs/{name} answers the content itself.")
            .path_schema("name", doc_name()),
        Op::get("/raw/docs/{*name}", docs::raw, "A document's content itself, with its media type")
            .about("The bytes of the latest version (or `version`), as they were pushed, with the document's `content_type` (the dashboard's download link).")
            .responds("200", "the content, in the document's media type", "*/*")
            .path_schema("name", doc_name()),
        Op::delete("/docs/{*name}", docs::delete, "Remove a document and all its versions")
            .about("Announced as a `document` event ({name, deleted}). Needs the admin token or a session token (launcher tokens get 403).")
            .path_schema("name", doc_name()),
        Op::get("/projects/{id}/orchestrator", projects::lead, "The lead's status for a project")
            .about("In the shape of seed 000's dashboard: `status` is running, stale or stopped from the age of the last heartbeat (10 and 60 minutes by default, or the project's heartbeat_stale_s / heartbeat_stopped_s), with the agents at work, the task counts and the next wave. The scheduler beats while the project has unfinished tasks; a lead agent beats with POST /api/projects/{id}/heartbeat."),
        Op::get("/projects/{id}/lead", leads::show, "The lead Baton runs for the project")
            .about("Its agent, task and session (the acting one: `fence` rises at every change, and a request of an earlier session is refused), `state` (working, idle, reviving, stopped, done), its process while it works, its deadline, how often it was restarted and why. 404 when no lead was ever started.")
            .returns::<baton_core::memory::LeadView>("200", "the lead"),
        Op::post("/projects/{id}/lead/start", leads::start, "Start the project's lead (admin)")
            .about("Runs `agent` (or the project's `lead` setting) as the project's lead: a task of its own whose prompt is the lead template rendered from the project (its name, paths, context, the agents it may hand work to and the current task graph). Baton keeps it alive: a run that dies is resumed in the same session, and a resume that fails gives way to a fresh session with a handoff (its memory, journal and the open tasks). Between its wakings (a task it started ending, a message, a timer it set, a person writing to it) it rests with no process. It ends at its deadline (`lead_timeout_s`, 4 hours by default) or when it says it is done. Starting a running lead again with the same agent changes nothing; with another agent, 409. 404 for an unknown agent; 409 when the body names no agent and the project has no `lead` setting. The body may be empty."),
        Op::post("/projects/{id}/lead/stop", leads::stop, "Stop the project's lead (admin)")
            .about("It is no longer wanted: its task is stopped if it works, and Baton does not bring it back (the project's `lead` setting does not start it again until `lead/start`)."),
        Op::post("/projects/{id}/lead/done", leads::done, "The lead says it is done")
            .about("From the session of the project's acting lead only (403 otherwise, also for an earlier session that was replaced). Refused with 409 and the open tasks in `details.open` while any task of the project has not ended; then the lead is no longer wanted and rests for good."),
        Op::post("/projects/{id}/lead/wake", leads::wake, "The lead sets a timer")
            .about("From the session of the project's acting lead only: Baton wakes it in `in_s` seconds (1 s to 7 days) with `note`, as its next turn. One timer at a time; a new one replaces it."),
        Op::post("/projects/{id}/heartbeat", projects::heartbeat, "A lead agent's heartbeat")
            .about("Records that the project's lead is alive, with its view of the work (free form). Needs the admin token or an agent's session token (launcher tokens get 403); for a session token, `source` defaults to the session's agent and `session_key` to the session. The body may be empty."),
        Op::get("/projects/{id}/heartbeats", projects::heartbeats, "The project's heartbeat history")
            .about("The lead heartbeats of the project, newest first (at most 500): the scheduler's own (source `scheduler`) and those of lead agents."),
        Op::get("/plans", plans::list, "List plans, newest first")
            .about("The plans submitted with POST /api/plans, newest first (at most 1000).")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))),
        Op::post("/plans", plans::create, "Submit a DAG of tasks in one call")
            .about("Creates every task of the plan, as JSON or, for people, YAML of the same shape (Content-Type: application/yaml, where a scalar is read as text wherever text is expected; bodies up to 32 MiB, at most 50,000 tasks). Tasks name each other in `depends_on` by their names in the plan (or by ids of existing tasks); the whole plan is checked first (names, agents, dependencies, cycles) and nothing is created if anything is wrong: 422 dependency_cycle names the cycle in `details.cycle`. The optional synthesis task depends on every task and receives every result. Launcher tokens get 403; a session token may only start agents its definition's delegates_to names.")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))),
        Op::post("/plans/check", plans::check, "Check a plan without creating it")
            .about("Checks a plan exactly as POST /api/plans does (names, agents, dependencies, cycles, delegation) and answers with the tasks it would create, prerequisites first, each with its agent and what it waits for; nothing is created. The errors are POST /api/plans' own: a task's error names it in `details.task`, a cycle its members in `details.cycle`, and YAML that does not parse its `details.line` and `details.column`.")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))),
        Op::get("/plans/{id}", plans::show, "A plan with its tasks")
            .about("The plan, and its tasks whole in `task_list` (the synthesis last)."),
        Op::post("/orchestrate/task", plans::orchestrate, "Plan, execute and synthesise a description")
            .about("Starts the planner -> experts -> synthesizer flow (seed 004) and answers at once, in status planning, with its planner task created. The planner must answer with a JSON plan (analysis, subtasks[{id, description, agent_type, depends_on}]); an invalid answer gets one corrective turn, then the orchestration fails. Independent subtasks run in parallel, and when all have settled the synthesizer merges their results; follow it at GET /api/orchestrate/task/{id}. `project` may be left out when there is only one project (or, for a session token, to mean its own). Launcher tokens get 403; an unknown planner or synthesizer agent gets 404."),
        Op::get("/orchestrate/task/{id}", plans::orchestration, "An orchestration")
            .about("Its status (pending, planning, executing, synthesizing, completed or failed), plan, subtasks with their tasks and results, final result and logs."),
        Op::get("/orchestrate/tasks", plans::orchestrations, "List orchestrations, newest first")
            .about("Every orchestration, newest first (at most 1000)."),
        Op::get("/orchestrate/agents", plans::templates, "The experts a plan can name")
            .about("Every agent definition as an expert a planner's subtasks can name in `agent_type`, with its description and tags."),
        Op::get("/agents", agents::list, "Agent definitions, with availability"),
        Op::post("/agents", agents::create, "Define an agent (admin)"),
        Op::get("/agents/status", leads::agents_status, "The agents that live between tasks")
            .about("Each agent with memory and each agent that leads a project: `state` (working, messages queued, idle), its tasks at work and queued, the messages waiting in its inbox, its memory's size against its limits, the projects it leads (with each lead's state) and its last activity."),
        Op::get("/agents/{name}", agents::show, "An agent definition"),
        Op::get("/agents/{name}/markdown", agents::markdown, "An agent definition as Markdown with front matter")
            .about("The definition in the format of `.claude/agents/*.md` and `.baton/agents/*.md`: YAML front matter, then the system prompt."),
        Op::put("/agents/{name}/markdown", agents::put_markdown, "Create or replace an agent from Markdown (admin)")
            .about("Reads the definition from Markdown with front matter, as agent files are read, and saves it. A definition that comes from a file of a repository is refused with 409: change its file, or copy it under another name."),
        Op::put("/agents/{name}", agents::replace, "Create or replace an agent definition (admin)"),
        Op::delete("/agents/{name}", agents::delete, "Remove an agent definition (admin)"),
        Op::get("/agents/{name}/memory", memory::show, "An agent's memory: its blocks and journal")
            .about("For an agent whose definition says `memory: true`: its blocks now (its own, `persona` and `notes` by default, and the shared blocks that name it), each with its size, limit and version; its journal, newest first; and how many characters reach the agent at a task's start against the budget. Needs the admin token or a session token of that agent (403 otherwise); 409 for an agent without memory.")
            .returns::<baton_core::memory::MemoryView>("200", "the memory"),
        Op::get("/agents/{name}/memory/context", memory::context, "What of its memory reaches the agent")
            .about("Exactly the text the agent gets at a task's start (Claude Code also after a resume or a compaction, through its SessionStart hook): its blocks whole, then its newest journal entries, within the budget. A block that does not fit is named, never cut."),
        Op::put("/agents/{name}/memory/{label}", memory::put, "Write a block of an agent's memory")
            .about("Replaces the block's text (or appends to it, with `mode: append`) as a new version; every version is kept. A write that would make the block longer than its limit is refused with 413 payload_too_large, its `details` giving `size`, `current` and `limit`, and nothing changes: nothing is ever cut. A person may also set `limit` (1 to 100,000 characters), `read_only`, `description` and `share_with` (the block becomes shared with those agents); an agent's session token may write its own agent's blocks that are not read-only. Labels are simple names.")
            .path_schema("label", simple_name()),
        Op::get("/agents/{name}/memory/{label}", memory::versions, "Every version of a block, newest first")
            .path_schema("label", simple_name()),
        Op::post("/agents/{name}/memory/{label}/revert", memory::revert, "Bring back an earlier version of a block")
            .about("Writes the text of `version` again as the newest version (the versions between are kept).")
            .path_schema("label", simple_name()),
        Op::post("/agents/{name}/journal", memory::note, "Add a note to an agent's journal")
            .about("Baton itself records each task's end in the journal (its outcome, diff stat, cost and last message, also when the agent was killed); this adds a note of the agent's or a person's. Needs the admin token or a session token of that agent."),
        Op::post("/agents/{name}/messages", memory::send, "Send a message to an agent's inbox")
            .about("From a person (the admin token), or from an agent whose definition names this one in `messages_to` or `delegates_to` (403 otherwise, and nothing is kept; 404 for an agent that does not exist). A sender with authority over the agent (a person, or an agent that may delegate to it) wakes it: the message becomes a task of its own at the head of the agent's queue, ahead of its queued tasks, and its end goes back to the sending session as a callback. Other messages wait (state `queued`) and come with the agent's next task. A message to the lead Baton runs for the project is the lead's next turn. Honours Idempotency-Key."),
        Op::get("/agents/{name}/messages", memory::inbox, "An agent's inbox, with each message's state")
            .about("Oldest first: queued, delivered (with the task that took it), done (with how that task ended), or refused."),
        Op::get("/tasks", tasks::list, "List tasks, newest first"),
        Op::post("/attempts", conversation::attempts, "Start the same task several times at once")
            .about("Creates `count` copies of the task (2 by default, at most 10), or one per agent in `agents`, each on its own branch and knowing the others (`attempts`), to compare them and keep the best with POST /api/tasks/{id}/keep."),
        Op::post("/tasks", tasks::create, "Create a task; it starts when its prerequisites succeed (and it is approved, if it must be)"),
        Op::get("/tasks/{id}", tasks::show, "A task with its sessions and runs"),
        Op::get("/tasks/{id}/events", tasks::events, "A task's events in stream order"),
        Op::post("/tasks/{id}/stop", tasks::stop, "Stop a task: interrupt, grace period, SIGKILL of its process group"),
        Op::post("/tasks/{id}/resume", tasks::resume, "Continue a finished task's conversation"),
        Op::post("/tasks/{id}/retry", tasks::retry, "Run a failed or cancelled task again in a new session"),
        Op::post("/tasks/{id}/approve", tasks::approve, "Let a task that awaits approval start"),
        Op::post("/tasks/{id}/messages", conversation::send, "Send a message to a task's agent")
            .about("While the agent works, the message is queued (state `queued`) and delivered with any others when its turn ends, as the next turn of the same session; until then it can be withdrawn. Sent to a task at rest, it resumes the session at once (state `delivered`). Needs the admin token, or the session token of the session that started the task."),
        Op::get("/tasks/{id}/messages", conversation::messages, "A task's messages from people, with their states"),
        Op::delete("/tasks/{id}/messages/{message}", conversation::withdraw, "Withdraw a queued message")
            .about("Refused with 409 once the message was delivered."),
        Op::post("/tasks/{id}/review", conversation::review, "A person's review of a task's work")
            .about("Records a verdict (approve or changes_requested, which counts for review_required as a reviewer agent's does) and comments on files and lines of the diff. With `send`, the comments go to the task's agent as its next turn, each naming its file and line."),
        Op::post("/tasks/{id}/revert", conversation::revert, "Set one file of a task's branch back to its base")
            .about("Commits the file's version at the task's base commit on the task's branch (a file the base lacks is removed), moving the branch only if it did not move meanwhile, and brings the task's worktree on this host along. Refused with 409 while the task works, when its worktree has uncommitted changes, or when the file is already as its base has it."),
        Op::post("/tasks/{id}/keep", conversation::keep, "Keep one of several attempts")
            .about("Cancels the other attempts started with this task (stopping those still at work; their worktrees are removed once they are at rest, their branches stay) and, unless `merge` is false, merges this one through the merge queue. Refused with 409 for a task that is not one of several attempts."),
        Op::get("/tasks/{id}/diff", tasks::diff, "What a task changed against its base")
            .about("The task's changes against the commit it started from: from its worktree while it exists (uncommitted changes included, new files listed in `untracked`), else from its branch. With format=patch, the plain patch as text/x-diff. Refused with 409 conflict when the task has not started yet.")
            .returns::<baton_core::api::Diff>("200", "the diff")
            .responds("200", "with format=patch: the patch", "text/x-diff"),
        Op::get("/tasks/{id}/wait", tasks::wait, "Wait for a task to settle")
            .about("Synchronous delegation: answers with the task when it succeeds, fails, is cancelled or is blocked, or when the wait ends (then with the task as it is: check its status)."),
        Op::post("/tasks/{id}/merge", tasks::merge, "Merge a succeeded task into its base branch")
            .about("Queues the merge in the merge queue (one merge at a time) and answers when it is done. The task's unmerged prerequisites land first, in dependency order; each merge is checked against the base as it is at that moment and no checkout is switched. Refused with 409 merge_conflict (details: task, base, files) when the branch conflicts with the base, which is left unchanged, and with 409 conflict when the task (or a prerequisite) has not succeeded or is already merged. Needs the admin token, or the session token of the session that started the task. The body may be empty. A task with a reviewer (review_by) whose last verdict is not approve is refused with 409 review_required unless force is true. With merge_via = \"forge\" the task's pull request is merged through the forge's API instead; a refusal (branch protection, a required check) is 409 forge_refused with the forge's answer in details, and nothing changes."),
        Op::post("/tasks/{id}/pr", tasks::pr, "Open a pull request for a succeeded task")
            .about("Pushes the task's branch to the project's remote ([forge] remote, default origin) and opens a pull request on the forge (title from the task; body with its result, checks, review, cost and a link). Baton then follows it: failed check runs and reviews requesting changes resume the task's agent (bounded by fix_attempts), its fixes are pushed to the same branch, and a merge on the forge marks the task merged. Refused with 409 conflict when the project has no [forge], its token variable is not set, the remote does not exist, or the task has no commits; 409 already_exists when it has an open pull request; 409 forge_refused with the forge's answer."),
        Op::post("/forge/github", tasks::github_webhook, "GitHub's webhook")
            .about("Point a GitHub webhook here (content type application/json; events: check runs, pull requests, pull request reviews) with the secret in the coordinator's variable named by the project's [forge] webhook_secret_env. Needs no Baton token: the X-Hub-Signature-256 header, checked against the secret of the project whose [forge] repo the payload names, authenticates it (401 otherwise, and nothing changes). A completed check run that failed, or a review requesting changes, resumes the task's agent; a merged pull request marks the task merged. Other events are acknowledged and ignored.")
            .takes("application/json", "GitHub's webhook payload (check_run, pull_request, pull_request_review, ping)"),
        Op::post("/chat/slack/events", chat::slack_events, "Slack's Events API")
            .about("Point the Slack app's Event Subscriptions here (app_mention, message.channels, message.im). Needs no Baton token: the X-Slack-Signature (v0 HMAC-SHA256 of `v0:timestamp:body` with the signing secret in the variable the project's [chat.slack] signing_secret_env names), within five minutes of X-Slack-Request-Timestamp, authenticates it (401 otherwise, and nothing changes). The url_verification challenge is answered. A mention starts a task in the channel's project (or talks to the agent it names first, or to the project's lead) and its answer goes in the thread; a reply in a thread Baton follows resumes that task's session. Each message is kept under its own id before the answer, so Slack's retries (X-Slack-Retry-Num) act once.")
            .takes("application/json", "Slack's event callback"),
        Op::post("/chat/slack/commands", chat::slack_commands, "Slack's slash command `/baton`")
            .about("`/baton run [--agent A] PROMPT`, `/baton status [TASK]`, `/baton approve|merge|stop|retry TASK`, signed as for events. Answered at once; the result follows through the command's response_url. Users with no role in the project's [chat.slack] are refused at once, only to them.")
            .takes("application/x-www-form-urlencoded", "Slack's slash command fields"),
        Op::post("/chat/slack/interactions", chat::slack_interactions, "Slack's interactivity: buttons on Baton's messages")
            .about("Approve, Merge, Retry and Stop act through the same scheduler functions as the API, and the message is edited to say who did what. Signed as for events; each press acts once.")
            .takes("application/x-www-form-urlencoded", "Slack's `payload` field"),
        Op::post("/chat/discord/interactions", chat::discord_interactions, "Discord's interactions endpoint")
            .about("Point the Discord application's Interactions Endpoint URL here. Needs no Baton token: the X-Signature-Ed25519 over X-Signature-Timestamp and the body, checked with the project's [chat.discord] public_key, authenticates it (401 otherwise). PING is answered with PONG; `/baton` commands get a deferred answer the worker fills in; buttons a deferred update of their message. Each interaction acts once.")
            .takes("application/json", "Discord's interaction"),
        Op::post("/chat/test", chat::test, "Send a test message to the project's chat channels (admin)")
            .about("Posts a test message to each channel of the project's [chat.slack] and [chat.discord] through the outbox and waits (up to 15 s) for each to be sent; says, per service, whether it was and why not. `baton chat test` calls it."),
        Op::post("/permissions", chat::ask_permission, "An agent asks for a permission it lacks")
            .about("What Claude Code's `--permission-prompt-tool` (Baton's MCP `permission_prompt`) sends for an agent whose definition says `ask_permission: true`. Needs the agent's session token. The request is posted with Allow and Deny buttons in every chat thread bound to the task and noted on its timeline; after `permission_timeout_s` (60 by default) the agent's `permission_policy` (deny by default) answers.")
            .returns::<baton_core::chat::PermissionRequest>("201", "the request"),
        Op::get("/permissions/{id}/wait", chat::wait_permission, "Wait for a permission request's answer")
            .about("Answers when the request is allowed or denied (by a person, or by the policy at its deadline), or after `timeout_s` (25 at most) with it still pending."),
        Op::post("/permissions/{id}", chat::answer_permission, "Answer a permission request (admin)")
            .about("Allow or deny; the first answer counts (409 after). Chat buttons do the same for operators."),
        Op::get("/chat/status", chat::status, "Chat services as this replica sees them")
            .about("For each project's Slack and Discord: refusals of its token in a row, whether posting stopped (after three 401/403) and why, whether its Socket Mode or Gateway connection is up, the last post and the last error."),
        Op::post("/forge/gitlab", tasks::gitlab_webhook, "GitLab's webhook")
            .about("Point a GitLab project's webhook here (merge request, pipeline, note and issue events) with the secret token in the coordinator's variable named by the project's [forge] webhook_secret_env (kind = \"gitlab\"). Needs no Baton token: the X-Gitlab-Token must be that secret (401 otherwise, and nothing changes). A merged merge request marks its task merged; a failed pipeline resumes the task's agent with its failed jobs' traces; a note on a task's merge request goes back to it as review feedback (`@baton …` as its next turn); an issue with the trigger label, or an `@baton` note on an issue, starts a task. Notes count only from people who may push (Developer or above).")
            .takes("application/json", "GitLab's webhook payload"),
        Op::post("/tasks/{id}/clean", tasks::clean, "Remove a task's worktree")
            .about("Removes the task's worktree without losing work. Refused with 409 conflict (details: the CleanReport) when the task is queued, running or checking, has no worktree, or when removing it would lose uncommitted changes or commits its base does not have, unless `force` (which still keeps an unmerged branch; a merged one is deleted). Needs the admin token, or the session token of the session that started the task. The body may be empty."),
        Op::post("/clean", tasks::clean_all, "Remove the worktrees of merged and abandoned tasks (admin)")
            .about("Cleans the worktree of every finished task that is merged, failed or cancelled (with `force`, of every finished task), one report each. A worktree that would lose work is kept and its refusal reported in the list, not as an error. The body may be empty."),
        Op::get("/sessions", sessions::list, "List sessions"),
        Op::get("/sessions/{id}", sessions::show, "A session with its runs"),
        Op::get("/sessions/{id}/events", sessions::events, "A session's events by sequence number"),
        Op::get("/sessions/{id}/state", sessions::get_state, "Launcher protocol: a session's saved agent state (its CLI's conversation files), to restore it on another host")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_STATE_BYTES))),
        Op::put("/sessions/{id}/state", sessions::put_state, "Launcher protocol: save a session's agent state with a checkpoint")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_STATE_BYTES))),
        Op::get("/runs/{id}", runs::show, "A run"),
        Op::post("/runs/{id}/started", runs::started, "Launcher protocol: the agent process started"),
        Op::post("/runs/{id}/checking", runs::checking, "Launcher protocol: the acceptance checks are running")
            .about("The agent finished and the launcher is running the task's acceptance checks in its worktree: the task moves to checking. Refused with 409 conflict unless the run is running, and with 403 for a launcher token of another launcher."),
        Op::post("/runs/{id}/events", runs::events, "Launcher protocol: events parsed from the spool between two offsets (stored once, with the offsets, in one transaction)")
            .map_route(|r| r.layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))),
        Op::post("/runs/{id}/finished", runs::finished, "Launcher protocol: the agent process ended"),
        Op::get("/launchers", launchers::list, "List launchers"),
        Op::post("/launchers/register", launchers::register, "Launcher protocol: register (again, after a restart, with the same id)"),
        Op::post("/launchers/{id}/poll", launchers::poll, "Launcher protocol: wait for runs to start or stop; woken the moment a run is queued")
            .path_schema("id", launcher_id()),
        Op::post("/launchers/{id}/attach", launchers::attach, "Launcher protocol: a restarted launcher names the runs it still has")
            .path_schema("id", launcher_id()),
        Op::post("/launchers/{id}/heartbeat", launchers::heartbeat, "Launcher protocol: heartbeat with the runs it supervises")
            .path_schema("id", launcher_id()),
        Op::post("/launchers/{id}/orders/done", launchers::order_done, "Launcher protocol: an order (stop, clean, fetch) was carried out")
            .path_schema("id", launcher_id()),
        Op::post("/launchers/{id}/drain", launchers::drain, "Drain a launcher: it finishes its runs and takes no new ones"),
        Op::post("/launchers/{id}/undrain", launchers::undrain, "Undrain a launcher: it takes new runs again"),
        Op::post("/runs/{id}/checkpoint", runs::checkpoint, "Launcher protocol: a run's work was committed to its branch as a checkpoint"),
        Op::get("/webhooks", webhooks::list, "List webhooks (admin)"),
        Op::post("/webhooks", webhooks::create, "Add a webhook (admin); its secret is in this answer only"),
        Op::get("/webhooks/{id}", webhooks::show, "A webhook (admin)"),
        Op::delete("/webhooks/{id}", webhooks::delete, "Remove a webhook and its deliveries (admin)"),
        Op::get("/webhooks/{id}/deliveries", webhooks::deliveries, "A webhook's deliveries, newest first (admin)"),
        Op::post("/webhooks/{id}/test", webhooks::test, "Send a test delivery to a webhook (admin)")
            .about("Queues a `webhook.test` delivery to this webhook alone, sent, signed and recorded like any other; follow it in its deliveries."),
        Op::post("/deliveries/{id}/redeliver", webhooks::redeliver, "Send a delivery again now: the same webhook-id and body, a retry window of its own (admin)"),
        Op::get("/tokens", tokens::list, "List tokens (admin): ids, kinds and subjects, never the secrets"),
        Op::post("/tokens", tokens::create, "Make a token (admin); the secret is in this answer only"),
        Op::delete("/tokens/{id}", tokens::revoke, "Revoke a token (admin); it stops working at once on every replica"),
        Op::get("/stream", stream::stream, "Live events: a WebSocket when the request upgrades, server-sent events otherwise. Resume with `after` or Last-Event-ID; without either, starts now.")
            .responds("101", "WebSocket: one JSON event per text frame", "")
            .responds("200", "server-sent events: `id`, `event` (the kind) and `data` (the event JSON)", "text/event-stream"),
        Op::post("/backup", meta::backup, "An online backup of the store (admin)")
            .about("On SQLite: a consistent copy taken while work goes on (the database with its blobs, the admin token and the spools of runs not finished) as a .tar.gz, which `baton restore FILE --data-dir DIR` makes a data directory of. On PostgreSQL: 409 saying how to back it up (pg_dump, or continuous archiving).")
            .responds("200", "the backup", "application/gzip"),
        Op::get("/me", memory::me, "Who this token speaks for")
            .about("The token's kind and, for an agent's session token, its session, task, agent and project: how an agent finds its own name for its memory and inbox."),
        Op::get("/schedules", schedules::list, "Schedules, soonest first")
            .about("Each schedule with its cron or interval, agent, prompt, catch_up, overlap, whether it is paused, when it is next due, and its last firing (its task, or why it was skipped)."),
        Op::post("/schedules", schedules::create, "Add a schedule (admin)")
            .about("A task at each due time: `cron` (five fields, UTC: `0 3 * * *`, `@daily`) or `every` (`30s`, `5m`, `2h`, `1d`; at least one second). Each firing is a task whose `origin` names the schedule, fired once per due time across replicas. `catch_up`: `skip` (default) or `once`, for firings missed while Baton was down; a firing does not start while the previous task is open unless `overlap`. A cron that does not parse is refused with 400 and `details.field`/`details.position`; an unknown agent with 404.")
            .returns::<baton_core::triggers::Schedule>("201", "the schedule"),
        Op::get("/schedules/{id}", schedules::show, "A schedule"),
        Op::delete("/schedules/{id}", schedules::delete, "Remove a schedule (admin)")
            .about("A schedule from a project's `[[schedules]]` is refused with 409: remove it there."),
        Op::post("/schedules/{id}/pause", schedules::pause, "Pause a schedule (admin)"),
        Op::post("/schedules/{id}/resume", schedules::resume, "Resume a schedule (admin); it is next due from now"),
        Op::get("/triggers", schedules::triggers, "Incoming-webhook triggers (admin), never their secrets"),
        Op::post("/triggers", schedules::add_trigger, "Add an incoming-webhook trigger (admin)")
            .about("`POST /api/triggers/{name}` then starts a task of `agent` whose prompt is `template` filled from the delivery: `{{payload}}` (the whole JSON), `{{payload.a.b}}` (a field; array items by index), `{{webhook_id}}`, `{{trigger}}`; any other placeholder is refused here. Its signing secret (`whsec_…`) is in this answer only. `per_hour` (60 by default) caps its tasks.")
            .returns::<baton_core::triggers::Trigger>("201", "the trigger, with its secret"),
        Op::post("/triggers/{name}", schedules::fire, "A delivery to a trigger: start its task")
            .about("Needs no Baton token: the Standard Webhooks signature (`webhook-id`, `webhook-timestamp` within five minutes, `webhook-signature` `v1,…` with the trigger's secret) authenticates it; 401 otherwise, and for an unknown trigger. A JSON body fills the template. The same `webhook-id` again answers 200 with the same task and starts nothing; past `per_hour` tasks in the last hour, 429 rate_limited with the limit in `details`.")
            .takes("application/json", "the sender's JSON payload"),
        Op::delete("/triggers/{name}", schedules::delete_trigger, "Remove a trigger and its deliveries (admin)"),
        Op::get("/worksets", worksets::list, "Worksets: groups of projects a task changes together")
            .about("Each workset with its projects (ids, and names: the directories of a task's worktrees), in order."),
        Op::post("/worksets", worksets::create, "Add a workset (admin)")
            .about("Two to 16 projects (ids or names), each once. A task with `workset` works in one directory holding a worktree of each project, named after it, each on the task's branch, and lands in all of them or none. Refused with 404 for an unknown project, with 422 invalid_combination for a project named twice, two projects whose directory names collide (names equal but for case: rename one), or a project whose agents work in its checkout itself (`worktrees = false`), and with 409 already_exists for a name taken.")
            .returns::<baton_core::workset::WorksetView>("201", "the workset"),
        Op::get("/worksets/{name}", worksets::show, "A workset"),
        Op::delete("/worksets/{name}", worksets::delete, "Remove a workset (admin); its tasks keep their projects"),
        Op::get("/openapi.json", meta::openapi, "This document: made from the routes and the Rust types they take and give")
            .responds("200", "the OpenAPI 3.1 document", "application/json"),
    ];
    Ops { prefix: "/api", ops }
}

/// The routes outside `/api`: the dashboard, health, metrics, action links.
pub(crate) fn site_ops() -> Ops {
    use crate::actions;
    let ops = vec![
        Op::get("/", dashboard::index, "The dashboard").responds("200", "the dashboard's page", "text/html"),
        Op::get("/assets/{*path}", dashboard::asset, "A file of the dashboard: one of its script modules (`main.js` and what it imports) or its style (`app.css`)")
            .responds("200", "the file", "text/javascript")
            .responds("200", "the file", "text/css")
            .responds("304", "not modified since the ETag given in If-None-Match", ""),
        Op::get("/login", dashboard::login, "Trade a one-time login code for the dashboard cookie")
            .about("Sets the HttpOnly, SameSite=Strict `baton_token` cookie and redirects (303) to `/`; a used or expired code gets a 401 page.")
            .responds("303", "logged in: the cookie is set", "")
            .responds("401", "a used, expired or unknown code", "text/html"),
        Op::get("/act/{task}/{action}/{key}", actions::confirm, "A one-tap action link: a confirmation page; changes nothing")
            .responds("200", "the confirmation page", "text/html")
            .responds("403", "not a link of this task and action", "text/html")
            .responds("410", "used or expired", "text/html"),
        Op::post("/act/{task}/{action}/{key}", actions::act, "A one-tap action link: acts once (approve, merge, retry or stop its task)")
            .responds("200", "done", "text/html")
            .responds("403", "not a link of this task and action", "text/html")
            .responds("409", "the task cannot do that now; the link still works", "text/html")
            .responds("410", "used or expired", "text/html"),
        Op::get("/healthz", meta::healthz, "Liveness: version, uptime, the store, this replica and whether it runs the timers"),
        Op::get("/metrics", meta::metrics, "Prometheus metrics").responds("200", "metrics in the text format", "text/plain"),
    ];
    Ops { prefix: "", ops }
}

/// The coordinator's router, over `state`, answering as `http` says.
pub fn app(state: Arc<AppState>, http: Arc<ServerConfig>) -> Router {
    let api = api_ops().router().fallback(not_found).method_not_allowed_fallback(method_not_allowed);
    let max_body = http.max_body_bytes;
    // MCP over streamable HTTP: the same tools as `baton mcp`, each call made with
    // the caller's own token against this coordinator's API.
    let coordinator = baton_client::Client::new(&state.config.public_url, None)
        .unwrap_or_else(|_| baton_client::Client::new("http://127.0.0.1:1", None).expect("a valid URL"));
    let mcp = Router::new()
        .nest_service("/mcp", baton_mcp::http_service(coordinator))
        .layer(middleware::map_response(http::mcp_allow))
        .layer(middleware::map_request(http::mcp_accept))
        .layer(middleware::map_response(http::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    site_ops()
        .router()
        .nest("/api", api)
        .merge(mcp)
        .merge(crate::git_http::routes(http.git_hooks_dir.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(http, auth::guard_origin))
        .with_state(state)
}

/// A launcher's exact id, as the launcher protocol's paths take it.
fn launcher_id() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": "^l-[0-9a-hjkmnp-tv-z]{10}$" })
}

/// A simple name (a memory block's label, say).
fn simple_name() -> serde_json::Value {
    serde_json::json!({ "type": "string", "pattern": baton_core::names::SIMPLE_NAME_PATTERN })
}

/// A document's name, as `/api/docs/{name}` takes it.
fn doc_name() -> serde_json::Value {
    serde_json::json!({ "type": "string", "minLength": 1, "maxLength": 200, "pattern": baton_core::names::DOC_NAME_PATTERN })
}

async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::new(ErrorCode::MethodNotAllowed, "this method is not allowed here")
}

/// Query-string limits shared by list endpoints.
fn clamp_limit(limit: Option<u32>, default: u32, max: u32) -> u32 {
    limit.unwrap_or(default).clamp(1, max)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;

    /// The document as served, parsed.
    fn document() -> serde_json::Value {
        serde_json::from_str(openapi::served()).unwrap()
    }

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = format!("{}\n", openapi::served());
        if std::env::var_os("BATON_BLESS").is_some() {
            std::fs::write(committed, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(committed).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json differs from the document the routes make: run \
             `BATON_BLESS=1 cargo test -p baton-server committed_document` and commit it"
        );
    }

    #[tokio::test]
    async fn every_documented_path_is_routed() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            baton_store::sqlite::open(&baton_store::sqlite::SqliteOptions::new(dir.path().join("b.db"))).unwrap();
        let config = ServerConfig::new("http://127.0.0.1:1");
        let state = Arc::new(AppState::new(store, config.coordinator.clone()));
        let router = app(state, Arc::new(config));
        let spec = document();
        for (path, ops) in spec["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let uri = path
                    .replace("{id}", "x")
                    .replace("{name}", "x")
                    .replace("{task}", "x")
                    .replace("{action}", "x")
                    .replace("{key}", "x");
                let req = Request::builder()
                    .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                    .uri(&uri)
                    .header("host", "127.0.0.1")
                    .body(Body::empty())
                    .unwrap();
                let resp = router.clone().oneshot(req).await.unwrap();
                let status = resp.status().as_u16();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let unrouted = status == 405 || json["error"]["message"] == "no such route";
                assert!(!unrouted, "{method} {path} is documented but not routed");
            }
        }
    }

    #[test]
    fn every_operation_has_an_answer_a_summary_and_resolvable_schemas() {
        let spec = document();
        let schemas = spec["components"]["schemas"].as_object().unwrap();
        let text = spec.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "a $ref to {name}, which is not in components");
        }
        for (path, ops) in spec["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                assert!(op["summary"].as_str().is_some_and(|s| !s.is_empty()), "{method} {path} has no summary");
                assert!(
                    op["responses"]
                        .as_object()
                        .is_some_and(|r| r.keys().any(|k| k.starts_with(['2', '3']) || k == "101")),
                    "{method} {path} documents no success"
                );
            }
        }
        // The types' own rules reach the document: a renamed field would show here.
        assert_eq!(schemas["CreateTask"]["additionalProperties"], false);
        assert!(schemas["CreateTask"]["properties"]["prompt"].is_object());
        assert!(
            spec["paths"]["/api/tasks"]["get"]["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "status")
        );
    }
}
