//! Checking services together into a [`Catalog`]: unique names, known dependencies, no cycles,
//! existing templates; every error is collected, not only the first. A `Catalog` exists only
//! when all of it is valid, so planning can rely on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::model::{
    CatalogError, CatalogErrors, Priority, Problem, Service, StepKind, TemplateRef,
};
use crate::parse::read_services;

/// Finds a template by the name or id a service gives, answering its id.
pub trait TemplateResolver {
    fn template_id(&self, template: &TemplateRef) -> Option<i64>;
}

impl<F: Fn(&TemplateRef) -> Option<i64>> TemplateResolver for F {
    fn template_id(&self, template: &TemplateRef) -> Option<i64> {
        self(template)
    }
}

/// A valid catalog: names unique, every dependency known, no cycle, every template there.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    services: BTreeMap<String, Service>,
}

impl Catalog {
    /// Reads the service files at `root/path` (see [`read_services`]) and validates them; the
    /// errors of unreadable files and of validation come back together.
    pub fn load(
        root: &Path,
        path: &Path,
        templates: &dyn TemplateResolver,
    ) -> Result<Catalog, CatalogErrors> {
        let (services, mut errors) = read_services(root, path);
        match Catalog::new(services, templates) {
            Ok(catalog) if errors.is_empty() => Ok(catalog),
            Ok(_) => Err(CatalogErrors::sorted(errors)),
            Err(CatalogErrors(more)) => {
                errors.extend(more);
                Err(CatalogErrors::sorted(errors))
            }
        }
    }

    /// Validates parsed services.
    pub fn new(
        services: Vec<Service>,
        templates: &dyn TemplateResolver,
    ) -> Result<Catalog, CatalogErrors> {
        let mut errors = Vec::new();
        let mut by_name: BTreeMap<String, Service> = BTreeMap::new();
        for service in services {
            if let Some(first) = by_name.get(&service.name) {
                errors.push(CatalogError::new(
                    service.source.clone(),
                    Problem::DuplicateName {
                        name: service.name.clone(),
                        first: first.source.clone(),
                    },
                ));
            } else {
                by_name.insert(service.name.clone(), service);
            }
        }
        for service in by_name.values() {
            for (i, dependency) in service.depends_on.iter().enumerate() {
                if !by_name.contains_key(dependency) {
                    errors.push(CatalogError::new(
                        service.dependency_location(i).clone(),
                        Problem::UnknownDependency {
                            service: service.name.clone(),
                            dependency: dependency.clone(),
                        },
                    ));
                }
            }
            for step in StepKind::ALL {
                if let Some(template) = service.template(step)
                    && templates.template_id(template).is_none()
                {
                    errors.push(CatalogError::new(
                        service.template_location(step).clone(),
                        Problem::UnknownTemplate {
                            service: service.name.clone(),
                            step,
                            template: template.clone(),
                        },
                    ));
                }
            }
        }
        errors.extend(cycles(&by_name));
        if errors.is_empty() {
            Ok(Catalog { services: by_name })
        } else {
            Err(CatalogErrors::sorted(errors))
        }
    }

    pub fn get(&self, name: &str) -> Option<&Service> {
        self.services.get(name)
    }

    /// All services, by name.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.values()
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Every service in an order where each comes after its dependencies; among those free to
    /// go, the higher priority first, then the name.
    pub fn topological_order(&self) -> Vec<&Service> {
        order_by_dependencies(self.services.values().collect())
    }

    /// The services that depend on `name`, directly or not, by name.
    pub fn dependents(&self, name: &str) -> BTreeSet<&str> {
        let mut found = BTreeSet::new();
        let mut queue = vec![name];
        while let Some(current) = queue.pop() {
            for service in self.services.values() {
                if service.depends_on.iter().any(|d| d == current)
                    && found.insert(service.name.as_str())
                {
                    queue.push(&service.name);
                }
            }
        }
        found
    }
}

/// Orders `services` so each comes after those of its dependencies that are among them; ties
/// go to the higher priority, then the name. Dependencies outside the list are ignored. The
/// dependencies must not form a cycle (a [`Catalog`] has none).
pub(crate) fn order_by_dependencies(services: Vec<&Service>) -> Vec<&Service> {
    let by_name: BTreeMap<&str, &Service> =
        services.iter().map(|s| (s.name.as_str(), *s)).collect();
    let mut waiting_on: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut ready: BTreeSet<(Priority, &str)> = BTreeSet::new();
    for service in &services {
        let inside: Vec<&str> = service
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| by_name.contains_key(d))
            .collect();
        for dependency in &inside {
            dependents
                .entry(dependency)
                .or_default()
                .push(&service.name);
        }
        if inside.is_empty() {
            ready.insert((service.priority, &service.name));
        }
        waiting_on.insert(&service.name, inside.len());
    }
    let mut order = Vec::with_capacity(services.len());
    while let Some((_, name)) = ready.pop_first() {
        order.push(by_name[name]);
        for dependent in dependents.get(name).into_iter().flatten() {
            let count = waiting_on.get_mut(dependent).expect("counted above");
            *count -= 1;
            if *count == 0 {
                ready.insert((by_name[dependent].priority, dependent));
            }
        }
    }
    order
}

