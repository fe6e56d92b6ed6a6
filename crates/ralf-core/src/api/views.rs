//! Views on the wire: named tabs that group a project's templates.

use serde::{Deserialize, Serialize};

use crate::validate::{self, Checked, invalid};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct View {
    pub id: i64,
    pub project_id: i64,
    pub title: String,
    pub position: i64,
    pub hidden: bool,
    /// `""` (templates assigned to the view) or `"all"` (every template of the project).
    #[serde(rename = "type")]
    #[cfg_attr(feature = "sqlx", sqlx(rename = "type"))]
    pub kind: String,
    pub sort_column: Option<String>,
    pub sort_reverse: bool,
}

/// `POST /api/project/{id}/views`, `PUT /api/project/{id}/views/{view_id}`. Fields that are
/// absent or `null` take their defaults; an absent `position` puts a new view last and keeps an
/// existing view where it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ViewRequest {
    pub id: Option<i64>,
    pub project_id: Option<i64>,
    pub title: Option<String>,
    pub position: Option<i64>,
    pub hidden: Option<bool>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub sort_column: Option<String>,
    pub sort_reverse: Option<bool>,
}

/// The view kinds Semaphore knows.
pub const VIEW_TYPES: [&str; 2] = ["", "all"];

/// A view's editable fields, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewFields {
    pub title: String,
    pub position: Option<i64>,
    pub hidden: bool,
    pub kind: String,
    pub sort_column: Option<String>,
    pub sort_reverse: bool,
}

impl ViewRequest {
    /// Checks the request: a title is required, `type` is `""` or `"all"`.
    pub fn fields(&self) -> Checked<ViewFields> {
        let title = validate::name("title", self.title.as_deref().unwrap_or_default())?;
        let kind = self.kind.clone().unwrap_or_default();
        if !VIEW_TYPES.contains(&kind.as_str()) {
            return invalid(format!("type must be \"\" or \"all\", not {kind:?}"));
        }
        if let Some(column) = &self.sort_column {
            validate::short_text("sort_column", column)?;
        }
        Ok(ViewFields {
            title,
            position: self.position,
            hidden: self.hidden.unwrap_or(false),
            kind,
            sort_column: self.sort_column.clone().filter(|c| !c.is_empty()),
            sort_reverse: self.sort_reverse.unwrap_or(false),
        })
    }
}

/// One entry of `POST /api/project/{id}/views/positions` in its list form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ViewPosition {
    pub id: i64,
    pub position: i64,
}

/// `POST /api/project/{id}/views/positions`: Semaphore's UI sends a map of view id to position
/// (`{"3": 0, "5": 1}`); a list of `{id, position}` is accepted too.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ViewPositions {
    Map(std::collections::BTreeMap<String, i64>),
    List(Vec<ViewPosition>),
}

impl ViewPositions {
    /// The `(view id, position)` pairs; a map key that is not an id is refused.
    pub fn pairs(&self) -> Checked<Vec<ViewPosition>> {
        match self {
            ViewPositions::List(list) => Ok(list.clone()),
            ViewPositions::Map(map) => map
                .iter()
                .map(|(id, &position)| match id.trim().parse::<i64>() {
                    Ok(id) => Ok(ViewPosition { id, position }),
                    Err(_) => invalid(format!("{id:?} is not a view id")),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_come_as_a_map_or_a_list() {
        let map: ViewPositions = serde_json::from_str(r#"{"3": 0, "5": 1}"#).unwrap();
        assert_eq!(
            map.pairs().unwrap(),
            vec![
                ViewPosition { id: 3, position: 0 },
                ViewPosition { id: 5, position: 1 }
            ]
        );
        let list: ViewPositions = serde_json::from_str(r#"[{"id": 5, "position": 2}]"#).unwrap();
        assert_eq!(
            list.pairs().unwrap(),
            vec![ViewPosition { id: 5, position: 2 }]
        );
        let bad: ViewPositions = serde_json::from_str(r#"{"x": 1}"#).unwrap();
        assert!(bad.pairs().is_err());
    }

    #[test]
    fn views_need_a_title_and_a_known_type() {
        let ok = ViewRequest {
            title: Some(" Web ".into()),
            kind: Some("all".into()),
            ..Default::default()
        };
        assert_eq!(ok.fields().unwrap().title, "Web");
        let untitled = ViewRequest::default();
        assert_eq!(untitled.fields().unwrap_err().0, "title must not be empty");
        let odd = ViewRequest {
            title: Some("x".into()),
            kind: Some("odd".into()),
            ..Default::default()
        };
        assert!(odd.fields().unwrap_err().0.starts_with("type must be"));
    }
}
