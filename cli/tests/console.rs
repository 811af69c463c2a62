//! The web console in a real browser: headless Chromium driven over
//! WebDriver (Debian's `chromium` and `chromium-driver`) against a real
//! `flowstate serve` on a real database, on all three backends.
//!
//! It opens the list, filters it by state, opens a running execution, sees
//! a log line arrive without a reload, presses cancel and sees CANCELLED,
//! and checks that log lines holding markup are shown as text. Screenshots
//! go to `target/console-screenshots/` for a person to look at.
//!
//! Without `chromedriver` on the PATH the test says SKIP loudly, unless
//! `FLOWSTATE_TEST_REQUIRE` names `browser` (as `.ci/run` does, after
//! installing the packages): then it fails.

use fantoccini::{Client, ClientBuilder, Locator};
use flowstate_engine::Workflow;
use flowstate_tests::{backend_tests, TestDb};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `chromedriver` on a free port, or `None` (with a loud SKIP) when it is
/// not installed and not required.
fn chromedriver() -> Option<(Killed, String)> {
    let required = std::env::var("FLOWSTATE_TEST_REQUIRE")
        .unwrap_or_default()
        .split(',')
        .any(|b| b.trim() == "browser");
    let port = free_port();
    let child = match Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => Killed(c),
        Err(e) if !required => {
            eprintln!("SKIP browser test: cannot start chromedriver ({e}); apt-get install chromium chromium-driver");
            return None;
        }
        Err(e) => panic!("FLOWSTATE_TEST_REQUIRE names browser but chromedriver cannot start: {e}; apt-get install chromium chromium-driver"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((child, format!("http://127.0.0.1:{port}")))
}

async fn browser(webdriver: &str) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1700"]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(webdriver)
        .await
        .expect("a Chromium session")
}

/// `flowstate serve` on `db` with the console on a free port, and its URL
/// (read from its log).
fn serve(db: &TestDb, dir: &Path) -> (Killed, String) {
    let config = dir.join("console.yaml");
    let text = format!(
        "{}engine:\n  workers: 4\n  pollInterval: 50ms\n  leaseSeconds: 10\n  shutdownGrace: 2s\nserver:\n  listen: 127.0.0.1:0\n",
        db.storage_yaml()
    );
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowstate"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("FLOWSTATE_DATABASE_URL")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowstate serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("serve said where it listens").unwrap();
        if let Some(at) = line.find("http://") {
            let url = line[at..].split_whitespace().next().unwrap();
            break url.trim_end_matches('/').to_owned();
        }
    };
    // Keep reading, so that its log never fills the pipe.
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), url)
}

