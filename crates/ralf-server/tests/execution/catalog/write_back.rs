//! The write-back, for real: a rollout of a catalog in a bare repository ralf may push to ends
//! with one commit by ralf naming the rollout, in which the files of the services it deployed
//! say `status` and `deployed_at`, every other line as the operator wrote it; a push that fails
//! is recorded on the rollout and changes nothing else.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ralf_testkit::{Backend, TestServer, json};
use serde_json::Value;

use super::{Catalog, states};
use crate::common::WAIT;

const DB: &str = "# The database: deployed first.\nname: db\napply: Deploy   # the generic one\n\
                  smoke: Smoke\nstatus: pending    # ralf keeps this line\nenvironment:\n  \
                  GREETING: hello  # status: not this one\nct: 2010\n";
const APP: &str = "name: app\ndepends_on: [db]\napply: Deploy\n";
const BROKEN: &str = "name: broken\napply: Deploy\nenvironment:\n  APPLY: fail\n";

/// Waits until the rollout's write-back is recorded; returns the rollout.
async fn written_back(catalog: &Catalog, id: i64) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rollout = catalog.rollout(id).await;
        if rollout.get("write_back").is_some() {
            return rollout;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the write-back of rollout {id} was never recorded: {rollout:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

async fn a_rollout_commits_what_it_deployed_back_into_the_files(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::pushable(&server, &[("db", DB), ("app", APP), ("broken", BROKEN)]).await;
    let bare = catalog.bare.as_ref().unwrap().path().to_path_buf();
    let before = git(&bare, &["rev-parse", "main"]);
    catalog
        .settings(json!({"repository_id": catalog.project.repository, "write_back": true}))
        .await;

    let done = catalog.run(json!({})).await;
    assert_eq!(done["state"], "failed", "broken fails: {done:#}");
    assert_eq!(states(&done)["db"], "deployed");
    assert_eq!(states(&done)["app"], "deployed");
    let id = done["id"].as_i64().unwrap();
    let rollout = written_back(&catalog, id).await;
    let write_back = &rollout["write_back"];
    assert_eq!(write_back["error"], Value::Null, "{write_back:#}");
    assert_eq!(write_back["services"], json!(["db", "app"]));
    let commit = write_back["commit"].as_str().unwrap().to_owned();

    // One commit on top of what was there, by ralf, naming the rollout.
    assert_eq!(git(&bare, &["rev-parse", "main"]).trim(), commit);
    assert_eq!(git(&bare, &["rev-parse", "main^"]), before);
    let header = git(&bare, &["log", "-1", "--format=%an <%ae>%n%s", "main"]);
    assert_eq!(
        header,
        format!("ralf <ralf@localhost>\nCatalog rollout {id}: db, app deployed\n")
    );
    let changed = git(&bare, &["diff", "--name-only", "main^", "main"]);
    assert_eq!(
        changed,
        "catalog/projects/app.yaml\ncatalog/projects/db.yaml\n"
    );

    // The files changed in their status and deployed_at lines only.
    let deployed_at = |name: &str| {
        rollout["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["deployed_at"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let at = |name: &str| {
        let time: chrono::DateTime<chrono::Utc> = deployed_at(name).parse().unwrap();
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let db = git(&bare, &["show", "main:catalog/projects/db.yaml"]);
    assert_eq!(
        db,
        DB.replace(
            "status: pending    # ralf keeps this line",
            "status: deployed    # ralf keeps this line"
        ) + &format!("deployed_at: {}\n", at("db"))
    );
    let app = git(&bare, &["show", "main:catalog/projects/app.yaml"]);
    assert_eq!(
        app,
        format!("{APP}status: deployed\ndeployed_at: {}\n", at("app"))
    );
    let broken = git(&bare, &["show", "main:catalog/projects/broken.yaml"]);
    assert_eq!(broken, BROKEN, "a failed service's file is left alone");

    // The files still read as the catalog: the next rollout of all takes only what failed.
    let services = catalog.services().await;
    assert_eq!(services["db"]["state"], "deployed");
    assert_eq!(services["broken"]["state"], "failed");
    let plan = catalog.api().get(&catalog.path("plan")).await;
    assert_eq!(plan.status, 200, "{}", plan.text);
    assert_eq!(super::names(&plan.body["plan"]["services"]), ["broken"]);
    server.stop().await;
}

async fn a_failed_push_is_recorded_and_the_rollout_stands(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Not bare: its checked-out branch refuses pushes.
    let catalog = super::Catalog::new(&server, &[("db", DB)]).await;
    let before = git(catalog.repo.dir.path(), &["rev-parse", "main"]);
    catalog
        .settings(json!({"repository_id": catalog.project.repository, "write_back": true}))
        .await;
    let done = catalog.run(json!({})).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    let rollout = written_back(&catalog, done["id"].as_i64().unwrap()).await;
    assert_eq!(rollout["state"], "succeeded");
    let write_back = &rollout["write_back"];
    assert_eq!(write_back["commit"], Value::Null, "{write_back:#}");
    let error = write_back["error"].as_str().unwrap();
    assert!(error.contains("git push failed"), "{error}");
    assert_eq!(git(catalog.repo.dir.path(), &["rev-parse", "main"]), before);
    assert_eq!(catalog.services().await["db"]["state"], "deployed");
    server.stop().await;
}

async fn without_write_back_nothing_is_pushed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let catalog = Catalog::pushable(&server, &[("app", APP), ("db", DB)]).await;
    let bare = catalog.bare.as_ref().unwrap().path().to_path_buf();
    let before = git(&bare, &["rev-parse", "main"]);
    let done = catalog.run(json!({})).await;
    assert_eq!(done["state"], "succeeded", "{done:#}");
    // The rollout ended; a write-back would have started with its end.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        catalog
            .rollout(done["id"].as_i64().unwrap())
            .await
            .get("write_back"),
        None
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), before);
    server.stop().await;
}

ralf_testkit::on_both_backends!(
    a_rollout_commits_what_it_deployed_back_into_the_files,
    a_failed_push_is_recorded_and_the_rollout_stands,
    without_write_back_nothing_is_pushed,
);
