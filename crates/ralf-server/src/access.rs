//! Permissions as types. A project handler names what it needs: [`ProjectAccess<Read>`],
//! [`ProjectAccess<RunTasks>`], [`ProjectAccess<ManageResources>`], [`ProjectAccess<UpdateProject>`]
//! or [`ProjectAccess<ManageUsers>`]; the extractor checks the caller's role in the project of
//! the path's `{project_id}`, so a handler that runs holds the capability it asked for.
//!
//! As in Semaphore: a non-member (who is not a global admin) finds no such project (404); a
//! member without the permission is refused (403); global admins may do everything.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use ralf_core::api::users::User;
use ralf_core::{Permission, ProjectId, Role};

use crate::auth::{self, CurrentUser};
use crate::error::ApiError;
use crate::state::AppState;

/// What a handler needs; `None` means membership alone.
pub trait Need: Send + Sync + 'static {
    const PERMISSION: Option<Permission>;
}

macro_rules! needs {
    ($($name:ident => $permission:expr),* $(,)?) => {$(
        #[derive(Debug)]
        pub struct $name;
        impl Need for $name {
            const PERMISSION: Option<Permission> = $permission;
        }
    )*};
}

needs! {
    Read => None,
    RunTasks => Some(Permission::RunTasks),
    ManageResources => Some(Permission::ManageResources),
    UpdateProject => Some(Permission::UpdateProject),
    ManageUsers => Some(Permission::ManageUsers),
}

/// Proof that `user` may do `N` in project `project_id`.
#[derive(Debug)]
pub struct ProjectAccess<N> {
    pub project_id: ProjectId,
    pub user: User,
    /// The caller's role; global admins who are not members act as owners.
    pub role: Role,
    /// The project's task list version, read with the role: the list routes answer a page
    /// kept at this version without reading the tasks (`ralf_store`'s task pages).
    pub task_list_version: i64,
    need: PhantomData<N>,
}

impl<N: Need> FromRequestParts<AppState> for ProjectAccess<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let project_id = match project_id_of(parts, state).await {
            Ok(project_id) => project_id,
            Err(e) => {
                // Who is calling is answered first (401 before 400).
                CurrentUser::from_request_parts(parts, state).await?;
                return Err(e);
            }
        };
        let (user, membership) = auth::user_in_project(parts, state, project_id).await?;
        let (role, task_list_version) = match membership {
            Some(m) => match (m.role, user.admin) {
                (Some(role), _) => (role, m.task_list_version),
                (None, true) => (Role::Owner, m.task_list_version),
                (None, false) => return Err(ApiError::not_found("project")),
            },
            None => return Err(ApiError::not_found("project")),
        };
        if let Some(permission) = N::PERMISSION
            && !user.admin
            && !role.can(permission)
        {
            return Err(ApiError::Forbidden(format!(
                "the {role} role may not do that in this project"
            )));
        }
        Ok(ProjectAccess {
            project_id,
            user,
            role,
            task_list_version,
            need: PhantomData,
        })
    }
}

/// The `{project_id}` of the request's path.
async fn project_id_of(parts: &mut Parts, state: &AppState) -> Result<ProjectId, ApiError> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    params
        .get("project_id")
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("route has no {{project_id}}")))?
        .parse()
        .map(ProjectId)
        .map_err(|_| ApiError::bad_request("invalid id in path: project_id must be a number"))
}
