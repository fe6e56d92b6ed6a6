//! A webhook delivery that deploys: a GitHub-style push, signed, to an integration whose
//! extract values put the branch and the event into the task's variables and the pushed
//! commit into its `commit_hash`; the bash task from git runs that commit and prints them.

use ralf_core::signature::hmac_sha256_hex;
use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::{Project, has};

async fn a_signed_push_deploys_the_pushed_commit_with_its_values(backend: Backend) {
    let repo = GitRepo::new(&[("deploy.sh", "echo \"deploying version one: $*\"\n")]);
    let first = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    repo.commit(
        &[("deploy.sh", "echo \"deploying version two: $*\"\n")],
        "second",
    );
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template("deploy", "bash", "deploy.sh", json!({}))
        .await;
    let secret = "push secret";
    let key = project
        .create(
            "keys",
            json!({"name": "github", "type": "login_password",
                   "login_password": {"password": secret}}),
        )
        .await;
    let integration = project
        .create(
            "integrations",
            json!({"name": "push to main", "template_id": template, "auth_method": "github",
                   "auth_secret_id": key, "task_params": {"message": "pushed"}}),
        )
        .await;
    let base = format!("/api/project/{}/integrations/{integration}", project.id);
    for matcher in [
        json!({"match_type": "header", "method": "equals", "key": "X-GitHub-Event", "value": "push"}),
        json!({"match_type": "body", "method": "equals", "key": "ref", "value": "refs/heads/main"}),
    ] {
        let r = project.api.post(&format!("{base}/matchers"), matcher).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    for value in [
        json!({"value_source": "body", "key": "ref", "variable": "REF"}),
        json!({"value_source": "body", "key": "pusher.name", "variable": "PUSHER"}),
        json!({"value_source": "header", "key": "X-GitHub-Event", "variable": "EVENT"}),
        json!({"value_source": "body", "key": "after", "variable": "commit_hash",
               "variable_type": "task"}),
    ] {
        project.api.create(&format!("{base}/values"), value).await;
    }
    let alias = project
        .api
        .post(&format!("{base}/aliases"), json!({}))
        .await
        .body["alias"]
        .as_str()
        .unwrap()
        .to_string();

    let body = json!({"ref": "refs/heads/main", "after": first,
                      "pusher": {"name": "octocat"}})
    .to_string();
    let deliver = |signature: String| {
        project
            .api
            .http
            .post(format!("{}/api/integrations/{alias}", project.api.base))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", "d-1")
            .header("X-Hub-Signature-256", signature)
            .body(body.clone())
            .send()
    };
    let r = deliver("sha256=0000".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = deliver(format!(
        "sha256={}",
        hmac_sha256_hex(secret.as_bytes(), body.as_bytes())
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let task: i64 = r.headers()["x-semaphore-task-id"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();

    let (done, lines) = project.finish(task).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert_eq!(done["integration_id"], integration);
    assert_eq!(done["commit_hash"], json!(first));
    assert_eq!(done["message"], "pushed");
    assert!(has(&lines, "deploying version one:"), "{lines:#?}");
    for printed in ["REF=refs/heads/main", "PUSHER=octocat", "EVENT=push"] {
        assert!(has(&lines, printed), "{printed} in {lines:#?}");
    }
    assert!(
        has(&lines, "added to queue by integration push to main"),
        "{lines:#?}"
    );
    server.stop().await;
}

on_both_backends!(a_signed_push_deploys_the_pushed_commit_with_its_values);
