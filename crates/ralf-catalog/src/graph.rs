//! The catalog's dependency graph in Graphviz DOT, each service labelled with its priority and
//! state and filled in its state's colour; arrows run from a dependency to the services that
//! need it, the order a rollout goes in.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::model::ServiceState;
use crate::plan::current_state;
use crate::validate::Catalog;

/// The graph of `catalog`; `recorded` holds the states ralf recorded (others stand as their
/// files declare, see [`current_state`]).
pub fn dot(catalog: &Catalog, recorded: &BTreeMap<String, ServiceState>) -> String {
    let mut out = String::new();
    out.push_str("digraph catalog {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n");
    for service in catalog.services() {
        let state = current_state(service, recorded.get(&service.name).copied());
        let label = format!("{}\n{} · {}", service.name, service.priority, state);
        let style = if state == ServiceState::Disabled {
            ", style=\"rounded,dashed,filled\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {} [label={}, fillcolor=\"{}\"{style}];",
            quoted(&service.name),
            quoted(&label),
            colour(state),
        );
    }
    for service in catalog.services() {
        let mut dependencies: Vec<&String> = service.depends_on.iter().collect();
        dependencies.sort();
        for dependency in dependencies {
            let _ = writeln!(
                out,
                "  {} -> {};",
                quoted(dependency),
                quoted(&service.name)
            );
        }
    }
    out.push_str("}\n");
    out
}

fn colour(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Pending => "white",
        ServiceState::Running => "lightblue",
        ServiceState::WaitingApproval => "gold",
        ServiceState::Deployed => "palegreen",
        ServiceState::Degraded => "khaki",
        ServiceState::Failed => "salmon",
        ServiceState::Held => "orange",
        ServiceState::RolledBack => "plum",
        ServiceState::Disabled => "lightgrey",
    }
}

/// A DOT string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::catalog;

    #[test]
    fn services_are_nodes_with_states_and_dependencies_are_arrows() {
        let catalog = catalog(&[
            "name: postgresql\npriority: P1\napply: 1\nstatus: deployed\n",
            "name: vaultwarden\npriority: P2\napply: 1\ndepends_on: [postgresql, caddy]\n",
            "name: caddy\npriority: P1\napply: 1\nenabled: false\n",
        ]);
        let recorded = BTreeMap::from([("vaultwarden".to_owned(), ServiceState::Failed)]);
        assert_eq!(
            dot(&catalog, &recorded),
            "digraph catalog {
  rankdir=LR;
  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];
  \"caddy\" [label=\"caddy\\nP1 · disabled\", fillcolor=\"lightgrey\", style=\"rounded,dashed,filled\"];
  \"postgresql\" [label=\"postgresql\\nP1 · deployed\", fillcolor=\"palegreen\"];
  \"vaultwarden\" [label=\"vaultwarden\\nP2 · failed\", fillcolor=\"salmon\"];
  \"caddy\" -> \"vaultwarden\";
  \"postgresql\" -> \"vaultwarden\";
}
"
        );
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
