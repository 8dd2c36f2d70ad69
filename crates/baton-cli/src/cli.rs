//! The command line, defined once: parsing, `--help` and errors come from here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run a fleet of AI coding agents on your git repositories.
///
/// Start the coordinator in a repository with `baton up`, then hand out work with
/// `baton run "PROMPT"`. Every task runs on its own branch; `baton ps` shows them,
/// `baton logs -f ID` follows one, `baton result ID` prints what it answered.
#[derive(Debug, Parser)]
#[command(name = "baton", version, max_term_width = 100)]
#[command(after_help = EXIT_CODES)]
pub struct Cli {
    /// The coordinator's URL (default: the one `baton up` started for this
    /// directory). Several coordinators sharing one database: repeat it, or
    /// separate the URLs with commas; calls go to the next when one cannot be
    /// reached.
    #[arg(long, global = true, env = "BATON_URL", value_name = "URL", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub url: Vec<String>,

    /// The token to use (default: the admin token in the coordinator's data directory).
    #[arg(long, global = true, env = "BATON_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, shown at the end of `--help`.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the task failed, was cancelled or is blocked (commands that wait)
  2  the command line is wrong
  3  something named does not exist
  4  the request conflicts with the current state (for example, stopping a finished task)
  5  no coordinator could be reached
  6  the token is missing, unknown or not allowed to do this
  7  the input was refused as invalid
  10 the coordinator failed";

/// Baton's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the coordinator, the dashboard and a launcher for this repository.
    Up(UpArgs),
    /// Create a task: an agent works on PROMPT on a branch of its own.
    Run(RunArgs),
    /// List tasks.
    Ps(PsArgs),
    /// Show a task in detail.
    Show(IdArgs),
    /// Print a task's events (messages, tool calls, output).
    Logs(LogsArgs),
    /// Print what a task's agent answered.
    Result(IdArgs),
    /// Stop a task (its agent is interrupted, then killed after a grace period).
    Stop(StopArgs),
    /// Continue a finished task's conversation with a new message.
    Resume(ResumeArgs),
    /// Run a failed or cancelled task again.
    Retry(WaitIdArgs),
    /// Let a task that waits for approval start.
    Approve(IdArgs),
    /// Submit a plan: a DAG of tasks from a YAML or JSON file, checked whole first.
    Plan(PlanArgs),
    /// Plan, execute and synthesise a description with a planner agent and experts.
    Orchestrate(OrchestrateArgs),
    /// Show what a task changed against its base (committed and uncommitted).
    Diff(DiffArgs),
    /// Merge a succeeded task's branch into its base (after its unmerged prerequisites).
    Merge(MergeArgs),
    /// Push a succeeded task's branch to the project's forge and open a pull
    /// request; Baton then follows it (CI failures and requested changes go back
    /// to the agent, a merge on the forge marks the task merged).
    Pr(IdArgs),
    /// Remove the worktrees of merged or abandoned tasks (never losing work without --force).
    Clean(CleanArgs),
    /// Register and list projects (git repositories).
    #[command(subcommand)]
    Project(ProjectCommand),
    /// The context store: documents agents share (every version kept, searched by relevance).
    #[command(subcommand)]
    Doc(DocCommand),
    /// List agent definitions and whether they can run; `baton agents status` shows
    /// the agents that live between tasks (with memory, or leading a project).
    Agents(AgentsArgs),
    /// The lead Baton runs for a project and keeps alive: start, stop, status.
    #[command(subcommand)]
    Lead(LeadCommand),
    /// Record a Claude Code hook: reads the hook's JSON on stdin and adds it to the session
    /// that stands for that Claude Code session. Never blocks Claude Code: it gives up after
    /// two seconds and always exits 0. `baton hook install` writes the hook settings.
    Hook(HookArgs),
    /// Print a one-time login link for the dashboard (it sets a cookie, then the link is spent).
    Dashboard,
    /// Serve Baton's tools over MCP on stdin/stdout, for an MCP client such as Claude Code
    /// (`.mcp.json`: {"mcpServers": {"baton": {"command": "baton", "args": ["mcp"]}}}).
    Mcp,
    /// Run a launcher that takes work from a coordinator on another host
    /// (`baton launcher --url URL --token-file FILE`), or drain or undrain one.
    Launcher(LauncherArgs),
    /// List launchers: host, labels, slots used and total, programs, last
    /// heartbeat, state (online, draining, offline).
    Launchers(JsonArgs),
    /// List the concurrency pools (one per provider or account, `[pools]` in
    /// .baton/config.toml): limit, runs in use and queued, rate-limit refusals
    /// in the last hour. A pool's limit halves when its provider refuses for
    /// rate limits and grows back by one with each run that succeeds.
    Pools(JsonArgs),
    /// Check this host for Baton: git, the sandbox, container runtimes, the agent
    /// CLIs, permissions of tokens and database, exposure without TLS, free disk.
    /// One line each, with the fix; exit 1 when something must be fixed.
    Doctor(DoctorArgs),
    /// Tokens for machines: make one for a launcher, list them, revoke one.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Webhooks: tell Slack, Discord, ntfy or any HTTP endpoint when a task needs
    /// approval, fails, succeeds or is merged (signed as Standard Webhooks says,
    /// retried for 24 h, with one-tap action links).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// An agent's memory (for agents whose definition says `memory: true`):
    /// labelled blocks with a limit each, every version kept, and a journal Baton
    /// writes at each task's end. It reaches the agent at each task's start.
    #[command(subcommand)]
    Memory(MemoryCommand),
    /// Back up the SQLite store: a consistent copy taken while Baton runs (the
    /// database with its blobs, the admin token, the spools of runs not finished)
    /// into FILE (.tar.gz). `--verify FILE` checks a backup instead. On
    /// PostgreSQL, use pg_dump (see docs/operations.md).
    Backup(BackupArgs),
    /// Make a data directory from a backup (DIR must be empty or not exist); the
    /// first `baton up` there reconciles it with what it finds on disk.
    Restore {
        /// The backup.
        file: PathBuf,
        /// The data directory to make.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// On the same host: the old data directory, whose spools of the runs
        /// that were running are copied as they are now, so what the agents
        /// printed after the backup is ingested at the first start.
        #[arg(long, value_name = "OLD_DIR")]
        spools_from: Option<PathBuf>,
    },
    /// Chat: `baton chat test` sends a message to the project's Slack and Discord
    /// channels and says what worked; `baton chat status` shows each service.
    #[command(subcommand)]
    Chat(ChatCommand),
    /// Schedules: a task at each due time (`--cron EXPR` in UTC, or `--every DUR`).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Incoming webhooks that start tasks: `baton trigger add NAME --agent A
    /// --template T` prints the URL's signing secret.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Worksets: groups of projects a task changes together (`baton run
    /// --workset NAME`): one directory with a worktree of each, one review, one
    /// merge that lands in every repository or in none.
    #[command(subcommand)]
    Workset(WorksetCommand),
    /// Send a message to an agent's inbox. From a person it wakes the agent: a task
    /// of its own, ahead of the agent's queued tasks (inside an agent's task, the
    /// agent's authority decides). Prints the message's id and state.
    Send(SendArgs),
    /// An agent's inbox: each message with its sender and state (queued,
    /// delivered, done, refused).
    Inbox {
        /// The agent.
        agent: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print an agent's memory as Claude Code's SessionStart hook wants it (run
    /// by the hook Baton gives Claude Code agents with memory; not for people).
    #[command(hide = true)]
    MemoryContext {
        /// The memory as it was when the run started, used when the coordinator
        /// cannot be reached.
        #[arg(long, value_name = "FILE")]
        fallback: Option<PathBuf>,
    },
    /// Supervise one agent process (started by launchers; not for people).
    #[command(hide = true)]
    Supervise {
        /// The run's spool directory.
        dir: PathBuf,
    },
    /// Drive an Agent Client Protocol agent for one turn, printing Baton's JSON
    /// lines (run by launchers for `executor: acp` agents). The prompt is read
    /// from stdin.
    #[command(hide = true)]
    AcpClient(AcpClientArgs),
}

/// `baton launcher drain|undrain`.
#[derive(Debug, Subcommand)]
pub enum LauncherAction {
    /// Send no new work to a launcher; its running agents finish.
    Drain {
        /// The launcher's id (or its name).
        id: String,
    },
    /// Let a drained launcher take work again.
    Undrain {
        /// The launcher's id (or its name).
        id: String,
    },
}

/// `baton doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The data directory to check (default: `.baton/` of the repository you are in).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL store to check (as `baton up --store` takes it): the server's
    /// version, whether the connection is encrypted and what of the server's
    /// certificate was verified, and what a backup needs.
    #[arg(long, env = "BATON_STORE", value_name = "URL")]
    pub store: Option<String>,
    #[command(flatten)]
    pub embeddings: EmbeddingsArgs,
}

/// `baton token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (shown this once): `--launcher` for a launcher on
    /// another host (`baton launcher --token …`). It is bound to the first launcher
    /// that registers with it.
    Create {
        /// A token for a launcher (the only kind made here).
        #[arg(long, required = true)]
        launcher: bool,
        /// A name for people (the host it is for).
        #[arg(long)]
        name: Option<String>,
        /// Print JSON (`{"id", "token"}`).
        #[arg(long)]
        json: bool,
    },
    /// List launcher tokens (never the tokens themselves).
    List(JsonArgs),
    /// Revoke a token: it is refused from its next request on.
    Revoke {
        /// The token's id (`tok-…`, from `baton token list`).
        id: String,
    },
}

