// Drives the cockpit — the dashboard as a seat — in Debian's headless Chromium
// with playwright-core: a person who never opens a terminal adds a project,
// defines an agent, starts three attempts of a task, talks to the one still
// running, comments on its diff, keeps the best attempt and merges it; writes
// a plan; adds a webhook and a token; reaches every view from the palette;
// approves from the inbox with one key; and does compose → run → merge with
// the keyboard alone. Started by `dashboard::the_cockpit_in_a_real_browser`
// with BATON, BATON_URL, BATON_TOKEN, REPO, SECOND_REPO, HOOK_URL, LOGIN_URL
// and SHOTS. Prints one line per step; exits non-zero on the first failure.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { launchChromium } from "./launch.mjs";

const env = process.env;
const base = env.BATON_URL;
const TIMEOUT = 60_000;
const step = (text) => console.log(`step: ${text}`);
const cli = (args) => execFileSync(env.BATON, args, { cwd: env.REPO, env, encoding: "utf8" }).trim();

async function api(path, init = {}) {
  const r = await fetch(base + path, { ...init, headers: { authorization: `Bearer ${env.BATON_TOKEN}`, "content-type": "application/json", ...(init.headers || {}) } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
}

async function until(what, check, limit = TIMEOUT) {
  const start = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - start > limit) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  console.log(`ask: ${what}`);
  const answer = await answers.next();
  if (answer.done) throw new Error(`no answer to "${what}"`);
  return answer.value.trim();
}

const taskCount = async () => (await api("/api/tasks")).length;
const task = (id) => api(`/api/tasks/${id}`);

mkdirSync(env.SHOTS, { recursive: true });
const browser = await launchChromium();
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("dialog", (d) => d.accept());
  const shot = async (name) => {
    await page.waitForTimeout(150);
    await page.screenshot({ path: `${env.SHOTS}/cockpit-${name}.png`, fullPage: true });
  };
  const hash = (h) => page.evaluate((x) => (location.hash = x), h);

  step("log in");
  await page.goto(env.LOGIN_URL);
  await page.waitForSelector('[data-live="connected"]');
  await page.waitForSelector('[data-view="overview"]');

  await projects(page, shot);
  await agents(page, shot);
  await living(page, shot, hash);
  await composer(page, shot, hash);
  const kept = await attempts(page, shot, hash);
  await planEditor(page, shot, hash);
  await webhooksAndTokens(page, hash);
  await palette(page);
  await inbox(page, hash);
  await keyboardOnly(page);
  await phone(page, hash, kept);
  if (pageErrors.length) throw new Error(`script errors: ${pageErrors.join("; ")}`);
  step("done");
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

async function living(page, shot, hash) {
  step("agents that live: memory edited, refused past its limit and reverted; a lead stopped and started from the page");
  await api("/api/agents", { method: "POST", body: JSON.stringify({ name: "keeper", executor: "command", command: ["true"], memory: true }) });
  await api("/api/agents", { method: "POST", body: JSON.stringify({ name: "captain", executor: "command", command: ["sh", "-c", "echo planned"], delegates_to: ["*"] }) });
  await api("/api/projects/repo/lead/start", { method: "POST", body: JSON.stringify({ agent: "captain" }) });
  await hash("#/agents");
  await page.waitForSelector('[data-living-agent="keeper"]');
  await page.click('[data-living-agent="keeper"] [data-action="open-memory"]');
  const notes = page.locator('[data-block="notes"] textarea');
  await notes.fill("Deploys go through staging first.");
  await page.click('[data-block="notes"] [data-action="save-block"]');
  await page.waitForSelector('[data-block-size="notes"]:has-text("version 1")');
  await notes.fill("x".repeat(5001));
  await page.click('[data-block="notes"] [data-action="save-block"]');
  await page.waitForSelector('[data-block="notes"] [role="alert"]:has-text("5000")');
  await notes.fill("Deploys go through canary first.");
  await page.click('[data-block="notes"] [data-action="save-block"]');
  await page.waitForSelector('[data-block-size="notes"]:has-text("version 2")');
  await page.click('[data-block="notes"] summary');
  await page.click('[data-block="notes"] [data-action="revert-block"] >> nth=-1');
  await until("reverted to version 1's text", async () => (await api("/api/agents/keeper/memory")).blocks.find((b) => b.label === "notes").text === "Deploys go through staging first.");
  await shot("memory");
  await page.keyboard.press("Escape");
  await until("the lead rests", async () => (await api("/api/projects/repo/lead")).state === "idle");
  await hash("#/overview");
  await hash("#/agents");
  await page.click('[data-lead-project="repo"] [data-action="lead-stop"]');
  await until("the lead stopped", async () => (await api("/api/projects/repo/lead")).state === "stopped");
  await page.waitForSelector('[data-lead-project="repo"] [data-action="lead-start"]');
  await page.click('[data-lead-project="repo"] [data-action="lead-start"]');
  await until("the lead started again", async () => (await api("/api/projects/repo/lead")).wanted === true);
  await api("/api/projects/repo/lead/stop", { method: "POST", body: "{}" });
}

async function projects(page, shot) {
  step("projects: a path that is not a repository is refused beside its field; a real one is added");
  await page.click('[data-nav="projects"]');
  await page.click('[data-action="add-project"]');
  await page.locator("dialog[open]").getByLabel("Path").fill("/nonexistent/place");
  await page.click('[data-action="save-project"]');
  await page.waitForSelector('[data-error-for="Path"]:not([hidden])');
  const before = (await api("/api/projects")).length;
  await page.locator("dialog[open]").getByLabel("Path").fill(env.SECOND_REPO);
  await page.locator("dialog[open]").getByLabel("Name", { exact: true }).fill("second");
  await page.click('[data-action="save-project"]');
  await page.waitForSelector('[data-project="second"]');
  if ((await api("/api/projects")).length !== before + 1) throw new Error("the project was not added once");
  step("its settings: a broken value is refused on its line; a good one is saved");
  await page.click('[data-project="second"] [data-action="settings"]');
  const box = page.locator("dialog[open]").getByLabel("Settings");
  await box.fill("parallel_limit = \"many\"\n");
  await page.click('[data-action="save-settings"]');
  await page.waitForSelector('[data-error-for="Settings"]:has-text("line 1")');
  await box.fill("parallel_limit = 4\n");
  await page.click('[data-action="save-settings"]');
  await until("the setting", async () => (await api("/api/projects/second")).settings.parallel_limit === 4);
  await shot("projects");
}

async function agents(page, shot) {
  step("agents: one made in the page, a name that exists refused, a file's own read-only");
  await page.click('[data-nav="agents"]');
  await page.click('[data-action="new-agent"]');
  await page.locator("dialog[open]").getByLabel("Name", { exact: true }).fill("page-agent");
  await page.locator("dialog[open]").getByLabel("Executor").selectOption("command");
  await page.locator("dialog[open]").getByLabel("Model", { exact: true }).fill("page-model");
  await page.locator("dialog[open]").getByLabel("Command", { exact: true }).fill(`sh -c 'echo "made in the page" > page.txt; git add -A; git commit -qm page; echo done'`);
  await page.locator("dialog[open]").getByLabel("Prompt", { exact: true }).fill("You work from the page.");
  await page.click('[data-action="save-agent"]');
  await page.waitForSelector('[data-agent-name="page-agent"]');
  if (!cli(["agents"]).includes("page-agent")) throw new Error("`baton agents` does not show the page's agent");
  await page.click('[data-action="new-agent"]');
  await page.locator("dialog[open]").getByLabel("Name", { exact: true }).fill("page-agent");
  await page.locator("dialog[open]").getByLabel("Command", { exact: true }).fill("true");
  await page.click('[data-action="save-agent"]');
  await page.waitForSelector('[data-error-for="*"]:has-text("already exists")');
  await page.keyboard.press("Escape");
  await page.waitForSelector('[data-agent-name="filed"] [data-action="copy-agent"]');
  if (await page.locator('[data-agent-name="filed"] [data-action="edit-agent"]').count()) throw new Error("a file's agent can be edited in place");
  await shot("agents");
}

async function composer(page, shot, hash) {
  step("the composer: @ completes a path, Start runs the agent, a double click makes one task");
  await hash("#/board");
  await page.click("#new-task");
  await page.locator("dialog[open]").getByLabel("Project", { exact: true }).selectOption({ label: "repo" });
  const prompt = page.locator("dialog[open]").getByLabel("Prompt", { exact: true });
  await prompt.fill("Read ");
  await prompt.type("@READ");
  await page.waitForSelector('.completions li:has-text("README.md")');
  await page.keyboard.press("Enter");
  if (!(await prompt.inputValue()).includes("@README.md")) throw new Error("@ did not complete the path");
  await page.locator("dialog[open]").getByLabel("Agent", { exact: true }).selectOption("page-agent");
  const before = await taskCount();
  await page.dblclick('[data-action="start"]');
  await page.waitForSelector('[data-view="task"]');
  await until("one task", async () => (await taskCount()) === before + 1);
  const id = decodeURIComponent(page.url().split("#/tasks/")[1]);
  await page.waitForSelector('[data-task-status]:has-text("succeeded")');
  await page.waitForSelector('[data-event-kind="output"]:has-text("done")');
  await shot("composed");
}

async function attempts(page, shot, hash) {
  step("three attempts from the composer; two finish, one is still running");
  await page.click("#new-task");
  await page.locator("dialog[open]").getByLabel("Prompt", { exact: true }).fill("Write your result");
  await page.locator("dialog[open]").getByLabel("Agent", { exact: true }).selectOption("attempt");
  await page.locator("dialog[open]").getByLabel("Attempts", { exact: true }).fill("3");
  await page.click('[data-action="start"]');
  await page.waitForSelector('[data-view="attempts"] [data-attempt]');
  const ids = await page.$$eval("[data-attempt]", (els) => els.map((e) => e.getAttribute("data-attempt")));
  if (ids.length !== 3) throw new Error(`${ids.length} attempts`);
  for (const id of ids) await until(`${id} running`, async () => (await task(id)).status === "running");
  await ask(`release ${ids[0]}`);
  await ask(`release ${ids[2]}`);
  const live = ids[1];

  step("talk to the one still running: a message queued, one withdrawn, then delivered");
  await hash(`#/tasks/${live}/conversation`);
  await page.getByLabel("Message", { exact: true }).fill("Also write a note about the weather");
  await page.click('[data-action="send"]');
  await page.waitForSelector('.queued-item[data-state="queued"]:has-text("weather")');
  await page.getByLabel("Message", { exact: true }).fill("never mind this one");
  await page.click('[data-action="send"]');
  await page.waitForSelector('.queued-item:has-text("never mind")');
  await page.click('.queued-item:has-text("never mind") [data-action="withdraw"]');
  await until("withdrawn", async () => (await task(live)).follow_ups.some((m) => m.state === "withdrawn"));
  await shot("conversation-queued");
  await ask(`release ${live}`);
  await until("the second turn", async () => { const t = await task(live); return t.runs.length === 2 && t.status === "succeeded"; });
  await page.waitForSelector('.turn-person:has-text("weather")');
  const t = await task(live);
  if (t.runs.some((r) => r.message.includes("never mind"))) throw new Error("a withdrawn message arrived");

  step("comments on two files of its diff go to the agent with their lines");
  await hash(`#/tasks/${live}/review`);
  await page.waitForSelector(`.diff-body [data-file="result-${live}.txt"][data-line="1"]`);
  await page.click(`.diff-body [data-file="result-${live}.txt"][data-line="1"]`);
  await page.locator(`[data-comment-body="result-${live}.txt"]`).fill("Say it plainer");
  await page.click(`[data-file-tools="result-${live}.txt"] [data-action="add-comment"]`);
  await page.locator('[data-comment-line="followup.txt"]').fill("1");
  await page.locator('[data-comment-body="followup.txt"]').fill("Shorter, please");
  await page.click('[data-file-tools="followup.txt"] [data-action="add-comment"]');
  await page.click('[data-action="send-to-agent"]');
  await until("the third turn", async () => { const x = await task(live); return x.runs.length === 3 && x.status === "succeeded"; });
  const sent = (await task(live)).runs[2].message;
  for (const want of [`result-${live}.txt:1`, "Say it plainer", "followup.txt:1", "Shorter, please"]) {
    if (!sent.includes(want)) throw new Error(`the agent's prompt lacks ${want}: ${sent}`);
  }

  step("compare the attempts and keep the best: it is merged, the others cancelled and cleaned");
  await hash(`#/attempts/${live}`);
  await page.waitForSelector(`[data-attempt="${live}"] [data-action="keep"]`);
  await shot("attempts");
  await page.click(`[data-attempt="${live}"] [data-action="keep"]`);
  await until("merged", async () => (await task(live)).git.merge === "merged");
  for (const other of [ids[0], ids[2]]) {
    await until(`${other} cleaned`, async () => { const o = await task(other); return o.status === "cancelled" && (await ask(`worktree ${other}`)) === "gone"; });
  }
  const main = await ask("main files");
  if (!main.includes(`result-${live}.txt`) || main.includes(`result-${ids[0]}.txt`) || main.includes(`result-${ids[2]}.txt`)) {
    throw new Error(`main holds ${main}`);
  }
  return live;
}

async function planEditor(page, shot, hash) {
  step("the plan editor: a cycle shows on its line and creates nothing; a valid plan creates its graph");
  await hash("#/plans");
  const box = page.getByLabel("Plan (YAML)");
  const before = await taskCount();
  await box.fill("tasks:\n  - name: one\n    prompt: first\n    agent: page-agent\n    depends_on: [two]\n  - name: two\n    prompt: second\n    agent: page-agent\n    depends_on: [one]\n");
  await page.waitForSelector('.plan-problem:has-text("Line 2")');
  await page.waitForSelector('.gutter .bad[data-line="2"]');
  if ((await taskCount()) !== before) throw new Error("a checked plan created tasks");
  await box.fill("tasks:\n  - name: one\n    prompt: first\n    agent: page-agent\n  - name: two\n    prompt: second\n    agent: page-agent\n    depends_on: [one]\n");
  await page.waitForSelector('[data-plan-task="two"]');
  await shot("plan");
  await page.click('[data-action="create-plan"]');
  await page.waitForSelector('[data-view="dag"]');
  await until("the plan's tasks", async () => (await taskCount()) === before + 2);
  const plans = await api("/api/plans");
  const made = await api(`/api/plans/${plans[0].id}`);
  const one = made.task_list.find((t) => t.plan_name === "one"), two = made.task_list.find((t) => t.plan_name === "two");
  if (!two.depends_on.includes(one.id)) throw new Error("the DAG does not match the plan");
}

async function webhooksAndTokens(page, hash) {
  step("a webhook added in the page receives its test delivery");
  await hash("#/webhooks");
  await page.click('[data-action="add-webhook"]');
  await page.locator("dialog[open]").getByLabel("URL").fill(env.HOOK_URL);
  await page.click('[data-action="save-webhook"]');
  await page.waitForSelector("[data-new-secret]:not([hidden])");
  await page.keyboard.press("Escape");
  await page.click('[data-action="test-webhook"]');
  if ((await ask("hook")) !== "received") throw new Error("the test delivery did not arrive");
  step("a launcher token made in the page, shown once, then revoked");
  await hash("#/projects");
  await page.fill("#token-name", "from-page");
  await page.click('[data-action="new-token"]');
  await page.waitForSelector("[data-new-token] .token-secret");
  const li = page.locator('.token-list li:has-text("from-page")');
  await li.waitFor();
  const id = await li.getAttribute("data-token-id");
  await li.locator('[data-action="revoke-token"]').click();
  await until("revoked", async () => !(await api("/api/tokens")).some((t) => t.id === id));
}

async function palette(page) {
  step("the palette reaches every view");
  for (const [name, view] of [["Board", "board"], ["DAG", "dag"], ["Agents", "agents"], ["Documents", "docs"], ["Costs", "costs"],
    ["Webhooks", "webhooks"], ["Fleet", "fleet"], ["Inbox", "inbox"], ["Projects", "projects"], ["Plans", "plans"], ["Overview", "overview"]]) {
    await page.keyboard.press("Control+k");
    await page.getByLabel("Command", { exact: true }).fill(`go to ${name}`);
    await page.keyboard.press("Enter");
    await page.waitForSelector(`[data-view="${view}"]`);
  }
}

async function inbox(page, hash) {
  step("the inbox lists an approval, and its key approves it");
  const id = cli(["run", "--agent", "page-agent", "--approval", "--title", "needs a yes", "Wait for me"]);
  await hash("#/inbox");
  const item = page.locator(`.inbox-item[data-task-id="${id}"]`);
  await item.waitFor();
  await item.focus();
  await page.keyboard.press("a");
  await until("approved", async () => (await task(id)).status !== "awaiting_approval");
}

async function keyboardOnly(page) {
  step("keyboard only: compose, run, merge");
  await page.keyboard.press("Escape");
  await page.keyboard.press("2");
  await page.waitForSelector('[data-view="board"]');
  await page.keyboard.press("n");
  await page.waitForSelector("dialog[open] form.composer");
  await page.keyboard.type("Typed without a mouse");
  await page.keyboard.press("Tab"); // Agent
  await page.keyboard.type("page-agent");
  await page.keyboard.press("Control+Enter");
  await page.waitForSelector('[data-view="task"] [data-task-status]:has-text("succeeded")');
  const id = decodeURIComponent(page.url().split("#/tasks/")[1]);
  await page.focus('[data-action="merge"]');
  await page.keyboard.press("Enter");
  await until("merged by keyboard", async () => (await task(id)).git.merge === "merged");
}

async function phone(page, hash, kept) {
  step("every new view on a phone (375 px), light and dark: no sideways scrolling, no serious or critical axe-core violation");
  await page.setViewportSize({ width: 375, height: 740 });
  await page.evaluate(readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8"));
  const views = [["#/inbox", "inbox", null], ["#/projects", "projects", null], ["#/plans", "plans", null], [`#/attempts/${kept}`, "attempts", null],
    [`#/tasks/${kept}/conversation`, "task", null], [`#/tasks/${kept}/review`, "task", null], ["#/board", "board", "composer"], ["#/agents", "agents", "palette"]];
  const problems = [];
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [where, view, open] of views) {
      await hash(where);
      await page.waitForSelector(`[data-view="${view}"]`);
      if (open === "composer") await page.click("#new-task");
      if (open === "palette") await page.keyboard.press("Control+k");
      await page.waitForTimeout(200);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      if (overflow > 0) problems.push(`${where}${open ? ` (${open})` : ""} (${scheme}): ${overflow} px wider than the screen`);
      const found = await page.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ["violations"] });
        return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")}`);
      });
      for (const f of found) problems.push(`${where}${open ? ` (${open})` : ""} (${scheme}): ${f}`);
      await page.screenshot({ path: `${env.SHOTS}/cockpit-phone-${scheme}-${view}${open ? `-${open}` : ""}.png`, fullPage: true });
      if (open) await page.keyboard.press("Escape");
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  if (problems.length) throw new Error(`on a phone:\n  ${problems.join("\n  ")}`);
  await page.setViewportSize({ width: 1280, height: 860 });
}
