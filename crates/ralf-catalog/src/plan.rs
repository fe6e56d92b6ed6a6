//! Choosing and ordering what a rollout deploys: a [`Selection`] over a catalog and its
//! services' current states gives a [`Plan`], the services to run in order (dependencies first,
//! then priority, then name) and, for every other service, why not.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Priority, Service, ServiceState};
use crate::validate::{Catalog, order_by_dependencies};

/// Which services a rollout takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "select", rename_all = "snake_case")]
pub enum Selection {
    /// Every enabled service not yet deployed.
    #[default]
    All,
    /// These services (deployed ones again), with their dependencies not yet deployed.
    Named { names: Vec<String> },
    /// The enabled services of one priority not yet deployed.
    Priority { priority: Priority },
    /// The first `count` services that [`Selection::All`] would run.
    Next { count: usize },
    /// A health check: the smoke of every deployed (or degraded) service that has one, and no
    /// apply.
    Check,
}

/// What a rollout would run, in order, and why not the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Plan {
    pub selection: Selection,
    /// In the order they may start: each after its dependencies.
    pub services: Vec<PlannedService>,
    /// Every other service of the catalog, by name.
    pub skipped: Vec<SkippedService>,
}

impl Plan {
    /// True when nothing in it is applied: every service only runs its smoke.
    pub fn is_check(&self) -> bool {
        self.services.iter().all(PlannedService::smoke_only)
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&PlannedService> {
        self.services.iter().find(|p| p.service.name == name)
    }
}

/// A service the rollout deploys: the catalog's entry as it was when planned (a rollout keeps
/// going by it even if the files change meanwhile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlannedService {
    pub service: Service,
    /// Its dependencies that this plan deploys too: it starts only after they are up.
    pub waits_for: Vec<String>,
    pub selected: Selected,
}

impl PlannedService {
    /// Runs its smoke and nothing else: a check, or a deployed service whose dependency this
    /// rollout applies. A failing smoke leaves it `degraded`; it is never applied or rolled back.
    pub fn smoke_only(&self) -> bool {
        smoke_only(&self.selected)
    }
}

fn smoke_only(selected: &Selected) -> bool {
    matches!(
        selected,
        Selected::Check | Selected::DependencyApplied { .. }
    )
}

/// Keeps `services` in their order, except that each moves after every service it waits for
/// (a smoke waits also for what it stands on through services outside the plan).
fn after_what_they_wait_for(mut services: Vec<PlannedService>) -> Vec<PlannedService> {
    let mut ordered: Vec<PlannedService> = Vec::with_capacity(services.len());
    while !services.is_empty() {
        let free = services
            .iter()
            .position(|s| {
                s.waits_for
                    .iter()
                    .all(|w| ordered.iter().any(|o| &o.service.name == w))
            })
            .expect("waits_for follows the dependencies, which have no cycle");
        ordered.push(services.remove(free));
    }
    ordered
}

/// Why a service is in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "because", rename_all = "snake_case")]
pub enum Selected {
    /// It is not deployed (its state says how it stands: pending, failed, held, rolled back).
    NotDeployed { state: ServiceState },
    /// It was asked for by name.
    Named,
    /// A selected service needs it and it is not deployed.
    NeededBy { service: String },
    /// A health check runs its smoke.
    Check,
    /// It is deployed and depends, directly or not, on `service`, which this rollout applies:
    /// its smoke runs again once that is done.
    DependencyApplied { service: String },
}

impl fmt::Display for Selected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selected::NotDeployed { state } => write!(f, "not deployed ({state})"),
            Selected::Named => f.write_str("asked for by name"),
            Selected::NeededBy { service } => write!(f, "needed by {service}"),
            Selected::Check => f.write_str("checked"),
            Selected::DependencyApplied { service } => {
                write!(f, "smoked again after {service} is applied")
            }
        }
    }
}

/// A service the plan leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SkippedService {
    pub name: String,
    pub state: ServiceState,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "because", rename_all = "snake_case")]