/// `baton webhook`.
#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add a webhook and print its signing secret (shown this once).
    ///
    /// Events: task.succeeded, task.failed, task.blocked, task.awaiting_approval,
    /// task.merged, merge.conflict, budget.exceeded, launcher.offline, lead.stale,
    /// plan.completed, orchestration.completed, or * for all of them.
    Add {
        /// Where to POST (http or https): a receiver of yours, a Slack or Discord
        /// incoming-webhook URL, or an ntfy topic URL (`https://ntfy.sh/TOPIC`).
        #[arg(value_name = "URL")]
        target: String,
        /// An event to send (repeatable, or comma-separated; `*` for all).
        #[arg(long = "event", short, required = true, value_name = "EVENT", value_delimiter = ',')]
        events: Vec<String>,
        /// Only this project's events (id or name; default: every project's).
        #[arg(long, short)]
        project: Option<String>,
        /// The bodies' shape: json (default), slack, discord or ntfy.
        #[arg(long, short, value_name = "FORMAT")]
        format: Option<String>,
        /// The signing secret (`whsec_` and base64); default: a new one.
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// Print JSON (the webhook, its secret included).
        #[arg(long)]
        json: bool,
    },
    /// List webhooks: URL, events, format, deliveries pending and failed.
    List(JsonArgs),
    /// Remove a webhook and its deliveries.
    Rm {
        /// The webhook's id (`wh_…`).
        id: String,
    },
    /// A webhook's recent deliveries, newest first: event, status, attempts.
    Deliveries {
        /// The webhook's id (`wh_…`).
        id: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON (with each attempt and the body).
        #[arg(long)]
        json: bool,
    },
    /// Send a delivery again now (the same webhook-id and body).
    Redeliver {
        /// The delivery's id (`msg_…`).
        id: String,
    },
}

