//! Property tests of the parsers that read what people write: durations,
//! workflow files and both configuration sections (`storage:`, read by the
//! store, and `engine:`). None of them may panic on any input, and every
//! message they give is short and carries no raw control character.

use flowstate_engine::duration::{format_duration, parse_duration, MAX_DURATION};
use flowstate_engine::workflow::Workflow;
use flowstate_engine::EngineConfig;
use flowstate_store::config::STORAGE_KEYS;
use flowstate_store::StorageConfig;
use proptest::prelude::*;
use serde_yaml_ng::{Mapping, Value};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// The longest message any of these parsers gives about one value.
const MAX_MESSAGE: usize = 1_000;

fn assert_readable(message: &str, most: usize) {
    assert!(
        message.chars().count() <= most,
        "{} characters: {}",
        message.chars().count(),
        message.chars().take(300).collect::<String>()
    );
    assert!(
        !message.chars().any(char::is_control),
        "a raw control character in {message:?}"
    );
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Pieces of YAML syntax, so random text reaches the parser's corners.
const PIECES: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "'",
    "''",
    "\"",
    "\\\"",
    "\\",
    "#",
    " #",
    "\n",
    "\r\n",
    "\r",
    "\u{2028}",
    "\u{85}",
    " ",
    "  ",
    "\t",
    "|",
    "|2",
    ">-",
    "a",
    "key",
    "&a ",
    "*a",
    "!t ",
    "!!str ",
    "---",
    "...",
    "%YAML 1.1",
    "@",
    "`",
    "\u{feff}",
    "é",
    "x: |\n",
    "\n  ",
    "\n    ",
    "name",
    "tasks",
    "id",
    "run",
    "needs",
    "env",
    "engine",
    "workers",
    "\0",
    "\u{1b}[31m",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
}

/// YAML-like text without the control characters the parser refuses on
/// sight, so that it reads on to what follows.
fn yamlish_readable() -> impl Strategy<Value = String> {
    yamlish().prop_map(|t| t.replace(['\0', '\u{1b}'], ""))
}

/// Names as people (and attackers) write them: valid ones `valid` times
/// as often as each kind of hostile one.
fn name_weighted(valid: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        valid => "[a-z][a-z0-9_.-]{0,6}",
        1 => "[ \t]?[a-z]{1,4}[ \t]?",
        1 => "[a-z]{0,3}[\\x00-\\x1f\\x7f\\x{85}\\x{2028}][a-z]{0,3}",
        1 => "[a-zé日\\x{200b}]{1,5}",
        1 => Just(String::new()),
        1 => (250usize..300).prop_map(|n| "n".repeat(n)),
    ]
}

fn name() -> impl Strategy<Value = String> {
    name_weighted(4)
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|n| Value::Number(n.into())),
        name().prop_map(Value::String),
        "[0-9]{0,4}(\\.[0-9]{0,4})?(ms|s|m|h|d| s|x)?".prop_map(Value::String),
        "[ -~]{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((name(), inner), 0..4).prop_map(|kv| {
                Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect())
            }),
        ]
    })
}

/// A generated need: a task earlier in the file, any task (perhaps itself or
/// one that makes a cycle), or a name as written (perhaps of no task).
#[derive(Debug, Clone)]
enum Need {
    Earlier(prop::sample::Index),
    Any(prop::sample::Index),
    Named(String),
}

/// One generated task: its id, command, needs, environment and timeout.
#[derive(Debug, Clone)]
struct GenTask {
    id: String,
    run: String,
    needs: Vec<Need>,
    env: Vec<(String, Value)>,
    timeout: Option<String>,
}

fn task() -> impl Strategy<Value = GenTask> {
    (
        name_weighted(250),
        prop_oneof![
            100 => "[ -~]{0,20}[!-~]",
            1 => Just(String::new()),
            1 => "[a-z]{1,3}\u{0}[a-z]{0,3}",
        ],
        prop::collection::vec(
            prop_oneof![
                40 => any::<prop::sample::Index>().prop_map(Need::Earlier),
                2 => any::<prop::sample::Index>().prop_map(Need::Any),
                1 => name().prop_map(Need::Named),
            ],
            0..4,
        ),
        prop::collection::vec(
            (
                prop_oneof![60 => "[A-Za-z_][A-Za-z0-9_]{0,5}", 1 => name()],
                prop_oneof![60 => "[ -~]{0,8}".prop_map(Value::String), 1 => scalar()],
            ),
            0..3,
        ),
        prop::option::of("[1-9][0-9]{0,2}(\\.[0-9]{1,4})?(ms|s|m)"),
    )
        .prop_map(|(id, run, needs, env, timeout)| GenTask {
            id,
            run,
            needs,
            env,
            timeout,
        })
}

