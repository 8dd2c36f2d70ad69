// Drives Baton's dashboard in Debian's headless Chromium with playwright-core.
// Started by the Rust test `dashboard::the_dashboard_in_a_real_browser` with:
//   BATON (the binary), BATON_URL, BATON_TOKEN, REPO (where to run the CLI),
//   LOGIN_URL (a one-time login link), SHOTS (where to save screenshots).
// Prints one line per step; exits non-zero on the first failure.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { launchChromium } from "./launch.mjs";

const env = process.env;
const base = env.BATON_URL;
const TIMEOUT = 60_000;

function cli(args, input) {
  return execFileSync(env.BATON, args, { cwd: env.REPO, env, encoding: "utf8", input }).trim();
}

async function api(path) {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${env.BATON_TOKEN}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function until(what, check) {
  const start = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - start > TIMEOUT) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const step = (text) => console.log(`step: ${text}`);

// Asks the Rust test to do something to the coordinator (a line "ask: WHAT" on
// stdout) and waits for its one-line answer on stdin.
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  console.log(`ask: ${what}`);
  const answer = await answers.next();
  if (answer.done) throw new Error(`no answer to "${what}"`);
  return answer.value.trim();
}

/** Runs a task to its end from the CLI; its id. */
function runToEnd(agent, title) {
  return JSON.parse(cli(["run", "--agent", agent, "--title", title, "--wait", "--json", "Do it"])).id;
}

