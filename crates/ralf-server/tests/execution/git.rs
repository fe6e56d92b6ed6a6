//! The repository of a task: the branch of the template, the task's own branch or commit, the
//! commit recorded on the task, private checkouts, and a clone that fails.

use ralf_testkit::{Backend, GitRepo, TestServer, json, on_both_backends};

use crate::common::{Project, has};

const SHOW: &str = "echo \"content: $(cat content.txt) on $(git rev-parse --abbrev-ref HEAD)\"\n";

/// `main`: "initial commit" (content main-1), then "second on main" (main-2); `feature`
/// branches from the second: "feature work" (feature). Returns the repository and the hashes.
fn branched_repo() -> (GitRepo, String, String, String) {
    let repo = GitRepo::new(&[("show.sh", SHOW), ("content.txt", "main-1")]);
    let first = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let second = repo.commit(&[("content.txt", "main-2")], "second on main");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    let feature = repo.commit(&[("content.txt", "feature")], "feature work");
    repo.git(&["checkout", "-q", "main"]);
    (repo, first, second, feature)
}

async fn tasks_check_out_the_templates_branch_the_tasks_branch_or_a_commit(backend: Backend) {
    let (repo, first, second, feature) = branched_repo();
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    // The repository says main; the template says feature and lets a task choose.
    let on_feature = project
        .template(
            "feature",
            "bash",
            "show.sh",
            json!({"git_branch": "feature", "allow_override_branch_in_task": true}),
        )
        .await;
    let on_repository_branch = project
        .template("plain", "bash", "show.sh", json!({}))
        .await;

    let (done, lines) = project.run(json!({"template_id": on_feature})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "content: feature on feature"), "{lines:#?}");
    assert_eq!(done["commit_hash"], feature.as_str());
    assert_eq!(done["commit_message"], "feature work");

    let (done, lines) = project
        .run(json!({"template_id": on_feature, "git_branch": "main"}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "content: main-2 on main"), "{lines:#?}");
    assert_eq!(done["git_branch"], "main");
    assert_eq!(done["commit_hash"], second.as_str());
    assert_eq!(done["commit_message"], "second on main");

    // A commit hash (abbreviated here) wins over the branch's tip.
    let (done, lines) = project
        .run(json!({"template_id": on_repository_branch, "commit_hash": &first[..12]}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "content: main-1"), "{lines:#?}");
    assert_eq!(done["commit_hash"], first.as_str());
    assert_eq!(done["commit_message"], "initial commit");

    let (done, lines) = project
        .run(json!({"template_id": on_repository_branch}))
        .await;
    assert_eq!(done["status"], "success", "{lines:#?}");
    assert!(has(&lines, "content: main-2 on main"), "{lines:#?}");

    // A template that does not allow it refuses a task's branch.
    let r = project
        .post(
            "tasks",
            json!({"template_id": on_repository_branch, "git_branch": "feature"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.error().contains("allow_override_branch_in_task"),
        "{}",
        r.text
    );

    // A branch that is not there fails the task, saying so.
    let (done, lines) = project
        .run(json!({"template_id": on_feature, "git_branch": "no-such-branch"}))
        .await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        has(
            &lines,
            "branch 'no-such-branch' not found in the repository"
        ),
        "{lines:#?}"
    );
    server.stop().await;
}

/// Each task waits until the other one runs too, so they overlap for sure; each writes a file
/// into its checkout and lists what it sees.
/// Says it is ready, then lists its files once the test says both tasks run (a task sees
/// nothing outside its own directory: the test writes `go` in the task's `HOME`).
const SIDE_BY_SIDE: &str = r#"branch=$(git rev-parse --abbrev-ref HEAD)
echo "written by $branch" > "written-by-$branch.txt"
echo "ready $branch"
for _ in $(seq 1 1500); do [ -e "$HOME/go" ] && break; sleep 0.02; done
[ -e "$HOME/go" ] || { echo "the other task never ran alongside"; exit 1; }
echo "dir of $branch: $PWD"
echo "files of $branch: $(ls | sort | tr '\n' ' ')"
"#;

async fn parallel_tasks_on_two_branches_never_see_each_others_files(backend: Backend) {
    let repo = GitRepo::new(&[("side.sh", SIDE_BY_SIDE), ("only-main.txt", "m")]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.git(&["rm", "-q", "only-main.txt"]);
    repo.commit(&[("only-feature.txt", "f")], "feature files");
    repo.git(&["checkout", "-q", "main"]);
    let server = TestServer::start(backend).await;
    let project = Project::new(&server, &repo).await;
    let template = project
        .template(
            "side",
            "bash",
            "side.sh",
            json!({"allow_parallel_tasks": true, "allow_override_branch_in_task": true}),
        )
        .await;
    let on_main = project
        .start(json!({"template_id": template, "git_branch": "main"}))
        .await;
    let on_feature = project
        .start(json!({"template_id": template, "git_branch": "feature"}))
        .await;
    project.wait_for_line(on_main, "ready main").await;
    project.wait_for_line(on_feature, "ready feature").await;
    for task in [on_main, on_feature] {
        let home = server.work_dir().join(format!("tasks/{task}/home"));
        std::fs::write(home.join("go"), "").unwrap();
    }
    let (main_done, main_lines) = project.finish(on_main).await;
    let (feature_done, feature_lines) = project.finish(on_feature).await;
    assert_eq!(main_done["status"], "success", "{main_lines:#?}");
    assert_eq!(feature_done["status"], "success", "{feature_lines:#?}");
    let listing = |lines: &[String], branch: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("files of {branch}: ")))
            .unwrap_or_else(|| panic!("no listing: {lines:#?}"))
            .to_string()
    };
    assert_eq!(
        listing(&main_lines, "main").trim(),
        "only-main.txt side.sh written-by-main.txt"
    );
    assert_eq!(
        listing(&feature_lines, "feature").trim(),
        "only-feature.txt side.sh written-by-feature.txt"
    );
    let dir = |lines: &[String], branch: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("dir of {branch}: ")))
            .unwrap()
            .to_string()
    };
    assert_ne!(dir(&main_lines, "main"), dir(&feature_lines, "feature"));
    server.stop().await;
}

