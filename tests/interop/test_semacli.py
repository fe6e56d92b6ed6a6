"""Interop: drive a running ralf server with ``semacli`` from PyPI, a hand-written command-line
client of Semaphore UI (a different family from the generated ``python-semaphore-client``).

The package is used as shipped, through its command line only, with no workaround for ralf;
its version is pinned in ``requirements.txt`` beside this file.  The server is reached through
``RALF_URL``, ``RALF_ADMIN_LOGIN`` and ``RALF_ADMIN_PASSWORD`` (without ``RALF_URL`` the test is
skipped).  semacli needs a bearer token in its ``semacli.ini``: the test logs in with the
password once (``POST /api/auth/login``, ``POST /api/user/tokens``) to write it, then every step
is a ``semacli`` command:

token create / list / delete, project, key, repository, inventory, variable group, a bash and
an ansible template, tasks of both (their output: extra variables reach the script as
``name=value`` arguments), the task history, stopping a running task, deleting the project.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

URL = os.environ.get("RALF_URL")
pytestmark = pytest.mark.skipif(not URL, reason="RALF_URL is not set")

SEMACLI = str(pathlib.Path(sys.executable).parent / "semacli")
FINISHED = {"success", "error", "stopped"}


def first_token() -> str:
    """Logs in with the password and makes the token semacli starts with."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    body = json.dumps(
        {"auth": os.environ["RALF_ADMIN_LOGIN"], "password": os.environ["RALF_ADMIN_PASSWORD"]}
    ).encode()
    login = urllib.request.Request(
        f"{URL}/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    assert opener.open(login).status == 204
    made = opener.open(urllib.request.Request(f"{URL}/api/user/tokens", method="POST"))
    return json.load(made)["id"]


class Semacli:
    def __init__(self, workdir: pathlib.Path, token: str):
        self.workdir = workdir
        (workdir / "semacli.ini").write_text(
            f"[semaphore]\nurl = {URL}\nbearer_token = {token}\n\n[settings]\nallow_http = true\n"
        )

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [SEMACLI, *args], cwd=self.workdir, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"semacli {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, group: str, *args: str):
        """``semacli <group> --json <args>``, parsed."""
        return json.loads(self.run(group, "--json", *args))


def git_repo(path: pathlib.Path) -> str:
    path.mkdir()
    (path / "run.sh").write_text(
        'echo "script args: $*"\ncase " $* " in *" wait=yes "*) sleep 300;; esac\n'
    )
    (path / "site.yml").write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        '    - debug:\n        msg: "ansible says {{ greeting }}"\n'
    )
    git = ["git", "-c", "user.email=interop@example.test", "-c", "user.name=interop"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    subprocess.run([*git, "-C", str(path), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(path), "commit", "-qm", "scripts"], check=True)
    return str(path)


def wait_finished(cli: Semacli, project: int, task: int, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = cli.json("task", "-p", str(project), "show", str(task))
        if shown["status"] in FINISHED:
            return shown
        assert time.monotonic() < deadline, f"task {task} still {shown['status']}"
        time.sleep(0.3)


def test_semacli_runs_the_whole_workflow_against_ralf(tmp_path: pathlib.Path):
    cli = Semacli(tmp_path, first_token())
    assert "pong" in cli.run("ping")
    me = cli.json("user", "whoami")
    assert me["username"] == os.environ["RALF_ADMIN_LOGIN"] or me["email"]

    # Tokens: the id a token is created with is the id it is listed and deleted by.
    made = cli.json("user", "tokens", "create")
    listed = cli.json("user", "tokens")
    assert made["id"] in [t["id"] for t in listed]
    cli.run("user", "tokens", "delete", made["id"], "--yes")
    listed = {t["id"]: t for t in cli.json("user", "tokens")}
    assert made["id"] not in listed or listed[made["id"]]["expired"]

    project = cli.json("project", "create", "--name", "semacli interop")["id"]
    p = ["-p", str(project)]
    key = cli.json("key", *p, "create", "--name", "none", "--type", "none")["id"]
    repo = git_repo(tmp_path / "repo")
    cli.json("repo", *p, "create", "--name", "scripts", "--git-url", repo, "--ssh-key-id", str(key))
    cli.json(
        "inv", *p, "create", "--name", "local", "--type", "static",
        "--inventory", "localhost ansible_connection=local",
    )
    cli.json("env", *p, "create", "--name", "vars", "--vars", '{"greeting": "hello"}')
    common = ["--repository", "scripts", "--inventory", "local", "--environment", "vars"]
    bash = cli.json("template", *p, "create", "--name", "script", "--app", "bash",
                    "--playbook", "run.sh", *common)["id"]
    ansible = cli.json("template", *p, "create", "--name", "play", "--playbook", "site.yml",
                       *common)["id"]

    # A bash task: the variable group's extra variables arrive as name=value arguments.
    task = cli.json("task", *p, "run", str(bash))["id"]
    assert wait_finished(cli, project, task)["status"] == "success"
    assert "script args: greeting=hello" in cli.run("task", *p, "output", str(task))

    # An ansible task.
    task = cli.json("task", *p, "run", str(ansible))["id"]
    done = wait_finished(cli, project, task)
    output = cli.run("task", *p, "output", str(task))
    assert done["status"] == "success", output
    assert "ansible says hello" in output

    # A running task stopped.
    task = cli.json("task", *p, "run", str(bash), "--environment", '{"wait": "yes"}')["id"]
    deadline = time.monotonic() + 120
    while cli.json("task", *p, "show", str(task))["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    cli.run("task", *p, "stop", str(task))
    assert wait_finished(cli, project, task)["status"] == "stopped"

    history = cli.json("task", *p, "list")
    assert len(history) == 3, history

    cli.run("project", "delete", str(project), "--yes")
    assert project not in [x["id"] for x in cli.json("project")]
