//! `baton-fake-model --script FILE [--listen ADDR]`: the fake model server, for
//! trying agent CLIs by hand. Prints `listening on URL` first.

use baton_testkit::{FakeModel, Script};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let script: Script = match flag("--script") {
        Some(path) => {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
        }
        None => Script::default(),
    };
    let addr = flag("--listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let server = FakeModel::start_on(addr.parse().expect("--listen ADDR:PORT"), script).await.expect("listen");
    println!("listening on {}", server.url);
    std::future::pending::<()>().await;
}
