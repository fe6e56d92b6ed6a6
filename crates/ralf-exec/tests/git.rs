//! The repository: cached clone, fetch, private per-task checkouts, credentials.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use ralf_exec::{App, Control, Credential, LoginPassword, Outcome, SshKey, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHOW: &str = "echo \"branch $(git rev-parse --abbrev-ref HEAD)\"\n\
                    echo \"origin $(git remote get-url origin)\"\nls\nsleep 0.5\nls\n";

#[tokio::test]
async fn tasks_at_different_branches_run_concurrently_on_their_own_files() {
    let repo = Repo::new();
    repo.write("show.sh", SHOW).write("only-main.txt", "m");
    repo.commit("main");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.git(&["rm", "--quiet", "only-main.txt"]);
    repo.write("only-feature.txt", "f");
    repo.commit("feature");
    let (work, config) = config();
    let main_job = repo.job(1, App::Bash, "show.sh");
    let mut feature_job = repo.job(2, App::Bash, "show.sh");
    feature_job.repository.branch = "feature".into();
    let (a, b) = (Lines::default(), Lines::default());
    let control = Control::new();
    let (ra, rb) = tokio::join!(
        run(&main_job, &config, &a, &control),
        run(&feature_job, &config, &b, &control)
    );
    assert_eq!(ra, Outcome::Success, "{}", a.all());
    assert_eq!(rb, Outcome::Success, "{}", b.all());
    assert!(
        a.has("only-main.txt") && !a.has("only-feature.txt"),
        "{}",
        a.all()
    );
    assert!(
        b.has("only-feature.txt") && !b.has("only-main.txt"),
        "{}",
        b.all()
    );
    assert!(a.has("branch main") && b.has("branch feature"));
    assert!(a.has(&format!("origin {}", repo.url())), "{}", a.all());
    // One cache for the repository, no task directory left, no pin left in the cache.
    let repos: Vec<_> = std::fs::read_dir(work.path().join("repos"))
        .unwrap()
        .collect();
    assert_eq!(repos.len(), 1);
    assert!(task_dirs(work.path()).is_empty());
    let cache = work.path().join("repos/repo-1.git");
    assert_eq!(git(&cache, &["for-each-ref", "refs/ralf/tasks"]), "");
    assert_eq!(pins(&cache), Vec::<String>::new());
}

