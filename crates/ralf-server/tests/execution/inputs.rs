//! A task runs only what the project's repository holds on its branch: a playbook that leads
//! out of the checkout through a symbolic link fails the task, a commit that is not on the
//! branch (another branch's, a pull request's) runs nothing, and the log names the branch and
//! the exact commit. One generic template whose tasks each name their script keeps working.

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::{Project, has};

async fn a_playbook_linked_out_of_the_checkout_fails_the_task(backend: Backend) {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.sh");
    std::fs::write(&secret, "echo the-secret-content\n").unwrap();
    let repo = GitRepo::new(&[("run.sh", "echo fine\n")]);
    std::os::unix::fs::symlink(&secret, repo.dir.path().join("evil.sh")).unwrap();
    std::os::unix::fs::symlink("/", repo.dir.path().join("root")).unwrap();
    repo.commit(&[], "links out");
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project.template("t", "bash", "run.sh", json!({})).await;
    let linked = project
        .template(
            "linked",
            "bash",
            "run.sh",
            json!({"working_directory": "root"}),
        )
        .await;

    let (done, lines) = project
        .run(json!({"template_id": template, "playbook": "evil.sh"}))
        .await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert_eq!(
        lines.last().unwrap(),
        "script 'evil.sh' leads outside the repository (through a symbolic link): refused"
    );
    assert!(!has(&lines, "the-secret-content"), "{lines:#?}");

    let (done, lines) = project.run(json!({"template_id": linked})).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("working directory 'root' leads outside the repository"),
        "{lines:#?}"
    );

    // The link's own target is fine when it stays inside.
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "fine"), "{lines:#?}");
    server.stop().await;
}

const SHOW: &str = "echo \"ran: $(cat content.txt)\"\n";

async fn a_commit_off_the_branch_runs_nothing(backend: Backend) {
    let repo = GitRepo::new(&[("show.sh", SHOW), ("content.txt", "main-1")]);
    let first = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let tip = repo.commit(&[("content.txt", "main-2")], "second on main");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let feature = repo.commit(&[("content.txt", "feature")], "feature work");
    // An unmerged pull request: its commit is only behind `refs/pull/1/head`.
    repo.git(&["checkout", "-q", "--detach", "main"]);
    let pull = repo.commit(&[("content.txt", "pull")], "pull request");
    repo.git(&["update-ref", "refs/pull/1/head", &pull]);
    repo.git(&["checkout", "-q", "main"]);

    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let on_main = project.template("main", "bash", "show.sh", json!({})).await;
    let any_branch = project
        .template(
            "any",
            "bash",
            "show.sh",
            json!({"allow_override_branch_in_task": true}),
        )
        .await;

    for commit in [&feature, &pull, &feature[..10]] {
        let (done, lines) = project
            .run(json!({"template_id": on_main, "commit_hash": commit}))
            .await;
        assert_eq!(done["status"], "error", "{lines:#?}");
        assert_eq!(
            lines.last().unwrap(),
            &format!(
                "commit {commit} is not on branch main (a task runs only commits of the \
                 branch it runs): nothing was run"
            )
        );
        assert!(!has(&lines, "ran:"), "{lines:#?}");
        // Nothing was checked out: no commit message recorded.
        assert_eq!(done["commit_message"], "", "{done}");
    }

    // A commit of the branch runs, and the log says which one and that it is not the tip.
    let (done, lines) = project
        .run(json!({"template_id": on_main, "commit_hash": &first[..12]}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "ran: main-1"), "{lines:#?}");
    assert_eq!(done["commit_hash"], first.as_str());
    assert!(
        has(
            &lines,
            &format!(
                "Checked out commit {first} of branch main (the task's commit_hash; the tip \
                 is {})",
                &tip[..12]
            )
        ),
        "{lines:#?}"
    );

    // Where the template lets a task choose its branch, the commit is checked against that one.
    let (done, lines) = project
        .run(json!({"template_id": any_branch, "git_branch": "feature", "commit_hash": &feature}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "ran: feature"), "{lines:#?}");
    assert!(
        has(&lines, &format!("Checked out feature at {feature}")),
        "{lines:#?}"
    );
    let (done, lines) = project
        .run(json!({"template_id": any_branch, "git_branch": "feature", "commit_hash": &pull}))
        .await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(!has(&lines, "ran:"), "{lines:#?}");
    server.stop().await;
}

async fn one_generic_template_runs_the_script_each_task_names(backend: Backend) {
    let repo = GitRepo::new(&[
        ("scripts/default.sh", "echo default script\n"),
        ("scripts/tools/deploy.sh", "echo deploy script\n"),
        ("top.sh", "echo top-level script\n"),
    ]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let generic = project
        .template(
            "generic",
            "bash",
            "default.sh",
            json!({"working_directory": "scripts"}),
        )
        .await;
    for (playbook, said) in [
        ("", "default script"),
        ("tools/deploy.sh", "deploy script"),
        ("../top.sh", "top-level script"),
    ] {
        let (done, lines) = project
            .run(json!({"template_id": generic, "playbook": playbook}))
            .await;
        assert_eq!(done["status"], "success", "{playbook}: {lines:#?}");
        assert!(has(&lines, said), "{lines:#?}");
    }
    server.stop().await;
}

on_both_backends!(
    a_playbook_linked_out_of_the_checkout_fails_the_task,
    a_commit_off_the_branch_runs_nothing,
    one_generic_template_runs_the_script_each_task_names,
);
