//! The HTTP API against real databases: the real router and store behind a
//! real listener, spoken to over TCP. Shapes are the CLI's `--json` shapes.

use flowstate_engine::server_config::Token;
use flowstate_engine::{Config, Engine, EngineConfig, ServerConfig, Workflow};
use flowstate_server::Server;
use flowstate_store::StateStore;
use flowstate_tests::http::{self, events, get, Response};
use flowstate_tests::{backend_tests, TestDb};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "test-token-0123456789abcdef";

/// A server on a free port with its store; stops when dropped.
struct Served {
    addr: SocketAddr,
    store: Arc<dyn StateStore>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(db: &TestDb, mut config: ServerConfig) -> Served {
    let store: Arc<dyn StateStore> = Arc::new(db.store().await);
    config.listen.set_port(0);
    let server = Server::bind(&config).await.unwrap();
    let port = server.local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(store.clone(), None, "test", async {
        let _ = stopped.await;
    }));
    Served {
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        store,
        _stop: stop,
    }
}

async fn engine(db: &TestDb, store: Arc<dyn StateStore>) -> Engine {
    let config = Config {
        storage: db.config.clone(),
        engine: EngineConfig {
            node_id: Some(format!("api-{}", uuid::Uuid::new_v4().simple())),
            poll_interval: Duration::from_millis(50),
            ..EngineConfig::default()
        },
        server: ServerConfig::default(),
    };
    Engine::with_store(store, config).await.unwrap()
}

fn workflow(yaml: &str) -> Workflow {
    Workflow::from_yaml(yaml, Path::new("api.yaml")).unwrap()
}

