//! `GET …/{id}/refs`: which objects of the project use a key, a repository, an inventory or an
//! environment, as Semaphore answers it.

use serde::{Deserialize, Serialize};

/// One object that uses the one asked about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ObjectRef {
    pub id: i64,
    pub name: String,
}

/// The users of an object, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectRefs {
    pub templates: Vec<ObjectRef>,
    pub repositories: Vec<ObjectRef>,
    pub inventories: Vec<ObjectRef>,
}

impl ObjectRefs {
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty() && self.repositories.is_empty() && self.inventories.is_empty()
    }

    /// The users named for a message: `template "deploy", inventory "prod"`.
    pub fn describe(&self) -> String {
        let kinds = [
            ("template", &self.templates),
            ("repository", &self.repositories),
            ("inventory", &self.inventories),
        ];
        kinds
            .iter()
            .flat_map(|(kind, refs)| refs.iter().map(move |r| format!("{kind} {:?}", r.name)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The message of a refused delete: `the key "deploy" is used by repository "site"`.
    pub fn in_use_message(&self, what: &str, name: &str) -> String {
        format!(
            "the {what} {name:?} is used by {}; remove it from there first",
            self.describe()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_user() {
        let refs = ObjectRefs {
            templates: vec![ObjectRef {
                id: 1,
                name: "deploy".into(),
            }],
            repositories: vec![],
            inventories: vec![ObjectRef {
                id: 2,
                name: "prod".into(),
            }],
        };
        assert!(!refs.is_empty());
        assert_eq!(
            refs.in_use_message("key", "ssh"),
            "the key \"ssh\" is used by template \"deploy\", inventory \"prod\"; remove it from there first"
        );
        assert!(ObjectRefs::default().is_empty());
    }
}
