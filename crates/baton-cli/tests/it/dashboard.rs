//! The dashboard: its login link, its assets, and the whole of it in a real
//! browser (Debian's headless Chromium driven by playwright-core, both installed
//! by `scripts/setup-test-deps`), with a screenshot of each main view saved under
//! `target/dashboard-screenshots/`.

use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::harness::{BATON, Baton};

/// A fresh one-time login link from `baton dashboard`.
fn login_link(b: &Baton) -> String {
    let out = b.cli(&["dashboard"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn a_login_link_works_once_and_sets_an_http_only_cookie() {
    let b = Baton::start();
    let link = login_link(&b);
    assert!(link.starts_with(&format!("{}/login?code=", b.url)), "{link}");
    let client = no_redirects();
    let resp = client.get(&link).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/", "the code leaves the address bar at once");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    // The cookie is a token the API accepts.
    let tasks = client.get(format!("{}/api/tasks", b.url)).header("cookie", &pair).send().await.unwrap();
    assert_eq!(tasks.status(), 200);
    // The link is spent.
    let again = client.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 401);
    assert!(again.text().await.unwrap().contains("baton dashboard"));
    let bad = client.get(format!("{}/login?code=guess", b.url)).send().await.unwrap();
    assert_eq!(bad.status(), 401);
    // Without a cookie or token the API refuses; the page itself loads (and says so).
    let anon = client.get(format!("{}/api/tasks", b.url)).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    // A page of another site cannot use the cookie to act.
    let forged = client
        .post(format!("{}/api/tasks", b.url))
        .header("cookie", &pair)
        .header("origin", "https://evil.example")
        .json(&json!({ "prompt": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_by_baton_itself() {
    let b = Baton::start();
    let client = no_redirects();
    let page = client.get(format!("{}/", b.url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains("/assets/main.js") && html.contains("/assets/app.css"), "{html}");
    // Every module the page names (it preloads them all; a unit test checks that
    // every module's imports are among them), and its style.
    let modules: Vec<&str> = html
        .split("<link rel=\"modulepreload\" href=\"/assets/")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    assert!(
        modules.len() > 20 && modules.contains(&"main.js") && modules.contains(&"views/task/view.js"),
        "{modules:?}"
    );
    for path in modules.iter().copied().chain(["app.css"]) {
        let r = client.get(format!("{}/assets/{path}", b.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let kind = if path.ends_with(".css") { "text/css" } else { "text/javascript" };
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let body = r.text().await.unwrap();
        assert!(!body.contains("http://") && !body.contains("https://"), "{path} loads nothing from elsewhere");
        // A reload asks with the ETag and gets no body.
        let again = client.get(format!("{}/assets/{path}", b.url)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    let missing = client.get(format!("{}/assets/views/nothing.js", b.url)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_real_browser() {
    let embeddings = baton_testkit::embeddings::FakeEmbeddings::start(64).await;
    let mut b = Baton::start_with(&["--embeddings", &embeddings.url]);
    let talker = r#"i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo "{\"type\":\"tool_call\",\"id\":\"c$i\",\"name\":\"Bash\",\"input\":{\"command\":\"step $i\"}}"; echo "{\"type\":\"tool_result\",\"id\":\"c$i\",\"output\":\"ok $i\"}"; echo '{"type":"usage","input_tokens":10,"output_tokens":2,"cost_usd":0.001}'; sleep 0.3; done"#;
    b.agent("talker", talker).await;
    b.agent("writer", "echo hello > greeting.txt; echo wrote it").await;
    b.agent("same-a", "echo A > same.txt").await;
    b.agent("same-b", "echo B > same.txt").await;
    let verdict = r#"{"verdict":"approve","comments":[{"file":"note.txt","line":1,"body":"Friendly."}]}"#;
    let approver = format!(
        "python3 -c 'import json,sys; print(json.dumps({{\"type\":\"result\",\"text\":sys.argv[1]}}))' '{verdict}'"
    );
    b.agent("approver", &approver).await;
    b.agent("noter", "echo reviewed > note.txt").await;
    // A workset of two more projects, for a task's diff by repository.
    for name in ["api", "web"] {
        let repo = crate::harness::git_repo(&b.dir.path().join(name));
        let _: Value =
            b.client.post("/api/projects", &serde_json::json!({ "path": repo, "name": name })).await.unwrap();
    }
    let _: Value = b
        .client
        .post("/api/worksets", &serde_json::json!({ "name": "full", "projects": ["api", "web"] }))
        .await
        .unwrap();
    b.agent("pair", "echo v2 > api/lib.txt && echo 'calls v2' > web/client.txt && echo done").await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    let mut script = Script::start("dashboard.mjs", &b, &[("SHOTS", shots.display().to_string())]);
    // The script asks for what only this side can do to the coordinator.
    let home = b.address();
    while let Some(line) = script.next().await {
        let answer = match line.as_str() {
            // Gone from where the page knows it; a task runs to its end elsewhere meanwhile.
            "ask: away" => {
                b.restart_at("127.0.0.1:0");
                let out = b.cli(&["run", "--agent", "writer", "--title", "while away", "--wait", "--json", "Do it"]);
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                let task: Value = serde_json::from_slice(&out.stdout).unwrap();
                task["id"].as_str().unwrap().to_owned()
            }
            "ask: back" => {
                b.restart_at(&home);
                "back".to_owned()
            }
            _ => continue,
        };
        script.answer(&answer).await;
    }
    script.finish().await;
    for view in [
        "board",
        "task-timeline",
        "review",
        "merge-conflict",
        "overview",
        "dag",
        "agents",
        "costs",
        "docs",
        "workset-diff",
        "review-verdict",
    ] {
        let file = shots.join(format!("{view}.png"));
        let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 5_000, "{view}.png is not a real screenshot");
    }
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert!(tasks.iter().any(|t| t["git"]["merge"] == "merged"), "the page merged a task");
}

/// What the cockpit's script asks this side to do: release an attempt (the file
/// its agent waits for), say whether a worktree is gone, list `main`'s files,
/// or say whether the webhook receiver got its test.
async fn cockpit_answer(b: &Baton, line: &str, received: &std::sync::atomic::AtomicUsize) -> Option<String> {
    let ask = line.strip_prefix("ask: ")?;
    let (what, arg) = ask.split_once(' ').unwrap_or((ask, ""));
    Some(match what {
        "release" => {
            let t = b.get(arg).await;
            let wt = t.task.git.worktree.expect("a worktree");
            std::fs::write(Path::new(&wt).join("go"), "").unwrap();
            "released".to_owned()
        }
        "worktree" => {
            let t = b.get(arg).await;
            let gone = t.task.git.worktree.is_none_or(|w| !Path::new(&w).exists());
            if gone { "gone" } else { "there" }.to_owned()
        }
        "main" => b.sh("git ls-tree --name-only main").replace('\n', " "),
        "hook" => {
            let start = std::time::Instant::now();
            while received.load(std::sync::atomic::Ordering::SeqCst) == 0 && start.elapsed().as_secs() < 20 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            if received.load(std::sync::atomic::Ordering::SeqCst) > 0 { "received" } else { "missing" }.to_owned()
        }
        _ => return None,
    })
}

#[tokio::test]
async fn the_cockpit_in_a_real_browser() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton/agents")).unwrap();
        std::fs::write(repo.join(".baton/agents/filed.md"), "---\ncommand: [sh, -c, 'true']\n---\nFrom a file.\n")
            .unwrap();
    });
    let attempt = r#"if [ "$BATON_RESUME" = 1 ]; then printf '%s\n' "$BATON_PROMPT" > followup.txt; git add -A; git commit -qm followup; exit 0; fi; echo "$BATON_TASK_ID" > "result-$BATON_TASK_ID.txt"; git add -A; git commit -qm attempt; while [ ! -f go ]; do sleep 0.1; done; rm go"#;
    b.agent("attempt", attempt).await;
    let second = crate::harness::git_repo(&b.dir.path().join("second-home"));
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
    let count = std::sync::Arc::clone(&received);
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let count = std::sync::Arc::clone(&count);
                async move {
                    if body.contains("webhook.test") {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    "ok"
                }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    let env =
        [("SHOTS", shots.display().to_string()), ("SECOND_REPO", second.display().to_string()), ("HOOK_URL", hook_url)];
    let mut script = Script::start("cockpit.mjs", &b, &env);
    while let Some(line) = script.next().await {
        if let Some(answer) = cockpit_answer(&b, &line, &received).await {
            script.answer(&answer).await;
        }
    }
    let stdout = script.finish().await;
    assert!(stdout.contains("step: done"), "{stdout}");
}

/// A browser script of `testkit/browser/` run by node against `b`: its lines as
/// they come (a line `ask: …` waits for an answer on its stdin), and its end.
struct Script {
    node: tokio::process::Child,
    answers: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    stdout: String,
}

impl Script {
    /// Starts `name` with the coordinator's address, a token, the repository and a
    /// login link, and `env`.
    fn start(name: &str, b: &Baton, env: &[(&str, String)]) -> Script {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/browser").join(name);
        assert!(
            script.parent().unwrap().join("node_modules/playwright-core").exists(),
            "playwright-core is not installed in testkit/browser: run scripts/setup-test-deps"
        );
        let mut node = tokio::process::Command::new("node")
            .arg(&script)
            .env("BATON", BATON)
            .env("BATON_URL", &b.url)
            .env("BATON_TOKEN", &b.token)
            .env("REPO", &b.repo)
            .env("LOGIN_URL", login_link(b))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let answers = node.stdin.take().unwrap();
        let lines = BufReader::new(node.stdout.take().unwrap()).lines();
        let mut stderr = node.stderr.take().unwrap();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            text
        });
        Script { node, answers, lines, stderr, stdout: String::new() }
    }

    /// Its next line, or none at its end.
    async fn next(&mut self) -> Option<String> {
        let line = self.lines.next_line().await.unwrap()?;
        self.stdout.push_str(&line);
        self.stdout.push('\n');
        Some(line)
    }

    /// Answers the question it asked last.
    async fn answer(&mut self, text: &str) {
        self.answers.write_all(format!("{text}\n").as_bytes()).await.unwrap();
    }

    /// Waits for its end, which must be a success; what it printed.
    async fn finish(mut self) -> String {
        let status = self.node.wait().await.unwrap();
        let stderr = self.stderr.await.unwrap();
        assert!(status.success(), "{}\n{stderr}", self.stdout);
        self.stdout
    }
}