pub enum SkipReason {
    /// Deployed or degraded already.
    Deployed,
    Disabled,
    /// Running or waiting for approval in another rollout.
    InAnotherRollout,
    /// The selection names other services.
    NotNamed,
    /// The selection takes another priority.
    OtherPriority,
    /// The selection takes only the first `count`.
    BeyondCount {
        count: usize,
    },
    /// A dependency is not up and this plan does not deploy it.
    DependencyNotReady {
        dependency: String,
        state: ServiceState,
    },
    /// A check: it is not deployed, so there is nothing to check.
    NotDeployed,
    /// A check: it has no smoke.
    NoSmoke,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Deployed => f.write_str("already deployed"),
            SkipReason::Disabled => f.write_str("disabled"),
            SkipReason::InAnotherRollout => f.write_str("in another rollout"),
            SkipReason::NotNamed => f.write_str("not named"),
            SkipReason::OtherPriority => f.write_str("another priority"),
            SkipReason::BeyondCount { count } => write!(f, "beyond the next {count}"),
            SkipReason::DependencyNotReady { dependency, state } => write!(
                f,
                "depends on {dependency} ({state}), which this rollout does not deploy"
            ),
            SkipReason::NotDeployed => f.write_str("not deployed, nothing to check"),
            SkipReason::NoSmoke => f.write_str("no smoke to check it with"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("there is no service {name:?} in the catalog")]
    UnknownService { name: String },
}

/// A service's state now: `disabled` whenever its file says `enabled: false`, otherwise what
/// ralf recorded for it, otherwise what its file declares.
pub fn current_state(service: &Service, recorded: Option<ServiceState>) -> ServiceState {
    if !service.enabled {
        return ServiceState::Disabled;
    }
    recorded.unwrap_or_else(|| service.declared_state())
}

/// Failed, rolled back, held or never deployed: a rollout may (re)deploy it.
fn wants_deploying(state: ServiceState) -> bool {
    matches!(state, ServiceState::Pending) || state.is_down()
}

