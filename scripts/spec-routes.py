#!/usr/bin/env python3
"""Walks every operation of a Semaphore API spec against a running ralf and lists the ones ralf
does not route: answered 404 "no such API route" or 405.

    scripts/spec-routes.py SPEC.yml http://127.0.0.1:3000 LOGIN PASSWORD

Path parameters are filled with 1 and bodies are `{}`: an operation that exists answers
something else (400, 404 for a missing object, 2xx). Needs PyYAML.
"""

import json
import re
import sys
import urllib.error
import urllib.request

import yaml


def call(base, method, path, token=None, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method.upper())
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def main():
    spec_file, base, login, password = sys.argv[1:5]
    spec = yaml.safe_load(open(spec_file))
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    urllib.request.install_opener(opener)
    status, text = call(base, "post", "/api/auth/login", body={"auth": login, "password": password})
    assert status == 204, (status, text)
    status, text = call(base, "post", "/api/user/tokens", body={})
    token = json.loads(text)["id"]
    missing = []
    for path, item in spec["paths"].items():
        for method in ("get", "post", "put", "delete"):
            if method not in item or path == "/ws":
                continue
            filled = re.sub(r"\{[^}]+\}", "1", path)
            body = None if method in ("get", "delete") else {}
            status, text = call(base, method, spec.get("basePath", "/api") + filled, token, body)
            if status == 405 or (status == 404 and "no such API route" in text):
                missing.append(f"{status} {method.upper()} {path}")
    print("\n".join(missing) if missing else "every operation is routed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
