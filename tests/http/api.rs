//! The JSON API: the same objects as the socket's `format:json`, the socket's error sentences.

use std::time::Duration;

use serde_json::json;

use crate::common::{wait_for, Daemon};
use crate::{answer, json, HttpDaemon};

#[test]
fn healthz_needs_nothing_and_the_api_needs_the_secret() {
    let d = HttpDaemon::start();
    let (status, body) = json(d.bare("GET", "/healthz").call());
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = json(d.bare("GET", "/api/v1/processes").call());
    assert_eq!(status, 401);
    assert_eq!(body["kind"], "unauthorized");
    let (status, body) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!((status, body), (200, json!([])));
    // Ready once the state is loaded and the startup templates started.
    wait_for("/readyz", Duration::from_secs(10), || {
        answer(d.authed("GET", "/readyz").call()).0 == 200
    });
    assert!(d
        .daemon
        .stderr()
        .contains("HTTP server listening on http://127.0.0.1:"));
}

#[test]
fn a_process_is_defined_started_stopped_and_deleted_over_http() {
    let d = HttpDaemon::start();
    let (status, body) = json(
        d.authed("POST", "/api/v1/processes")
            .send_json(json!({"name": "nap", "command": "sleep 600", "log": true})),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "Process 'nap' started successfully");
    // The same object as the socket's status format:json.
    let (status, over_http) = json(d.authed("GET", "/api/v1/processes/nap").call());
    assert_eq!(status, 200);
    let over_socket = d.daemon.status_json("nap");
    assert_eq!(over_http["name"], over_socket["name"]);
    assert_eq!(over_http["pid"], over_socket["pid"]);
    let keys =
        |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&over_http), keys(&over_socket));
    let (_, list) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "nap");

    let (status, body) = json(
        d.authed("POST", "/api/v1/processes")
            .send_json(json!({"name": "nap", "command": "sleep 1"})),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["kind"], "already_exists");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("Error starting process: process with name 'nap' already exists"));

    let (status, _) = json(d.authed("POST", "/api/v1/processes/nap/start").call());
    assert_eq!(status, 409);
    let (status, body) = json(
        d.authed("POST", "/api/v1/processes/nap/signal")
            .send_json(json!({"signal": "CONT"})),
    );
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Process 'nap' signalled successfully"))
    );
    let (status, body) = json(
        d.authed("POST", "/api/v1/processes/nap/signal")
            .send_json(json!({"signal": "NOPE"})),
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid_signal"))
    );
    let (status, body) = json(d.authed("POST", "/api/v1/processes/nap/stop").call());
    assert_eq!(
        (status, body["message"].as_str()),
        (200, Some("Process 'nap' stopped successfully"))
    );
    assert_eq!(d.daemon.status_json("nap")["status"], "stopped");
    let (status, _) = json(d.authed("POST", "/api/v1/processes/nap/start").call());
    assert_eq!(status, 200);
    wait_for("nap running again", Duration::from_secs(10), || {
        d.daemon.status_json("nap")["status"] == "running"
    });
    let (status, _) = json(d.authed("POST", "/api/v1/processes/nap/restart").call());
    assert_eq!(status, 200);
    let (status, _) = json(d.authed("POST", "/api/v1/processes/nap/kill").call());
    assert_eq!(status, 200);
    let (status, page) = json(d.authed("GET", "/api/v1/processes/nap/logs?lines=5").call());
    assert_eq!(status, 200);
    assert!(page["next"].is_u64() && page["lines"].is_array(), "{page}");
    let (status, _) = json(d.authed("DELETE", "/api/v1/processes/nap").call());
    assert_eq!(status, 200);
    let (status, body) = json(d.authed("GET", "/api/v1/processes/nap").call());
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error": "Error getting process status: process 'nap' not found", "kind": "not_found"})
    );
}

