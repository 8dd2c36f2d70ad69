//! The OpenAPI document, made from the routes themselves.
//!
//! A route is added only as an [`Op`]: its path, its handler and a sentence for
//! people. What it takes and gives is read from the handler's own signature — its
//! extractors ([`Input`]) and its return type ([`Output`]) — and the schemas come
//! from the Rust types through `schemars`, so a renamed field, a new parameter or a
//! changed body changes the document, and a route cannot exist undocumented.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::MethodRouter;
use baton_core::api::ErrorBody;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::api::http::{ApiJson, ApiQuery, OptionalJson};
use crate::auth::Auth;
use crate::error::AppError;
use baton_domain::AppState;

/// What an operation says of itself while the document is made.
#[derive(Default)]
pub(crate) struct Draft {
    params: Vec<Value>,
    body: Option<Value>,
    responses: Map<String, Value>,
    secured: bool,
}

impl Draft {
    fn respond(&mut self, status: &str, description: &str, content: Option<(&str, Value)>) {
        let mut response = json!({ "description": description });
        if let Some((kind, schema)) = content {
            response["content"] = json!({ kind: { "schema": schema } });
        }
        self.responses.insert(status.to_owned(), response);
    }

    /// An answer with a JSON body of `schema`.
    pub(crate) fn respond_with(&mut self, status: &str, description: &str, schema: Value) {
        self.respond(status, description, Some(("application/json", schema)));
    }

    /// A request header the operation reads.
    pub(crate) fn header(&mut self, name: &str, description: &str, schema: Value) {
        self.params.push(
            json!({ "name": name, "in": "header", "required": false, "description": description, "schema": schema }),
        );
    }

    pub(crate) fn json_body(&mut self, schema: Value, required: bool) {
        self.body = Some(json!({ "required": required, "content": { "application/json": { "schema": schema } } }));
    }
}

type Describe = Box<dyn Fn(&mut Draft, &mut SchemaGenerator) + Send + Sync>;

/// A request part that shows in the document: a body, query parameters, a token.
pub(crate) trait Input {
    fn describe(_: &mut Draft, _: &mut SchemaGenerator) {}
}

/// A handler's answer, as the document shows it.
pub(crate) trait Output {
    fn describe(_: &mut Draft, _: &mut SchemaGenerator) {}
}

/// A handler whose inputs and output are all [`Input`] and [`Output`].
pub(crate) trait Described<D> {
    fn describe(draft: &mut Draft, generator: &mut SchemaGenerator);
}

macro_rules! described {
    ($($arg:ident),*) => {
        impl<F, Fut, R, $($arg,)*> Described<(R, $($arg,)*)> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future<Output = R>,
            R: Output,
            $($arg: Input,)*
        {
            fn describe(draft: &mut Draft, generator: &mut SchemaGenerator) {
                $(<$arg as Input>::describe(draft, generator);)*
                R::describe(draft, generator);
            }
        }
    };
}

described!();
described!(A1);
described!(A1, A2);
described!(A1, A2, A3);
described!(A1, A2, A3, A4);
described!(A1, A2, A3, A4, A5);

impl<S> Input for State<S> {}
impl<T> Input for Path<T> {}
impl Input for HeaderMap {}
impl Input for bytes::Bytes {}
impl Input for axum::extract::Request {}

impl Input for Auth {
    fn describe(draft: &mut Draft, _: &mut SchemaGenerator) {
        draft.secured = true;
    }
}

impl<T: JsonSchema> Input for ApiJson<T> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        draft.json_body(g.subschema_for::<T>().to_value(), true);
    }
}

impl<T: JsonSchema> Input for OptionalJson<T> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        draft.json_body(g.subschema_for::<T>().to_value(), false);
    }
}

impl<T: JsonSchema> Input for ApiQuery<T> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        let schema = T::json_schema(g).to_value();
        let required: Vec<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        for (name, property) in schema["properties"].as_object().into_iter().flatten() {
            let mut property = property.clone();
            let description = property.as_object_mut().and_then(|p| p.remove("description"));
            let mut param = json!({
                "name": name,
                "in": "query",
                "required": required.contains(&name.as_str()),
                "schema": without_null(property),
            });
            if let Some(description) = description {
                param["description"] = description;
            }
            draft.params.push(param);
        }
    }
}