fn workflow_yaml(name: &str, tasks: &[GenTask]) -> String {
    let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
    let mut list = Vec::new();
    for (at, t) in tasks.iter().enumerate() {
        let mut m = Mapping::new();
        m.insert("id".into(), t.id.clone().into());
        m.insert("run".into(), t.run.clone().into());
        // Earlier tasks are needed once each; the other kinds may repeat.
        let mut needs: Vec<String> = Vec::new();
        for need in &t.needs {
            match need {
                Need::Earlier(_) if at == 0 => {}
                Need::Earlier(i) => {
                    let id = ids[i.index(at)].to_owned();
                    if !needs.contains(&id) {
                        needs.push(id);
                    }
                }
                Need::Any(i) => needs.push(ids[i.index(ids.len())].to_owned()),
                Need::Named(other) => needs.push(other.clone()),
            }
        }
        if !needs.is_empty() {
            let needs = needs.into_iter().map(Value::String).collect();
            m.insert("needs".into(), Value::Sequence(needs));
        }
        if !t.env.is_empty() {
            let env: Mapping = t
                .env
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), v.clone()))
                .collect();
            m.insert("env".into(), Value::Mapping(env));
        }
        if let Some(timeout) = &t.timeout {
            m.insert("timeout".into(), timeout.clone().into());
        }
        list.push(Value::Mapping(m));
    }
    let mut doc = Mapping::new();
    doc.insert("name".into(), name.into());
    doc.insert("tasks".into(), Value::Sequence(list));
    serde_yaml_ng::to_string(&doc).expect("a generated workflow serialises")
}

