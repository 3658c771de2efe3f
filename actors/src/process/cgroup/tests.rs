use super::discover::subtree_name;
use super::*;

#[test]
fn subtree_names_differ_by_socket_and_stay_the_same() {
    let a = subtree_name(Path::new("/run/pm/a.sock"));
    assert_eq!(a, subtree_name(Path::new("/run/pm/a.sock")));
    assert_ne!(a, subtree_name(Path::new("/run/pm/b.sock")));
    assert!(a.starts_with("processmanager-"));
}

#[test]
fn process_names_cannot_leave_the_subtree() {
    let t = Tree {
        root: "/cg/pm".into(),
        controllers: vec![],
        mount: "/cg".into(),
        hybrid: false,
    };
    assert_eq!(t.path_for("web", false), Path::new("/cg/pm/guarded/web"));
    assert_eq!(t.path_for("..", true), Path::new("/cg/pm/detached/_.."));
    assert_eq!(t.path_for("a/b", false), Path::new("/cg/pm/guarded/a_b"));
    assert_eq!(
        t.path_for("cgroup.kill", false),
        Path::new("/cg/pm/guarded/_cgroup.kill")
    );
}
