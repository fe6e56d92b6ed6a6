//! Project roles and what each may do, as in Semaphore: owner, manager, task_runner, guest.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Manager,
    TaskRunner,
    Guest,
}

/// One thing a project member may be allowed to do. Reading needs only membership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    RunTasks,
    UpdateProject,
    ManageResources,
    ManageUsers,
}

impl Permission {
    /// Semaphore's bit for this permission (`GET /api/project/{id}/role` reports their sum).
    pub const fn bit(self) -> u32 {
        match self {
            Permission::RunTasks => 1,
            Permission::UpdateProject => 2,
            Permission::ManageResources => 4,
            Permission::ManageUsers => 8,
        }
    }
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Manager, Role::TaskRunner, Role::Guest];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::TaskRunner => "task_runner",
            Role::Guest => "guest",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The permission bits of this role, as Semaphore computes them.
    pub const fn permissions(self) -> u32 {
        match self {
            Role::Owner => 1 | 2 | 4 | 8,
            Role::Manager => 1 | 4,
            Role::TaskRunner => 1,
            Role::Guest => 0,
        }
    }

    pub const fn can(self, permission: Permission) -> bool {
        self.permissions() & permission.bit() != 0
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_semaphore_grants() {
        use Permission::*;
        assert!(Role::Owner.can(ManageUsers) && Role::Owner.can(UpdateProject));
        assert!(Role::Manager.can(ManageResources) && Role::Manager.can(RunTasks));
        assert!(!Role::Manager.can(ManageUsers) && !Role::Manager.can(UpdateProject));
        assert!(Role::TaskRunner.can(RunTasks) && !Role::TaskRunner.can(ManageResources));
        assert_eq!(Role::Guest.permissions(), 0);
        assert_eq!(Role::parse("task_runner"), Some(Role::TaskRunner));
        assert_eq!(Role::parse("admin"), None);
    }
}
