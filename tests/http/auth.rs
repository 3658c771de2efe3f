//! Bearer secrets, browser sessions with CSRF, the throttle, the security headers.

use std::time::Instant;

use serde_json::json;

use crate::common::SECRET;
use crate::{json, HttpDaemon};

/// The `pm_session=...` pair of a login answer's Set-Cookie, and the whole header.
fn session_cookie(r: &ureq::Response) -> (String, String) {
    let set = r
        .header("Set-Cookie")
        .expect("a Set-Cookie header")
        .to_string();
    let pair = set.split(';').next().unwrap().trim().to_string();
    (pair, set)
}

#[test]
fn a_browser_session_needs_its_csrf_token_to_change_anything() {
    let d = HttpDaemon::start();
    let wrong = d
        .bare("POST", "/login")
        .send_form(&[("secret", "not-the-secret")]);
    let (status, body) = json(wrong);
    assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));

    let r = d
        .bare("POST", "/login")
        .send_json(json!({"secret": SECRET}))
        .unwrap();
    let (cookie, set) = session_cookie(&r);
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    let csrf = r.into_json::<serde_json::Value>().unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    // The form spelling logs in too.
    let (status, _) = json(d.bare("POST", "/login").send_form(&[("secret", SECRET)]));
    assert_eq!(status, 200);

    let (status, body) = json(
        d.bare("GET", "/api/v1/session")
            .set("Cookie", &cookie)
            .call(),
    );
    assert_eq!((status, body), (200, json!({"csrf": csrf})));
    let (status, body) = json(
        d.bare("GET", "/api/v1/processes")
            .set("Cookie", &cookie)
            .call(),
    );
    assert_eq!((status, body), (200, json!([])));

    let define = json!({"name": "nap", "command": "sleep 600"});
    let (status, body) = json(
        d.bare("POST", "/api/v1/processes")
            .set("Cookie", &cookie)
            .send_json(define.clone()),
    );
    assert_eq!((status, body["kind"].as_str()), (403, Some("forbidden")));
    let (status, _) = json(
        d.bare("POST", "/api/v1/processes")
            .set("Cookie", &cookie)
            .set("X-CSRF-Token", "forged")
            .send_json(define.clone()),
    );
    assert_eq!(status, 403);
    assert_eq!(d.daemon.pmclient(&["list"]).status.code(), Some(0));
    let (status, _) = json(
        d.bare("POST", "/api/v1/processes")
            .set("Cookie", &cookie)
            .set("X-CSRF-Token", &csrf)
            .send_json(define),
    );
    assert_eq!(status, 201);

    let gone = d
        .bare("POST", "/logout")
        .set("Cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(gone.status(), 204);
    let (status, _) = json(
        d.bare("GET", "/api/v1/session")
            .set("Cookie", &cookie)
            .call(),
    );
    assert_eq!(status, 401);
    let (status, _) = json(
        d.bare("GET", "/api/v1/processes")
            .set("Cookie", &cookie)
            .call(),
    );
    assert_eq!(status, 401);
}

#[test]
fn every_answer_carries_the_security_headers_and_no_cors() {
    let d = HttpDaemon::start();
    for r in [
        d.bare("GET", "/healthz")
            .set("Origin", "http://evil.example")
            .call()
            .unwrap(),
        d.authed("GET", "/api/v1/processes")
            .set("Origin", "http://evil.example")
            .call()
            .unwrap(),
    ] {
        let csp = r.header("Content-Security-Policy").unwrap_or_default();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    }
    // An error answer too.
    let Err(ureq::Error::Status(401, r)) = d.bare("GET", "/api/v1/processes").call() else {
        panic!("expected 401");
    };
    assert!(r.header("Content-Security-Policy").is_some());
}

#[test]
fn wrong_secrets_are_slowed_then_refused_with_429() {
    let d = HttpDaemon::start();
    let wrong = |d: &HttpDaemon| {
        json(
            d.bare("GET", "/api/v1/processes")
                .set("Authorization", "Bearer wrong")
                .call(),
        )
    };
    let began = Instant::now();
    for _ in 0..3 {
        let (status, body) = wrong(&d);
        assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));
    }
    // The socket's throttle: each wrong answer waited its delay.
    assert!(
        began.elapsed().as_millis() >= 2_500,
        "{:?}",
        began.elapsed()
    );
    let (status, body) = wrong(&d);
    assert_eq!(
        (status, body["kind"].as_str()),
        (429, Some("too_many_attempts"))
    );
    // Even the right secret waits out the lockout; the socket and /healthz still serve.
    let (status, _) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!(status, 429);
    assert_eq!(d.daemon.pmclient(&["list"]).status.code(), Some(0));
    let (status, _) = json(d.bare("GET", "/healthz").call());
    assert_eq!(status, 200);
    assert!(d.daemon.stderr().contains("HTTP: wrong secret"));
}