/// A query parameter is absent rather than null: `["integer", "null"]` becomes
/// `"integer"`.
fn without_null(mut schema: Value) -> Value {
    if schema.get("default").is_some_and(Value::is_null)
        && let Some(fields) = schema.as_object_mut()
    {
        fields.remove("default");
    }
    if let Some(types) = schema["type"].as_array() {
        let kept: Vec<Value> = types.iter().filter(|t| t.as_str() != Some("null")).cloned().collect();
        schema["type"] = if kept.len() == 1 { kept[0].clone() } else { Value::Array(kept) };
    }
    schema
}

impl<T: JsonSchema> Output for Json<T> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        draft.respond("200", "ok", Some(("application/json", g.subschema_for::<T>().to_value())));
    }
}

impl<T: JsonSchema> Output for (StatusCode, Json<T>) {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        draft.respond("201", "created", Some(("application/json", g.subschema_for::<T>().to_value())));
    }
}

impl Output for StatusCode {
    fn describe(draft: &mut Draft, _: &mut SchemaGenerator) {
        draft.respond("204", "done; no body", None);
    }
}

/// A handler answering a [`Response`] describes it with [`Op::responds`].
impl Output for Response {}

impl<T: Output> Output for Result<T, AppError> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        T::describe(draft, g);
        let error = g.subschema_for::<ErrorBody>().to_value();
        draft.respond("default", "an error, with a stable code", Some(("application/json", error)));
    }
}

/// One route: its method, path and handler, and what the document says of it.
pub(crate) struct Op {
    method: Method,
    path: &'static str,
    route: MethodRouter<Arc<AppState>>,
    summary: &'static str,
    description: Option<&'static str>,
    describe: Vec<Describe>,
    /// Schemas of path parameters narrower than "any text".
    path_schemas: Vec<(&'static str, Value)>,
}

macro_rules! method {
    ($name:ident, $method:ident, $route:path) => {
        /// A route for this method, described by its handler's signature.
        pub(crate) fn $name<H, T, D>(path: &'static str, handler: H, summary: &'static str) -> Op
        where
            H: Handler<T, Arc<AppState>> + Described<D>,
            T: 'static,
        {
            let describe: fn(&mut Draft, &mut SchemaGenerator) = <H as Described<D>>::describe;
            Op {
                method: Method::$method,
                path,
                route: $route(handler),
                summary,
                description: None,
                describe: vec![Box::new(describe)],
                path_schemas: Vec::new(),
            }
        }
    };
}

impl Op {
    method!(get, GET, axum::routing::get);
    method!(post, POST, axum::routing::post);
    method!(put, PUT, axum::routing::put);
    method!(delete, DELETE, axum::routing::delete);

    /// More than the summary: what a person needs to know to call it.
    pub(crate) fn about(mut self, description: &'static str) -> Self {
        self.description = Some(description);
        self
    }

    /// The schema of a path parameter (a launcher's exact id, a document's
    /// name), where the handler refuses anything else with 400.
    pub(crate) fn path_schema(mut self, name: &'static str, schema: Value) -> Self {
        self.path_schemas.push((name, schema));
        self
    }

    /// An answer the signature does not show (a [`Response`], another status).
    pub(crate) fn responds(mut self, status: &'static str, description: &'static str, content: &'static str) -> Self {
        self.describe.push(Box::new(move |draft, _| {
            let schema = match content {
                "text/event-stream" => server_sent_event(),
                _ if content.starts_with("application/json") || content == "*/*" => json!({}),
                _ => json!({"type": "string"}),
            };
            match draft.responses.get_mut(status).and_then(|r| r.get_mut("content")) {
                Some(existing) if !content.is_empty() => {
                    existing[content] = json!({ "schema": schema });
                }
                _ => draft.respond(status, description, (!content.is_empty()).then_some((content, schema))),
            }
        }));
        self
    }

