//! The Gemini API (`POST /v1beta/models/{model}:streamGenerateContent` and
//! `:generateContent`), as Gemini CLI calls it: a non-streaming call with a JSON
//! schema first (its model router), then the streaming agent loop.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::script::absolute;
use crate::server::{Shared, delay, json_status, parse, sse};

/// The working directory Gemini CLI states in its first message.
fn cwd(req: &Value) -> Option<String> {
    let first = req["contents"].as_array()?.first()?;
    let text: String =
        first["parts"].as_array()?.iter().filter_map(|p| p["text"].as_str()).collect::<Vec<_>>().join("\n");
    let after = text.split("Workspace Directories:").nth(1)?;
    after.lines().find_map(|l| l.trim().strip_prefix("- ").map(|d| d.trim().to_owned()))
}

/// A value of the shape a JSON schema asks for.
fn from_schema(schema: &Value) -> Value {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    match schema["type"].as_str().map(str::to_lowercase).as_deref() {
        Some("object") => {
            let mut obj = Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (k, v) in props {
                    obj.insert(k.clone(), from_schema(v));
                }
            }
            Value::Object(obj)
        }
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => json!("fake"),
    }
}

pub(crate) async fn call(State(shared): State<Arc<Shared>>, Path(call): Path<String>, body: Bytes) -> Response {
    let req = parse(&body);
    shared.record(&format!("/v1beta/models/{call}"), &req);
    let (model, action) = call.split_once(':').unwrap_or((call.as_str(), ""));
    let usage = json!({
        "promptTokenCount": shared.script.input_tokens, "candidatesTokenCount": shared.script.output_tokens,
        "totalTokenCount": shared.script.input_tokens + shared.script.output_tokens,
    });
    let candidate = |parts: Value| json!({ "candidates": [{ "content": { "role": "model", "parts": parts }, "finishReason": "STOP", "index": 0 }], "usageMetadata": usage, "modelVersion": model });
    match action {
        "countTokens" => return json_status(200, json!({ "totalTokens": shared.script.input_tokens })),
        "generateContent" => {
            let config = &req["generationConfig"];
            let schema = config.get("responseJsonSchema").or_else(|| config.get("responseSchema"));
            let text = match schema {
                Some(s) => from_schema(s).to_string(),
                None => "ok".to_owned(),
            };
            return json_status(200, candidate(json!([{ "text": text }])));
        }
        "streamGenerateContent" => {}
        _ => {
            return json_status(
                404,
                json!({ "error": { "code": 404, "message": format!("no {action}"), "status": "NOT_FOUND" } }),
            );
        }
    }
    let turns = req["contents"].as_array().map_or(0, |c| c.iter().filter(|c| c["role"] == "model").count());
    let step = shared.script.step(turns);
    delay(step.delay_ms).await;
    if let Some(e) = &step.error {
        let status = match e.status {
            401 | 403 => "PERMISSION_DENIED",
            429 => "RESOURCE_EXHAUSTED",
            500..=599 => "INTERNAL",
            _ => "INVALID_ARGUMENT",
        };
        return json_status(e.status, json!({ "error": { "code": e.status, "message": e.message, "status": status } }));
    }
    let cwd = cwd(&req);
    let mut parts = Vec::new();
    if let Some(text) = &step.text {
        parts.push(json!({ "text": text }));
    }
    if let Some(w) = &step.write {
        let args = json!({ "file_path": absolute(cwd.as_deref(), &w.path), "content": w.content });
        parts.push(json!({ "functionCall": { "name": "write_file", "args": args } }));
    }
    if let Some(cmd) = &step.bash {
        parts.push(json!({ "functionCall": { "name": "run_shell_command", "args": { "command": cmd, "description": "Run a command" } } }));
    }
    if let Some(t) = &step.tool {
        parts.push(json!({ "functionCall": { "name": t.name, "args": t.input } }));
    }
    if parts.is_empty() {
        parts.push(json!({ "text": "Done." }));
    }
    sse(format!("data: {}\r\n\r\n", candidate(Value::Array(parts))))
}
