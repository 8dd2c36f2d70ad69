//! The Anthropic Messages API (`POST /v1/messages`, streaming or not), as Claude
//! Code and `claude-agent-acp` call it.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::script::absolute;
use crate::server::{Shared, delay, json_status, parse, sse};

/// The working directory Claude Code states in its system prompt.
fn cwd(req: &Value) -> Option<String> {
    let text = match &req["system"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    };
    text.lines().find_map(|l| l.trim().strip_prefix("Primary working directory: ").map(|d| d.trim().to_owned()))
}

pub(crate) async fn count_tokens(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    shared.record("/v1/messages/count_tokens", &parse(&body));
    json_status(200, json!({ "input_tokens": shared.script.input_tokens }))
}

pub(crate) async fn messages(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = parse(&body);
    shared.record("/v1/messages", &req);
    let stream = req["stream"].as_bool().unwrap_or(false);
    let model = req["model"].as_str().unwrap_or("claude-fake").to_owned();
    let usage = json!({ "input_tokens": shared.script.input_tokens, "output_tokens": shared.script.output_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0 });
    let agent_loop = req["tools"].as_array().is_some_and(|t| !t.is_empty());
    if !agent_loop {
        let blocks = vec![json!({ "type": "text", "text": "ok" })];
        return answer(&shared, stream, &model, blocks, "end_turn", usage);
    }
    if let Some(refusal) = shared.throttled() {
        return refusal;
    }
    let turns = req["messages"].as_array().map_or(0, |m| m.iter().filter(|m| m["role"] == "assistant").count());
    let step = shared.script.step(turns);
    delay(step.delay_ms).await;
    if let Some(e) = &step.error {
        let kind = match e.status {
            401 => "authentication_error",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            500..=599 => "api_error",
            _ => "invalid_request_error",
        };
        return json_status(e.status, json!({ "type": "error", "error": { "type": kind, "message": e.message } }));
    }
    let cwd = cwd(&req);
    let mut blocks = Vec::new();
    if let Some(text) = &step.text {
        blocks.push(json!({ "type": "text", "text": text }));
    }
    if let Some(w) = &step.write {
        let input = json!({ "file_path": absolute(cwd.as_deref(), &w.path), "content": w.content });
        blocks.push(json!({ "type": "tool_use", "id": shared.id("toolu"), "name": "Write", "input": input }));
    }
    if let Some(cmd) = &step.bash {
        let input = json!({ "command": cmd, "description": "Run a command" });
        blocks.push(json!({ "type": "tool_use", "id": shared.id("toolu"), "name": "Bash", "input": input }));
    }
    if let Some(t) = &step.tool {
        blocks.push(json!({ "type": "tool_use", "id": shared.id("toolu"), "name": t.name, "input": t.input }));
    }
    if blocks.is_empty() {
        blocks.push(json!({ "type": "text", "text": "Done." }));
    }
    let stop = if blocks.iter().any(|b| b["type"] == "tool_use") { "tool_use" } else { "end_turn" };
    answer(&shared, stream, &model, blocks, stop, usage)
}

fn answer(shared: &Shared, stream: bool, model: &str, blocks: Vec<Value>, stop: &str, usage: Value) -> Response {
    let id = shared.id("msg");
    if !stream {
        return json_status(
            200,
            json!({ "id": id, "type": "message", "role": "assistant", "model": model, "content": blocks, "stop_reason": stop, "stop_sequence": null, "usage": usage }),
        );
    }
    let mut out = String::new();
    let mut event = |name: &str, data: Value| out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    event(
        "message_start",
        json!({ "type": "message_start", "message": { "id": id, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null, "stop_sequence": null, "usage": start_usage } }),
    );
    for (i, block) in blocks.iter().enumerate() {
        if block["type"] == "text" {
            event(
                "content_block_start",
                json!({ "type": "content_block_start", "index": i, "content_block": { "type": "text", "text": "" } }),
            );
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": i, "delta": { "type": "text_delta", "text": block["text"] } }),
            );
        } else {
            event(
                "content_block_start",
                json!({ "type": "content_block_start", "index": i, "content_block": { "type": "tool_use", "id": block["id"], "name": block["name"], "input": {} } }),
            );
            event(
                "content_block_delta",
                json!({ "type": "content_block_delta", "index": i, "delta": { "type": "input_json_delta", "partial_json": block["input"].to_string() } }),
            );
        }
        event("content_block_stop", json!({ "type": "content_block_stop", "index": i }));
    }
    event(
        "message_delta",
        json!({ "type": "message_delta", "delta": { "stop_reason": stop, "stop_sequence": null }, "usage": { "output_tokens": usage["output_tokens"] } }),
    );
    event("message_stop", json!({ "type": "message_stop" }));
    sse(out)
}
