//! The catalog's dependency graph in Graphviz DOT, each service labelled with its priority and
//! state and filled in its state's colour; arrows run from a dependency to the services that
//! need it, the order a rollout goes in. The same graph as a small SVG drawn without Graphviz
//! ([`svg`]): services in layers from left to right (each one layer after its deepest
//! dependency), dark text on light fills (WCAG AA and better).

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

/// A node's size and the gaps between them in the SVG, in pixels.
const NODE_WIDTH: usize = 180;
const NODE_HEIGHT: usize = 48;
const LAYER_GAP: usize = 60;
const ROW_GAP: usize = 16;
const MARGIN: usize = 16;
/// The longest name shown whole; longer ones are cut (the full name is the node's title).
const MAX_LABEL: usize = 22;

/// The graph of `catalog` as SVG, each service in the state [`dot`] gives it.
pub fn svg(catalog: &Catalog, recorded: &BTreeMap<String, ServiceState>) -> String {
    // Each service one layer after its deepest dependency; in a layer, in rollout order.
    let mut layer_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut layers: Vec<Vec<&crate::model::Service>> = Vec::new();
    for service in catalog.topological_order() {
        let layer = service
            .depends_on
            .iter()
            .filter_map(|d| layer_of.get(d.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        layer_of.insert(&service.name, layer);
        if layers.len() <= layer {
            layers.resize_with(layer + 1, Vec::new);
        }
        layers[layer].push(service);
    }
    let position = |name: &str| -> Option<(usize, usize)> {
        let layer = *layer_of.get(name)?;
        let row = layers[layer].iter().position(|s| s.name == name)?;
        Some((
            MARGIN + layer * (NODE_WIDTH + LAYER_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        ))
    };
    let rows = layers.iter().map(Vec::len).max().unwrap_or(0);
    let width = 2 * MARGIN + layers.len() * NODE_WIDTH + layers.len().saturating_sub(1) * LAYER_GAP;
    let height = 2 * MARGIN + rows * NODE_HEIGHT + rows.saturating_sub(1) * ROW_GAP;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" role=\"img\" \
         aria-label=\"Service catalog dependency graph\">"
    );
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" \
         fill=\"#4a4a4a\"/></marker></defs>\n",
    );
    out.push_str(&format!(
        "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n"
    ));
    for service in catalog.topological_order() {
        let Some((x2, y2)) = position(&service.name) else {
            continue;
        };
        let mut dependencies: Vec<&String> = service.depends_on.iter().collect();
        dependencies.sort();
        for dependency in dependencies {
            if let Some((x1, y1)) = position(dependency) {
                let _ = writeln!(
                    out,
                    "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#4a4a4a\" \
                     stroke-width=\"1.5\" marker-end=\"url(#arrow)\"/>",
                    x1 + NODE_WIDTH,
                    y1 + NODE_HEIGHT / 2,
                    x2,
                    y2 + NODE_HEIGHT / 2
                );
            }
        }
    }
    for service in catalog.topological_order() {
        let Some((x, y)) = position(&service.name) else {
            continue;
        };
        let state = current_state(service, recorded.get(&service.name).copied());
        let dash = if state == ServiceState::Disabled {
            " stroke-dasharray=\"5,3\""
        } else {
            ""
        };
        let shown: String = if service.name.chars().count() > MAX_LABEL {
            let cut: String = service.name.chars().take(MAX_LABEL - 1).collect();
            format!("{cut}…")
        } else {
            service.name.clone()
        };
        let _ = writeln!(
            out,
            "<g><title>{title}: {priority}, {state}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" rx=\"8\" \
             fill=\"{fill}\" stroke=\"#333333\" stroke-width=\"1.5\"{dash}/>\
             <text x=\"{tx}\" y=\"{ty1}\" text-anchor=\"middle\" font-size=\"14\" \
             font-weight=\"bold\" fill=\"#111111\">{name}</text>\
             <text x=\"{tx}\" y=\"{ty2}\" text-anchor=\"middle\" font-size=\"12\" \
             fill=\"#111111\">{priority} · {state}</text></g>",
            title = xml(&service.name),
            priority = service.priority,
            fill = hex_colour(state),
            tx = x + NODE_WIDTH / 2,
            ty1 = y + 20,
            ty2 = y + 38,
            name = xml(&shown),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The state's colour of [`colour`] in hexadecimal: every one light enough for `#111111` text
/// to reach a contrast of at least 7:1.
fn hex_colour(state: ServiceState) -> &'static str {
    match state {
        ServiceState::Pending => "#ffffff",
        ServiceState::Running => "#add8e6",
        ServiceState::WaitingApproval => "#ffd700",
        ServiceState::Deployed => "#98fb98",
        ServiceState::Degraded => "#f0e68c",
        ServiceState::Failed => "#fa8072",
        ServiceState::Held => "#ffa500",
        ServiceState::RolledBack => "#dda0dd",
        ServiceState::Disabled => "#d3d3d3",
    }
}

/// Text escaped for XML.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
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
    fn the_svg_draws_layers_states_and_edges() {
        let catalog = catalog(&[
            "name: postgresql\npriority: P1\napply: 1\nstatus: deployed\n",
            "name: vaultwarden\npriority: P2\napply: 1\ndepends_on: [postgresql, caddy]\n",
            "name: caddy\npriority: P1\napply: 1\nenabled: false\n",
            "name: a-very-long-service-name-indeed\napply: 1\ndepends_on: [vaultwarden]\n",
        ]);
        let recorded = BTreeMap::from([("vaultwarden".to_owned(), ServiceState::Failed)]);
        let svg = svg(&catalog, &recorded);
        assert!(
            svg.starts_with(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"692\" height=\"144\""
            ),
            "{svg}"
        );
        assert!(svg.ends_with("</svg>\n"));
        // Three layers: postgresql and caddy, vaultwarden, the long one.
        assert!(svg.contains("<rect x=\"16\" y=\"16\" width=\"180\" height=\"48\" rx=\"8\" fill=\"#d3d3d3\" stroke=\"#333333\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>"), "{svg}");
        assert!(
            svg.contains(
                "<rect x=\"256\" y=\"16\" width=\"180\" height=\"48\" rx=\"8\" fill=\"#fa8072\""
            ),
            "{svg}"
        );
        assert!(svg.contains(">vaultwarden</text>"));
        assert!(svg.contains(">P2 · failed</text>"));
        assert!(svg.contains(">P1 · deployed</text>"));
        assert!(svg.contains(">a-very-long-service-n…</text>"), "{svg}");
        assert!(svg.contains("<title>a-very-long-service-name-indeed: P4, pending</title>"));
        assert_eq!(svg.matches("<line ").count(), 3);
    }

    #[test]
    fn the_svgs_fills_keep_the_text_readable() {
        // WCAG's contrast ratio of #111111 on each fill: at least 4.5 (AA) and in fact 7.
        fn luminance(hex: &str) -> f64 {
            let channel = |i: usize| {
                let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
                if c <= 0.03928 {
                    c / 12.92
                } else {
                    ((c + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        }
        let text = luminance("#111111");
        for state in ServiceState::ALL {
            let fill = luminance(hex_colour(state));
            let ratio = (fill + 0.05) / (text + 0.05);
            assert!(ratio >= 7.0, "{state}: {ratio}");
        }
        assert_eq!(xml("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
