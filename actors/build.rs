//! Refuses to build the actors with a sanitizer, and chooses how children are started: sets the cfg
//! `portable_spawn` (the fork path) on every architecture the raw clone is not written for, and
//! wherever the feature `portable-spawn` asks for it; elsewhere the daemon clones.
//!
//! A child runs between its clone and its exec on a small stack of its own in the daemon's memory,
//! where it may call nothing but raw system calls (see `process/clone_exec`). A sanitizer
//! instruments that code with calls into its runtime, which takes locks, allocates and reads
//! thread-local state of the thread that cloned the child: the child could deadlock, or corrupt the
//! daemon.

fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    println!("cargo::rustc-check-cfg=cfg(portable_spawn)");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let forced = std::env::var_os("CARGO_FEATURE_PORTABLE_SPAWN").is_some();
    if forced || !matches!(arch.as_str(), "x86_64" | "aarch64") {
        println!("cargo::rustc-cfg=portable_spawn");
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let joined = flags.replace('\u{1f}', " ");
    if joined.contains("-Zsanitizer") || joined.contains("sanitizer=") {
        eprintln!(
            "pm-actors cannot be built with a sanitizer: a child runs instrumented code in the \
             daemon's memory between its clone and its exec, where the sanitizer's runtime (locks, \
             allocation, thread-local state) may deadlock it or corrupt the daemon."
        );
        std::process::exit(1);
    }
}
