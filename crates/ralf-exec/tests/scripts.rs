//! Bash and Python tasks: output lines, masking, exit codes, missing files and programs.

mod common;

use common::*;
use ralf_exec::{App, Control, Inventory, Job, MAX_LINE, Outcome, run};

#[tokio::test]
async fn bash_prints_lines_with_env_arguments_and_checkout_info() {
    let repo = Repo::new();
    repo.write(
        "scripts/hello.sh",
        "echo \"hello $1 $2 from $(pwd | xargs basename)\"\necho \"GREETING=$GREETING\"\n\
         echo to-stderr >&2\n",
    );
    let sha = repo.commit("first script");
    let (work, config) = config();
    let mut job = repo.job(1, App::Bash, "scripts/hello.sh");
    job.arguments = vec!["big".into(), "world".into()];
    job.env = vec![("GREETING".into(), "hi there".into())];
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert_eq!(outcome, Outcome::Success, "{}", lines.all());
    assert!(lines.has("hello big world from repo"), "{}", lines.all());
    assert!(lines.has("GREETING=hi there"));
    assert!(lines.has("to-stderr"));
    assert!(
        lines.has("$ bash scripts/hello.sh big world"),
        "{}",
        lines.all()
    );
    let checkouts = lines.checkouts();
    assert_eq!(checkouts.len(), 1);
    assert_eq!(checkouts[0].commit_hash, sha);
    assert_eq!(checkouts[0].commit_message, "first script");
    assert!(
        lines
            .texts()
            .iter()
            .any(|l| l.starts_with(&format!("Checked out main at {sha} (first script)"))),
        "{}",
        lines.all()
    );
    let times: Vec<_> = lines.lines().iter().map(|l| l.time).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        task_dirs(work.path()).is_empty(),
        "the task's directory is removed"
    );
}

#[tokio::test]
async fn server_environment_is_not_inherited() {
    // The test process has CARGO_* variables; a task must not see them.
    let repo = repo_with("env.sh", "env | sort\n");
    let (_work, config) = config();
    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Bash, "env.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success);
    let all = lines.all();
    assert!(all.contains("PATH="), "{all}");
    assert!(!all.contains("CARGO_PKG_NAME"), "{all}");
    assert!(!all.contains("RUST_TEST"), "{all}");
}

#[tokio::test]
async fn secrets_are_masked_everywhere() {
    let repo = repo_with(
        "leak.sh",
        "echo \"token is $TOKEN.\"\necho \"arg: $1\"\necho \"twice $TOKEN$TOKEN\" >&2\n\
         echo short: abc\nexit 3\n",
    );
    let (_work, config) = config();
    let mut job = repo.job(1, App::Bash, "leak.sh");
    job.env = vec![("TOKEN".into(), "s3cr3t-t0ken".into())];
    job.arguments = vec!["p@ssw0rd-in-argv".into()];
    job.secrets = vec![
        "s3cr3t-t0ken".into(),
        "p@ssw0rd-in-argv".into(),
        "abc".into(),
    ];
    let lines = Lines::default();
    let outcome = run(&job, &config, &lines, &Control::new()).await;
    assert_eq!(outcome, Outcome::Failed("bash exited with code 3".into()));
    let all = lines.all();
    assert!(!all.contains("s3cr3t"), "{all}");
    assert!(!all.contains("p@ssw0rd"), "{all}");
    assert!(lines.has("token is **********."), "{all}");
    assert!(lines.has("arg: **********"));
    assert!(lines.has("twice ********************"));
    assert!(
        lines.has("$ bash leak.sh **********"),
        "the command line is masked: {all}"
    );
    assert!(
        lines.has("short: abc"),
        "secrets under 4 characters are not masked"
    );
    assert_eq!(lines.texts().last().unwrap(), "bash exited with code 3");
}

#[tokio::test]
async fn invalid_utf8_colours_crlf_and_long_lines() {
    let repo = repo_with(
        "bytes.py",
        "import sys\nout = sys.stdout.buffer\nout.write(b'bad \\xff\\xfe bytes\\n')\n\
         out.write(b'\\x1b[31mred\\x1b[0m\\n')\nout.write(b'windows\\r\\n')\n\
         out.write(b'x' * 200000 + b'\\n')\nout.write(b'no newline at the end')\n",
    );
    let (_work, config) = config();
    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Python, "bytes.py"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Success, "{}", lines.all());
    assert!(lines.has("bad \u{fffd}\u{fffd} bytes"), "{}", lines.all());
    assert!(lines.has("\u{1b}[31mred\u{1b}[0m"), "colours are kept");
    assert!(lines.has("windows"));
    assert!(lines.has("no newline at the end"));
    let long: Vec<String> = lines
        .texts()
        .into_iter()
        .filter(|l| l.starts_with('x') && l.bytes().all(|b| b == b'x'))
        .collect();
    assert!(long.len() >= 4, "the long line is split into pieces");
    assert!(long.iter().all(|l| l.len() <= MAX_LINE));
    assert_eq!(long.iter().map(String::len).sum::<usize>(), 200000);
}