/// Waits until `check` holds, polling every 100 ms for at most `within`.
async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn shots(backend: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/console-screenshots")
        .join(backend);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(c: &Client, dir: &Path, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

const TALKER: &str = "name: talker\ntasks:\n  - id: setup\n    run: echo ready\n  - id: talk\n    needs: [setup]\n    run: |\n      echo '<script>window.pwned = 1</script>'\n      echo '<img src=x onerror=\"window.pwned = 2\">'\n      for i in $(seq 1 300); do echo \"tick $i\"; sleep 0.3; done\n";

async fn seed(db: &TestDb) -> String {
    let store = db.store().await;
    let wf = |y: &str| Workflow::from_yaml(y, Path::new("console.yaml")).unwrap();
    let ok = wf("name: nightly-report\ntasks:\n  - id: extract\n    run: echo rows=42 >> \"$FLOWSTATE_OUTPUT\"\n  - id: load\n    needs: [extract]\n    run: echo loaded\n");
    let bad = wf(
        "name: flaky-sync\ntasks:\n  - id: sync\n    run: echo 'connection refused' >&2; exit 3\n",
    );
    for w in [&ok, &bad, &ok] {
        flowstate_engine::submit(&store, w, json!({}))
            .await
            .unwrap();
    }
    let talker = flowstate_engine::submit(&store, &wf(TALKER), json!({"TARGET": "eu-west"}))
        .await
        .unwrap();
    talker.id.to_string()
}

async fn the_console_in_a_browser(db: TestDb) {
    let Some((_driver, webdriver)) = chromedriver() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_serve, base) = serve(&db, dir.path());
    let talker = seed(&db).await;
    let shots = shots(&db.backend.to_string());
    let c = browser(&webdriver).await;
    list_and_filter(&c, &base, &shots).await;
    follow_and_cancel(&c, &base, &talker, &shots).await;
    // The workflow page draws its graph.
    c.goto(&format!("{base}/workflows/talker")).await.unwrap();
    assert_eq!(
        c.find_all(Locator::Css("svg.graph g.node"))
            .await
            .unwrap()
            .len(),
        2
    );
    shoot(&c, &shots, "5-workflow.png").await;
    c.close().await.unwrap();
}

/// The list, once the engine has run the short ones; filtered by state.
async fn list_and_filter(c: &Client, base: &str, shots: &Path) {
    c.goto(&format!("{base}/executions")).await.unwrap();
    until("a FAILED row", Duration::from_secs(30), || async {
        c.goto(&format!("{base}/executions")).await.unwrap();
        !c.find_all(Locator::Css("tr[data-state=FAILED]"))
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    shoot(c, shots, "1-executions.png").await;
    // Filtering by state goes into the URL and keeps only that state.
    let state = c.find(Locator::Css("select[name=state]")).await.unwrap();
    state.select_by_value("FAILED").await.unwrap();
    c.find(Locator::Css("form.filters button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the filtered URL", Duration::from_secs(10), || async {
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("state=FAILED")
    })
    .await;
    let rows = c
        .find_all(Locator::Css("#executions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one FAILED execution");
    assert_eq!(
        rows[0].attr("data-state").await.unwrap().as_deref(),
        Some("FAILED")
    );
    shoot(c, shots, "2-filtered.png").await;
}

/// The running execution: its log grows without a reload, shows markup as
/// text, and its cancel button ends it.
async fn follow_and_cancel(c: &Client, base: &str, talker: &str, shots: &Path) {
    c.goto(&format!("{base}/executions/{talker}"))
        .await
        .unwrap();
    until("the talker's ticks", Duration::from_secs(30), || async {
        text_of(c, "#log").await.contains("tick")
    })
    .await;
    c.execute("window.notReloaded = true", vec![])
        .await
        .unwrap();
    let count = || async { c.find_all(Locator::Css("#log li")).await.unwrap().len() };
    let before = count().await;
    until("a new log line", Duration::from_secs(15), || async {
        count().await > before
    })
    .await;
    let kept = c
        .execute("return window.notReloaded === true", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the page was not reloaded");
    // Markup printed by a task is text.
    let spans = c.find_all(Locator::Css("#log li span")).await.unwrap();
    let mut texts = Vec::new();
    for s in &spans {
        texts.push(s.text().await.unwrap());
    }
    assert!(
        texts
            .iter()
            .any(|t| t == "<script>window.pwned = 1</script>"),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t == "<img src=x onerror=\"window.pwned = 2\">"),
        "{texts:?}"
    );
    let pwned = c
        .execute("return window.pwned === undefined", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, json!(true), "no script of a log line ran");
    assert!(c
        .find_all(Locator::Css("#log img, #log script"))
        .await
        .unwrap()
        .is_empty());
    shoot(c, shots, "3-running.png").await;
    // Cancel: the page comes back CANCELLED.
    c.find(Locator::Css("#cancel"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("CANCELLED", Duration::from_secs(15), || async {
        text_of(c, "#state").await == "CANCELLED"
    })
    .await;
    assert!(c
        .find_all(Locator::Css("#cancel"))
        .await
        .unwrap()
        .is_empty());
    shoot(c, shots, "4-cancelled.png").await;
}

backend_tests!(the_console_in_a_browser);
