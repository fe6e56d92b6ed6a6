//! The service catalog's calls (ralf's own, under `/api/project/{id}/catalog`; see
//! docs/catalog.md): its services, plans, graph, rollouts and the decisions on them. Answers
//! are read as leniently as [`crate::types`] reads tasks: rollouts are typed as far as the
//! command line needs them, everything else stays JSON as the server sent it.

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{Client, Replay, decode};
use crate::error::Error;
use crate::types::Extra;

/// Which services a plan or rollout takes: the named ones (with the dependencies they need),
/// one priority's, the next N, or (all empty) every service not yet deployed.
#[derive(Debug, Clone, Default)]
pub struct CatalogSelection {
    pub names: Vec<String>,
    /// `P0` to `P4`.
    pub priority: Option<String>,
    pub next: Option<usize>,
}

/// A rollout (`GET …/catalog/rollouts/{id}`): how it stands and each service's steps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rollout {
    pub id: i64,
    /// `running`, `waiting_approval`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub services: Vec<RolloutService>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Rollout {
    /// Whether the rollout is over (nothing more happens to it).
    pub fn finished(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// One service of a rollout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutService {
    pub name: String,
    /// A service state: `pending`, `running`, `waiting_approval`, `deployed`, `degraded`,
    /// `failed`, `held`, `rolled_back`, `disabled`.
    pub state: String,
    pub steps: Vec<RolloutStep>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One step of a service: its apply, smoke or rollback (one attempt).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RolloutStep {
    /// `vaultwarden.smoke.1`: service, step, attempt.
    pub step_id: String,
    pub task_id: Option<i64>,
    pub finished_at: Option<String>,
    /// The step's status object once it finished (`result`, `summary`, …).
    pub status: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Client {
    fn catalog_path(project: i64, rest: &str) -> String {
        format!("/api/project/{project}/catalog/{rest}")
    }

    /// `GET …/catalog/services`: the services as they stand (name, state, depends_on,
    /// deployed_at, last_result, …).
    pub async fn catalog_services(&self, project: i64) -> Result<Vec<Value>, Error> {
        let path = Client::catalog_path(project, "services");
        self.get(&path, &[]).await
    }

    /// `GET …/catalog/plan`: what a rollout of `selection` would do now (`{commit, plan}`).
    pub async fn catalog_plan(
        &self,
        project: i64,
        selection: &CatalogSelection,
    ) -> Result<Value, Error> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if !selection.names.is_empty() {
            query.push(("names", selection.names.join(",")));
        }
        if let Some(priority) = &selection.priority {
            query.push(("priority", priority.clone()));
        }
        if let Some(next) = selection.next {
            query.push(("next", next.to_string()));
        }
        let path = Client::catalog_path(project, "plan");
        self.get(&path, &query).await
    }

    /// `GET …/catalog/graph`: the dependency graph in Graphviz DOT, or with `svg` as the
    /// server draws it (a server that cannot answers DOT all the same).
    pub async fn catalog_graph(&self, project: i64, svg: bool) -> Result<String, Error> {
        let path = Client::catalog_path(project, "graph");
        let query = if svg {
            vec![("format", "svg".to_owned())]
        } else {
            Vec::new()
        };
        let body = self
            .call(Method::GET, &path, &query, None, Replay::Safe, true)
            .await?;
        String::from_utf8(body).map_err(|e| Error::Decode {
            path,
            detail: e.to_string(),
        })
    }

    /// Starts a rollout of `selection`. Sent once: retried only when the connection could not
    /// be made.
    pub async fn start_rollout(
        &self,
        project: i64,
        selection: &CatalogSelection,
    ) -> Result<Rollout, Error> {
        let mut body = serde_json::Map::new();
        if !selection.names.is_empty() {
            body.insert("names".into(), json!(selection.names));
        }
        if let Some(priority) = &selection.priority {
            body.insert("priority".into(), json!(priority));
        }
        if let Some(next) = selection.next {
            body.insert("next".into(), json!(next));
        }
        let path = Client::catalog_path(project, "rollouts");
        let answer = self
            .call(
                Method::POST,
                &path,
                &[],
                Some(Value::Object(body)),
                Replay::OnlyUnsent,
                true,
            )
            .await?;
        decode(&path, &answer)
    }

    /// Starts a health check (the smoke of every deployed service). Sent once, as
    /// [`Client::start_rollout`].
    pub async fn start_check(&self, project: i64) -> Result<Rollout, Error> {
        let path = Client::catalog_path(project, "check");
        let answer = self
            .call(Method::POST, &path, &[], None, Replay::OnlyUnsent, true)
            .await?;
        decode(&path, &answer)
    }

    pub async fn rollout(&self, project: i64, rollout: i64) -> Result<Rollout, Error> {
        let path = Client::catalog_path(project, &format!("rollouts/{rollout}"));
        self.get(&path, &[]).await
    }

    /// Confirms the apply of a service the unfinished rollout waits on; the rollout after.
    pub async fn approve_service(&self, project: i64, name: &str) -> Result<Rollout, Error> {
        self.decide_service(project, name, "approve").await
    }

    /// Rejects the apply of a service the unfinished rollout waits on; the rollout after.
    pub async fn reject_service(&self, project: i64, name: &str) -> Result<Rollout, Error> {
        self.decide_service(project, name, "reject").await
    }

    async fn decide_service(&self, project: i64, name: &str, verb: &str) -> Result<Rollout, Error> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !valid {
            return Err(Error::Invalid(format!(
                "{name:?} is not a service name (letters, digits, `.`, `_`, `-`)"
            )));
        }
        let path = Client::catalog_path(project, &format!("services/{name}/{verb}"));
        let answer = self
            .call(Method::POST, &path, &[], None, Replay::OnlyUnsent, true)
            .await?;
        decode(&path, &answer)
    }
}