#[tokio::test]
async fn a_secret_is_masked_where_a_long_line_is_cut() {
    // The secret sits across the 64 KiB mark: it must not be cut in two and leak.
    let secret = "cut-me-not-0123456789";
    let script = format!(
        "import sys\nsys.stdout.write('y' * ({MAX_LINE} - 10) + '{secret}' + 'z' * 10 + '\\n')\n"
    );
    let repo = repo_with("cut.py", &script);
    let (_work, config) = config();
    let mut job = repo.job(1, App::Python, "cut.py");
    job.secrets = vec![secret.into()];
    let lines = Lines::default();
    assert_eq!(
        run(&job, &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    let all = lines.all();
    assert!(!all.contains("cut-me"), "secret leaked across a cut");
    assert!(!all.contains("0123456789"), "secret leaked across a cut");
    assert!(all.contains("**********"));
}

#[tokio::test]
async fn missing_script_and_missing_working_directory() {
    let repo = repo_with("there.sh", "echo hi\n");
    let (_work, config) = config();
    let lines = Lines::default();
    let outcome = run(
        &repo.job(1, App::Bash, "nope.sh"),
        &config,
        &lines,
        &Control::new(),
    )
    .await;
    assert_eq!(
        outcome,
        Outcome::Failed("script 'nope.sh' not found in the repository".into())
    );
    assert_eq!(
        lines.texts().last().unwrap(),
        "script 'nope.sh' not found in the repository"
    );

    let mut job = repo.job(2, App::Bash, "there.sh");
    job.working_directory = Some("sub".into());
    let outcome = run(&job, &config, &Lines::default(), &Control::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed("working directory 'sub' not found in the repository".into())
    );
}

#[tokio::test]
async fn working_directory_is_where_the_script_runs() {
    let repo = Repo::new();
    repo.write("deploy/run.sh", "pwd | xargs basename\ncat data.txt\n");
    repo.write("deploy/data.txt", "data here\n");
    repo.commit("deploy");
    let (_work, config) = config();
    let mut job = repo.job(1, App::Bash, "run.sh");
    job.working_directory = Some("deploy".into());
    let lines = Lines::default();
    assert_eq!(
        run(&job, &config, &lines, &Control::new()).await,
        Outcome::Success
    );
    assert!(lines.has("deploy"));
    assert!(lines.has("data here"));
}

#[tokio::test]
async fn missing_programs_are_named() {
    let repo = repo_with("x.py", "print('hi')\n");
    let (_work, mut config) = config();
    // A PATH with git only.
    let bin = tempfile::tempdir().unwrap();
    let git_path = std::process::Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let git_path = String::from_utf8(git_path.stdout).unwrap();
    std::os::unix::fs::symlink(git_path.trim(), bin.path().join("git")).unwrap();
    config.path_env = Some(bin.path().as_os_str().to_owned());

    for (app, playbook, program) in [
        (App::Python, "x.py", "python3"),
        (App::Ansible, "x.py", "ansible-playbook"),
        (App::Terraform, "", "terraform"),
        (App::Tofu, "", "tofu"),
    ] {
        let lines = Lines::default();
        let outcome = run(
            &repo.job(1, app, playbook),
            &config,
            &lines,
            &Control::new(),
        )
        .await;
        let why = format!("{program} is not installed on this server (not found on PATH)");
        assert_eq!(outcome, Outcome::Failed(why.clone()));
        assert!(lines.has(&why), "{}", lines.all());
    }
}

#[tokio::test]
async fn paths_that_lead_out_of_the_checkout_fail_the_task() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("hosts"), "secret-host\n").unwrap();
    let repo = repo_with("run.sh", "echo ran\n");
    std::os::unix::fs::symlink(outside.path().join("hosts"), repo.path().join("hosts")).unwrap();
    std::os::unix::fs::symlink(outside.path(), repo.path().join("out")).unwrap();
    repo.commit("links");
    let (_work, config) = config();
    let failure = |job: Job| {
        let config = config.clone();
        async move {
            let lines = Lines::default();
            let outcome = run(&job, &config, &lines, &Control::new()).await;
            assert!(!lines.has("ran"), "{}", lines.all());
            match outcome {
                Outcome::Failed(why) => why,
                other => panic!("{other:?}"),
            }
        }
    };
    let mut job = repo.job(1, App::Bash, "run.sh");
    job.inventory = Some(Inventory::File("hosts".into()));
    assert_eq!(
        failure(job).await,
        "inventory file 'hosts' leads outside the repository (through a symbolic link): refused"
    );
    let mut job = repo.job(2, App::Bash, "run.sh");
    job.inventory = Some(Inventory::File("/etc/hosts".into()));
    assert_eq!(
        failure(job).await,
        "inventory file must be relative to the repository, not an absolute path"
    );
    assert_eq!(
        failure(repo.job(3, App::Bash, "../../etc/passwd")).await,
        "script must stay inside the repository"
    );
    assert_eq!(
        failure(repo.job(4, App::Bash, "out/hosts")).await,
        "script 'out/hosts' leads outside the repository (through a symbolic link): refused"
    );
    let mut job = repo.job(5, App::Bash, "hosts");
    job.working_directory = Some("out".into());
    assert_eq!(
        failure(job).await,
        "working directory 'out' leads outside the repository (through a symbolic link): refused"
    );
}
