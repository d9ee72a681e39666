//! The OpenAI-compatible backend against a real HTTP/1.1 server on 127.0.0.1 that plays a
//! script of canned answers and records what it was sent (`test_support::openai`).

use std::net::TcpListener;
use std::time::{Duration, Instant};

use llm_prompting::{
    ChatBackend, ChatMessage, LlmGenerator, ModelGenerator, OpenAiBackend, OpenAiConfig, Prompts,
    RequirementGenerator, TaskInput,
};
use serde_json::json;
use test_support::openai::{chat, reply, serve, Server, Step};

fn config(server: &Server) -> OpenAiConfig {
    OpenAiConfig {
        base_url: server.base_url.clone(),
        model: "test-model".into(),
        api_key: Some("sk-test-key".into()),
        timeout_s: 5.0,
        max_retries: 2,
        backoff_initial_ms: 10,
        backoff_max_ms: 40,
        temperature: 0.0,
    }
}

fn backend(server: &Server) -> OpenAiBackend {
    OpenAiBackend::new(config(server)).unwrap()
}

fn iris_input() -> TaskInput {
    let path = test_support::fixtures::tiny_iris_csv();
    let table = datasets::user_csv::load_csv(&path, &Default::default()).unwrap();
    TaskInput::from_table(&table, Some("Flower measurements.")).unwrap()
}

const REQ: &str = "This is a task of 3-class, 4-feature and small-scaled tabular classification over 4 numeric flower measurements.";
const META: &str =
    r#"{"task": "tabular_cls", "in_dim": 4, "out_dim": 3, "scale": "small", "arch": "mlp_small"}"#;

#[test]
fn valid_reply_and_request_shape() {
    let s = serve(vec![chat("hello there")]);
    let b = backend(&s);
    let msgs = [ChatMessage::system("be brief"), ChatMessage::user("hi")];
    assert_eq!(b.chat(&msgs, 17).unwrap(), "hello there");
    let seen = s.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].auth, "Bearer sk-test-key");
    assert_eq!(seen[0].body["model"], "test-model");
    assert_eq!(seen[0].body["max_tokens"], 17);
    assert_eq!(
        seen[0].body["messages"],
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}])
    );
}

