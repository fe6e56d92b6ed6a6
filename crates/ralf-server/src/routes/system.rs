//! Health and facts about the server: ping, info, apps.

use axum::Json;
use axum::extract::State;
use ralf_core::api::{App, Info};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ping))
        .routes(routes!(info))
        .routes(routes!(apps))
}

/// `pong`, as text; needs no login.
#[utoipa::path(get, path = "/api/ping", tag = "system",
    responses((status = 200, description = "the server is up", body = String, content_type = "text/plain")))]
async fn ping() -> &'static str {
    "pong"
}

/// Version and settings a client may need.
#[utoipa::path(get, path = "/api/info", tag = "system", responses((status = 200, body = Info)))]
async fn info(_user: CurrentUser, State(state): State<AppState>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        ansible: String::new(),
        web_host: state.settings.web_host.clone(),
        use_remote_runner: state.settings.use_remote_runner,
        git_client: "cmd_git".into(),
        schedule_timezone: "UTC".into(),
        auth_methods: serde_json::json!({ "totp": { "enabled": false } }),
        features: serde_json::json!({ "project_runners": false, "terraform_backend": false }),
    })
}

/// The apps templates can run.
#[utoipa::path(get, path = "/api/apps", tag = "system", responses((status = 200, body = [App])))]
async fn apps(_user: CurrentUser) -> Json<Vec<App>> {
    let app = |id: &str, title: &str, priority: i64, path: &str| App {
        id: id.into(),
        title: title.into(),
        active: true,
        priority,
        icon: id.into(),
        color: String::new(),
        dark_color: String::new(),
        path: path.into(),
        args: Vec::new(),
    };
    Json(vec![
        app("ansible", "Ansible", 500, "ansible-playbook"),
        app("terraform", "Terraform", 400, "terraform"),
        app("tofu", "OpenTofu", 300, "tofu"),
        app("bash", "Bash", 200, "bash"),
        app("python", "Python", 100, "python3"),
    ])
}
