//! Inventories on the wire: the hosts a template runs against, or a Terraform/OpenTofu workspace.

use serde::{Deserialize, Serialize};

use super::UnknownKind;
use crate::validate::{self, Checked, invalid};

/// The inventory types ralf knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum InventoryKind {
    /// INI text.
    #[serde(rename = "static")]
    Static,
    /// YAML text.
    #[serde(rename = "static-yaml")]
    StaticYaml,
    /// A file of the template's repository.
    #[serde(rename = "file")]
    File,
    #[serde(rename = "terraform-workspace")]
    TerraformWorkspace,
    #[serde(rename = "tofu-workspace")]
    TofuWorkspace,
}

impl InventoryKind {
    pub const ALL: [InventoryKind; 5] = [
        InventoryKind::Static,
        InventoryKind::StaticYaml,
        InventoryKind::File,
        InventoryKind::TerraformWorkspace,
        InventoryKind::TofuWorkspace,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            InventoryKind::Static => "static",
            InventoryKind::StaticYaml => "static-yaml",
            InventoryKind::File => "file",
            InventoryKind::TerraformWorkspace => "terraform-workspace",
            InventoryKind::TofuWorkspace => "tofu-workspace",
        }
    }

    pub fn parse(s: &str) -> Option<InventoryKind> {
        InventoryKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for InventoryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for InventoryKind {
    type Error = UnknownKind;

    fn try_from(value: String) -> Result<Self, UnknownKind> {
        InventoryKind::parse(&value).ok_or(UnknownKind {
            what: "inventory type",
            value,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Inventory {
    pub id: i64,
    pub name: String,
    pub project_id: i64,
    /// The INI or YAML text (`static`, `static-yaml`), the path (`file`) or the workspace name.
    pub inventory: String,
    pub ssh_key_id: Option<i64>,
    pub become_key_id: Option<i64>,
    /// For `file`: the repository the path is in.
    pub repository_id: Option<i64>,
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type", try_from = "String"))]
    pub kind: InventoryKind,
}

/// `POST /api/project/{id}/inventory`, `PUT /api/project/{id}/inventory/{inventory_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InventoryRequest {
    pub id: Option<i64>,
    #[serde(default)]
    pub name: String,
    pub project_id: Option<i64>,
    #[serde(default)]
    pub inventory: String,
    pub ssh_key_id: Option<i64>,
    pub become_key_id: Option<i64>,
    pub repository_id: Option<i64>,
    #[serde(default, rename = "type")]
    pub kind: String,
}

impl InventoryRequest {
    /// The request with ids of `0` (what Go clients send for "none") read as absent.
    pub fn normalized(mut self) -> Self {
        for id in [
            &mut self.ssh_key_id,
            &mut self.become_key_id,
            &mut self.repository_id,
        ] {
            *id = id.filter(|&id| id != 0);
        }
        self
    }
}

/// Checks the type, and the `inventory` text against it: `static-yaml` must parse as YAML (a
/// mapping of groups), a `file` path is one inside the repository; a workspace name may be
/// empty.
pub fn check_inventory(kind: &str, inventory: &str) -> Checked<InventoryKind> {
    validate::long_text("inventory", inventory)?;
    let Some(kind) = InventoryKind::parse(kind) else {
        let names: Vec<&str> = InventoryKind::ALL.iter().map(|k| k.as_str()).collect();
        return invalid(format!(
            "type must be one of {}, not {kind:?}",
            names.join(", ")
        ));
    };
    match kind {
        InventoryKind::Static => Ok(()),
        InventoryKind::StaticYaml => check_yaml(inventory),
        // Semaphore stores a file inventory without a path (its own backups have them); a
        // task using it says it needs one. A path is one in the task's checkout, never a file
        // of the server.
        InventoryKind::File => {
            validate::short_text("inventory", inventory)?;
            if inventory.trim().is_empty() {
                Ok(())
            } else {
                validate::inside_repository("inventory", inventory)
            }
        }
        // Without a name (Semaphore stores that too) a task uses the `default` workspace, the
        // one Terraform itself starts in.
        InventoryKind::TerraformWorkspace | InventoryKind::TofuWorkspace => {
            validate::short_text("inventory", inventory)
        }
    }?;
    Ok(kind)
}

fn check_yaml(text: &str) -> Checked<()> {
    if text.trim().is_empty() {
        return Ok(());
    }
    type Groups = std::collections::BTreeMap<String, serde::de::IgnoredAny>;
    match serde_saphyr::from_str::<Option<Groups>>(text) {
        Ok(_) => Ok(()),
        Err(e) => {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default().trim();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            invalid(format!(
                "inventory is not a valid YAML inventory (a mapping of groups): {first}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_inventories_must_parse() {
        let good = "all:\n  hosts:\n    web1:\n      ansible_host: 10.0.0.1\n    web2:\n";
        assert!(check_inventory("static-yaml", good).is_ok());
        assert!(check_inventory("static-yaml", "").is_ok());
        let e = check_inventory("static-yaml", "all:\n  hosts: [a\n")
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("inventory is not a valid YAML inventory"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        assert!(check_inventory("static-yaml", "- a\n- b\n").is_err());
        // INI text is fine for a static inventory.
        assert!(check_inventory("static", "[web]\nweb1\n").is_ok());
    }

    #[test]
    fn files_stay_inside_the_repository_and_names_may_be_empty() {
        // A file inventory without a path is stored (as Semaphore does); its tasks fail.
        assert!(check_inventory("file", " ").is_ok());
        assert!(check_inventory("file", "inventories/prod.ini").is_ok());
        assert!(
            check_inventory("file", "/etc/ansible/hosts")
                .unwrap_err()
                .0
                .contains("not an absolute path")
        );
        assert!(check_inventory("file", "../../hosts").is_err());
        assert!(check_inventory("terraform-workspace", "").is_ok());
        assert!(check_inventory("tofu-workspace", "default").is_ok());
        assert!(
            check_inventory("dynamic", "")
                .unwrap_err()
                .0
                .starts_with("type must be one of static, static-yaml")
        );
    }
}