/// Checks a workflow the parser accepted against the text it came from.
fn check_accepted(wf: &Workflow, text: &str) {
    assert!(valid_id(&wf.name), "{:?}", wf.name);
    let raw: Value = serde_yaml_ng::from_str(text).unwrap();
    let raw_ids: HashSet<&str> = raw["tasks"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(raw_ids.len(), wf.tasks.len());
    let mut position = HashMap::new();
    for (i, t) in wf.tasks.iter().enumerate() {
        assert!(valid_id(&t.id), "{:?}", t.id);
        assert!(raw_ids.contains(t.id.as_str()));
        assert!(
            position.insert(t.id.as_str(), i).is_none(),
            "{} twice",
            t.id
        );
        assert!(!t.run.trim().is_empty() && !t.run.contains('\0'));
        for (k, v) in &t.env {
            let mut chars = k.chars();
            assert!(chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_'));
            assert!(
                chars.all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{k:?}"
            );
            assert!(!v.contains('\0'));
        }
        if let Some(ms) = t.timeout_ms {
            assert!(ms >= 1);
        }
    }
    for (i, t) in wf.tasks.iter().enumerate() {
        let distinct: HashSet<&String> = t.needs.iter().collect();
        assert_eq!(distinct.len(), t.needs.len(), "{:?}", t.needs);
        for need in &t.needs {
            assert!(
                position[need.as_str()] < i,
                "{} runs before its need {need}",
                t.id
            );
        }
    }
}

/// 256 cases per property; failures are reported with their minimal input,
/// and no regression files are written.
fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn durations_never_panic_and_messages_are_short(text in any::<String>()) {
        if let Err(e) = parse_duration(&text) {
            assert_readable(&e, MAX_MESSAGE);
        }
    }

    #[test]
    fn accepted_durations_round_trip(
        text in "[ ]?[0-9]{0,12}(\\.[0-9]{0,6})?[ ]?(ms|s|m|h|d|)[ ]?",
    ) {
        match parse_duration(&text) {
            Ok(d) => {
                prop_assert!(d <= MAX_DURATION);
                prop_assert!(d.is_zero() || d >= Duration::from_millis(1), "{text:?}: {d:?}");
                let whole_ms = Duration::from_millis(d.as_millis() as u64);
                if whole_ms == d {
                    prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
                }
            }
            Err(e) => assert_readable(&e, MAX_MESSAGE),
        }
    }

    #[test]
    fn every_whole_ms_duration_formats_and_parses_back(ms in 0u64..=MAX_DURATION.as_millis() as u64) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    #[test]
    fn workflows_never_panic_on_any_text(text in any::<String>()) {
        if let Err(e) = Workflow::from_yaml(&text, Path::new("w.yaml")) {
            assert_readable(&e.to_string(), MAX_MESSAGE);
        }
    }

    #[test]
    fn workflows_never_panic_on_yaml_like_text(text in yamlish()) {
        if let Err(e) = Workflow::from_yaml(&text, Path::new("w.yaml")) {
            assert_readable(&e.to_string(), MAX_MESSAGE);
        }
    }

    /// Deep brackets after any prefix: either the pre-scan refuses them or
    /// they sit inside a scalar or comment; the parser never gets to recurse.
    #[test]
    fn deep_nesting_never_reaches_the_parser(prefix in yamlish_readable()) {
        let text = format!("{prefix}{}{}", "[".repeat(200), "]".repeat(200));
        if let Err(e) = Workflow::from_yaml(&text, Path::new("w.yaml")) {
            let e = e.to_string();
            prop_assert!(!e.contains("recursion limit"), "{text:?}: {e}");
            assert_readable(&e, MAX_MESSAGE);
        }
    }

    #[test]
    fn generated_workflows_are_accepted_only_when_sound(
        name in name_weighted(40),
        tasks in prop::collection::vec(task(), 1..12),
    ) {
        let text = workflow_yaml(&name, &tasks);
        match Workflow::from_yaml(&text, Path::new("w.yaml")) {
            Ok(wf) => check_accepted(&wf, &text),
            // The "known tasks" list may name 20 tasks of up to 200 characters.
            Err(e) => assert_readable(&e.to_string(), 6_000),
        }
    }

    #[test]
    fn generated_dags_are_accepted_in_an_order_that_respects_needs(
        edges in prop::collection::vec(prop::collection::vec(any::<prop::sample::Index>(), 0..4), 1..30),
        shuffle in any::<u64>(),
    ) {
        // Task i may need only tasks with a smaller rank, so there is no cycle;
        // the file lists them in a scrambled order.
        let n = edges.len();
        let rank: Vec<usize> = (0..n).map(|i| (i * 7919 + shuffle as usize % 97) % n).collect();
        let mut by_rank: Vec<usize> = (0..n).collect();
        by_rank.sort_by_key(|&i| rank[i]);
        let mut tasks = Vec::new();
        for (i, needs) in edges.iter().enumerate() {
            let mut chosen: Vec<usize> = needs
                .iter()
                .filter(|_| rank[i] > 0)
                .map(|ix| by_rank[ix.index(rank[i])])
                .collect();
            chosen.sort_unstable();
            chosen.dedup();
            tasks.push(GenTask {
                id: format!("t{i}"),
                run: "true".into(),
                needs: chosen.iter().map(|j| Need::Named(format!("t{j}"))).collect(),
                env: Vec::new(),
                timeout: None,
            });
        }
        let text = workflow_yaml("dag", &tasks);
        let wf = Workflow::from_yaml(&text, Path::new("w.yaml")).unwrap();
        check_accepted(&wf, &text);
        prop_assert_eq!(wf.tasks.len(), n);
    }

    #[test]
    fn engine_config_never_panics_on_any_text(text in any::<String>()) {
        if let Err(e) = EngineConfig::from_yaml(&text) {
            assert_readable(&e, MAX_MESSAGE);
        }
    }

    #[test]
    fn engine_config_never_panics_on_yaml_like_text(text in yamlish()) {
        if let Err(e) = EngineConfig::from_yaml(&text) {
            assert_readable(&e, MAX_MESSAGE);
        }
    }

    #[test]
    fn engine_config_messages_name_the_key(
        entries in prop::collection::vec(
            (
                prop_oneof![
                    6 => prop::sample::select(&[
                        "workers", "nodeId", "leaseSeconds", "pollInterval",
                        "shutdownGrace", "metricsAddr",
                    ][..]).prop_map(str::to_owned),
                    1 => name(),
                ],
                value(),
            ),
            0..4,
        ),
    ) {
        let mut section = Mapping::new();
        for (k, v) in &entries {
            section.insert(Value::String(k.clone()), v.clone());
        }
        let mut doc = Mapping::new();
        doc.insert("engine".into(), Value::Mapping(section));
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        match EngineConfig::from_yaml(&text) {
            Ok(c) => {
                prop_assert!((1..=1024).contains(&c.workers));
                prop_assert!(c.poll_interval >= Duration::from_millis(10));
                prop_assert!(c.poll_interval <= Duration::from_secs(3600));
                prop_assert!(c.shutdown_grace <= Duration::from_secs(3600));
                if let Some(id) = &c.node_id {
                    prop_assert!(!id.is_empty() && id.trim() == id);
                    prop_assert!(!id.chars().any(char::is_control));
                }
            }
            Err(e) => {
                assert_readable(&e, MAX_MESSAGE);
                prop_assert!(e.starts_with("engine") || e.starts_with("unknown key 'engine."), "{e}");
            }
        }
    }
}

#[test]
fn fifty_thousand_nested_brackets_are_refused_at_once() {
    for text in [
        format!("name: x\ntasks: {}", "[".repeat(50_000)),
        format!("name: x\ntasks: {}", "{a: ".repeat(50_000)),
        format!("name: x\ntasks:\n{}", "- ".repeat(50_000)),
    ] {
        let e = Workflow::from_yaml(&text, Path::new("w.yaml")).unwrap_err();
        assert!(
            e.to_string().contains("nests YAML more than 64 levels"),
            "{e}"
        );
        let e = EngineConfig::from_yaml(&text.replace("tasks", "engine")).unwrap_err();
        assert!(e.contains("nests YAML more than 64 levels"), "{e}");
    }
}

#[test]
fn alias_bombs_are_refused_at_once() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ('b'..='j').zip('a'..) {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        text.push_str(&format!("{i}: &{i} [{refs}]\n"));
    }
    let e = Workflow::from_yaml(
        &format!("name: x\ntasks: []\nx: {{{}}}", text.replace('\n', ", ")),
        Path::new("w.yaml"),
    );
    assert!(e.is_err());
    let e = EngineConfig::from_yaml(&format!("engine:\n  workers: 2\n  nodeId: *j\n{text}"))
        .unwrap_err();
    assert_readable(&e, MAX_MESSAGE);
}

