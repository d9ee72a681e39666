//! A fake OpenAI-compatible server: a real HTTP/1.1 listener on 127.0.0.1 that plays a
//! script of canned answers, one connection each, and records what it was sent. Once the
//! script is played the listener closes, so later requests are refused.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

/// One scripted answer: wait `delay`, then send `status` with `body` (and extra headers).
pub struct Step {
    pub delay: Duration,
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// An immediate answer with this status and body.
pub fn reply(status: u16, body: impl Into<String>) -> Step {
    Step {
        delay: Duration::ZERO,
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

/// A 200 chat completion whose assistant message is `content`.
pub fn chat(content: &str) -> Step {
    reply(
        200,
        json!({"id": "x", "object": "chat.completion",
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content}}]})
        .to_string(),
    )
}

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    /// The `Authorization` header ("" when absent).
    pub auth: String,
    /// The JSON body (`Null` when it is not JSON).
    pub body: Value,
}

pub struct Server {
    /// `http://127.0.0.1:<port>/v1`.
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    /// The requests answered so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let (mut len, mut auth) = (0usize, String::new());
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => len = v.trim().parse().ok()?,
            "authorization" => auth = v.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        path,
        auth,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// Serves `steps` in order, one connection each (answers close the connection).
pub fn serve(steps: Vec<Step>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    thread::spawn(move || {
        for step in steps {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            if let Some(req) = read_request(&mut stream) {
                log.lock().unwrap().push(req);
            }
            thread::sleep(step.delay);
            let reason = match step.status {
                200 => "OK",
                401 => "Unauthorized",
                404 => "Not Found",
                429 => "Too Many Requests",
                500 => "Internal Server Error",
                _ => "Status",
            };
            let mut head = format!(
                "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
                step.status,
                step.body.len()
            );
            for (k, v) in &step.headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(step.body.as_bytes());
            let _ = stream.flush();
        }
    });
    Server { base_url, seen }
}
