//! Helpers for the unit tests: services and catalogs from short YAML texts.

use crate::model::{Service, TemplateRef};
use crate::parse::parse_service;
use crate::validate::Catalog;

/// Every template exists, with id 1.
pub fn any_template(_: &TemplateRef) -> Option<i64> {
    Some(1)
}

pub fn service(yaml: &str) -> Service {
    parse_service(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// A valid catalog of these service files.
pub fn catalog(files: &[&str]) -> Catalog {
    Catalog::new(files.iter().map(|f| service(f)).collect(), &any_template)
        .unwrap_or_else(|e| panic!("{e}"))
}