/// A JSON error of `status` whose kind is `kind`.
fn refused(r: &Response, status: u16, kind: &str) -> String {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    let body = r.json();
    assert_eq!(body["error"], kind, "{body}");
    body["message"].as_str().unwrap().to_owned()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Two finished executions of api-ok, one of api-bad, two queued api-ok.
async fn seed(s: &Served, db: &TestDb) -> (String, String) {
    let ok = workflow("name: api-ok\ntasks:\n  - id: a\n    run: echo x=1 >> \"$FLOWSTATE_OUTPUT\"; echo hi\n  - id: b\n    needs: [a]\n    run: 'true'\n");
    let bad = workflow("name: api-bad\ntasks:\n  - id: a\n    run: exit 3\n");
    let e = engine(db, s.store.clone()).await;
    let mut done = Vec::new();
    for (w, input) in [
        (&ok, json!({"WHO": "api"})),
        (&ok, json!({})),
        (&bad, json!({})),
    ] {
        let x = e.submit(w, input).await.unwrap();
        done.push(e.run_execution(x.id).await.unwrap());
    }
    for _ in 0..2 {
        e.submit(&ok, json!({})).await.unwrap();
    }
    (done[0].id.to_string(), done[2].id.to_string())
}

async fn api_lists_and_filters_like_the_cli(db: TestDb) {
    let s = serve(&db, ServerConfig::default()).await;
    let (ok_id, bad_id) = seed(&s, &db).await;
    let all = get(s.addr, "/api/v1/executions").await.json();
    assert_eq!(
        keys(&all),
        [
            "items",
            "limit",
            "nextCursor",
            "offset",
            "total",
            "totalExact"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(all["total"], 5);
    let first = &all["items"][0];
    let want = [
        "createdAt",
        "error",
        "finishedAt",
        "id",
        "reason",
        "retryOf",
        "startedAt",
        "state",
        "updatedAt",
        "workflowId",
        "workflowName",
    ];
    assert_eq!(keys(first), want.map(String::from).into());
    assert_eq!(first["state"], "PENDING", "newest first");
    let count = |q: &'static str| async move { get(s.addr, q).await.json()["total"].clone() };
    assert_eq!(count("/api/v1/executions?workflow=api-bad").await, 1);
    assert_eq!(count("/api/v1/executions?workflow=api-*").await, 5);
    assert_eq!(
        count("/api/v1/executions?workflow=api-b*&reason=TASK_FAILED").await,
        1
    );
    assert_eq!(count("/api/v1/executions?state=PENDING").await, 2);
    assert_eq!(count("/api/v1/executions?state=PENDING,FAILED").await, 3);
    assert_eq!(
        count("/api/v1/executions?state=pending&state=failed").await,
        3
    );
    assert_eq!(
        count("/api/v1/executions?workflow=api-ok&state=SUCCEEDED").await,
        2
    );
    assert_eq!(count("/api/v1/executions?since=1h").await, 5);
    assert_eq!(count("/api/v1/executions?until=2099-01-01").await, 5);
    assert_eq!(count("/api/v1/executions?until=2000-01-01").await, 0);
    assert_eq!(
        count("/api/v1/executions?workflow=&state=").await,
        5,
        "empty form fields"
    );
    let bad = get(s.addr, "/api/v1/executions?workflow=api-bad")
        .await
        .json();
    assert_eq!(bad["items"][0]["id"], bad_id.as_str());
    assert_eq!(bad["items"][0]["workflowName"], "api-bad");
    both_pagings_walk_the_same_list(&s, &all, &ok_id).await;
    bad_list_requests_are_refused(&s).await;
}

/// Cursors and offsets page through `all`, the whole list newest first.
async fn both_pagings_walk_the_same_list(s: &Served, all: &Value, oldest_id: &str) {
    let mut walked = Vec::new();
    let mut path = "/api/v1/executions?limit=2".to_owned();
    loop {
        let page = get(s.addr, &path).await.json();
        walked.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/api/v1/executions?limit=2&after={c}"),
            None => break,
        }
    }
    assert_eq!(walked, ids(all));
    let offset = get(s.addr, "/api/v1/executions?limit=2&offset=2&sort=-created")
        .await
        .json();
    assert_eq!(ids(&offset), ids(all)[2..4]);
    let oldest = get(s.addr, "/api/v1/executions?sort=created&limit=1")
        .await
        .json();
    assert_eq!(ids(&oldest), [oldest_id.to_owned()]);
}

async fn bad_list_requests_are_refused(s: &Served) {
    for (q, status, kind, says) in [
        (
            "state=bogus",
            400,
            "bad_request",
            "unknown execution state 'bogus'",
        ),
        ("limit=0", 400, "bad_request", "limit"),
        ("limit=ten", 400, "bad_request", "limit is 'ten'"),
        (
            "offset=1&after=abc",
            400,
            "bad_request",
            "cannot be combined",
        ),
        (
            "since=yesterdayish",
            400,
            "bad_request",
            "bad time 'yesterdayish'",
        ),
        (
            "colour=red",
            400,
            "bad_request",
            "unknown parameter 'colour'",
        ),
        ("after=garbage", 400, "bad_request", "cursor"),
        (
            "workflow=ghost",
            404,
            "not_found",
            "workflow 'ghost' not found",
        ),
    ] {
        let r = get(s.addr, &format!("/api/v1/executions?{q}")).await;
        let message = refused(&r, status, kind);
        assert!(message.contains(says), "{q}: {message}");
    }
}

async fn api_shows_executions_logs_and_workflows(db: TestDb) {
    let s = serve(&db, ServerConfig::default()).await;
    let (ok_id, _) = seed(&s, &db).await;
    let d = get(s.addr, &format!("/api/v1/executions/{ok_id}"))
        .await
        .json();
    assert_eq!(d["state"], "SUCCEEDED");
    assert_eq!(d["inputs"], json!({"WHO": "api"}));
    assert_eq!(d["outputs"], json!({"a": {"x": "1"}}));
    let runs: Vec<&str> = d["taskRuns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["taskKey"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["a", "b"]);
    let attempt = &d["taskRuns"][0]["attempts"][0];
    assert_eq!(
        keys(attempt),
        [
            "error",
            "exitCode",
            "finishedAt",
            "number",
            "startedAt",
            "state"
        ]
        .map(String::from)
        .into()
    );
    assert_eq!(attempt["exitCode"], 0);
    refused(
        &get(s.addr, "/api/v1/executions/not-an-id").await,
        400,
        "bad_request",
    );
    let ghost = uuid::Uuid::now_v7();
    refused(
        &get(s.addr, &format!("/api/v1/executions/{ghost}")).await,
        404,
        "not_found",
    );
    shows_logs(&s, &ok_id).await;
    shows_workflows(&s).await;
}

/// Logs: the CLI's line objects, paged by line id.
async fn shows_logs(s: &Served, ok_id: &str) {
    let logs = get(s.addr, &format!("/api/v1/executions/{ok_id}/logs"))
        .await
        .json();
    let line = logs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["line"] == "hi")
        .expect("the task's line");
    assert_eq!(
        keys(line),
        ["attempt", "id", "line", "stream", "taskKey", "ts"]
            .map(String::from)
            .into()
    );
    assert_eq!(line["taskKey"], "a");
    let last = logs["nextAfter"].as_i64().unwrap();
    let rest = get(
        s.addr,
        &format!("/api/v1/executions/{ok_id}/logs?after={last}"),
    )
    .await
    .json();
    assert_eq!(rest, json!({"items": [], "nextAfter": last}));
    let only_b = get(s.addr, &format!("/api/v1/executions/{ok_id}/logs?task=b"))
        .await
        .json();
    assert!(only_b["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["taskKey"] == "b"));
    let m = refused(
        &get(s.addr, &format!("/api/v1/executions/{ok_id}/logs?task=zz")).await,
        404,
        "not_found",
    );
    assert!(m.contains("its tasks are a, b"), "{m}");
    refused(
        &get(s.addr, &format!("/api/v1/executions/{ok_id}/logs?limit=0")).await,
        400,
        "bad_request",
    );
}

/// Workflows, one workflow, its versions; health.
async fn shows_workflows(s: &Served) {
    let list = get(s.addr, "/api/v1/workflows").await.json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api-bad", "api-ok"]);
    assert_eq!(
        get(s.addr, "/api/v1/workflows?filter=ok").await.json()["total"],
        1
    );
    let w = get(s.addr, "/api/v1/workflows/api-ok").await.json();
    assert_eq!(w["version"], 1);
    assert_eq!(w["definition"]["tasks"][1]["needs"], json!(["a"]));
    let v = get(s.addr, "/api/v1/workflows/api-ok/versions")
        .await
        .json();
    assert_eq!(
        v,
        json!({"name": "api-ok", "versions": [{"version": 1, "createdAt": v["versions"][0]["createdAt"], "executions": 4, "current": true}]})
    );
    refused(
        &get(s.addr, "/api/v1/workflows/ghost").await,
        404,
        "not_found",
    );
    refused(
        &get(s.addr, "/api/v1/workflows/api-ok?version=9").await,
        404,
        "not_found",
    );
    refused(&get(s.addr, "/api/v1/nothing-here").await, 404, "not_found");
    assert_eq!(
        get(s.addr, "/healthz").await.json(),
        json!({"status": "ok"})
    );
    assert_eq!(
        get(s.addr, "/readyz").await.json(),
        json!({"status": "ready"})
    );
    refused(&get(s.addr, "/metrics").await, 404, "not_found");
}

async fn post(s: &Served, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Response {
    http::send(s.addr, "POST", path, headers, body, Duration::from_secs(10)).await
}

async fn api_changes_need_the_token(db: TestDb) {
    let guarded = ServerConfig {
        token: Some(Token::new("token", TOKEN).unwrap()),
        ..ServerConfig::default()
    };
    let s = serve(&db, guarded).await;
    let w = workflow("name: api-sub\ntasks:\n  - id: a\n    run: 'true'\n");
    flowstate_engine::register(s.store.as_ref(), &w)
        .await
        .unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let good: [(&str, &str); 2] = [
        ("Authorization", &bearer),
        ("Content-Type", "application/json"),
    ];
    let body = r#"{"workflow": "api-sub", "inputs": {"WHO": "api"}}"#;
    let none = post(
        &s,
        "/api/v1/executions",
        &[("Content-Type", "application/json")],
        Some(body),
    )
    .await;
    refused(&none, 401, "unauthorized");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    let wrong = [
        ("Authorization", "Bearer test-token-0123456789abcdeX"),
        ("Content-Type", "application/json"),
    ];
    let m = refused(
        &post(&s, "/api/v1/executions", &wrong, Some(body)).await,
        401,
        "unauthorized",
    );
    assert!(!m.contains(TOKEN), "{m}");
    let created = post(&s, "/api/v1/executions", &good, Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let e = created.json();
    assert_eq!(
        (e["state"].as_str(), e["workflowName"].as_str()),
        (Some("PENDING"), Some("api-sub"))
    );
    let id = e["id"].as_str().unwrap().to_owned();
    let d = get(s.addr, &format!("/api/v1/executions/{id}"))
        .await
        .json();
    assert_eq!(d["inputs"], json!({"WHO": "api"}));
    for (body, status, kind) in [
        ("not json", 400, "bad_request"),
        (r#"{"workflow": 5}"#, 400, "bad_request"),
        (
            r#"{"workflow": "api-sub", "inputs": {"1bad": "x"}}"#,
            400,
            "bad_request",
        ),
        (
            r#"{"workflow": "api-sub", "inputs": {"N": 5}}"#,
            400,
            "bad_request",
        ),
        (r#"{"workflow": "api-sub", "extra": 1}"#, 400, "bad_request"),
        (r#"{"workflow": "ghost"}"#, 404, "not_found"),
    ] {
        refused(
            &post(&s, "/api/v1/executions", &good, Some(body)).await,
            status,
            kind,
        );
    }
    cancelling_needs_the_token_too(&s, &id, &bearer).await;
    changes_without_a_token_need_loopback(&db, body).await;
}

async fn cancelling_needs_the_token_too(s: &Served, id: &str, bearer: &str) {
    let cancel = format!("/api/v1/executions/{id}/cancel");
    let good = [("Authorization", bearer)];
    refused(&post(s, &cancel, &[], None).await, 401, "unauthorized");
    let foreign = [("Authorization", bearer), ("Origin", "http://evil.example")];
    refused(&post(s, &cancel, &foreign, None).await, 403, "forbidden");
    let done = post(s, &cancel, &good, None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["state"], "CANCELLED");
    let again = refused(&post(s, &cancel, &good, None).await, 409, "conflict");
    assert!(again.contains("is CANCELLED"), "{again}");
}

/// Without a token, changes are served on loopback only.
async fn changes_without_a_token_need_loopback(db: &TestDb, body: &str) {
    let wide = serve(
        db,
        ServerConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            ..ServerConfig::default()
        },
    )
    .await;
    let json_only = [("Content-Type", "application/json")];
    let m = refused(
        &post(&wide, "/api/v1/executions", &json_only, Some(body)).await,
        403,
        "forbidden",
    );
    assert!(m.contains("server.token"), "{m}");
    assert_eq!(get(wide.addr, "/api/v1/executions").await.status, 200);
    let open = serve(db, ServerConfig::default()).await;
    assert_eq!(
        post(&open, "/api/v1/executions", &json_only, Some(body))
            .await
            .status,
        201
    );
}

async fn api_log_stream_follows_to_the_end(db: TestDb) {
    let s = serve(&db, ServerConfig::default()).await;
    let e = Arc::new(engine(&db, s.store.clone()).await);
    let w = workflow("name: api-talk\ntasks:\n  - id: talk\n    run: |\n      echo '<script>x</script>'\n      for i in 1 2 3 4 5; do echo line $i; sleep 0.2; done\n");
    let exec = e.submit(&w, json!({})).await.unwrap();
    let runner = e.clone();
    let run = tokio::spawn(async move { runner.run_execution(exec.id).await });
    let path = format!("/api/v1/executions/{}/logs/stream", exec.id);
    let r = http::send(s.addr, "GET", &path, &[], None, Duration::from_secs(60)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    run.await.unwrap().unwrap();
    let got = events(&r.body);
    assert_eq!(
        got.first().map(|e| e.event.as_str()),
        Some("state"),
        "{got:?}"
    );
    let lines: Vec<Value> = got
        .iter()
        .filter(|e| e.event == "line")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let text: Vec<&str> = lines.iter().map(|l| l["line"].as_str().unwrap()).collect();
    assert_eq!(
        text,
        [
            "<script>x</script>",
            "line 1",
            "line 2",
            "line 3",
            "line 4",
            "line 5"
        ]
    );
    let line_ids: Vec<i64> = got
        .iter()
        .filter_map(|e| e.id.as_ref())
        .map(|i| i.parse().unwrap())
        .collect();
    assert!(line_ids.windows(2).all(|w| w[0] < w[1]), "{line_ids:?}");
    let end = got.last().unwrap();
    assert_eq!(
        (end.event.as_str(), end.data.as_str()),
        ("end", r#"{"state":"SUCCEEDED"}"#)
    );
    // A browser that reconnects resumes after the last line it had.
    let resume = line_ids[2].to_string();
    let again = http::send(
        s.addr,
        "GET",
        &path,
        &[("Last-Event-ID", &resume)],
        None,
        Duration::from_secs(30),
    )
    .await;
    let rest: Vec<String> = events(&again.body)
        .into_iter()
        .filter(|e| e.event == "line")
        .map(|e| e.data)
        .collect();
    assert_eq!(rest.len(), 3, "{rest:?}");
    assert!(rest[0].contains("line 3"), "{rest:?}");
    let ghost = uuid::Uuid::now_v7();
    refused(
        &get(s.addr, &format!("/api/v1/executions/{ghost}/logs/stream")).await,
        404,
        "not_found",
    );
}

async fn api_says_unavailable_when_the_database_is_gone(db: TestDb) {
    let s = serve(&db, ServerConfig::default()).await;
    assert_eq!(get(s.addr, "/readyz").await.status, 200);
    s.store.close().await.unwrap();
    refused(&get(s.addr, "/readyz").await, 503, "unavailable");
    refused(&get(s.addr, "/api/v1/executions").await, 503, "unavailable");
    assert_eq!(
        get(s.addr, "/healthz").await.status,
        200,
        "the process still answers"
    );
}

backend_tests!(
    api_lists_and_filters_like_the_cli,
    api_shows_executions_logs_and_workflows,
    api_changes_need_the_token,
    api_log_stream_follows_to_the_end,
    api_says_unavailable_when_the_database_is_gone,
);