/// `baton agents`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentsArgs {
    /// What to show instead of the definitions.
    #[command(subcommand)]
    pub action: Option<AgentsAction>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton agents status`.
#[derive(Debug, Subcommand)]
pub enum AgentsAction {
    /// The agents that live between tasks: each agent with memory and each lead,
    /// with its state (working, messages queued, idle), its queue and inbox, its
    /// memory against its limits, the projects it leads and its last activity.
    Status(JsonArgs),
}

/// `baton lead`.
#[derive(Debug, Subcommand)]
pub enum LeadCommand {
    /// Start the project's lead (the project's `lead` setting, or --agent): Baton
    /// renders its prompt from the lead template, restarts it when it dies, and
    /// wakes it only when something happens.
    Start {
        /// The project (default: the one you are in, or the only one).
        project: Option<String>,
        /// The agent that leads.
        #[arg(long)]
        agent: Option<String>,
    },
    /// Stop the project's lead and start it again in a fresh session.
    Restart {
        /// The project (default: the one you are in, or the only one).
        project: Option<String>,
        /// The agent that leads (default: the one that led).
        #[arg(long)]
        agent: Option<String>,
    },
    /// Stop the project's lead: Baton no longer keeps it alive.
    Stop {
        /// The project (default: the one you are in, or the only one).
        project: Option<String>,
    },
    /// The project's lead: agent, state, session, restarts, deadline.
    Status {
        /// The project (default: the one you are in, or the only one).
        project: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `baton memory`.
#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// The agent's blocks (size against limit, version), its journal's newest
    /// entries, and how much of it reaches the agent.
    Show {
        /// The agent.
        agent: String,
        /// Print the text exactly as it reaches the agent instead.
        #[arg(long)]
        context: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a block (a new version; the earlier ones are kept). A text longer than
    /// the block's limit is refused with both sizes and nothing changes.
    Set {
        /// The agent.
        agent: String,
        /// The block's label (`persona`, `notes`, or a new one).
        label: String,
        /// The text (`-` or none: read from stdin).
        text: Option<String>,
        /// Add the text at the block's end instead of replacing it.
        #[arg(long)]
        append: bool,
        /// A new limit, in characters.
        #[arg(long)]
        limit: Option<u32>,
        /// Make the block read-only to the agent (`--read-only=false` to undo).
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        read_only: Option<bool>,
        /// Share the block with these agents as well (repeatable, or comma-separated).
        #[arg(long, value_delimiter = ',')]
        share_with: Vec<String>,
    },
    /// Bring back an earlier version of a block (as the newest version).
    Revert {
        /// The agent.
        agent: String,
        /// The block's label.
        label: String,
        /// The version to bring back (see `baton memory versions`).
        version: u32,
    },
    /// Every version of a block, newest first.
    Versions {
        /// The agent.
        agent: String,
        /// The block's label.
        label: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a note to the agent's journal.
    Note {
        /// The agent.
        agent: String,
        /// The note.
        text: String,
    },
}

/// `baton backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (or, with --verify, the backup to check).
    pub file: PathBuf,
    /// The data directory (default: `.baton/` of the repository you are in).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Replace FILE when it exists.
    #[arg(long)]
    pub force: bool,
    /// Check the backup FILE: it opens, and SQLite's integrity check is clean.
    #[arg(long)]
    pub verify: bool,
    /// A PostgreSQL store: Baton does not copy it itself; this checks the server
    /// (its version, and the settings point-in-time recovery needs) and prints
    /// the pg_dump and pg_restore commands to use.
    #[arg(long, env = "BATON_STORE", value_name = "URL")]
    pub store: Option<String>,
}

