//! HTTP against a container's TCP API: start one on a free port, make an
//! API key, send requests with ureq and keep status, headers and body.

use std::time::Duration;

use serde_json::Value;

use super::{stdout, Container, Env};

/// A container with TCP on a free port; its base URL.
pub fn start(env: &Env, args: &[&str]) -> (Container, String) {
    let c = env.start_container_with(args, &[("SENSORCONTAINER_API_LISTEN", "127.0.0.1:0")]);
    let url = c.http_base();
    (c, url)
}

pub fn apikey(env: &Env) -> String {
    let out = env.sensorctl(&["apikey", "create", "--name", "test"]);
    assert!(out.status.success(), "{}", super::stderr(&out));
    let key = stdout(&out).trim().to_string();
    assert!(key.starts_with("sck_"), "{key}");
    key
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The body as JSON (panics naming the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .map(|n| {
            let v = resp.header(&n).unwrap_or("").to_string();
            (n, v)
        })
        .collect();
    Answer {
        status,
        headers,
        body: resp.into_string().unwrap_or_default(),
    }
}

pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let mut req = ureq::post(url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.send_string(body))
}

pub fn get(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = ureq::get(url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.call())
}

/// Any method, with an optional body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
    let mut req = ureq::request(method, url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(match body {
        Some(b) => req.send_string(b),
        None => req.call(),
    })
}