async fn a_clone_that_fails_fails_the_task_with_gits_message(backend: Backend) {
    let missing = tempfile::tempdir().unwrap();
    let url = format!("file://{}/no-such-repo.git", missing.path().display());
    let server = TestServer::start(backend).await;
    let project = Project::with(&server, &url, json!({})).await;
    let template = project.template("t", "bash", "x.sh", json!({})).await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        has(&lines, "does not appear to be a git repository"),
        "git's own message is in the output: {lines:#?}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("fetching the repository failed")),
        "{lines:#?}"
    );
    assert!(done["commit_hash"].is_null(), "{done}");
    server.stop().await;
}

/// A repository reached by a `git://` URL is fetched only when its branches or tags changed
/// since the last fetch; a commit pushed between two tasks is the second one's.
async fn a_git_url_is_fetched_again_only_when_the_remote_changed(backend: Backend) {
    let repo = GitRepo::new(&[("show.sh", SHOW), ("content.txt", "one")]);
    let daemon = repo.serve();
    let server = TestServer::start(backend).await;
    let project = Project::with(&server, &daemon.url, json!({})).await;
    let template = project
        .template(
            "show",
            "bash",
            "show.sh",
            json!({"allow_override_branch_in_task": true}),
        )
        .await;
    let run = async |body: serde_json::Value| {
        let (done, lines) = project.run(body).await;
        assert_eq!(done["status"], "success", "{lines:#?}");
        lines
    };
    let skipped = "has the branches and tags of its last fetch: not fetching it";

    let lines = run(json!({"template_id": template})).await;
    assert!(has(&lines, "content: one on main"), "{lines:#?}");
    let lines = run(json!({"template_id": template})).await;
    assert!(has(&lines, "content: one on main"), "{lines:#?}");
    assert!(has(&lines, skipped), "nothing changed: {lines:#?}");

    // A commit pushed between two tasks.
    let second = repo.commit(&[("content.txt", "two")], "second");
    let lines = run(json!({"template_id": template})).await;
    assert!(has(&lines, "content: two on main"), "{lines:#?}");
    assert!(has(&lines, &format!("main at {second}")), "{lines:#?}");
    assert!(!has(&lines, skipped), "{lines:#?}");

    // A new branch, then a tag, each made after the last fetch, are found.
    repo.git(&["branch", "other"]);
    let lines = run(json!({"template_id": template, "git_branch": "other"})).await;
    assert!(has(&lines, "content: two on other"), "{lines:#?}");
    repo.git(&["tag", "v1", "HEAD~1"]);
    let lines = run(json!({"template_id": template, "git_branch": "v1"})).await;
    assert!(has(&lines, "content: one on HEAD"), "{lines:#?}");
    // A branch deleted from the remote is gone for the next task too.
    repo.git(&["branch", "-D", "other"]);
    let (done, lines) = project
        .run(json!({"template_id": template, "git_branch": "other"}))
        .await;
    assert_eq!(done["status"], "error", "{lines:#?}");
    assert!(
        has(&lines, "branch 'other' not found in the repository"),
        "{lines:#?}"
    );
    server.stop().await;
}

/// Two tasks of different commits of a `git://` repository at the same time: each runs its
/// own.
async fn two_tasks_of_different_commits_at_once_each_run_their_own(backend: Backend) {
    let repo = GitRepo::new(&[("show.sh", SHOW), ("content.txt", "one")]);
    let first = repo.git(&["rev-parse", "HEAD"]).trim().to_string();
    let daemon = repo.serve();
    let server = TestServer::start(backend).await;
    let project = Project::with(&server, &daemon.url, json!({})).await;
    let template = project
        .template(
            "show",
            "bash",
            "show.sh",
            json!({"allow_parallel_tasks": true}),
        )
        .await;
    let (done, lines) = project.run(json!({"template_id": template})).await;
    assert_eq!(done["status"], "success", "{lines:#?}");

    let second = repo.commit(&[("content.txt", "two")], "second");
    let old = project
        .start(json!({"template_id": template, "commit_hash": first}))
        .await;
    let tip = project.start(json!({"template_id": template})).await;
    let (old_done, old_lines) = project.finish(old).await;
    let (tip_done, tip_lines) = project.finish(tip).await;
    assert_eq!(old_done["status"], "success", "{old_lines:#?}");
    assert_eq!(tip_done["status"], "success", "{tip_lines:#?}");
    assert!(has(&old_lines, "content: one"), "{old_lines:#?}");
    assert_eq!(old_done["commit_hash"], first.as_str());
    assert!(has(&tip_lines, "content: two on main"), "{tip_lines:#?}");
    assert_eq!(tip_done["commit_hash"], second.as_str());
    server.stop().await;
}

on_both_backends!(
    tasks_check_out_the_templates_branch_the_tasks_branch_or_a_commit,
    parallel_tasks_on_two_branches_never_see_each_others_files,
    a_clone_that_fails_fails_the_task_with_gits_message,
    a_git_url_is_fetched_again_only_when_the_remote_changed,
    two_tasks_of_different_commits_at_once_each_run_their_own,
);