/// `baton schedule`.
#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Add a schedule: each due time starts a task with PROMPT.
    Add {
        /// A five-field cron expression, in UTC (`0 3 * * *`, `@daily`).
        #[arg(long, conflicts_with = "every", required_unless_present = "every")]
        cron: Option<String>,
        /// Or an interval: `30s`, `5m`, `2h`, `1d` (at least one second).
        #[arg(long)]
        every: Option<String>,
        /// The agent (default: the project's).
        #[arg(long)]
        agent: Option<String>,
        /// The project (default: the one you are in, or the only one).
        #[arg(long, short)]
        project: Option<String>,
        /// Its name (default: from the prompt).
        #[arg(long)]
        name: Option<String>,
        /// Firings missed while Baton was down: skip (default) or once.
        #[arg(long, value_name = "skip|once")]
        catch_up: Option<String>,
        /// Start a firing while the previous task is still open.
        #[arg(long)]
        overlap: bool,
        /// What each task is asked.
        prompt: String,
    },
    /// List schedules: next due time, last firing.
    List(JsonArgs),
    /// Remove a schedule.
    Rm {
        /// Its id.
        id: String,
    },
    /// Pause a schedule.
    Pause {
        /// Its id.
        id: String,
    },
    /// Resume a schedule (next due from now).
    Resume {
        /// Its id.
        id: String,
    },
}

/// `baton workset`.
#[derive(Debug, Subcommand)]
pub enum WorksetCommand {
    /// Add a workset of two or more projects (ids or names); each becomes a
    /// directory named after it in its tasks' working directory.
    Add {
        /// Its name.
        name: String,
        /// Its projects, in order (the first is where its tasks are listed).
        #[arg(required = true, num_args = 2..)]
        projects: Vec<String>,
    },
    /// List worksets and their projects.
    List(JsonArgs),
    /// Remove a workset (its tasks keep their projects).
    Rm {
        /// Its name.
        name: String,
    },
}

/// `baton trigger`.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Add a trigger and print its signing secret (shown this once). Deliveries to
    /// `POST /api/triggers/NAME`, signed as Standard Webhooks says, start a task of
    /// AGENT with TEMPLATE filled from their JSON (`{{payload.field}}`).
    Add {
        /// Its name (the URL's last segment).
        name: String,
        /// The agent.
        #[arg(long)]
        agent: String,
        /// The prompt template.
        #[arg(long)]
        template: String,
        /// The project (default: the one you are in, or the only one).
        #[arg(long, short)]
        project: Option<String>,
        /// At most this many tasks an hour (default 60).
        #[arg(long)]
        per_hour: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List triggers (never their secrets).
    List(JsonArgs),
    /// Remove a trigger.
    Rm {
        /// Its name.
        name: String,
    },
}

