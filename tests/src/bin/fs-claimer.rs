//! A separate engine-like process for the multi-process claiming tests: it
//! claims batches until none is left and prints every claimed id on its own line.
//!
//! Usage: fs-claimer DATABASE_URL NODE_ID BATCH

use flowstate_store::{SeaStore, StateStore, StorageConfig};
use std::time::Duration;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, node, batch] = args.as_slice() else {
        eprintln!("usage: fs-claimer DATABASE_URL NODE_ID BATCH");
        std::process::exit(2);
    };
    let batch: u64 = batch.parse().expect("BATCH is a number");
    let config = StorageConfig::default()
        .with_url(url)
        .expect("a database URL");
    let store = SeaStore::open(&config).await.expect("open the store");
    let mut empty_rounds = 0;
    while empty_rounds < 3 {
        let claimed = store
            .claim_due(node, batch, Duration::from_secs(300))
            .await
            .expect("claim");
        if claimed.is_empty() {
            empty_rounds += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        empty_rounds = 0;
        for e in claimed {
            println!("{}", e.id);
        }
    }
}