#[test]
fn bad_requests_are_json_errors_and_the_daemon_keeps_serving() {
    let d = HttpDaemon::start();
    let (status, body) = json(
        d.authed("POST", "/api/v1/processes")
            .send_string("{not json"),
    );
    assert_eq!((status, body["kind"].as_str()), (400, Some("invalid")));
    let (status, body) = json(
        d.authed("POST", "/api/v1/processes")
            .send_json(json!({"name": "x", "command": "true", "colour": "red"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");
    let (status, body) = json(
        d.authed("POST", "/api/v1/processes")
            .send_json(json!({"name": "bad name!", "command": "true"})),
    );
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    let (status, body) = json(
        d.authed("GET", "/api/v1/processes/x/logs?after=minus")
            .call(),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = json(d.authed("GET", "/api/v1/nothing-here").call());
    assert_eq!((status, body["kind"].as_str()), (404, Some("not_found")));
    let (status, _) = answer(d.authed("POST", "/api/v1/processes/ghost/stop").call());
    assert_eq!(status, 404);
    let (status, body) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!((status, body), (200, json!([])));
    assert_eq!(d.daemon.pmclient(&["list"]).status.code(), Some(0));
}

#[test]
fn a_stack_is_applied_over_http() {
    let d = HttpDaemon::start();
    let stack = "processes:\n  one:\n    command: sleep 600\n  two:\n    command: sleep 600\n    after: one\n";
    let (status, plan) = json(
        d.authed("POST", "/api/v1/apply?dry_run=true")
            .send_string(stack),
    );
    assert_eq!(status, 200, "{plan}");
    let (_, list) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!(list, json!([]));
    let (status, plan) = json(d.authed("POST", "/api/v1/apply").send_string(stack));
    assert_eq!(status, 200, "{plan}");
    let (_, list) = json(d.authed("GET", "/api/v1/processes").call());
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, body) = json(
        d.authed("POST", "/api/v1/apply")
            .send_string("processes: [1, 2"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]
        .as_str()
        .unwrap()
        .starts_with("Error applying the stack: "));
}

#[test]
fn readyz_waits_for_the_startup_templates() {
    let d = Daemon::unstarted();
    let dir = std::path::PathBuf::from(format!("{}.d/templates", d.socket.display()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = json!({"name": "early", "cmd": "sleep 600", "p_options": {"shell": true, "run_on_startup": true}});
    std::fs::write(dir.join("early.json"), template.to_string()).unwrap();
    let d = HttpDaemon::launch(d, &[]);
    wait_for("/readyz", Duration::from_secs(10), || {
        answer(d.authed("GET", "/readyz").call()).0 == 200
    });
    // Ready means the template's start has been answered.
    let (status, early) = json(d.authed("GET", "/api/v1/processes/early").call());
    assert_eq!(status, 200);
    assert_eq!(early["status"], "running", "{early}");
}

#[test]
fn pm_conf_turns_it_on_and_a_non_loopback_address_is_a_warning() {
    let d = Daemon::unstarted();
    let conf = d.dir.path().join("pm.conf");
    std::fs::write(&conf, "http: 0.0.0.0:0\n").unwrap();
    let d = HttpDaemon::launch_with_args(d, &["--config", conf.to_str().unwrap()]);
    assert!(d.base.starts_with("http://0.0.0.0:"), "{}", d.base);
    let local = d.base.replace("0.0.0.0", "127.0.0.1");
    let (status, _) = json(ureq::get(&format!("{local}/healthz")).call());
    assert_eq!(status, 200);
    let log = d.daemon.stderr();
    assert!(log.contains("which is not a loopback address"), "{log}");
}

#[test]
fn a_definition_with_after_waits_over_http() {
    let d = HttpDaemon::start();
    let (status, body) = json(d.authed("POST", "/api/v1/processes").send_json(json!({
        "name": "web", "command": "sleep 600", "after": ["db:started"], "restart_with": true
    })));
    assert_eq!(status, 201, "{body}");
    let (_, web) = json(d.authed("GET", "/api/v1/processes/web").call());
    assert_eq!(web["status"], "waiting", "{web}");
    assert_eq!(web["waiting_for"], json!(["db (started)"]));
    let (status, body) = json(d.authed("POST", "/api/v1/processes").send_json(json!({
        "name": "x", "command": "true", "after": "db:soon"
    })));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown condition 'soon'"),
        "{body}"
    );
    let (status, _) = json(
        d.authed("POST", "/api/v1/processes")
            .send_json(json!({"name": "db", "command": "sleep 600"})),
    );
    assert_eq!(status, 201);
    wait_for("web running", Duration::from_secs(10), || {
        json(d.authed("GET", "/api/v1/processes/web").call()).1["status"] == "running"
    });
    d.daemon.pmclient(&["stop", "--all"]);
}