#[test]
fn files_over_ten_megabytes_are_refused_from_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.yaml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(11 * 1024 * 1024).unwrap();
    let e = Workflow::from_file(&path).unwrap_err().to_string();
    assert!(
        e.ends_with("the file is 11534336 bytes; the most is 10 MB (10485760 bytes)"),
        "{e}"
    );
    let ok = dir.path().join("ok.yaml");
    std::fs::write(&ok, "name: ok\ntasks:\n  - id: a\n    run: 'true'\n").unwrap();
    assert_eq!(Workflow::from_file(&ok).unwrap().name, "ok");
}

/// A `storage:` section of known keys (and hostile extras) in its
/// subsections too, with any values.
fn storage_section() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        6 => prop::sample::select(STORAGE_KEYS).prop_map(str::to_owned),
        1 => name(),
    ];
    let sub = prop::collection::vec(
        (
            prop_oneof![
                3 => prop::sample::select(&["path", "busyTimeoutMs", "url"][..]).prop_map(str::to_owned),
                1 => name(),
            ],
            value(),
        ),
        0..3,
    )
    .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect()));
    prop::collection::vec((key, prop_oneof![2 => value(), 1 => sub]), 0..5)
        .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect()))
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn storage_config_never_panics_on_any_text(text in any::<String>()) {
        if let Err(e) = StorageConfig::from_yaml(&text) {
            assert_readable(&e.to_string(), MAX_MESSAGE);
        }
    }

    #[test]
    fn storage_config_never_panics_on_yaml_like_text(text in yamlish()) {
        if let Err(e) = StorageConfig::from_yaml(&text) {
            assert_readable(&e.to_string(), MAX_MESSAGE);
        }
    }

    #[test]
    fn storage_config_accepts_only_values_in_range(section in storage_section()) {
        let mut doc = Mapping::new();
        doc.insert("storage".into(), section);
        let text = serde_yaml_ng::to_string(&doc).unwrap();
        match StorageConfig::from_yaml(&text) {
            Ok(c) => {
                prop_assert!((1..=1000).contains(&c.max_connections));
                prop_assert!((1..=36_500).contains(&c.retention_days));
                prop_assert!(c.sqlite.busy_timeout_ms <= 600_000);
                prop_assert!(!c.sqlite.path.as_os_str().is_empty());
            }
            Err(e) => {
                let e = e.to_string();
                assert_readable(&e, MAX_MESSAGE);
                prop_assert!(e.contains("storage"), "{e}");
            }
        }
    }
}
