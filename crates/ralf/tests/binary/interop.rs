//! Two Semaphore clients from PyPI, as shipped, drive a real `ralf server`: Semaphore's own
//! generated Python client (`python-semaphore-client`, from Semaphore's 2.16.14 spec), the story
//! in `tests/interop/test_semaphore_client.py` (what the client gets wrong by itself, and the one
//! workaround for it, are described at the top of that file), and the hand-written command-line
//! client `semacli`, the whole workflow in `tests/interop/test_semacli.py`. The server finds
//! ansible-playbook in the same environment.
//!
//! Needs the Python environment of `scripts/python-env.sh` (`scripts/test` prepares it).

use std::path::PathBuf;
use std::process::Command;

use ralf_testkit::ServerProcess;

use crate::RALF;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[tokio::test]
async fn semaphore_clients_from_pypi_run_their_stories_against_ralf() {
    let root = repo_root();
    let venv = std::env::var("RALF_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join(".venv"));
    let pytest = venv.join("bin/pytest");
    assert!(
        pytest.exists(),
        "{} is missing: run scripts/python-env.sh (scripts/test does)",
        pytest.display()
    );

    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("RALF_DATA_DIR", dir.path().display().to_string()),
        ("RALF_ADMIN_LOGIN", "interop".to_string()),
        ("RALF_ADMIN_PASSWORD", "interop-password".to_string()),
        (
            "RALF_ACCESS_KEY_ENCRYPTION",
            ralf_testkit::TEST_ENCRYPTION_KEY.to_string(),
        ),
    ];
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [env.as_slice(), &[("PATH", path)]].concat();
    let server = ServerProcess::start(RALF, &env, &[]).await;
    let out = Command::new(&pytest)
        .args(["-q", "-p", "no:cacheprovider", "tests/interop"])
        .current_dir(&root)
        .env("RALF_URL", &server.url)
        .env("RALF_ADMIN_LOGIN", "interop")
        .env("RALF_ADMIN_PASSWORD", "interop-password")
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pytest failed:\n{report}");
    assert!(
        report.contains(" passed") && !report.contains("skipped") && !report.contains("failed"),
        "{report}"
    );
    server.terminate();
}
