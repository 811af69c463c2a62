//! Scenario 12: the HTTP API and the console of a real `flowstate console`
//! on the bench database. One client asks for the API's first page of
//! executions one request after another; then 50 clients ask at once, each
//! on its own keep-alive connection, for a fixed time (a closed loop: each
//! sends its next request when the last answer is in). The console's
//! executions page is timed and weighed the same way as the single client.
//!
//! The load loop is a minimal HTTP/1.1 client of its own (GET, keep-alive,
//! `Content-Length` bodies): the bench depends on no HTTP stack.

use crate::stats::Samples;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;

/// Clients of the concurrent run.
const CLIENTS: usize = 50;
const FIRST_PAGE: &str = "/api/v1/executions";
const PAGE: &str = "/executions";

/// The rows of scenario 12, or a row saying why it was skipped.
pub async fn measure(flowstate: &Path, storage_yaml: &str, dir: &Path, quick: bool) -> Vec<Value> {
    if !flowstate.is_file() {
        return vec![
            json!({"scenario": "console", "skipped": format!("no flowstate binary at {}; build it (cargo build --release -p flowstate)", flowstate.display())}),
        ];
    }
    let config = dir.join("console.yaml");
    std::fs::write(
        &config,
        format!("{storage_yaml}server:\n  listen: 127.0.0.1:0\n"),
    )
    .unwrap();
    let (mut child, addr) = start(flowstate, &config);
    let rows = rows(addr, quick).await;
    let _ = child.kill();
    let _ = child.wait();
    rows
}

async fn rows(addr: SocketAddr, quick: bool) -> Vec<Value> {
    let n = if quick { 30 } else { 300 };
    let size = Conn::open(addr).await.get(PAGE).await;
    let api = sequential(addr, FIRST_PAGE, n).await;
    let page = sequential(addr, PAGE, n).await;
    let load = concurrent(
        addr,
        FIRST_PAGE,
        Duration::from_secs(if quick { 1 } else { 5 }),
    )
    .await;
    let mut html = crate::row("console executions page (HTML), 1 client", &page, None);
    html["htmlBytes"] = json!(size);
    vec![
        crate::row("API first page of executions, 1 client", &api, None),
        crate::row(
            &format!("API first page of executions, {CLIENTS} clients"),
            &load,
            None,
        ),
        html,
    ]
}

/// One client: `n` requests, one after the other, on one connection.
async fn sequential(addr: SocketAddr, path: &str, n: usize) -> Samples {
    let mut c = Conn::open(addr).await;
    let start = Instant::now();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.get(path).await;
        times.push(t.elapsed());
    }
    Samples::from(times, start.elapsed())
}

/// `CLIENTS` closed-loop clients on `path` for `time`.
async fn concurrent(addr: SocketAddr, path: &'static str, time: Duration) -> Samples {
    let start = Instant::now();
    let deadline = start + time;
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(addr).await;
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                c.get(path).await;
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    Samples::from(all, start.elapsed())
}

/// Starts `flowstate console` and reads from its log where it listens.
fn start(flowstate: &Path, config: &Path) -> (Child, SocketAddr) {
    let mut child = Command::new(flowstate)
        .arg("--config")
        .arg(config)
        .arg("console")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flowstate console");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("flowstate console stopped before it listened");
        };
        if let Some(at) = line.find("http://") {
            let host = line[at + 7..].split('/').next().unwrap();
            break host.parse().expect("an address");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

/// One keep-alive connection.
struct Conn {
    stream: AsyncBufReader<TcpStream>,
    addr: SocketAddr,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the console");
        stream.set_nodelay(true).unwrap();
        Conn {
            stream: AsyncBufReader::new(stream),
            addr,
        }
    }

    /// GETs `path`; panics unless it answers 200. Returns the body's size.
    async fn get(&mut self, path: &str) -> usize {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr);
        self.stream
            .get_mut()
            .write_all(req.as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{path}: {line}");
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.unwrap();
        length
    }
}
