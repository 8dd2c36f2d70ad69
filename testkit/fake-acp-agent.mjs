#!/usr/bin/env node
// A minimal Agent Client Protocol agent for Baton's tests: on a prompt it asks
// the client to read a file outside its working directory, to write one outside
// it, and to write one inside it, then reports what the client answered.
import { createInterface } from "node:readline";

let nextId = 1000;
let cwd = "/";
const waiting = new Map();

function send(msg) {
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...msg }) + "\n");
}

function request(method, params) {
  const id = nextId++;
  send({ id, method, params });
  return new Promise((resolve) => waiting.set(id, resolve));
}

function say(sessionId, text) {
  send({
    method: "session/update",
    params: { sessionId, update: { sessionUpdate: "agent_message_chunk", content: { type: "text", text } } },
  });
}

const outcome = (r) => (r.error ? `refused (${r.error.message})` : "ok");

async function prompt(id, params) {
  const sessionId = params.sessionId;
  const read = await request("fs/read_text_file", { sessionId, path: "/etc/hostname" });
  const escape = await request("fs/write_text_file", { sessionId, path: `${cwd}/../escape.txt`, content: "escaped\n" });
  const inside = await request("fs/write_text_file", { sessionId, path: `${cwd}/inside.txt`, content: "inside\n" });
  say(sessionId, `read /etc/hostname: ${outcome(read)}; write ../escape.txt: ${outcome(escape)}; write inside.txt: ${outcome(inside)}`);
  send({ id, result: { stopReason: "end_turn" } });
}

createInterface({ input: process.stdin }).on("line", (line) => {
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg.method === undefined && waiting.has(msg.id)) {
    waiting.get(msg.id)(msg);
    waiting.delete(msg.id);
  } else if (msg.method === "initialize") {
    send({ id: msg.id, result: { protocolVersion: 1, agentCapabilities: { loadSession: false }, authMethods: [] } });
  } else if (msg.method === "session/new") {
    cwd = msg.params.cwd;
    send({ id: msg.id, result: { sessionId: "fake-acp-session" } });
  } else if (msg.method === "session/prompt") {
    prompt(msg.id, msg.params);
  } else if (msg.id !== undefined) {
    send({ id: msg.id, error: { code: -32601, message: `no method ${msg.method}` } });
  }
});