mkdirSync(env.SHOTS, { recursive: true });
const browser = await launchChromium();
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(TIMEOUT);
  const pageErrors = [];
  const foreign = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(base) && !url.startsWith("data:")) foreign.push(url);
  });
  const shot = async (name) => {
    await page.waitForTimeout(150);
    await page.screenshot({ path: `${env.SHOTS}/${name}.png`, fullPage: true });
    step(`screenshot ${name}.png`);
  };

  step("log in with the one-time link");
  await page.goto(env.LOGIN_URL);
  if (page.url() !== `${base}/`) throw new Error(`after login the page is ${page.url()}, not ${base}/`);
  await page.waitForSelector('[data-live="connected"]');
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
  await page.waitForSelector('[data-view="overview"]');

  step("a task started from the CLI appears without a reload");
  await page.click('[data-nav="board"]');
  await page.waitForSelector('[data-view="board"]');
  const talker = cli(["run", "--agent", "talker", "--title", "streamed work", "Work in steps"]);
  await page.waitForSelector(`[data-task-id="${talker}"]`);
  await page.waitForSelector(`[data-task-id="${talker}"]:has-text("running")`);
  await shot("board");

  step("its tool calls stream into the timeline");
  await page.click(`[data-task-id="${talker}"]`);
  await page.waitForSelector('[data-view="task"]');
  await page.waitForSelector('[data-event-kind="tool_call"]');
  const before = await page.locator('[data-event-kind="tool_call"]').count();
  await until("more tool calls", async () => (await page.locator('[data-event-kind="tool_call"]').count()) >= before + 2);
  await shot("task-timeline");

  step("stop from the page");
  await page.click('[data-tab="review"]');
  await page.click('[data-action="stop"]');
  await until("the task is cancelled", async () => (await api(`/api/tasks/${talker}`)).status === "cancelled");
  await page.waitForSelector('[data-task-status]:has-text("cancelled")');

  step("merge from the page");
  const writer = runToEnd("writer", "add greeting");
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, writer);
  await page.waitForSelector(`[data-view="task"]`);
  await page.waitForSelector('[data-task-status]:has-text("succeeded")');
  step("its sandbox, as its launcher reported it");
  const isolation = (await api(`/api/tasks/${writer}`)).isolation;
  if (!isolation) throw new Error("the API reports no isolation for a task that ran");
  await page.waitForSelector(`.facts [data-sandbox="${isolation.kind}"]`);
  await page.click('[data-tab="review"]');
  await page.waitForSelector("text=greeting.txt");
  await shot("review");
  await page.click('[data-action="merge"]');
  await until("the task is merged", async () => (await api(`/api/tasks/${writer}`)).git.merge === "merged");

  step("a refused merge shows the conflict");
  const one = runToEnd("same-a", "same a");
  const two = runToEnd("same-b", "same b");
  cli(["merge", one]);
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, two);
  await page.waitForSelector('[data-task-status]:has-text("succeeded")');
  await page.click('[data-tab="review"]');
  await page.click('[data-action="merge"]');
  await page.waitForSelector("[data-error]:has-text('same.txt')");
  await shot("merge-conflict");

  step("the other views");
  cli(["doc", "push", "notes/architecture", "--tag", "design"], "The event pipeline: launchers batch events to the coordinator.\n");
  for (const [nav, view] of [
    ["overview", "overview"],
    ["dag", "dag"],
    ["agents", "agents"],
    ["costs", "costs"],
  ]) {
    await page.click(`[data-nav="${nav}"]`);
    await page.waitForSelector(`[data-view="${view}"]`);
    await shot(view);
  }
  await page.waitForSelector(`[data-view="costs"] tr[data-agent-name="talker"]`);
  step("the agents view lists the providers' pools");
  await page.click('[data-nav="agents"]');
  await page.waitForSelector('[data-pool-name="anthropic"]');
  await page.waitForSelector('[data-pool-name="openai"] >> text=no limit');
  await page.click('[data-nav="costs"]');
  await page.click('[data-nav="overview"]');
  await page.waitForSelector('[data-project-progress]:has-text("4 total · 3 completed")');

  step("the webhooks view lists webhooks and their deliveries");
  const hook = JSON.parse(cli(["webhook", "add", "http://127.0.0.1:9/hook", "--event", "*", "--format", "slack", "--json"]));
  await page.click('[data-nav="webhooks"]');
  await page.waitForSelector(`[data-webhook-id="${hook.id}"] >> text=slack`);
  await page.waitForSelector(`[data-webhook-id="${hook.id}"] >> text=Nothing delivered yet`);
  await shot("webhooks");

  step("a reviewed task shows its reviewer's verdict and comments");
  const reviewed = JSON.parse(cli(["run", "--agent", "noter", "--review-by", "approver", "--title", "reviewed", "--wait", "--json", "Greet, reviewed"])).id;
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, reviewed);
  await page.waitForSelector('[data-loops] [data-verdict="approve"]');
  await page.waitForSelector('[data-loops] >> text=note.txt:1');
  // Beside the diff, too: the verdict, and the comment on the file it concerns.
  await page.click('[data-tab="review"]');
  await page.waitForSelector('[data-reviews] [data-verdict="approve"]');
  await page.waitForSelector('[data-file-comments="note.txt"] >> text=Friendly.');
  await shot("review-comments");
  // The review is a step of the loop on the timeline.
  await page.click('[data-tab="timeline"]');
  await page.waitForSelector('[data-event-kind="log"][data-loop="review"]');
  await shot("review-verdict");

  step("search the context store");
  await page.click('[data-nav="docs"]');
  await page.fill('[data-input="doc-search"]', "pipeline");
  await page.press('[data-input="doc-search"]', "Enter");
  await page.waitForSelector('[data-doc-name="notes/architecture"]');
  await page.click('[data-doc-name="notes/architecture"]');
  await page.waitForSelector("text=event pipeline");
  // Found by meaning: the words "vehicle maintenance" are in no document, and
  // the fleet note's passage is marked as a meaning match once it is embedded.
  cli(["doc", "push", "notes/fleet"], "The car's service interval is 10,000 km.\n");
  await page.fill('[data-input="doc-search"]', "vehicle maintenance");
  for (let i = 0; ; i++) {
    await page.press('[data-input="doc-search"]', "Enter");
    try {
      await page.waitForSelector('[data-doc-name="notes/fleet"][data-matched="meaning"]', { timeout: 1000 });
      break;
    } catch (e) {
      if (i >= 20) throw e;
    }
  }
  await page.waitForSelector('[data-search-state="hybrid"]');
  await shot("docs");

  step("a workset task's diff, by repository");
  const across = JSON.parse(cli(["run", "--workset", "full", "--agent", "pair", "--title", "across both", "--wait", "--json", "Do it"])).id;
  await page.evaluate((id) => {
    location.hash = `#/tasks/${id}`;
  }, across);
  await page.waitForSelector('[data-task-status]:has-text("succeeded")');
  await page.click('[data-tab="review"]');
  await page.waitForSelector('[data-repository="api"] summary:has-text("api/lib.txt")');
  await page.waitForSelector('[data-repository="web"] summary:has-text("web/client.txt")');
  await shot("workset-diff");

  step("the coordinator goes away: the page says so, and catches up when it is back");
  await page.click('[data-nav="board"]');
  await page.waitForSelector('[data-view="board"]');
  const away = await ask("away"); // a task run to its end while the page could not hear of it
  await page.waitForSelector('#live[data-live="reconnecting"]');
  if (await page.locator(`[data-task-id="${away}"]`).count()) throw new Error("the page shows a task it cannot know of");
  await ask("back");
  await page.waitForSelector('#live[data-live="connected"]');
  await page.waitForSelector(`[data-task-id="${away}"]:has-text("succeeded")`);

  step("the fleet view: launchers with their host, slots, programs and sandbox; drain and undrain from the page");
  await page.locator("body").press("8");
  await page.waitForSelector('[data-view="fleet"] [data-launcher-id][data-draining="no"]');
  await page.click('[data-launcher-id] [data-action="drain"]');
  await page.waitForSelector('[data-launcher-id][data-draining="yes"]');
  if (!(await api("/api/launchers")).some((l) => l.draining)) throw new Error("the page said draining, the API did not");
  await shot("fleet");
  await page.click('[data-launcher-id] [data-action="undrain"]');
  await page.waitForSelector('[data-launcher-id][data-draining="no"]');
  if ((await api("/api/launchers")).some((l) => l.draining)) throw new Error("still draining after undrain");

  step("charts in the page's own SVG: tasks finished per hour and queue depth, cost per hour by project and agent");
  await page.evaluate(() => (location.hash = "#/"));
  await page.waitForSelector('[data-chart="Tasks finished per hour"] rect.series');
  await page.waitForSelector('[data-chart="Queue depth (tasks waiting to start)"] svg[aria-label]');
  await shot("overview-charts");
  await page.evaluate(() => (location.hash = "#/costs"));
  await page.waitForSelector('[data-chart="Cost per hour, by agent"] rect.series');
  const parts = await page.locator('[data-chart="Cost per hour, by agent"] rect.series title').allTextContents();
  if (!parts.some((t) => t.includes("talker"))) throw new Error(`no talker in the cost chart: ${parts.join("; ")}`);
  await shot("costs-charts");

  step("a link to a task that does not exist, and to a page that does not exist, say so");
  await page.evaluate(() => (location.hash = "#/tasks/t-zzzzzzzzzz"));
  await page.waitForSelector('[data-view="task"] [data-error] >> text=Could not load this task');
  await page.evaluate(() => (location.hash = "#/no/such/page"));
  await page.waitForSelector('[data-view="notfound"] >> text=Nothing here');

  step("keyboard: 2 opens the board");
  await page.locator("body").press("2");
  await page.waitForSelector('[data-view="board"]');

  step("a deep link opened cold in a new tab shows that task; back and forward move between views");
  const cold = await browser.newContext();
  await cold.addCookies(await page.context().cookies());
  const tab = await cold.newPage();
  tab.setDefaultTimeout(TIMEOUT);
  await tab.goto(`${base}/#/tasks/${talker}`);
  await tab.waitForSelector(`[data-view="task"] [data-task-status]`);
  await tab.evaluate(() => (location.hash = "#/board"));
  await tab.waitForSelector('[data-view="board"]');
  await tab.goBack();
  await tab.waitForSelector('[data-view="task"]');
  await tab.goForward();
  await tab.waitForSelector('[data-view="board"]');
  await cold.close();

  step("every view on a phone (375 px), light and dark: no sideways scrolling, and no serious or critical accessibility violation (axe-core)");
  await page.setViewportSize({ width: 375, height: 740 });
  await page.evaluate(readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8"));
  const views = [["#/", "overview"], ["#/board", "board"], ["#/dag", "dag"], ["#/agents", "agents"], ["#/docs", "docs"],
    ["#/costs", "costs"], ["#/webhooks", "webhooks"], ["#/fleet", "fleet"], [`#/tasks/${talker}`, "task"]];
  const problems = [];
  for (const scheme of ["light", "dark"]) {
  await page.emulateMedia({ colorScheme: scheme });
  for (const [hash, view] of views) {
    await page.evaluate((h) => (location.hash = h), hash);
    await page.waitForSelector(`[data-view="${view}"]`);
    await page.waitForTimeout(150);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) problems.push(`${view} (${scheme}): ${overflow} px wider than the screen`);
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" | ")} — ${(v.nodes[0].any[0] || v.nodes[0].all[0] || {}).message || v.help}`);
    });
    for (const f of found) problems.push(`${view} (${scheme}): ${f}`);
    await page.screenshot({ path: `${env.SHOTS}/phone-${scheme}-${view}.png`, fullPage: true });
  }
  }
  await page.emulateMedia({ colorScheme: "light" });
  step(`screenshots phone-*.png`);
  if (problems.length) throw new Error(`on a phone:\n  ${problems.join("\n  ")}`);
  await page.setViewportSize({ width: 1280, height: 800 });

  step("still the same page, nothing from elsewhere, no script errors");
  if (!(await page.evaluate(() => window.__notReloaded === true))) throw new Error("the page was reloaded");
  if (foreign.length) throw new Error(`requests to other origins: ${foreign.join(", ")}`);
  if (pageErrors.length) throw new Error(`script errors: ${pageErrors.join("; ")}`);
  step("done");
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