    /// An answer of type `T` the signature does not show.
    pub(crate) fn returns<T: JsonSchema>(mut self, status: &'static str, description: &'static str) -> Self {
        self.describe.push(Box::new(move |draft, g| {
            draft.respond(status, description, Some(("application/json", g.subschema_for::<T>().to_value())));
        }));
        self
    }

    /// A body the signature does not show (raw bytes, another format).
    pub(crate) fn takes(mut self, content: &'static str, description: &'static str) -> Self {
        self.describe.push(Box::new(move |draft, _| {
            let body = draft.body.get_or_insert_with(|| json!({ "required": true, "content": {} }));
            // A form is fields of text; any JSON document otherwise.
            let schema = if content == "application/x-www-form-urlencoded" {
                json!({ "type": "object", "additionalProperties": { "type": "string" } })
            } else {
                json!({})
            };
            body["content"][content] = json!({ "schema": schema });
            body["description"] = json!(description);
        }));
        self
    }

    /// Changes the route itself (a body limit, a layer).
    pub(crate) fn map_route(
        mut self,
        f: impl FnOnce(MethodRouter<Arc<AppState>>) -> MethodRouter<Arc<AppState>>,
    ) -> Self {
        self.route = f(self.route);
        self
    }

    fn operation(&self, prefix: &str, g: &mut SchemaGenerator) -> Value {
        let mut draft = Draft::default();
        for describe in &self.describe {
            describe(&mut draft, g);
        }
        if self.summary.starts_with("Launcher protocol") {
            draft.header(
                "Baton-Launcher-Protocol",
                "The launcher protocol the launcher speaks. Every request of a launcher token carries it (none is protocol 1, Baton before the header); one older than the coordinator works with is refused with 426 upgrade_required, naming both.",
                json!({ "type": "integer", "minimum": baton_core::api::MIN_LAUNCHER_PROTOCOL, "maximum": u32::MAX }),
            );
        }
        let mut params: Vec<Value> = path_params(self.path)
            .map(|name| {
                let schema = match self.path_schemas.iter().find(|(n, _)| *n == name) {
                    Some((_, schema)) => schema.clone(),
                    // Agents are named by simple names, checked before anything else.
                    None if name == "name" && self.path.starts_with("/agents/") => {
                        json!({"type": "string", "pattern": baton_core::names::SIMPLE_NAME_PATTERN})
                    }
                    None => json!({"type": "string", "minLength": 1}),
                };
                json!({"name": name, "in": "path", "required": true, "description": path_param(name), "schema": schema})
            })
            .collect();
        params.extend(draft.params);
        let mut op = json!({
            "operationId": operation_id(&self.method, &format!("{prefix}{}", self.path)),
            "summary": self.summary,
            "responses": draft.responses,
            "security": if draft.secured { json!([{"bearer": []}, {"cookie": []}]) } else { json!([]) },
        });
        if let Some(description) = self.description {
            op["description"] = json!(description);
        }
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        if let Some(body) = draft.body {
            op["requestBody"] = body;
        }
        op
    }
}

/// One server-sent event, as a client reads it.
fn server_sent_event() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "event": {"type": "string"},
            "data": {"type": "string", "contentMediaType": "application/json"},
        },
    })
}

/// The names in a path's `{braces}` (`{*name}` is `name`).
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).map(|s| s.trim_start_matches('*'))
}

fn path_param(name: &str) -> &'static str {
    match name {
        "id" => "An id, or a unique prefix of it",
        "name" => "A name",
        "task" => "A task's id",
        "action" => "What to do",
        "key" => "The link's secret key",
        "path" => "A file's path under the dashboard's assets (`views/board.js`)",
        _ => "",
    }
}

/// `GET /api/tasks/{id}/diff` → `get_tasks_id_diff`.
fn operation_id(method: &Method, path: &str) -> String {
    let words: Vec<&str> =
        path.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty() && *w != "api").collect();
    let rest = if words.is_empty() { "root".to_owned() } else { words.join("_") };
    format!("{}_{rest}", method.as_str().to_ascii_lowercase())
}