/// One error per group of services that depend on each other in a circle (a strongly connected
/// component), showing one cycle through it, starting at its first name.
fn cycles(services: &BTreeMap<String, Service>) -> Vec<CatalogError> {
    let mut errors = Vec::new();
    for component in strongly_connected(services) {
        let first = component[0];
        let is_cycle = component.len() > 1 || services[first].depends_on.iter().any(|d| d == first);
        if !is_cycle {
            continue;
        }
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let cycle = cycle_through(services, first, &members);
        let second = &cycle[1];
        let service = &services[first];
        let index = service
            .depends_on
            .iter()
            .position(|d| d == second)
            .unwrap_or(0);
        errors.push(CatalogError::new(
            service.dependency_location(index).clone(),
            Problem::Cycle { cycle },
        ));
    }
    errors
}

/// A path `start → ... → start` inside `members`, found by depth-first search through the
/// dependencies in name order; `members` is a strongly connected component, so one exists.
fn cycle_through(
    services: &BTreeMap<String, Service>,
    start: &str,
    members: &BTreeSet<&str>,
) -> Vec<String> {
    fn search<'a>(
        services: &'a BTreeMap<String, Service>,
        start: &str,
        members: &BTreeSet<&str>,
        path: &mut Vec<&'a str>,
        visited: &mut BTreeSet<&'a str>,
    ) -> bool {
        let current = *path.last().expect("the path starts with `start`");
        let mut next: Vec<&str> = services[current]
            .depends_on
            .iter()
            .map(String::as_str)
            .filter(|d| members.contains(d))
            .collect();
        next.sort_unstable();
        for dependency in next {
            if dependency == start {
                path.push(services[start].name.as_str());
                return true;
            }
            let dependency = services[dependency].name.as_str();
            if visited.insert(dependency) {
                path.push(dependency);
                if search(services, start, members, path, visited) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let start = services[start].name.as_str();
    let mut path = vec![start];
    let mut visited = BTreeSet::from([start]);
    search(services, start, members, &mut path, &mut visited);
    path.into_iter().map(str::to_owned).collect()
}

/// Tarjan's strongly connected components over the known dependencies; each component's names
/// sorted, components in the order of their first name.
fn strongly_connected(services: &BTreeMap<String, Service>) -> Vec<Vec<&str>> {
    struct Tarjan<'a> {
        services: &'a BTreeMap<String, Service>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, name: &'a str) {
            let n = self.index.len();
            self.index.insert(name, n);
            self.low.insert(name, n);
            self.stack.push(name);
            self.on_stack.insert(name);
            let services = self.services;
            for dependency in &services[name].depends_on {
                let Some((dependency, _)) = services.get_key_value(dependency.as_str()) else {
                    continue;
                };
                let dependency = dependency.as_str();
                if !self.index.contains_key(dependency) {
                    self.visit(dependency);
                    let low = self.low[name].min(self.low[dependency]);
                    self.low.insert(name, low);
                } else if self.on_stack.contains(dependency) {
                    let low = self.low[name].min(self.index[dependency]);
                    self.low.insert(name, low);
                }
            }
            if self.low[name] == self.index[name] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.push(member);
                    if member == name {
                        break;
                    }
                }
                component.sort_unstable();
                self.components.push(component);
            }
        }
    }
    let mut tarjan = Tarjan {
        services,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for name in services.keys() {
        if !tarjan.index.contains_key(name.as_str()) {
            tarjan.visit(name);
        }
    }
    let mut components = tarjan.components;
    components.sort_unstable_by(|a, b| a[0].cmp(b[0]));
    components
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_service;
    use crate::testing::{any_template, catalog};

    fn file(name: &str, yaml: &str) -> Service {
        parse_service(yaml, &format!("{name}.yaml")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn errors_of(services: Vec<Service>) -> Vec<String> {
        Catalog::new(services, &any_template)
            .expect_err("should be invalid")
            .0
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_valid_catalog_is_built() {
        let catalog = catalog(&[
            "name: postgresql\npriority: P1\napply: 1\n",
            "name: vaultwarden\npriority: P2\napply: 1\ndepends_on: [postgresql]\n",
        ]);
        assert_eq!(catalog.len(), 2);
        assert_eq!(
            catalog.get("vaultwarden").unwrap().depends_on,
            ["postgresql"]
        );
        assert_eq!(
            catalog
                .dependents("postgresql")
                .into_iter()
                .collect::<Vec<_>>(),
            ["vaultwarden"]
        );
    }

    #[test]
    fn duplicate_names_point_at_both_files() {
        let errors = errors_of(vec![
            file("one", "name: gitea\napply: 1\n"),
            file("two", "\nname: gitea\napply: 1\n"),
        ]);
        assert_eq!(
            errors,
            ["two.yaml:2:7: the service \"gitea\" is also defined at one.yaml:1:7"]
        );
    }

    #[test]
    fn unknown_dependencies_point_at_the_entry() {
        let errors = errors_of(vec![file(
            "n8n",
            "name: n8n\napply: 1\ndepends_on:\n  - postgresql\n  - redis\n",
        )]);
        assert_eq!(
            errors,
            [
                "n8n.yaml:4:5: n8n depends on \"postgresql\", which is not in the catalog",
                "n8n.yaml:5:5: n8n depends on \"redis\", which is not in the catalog",
            ]
        );
    }

    #[test]
    fn cycles_are_printed_with_arrows() {
        let errors = errors_of(vec![
            file("a", "name: a\napply: 1\ndepends_on: [b]\n"),
            file("b", "name: b\napply: 1\ndepends_on: [c]\n"),
            file("c", "name: c\napply: 1\ndepends_on: [a]\n"),
            file("d", "name: d\napply: 1\ndepends_on: [a, d]\n"),
        ]);
        assert_eq!(
            errors,
            [
                "a.yaml:3:14: dependency cycle: a → b → c → a",
                "d.yaml:3:17: dependency cycle: d → d",
            ]
        );
    }

    #[test]
    fn two_cycles_through_one_service_are_one_error() {
        let errors = errors_of(vec![
            file("a", "name: a\napply: 1\ndepends_on: [b, c]\n"),
            file("b", "name: b\napply: 1\ndepends_on: [a]\n"),
            file("c", "name: c\napply: 1\ndepends_on: [a]\n"),
        ]);
        assert_eq!(errors, ["a.yaml:3:14: dependency cycle: a → b → a"]);
    }

    #[test]
    fn missing_templates_are_reported_per_step() {
        let services = vec![file(
            "mail",
            "name: mail\napply: Deploy Service\nsmoke: 99\nrollback: Rollback Mail\n",
        )];
        let known = |t: &TemplateRef| match t {
            TemplateRef::Name(name) if name == "Deploy Service" => Some(7),
            _ => None,
        };
        let errors: Vec<String> = Catalog::new(services, &known)
            .unwrap_err()
            .0
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "mail.yaml:3:8: the smoke template 99 of mail does not exist",
                "mail.yaml:4:11: the rollback template \"Rollback Mail\" of mail does not exist",
            ]
        );
    }

    #[test]
    fn every_error_is_collected_in_file_order() {
        let errors = errors_of(vec![
            file("b", "name: b\napply: 1\ndepends_on: [nothing]\n"),
            file("a", "name: a\napply: 1\ndepends_on: [a]\n"),
            file("c", "name: a\napply: 1\n"),
        ]);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].starts_with("a.yaml:3:14: dependency cycle: a → a"));
        assert!(errors[1].starts_with("b.yaml:3:14: b depends on \"nothing\""));
        assert!(errors[2].starts_with("c.yaml:1:7: the service \"a\" is also defined"));
    }

    #[test]
    fn loading_reports_unreadable_files_and_invalid_ones_together() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "name: a\napply: 1\ndepends_on: [x]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yaml"), "name: b\napply: [\n").unwrap();
        let errors = Catalog::load(dir.path(), Path::new(""), &any_template).unwrap_err();
        assert_eq!(errors.0.len(), 2, "{errors}");
        assert!(
            errors.0[0].to_string().starts_with("a.yaml:3:14: "),
            "{errors}"
        );
        assert!(errors.0[1].to_string().starts_with("b.yaml:"), "{errors}");

        std::fs::write(dir.path().join("a.yaml"), "name: a\napply: 1\n").unwrap();
        std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
        let catalog = Catalog::load(dir.path(), Path::new(""), &any_template).unwrap();
        assert_eq!(catalog.len(), 1);
    }

    #[test]
    fn the_order_puts_dependencies_first_then_priority_then_name() {
        let catalog = catalog(&[
            "name: exo\npriority: P1\napply: 1\ndepends_on: [n8n]\n",
            "name: n8n\npriority: P3\napply: 1\n",
            "name: gitea\npriority: P1\napply: 1\n",
            "name: caddy\npriority: P2\napply: 1\n",
            "name: alpha\npriority: P2\napply: 1\n",
        ]);
        let order: Vec<&str> = catalog
            .topological_order()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(order, ["gitea", "alpha", "caddy", "n8n", "exo"]);
    }
}