/// `baton chat`.
#[derive(Debug, Subcommand)]
pub enum ChatCommand {
    /// Post a test message to each configured channel and say whether it went.
    Test {
        /// The project (default: the one you are in, or the only one).
        #[arg(long, short)]
        project: Option<String>,
    },
    /// Each project's chat services: token refusals, whether posting stopped and
    /// why, Socket Mode and Gateway connections.
    Status(JsonArgs),
}

/// `baton send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The agent.
    pub agent: String,
    /// What to say.
    pub message: String,
    /// The project its work belongs to (needed when there are several).
    #[arg(long, short)]
    pub project: Option<String>,
    /// An idempotency key: the same key again sends nothing more (default: a new one).
    #[arg(long)]
    pub key: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton acp-client`.
#[derive(Debug, Args)]
pub struct AcpClientArgs {
    /// The working directory: the session's, and the only place the agent's file
    /// requests are served from.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub cwd: PathBuf,
    /// How permission requests are answered.
    #[arg(long, value_parser = ["allow", "reject"], default_value = "allow")]
    pub permission: String,
    /// A JSON file of MCP servers (Claude Code's `mcpServers` shape) for the session.
    #[arg(long, value_name = "FILE")]
    pub mcp: Option<PathBuf>,
    /// The agent's session id to load (a follow-up turn) instead of a new session.
    #[arg(long, value_name = "ID")]
    pub resume: Option<String>,
    /// The agent's command and its arguments.
    #[arg(last = true, required = true, value_name = "AGENT")]
    pub command: Vec<String>,
}

/// `baton up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where to keep the database, tokens and run spools (default: `.baton/` in this repository).
    #[arg(long, env = "BATON_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, default_value = "127.0.0.1:7077", value_name = "ADDR")]
    pub listen: String,
    /// How many agents the embedded launcher runs at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub slots: u32,
    /// Start only the coordinator, without the embedded launcher.
    #[arg(long)]
    pub no_launcher: bool,
    /// Where the state is kept: `postgres://USER:PASSWORD@HOST:PORT/DB` (a
    /// PostgreSQL database, which several coordinators may share, all active), or
    /// `sqlite:PATH`. Default: the SQLite file `baton.db` in the data directory.
    #[arg(long, env = "BATON_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// What an acknowledged write survives: `process` (a crash or kill -9 of Baton)
    /// or `power` (a power loss; every commit is flushed to disk).
    #[arg(long, value_enum, default_value_t = Durability::Process)]
    pub durability: Durability,
    /// Seconds from the interrupt to SIGKILL when an agent is stopped.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub grace: u64,
    /// The URL agents and launchers reach this coordinator at (`BATON_URL`), and
    /// the host it answers to; needed when listening beyond loopback.
    #[arg(long, env = "BATON_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// A PEM certificate (chain) to serve HTTPS with (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen beyond loopback without TLS: tokens cross the network in the clear.
    #[arg(long)]
    pub insecure_http: bool,
    /// Seconds a launcher may stay silent before it is taken as gone and its runs
    /// start again elsewhere (launchers are asked to beat at a third of it, at
    /// most every 5 s).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub launcher_timeout: u64,
    /// Seconds of lead heartbeats to keep (`baton lead status` reads the newest;
    /// each project's newest is always kept).
    #[arg(long, default_value_t = 86_400, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub heartbeat_retention: u64,
    /// Days a settled task's printed output stays in the events table; after
    /// that it moves into compressed archives per session, still read by
    /// `baton logs`, the API and the dashboard (messages, tool calls and results
    /// stay). Fractions are taken (0.5 is 12 hours). Default: kept forever.
    #[arg(long, env = "BATON_RETAIN_OUTPUT_DAYS", value_name = "DAYS", value_parser = retain_days)]
    pub retain_output_days: Option<f64>,
    /// Seconds between a webhook delivery's tries, comma-separated; the last
    /// repeats until --webhook-window ends (jittered ± 20 %).
    #[arg(long, env = "BATON_WEBHOOK_RETRIES", default_value = "5,30,120,600,3600", value_name = "SECONDS,…", value_parser = seconds_list)]
    pub webhook_retries: SecondsList,
    /// Seconds a webhook delivery is tried for before it is marked failed.
    #[arg(long, env = "BATON_WEBHOOK_WINDOW", default_value_t = 86_400.0, value_name = "SECONDS", value_parser = seconds)]
    pub webhook_window: f64,
    /// Seconds one try of a webhook delivery may take.
    #[arg(long, env = "BATON_WEBHOOK_TIMEOUT", default_value_t = 10.0, value_name = "SECONDS", value_parser = seconds)]
    pub webhook_timeout: f64,
    /// Seconds a notification's one-tap action link works.
    #[arg(long, env = "BATON_ACTION_LINK_TTL", default_value_t = 86_400.0, value_name = "SECONDS", value_parser = seconds)]
    pub action_link_ttl: f64,
    #[command(flatten)]
    pub embeddings: EmbeddingsArgs,
}

