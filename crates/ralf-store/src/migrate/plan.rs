//! The plan: which tables, in which order (referenced tables first), and each column's kind,
//! from the two catalogs; a difference the copy cannot bridge is refused here.

use std::collections::{BTreeMap, BTreeSet};

use super::MigrateError;
use super::catalog::CatalogTable;
use super::conn::Kind;

/// Columns each database keeps for itself rather than data: a version its own triggers move
/// on every write that changes a project's task list, which servers compare with the pages they
/// keep. Neither copied nor compared: the copy's inserts move the target's own, so no server
/// of the target serves a page kept before the copy.
const OWN_COLUMNS: &[(&str, &str)] = &[("projects", "task_list_version")];

#[derive(Debug)]
pub(super) struct Table {
    pub(super) name: String,
    /// Column names and kinds, in the source's order.
    pub(super) columns: Vec<(String, Kind)>,
    /// Positions in `columns` of the primary key.
    pub(super) key: Vec<usize>,
    /// Positions of columns that reference this same table: written after all its rows are in.
    pub(super) self_references: Vec<usize>,
    /// The target's id counter column.
    pub(super) counter: Option<String>,
}

fn merge_kind(
    table: &str,
    column: &str,
    source: &(String, String, Option<Kind>),
    target: &(String, String, Option<Kind>),
) -> Result<Kind, MigrateError> {
    use Kind::*;
    match (source.2, target.2) {
        (Some(a), Some(b)) if a == b => Ok(a),
        (Some(Time), Some(Text)) | (Some(Text), Some(Time)) => Ok(Time),
        (Some(Bool), Some(Int)) | (Some(Int), Some(Bool)) => Ok(Bool),
        _ => Err(MigrateError::Schema(format!(
            "column {table}.{column} is {} in the source and {} in the target, which cannot be copied",
            source.1, target.1
        ))),
    }
}

pub(super) fn plan(
    source: &[CatalogTable],
    target: &[CatalogTable],
) -> Result<Vec<Table>, MigrateError> {
    let names = |tables: &[CatalogTable]| -> BTreeSet<String> {
        tables.iter().map(|t| t.name.clone()).collect()
    };
    let (in_source, in_target) = (names(source), names(target));
    if in_source != in_target {
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| {
            a.difference(b).cloned().collect::<Vec<_>>().join(", ")
        };
        return Err(MigrateError::Schema(format!(
            "tables only in the source: [{}]; only in the target: [{}]",
            only(&in_source, &in_target),
            only(&in_target, &in_source)
        )));
    }
    let mut tables = BTreeMap::new();
    let mut depends: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for src in source {
        let dst = target
            .iter()
            .find(|t| t.name == src.name)
            .expect("same names");
        let name = &src.name;
        let column_names = |t: &CatalogTable| -> BTreeSet<String> {
            t.columns.iter().map(|c| c.0.clone()).collect()
        };
        if column_names(src) != column_names(dst) {
            return Err(MigrateError::Schema(format!(
                "table {name} has other columns in the source than in the target"
            )));
        }
        let mut columns = Vec::new();
        let own = |column: &str| OWN_COLUMNS.contains(&(name.as_str(), column));
        for column in src.columns.iter().filter(|c| !own(&c.0)) {
            let other = dst
                .columns
                .iter()
                .find(|c| c.0 == column.0)
                .expect("same columns");
            columns.push((
                column.0.clone(),
                merge_kind(name, &column.0, column, other)?,
            ));
        }
        let position = |column: &str| columns.iter().position(|c| c.0 == column);
        if dst.key.is_empty() {
            return Err(MigrateError::Schema(format!(
                "table {name} has no primary key to copy its rows in order"
            )));
        }
        let key = dst.key.iter().filter_map(|k| position(k)).collect();
        let self_references = dst
            .references
            .iter()
            .filter(|(_, to)| to == name)
            .filter_map(|(column, _)| position(column))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        depends.insert(
            name.clone(),
            dst.references
                .iter()
                .chain(&src.references)
                .map(|(_, to)| to.clone())
                .filter(|to| to != name)
                .collect(),
        );
        tables.insert(
            name.clone(),
            Table {
                name: name.clone(),
                columns,
                key,
                self_references,
                counter: dst.counter.clone(),
            },
        );
    }
    // Referenced tables first; among the ready ones, by name.
    let mut ordered = Vec::new();
    while !tables.is_empty() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|name| depends[*name].iter().all(|to| !tables.contains_key(to)))
            .cloned()
            .collect();
        if ready.is_empty() {
            let rest: Vec<&str> = tables.keys().map(String::as_str).collect();
            return Err(MigrateError::Schema(format!(
                "the foreign keys of {} form a cycle",
                rest.join(", ")
            )));
        }
        for name in ready {
            ordered.extend(tables.remove(&name));
        }
    }
    Ok(ordered)
}