#[test]
fn generator_with_prose_and_fenced_json() {
    let s = serve(vec![
        chat(&format!(
            "Output: {REQ}\nAnalysis: the facts say 3 classes."
        )),
        chat(&format!("Here is the metadata:\n```json\n{META}\n```")),
    ]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    let input = iris_input();
    let r = g.requirement(&input).unwrap();
    assert_eq!(r, REQ);
    let m = g.metadata(&r, &input).unwrap();
    assert_eq!(
        (m.in_dim, m.out_dim, m.arch.as_str()),
        (Some(4), 3, "mlp_small")
    );
    let seen = s.seen();
    // The requirement prompt carries the facts and the rows in file order.
    let req_msgs = seen[0].body["messages"].as_array().unwrap();
    assert_eq!(req_msgs.len(), 6, "system + two example turns + the input");
    let user = req_msgs[5]["content"].as_str().unwrap();
    assert!(
        user.contains("User Description: Flower measurements."),
        "{user}"
    );
    assert!(
        user.contains("3 classes; 4 input features (4 numeric); 6 rows, so scale is small"),
        "{user}"
    );
    assert!(user.contains(r#"[input] {"sepal_length":5.1,"sepal_width":3.5,"petal_length":1.4,"petal_width":0.2} [label] setosa"#), "{user}");
    let sys = seen[1].body["messages"][0]["content"].as_str().unwrap();
    assert!(
        sys.contains("\"mobilenet_v3_small\"") && sys.contains("\"tabular_cls\""),
        "{sys}"
    );
    let meta_msgs = seen[1].body["messages"].as_array().unwrap();
    assert_eq!(
        meta_msgs.last().unwrap(),
        &json!({"role": "user", "content": REQ})
    );
}

#[test]
fn invalid_then_repaired() {
    let s = serve(vec![
        chat(
            r#"{"task": "tabular_cls", "in_dim": 4, "out_dim": 3, "scale": "small", "arch": "xgboost"}"#,
        ),
        chat(META),
    ]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    let m = g.metadata(REQ, &iris_input()).unwrap();
    assert_eq!(m.arch, "mlp_small");
    let seen = s.seen();
    assert_eq!(seen.len(), 2);
    let first = seen[0].body["messages"].as_array().unwrap().len();
    let msgs = seen[1].body["messages"].as_array().unwrap();
    assert_eq!(
        msgs.len(),
        first + 2,
        "the first try, its answer, the repair request"
    );
    assert_eq!(msgs[first]["role"], "assistant");
    let repair = msgs[first + 1]["content"].as_str().unwrap();
    assert!(
        repair.contains("field `arch` has value `xgboost`; allowed: mlp_small"),
        "{repair}"
    );
}

#[test]
fn disagreeing_with_the_data_is_repaired_too() {
    let s = serve(vec![
        chat(
            r#"{"task": "tabular_cls", "in_dim": 6, "out_dim": 3, "scale": "small", "arch": "mlp_small"}"#,
        ),
        chat(META),
    ]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    assert_eq!(g.metadata(REQ, &iris_input()).unwrap().in_dim, Some(4));
    let seen = s.seen();
    let msgs = seen[1].body["messages"].as_array().unwrap();
    let repair = msgs.last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        repair.contains("`in_dim` is 6 but the data has 4 input features"),
        "{repair}"
    );
}

#[test]
fn invalid_twice_is_an_error_naming_the_field() {
    let s = serve(vec![
        chat("I think a random forest would be best."),
        chat(
            r#"{"task": "tabular_cls", "in_dim": 4, "out_dim": "three", "scale": "small", "arch": "mlp_small"}"#,
        ),
    ]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    let e = g.metadata(REQ, &iris_input()).unwrap_err().to_string();
    assert!(e.contains("after one repair round"), "{e}");
    assert!(
        e.contains("field `out_dim` must be a positive integer, got a string"),
        "{e}"
    );
    assert!(e.contains("no JSON object found"), "{e}");
    assert_eq!(s.seen().len(), 2);
}

#[test]
fn timeout_is_retried_then_reported() {
    let slow = |_| Step {
        delay: Duration::from_millis(1500),
        ..chat("too late")
    };
    let s = serve((0..2).map(slow).collect());
    let b = OpenAiBackend::new(OpenAiConfig {
        timeout_s: 0.3,
        max_retries: 1,
        ..config(&s)
    })
    .unwrap();
    let t = Instant::now();
    let e = b
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("timed out after 0.3 s"), "{e}");
    assert!(e.contains("after 2 attempt(s)"), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn server_error_then_success() {
    let s = serve(vec![
        reply(500, r#"{"error": {"message": "overloaded"}}"#),
        Step {
            headers: vec![("Retry-After", "0".into())],
            ..reply(429, r#"{"error": {"message": "slow down"}}"#)
        },
        chat("fine now"),
    ]);
    let b = backend(&s);
    assert_eq!(b.chat(&[ChatMessage::user("hi")], 8).unwrap(), "fine now");
    assert_eq!(s.seen().len(), 3);
}

#[test]
fn persistent_500_gives_up() {
    let s = serve((0..3).map(|_| reply(500, "upstream exploded")).collect());
    let e = backend(&s)
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("after 3 attempt(s)")
            && e.contains("HTTP 500")
            && e.contains("upstream exploded"),
        "{e}"
    );
    assert_eq!(s.seen().len(), 3);
}

#[test]
fn unauthorized_is_not_retried_and_key_is_masked() {
    let s = serve(vec![
        reply(
            401,
            r#"{"error": {"message": "Incorrect API key provided: sk-test-key"}}"#,
        ),
        chat("never sent"),
    ]);
    let e = backend(&s)
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("authentication failed (HTTP 401)"), "{e}");
    assert!(e.contains("HYPER_OPENAI_API_KEY"), "{e}");
    assert!(
        !e.contains("sk-test-key") && e.contains("<redacted>"),
        "{e}"
    );
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn not_found_and_other_client_errors() {
    let s = serve(vec![reply(404, r#"{"error": "no such model"}"#)]);
    let e = backend(&s)
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 404") && e.contains("test-model") && e.contains("no such model"),
        "{e}"
    );
    let s = serve(vec![reply(400, r#"{"error": "max_tokens too large"}"#)]);
    let e = backend(&s)
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 400") && e.contains("max_tokens too large"),
        "{e}"
    );
    assert_eq!(s.seen().len(), 1);
}

#[test]
fn empty_and_malformed_replies() {
    let s = serve(vec![chat("   "), reply(200, "<html>gateway</html>")]);
    let b = backend(&s);
    let e = b
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty reply"), "{e}");
    let e = b
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not JSON") && e.contains("gateway"), "{e}");
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let b = OpenAiBackend::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}"),
        model: "m".into(),
        api_key: Some("k".into()),
        max_retries: 1,
        backoff_initial_ms: 5,
        backoff_max_ms: 5,
        ..Default::default()
    })
    .unwrap();
    let e = b
        .chat(&[ChatMessage::user("hi")], 8)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("connection error") && e.contains("after 2 attempt(s)"),
        "{e}"
    );
}

#[test]
fn missing_key_and_env_config() {
    std::env::remove_var("HYPER_OPENAI_API_KEY");
    std::env::remove_var("OPENAI_API_KEY");
    std::env::set_var("HYPER_OPENAI_BASE_URL", "http://127.0.0.1:1/v1");
    std::env::set_var("HYPER_OPENAI_MODEL", "env-model");
    let cfg = OpenAiConfig::from_env();
    assert_eq!(
        (cfg.base_url.as_str(), cfg.model.as_str()),
        ("http://127.0.0.1:1/v1", "env-model")
    );
    let e = OpenAiBackend::new(cfg).unwrap_err().to_string();
    assert!(
        e.contains("no API key") && e.contains("HYPER_OPENAI_API_KEY"),
        "{e}"
    );
    std::env::set_var("OPENAI_API_KEY", "sk-fallback");
    let b = OpenAiBackend::new(OpenAiConfig::from_env()).unwrap();
    assert_eq!(b.config().api_key.as_deref(), Some("sk-fallback"));
    assert_eq!(
        b.id(),
        "openai:env-model@http://127.0.0.1:1/v1/chat/completions"
    );
}

#[test]
fn requirement_missing_numbers_is_repaired_then_rejected() {
    let s = serve(vec![
        chat("This is a task of 15-class and small-scaled image classification."),
        chat(REQ),
    ]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    assert_eq!(g.requirement(&iris_input()).unwrap(), REQ);
    let seen = s.seen();
    let repair = seen[1].body["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        repair.contains("`3-class`") && repair.contains("`4-feature`"),
        "{repair}"
    );

    let s = serve(vec![chat(""), chat("  \n ")]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    let e = g.requirement(&iris_input()).unwrap_err().to_string();
    assert!(e.contains("empty reply"), "{e}");
    let s = serve(vec![chat("Flowers."), chat("Still flowers.")]);
    let g = LlmGenerator::with_prompts(backend(&s), Prompts::embedded());
    let e = g.requirement(&iris_input()).unwrap_err().to_string();
    assert!(
        e.contains("after one repair round") && e.contains("`small-scaled`"),
        "{e}"
    );
}