/// Where the context store's embeddings come from (`baton up`, `baton doctor`).
#[derive(Debug, Clone, Args)]
pub struct EmbeddingsArgs {
    /// Search the context store by meaning too: the base URL of an
    /// OpenAI-compatible embeddings API (`http://127.0.0.1:11434/v1` for Ollama;
    /// llama.cpp, vLLM and hosted APIs alike). Documents are embedded in the
    /// background; without it, search is by words only.
    #[arg(long = "embeddings", env = "BATON_EMBEDDINGS", value_name = "URL")]
    pub url: Option<String>,
    /// The embedding model to ask for. Changing it embeds every document again;
    /// the old vectors are never mixed with the new.
    #[arg(
        long = "embeddings-model",
        env = "BATON_EMBEDDINGS_MODEL",
        default_value = "nomic-embed-text",
        value_name = "MODEL"
    )]
    pub model: String,
    /// The environment variable holding the endpoint's API key (sent as a bearer
    /// token); `baton up` refuses to start when it is not set.
    #[arg(long = "embeddings-key-env", env = "BATON_EMBEDDINGS_KEY_ENV", value_name = "VAR")]
    pub key_env: Option<String>,
    /// The number of dimensions the model's vectors have (learned from the first
    /// answer when not given); a vector of another is refused, and changing this
    /// embeds every document again.
    #[arg(long = "embeddings-dims", env = "BATON_EMBEDDINGS_DIMS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub dims: Option<u32>,
}

/// Seconds, comma-separated (see [`UpArgs::webhook_retries`]).
#[derive(Debug, Clone)]
pub struct SecondsList(pub Vec<f64>);

fn seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 31_536_000.0 => Ok(s),
        _ => Err(format!("{text:?} is not a number of seconds above 0")),
    }
}

fn retain_days(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 && d <= 36_500.0 => Ok(d),
        _ => Err(format!("{text:?} is not a number of days above 0 (at most 36,500)")),
    }
}

fn seconds_list(text: &str) -> Result<SecondsList, String> {
    text.split(',').map(seconds).collect::<Result<Vec<_>, _>>().map(SecondsList)
}

/// See [`UpArgs::durability`].
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Durability {
    /// Survive a crash of Baton.
    Process,
    /// Survive a power loss.
    Power,
}

