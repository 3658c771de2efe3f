//! The OpenAPI document: every route the server mounts is in it, and every example in it is
//! accepted by the server.

use std::path::Path;

use serde_json::Value;

use crate::{answer, json, HttpDaemon};

/// Routes that answer no JSON and are left out of the document: the dashboard and the metrics.
const NOT_IN_THE_DOCUMENT: &[&str] = &["/", "/metrics"];

/// Every `.route("<path>", web::<method>()` in the server's source, as (METHOD, path).
fn mounted_routes() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split(".route(\"").skip(1) {
                let Some((route, rest)) = piece.split_once('"') else {
                    continue;
                };
                let Some(method) = rest.trim_start_matches(',').trim().strip_prefix("web::") else {
                    continue;
                };
                let method = method.split('(').next().unwrap().to_ascii_uppercase();
                found.push((method, route.to_string()));
            }
        }
    }
    found
}

#[test]
fn every_route_is_documented_and_every_example_is_accepted() {
    let d = HttpDaemon::start();
    let (status, doc) = json(d.authed("GET", "/api/v1/openapi.json").call());
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();

    let mounted = mounted_routes();
    assert!(mounted.len() >= 15, "{mounted:?}");
    for (method, route) in &mounted {
        if NOT_IN_THE_DOCUMENT.contains(&route.as_str()) || route.starts_with("/assets/") {
            continue;
        }
        let op = &paths
            .get(route)
            .unwrap_or_else(|| panic!("{route} is not in the document"))
            [method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {route} is not in the document");
    }

    // Each documented operation with a request example, sent as documented: no 400, 404 or 413.
    // The definition comes first, so that the routes about its process find it.
    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations.push((method.to_ascii_uppercase(), path.clone(), op.clone()));
        }
    }
    operations.sort_by_key(|(m, p, _)| (order(m, p), p.clone()));
    let mut tried = 0;
    for (method, path, op) in operations {
        // Deleting first would undo the rest; the stream never ends; a session is a browser's
        // (the auth tests cover it); the login example is tried below.
        if method == "DELETE"
            || ["/api/v1/events", "/api/v1/session", "/login"].contains(&path.as_str())
        {
            continue;
        }
        let mut url = path.clone();
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let example = p["example"].as_str().expect("a path parameter example");
                url = url.replace(&format!("{{{}}}", p["name"].as_str().unwrap()), example);
            }
        }
        let content = &op["requestBody"]["content"];
        let (status, body) =
            if let Some((kind, media)) = content.as_object().and_then(|c| c.iter().next()) {
                let example = media
                    .get("example")
                    .cloned()
                    .or_else(|| schema_example(&doc, &media["schema"]))
                    .unwrap_or_else(|| panic!("{method} {path}: no request example"));
                let text = match example {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                answer(
                    d.authed(&method, &url)
                        .set("Content-Type", kind)
                        .send_string(&text),
                )
            } else {
                answer(d.authed(&method, &url).call())
            };
        assert!(
            (200..300).contains(&status),
            "{method} {url} answered {status}: {body}"
        );
        tried += 1;
    }
    assert!(tried >= 10, "{tried}");
    // The documented process object is the one the server answers, key for key.
    let (_, web) = json(d.authed("GET", "/api/v1/processes/web").call());
    let properties = doc["components"]["schemas"]["ProcessInfo"]["properties"]
        .as_object()
        .expect("ProcessInfo's properties");
    for key in web.as_object().unwrap().keys() {
        assert!(
            properties.contains_key(key),
            "{key} is not in ProcessInfo's schema"
        );
    }
    // The login example is the shape the server reads: a wrong secret, not a bad body.
    let login = &paths["/login"]["post"]["requestBody"]["content"]["application/json"];
    let example = schema_example(&doc, &login["schema"]).unwrap();
    let (status, body) = json(d.bare("POST", "/login").send_json(example));
    assert_eq!((status, body["kind"].as_str()), (401, Some("unauthorized")));
}

/// Where an operation goes among the examples: the definition first, then reads, then the changes in
/// an order in which each one is allowed (a stop of a running process, a start of a stopped one, ...).
fn order(method: &str, path: &str) -> usize {
    const CHANGES: &[&str] = &["/stop", "/start", "/kill", "/restart", "/signal"];
    if method == "POST" && path == "/api/v1/processes" {
        return 0;
    }
    match CHANGES.iter().position(|c| path.ends_with(c)) {
        Some(i) => 2 + i,
        None if method == "GET" => 1,
        None => 2 + CHANGES.len(),
    }
}

/// The example of a `$ref`'d schema.
fn schema_example(doc: &Value, schema: &Value) -> Option<Value> {
    let name = schema["$ref"].as_str()?.rsplit('/').next()?;
    doc["components"]["schemas"][name].get("example").cloned()
}