/// Plans a rollout. `recorded` holds the states ralf recorded (services missing from it stand
/// as their files declare).
pub fn plan(
    catalog: &Catalog,
    recorded: &BTreeMap<String, ServiceState>,
    selection: Selection,
) -> Result<Plan, PlanError> {
    let states: BTreeMap<&str, ServiceState> = catalog
        .services()
        .map(|s| {
            (
                s.name.as_str(),
                current_state(s, recorded.get(&s.name).copied()),
            )
        })
        .collect();

    // What the selection asks for, before looking at whether dependencies allow it.
    let mut chosen: BTreeMap<&str, Selected> = BTreeMap::new();
    match &selection {
        Selection::All | Selection::Next { .. } | Selection::Priority { .. } => {
            for service in catalog.services() {
                let state = states[service.name.as_str()];
                let in_priority = match &selection {
                    Selection::Priority { priority } => service.priority == *priority,
                    _ => true,
                };
                if in_priority && wants_deploying(state) {
                    chosen.insert(&service.name, Selected::NotDeployed { state });
                }
            }
        }
        Selection::Check => {
            for service in catalog.services() {
                if states[service.name.as_str()].is_up() && service.smoke.is_some() {
                    chosen.insert(&service.name, Selected::Check);
                }
            }
        }
        Selection::Named { names } => {
            for name in names {
                let Some(service) = catalog.get(name) else {
                    return Err(PlanError::UnknownService { name: name.clone() });
                };
                let state = states[service.name.as_str()];
                if state != ServiceState::Disabled && !state.is_in_rollout() {
                    chosen.insert(&service.name, Selected::Named);
                }
            }
            let mut queue: Vec<&str> = chosen.keys().copied().collect();
            while let Some(name) = queue.pop() {
                let service = catalog.get(name).expect("chosen from the catalog");
                for dependency in &service.depends_on {
                    let dependency = catalog.get(dependency).expect("a valid catalog");
                    let name = dependency.name.as_str();
                    if !chosen.contains_key(name) && wants_deploying(states[name]) {
                        chosen.insert(
                            name,
                            Selected::NeededBy {
                                service: service.name.clone(),
                            },
                        );
                        queue.push(name);
                    }
                }
            }
        }
    }

    // A chosen service goes only if each dependency is up or goes too; dependencies come
    // first in topological order, so one pass decides.
    let mut going: BTreeSet<&str> = BTreeSet::new();
    let mut blocked: BTreeMap<&str, SkipReason> = BTreeMap::new();
    for service in catalog.topological_order() {
        let name = service.name.as_str();
        if !chosen.contains_key(name) {
            continue;
        }
        let mut dependencies: Vec<&String> = service.depends_on.iter().collect();
        dependencies.sort();
        // A check smokes what stands, whatever stands below it.
        let unmet = dependencies.into_iter().find(|d| {
            selection != Selection::Check
                && !states[d.as_str()].is_up()
                && !going.contains(d.as_str())
        });
        match unmet {
            Some(dependency) => {
                blocked.insert(
                    name,
                    SkipReason::DependencyNotReady {
                        dependency: dependency.clone(),
                        state: states[dependency.as_str()],
                    },
                );
            }
            None => {
                going.insert(name);
            }
        }
    }

    let mut order = order_by_dependencies(
        catalog
            .services()
            .filter(|s| going.contains(s.name.as_str()))
            .collect(),
    );
    let mut beyond: BTreeSet<&str> = BTreeSet::new();
    if let Selection::Next { count } = selection {
        for service in order.iter().skip(count) {
            beyond.insert(&service.name);
        }
        order.truncate(count);
    }

    // A change below may break what stands on it: the deployed services that depend on what
    // this rollout applies get their smoke run again after it.
    let applied: BTreeSet<&str> = order
        .iter()
        .filter(|s| chosen[s.name.as_str()] != Selected::Check)
        .map(|s| s.name.as_str())
        .collect();
    for name in &applied {
        for dependent in catalog.dependents(name) {
            let service = catalog.get(dependent).expect("a dependent in the catalog");
            if !applied.contains(dependent)
                && !chosen.contains_key(dependent)
                && states[dependent].is_up()
                && service.smoke.is_some()
            {
                chosen.insert(
                    dependent,
                    Selected::DependencyApplied {
                        service: (*name).to_owned(),
                    },
                );
                order.push(service);
            }
        }
    }
    let order = order_by_dependencies(order);
    let planned: BTreeSet<&str> = order.iter().map(|s| s.name.as_str()).collect();

    let services: Vec<PlannedService> = order
        .iter()
        .map(|service| {
            let selected = chosen[service.name.as_str()].clone();
            // A smoke waits for what it stands on, also through services that are not in the
            // plan; an apply for its direct dependencies.
            let waits_for = if smoke_only(&selected) {
                planned
                    .iter()
                    .filter(|p| catalog.dependents(p).contains(service.name.as_str()))
                    .map(|p| (*p).to_owned())
                    .collect()
            } else {
                service
                    .depends_on
                    .iter()
                    .filter(|d| planned.contains(d.as_str()))
                    .cloned()
                    .collect()
            };
            PlannedService {
                service: (*service).clone(),
                waits_for,
                selected,
            }
        })
        .collect();
    let services = after_what_they_wait_for(services);

    let skipped = catalog
        .services()
        .filter(|s| !planned.contains(s.name.as_str()))
        .map(|service| {
            let name = service.name.as_str();
            let state = states[name];
            let reason = if selection == Selection::Check && state.is_up() {
                SkipReason::NoSmoke
            } else if selection == Selection::Check
                && state != ServiceState::Disabled
                && !state.is_in_rollout()
            {
                SkipReason::NotDeployed
            } else if let Some(reason) = blocked.get(name) {
                reason.clone()
            } else if beyond.contains(name) {
                let Selection::Next { count } = selection else {
                    unreachable!("only Next cuts the order")
                };
                SkipReason::BeyondCount { count }
            } else if state == ServiceState::Disabled {
                SkipReason::Disabled
            } else if state.is_in_rollout() {
                SkipReason::InAnotherRollout
            } else if state.is_up() {
                SkipReason::Deployed
            } else if matches!(selection, Selection::Named { .. }) {
                SkipReason::NotNamed
            } else {
                SkipReason::OtherPriority
            };
            SkippedService {
                name: service.name.clone(),
                state,
                reason,
            }
        })
        .collect();

    Ok(Plan {
        selection,
        services,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::catalog;

    /// postgresql (P1, deployed) ← vaultwarden (P2) ← netbox (P3); gitea (P1); n8n (P2,
    /// disabled); mail (P2) ← synapse (P3).
    fn seeds() -> Catalog {
        catalog(&[
            "name: postgresql\npriority: P1\napply: 1\nstatus: deployed\n",
            "name: vaultwarden\npriority: P2\napply: 1\ndepends_on: [postgresql]\n",
            "name: netbox\npriority: P3\napply: 1\ndepends_on: [vaultwarden]\n",
            "name: gitea\npriority: P1\napply: 1\n",
            "name: n8n\npriority: P2\napply: 1\nenabled: false\n",
            "name: mail\npriority: P2\napply: 1\n",
            "name: synapse\npriority: P3\napply: 1\ndepends_on: [mail]\n",
        ])
    }

    fn names(plan: &Plan) -> Vec<&str> {
        plan.services
            .iter()
            .map(|p| p.service.name.as_str())
            .collect()
    }

    fn reasons(plan: &Plan) -> Vec<(String, String)> {
        plan.skipped
            .iter()
            .map(|s| (s.name.clone(), s.reason.to_string()))
            .collect()
    }

    fn pair(name: &str, reason: &str) -> (String, String) {
        (name.to_owned(), reason.to_owned())
    }

    #[test]
    fn all_takes_every_enabled_service_not_deployed_in_order() {
        let plan = plan(&seeds(), &BTreeMap::new(), Selection::All).unwrap();
        assert_eq!(
            names(&plan),
            ["gitea", "mail", "vaultwarden", "netbox", "synapse"]
        );
        assert_eq!(plan.get("netbox").unwrap().waits_for, ["vaultwarden"]);
        assert!(plan.get("vaultwarden").unwrap().waits_for.is_empty());
        assert_eq!(
            reasons(&plan),
            [
                pair("n8n", "disabled"),
                pair("postgresql", "already deployed")
            ]
        );
    }

    #[test]
    fn a_dependency_goes_first_even_with_a_lower_priority() {
        let catalog = catalog(&[
            "name: exo\npriority: P0\napply: 1\ndepends_on: [ollama]\n",
            "name: ollama\npriority: P4\napply: 1\n",
            "name: gitea\npriority: P1\napply: 1\n",
        ]);
        let plan = plan(&catalog, &BTreeMap::new(), Selection::All).unwrap();
        assert_eq!(names(&plan), ["gitea", "ollama", "exo"]);
    }

    #[test]
    fn recorded_states_override_the_files() {
        let recorded = BTreeMap::from([
            ("gitea".to_owned(), ServiceState::Deployed),
            ("postgresql".to_owned(), ServiceState::Failed),
            ("mail".to_owned(), ServiceState::Running),
            ("n8n".to_owned(), ServiceState::Pending),
        ]);
        let plan = plan(&seeds(), &recorded, Selection::All).unwrap();
        assert_eq!(names(&plan), ["postgresql", "vaultwarden", "netbox"]);
        assert_eq!(
            plan.services[0].selected,
            Selected::NotDeployed {
                state: ServiceState::Failed
            }
        );
        assert_eq!(
            reasons(&plan),
            [
                pair("gitea", "already deployed"),
                pair("mail", "in another rollout"),
                pair("n8n", "disabled"),
                pair(
                    "synapse",
                    "depends on mail (running), which this rollout does not deploy"
                ),
            ]
        );
    }

    #[test]
    fn named_services_bring_their_undeployed_dependencies() {
        let selection = Selection::Named {
            names: vec!["netbox".into(), "postgresql".into()],
        };
        let plan = plan(&seeds(), &BTreeMap::new(), selection).unwrap();
        // postgresql is deployed, and named: it is deployed again, before its dependents.
        assert_eq!(names(&plan), ["postgresql", "vaultwarden", "netbox"]);
        assert_eq!(plan.get("postgresql").unwrap().selected, Selected::Named);
        assert_eq!(
            plan.get("vaultwarden").unwrap().selected,
            Selected::NeededBy {
                service: "netbox".into()
            }
        );
        assert_eq!(plan.get("vaultwarden").unwrap().waits_for, ["postgresql"]);
        assert_eq!(
            reasons(&plan),
            [
                pair("gitea", "not named"),
                pair("mail", "not named"),
                pair("n8n", "disabled"),
                pair("synapse", "not named"),
            ]
        );
    }

    #[test]
    fn a_deployed_dependency_of_a_named_service_stays() {
        let selection = Selection::Named {
            names: vec!["vaultwarden".into()],
        };
        let plan = plan(&seeds(), &BTreeMap::new(), selection).unwrap();
        assert_eq!(names(&plan), ["vaultwarden"]);
        assert!(plan.services[0].waits_for.is_empty());
    }

    #[test]
    fn unknown_and_disabled_names() {
        let selection = Selection::Named {
            names: vec!["nothing".into()],
        };
        assert_eq!(
            plan(&seeds(), &BTreeMap::new(), selection).unwrap_err(),
            PlanError::UnknownService {
                name: "nothing".into()
            }
        );
        let selection = Selection::Named {
            names: vec!["n8n".into()],
        };
        let disabled = plan(&seeds(), &BTreeMap::new(), selection).unwrap();
        assert!(disabled.is_empty());
        assert!(reasons(&disabled).contains(&pair("n8n", "disabled")));
    }

    #[test]
    fn one_priority_only() {
        let selection = Selection::Priority {
            priority: Priority::P3,
        };
        let none = plan(&seeds(), &BTreeMap::new(), selection).unwrap();
        assert!(none.is_empty());
        assert_eq!(
            reasons(&none),
            [
                pair("gitea", "another priority"),
                pair("mail", "another priority"),
                pair("n8n", "disabled"),
                pair(
                    "netbox",
                    "depends on vaultwarden (pending), which this rollout does not deploy"
                ),
                pair("postgresql", "already deployed"),
                pair(
                    "synapse",
                    "depends on mail (pending), which this rollout does not deploy"
                ),
                pair("vaultwarden", "another priority"),
            ]
        );

        let recorded = BTreeMap::from([("mail".to_owned(), ServiceState::Degraded)]);
        let selection = Selection::Priority {
            priority: Priority::P3,
        };
        let plan = plan(&seeds(), &recorded, selection).unwrap();
        assert_eq!(names(&plan), ["synapse"]);
    }

    #[test]
    fn a_failed_dependency_outside_the_selection_holds_its_dependents_back() {
        let recorded = BTreeMap::from([("vaultwarden".to_owned(), ServiceState::Failed)]);
        let selection = Selection::Priority {
            priority: Priority::P3,
        };
        let plan = plan(&seeds(), &recorded, selection).unwrap();
        let netbox = plan.skipped.iter().find(|s| s.name == "netbox").unwrap();
        assert_eq!(
            netbox.reason,
            SkipReason::DependencyNotReady {
                dependency: "vaultwarden".into(),
                state: ServiceState::Failed
            }
        );
    }

    #[test]
    fn the_next_n_are_the_first_of_all() {
        let plan = plan(&seeds(), &BTreeMap::new(), Selection::Next { count: 2 }).unwrap();
        assert_eq!(names(&plan), ["gitea", "mail"]);
        assert_eq!(
            reasons(&plan),
            [
                pair("n8n", "disabled"),
                pair("netbox", "beyond the next 2"),
                pair("postgresql", "already deployed"),
                pair("synapse", "beyond the next 2"),
                pair("vaultwarden", "beyond the next 2"),
            ]
        );
    }

    #[test]
    fn a_plan_serializes_with_its_reasons() {
        let plan = plan(&seeds(), &BTreeMap::new(), Selection::Next { count: 1 }).unwrap();
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json["selection"],
            serde_json::json!({"select": "next", "count": 1})
        );
        assert_eq!(json["services"][0]["service"]["name"], "gitea");
        assert_eq!(
            json["services"][0]["selected"],
            serde_json::json!({"because": "not_deployed", "state": "pending"})
        );
        assert_eq!(
            json["skipped"][0],
            serde_json::json!({"name": "mail", "state": "pending", "reason": {"because": "beyond_count", "count": 1}})
        );
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back.services.len(), 1);
        let selection: Selection =
            serde_json::from_str(r#"{"select": "priority", "priority": "P2"}"#).unwrap();
        assert_eq!(
            selection,
            Selection::Priority {
                priority: Priority::P2
            }
        );
    }

    /// db (deployed) ← app (deployed) ← web (deployed, no smoke) ← api (deployed); new
    /// (pending) ← db.
    fn standing() -> Catalog {
        catalog(&[
            "name: db\npriority: P1\napply: 1\nsmoke: 2\nstatus: deployed\n",
            "name: app\napply: 1\nsmoke: 2\ndepends_on: [db]\nstatus: deployed\n",
            "name: web\napply: 1\ndepends_on: [app]\nstatus: deployed\n",
            "name: api\napply: 1\nsmoke: 2\ndepends_on: [web]\nstatus: degraded\n",
            "name: new\napply: 1\nsmoke: 2\ndepends_on: [db]\n",
        ])
    }

    fn skip_reason<'a>(plan: &'a Plan, name: &str) -> &'a SkipReason {
        &plan.skipped.iter().find(|s| s.name == name).unwrap().reason
    }

    #[test]
    fn a_check_smokes_every_deployed_service_that_has_a_smoke() {
        let p = plan(&standing(), &BTreeMap::new(), Selection::Check).unwrap();
        assert_eq!(names(&p), ["db", "app", "api"]);
        assert!(p.is_check());
        assert!(p.services.iter().all(|p| p.selected == Selected::Check));
        assert_eq!(p.get("app").unwrap().waits_for, ["db"]);
        assert_eq!(skip_reason(&p, "web"), &SkipReason::NoSmoke);
        assert_eq!(skip_reason(&p, "new"), &SkipReason::NotDeployed);

        // A failed dependency does not keep a deployed service from being checked.
        let recorded = BTreeMap::from([("db".to_owned(), ServiceState::Failed)]);
        let p = plan(&standing(), &recorded, Selection::Check).unwrap();
        assert_eq!(names(&p), ["app", "api"]);
    }

    #[test]
    fn applying_a_service_again_smokes_its_deployed_dependents_after_it() {
        let named = Selection::Named {
            names: vec!["db".into()],
        };
        let p = plan(&standing(), &BTreeMap::new(), named).unwrap();
        assert_eq!(names(&p), ["db", "app", "api"]);
        assert!(!p.is_check());
        assert!(!p.get("db").unwrap().smoke_only());
        let app = p.get("app").unwrap();
        assert!(app.smoke_only());
        assert_eq!(
            app.selected,
            Selected::DependencyApplied {
                service: "db".into()
            }
        );
        assert_eq!(app.waits_for, ["db"]);
        // Through web, which has no smoke and is not in the p.
        assert_eq!(p.get("api").unwrap().waits_for, ["app", "db"]);
        assert_eq!(skip_reason(&p, "web"), &SkipReason::Deployed);
        assert_eq!(skip_reason(&p, "new"), &SkipReason::NotNamed);

        // Deploying what is pending smokes nothing when nothing deployed stands on it.
        let p = plan(&standing(), &BTreeMap::new(), Selection::All).unwrap();
        assert_eq!(names(&p), ["new"]);
    }
}