/// `baton run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do (`-` reads it from stdin).
    pub prompt: String,
    /// The project (id or name; default: the repository you are in).
    #[arg(long, short)]
    pub project: Option<String>,
    /// The agent to use (default: one matching --tag, else the project's default).
    #[arg(long, short)]
    pub agent: Option<String>,
    /// A task that must succeed first (repeatable).
    #[arg(long = "after", value_name = "TASK")]
    pub after: Vec<String>,
    /// A short title (default: the prompt's first line).
    #[arg(long, short)]
    pub title: Option<String>,
    /// A capability the agent must have (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// An acceptance check run in the worktree afterwards (repeatable).
    #[arg(long = "check", value_name = "COMMAND")]
    pub checks: Vec<String>,
    /// Seconds the agent may run.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Stop a run that prints nothing for this long, as stalled (its work is
    /// committed); default: the agent's `stall_s`, else never.
    #[arg(long, value_name = "SECONDS")]
    pub stall: Option<u64>,
    /// Automatic retries when the agent fails.
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Spending limit in US dollars.
    #[arg(long, value_name = "USD")]
    pub budget: Option<f64>,
    /// Wait for `baton approve` before starting.
    #[arg(long)]
    pub approval: bool,
    /// The branch to work on (default `baton/<short-id>-<slug-of-title>`).
    #[arg(long)]
    pub branch: Option<String>,
    /// How the agent is isolated: auto (a sandbox where the host allows one),
    /// required (fail rather than run without one), off, or container.
    #[arg(long, value_name = "MODE")]
    pub sandbox: Option<baton_core::sandbox::SandboxMode>,
    /// A launcher label the host must have (`gpu`, `region=eu`; repeatable).
    #[arg(long = "require", value_name = "LABEL")]
    pub require: Vec<String>,
    /// How many times the agent is resumed to fix failing checks, a conflict or
    /// its pull request's failures (default: the agent's, the project's, else 2; 0: off).
    #[arg(long, value_name = "N")]
    pub fix_attempts: Option<u32>,
    /// When its merge conflicts: `refuse` (default) or `resume` the agent to resolve it.
    #[arg(long, value_name = "WHAT", value_parser = ["refuse", "resume"])]
    pub on_conflict: Option<String>,
    /// An agent that reviews the work once its checks pass; requested changes go
    /// back to this task's agent, and `baton merge` waits for an approval.
    #[arg(long, value_name = "AGENT")]
    pub review_by: Option<String>,
    /// How many times requested changes go back to the agent (default 2).
    #[arg(long, value_name = "N")]
    pub review_rounds: Option<u32>,
    /// The model the agent runs with for this task, overriding its definition's.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// The branch the task starts from and lands on (default: the project's
    /// default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// Change every project of a workset together (`baton workset add`): the
    /// agent works in one directory with a worktree of each, named after them.
    #[arg(long, value_name = "NAME", conflicts_with = "project")]
    pub workset: Option<String>,
    /// Follow the task to its end, showing progress; exit 1 if it fails.
    #[arg(long, short)]
    pub wait: bool,
    /// Print the task as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Only this project's tasks.
    #[arg(long, short)]
    pub project: Option<String>,
    /// Only tasks in these statuses (comma-separated).
    #[arg(long, short)]
    pub status: Option<String>,
    /// Include finished tasks older than a day.
    #[arg(long, short)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Commands that name a task.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Commands that name a task and can wait for it.
#[derive(Debug, Args)]
pub struct WaitIdArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// Follow the task to its end.
    #[arg(long, short)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// Keep following until the task ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Print each event as a JSON line.
    #[arg(long)]
    pub json: bool,
}

/// `baton stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// Why (recorded on the task).
    #[arg(long)]
    pub reason: Option<String>,
    /// Wait until the agent is gone.
    #[arg(long, short)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// The follow-up message (`-` reads it from stdin).
    pub message: String,
    /// Give the task a new budget in US dollars first (a task paused because
    /// its budget was spent continues with it).
    #[arg(long, value_name = "USD")]
    pub budget: Option<f64>,
    /// Follow the task to its end.
    #[arg(long, short)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Commands with only `--json`.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The plan file (`.yaml`, `.yml` or `.json`; `-` reads YAML or JSON from stdin).
    pub file: PathBuf,
    /// The project (id or name; default: the plan's, else the repository you are in).
    #[arg(long, short)]
    pub project: Option<String>,
    /// Follow every task of the plan until all have settled; exit 1 unless all succeeded.
    #[arg(long, short)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton orchestrate`.
#[derive(Debug, Args)]
pub struct OrchestrateArgs {
    /// What to build (`-` reads it from stdin).
    pub description: String,
    /// The project (id or name; default: the repository you are in).
    #[arg(long, short)]
    pub project: Option<String>,
    /// The planning agent.
    #[arg(long)]
    pub planner: Option<String>,
    /// The synthesising agent.
    #[arg(long)]
    pub synthesizer: Option<String>,
    /// Follow it to the end and print the final result.
    #[arg(long, short)]
    pub wait: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// Only the summary: files and their changed lines.
    #[arg(long)]
    pub stat: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// How a task lands on its base.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Strategy {
    /// A merge commit.
    Merge,
    /// One commit with all the task's changes.
    Squash,
    /// The task's commits replayed on the base.
    Rebase,
}

/// `baton merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The task's id (or a unique prefix of it).
    pub id: String,
    /// How to merge (default: the project's `merge_strategy`).
    #[arg(long, value_enum)]
    pub strategy: Option<Strategy>,
    /// Merge even though the task's reviewer has not approved it (`review_by`).
    #[arg(long)]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Tasks whose worktrees to remove (default: every merged, failed or cancelled task).
    pub ids: Vec<String>,
    /// Remove even worktrees with uncommitted changes or unmerged commits (branches with
    /// unmerged commits are kept).
    #[arg(long)]
    pub force: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `baton project`.
