//! Entry points for the fuzz targets in `fuzz/` (`scripts/fuzz`): each takes
//! untrusted bytes as they would arrive, and must never panic. Not an API.

use baton_core::agent::{AgentDef, ExecutorKind};
use baton_core::model::Usage;

use crate::executor::Executor;
use crate::output::Stream;

/// An executor's output parser over the lines of `bytes` (stdout, and every
/// third line on stderr), then the end of the output and its verdict.
pub fn output(kind: ExecutorKind, bytes: &[u8]) {
    let mut agent = AgentDef::builtins().remove(0);
    agent.executor = kind;
    let mut parser = Executor::from(kind).parser(&agent, Usage::default());
    for (i, line) in String::from_utf8_lossy(bytes).lines().enumerate() {
        let stream = if i % 3 == 2 { Stream::Stderr } else { Stream::Stdout };
        for event in parser.line(stream, line) {
            let _ = crate::output::fit(event, 4096);
        }
    }
    parser.finish();
    parser.verdict();
}

/// The ACP client's handling of an agent's `session/update` notifications, one
/// JSON object per line.
pub fn acp_updates(bytes: &[u8]) {
    crate::acp::replay_updates(&String::from_utf8_lossy(bytes));
}

/// An agent definition file.
pub fn definition(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if let Ok(def) = AgentDef::from_markdown(&text, "fuzzed", "fuzz", ExecutorKind::ClaudeCode) {
        def.validate().expect("a definition that was read validates");
    }
}
