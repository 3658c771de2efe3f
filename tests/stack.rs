//! Stacks end to end: `pmclient apply` (plans as text and JSON, diffs, prune, dry runs, refused
//! files, concurrent applies), reloads by SIGHUP and `pmclient reload`, env files, and the example
//! stack of the README.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn apply(d: &Daemon, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["apply", "-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    d.pmclient(&args)
}

fn apply_ok(d: &Daemon, file: &Path, extra: &[&str]) -> String {
    let out = apply(d, file, extra);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn pid(d: &Daemon, name: &str) -> i64 {
    d.status_json(name)["pid"].as_i64().unwrap_or(0)
}

fn pids(d: &Daemon, names: &[&str]) -> Vec<i64> {
    names.iter().map(|n| pid(d, n)).collect()
}

const FIVE: &str = "\
defaults:
  log: true
processes:
  db:
    command: sleep 300
  cache:
    program: sleep
    args: [301]
  api:
    command: sleep 302
    env: {PORT: '8080', MODE: prod}
    after: [db, cache]
  web:
    command: sleep 303
    after: api
  old:
    command: sleep 304
";

const NAMES: [&str; 5] = ["api", "cache", "db", "old", "web"];

#[test]
fn a_stack_is_applied_changed_pruned_and_refused_as_a_diff() {
    let d = Daemon::start();
    let dir = d.dir.path();
    let file = write(dir, "stack.yaml", FIVE);
    assert_eq!(
        apply_ok(&d, &file, &[]),
        "+ cache (new)\n+ db (new)\n+ old (new)\n+ api (new)\n+ web (new)\n\
         Applied: 5 new, 0 changed, 0 unchanged\n"
    );
    let first = pids(&d, &NAMES);
    assert!(first.iter().all(|p| *p > 0), "{first:?}");
    assert_eq!(d.status_json("api")["log_enabled"], true);

    // One command and one variable change: only those two restart.
    let changed = FIVE
        .replace("sleep 303", "sleep 313")
        .replace("PORT: '8080'", "PORT: '9090'");
    write(dir, "stack.yaml", &changed);
    assert_eq!(
        apply_ok(&d, &file, &["--dry-run"]),
        "= cache (unchanged)\n= db (unchanged)\n= old (unchanged)\n~ api (changed: env.PORT)\n\
         ~ web (changed: command)\nDry run, nothing changed: 0 new, 2 changed, 3 unchanged\n"
    );
    assert_eq!(pids(&d, &NAMES), first, "a dry run changes nothing");
    assert_eq!(
        apply_ok(&d, &file, &[]),
        "= cache (unchanged)\n= db (unchanged)\n= old (unchanged)\n~ api (changed: env.PORT)\n\
         ~ web (changed: command)\nApplied: 0 new, 2 changed, 3 unchanged\n"
    );
    let second = pids(&d, &NAMES);
    for (i, name) in NAMES.iter().enumerate() {
        let restarted = matches!(*name, "api" | "web");
        assert_eq!(
            second[i] != first[i],
            restarted,
            "{name}: {first:?} {second:?}"
        );
        assert!(second[i] > 0, "{name}");
    }
    assert_eq!(d.status_json("web")["command"], "sleep 313");

    // The same file again changes nothing and says so.
    assert_eq!(
        apply_ok(&d, &file, &[]),
        "= cache (unchanged)\n= db (unchanged)\n= old (unchanged)\n= api (unchanged)\n\
         = web (unchanged)\nNothing to change\n"
    );
    assert_eq!(pids(&d, &NAMES), second);

    // Left out of the file: kept without --prune, deleted with it.
    let without_old = changed.replace("  old:\n    command: sleep 304\n", "");
    write(dir, "stack.yaml", &without_old);
    assert!(apply_ok(&d, &file, &[]).ends_with("Nothing to change\n"));
    assert_eq!(pid(&d, "old"), second[3]);
    assert_eq!(
        apply_ok(&d, &file, &["--prune"]),
        "- old (not in the file)\n= cache (unchanged)\n= db (unchanged)\n= api (unchanged)\n\
         = web (unchanged)\nApplied: 0 new, 0 changed, 4 unchanged, 1 pruned\n"
    );
    let gone = d.pmclient(&["status", "old"]);
    assert_eq!(gone.status.code(), Some(1));
    wait_for("old's process to be gone", Duration::from_secs(10), || {
        !alive(second[3] as i32)
    });

    // A file with an error changes nothing at all, even where the rest of it would.
    let kept = pids(&d, &["api", "cache", "db", "web"]);
    let unknown_key = without_old.replace("command: sleep 300", "comand: sleep 300");
    let bad = write(
        dir,
        "bad.yaml",
        &format!("{unknown_key}  extra:\n    command: sleep 1\n"),
    );
    let out = apply(&d, &bad, &["--prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("unknown field `comand`"), "{err}");
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("`command`, `program`, `args`"), "{err}");
    let cycle = write(
        dir,
        "cycle.yaml",
        &without_old.replace(
            "    command: sleep 300\n",
            "    command: sleep 300\n    after: web\n",
        ),
    );
    let out = apply(&d, &cycle, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cycle"), "{}", stderr(&out));
    // The daemon checks the whole file too, before its first change.
    let mut raw = d.session();
    raw.send("!!process.apply prune:true stack:'{\"processes\":{\"new1\":{\"command\":\"sleep 5\"},\"bad\":{\"command\":\"x\",\"cron\":\"nope\"}}}'\n\n");
    let body = raw.body();
    assert!(body.starts_with("Error applying the stack"), "{body}");
    assert_eq!(pids(&d, &["api", "cache", "db", "web"]), kept);
    assert_eq!(d.pmclient(&["status", "new1"]).status.code(), Some(1));
}

#[test]
fn the_plan_as_json() {
    let d = Daemon::start();
    let file = write(
        d.dir.path(),
        "s.yaml",
        "processes:\n  a: {command: sleep 300}\n  b: {command: sleep 300}\n",
    );
    apply_ok(&d, &file, &[]);
    write(
        d.dir.path(),
        "s.yaml",
        "processes:\n  b: {command: sleep 301, env: [X=1]}\n  c: {command: sleep 300}\n",
    );
    assert_eq!(
        apply_ok(&d, &file, &["--prune", "--format", "json"]),
        r#"{
  "dry_run": false,
  "entries": [
    {
      "name": "a",
      "change": "pruned"
    },
    {
      "name": "b",
      "change": "changed",
      "fields": [
        "command",
        "env.X"
      ]
    },
    {
      "name": "c",
      "change": "new"
    }
  ]
}
"#
    );
}

#[test]
fn two_clients_applying_at_once_do_not_interleave() {
    let d = Daemon::start();
    let dir = d.dir.path();
    let names = ["p1", "p2", "p3", "p4"];
    let stack = |cmd: &str| {
        let mut text = String::from("processes:\n");
        for n in names {
            text.push_str(&format!("  {n}: {{command: '{cmd}'}}\n"));
        }
        text
    };
    let one = write(dir, "one.yaml", &stack("sleep 401"));
    let two = write(dir, "two.yaml", &stack("sleep 402"));
    let spawn = |file: &Path| {
        d.pmclient_cmd(&["apply", "-f", file.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&one), spawn(&two));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!((a.status.code(), b.status.code()), (Some(0), Some(0)));
    let (a, b) = (stdout(&a), stdout(&b));
    // One went first and created everything; the other found all of it and changed all of it.
    let all_new = |plan: &str| names.iter().all(|n| plan.contains(&format!("+ {n} (new)")));
    let all_changed = |plan: &str| {
        names
            .iter()
            .all(|n| plan.contains(&format!("~ {n} (changed: command)")))
    };
    let (first, second) = if all_new(&a) { (&a, &b) } else { (&b, &a) };
    assert!(all_new(first), "{a}\n{b}");
    assert!(all_changed(second), "{a}\n{b}");
    let last = if second == &a {
        "sleep 401"
    } else {
        "sleep 402"
    };
    for n in names {
        assert_eq!(d.status_json(n)["command"], last);
    }
}

fn template(dir: &Path, name: &str, cmd: &str) {
    let text = format!(
        r#"{{"name": "{name}", "cmd": "{cmd}", "p_options": {{"shell": true, "run_on_startup": true}}}}"#
    );
    write(dir, &format!("{name}.json"), &text);
}

#[test]
fn sighup_reloads_templates_added_changed_and_removed() {
    let mut d = Daemon::unstarted();
    let templates = d.dir.path().join("tpl");
    std::fs::create_dir(&templates).unwrap();
    template(&templates, "keep", "sleep 500");
    template(&templates, "edit", "sleep 501");
    template(&templates, "drop", "sleep 502");
    let conf = write(
        d.dir.path(),
        "pm.conf",
        &format!("template-path: {}\n", templates.display()),
    );
    d.launch(&["--config", conf.to_str().unwrap()], true);
    wait_for("the startup templates", Duration::from_secs(10), || {
        d.pids().len() == 3
    });
    let (keep, drop) = (pid(&d, "keep"), pid(&d, "drop"));

    write(
        &templates,
        "added.json",
        r#"{"name": "added", "cmd": "sleep 503", "p_options": {"shell": true, "run_on_startup": true, "env_file": ["added.env"]}}"#,
    );
    write(&templates, "added.env", "FROM_TEMPLATE_DIR=1\n");
    template(&templates, "edit", "sleep 511");
    std::fs::remove_file(templates.join("drop.json")).unwrap();
    kill(Pid::from_raw(d.pid()), Signal::SIGHUP).unwrap();
    wait_for("the reload", Duration::from_secs(10), || {
        d.pmclient(&["status", "added"]).status.success()
            && pid(&d, "added") > 0
            && d.status_json("edit")["command"] == "sleep 511"
    });
    assert_eq!(
        pid(&d, "keep"),
        keep,
        "an unchanged template is not touched"
    );
    assert_eq!(pid(&d, "drop"), drop, "a removed template is left alone");

    // With prune-templates, a removed template's process goes; a broken template changes nothing.
    write(
        d.dir.path(),
        "pm.conf",
        &format!(
            "template-path: {}\nprune-templates: true\nstate-dir: /elsewhere\n",
            templates.display()
        ),
    );
    write(&templates, "broken.json", "{not json");
    let out = d.pmclient(&["reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("broken.json"), "{}", stdout(&out));
    assert_eq!(pid(&d, "drop"), drop);
    std::fs::remove_file(templates.join("broken.json")).unwrap();
    let out = d.pmclient(&["reload"]);
    assert_eq!(
        stdout(&out),
        "Reloaded\n- drop (not in the file)\n= added (unchanged)\n= edit (unchanged)\n\
         = keep (unchanged)\nApplied: 0 new, 0 changed, 3 unchanged, 1 pruned\n\
         Needs a restart: state-dir\n"
    );
    assert_eq!(d.pmclient(&["status", "drop"]).status.code(), Some(1));
    assert!(d.child.as_mut().unwrap().try_wait().unwrap().is_none());
}

#[test]
fn env_files_follow_the_dotenv_rules_under_env() {
    let d = Daemon::start();
    let dir = d.dir.path();
    write(
        dir,
        "base.env",
        "# a comment\nPLAIN=one\nexport EXPORTED=two\nQUOTED=\"three and more\"\nSINGLE='$NOT'\n\
         EXPANDED=${PLAIN}-x\nOVERRIDDEN=by-base\nOWN=by-file\n",
    );
    write(dir, "local.env", "OVERRIDDEN=by-local # trailing comment\n");
    let file = write(
        dir,
        "stack.yaml",
        "processes:\n  show:\n    log: true\n    env_file: [base.env, local.env]\n    env: {OWN: by-env}\n    \
         command: 'echo \"$PLAIN|$EXPORTED|$QUOTED|$SINGLE|$EXPANDED|$OVERRIDDEN|$OWN\"; sleep 300'\n",
    );
    apply_ok(&d, &file, &[]);
    let mut logs = String::new();
    wait_for("the variables in the logs", Duration::from_secs(10), || {
        logs = stdout(&d.pmclient(&["logs", "show"]));
        logs.contains('|')
    });
    assert!(
        logs.contains("one|two|three and more|$NOT|one-x|by-local|by-env"),
        "{logs}"
    );
    let status = d.status_json("show");
    let base = dir.join("base.env").display().to_string();
    let local = dir.join("local.env").display().to_string();
    assert_eq!(status["env_files"], serde_json::json!([base, local]));
    assert!(d.status_json("show").get("env_files").is_some());

    // A changed file is read again at the next start.
    write(dir, "local.env", "OVERRIDDEN=changed\n");
    assert_eq!(d.pmclient(&["restart", "show"]).status.code(), Some(0));
    wait_for(
        "the changed file in the logs",
        Duration::from_secs(10),
        || stdout(&d.pmclient(&["logs", "show"])).contains("|changed|"),
    );

    // A missing file fails the start, naming the file.
    let missing = write(
        dir,
        "missing.yaml",
        "processes:\n  lost:\n    command: sleep 300\n    env_file: nowhere.env\n",
    );
    let out = apply(&d, &missing, &[]);
    assert_eq!(out.status.code(), Some(1));
    let plan = stdout(&out);
    assert!(
        plan.starts_with("Error applying the stack: 1 failed\n"),
        "{plan}"
    );
    assert!(plan.contains("+ lost (new): "), "{plan}");
    assert!(plan.contains("nowhere.env"), "{plan}");
    let lost = d.status_json("lost");
    assert_eq!(lost["status"], "failed");
    assert!(
        lost["error"].as_str().unwrap().contains("nowhere.env"),
        "{lost}"
    );
    // A process without env files keeps the original JSON.
    assert!(d.status_json("lost").get("env_files").is_none());
}

#[test]
fn the_example_stack_runs_as_is() {
    let d = Daemon::start();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/stack.yaml");
    let plan = apply_ok(&d, &example, &[]);
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains(&plan), "the README shows the plan:\n{plan}");
    wait_for("every process up", Duration::from_secs(10), || {
        ["counter", "greeter", "ticker"]
            .iter()
            .all(|n| d.status_json(n)["status"] == "running")
    });
    assert!(apply_ok(&d, &example, &[]).ends_with("Nothing to change\n"));
}