/// The pin files left in a cache.
fn pins(cache: &Path) -> Vec<String> {
    let mut pins: Vec<String> = std::fs::read_dir(cache.join("ralf/pins"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    pins.sort();
    pins
}

/// How many of the tasks' outputs say they fetched (or cloned) the repository themselves, and
/// how many used another task's fetch.
fn fetches(outputs: &[&Lines]) -> (usize, usize) {
    let count = |needle: &str| {
        outputs
            .iter()
            .filter(|l| l.texts().iter().any(|t| t.contains(needle)))
            .count()
    };
    (
        count("Fetching repository") + count("Cloning repository"),
        count("fetched for another task after this one asked"),
    )
}

#[tokio::test]
async fn waiting_tasks_share_a_later_fetch_and_see_the_tip_as_of_their_request() {
    let repo = repo_with("v.sh", "echo version 1\n");
    let (work, config) = config();
    let lines = Lines::default();
    let job = |id| repo.job(id, App::Bash, "v.sh");
    assert_eq!(
        run(&job(1), &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    // Slow fetches: upload-pack answers at once (and leaves the file `served`), then the fetch
    // takes another 0.8 s to end.
    let cache = work.path().join("repos/repo-1.git");
    let served = work.path().join("served");
    git(
        &cache,
        &[
            "config",
            "remote.origin.uploadpack",
            &format!(
                "f() {{ git-upload-pack \"$@\"; r=$?; touch '{}'; sleep 0.8; exit $r; }}; f",
                served.display()
            ),
        ],
    );

    // Six tasks at once: one fetches; the others wait. Those that asked before that fetch
    // started use it; of those that asked after, the first to get the lock fetches again (a
    // fetch that started after all of them asked) and the rest use that second fetch.
    let outputs: Vec<Lines> = (0..6).map(|_| Lines::default()).collect();
    let control = Control::new();
    let jobs: Vec<_> = (10..16).map(job).collect();
    let start = |i: usize| run(&jobs[i], &config, &outputs[i], &control);
    let (r0, r1, r2, r3, r4, r5) =
        tokio::join!(start(0), start(1), start(2), start(3), start(4), start(5));
    let results = [r0, r1, r2, r3, r4, r5];
    for (result, lines) in results.iter().zip(&outputs) {
        assert_eq!(*result, Outcome::Success, "{}", lines.all());
        assert!(lines.has("version 1"), "{}", lines.all());
    }
    let (fetched, shared) = fetches(&outputs.iter().collect::<Vec<_>>());
    assert!(
        fetched <= 2 && fetched + shared == 6,
        "{fetched} fetches, {shared} shared"
    );

    // A fetch that started before a task asked does not count for it: task 20's fetch reads
    // the remote before the new commit; tasks 21 and 22 ask after it and see it.
    let (l20, l21, l22) = (Lines::default(), Lines::default(), Lines::default());
    let (job20, job21, job22) = (job(20), job(21), job(22));
    std::fs::remove_file(&served).unwrap();
    let (r20, (r21, r22)) = tokio::join!(run(&job20, &config, &l20, &control), async {
        l20.wait_for("Fetching repository", Duration::from_secs(10))
            .await;
        // The remote has answered task 20's fetch: the new commit comes after it.
        wait_for_path(&served, Duration::from_secs(10)).await;
        repo.write("v.sh", "echo version 2\n");
        repo.commit("second");
        tokio::join!(
            run(&job21, &config, &l21, &control),
            run(&job22, &config, &l22, &control)
        )
    });
    for (result, lines) in [(&r20, &l20), (&r21, &l21), (&r22, &l22)] {
        assert_eq!(*result, Outcome::Success, "{}", lines.all());
    }
    assert!(l20.has("version 1"), "{}", l20.all());
    assert!(l21.has("version 2"), "{}", l21.all());
    assert!(l22.has("version 2"), "{}", l22.all());
    let (fetched, shared) = fetches(&[&l21, &l22]);
    assert!(
        fetched >= 1 && fetched + shared == 2,
        "{fetched} fetches, {shared} shared"
    );
    assert_eq!(pins(&cache), Vec::<String>::new());
}

#[tokio::test]
async fn the_checkout_is_a_private_clean_clone_of_the_commit() {
    let repo = Repo::new();
    repo.write("run.sh", "#!/bin/sh\necho run\n")
        .write("data.txt", "original\n")
        .write("sub/dir/deep.txt", "deep\n");
    std::os::unix::fs::symlink("run.sh", repo.path().join("link")).unwrap();
    repo.commit("first");
    repo.git(&["tag", "-a", "v1", "-m", "release 1"]);
    repo.git(&["branch", "feature"]);
    repo.write("later.txt", "x\n");
    repo.commit("later");
    repo.write(
        "show.sh",
        concat!(
            "git diff-index --quiet HEAD -- && echo index-clean\n",
            "git status --porcelain | wc -l | sed 's/^ */dirty /'\n",
            "echo \"describe $(git describe --tags)\"\n",
            "echo \"feature $(git rev-parse origin/feature)\"\n",
            "echo \"branch $(git rev-parse --abbrev-ref HEAD) tracks $(git rev-parse --abbrev-ref @{u})\"\n",
            "echo \"subject $(git log -1 --format=%s)\"\n",
            "test -x run.sh && echo executable\n",
            "echo \"link $(readlink link)\"\n",
            "cat data.txt sub/dir/deep.txt\n",
            "git fsck --no-dangling 2>&1 | sed 's/^/fsck /'\n",
            "echo changed > data.txt\n",
            // The task may work with its clone as with any: commit, branch, tag, pack.
            "git -c user.name=t -c user.email=t@localhost commit -qam mine && echo committed\n",
            "git tag mine && git branch other && git rev-parse -q --verify other && echo tagged\n",
            "git gc -q && ls .git/objects/pack | grep -q pack && echo packed\n",
            "echo \"after $(git log -1 --format=%s mine) $(git status --porcelain | wc -l)\"\n",
        ),
    );
    let tip = repo.commit("the subject line");
    let feature = repo.git(&["rev-parse", "feature"]);
    let (_work, config) = config();
    for task_id in [1, 2] {
        let lines = Lines::default();
        let outcome = run(
            &repo.job(task_id, App::Bash, "show.sh"),
            &config,
            &lines,
            &Control::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Success, "{}", lines.all());
        for want in [
            "dirty 0".to_string(),
            "index-clean".into(),
            format!("describe v1-2-g{}", &tip[..7]),
            format!("feature {feature}"),
            "branch main tracks origin/main".into(),
            "subject the subject line".into(),
            "executable".into(),
            "link run.sh".into(),
            // The first task's change is not seen by the second.
            "original".into(),
            "deep".into(),
            "committed".into(),
            "tagged".into(),
            "packed".into(),
            "after mine 0".into(),
        ] {
            assert!(lines.has(&want), "missing {want:?} in:\n{}", lines.all());
        }
        assert!(
            !lines.texts().iter().any(|l| l.starts_with("fsck ")),
            "{}",
            lines.all()
        );
        assert_eq!(
            lines.checkouts()[0].commit_message,
            "the subject line",
            "{}",
            lines.all()
        );
        assert_eq!(lines.checkouts()[0].commit_hash, tip);
    }
}

#[tokio::test]
async fn a_compaction_keeps_the_commits_of_running_tasks() {
    // The task sees nothing outside its own directory: it waits for a file in its checkout.
    let repo = repo_with(
        "p.sh",
        concat!(
            "echo started\n",
            "while [ ! -e go ]; do sleep 0.05; done\n",
            "git cat-file -e HEAD && echo objects-ok\n",
        ),
    );
    let first = repo.git(&["rev-parse", "HEAD"]);
    let (work, config) = config();
    let cache = work.path().join("repos/repo-1.git");
    let job1 = repo.job(1, App::Bash, "p.sh");
    let (l1, c1) = (Lines::default(), Control::new());
    let (r1, ()) = tokio::join!(run(&job1, &config, &l1, &c1), async {
        l1.wait_for("started", Duration::from_secs(30)).await;
        // The remote's history is replaced: the first commit is unreachable after a fetch.
        repo.git(&["checkout", "--quiet", "--orphan", "other"]);
        repo.write("p.sh", "echo replaced\n");
        repo.commit("replaced");
        repo.git(&["branch", "--quiet", "-M", "other", "main"]);
        git(&cache, &["config", "gc.pruneExpire", "now"]);
        add_loose_objects(&cache);
        let l2 = Lines::default();
        let outcome = run(
            &repo.job(2, App::Bash, "p.sh"),
            &config,
            &l2,
            &Control::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Success, "{}", l2.all());
        assert!(l2.has("replaced"), "{}", l2.all());
        assert!(
            l2.has("Compacting the repository's cache (git gc)"),
            "{}",
            l2.all()
        );
        // Collected, but not the commit task 1 runs.
        assert_eq!(count_in(&cache.join("objects/17")), 0);
        git(&cache, &["cat-file", "-e", &first]);
        assert_eq!(git(&cache, &["rev-parse", "refs/ralf/tasks/1"]), first);
        std::fs::write(work.path().join("tasks/1/repo/go"), "").unwrap();
    });
    assert_eq!(r1, Outcome::Success, "{}", l1.all());
    assert!(l1.has("objects-ok"), "{}", l1.all());
    assert_eq!(pins(&cache), Vec::<String>::new());

    // Task 1 has ended: the next compaction drops its pin and its commit.
    add_loose_objects(&cache);
    let l3 = Lines::default();
    let outcome = run(
        &repo.job(3, App::Bash, "p.sh"),
        &config,
        &l3,
        &Control::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{}", l3.all());
    assert!(l3.has("Compacting the repository's cache (git gc)"));
    assert_eq!(git(&cache, &["for-each-ref", "refs/ralf/tasks"]), "");
    let gone = std::process::Command::new("git")
        .args(["cat-file", "-e", &first])
        .current_dir(&cache)
        .status()
        .unwrap();
    assert!(!gone.success(), "the unpinned commit was collected");
}

fn count_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.count())
}

/// Writes unreachable loose objects into the cache until `objects/17` holds enough of them for
/// a compaction (as `git gc --auto` would judge).
fn add_loose_objects(cache: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = String::new();
    for i in 0..12_000 {
        let path = dir.path().join(i.to_string());
        std::fs::write(&path, format!("filler {i}\n")).unwrap();
        paths.push_str(&format!("{}\n", path.display()));
    }
    // Paths from a file: git's answers would fill a pipe before all the paths were written.
    let hash = |write: bool, input: &str| {
        let list = dir.path().join("paths");
        std::fs::write(&list, input).unwrap();
        let mut cmd = std::process::Command::new("git");
        cmd.arg("hash-object");
        if write {
            cmd.arg("-w");
        }
        let out = cmd
            .arg("--stdin-paths")
            .current_dir(cache)
            .stdin(std::fs::File::open(&list).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let wanted: String = hash(false, &paths)
        .lines()
        .zip(paths.lines())
        .filter(|(hash, _)| hash.starts_with("17"))
        .map(|(_, path)| format!("{path}\n"))
        .collect();
    hash(true, &wanted);
    assert!(count_in(&cache.join("objects/17")) > 27);
}

#[tokio::test]
async fn each_task_fetches_the_latest_commit_and_commits_can_be_pinned() {
    let repo = repo_with("v.sh", "echo version 1\n");
    let first = repo.git(&["rev-parse", "HEAD"]);
    repo.write("v.sh", "echo version 2\n");
    repo.commit("second");
    let (work, config) = config();
    let lines = Lines::default();
    assert_eq!(
        run(
            &repo.job(1, App::Bash, "v.sh"),
            &config,
            &lines,
            &Control::new()
        )
        .await,
        Outcome::Success
    );
    assert!(lines.has("version 2"));
    assert!(
        lines
            .texts()
            .iter()
            .any(|l| l.starts_with("Cloning repository file://"))
    );

    // A git killed by a forced stop left lock files in the cache: they do not block fetches.
    let cache = work.path().join("repos/repo-1.git");
    std::fs::write(cache.join("refs/heads/main.lock"), "").unwrap();
    std::fs::write(cache.join("packed-refs.lock"), "").unwrap();
    repo.write("v.sh", "echo version 3\n");
    repo.commit("third");
    let lines = Lines::default();
    assert_eq!(
        run(
            &repo.job(2, App::Bash, "v.sh"),
            &config,
            &lines,
            &Control::new()
        )
        .await,
        Outcome::Success
    );
    assert!(lines.has("version 3"), "{}", lines.all());
    assert!(
        lines
            .texts()
            .iter()
            .any(|l| l.starts_with("Fetching repository file://"))
    );

    let mut job = repo.job(3, App::Bash, "v.sh");
    job.repository.commit = Some(first[..10].to_string());
    let lines = Lines::default();
    assert_eq!(
        run(&job, &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    assert!(lines.has("version 1"), "{}", lines.all());
    assert_eq!(lines.checkouts()[0].commit_hash, first);

    job.repository.commit = Some("deadbeef".into());
    let outcome = run(&job, &config, &Lines::default(), &Control::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed(
            "commit deadbeef is not on branch main (a task runs only commits of the branch it \
             runs): nothing was run"
                .into()
        )
    );
    job.repository.commit = Some("--upload-pack=evil".into());
    let outcome = run(&job, &config, &Lines::default(), &Control::new()).await;
    assert!(matches!(outcome, Outcome::Failed(m) if m.contains("is not a commit hash")));
}

#[tokio::test]
async fn tags_missing_branches_and_the_default_branch() {
    let repo = repo_with("t.sh", "echo tagged\n");
    repo.git(&["tag", "v1.0"]);
    repo.write("t.sh", "echo later\n");
    repo.commit("later");
    let (_work, config) = config();

    let mut job = repo.job(1, App::Bash, "t.sh");
    job.repository.branch = "v1.0".into();
    let lines = Lines::default();
    assert_eq!(
        run(&job, &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    assert!(lines.has("tagged"));

    job.repository.branch = String::new();
    let lines = Lines::default();
    assert_eq!(
        run(&job, &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    assert!(lines.has("later"), "{}", lines.all());

    // A commit on the default branch, and one on a branch that is not the default.
    let tagged = repo.git(&["rev-parse", "v1.0"]).trim().to_string();
    job.repository.commit = Some(tagged.clone());
    let lines = Lines::default();
    assert_eq!(
        run(&job, &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    assert!(lines.has("tagged"), "{}", lines.all());
    assert!(
        lines.texts().iter().any(|l| l.starts_with(&format!(
            "Checked out commit {tagged} of the remote's default branch"
        ))),
        "{}",
        lines.all()
    );
    repo.git(&["checkout", "-q", "-b", "side"]);
    repo.write("t.sh", "echo side\n");
    let side = repo.commit("side").trim().to_string();
    repo.git(&["checkout", "-q", "main"]);
    job.repository.commit = Some(side.clone());
    let outcome = run(&job, &config, &Lines::default(), &Control::new()).await;
    assert!(
        matches!(&outcome, Outcome::Failed(m) if m.starts_with(&format!("commit {side} is not on the remote's default branch"))),
        "{outcome:?}"
    );
    job.repository.commit = None;

    job.repository.branch = "nope".into();
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed("branch 'nope' not found in the repository".into())
    );
    assert!(lines.has("branch 'nope' not found in the repository"));
}

#[tokio::test]
async fn a_failing_clone_shows_gits_messages_masked() {
    let (work, config) = config();
    let repo = Repo::new();
    let mut job = repo.job(1, App::Bash, "x.sh");
    job.repository.url = "file:///nonexistent/hunter2-in-the-path".into();
    job.secrets = vec!["hunter2-in-the-path".into()];
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed("fetching the repository failed: git exited with code 128".into())
    );
    let all = lines.all();
    assert!(!all.contains("hunter2"), "{all}");
    assert!(
        lines
            .texts()
            .iter()
            .any(|l| l.starts_with("fatal:") && l.contains("**********")),
        "git's own error is in the output: {all}"
    );
    assert!(task_dirs(work.path()).is_empty());
}

#[tokio::test]
async fn a_repository_inside_the_work_or_data_directory_is_not_fetched() {
    let repo = repo_with("x.sh", "echo hi\n");
    let (work, mut config) = config();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("initial-admin-password"), "pw").unwrap();
    config.sandbox.hide = vec![data.path().to_path_buf()];
    // Task 1 fills the cache of `repo-1`; task 2's repository is that cache.
    assert_eq!(
        run(
            &repo.job(1, App::Bash, "x.sh"),
            &config,
            &Lines::default(),
            &Control::new()
        )
        .await,
        Outcome::Success
    );
    let refused = "git_url points into ralf's own data or work directory (cached clones, other \
                   tasks' checkouts, the database): refused";
    for url in [
        format!("file://{}/repos/repo-1.git", work.path().display()),
        format!("{}/repos/../repos/repo-1.git", work.path().display()),
        data.path().display().to_string(),
    ] {
        let mut job = repo.job(2, App::Bash, "x.sh");
        job.repository.url = url.clone();
        job.repository.cache_key = "other".into();
        let lines = Lines::default();
        let outcome = run(&job, &config, &lines, &Control::new()).await;
        assert_eq!(outcome, Outcome::Failed(refused.into()), "{url}");
        assert!(!lines.has("Cloning"), "{}", lines.all());
    }
}

/// A tiny base64 encoder, for the expected `Authorization` header.
fn base64(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Every process's command line that contains `needle`.
fn argv_containing(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(needle) {
                found.push(cmdline);
            }
        }
    }
    found
}

fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut modes: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let mode = e.metadata().unwrap().permissions().mode() & 0o777;
                    (e.file_name().to_string_lossy().into_owned(), mode)
                })
                .collect()
        })
        .unwrap_or_default();
    modes.sort();
    modes
}

#[tokio::test]
async fn https_logins_go_through_askpass_never_argv() {
    // A local HTTP server that asks for Basic credentials and records what git sends.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (work, config) = config();
    let secrets_dir = work.path().join("tasks/1/.ralf");
    let password = "pa55-w0rd-over-https";
    let server = tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..4 {
            let Ok(Ok((mut conn, _))) =
                tokio::time::timeout(Duration::from_secs(20), listener.accept()).await
            else {
                break;
            };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let req = String::from_utf8_lossy(&req).into_owned();
            let auth = req
                .lines()
                .find_map(|l| l.strip_prefix("Authorization: "))
                .map(str::to_string);
            let reply = if auth.is_some() {
                // While git holds the credential: it is in no process's argv, and the files
                // that hold it are private.
                seen.push((auth, argv_containing(password), modes(&secrets_dir)));
                "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            } else {
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ralf\"\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            };
            conn.write_all(reply.as_bytes()).await.unwrap();
            if !seen.is_empty() {
                break;
            }
        }
        seen
    });
    let repo = Repo::new();
    let mut job = repo.job(1, App::Bash, "x.sh");
    job.repository.url = format!("http://127.0.0.1:{port}/org/repo.git");
    job.repository.auth = Some(Credential::LoginPassword(LoginPassword {
        login: "deployer".into(),
        password: password.into(),
    }));
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert!(matches!(outcome, Outcome::Failed(_)), "{outcome:?}");
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 1, "git sent credentials once: {}", lines.all());
    let (auth, argvs, file_modes) = &seen[0];
    assert_eq!(
        auth.as_deref(),
        Some(
            format!(
                "Basic {}",
                base64(format!("deployer:{password}").as_bytes())
            )
            .as_str()
        )
    );
    assert!(
        argvs.is_empty(),
        "the password is in a command line: {argvs:?}"
    );
    assert_eq!(
        file_modes
            .iter()
            .filter(|(n, _)| n.starts_with("git-"))
            .cloned()
            .collect::<Vec<_>>(),
        vec![
            ("git-askpass".to_string(), 0o700),
            ("git-login".to_string(), 0o600),
            ("git-password".to_string(), 0o600)
        ]
    );
    assert!(!lines.all().contains(password));
    assert!(
        lines.texts().iter().any(|l| l.contains("403")),
        "{}",
        lines.all()
    );
    assert!(
        task_dirs(work.path()).is_empty(),
        "the credential files are removed"
    );
}

/// A fake `ssh` first on PATH: records how git called it, then fails like an unreachable host.
fn fake_ssh(dir: &Path, record: &Path) -> PathBuf {
    let script = format!(
        r#"#!/bin/sh
out={record}
: > "$out"
for a in "$@"; do echo "arg $a" >> "$out"; done
prev=
for a in "$@"; do
  if [ "$prev" = "-i" ]; then
    echo "keymode $(stat -c %a "$a")" >> "$out"
    echo "keyfile $(cat "$a" | tr '\n' '|')" >> "$out"
  fi
  prev=$a
done
echo "prompt $GIT_TERMINAL_PROMPT" >> "$out"
echo "askpass_require $SSH_ASKPASS_REQUIRE" >> "$out"
if [ -n "$SSH_ASKPASS" ]; then echo "askpass_says $("$SSH_ASKPASS" 'Enter passphrase')" >> "$out"; fi
echo "ssh: connect to host example.invalid port 22: Connection refused" >&2
exit 255
"#,
        record = record.display()
    );
    let path = dir.join("ssh");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn ssh_keys_are_private_files_given_to_ssh() {
    let bin = tempfile::tempdir().unwrap();
    let record = bin.path().join("record");
    fake_ssh(bin.path(), &record);
    let (work, mut config) = config();
    config.path_env = Some(path_with(bin.path()));
    let key = "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\r\n\
               -----END OPENSSH PRIVATE KEY-----";
    let repo = Repo::new();

    for (task_id, passphrase) in [(1, None), (2, Some("my-key-passphrase"))] {
        let mut job = repo.job(task_id, App::Bash, "x.sh");
        job.repository.url = "ssh://git@example.invalid/org/repo.git".into();
        job.repository.auth = Some(Credential::Ssh(SshKey {
            private_key: key.into(),
            passphrase: passphrase.map(String::from),
            login: Some("deploy".into()),
        }));
        let lines = Lines::default();
        let outcome = run(&job, &config, &lines, &Control::new()).await;
        assert_eq!(
            outcome,
            Outcome::Failed("fetching the repository failed: git exited with code 128".into())
        );
        assert!(
            lines.has("ssh: connect to host example.invalid port 22: Connection refused"),
            "{}",
            lines.all()
        );
        let rec = std::fs::read_to_string(&record).unwrap();
        let ralf = work.path().join(format!("tasks/{task_id}/.ralf"));
        for want in [
            format!("arg {}", ralf.join("git-ssh-key").display()),
            "keymode 600".into(),
            "keyfile -----BEGIN OPENSSH PRIVATE KEY-----|b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ|-----END OPENSSH PRIVATE KEY-----|".into(),
            "arg IdentitiesOnly=yes".into(),
            "arg StrictHostKeyChecking=accept-new".into(),
            format!("arg UserKnownHostsFile={}", ralf.join("known_hosts").display()),
            "arg User=deploy".into(),
            "arg git@example.invalid".into(),
            "prompt 0".into(),
        ] {
            assert!(rec.lines().any(|l| l == want), "missing {want:?} in:\n{rec}");
        }
        match passphrase {
            None => {
                assert!(rec.lines().any(|l| l == "arg BatchMode=yes"), "{rec}");
                assert!(rec.lines().any(|l| l == "askpass_require "), "{rec}");
            }
            Some(p) => {
                assert!(!rec.contains("BatchMode"), "{rec}");
                assert!(rec.lines().any(|l| l == "askpass_require force"), "{rec}");
                assert!(
                    rec.lines().any(|l| l == format!("askpass_says {p}")),
                    "{rec}"
                );
                // Only the askpass answer has it; no argument does.
                assert!(!rec.lines().any(|l| l.starts_with("arg ") && l.contains(p)));
            }
        }
        assert!(
            !lines
                .all()
                .contains("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ")
        );
        assert!(task_dirs(work.path()).is_empty(), "the key file is removed");
    }
}

#[tokio::test]
async fn stops_reach_a_hanging_fetch_and_a_task_waiting_for_it() {
    // A server that accepts and never answers: the first task's fetch hangs holding the
    // repository's fetch lock, the second task waits for that lock.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let (work, config) = config();
    let repo = Repo::new();
    let mut job1 = repo.job(1, App::Bash, "x.sh");
    job1.repository.url = format!("http://127.0.0.1:{port}/hang.git");
    let mut job2 = job1.clone();
    job2.task_id = 2;
    let (l1, l2) = (Lines::default(), Lines::default());
    let (c1, c2) = (Control::new(), Control::new());
    let (o1, o2, ()) = tokio::join!(
        run(&job1, &config, &l1, &c1),
        async {
            // Start second, once the first one is fetching.
            l1.wait_for("Cloning repository", Duration::from_secs(10))
                .await;
            run(&job2, &config, &l2, &c2).await
        },
        async {
            l1.wait_for("Cloning repository", Duration::from_secs(10))
                .await;
            // The second task has made its directory: nothing it does after that waits but
            // for the first task's fetch lock, so it waits for that lock now.
            wait_for_path(&work.path().join("tasks/2"), Duration::from_secs(10)).await;
            c2.stop(false);
            l2.wait_for(
                "Stop requested while waiting for another task's fetch",
                Duration::from_secs(10),
            )
            .await;
            c1.stop(false);
        }
    );
    assert_eq!(o2, Outcome::Stopped, "{}", l2.all());
    assert_eq!(o1, Outcome::Stopped, "{}", l1.all());
    assert!(
        l1.has("Stop requested: sending SIGTERM to the process group of git"),
        "{}",
        l1.all()
    );
    assert!(task_dirs(work.path()).is_empty());
    server.abort();
}