#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Register a git repository (with at least one commit) as a project.
    Add {
        /// The repository's top directory.
        path: PathBuf,
        /// A name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// The base branch (default: the repository's current branch).
        #[arg(long)]
        branch: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List projects.
    List(JsonArgs),
    /// Read a project's .baton/config.toml and agent files again (budgets,
    /// pools, limits...). Tasks paused for a budget that now has room continue.
    Reload {
        /// The project's id or name.
        project: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `baton hook`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// `install`; without it, record the hook read from stdin.
    #[command(subcommand)]
    pub command: Option<HookCommand>,
}

/// `baton hook install`.
#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Add `baton hook` to a project's Claude Code settings for every hook event
    /// (`.claude/settings.local.json`, or `.claude/settings.json` with --shared). Idempotent.
    Install {
        /// The project's directory (default: this repository's top directory).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Write the settings file that is committed and shared with the team.
        #[arg(long)]
        shared: bool,
    },
}

/// `baton doc ...`.
#[derive(Debug, Subcommand)]
pub enum DocCommand {
    /// Create a document, or write a new version of it, from FILE (or stdin).
    Push {
        /// Its name: `/`-separated segments of letters, digits, `.`, `_`, `-` (`notes/api.md`).
        name: String,
        /// The file to read (`-` or nothing: stdin). Bytes that are not UTF-8 are stored as binary.
        file: Option<PathBuf>,
        /// A tag (repeatable); replaces the earlier tags when given.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Metadata KEY=VALUE (repeatable; VALUE is JSON when it parses, else text).
        #[arg(long = "meta", value_name = "KEY=VALUE")]
        meta: Vec<String>,
        /// A relation KIND:NAME (kind: parent, child, related, predecessor, successor; repeatable).
        #[arg(long = "rel", value_name = "KIND:NAME")]
        relations: Vec<String>,
        /// Its media type (default text/markdown, or application/octet-stream for bytes).
        #[arg(long)]
        content_type: Option<String>,
        /// The project it is about.
        #[arg(long)]
        project: Option<String>,
        /// Add the text at the end of the current version instead of replacing it
        /// (all an agent whose document rules say `append` may do).
        #[arg(long)]
        append: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a document's content to FILE (or stdout).
    Pull {
        /// The document.
        name: String,
        /// Where to write it (default: stdout).
        file: Option<PathBuf>,
        /// An earlier version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Print a document's content.
    Read {
        /// The document.
        name: String,
        /// An earlier version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Search documents by words, by meaning, or both (ranked together), or list them.
    Query {
        /// What to look for (none: the newest documents).
        words: Vec<String>,
        /// `hybrid` (words and meaning, the default when the coordinator has an
        /// embeddings endpoint), `words`, or `meaning`.
        #[arg(long, value_parser = ["hybrid", "words", "meaning"])]
        mode: Option<String>,
        /// Only documents with this tag (repeatable; all required).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Only names starting with this.
        #[arg(long)]
        prefix: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a document's metadata, relations and versions.
    Info {
        /// The document.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Embed every document again (after a failure), or with --status only show
    /// the meaning index: its model, the documents waiting, and those that failed.
    Reindex {
        /// Only show the index's state.
        #[arg(long)]
        status: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a document and all its versions.
    Delete {
        /// The document.
        name: String,
    },
}

/// `baton launcher`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LauncherArgs {
    /// Drain or undrain a launcher instead of running one.
    #[command(subcommand)]
    pub action: Option<LauncherAction>,
    /// Where to keep run spools and the launcher's id.
    #[arg(long, env = "BATON_LAUNCHER_DIR", value_name = "DIR", default_value = ".baton-launcher")]
    pub data_dir: PathBuf,
    /// How many agents to run at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub slots: u32,
    /// A name for this launcher (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
    /// A label for placement (`gpu`, `region=eu`; repeatable): tasks and agents
    /// that `require` labels run only on launchers that have them.
    #[arg(long = "label", value_name = "LABEL")]
    pub labels: Vec<String>,
    /// A PEM file of CA certificates to trust for the coordinator (a private CA).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A file holding the launcher token (instead of --token, which other users
    /// of the host can read in the process list).
    #[arg(long, value_name = "FILE", env = "BATON_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}
