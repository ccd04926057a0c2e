//! The real `ingest` and `evaluator` executables, for tests that run them as processes.
//!
//! `env!("CARGO_BIN_EXE_…")` exists only in the tests of the package that owns a binary, and
//! `cargo test --workspace --test e2e` does not build other packages' binaries, so a binary
//! found lying in `target/` may be stale. Instead, the first test that needs them runs
//! `cargo build --workspace --locked --bin ingest --bin evaluator` once per test process, with
//! the profile and target directory of the running test executable (`target/<profile>/deps/…`),
//! then uses `target/<profile>/{ingest,evaluator}`. Cargo releases its build lock before it
//! runs tests, so this nested build does not wait on the outer one; when nothing changed it
//! takes well under a second. `CS_E2E_BIN_DIR` skips the build and uses binaries from that
//! directory instead (e.g. a release build).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

#[derive(Debug, Clone)]
pub struct Binaries {
    pub ingest: PathBuf,
    pub evaluator: PathBuf,
}

/// Builds (once per process) and returns the binaries; panics with the reason when it can't.
pub fn binaries() -> &'static Binaries {
    static BUILT: OnceLock<Result<Binaries, String>> = OnceLock::new();
    match BUILT.get_or_init(locate) {
        Ok(binaries) => binaries,
        Err(error) => panic!("the ingest and evaluator binaries are not available: {error}"),
    }
}

fn locate() -> Result<Binaries, String> {
    let dir = match std::env::var_os("CS_E2E_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build()?,
    };
    let binaries = Binaries {
        ingest: dir.join(format!("ingest{}", std::env::consts::EXE_SUFFIX)),
        evaluator: dir.join(format!("evaluator{}", std::env::consts::EXE_SUFFIX)),
    };
    for path in [&binaries.ingest, &binaries.evaluator] {
        if !path.is_file() {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok(binaries)
}

/// Runs cargo for the running test's profile; returns the directory the binaries are in.
fn build() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current executable: {e}"))?;
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .ok_or_else(|| {
            format!(
                "{} is not in a cargo target/<profile>/deps directory; set CS_E2E_BIN_DIR",
                exe.display()
            )
        })?;
    let target_dir = profile_dir
        .parent()
        .ok_or("the target directory has no parent")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev".to_string(),
        Some(name) => name.to_string(),
        None => return Err("unnamed profile directory".into()),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    // The whole workspace is selected so features unify as in every other build.
    let output = Command::new(&cargo)
        .args(["build", "--workspace", "--locked", "--bin", "ingest"])
        .args(["--bin", "evaluator", "--profile", &profile])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .output()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`cargo build --bin ingest --bin evaluator` failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(profile_dir.to_path_buf())
}