#[cfg(test)]
mod documented_example {
    use super::*;
    use crate::testing::catalog;

    /// The service files of docs/catalog.md's example (its section "Example: five services").
    fn example_files() -> Vec<&'static str> {
        let doc = include_str!("../../../docs/catalog.md");
        let section = doc
            .split("### Example: five services")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the example's section");
        section
            .split("```yaml\n")
            .skip(1)
            .map(|block| block.split("```").next().unwrap())
            .filter(|block| block.starts_with("name: "))
            .collect()
    }

    #[test]
    fn the_example_plans_as_documented() {
        let files = example_files();
        assert_eq!(files.len(), 5);
        let catalog = catalog(&files);
        let priorities: BTreeSet<Priority> = catalog.services().map(|s| s.priority).collect();
        assert_eq!(priorities.len(), 3);
        let plan = plan(&catalog, &BTreeMap::new(), Selection::All).unwrap();
        let names: Vec<&str> = plan
            .services
            .iter()
            .map(|p| p.service.name.as_str())
            .collect();
        assert_eq!(names, ["gitea", "n8n", "vaultwarden", "netbox"]);
        assert_eq!(plan.get("n8n").unwrap().waits_for, ["gitea"]);
        assert_eq!(catalog.get("vaultwarden").unwrap().extra["ct"], 4014);
    }
}
