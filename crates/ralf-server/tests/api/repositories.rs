//! Repositories: clone URLs with the key to clone them.

use ralf_testkit::reqwest::StatusCode;
use ralf_testkit::{Backend, TestServer, json, on_both_backends};

use crate::keys::{assert_bad, assert_status, column, id, names, new_project, new_template};

async fn repositories_round_trip(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let repos = format!("/api/project/{p}/repositories");
    let deploy = id(&admin
        .create(
            &format!("/api/project/{p}/keys"),
            json!({"name": "deploy", "type": "ssh", "ssh": {"private_key": "PRIVATE"}}),
        )
        .await);
    let alpha = id(&admin
        .create(
            &format!("/api/project/{p}/keys"),
            json!({"name": "alpha", "type": "none"}),
        )
        .await);

    let site = admin
        .create(
            &repos,
            json!({"name": "site", "project_id": p, "git_url": " git@github.com:acme/site.git ",
                   "git_branch": "main", "ssh_key_id": deploy}),
        )
        .await;
    let site_id = id(&site);
    assert_eq!(
        site,
        json!({"id": site_id, "name": "site", "project_id": p,
               "git_url": "git@github.com:acme/site.git", "git_branch": "main", "ssh_key_id": deploy})
    );
    // No key: null, never 0; and 0 from a client means none.
    let public = admin
        .create(
            &repos,
            json!({"name": "Public", "git_url": "https://github.com/acme/public.git"}),
        )
        .await;
    assert_eq!(public["ssh_key_id"], json!(null));
    assert_eq!(public["git_branch"], "");
    let local = admin
        .create(
            &repos,
            json!({"name": "local", "git_url": "ssh://git@host:2222/srv/local.git", "ssh_key_id": 0}),
        )
        .await;
    assert_eq!(local["ssh_key_id"], json!(null));
    let mirror = admin
        .create(
            &repos,
            json!({"name": "mirror", "git_url": "file:///srv/mirror", "ssh_key_id": alpha}),
        )
        .await;

    assert_eq!(
        names(&admin.get(&repos).await),
        ["local", "mirror", "Public", "site"]
    );
    assert_eq!(
        names(&admin.get(&format!("{repos}?sort=name&order=desc")).await),
        ["site", "Public", "mirror", "local"]
    );
    assert_eq!(
        names(&admin.get(&format!("{repos}?sort=git_url")).await),
        ["mirror", "site", "Public", "local"]
    );
    // By the key's name; repositories without one first.
    assert_eq!(
        names(&admin.get(&format!("{repos}?sort=ssh_key&order=asc")).await),
        ["Public", "local", "mirror", "site"]
    );
    assert_eq!(
        column(
            &admin.get(&format!("{repos}?sort=ssh_key&order=desc")).await,
            "ssh_key_id"
        ),
        [json!(deploy), json!(alpha), json!(null), json!(null)]
    );
    assert_bad(
        &admin.get(&format!("{repos}?sort=owner")).await,
        "cannot sort by",
    );

    let r = admin.get(&format!("{repos}/{site_id}")).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(r.body, site);

    let r = admin
        .put(
            &format!("{repos}/{site_id}"),
            json!({"id": site_id, "name": "site", "git_url": "https://github.com/acme/site.git",
                   "git_branch": "release", "ssh_key_id": null}),
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    assert_eq!(
        admin.get(&format!("{repos}/{site_id}")).await.body,
        json!({"id": site_id, "name": "site", "project_id": p,
               "git_url": "https://github.com/acme/site.git", "git_branch": "release", "ssh_key_id": null})
    );
    let r = admin
        .put(
            &format!("{repos}/{site_id}"),
            json!({"id": id(&mirror), "name": "site", "git_url": "/srv/x"}),
        )
        .await;
    assert_bad(&r, "ID in body and URL must be the same");

    assert_eq!(
        admin.get(&format!("{repos}/{site_id}/refs")).await.body,
        json!({"templates": [], "repositories": [], "inventories": []})
    );
    assert_status(
        &admin.delete(&format!("{repos}/{site_id}")).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.get(&format!("{repos}/{site_id}")).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(
        names(&admin.get(&repos).await),
        ["local", "mirror", "Public"]
    );

    let events = column(
        &admin.get(&format!("/api/project/{p}/events")).await,
        "description",
    );
    for expected in [
        "Repository site created",
        "Repository site updated",
        "Repository site deleted",
    ] {
        assert!(events.contains(&json!(expected)), "{expected}: {events:?}");
    }
    server.stop().await;
}

async fn bad_repositories_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "mine").await;
    let other = new_project(&admin, "theirs").await;
    let repos = format!("/api/project/{p}/repositories");
    let their_key = id(&admin
        .create(
            &format!("/api/project/{other}/keys"),
            json!({"name": "theirs", "type": "none"}),
        )
        .await);

    assert_bad(
        &admin.post(&repos, json!({"name": "r"})).await,
        "git_url must not be empty",
    );
    // Semaphore stores any URL; one git cannot clone fails when a task clones it.
    for lenient in [
        "github.com/acme/site",
        "git@host",
        "git@host:x",
        "relative/path",
        "https://host/a b",
    ] {
        let created = admin
            .create(&repos, json!({"name": "r", "git_url": lenient}))
            .await;
        assert_eq!(created["git_url"], lenient);
        admin.delete(&format!("{repos}/{}", id(&created))).await;
    }
    assert_bad(
        &admin
            .post(
                &repos,
                json!({"name": "r", "git_url": "--upload-pack=touch x"}),
            )
            .await,
        "must not start with '-'",
    );
    assert_bad(
        &admin
            .post(
                &repos,
                json!({"name": "r", "git_url": "https://h/r", "ssh_key_id": their_key}),
            )
            .await,
        "ssh_key_id: no such key in this project",
    );
    assert_bad(
        &admin
            .post(
                &repos,
                json!({"name": "r", "git_url": "https://h/r", "ssh_key_id": 987654}),
            )
            .await,
        "ssh_key_id: no such key in this project",
    );
    assert_bad(
        &admin
            .post(
                &repos,
                json!({"name": "r".repeat(256), "git_url": "https://h/r"}),
            )
            .await,
        "name is longer than 255",
    );
    assert_bad(
        &admin
            .post(
                &repos,
                json!({"name": "r", "git_url": "https://h/r", "project_id": other}),
            )
            .await,
        "Project ID in body and URL must be the same",
    );
    assert_bad(
        &admin
            .post(
                &repos,
                json!({"name": "r", "git_url": "https://h/r", "ssh_key_id": "one"}),
            )
            .await,
        "ssh_key_id",
    );
    assert_eq!(admin.get(&repos).await.body, json!([]));
    for (i, good) in [
        "/srv/git/site",
        "file:///srv/git/site",
        "git@github.com:acme/site.git",
        "ssh://git@host:2222/site.git",
        "git://host/site",
        "http://host/site",
    ]
    .iter()
    .enumerate()
    {
        let created = admin
            .create(&repos, json!({"name": format!("ok {i}"), "git_url": good}))
            .await;
        assert_eq!(created["git_url"], *good);
        admin.delete(&format!("{repos}/{}", id(&created))).await;
    }

    // An update is checked the same way and changes nothing when refused.
    let r = id(&admin
        .create(&repos, json!({"name": "r", "git_url": "https://h/r"}))
        .await);
    assert_bad(
        &admin
            .put(
                &format!("{repos}/{r}"),
                json!({"id": r, "name": "r", "git_url": "https://h/r", "ssh_key_id": their_key}),
            )
            .await,
        "ssh_key_id: no such key in this project",
    );
    assert_bad(
        &admin
            .put(
                &format!("{repos}/{r}"),
                json!({"id": r, "name": "r", "git_url": "-nope"}),
            )
            .await,
        "must not start with '-'",
    );
    assert_eq!(
        admin.get(&format!("{repos}/{r}")).await.body["git_url"],
        "https://h/r"
    );

    // Another project's repository is not found through this one.
    let theirs = id(&admin
        .create(
            &format!("/api/project/{other}/repositories"),
            json!({"name": "theirs", "git_url": "https://h/t"}),
        )
        .await);
    let path = format!("{repos}/{theirs}");
    assert_status(&admin.get(&path).await, StatusCode::NOT_FOUND);
    assert_status(
        &admin.get(&format!("{path}/refs")).await,
        StatusCode::NOT_FOUND,
    );
    assert_status(
        &admin
            .put(
                &path,
                json!({"id": theirs, "name": "x", "git_url": "https://h/x"}),
            )
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_status(&admin.delete(&path).await, StatusCode::NOT_FOUND);

    // Guests read but do not write.
    let (guest_id, guest) = server.user("guest", false).await;
    admin
        .post(
            &format!("/api/project/{p}/users"),
            json!({"user_id": guest_id, "role": "guest"}),
        )
        .await;
    assert_eq!(names(&guest.get(&repos).await), ["r"]);
    assert_status(
        &guest
            .post(&repos, json!({"name": "g", "git_url": "https://h/g"}))
            .await,
        StatusCode::FORBIDDEN,
    );
    assert_status(
        &guest.delete(&format!("{repos}/{r}")).await,
        StatusCode::FORBIDDEN,
    );
    server.stop().await;
}

async fn repositories_in_use_cannot_be_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let admin = server.admin().await;
    let p = new_project(&admin, "infra").await;
    let repos = format!("/api/project/{p}/repositories");
    let repo = id(&admin
        .create(
            &repos,
            json!({"name": "playbooks", "git_url": "https://h/p.git"}),
        )
        .await);
    let inventory = id(&admin
        .create(
            &format!("/api/project/{p}/inventory"),
            json!({"name": "from git", "type": "file", "inventory": "hosts.ini",
                   "repository_id": repo}),
        )
        .await);
    let r = admin.delete(&format!("{repos}/{repo}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert_eq!(
        r.error(),
        "the repository \"playbooks\" is used by inventory \"from git\"; remove it from there first"
    );

    let static_inv = id(&admin
        .create(
            &format!("/api/project/{p}/inventory"),
            json!({"name": "static", "type": "static", "inventory": "localhost"}),
        )
        .await);
    let template = new_template(&admin, p, "deploy", repo, static_inv, json!({})).await;
    assert_eq!(
        admin.get(&format!("{repos}/{repo}/refs")).await.body,
        json!({"templates": [{"id": template, "name": "deploy"}], "repositories": [],
               "inventories": [{"id": inventory, "name": "from git"}]})
    );
    let r = admin.delete(&format!("{repos}/{repo}")).await;
    assert_status(&r, StatusCode::CONFLICT);
    assert!(r.error().contains("template \"deploy\""), "{}", r.error());
    assert_status(&admin.get(&format!("{repos}/{repo}")).await, StatusCode::OK);

    assert_status(
        &admin
            .delete(&format!("/api/project/{p}/templates/{template}"))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin
            .delete(&format!("/api/project/{p}/inventory/{inventory}"))
            .await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &admin.delete(&format!("{repos}/{repo}")).await,
        StatusCode::NO_CONTENT,
    );
    server.stop().await;
}

on_both_backends!(
    repositories_round_trip,
    bad_repositories_are_refused,
    repositories_in_use_cannot_be_deleted,
);
