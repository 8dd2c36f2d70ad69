//! The OpenAI Responses API (`POST /v1/responses`, streaming), as Codex CLI
//! calls it. Each turn answers one output item — a message or a function call — so
//! the turns already in a request are its replayed messages and calls.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use crate::script::write_command;
use crate::server::{Shared, delay, json_status, parse, sse};

pub(crate) async fn responses(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let req = parse(&body);
    shared.record("/v1/responses", &req);
    let model = req["model"].as_str().unwrap_or("fake-model").to_owned();
    let turns = req["input"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|i| i["type"] == "function_call" || (i["type"] == "message" && i["role"] == "assistant"))
            .count()
    });
    let step = shared.script.step(turns);
    delay(step.delay_ms).await;
    if let Some(e) = &step.error {
        return json_status(
            e.status,
            json!({ "error": { "message": e.message, "type": "invalid_request_error", "code": null } }),
        );
    }
    let command = step.write.as_ref().map(write_command).or_else(|| step.bash.clone());
    let item = match (&command, &step.tool) {
        (Some(cmd), _) => json!({
            "type": "function_call", "id": shared.id("fc"), "call_id": shared.id("call"), "status": "completed",
            "name": "exec_command", "arguments": json!({ "cmd": cmd }).to_string(),
        }),
        (None, Some(t)) => {
            let mut call = json!({
                "type": "function_call", "id": shared.id("fc"), "call_id": shared.id("call"), "status": "completed",
                "name": t.name, "arguments": t.input.to_string(),
            });
            // Codex offers each MCP server's tools in a namespace (`mcp__baton`):
            // a call of `mcp__baton__doc_push` names the namespace and the tool.
            if let Some((namespace, tool)) = namespaced(&req, &t.name) {
                call["namespace"] = json!(namespace);
                call["name"] = json!(tool);
            }
            call
        }
        (None, None) => json!({
            "type": "message", "id": shared.id("msg"), "status": "completed", "role": "assistant",
            "content": [{ "type": "output_text", "text": step.text.clone().unwrap_or_else(|| "Done.".into()), "annotations": [] }],
        }),
    };
    let id = shared.id("resp");
    let usage = json!({
        "input_tokens": shared.script.input_tokens, "input_tokens_details": { "cached_tokens": 0 },
        "output_tokens": shared.script.output_tokens, "output_tokens_details": { "reasoning_tokens": 0 },
        "total_tokens": shared.script.input_tokens + shared.script.output_tokens,
    });
    let response = |status: &str, output: Value, usage: Value| json!({ "id": id, "object": "response", "created_at": 0, "status": status, "model": model, "output": output, "usage": usage });
    let mut out = String::new();
    let mut event = |name: &str, data: Value| out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    event(
        "response.created",
        json!({ "type": "response.created", "response": response("in_progress", json!([]), Value::Null) }),
    );
    event(
        "response.output_item.added",
        json!({ "type": "response.output_item.added", "output_index": 0, "item": item }),
    );
    if item["type"] == "message" {
        let text = item["content"][0]["text"].clone();
        event(
            "response.output_text.delta",
            json!({ "type": "response.output_text.delta", "item_id": item["id"], "output_index": 0, "content_index": 0, "delta": text }),
        );
    }
    event("response.output_item.done", json!({ "type": "response.output_item.done", "output_index": 0, "item": item }));
    event(
        "response.completed",
        json!({ "type": "response.completed", "response": response("completed", json!([item]), usage) }),
    );
    sse(out)
}

/// Splits `name` into a namespace the request offers and a tool of it.
fn namespaced(req: &Value, name: &str) -> Option<(String, String)> {
    req["tools"].as_array()?.iter().filter(|t| t["type"] == "namespace").find_map(|ns| {
        let prefix = ns["name"].as_str()?;
        let tool = name.strip_prefix(prefix)?.strip_prefix("__")?;
        ns["tools"].as_array()?.iter().any(|t| t["name"] == tool).then(|| (prefix.to_owned(), tool.to_owned()))
    })
}