/// A group of operations under one path prefix (`/api`, or the site's root).
pub(crate) struct Ops {
    pub(crate) prefix: &'static str,
    pub(crate) ops: Vec<Op>,
}

impl Ops {
    /// The router of these operations (paths relative to the prefix).
    pub(crate) fn router(&self) -> axum::Router<Arc<AppState>> {
        self.ops.iter().fold(axum::Router::new(), |router, op| router.route(op.path, op.route.clone()))
    }
}

/// Paths served by something other than an [`Op`] and described here by hand:
/// the MCP endpoint (a service of its own).
fn unrouted_paths() -> Value {
    let mcp: Value = serde_json::from_str(include_str!("mcp.openapi.json")).unwrap_or_default();
    json!({ "/mcp": mcp })
}

/// The OpenAPI 3.1 document of these groups.
pub(crate) fn document(groups: &[&Ops]) -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut paths = Map::new();
    for group in groups {
        for op in &group.ops {
            let path = format!("{}{}", group.prefix, op.path.replace("{*", "{"));
            let entry = paths.entry(path).or_insert_with(|| json!({}));
            entry[op.method.as_str().to_ascii_lowercase()] = op.operation(group.prefix, &mut g);
        }
    }
    paths.extend(unrouted_paths().as_object().cloned().unwrap_or_default());
    let mut paths = Value::Object(paths);
    let mut schemas = Value::Object(g.take_definitions(true));
    bound_integers(&mut paths);
    bound_integers(&mut schemas);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Baton coordinator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run a fleet of AI coding agents on git repositories. Calls need a bearer token \
                (or the dashboard's cookie) unless their `security` is empty; errors are \
                {\"error\": {\"code\", \"message\", \"details\"}} with a stable code. Made from the routes and \
                the Rust types they take and give.",
        },
        "servers": [{"url": "http://127.0.0.1:7077"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "baton_token"},
            },
        },
    })
}

/// A query parameter of comma-separated words, each one of `words` (white space
/// around each, and empty items, allowed).
pub(crate) fn comma_list<'a>(words: impl Iterator<Item = &'a str>) -> schemars::Schema {
    let one = words.collect::<Vec<_>>().join("|");
    let item = format!(r"\s*(?:(?:{one})\s*)?");
    schemars::json_schema!({ "type": "string", "pattern": format!("^{item}(?:,{item})*$") })
}

/// An integer of a fixed width says its range: `format: uint32` alone does not
/// tell a client that 2^32 is refused.
fn bound_integers(schema: &mut Value) {
    match schema {
        Value::Object(fields) => {
            let range: Option<(i128, i128)> = match fields.get("format").and_then(Value::as_str) {
                Some("uint8") => Some((0, u8::MAX.into())),
                Some("uint16") => Some((0, u16::MAX.into())),
                Some("uint32") => Some((0, u32::MAX.into())),
                Some("uint64" | "uint") => Some((0, u64::MAX.into())),
                Some("int8") => Some((i8::MIN.into(), i8::MAX.into())),
                Some("int16") => Some((i16::MIN.into(), i16::MAX.into())),
                Some("int32") => Some((i32::MIN.into(), i32::MAX.into())),
                Some("int64" | "int") => Some((i64::MIN.into(), i64::MAX.into())),
                _ => None,
            };
            if let Some((low, high)) = range {
                let number = |n: i128| serde_json::from_str::<Value>(&n.to_string()).unwrap_or(Value::Null);
                fields.entry("minimum").or_insert_with(|| number(low));
                fields.entry("maximum").or_insert_with(|| number(high));
            }
            fields.values_mut().for_each(bound_integers);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// The document as served, made once.
pub(crate) fn served() -> &'static str {
    DOCUMENT.get_or_init(|| {
        let (api, site) = (super::api_ops(), super::site_ops());
        serde_json::to_string_pretty(&document(&[&api, &site])).unwrap_or_default()
    })
}
