//! Reading catalog files: one YAML file per service into a [`Service`], a folder of them into a
//! list; every error carries the file, line and column. Unknown keys are kept, not refused.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use ralf_core::Timestamp;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_saphyr::Spanned;

use crate::model::{
    CatalogError, FieldLocations, Location, Priority, Problem, Service, TemplateRef,
};

/// A catalog file larger than this is refused unread.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Parses the text of one service file; `file` names it in locations.
pub fn parse_service(text: &str, file: &str) -> Result<Service, CatalogError> {
    let parsed: Option<Spanned<ServiceFile>> =
        serde_saphyr::from_str(text).map_err(|e| yaml_error(file, &e))?;
    let Some(parsed) = parsed else {
        return Err(invalid(Location::file(file), "the file is empty"));
    };
    parsed
        .value
        .into_service(file, at(file, &parsed.referenced))
}

/// Reads the service files at `root/path`: the file itself, or every `*.yml` and `*.yaml` file
/// directly in that folder (not in subfolders, not hidden ones), in name order. Locations name
/// files by `path` (relative to `root`). A symbolic link is refused rather than followed; keeping
/// `path` inside `root` is the caller's business.
///
/// Returns the services that parsed and the errors of the files that did not.
pub fn read_services(root: &Path, path: &Path) -> (Vec<Service>, Vec<CatalogError>) {
    let full = root.join(path);
    let shown = path.display().to_string();
    let metadata = match full.symlink_metadata() {
        Ok(m) => m,
        Err(e) => return (Vec::new(), vec![unreadable(&shown, &e.to_string())]),
    };
    if !metadata.is_dir() {
        return match read_service_file(&full, &shown) {
            Ok(service) => (vec![service], Vec::new()),
            Err(e) => (Vec::new(), vec![e]),
        };
    }
    let entries = match std::fs::read_dir(&full) {
        Ok(entries) => entries,
        Err(e) => return (Vec::new(), vec![unreadable(&shown, &e.to_string())]),
    };
    let mut names = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => names.push(entry.file_name().to_string_lossy().into_owned()),
            Err(e) => errors.push(unreadable(&shown, &e.to_string())),
        }
    }
    names.retain(|name| is_catalog_file_name(name) && !full.join(name).is_dir());
    names.sort();
    let mut services = Vec::new();
    for name in names {
        let shown = path.join(&name).display().to_string();
        match read_service_file(&full.join(&name), &shown) {
            Ok(service) => services.push(service),
            Err(e) => errors.push(e),
        }
    }
    (services, errors)
}

fn is_catalog_file_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

fn read_service_file(full: &Path, shown: &str) -> Result<Service, CatalogError> {
    let metadata = full
        .symlink_metadata()
        .map_err(|e| unreadable(shown, &e.to_string()))?;
    if metadata.is_symlink() {
        return Err(unreadable(
            shown,
            "it is a symbolic link; catalog files must be regular files",
        ));
    }
    if !metadata.is_file() {
        return Err(unreadable(shown, "it is not a regular file"));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(unreadable(
            shown,
            &format!("it is larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let bytes = std::fs::read(full).map_err(|e| unreadable(shown, &e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| unreadable(shown, "it is not UTF-8"))?;
    parse_service(&text, shown)
}

fn unreadable(file: &str, reason: &str) -> CatalogError {
    CatalogError::new(
        Location::file(file),
        Problem::Unreadable {
            reason: reason.to_owned(),
        },
    )
}

fn invalid(location: Location, message: impl Into<String>) -> CatalogError {
    CatalogError::new(
        location,
        Problem::Invalid {
            message: message.into(),
        },
    )
}

fn at(file: &str, location: &serde_saphyr::Location) -> Location {
    Location {
        file: file.to_owned(),
        line: u32::try_from(location.line()).unwrap_or(u32::MAX),
        column: u32::try_from(location.column()).unwrap_or(u32::MAX),
    }
}

/// The parser's message without its own location suffix or source snippet (the snippet would
/// echo the file's text into logs and responses).
fn yaml_error(file: &str, error: &serde_saphyr::Error) -> CatalogError {
    let location = error
        .location()
        .map(|l| at(file, &l))
        .unwrap_or_else(|| Location::file(file));
    let text = error.without_snippet().to_string();
    let first_line = text.lines().next().unwrap_or_default().trim();
    let message = first_line
        .rsplit_once(" at line ")
        .map_or(first_line, |(message, _)| message);
    let message = message.strip_prefix("error: ").unwrap_or(message);
    // Advice meant for programmers using the parser, not for the file's author.
    let message = if message.starts_with("multiple YAML documents") {
        "a file holds one service, not several YAML documents"
    } else {
        message
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(message)
    };
    invalid(location, message)
}

/// The file as written, before the checks that need the whole of it.
#[derive(Default)]
struct ServiceFile {
    name: Option<Spanned<String>>,
    description: Option<String>,
    priority: Option<PriorityField>,
    depends_on: Option<Vec<Spanned<String>>>,
    /// Where the second of `depends_on` and `dependencies` is, when a file has both.
    depends_on_twice: Option<serde_saphyr::Location>,
    apply: Option<Spanned<TemplateField>>,
    smoke: Option<Spanned<TemplateField>>,
    rollback: Option<Spanned<TemplateField>>,
    environment: Option<Spanned<BTreeMap<String, EnvValue>>>,
    enabled: Option<bool>,
    approve: Option<bool>,
    retries: Option<u32>,
    retry_delay_seconds: Option<u64>,
    status: Option<String>,
    deployed_at: Option<DeployedAt>,
    extra: BTreeMap<String, serde_json::Value>,
}

impl ServiceFile {
    fn into_service(self, file: &str, document: Location) -> Result<Service, CatalogError> {
        let missing = |field: &str| {
            CatalogError::new(
                document.clone(),
                Problem::MissingField {
                    field: field.to_owned(),
                },
            )
        };
        let name = self.name.ok_or_else(|| missing("name"))?;
        let source = at(file, &name.referenced);
        if !is_valid_name(&name.value) {
            return Err(CatalogError::new(
                source,
                Problem::InvalidName { name: name.value },
            ));
        }
        let apply = self.apply.ok_or_else(|| missing("apply"))?;
        if let Some(second) = self.depends_on_twice {
            return Err(invalid(
                at(file, &second),
                "`depends_on` and `dependencies` mean the same; give only one",
            ));
        }
        let environment = match self.environment {
            Some(env) => {
                check_environment(&env.value).map_err(|m| invalid(at(file, &env.referenced), m))?;
                env.value.into_iter().map(|(k, v)| (k, v.0)).collect()
            }
            None => BTreeMap::new(),
        };

        let mut depends_on = Vec::new();
        let mut dependency_locations = Vec::new();
        for dependency in self.depends_on.unwrap_or_default() {
            if !depends_on.contains(&dependency.value) {
                dependency_locations.push(at(file, &dependency.referenced));
                depends_on.push(dependency.value);
            }
        }
        let locations = FieldLocations {
            depends_on: dependency_locations,
            apply: at(file, &apply.referenced),
            smoke: self.smoke.as_ref().map(|s| at(file, &s.referenced)),
            rollback: self.rollback.as_ref().map(|r| at(file, &r.referenced)),
        };
        Ok(Service {
            name: name.value,
            description: self.description,
            priority: self.priority.map(|p| p.0).unwrap_or_default(),
            depends_on,
            apply: apply.value.0,
            smoke: self.smoke.map(|s| s.value.0),
            rollback: self.rollback.map(|r| r.value.0),
            environment,
            enabled: self.enabled.unwrap_or(true),
            approve: self.approve.unwrap_or(false),
            retries: self.retries,
            retry_delay_seconds: self.retry_delay_seconds,
            status: self.status,
            deployed_at: self.deployed_at.map(|d| d.0),
            extra: self.extra,
            source,
            locations,
        })
    }
}

/// Letters, digits, `.`, `_` and `-`, starting with a letter or digit, at most 100 characters:
/// names travel into step ids, environment values and graph labels.
pub fn is_valid_name(name: &str) -> bool {
    name.len() <= 100
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn check_environment(environment: &BTreeMap<String, EnvValue>) -> Result<(), String> {
    for name in environment.keys() {
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{name:?} is not a valid environment variable name (letters, digits and `_`, not starting with a digit)"
            ));
        }
        if name.to_ascii_uppercase().starts_with("RALF_") {
            return Err(format!(
                "{name:?}: environment variables starting with RALF_ are set by ralf"
            ));
        }
    }
    Ok(())
}

impl<'de> Deserialize<'de> for ServiceFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ServiceFileVisitor)
    }
}

struct ServiceFileVisitor;

impl<'de> Visitor<'de> for ServiceFileVisitor {
    type Value = ServiceFile;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of a service's fields (name, priority, depends_on, apply, ...)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ServiceFile, A::Error> {
        let mut file = ServiceFile::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => file.name = map.next_value()?,
                "description" => file.description = map.next_value()?,
                "priority" => file.priority = map.next_value()?,
                "depends_on" | "dependencies" => {
                    let list: Spanned<Option<Vec<Spanned<String>>>> = map.next_value()?;
                    if file.depends_on.is_some() {
                        file.depends_on_twice = Some(list.referenced);
                    } else {
                        file.depends_on = Some(list.value.unwrap_or_default());
                    }
                }
                "apply" => file.apply = map.next_value()?,
                "smoke" => file.smoke = map.next_value()?,
                "rollback" => file.rollback = map.next_value()?,
                "environment" => file.environment = map.next_value()?,
                "enabled" => file.enabled = map.next_value()?,
                "approve" => file.approve = map.next_value()?,
                "retries" => file.retries = map.next_value()?,
                "retry_delay_seconds" => file.retry_delay_seconds = map.next_value()?,
                "status" => file.status = map.next_value()?,
                "deployed_at" => file.deployed_at = map.next_value()?,
                _ => {
                    let value: serde_json::Value = map.next_value()?;
                    file.extra.insert(key, value);
                }
            }
        }
        Ok(file)
    }
}

/// `P0`..`P4` in either case.
struct PriorityField(Priority);

impl<'de> Deserialize<'de> for PriorityField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Priority::parse(&text).map(PriorityField).ok_or_else(|| {
            de::Error::custom(format!(
                "priority must be one of P0, P1, P2, P3, P4, not {text:?}"
            ))
        })
    }
}

/// A time as `2026-02-15T11:00:00Z` (RFC 3339).
struct DeployedAt(Timestamp);

impl<'de> Deserialize<'de> for DeployedAt {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let quoted = serde_json::Value::String(text.clone());
        serde_json::from_value(quoted).map(DeployedAt).map_err(|_| {
            de::Error::custom(format!(
                "deployed_at must be a time like 2026-02-15T11:00:00Z, not {text:?}"
            ))
        })
    }
}

/// A template id (an integer) or name (any other text).
struct TemplateField(TemplateRef);

impl<'de> Deserialize<'de> for TemplateField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TemplateFieldVisitor)
    }
}

struct TemplateFieldVisitor;

impl Visitor<'_> for TemplateFieldVisitor {
    type Value = TemplateField;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a template's name or id")
    }

    fn visit_i64<E: de::Error>(self, id: i64) -> Result<TemplateField, E> {
        Ok(TemplateField(TemplateRef::Id(id)))
    }

    fn visit_u64<E: de::Error>(self, id: u64) -> Result<TemplateField, E> {
        i64::try_from(id)
            .map(|id| TemplateField(TemplateRef::Id(id)))
            .map_err(|_| E::custom("template id out of range"))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<TemplateField, E> {
        let name = name.trim();
        if name.is_empty() {
            return Err(E::custom("a template's name must not be empty"));
        }
        Ok(TemplateField(TemplateRef::Name(name.to_owned())))
    }
}

/// An environment value: any scalar, kept as the text it was written as (`1.10` stays `1.10`);
/// an empty value is the empty string.
struct EnvValue(String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(deserializer).map(|v| EnvValue(v.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceState;

    fn error_of(yaml: &str) -> CatalogError {
        parse_service(yaml, "svc.yaml").expect_err("should not parse")
    }

    #[test]
    fn reads_every_field_and_keeps_unknown_keys() {
        let yaml = "\
name: vaultwarden
description: Passwords
priority: P2
dependencies: [postgresql, caddy]
apply: Deploy Service
smoke: 14
rollback: \"15\"
environment:
  SERVICE_NAME: vaultwarden
  ANSIBLE_PLAYBOOK: iac/ansible/playbooks/deploy-vaultwarden.yml
  VERSION: 1.10
  PORT: 8080
  EMPTY:
enabled: true
approve: true
retries: 2
retry_delay_seconds: 10
status: deployed
deployed_at: 2026-02-15T11:00:00Z
ct: 4014
owner:
  team: ops
";
        let service = parse_service(yaml, "catalog/projects/vaultwarden.yaml").unwrap();
        assert_eq!(service.name, "vaultwarden");
        assert_eq!(service.description.as_deref(), Some("Passwords"));
        assert_eq!(service.priority, Priority::P2);
        assert_eq!(service.depends_on, ["postgresql", "caddy"]);
        assert_eq!(service.apply, TemplateRef::Name("Deploy Service".into()));
        assert_eq!(service.smoke, Some(TemplateRef::Id(14)));
        assert_eq!(service.rollback, Some(TemplateRef::Name("15".into())));
        assert_eq!(service.environment["VERSION"], "1.10");
        assert_eq!(service.environment["PORT"], "8080");
        assert_eq!(service.environment["EMPTY"], "");
        assert!(service.enabled && service.approve);
        assert_eq!(service.retries, Some(2));
        assert_eq!(service.retry_delay_seconds, Some(10));
        assert_eq!(service.declared_state(), ServiceState::Deployed);
        assert_eq!(
            service.deployed_at.unwrap().to_string(),
            "2026-02-15T11:00:00Z"
        );
        assert_eq!(service.extra["ct"], serde_json::json!(4014));
        assert_eq!(service.extra["owner"], serde_json::json!({"team": "ops"}));
        assert_eq!(
            service.source.to_string(),
            "catalog/projects/vaultwarden.yaml:1:7"
        );
        assert_eq!(
            service.locations.depends_on[1].to_string(),
            "catalog/projects/vaultwarden.yaml:4:28"
        );
        assert_eq!(service.locations.apply.line, 5);
        assert_eq!(service.locations.smoke.as_ref().unwrap().line, 6);
    }

    #[test]
    fn a_minimal_file_takes_the_defaults() {
        let service = parse_service("name: n8n\napply: 3\n", "n8n.yml").unwrap();
        assert_eq!(service.priority, Priority::P4);
        assert!(service.depends_on.is_empty() && service.environment.is_empty());
        assert!(service.enabled && !service.approve);
        assert_eq!(service.smoke, None);
        assert_eq!(service.retries, None);
        assert_eq!(service.declared_state(), ServiceState::Pending);
        let disabled = parse_service(
            "name: n8n\napply: 3\nenabled: false\nstatus: deployed\n",
            "n8n.yml",
        )
        .unwrap();
        assert_eq!(disabled.declared_state(), ServiceState::Disabled);
    }

    #[test]
    fn repeated_dependencies_count_once() {
        let service =
            parse_service("name: a\napply: 1\ndepends_on: [b, c, b]\n", "a.yaml").unwrap();
        assert_eq!(service.depends_on, ["b", "c"]);
        assert_eq!(service.locations.depends_on.len(), 2);
    }

    #[test]
    fn a_bad_value_is_reported_at_its_line_and_column() {
        let e = error_of("name: a\napply: 1\npriority: P9\n");
        assert_eq!((e.location.line, e.location.column), (3, 11), "{e}");
        assert!(
            e.to_string()
                .contains("priority must be one of P0, P1, P2, P3, P4"),
            "{e}"
        );
        assert!(e.to_string().starts_with("svc.yaml:3:11: "), "{e}");

        let e = error_of("name: a\napply: 1\nenabled: maybe\n");
        assert_eq!(e.location.line, 3, "{e}");

        let e = error_of("name: a\napply: [1, 2]\n");
        assert_eq!(e.location.line, 2, "{e}");
    }

    #[test]
    fn required_fields_and_names_are_checked() {
        let e = error_of("description: nothing else\n");
        assert_eq!(
            e.problem,
            Problem::MissingField {
                field: "name".into()
            }
        );
        assert_eq!(e.location.line, 1);

        let e = error_of("name: a\n");
        assert_eq!(
            e.problem,
            Problem::MissingField {
                field: "apply".into()
            }
        );

        let e = error_of("name: my service\napply: 1\n");
        assert_eq!(
            e.problem,
            Problem::InvalidName {
                name: "my service".into()
            }
        );
        assert_eq!((e.location.line, e.location.column), (1, 7));
    }

    #[test]
    fn environment_names_are_checked() {
        let e = error_of("name: a\napply: 1\nenvironment:\n  1BAD: x\n");
        assert!(matches!(e.problem, Problem::Invalid { .. }), "{e}");
        assert_eq!(e.location.line, 4, "{e}");
        let e = error_of("name: a\napply: 1\nenvironment:\n  RALF_SERVICE: x\n");
        assert!(e.to_string().contains("set by ralf"), "{e}");
        let e = error_of("name: a\napply: 1\nenvironment:\n  LIST: [1, 2]\n");
        assert_eq!(e.location.line, 4, "{e}");
    }

    #[test]
    fn depends_on_and_dependencies_together_are_refused() {
        let e = error_of("name: a\napply: 1\ndepends_on: [b]\ndependencies: [c]\n");
        assert!(e.to_string().contains("give only one"), "{e}");
        assert_eq!(e.location.line, 4, "{e}");
    }

    #[test]
    fn not_yaml_not_a_mapping_and_empty_files_are_errors() {
        let e = error_of("name: a\napply: [1\n");
        assert!(matches!(e.problem, Problem::Invalid { .. }), "{e}");
        assert!(e.location.line >= 2, "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");

        let e = error_of("- name: a\n");
        assert!(matches!(e.problem, Problem::Invalid { .. }), "{e}");

        for empty in ["", "\n# nothing\n", "~\n"] {
            let e = error_of(empty);
            assert_eq!(e.to_string(), "svc.yaml: the file is empty");
        }
    }

    #[test]
    fn parser_advice_is_put_in_the_authors_terms() {
        let e = error_of("name: a\napply: 1\ndeployed_at: yesterday\n");
        assert_eq!(
            e.to_string(),
            "svc.yaml:3:14: deployed_at must be a time like 2026-02-15T11:00:00Z, not \"yesterday\""
        );
        let e = error_of("name: a\nname: b\napply: 1\n");
        assert_eq!(e.to_string(), "svc.yaml:2:1: duplicate mapping key: name");
        let e = error_of("name: a\napply: 1\n---\nname: b\napply: 1\n");
        assert_eq!(
            e.to_string(),
            "svc.yaml:4:1: a file holds one service, not several YAML documents"
        );
    }

    #[test]
    fn a_folder_is_read_in_name_order_with_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("catalog");
        std::fs::create_dir_all(folder.join("sub")).unwrap();
        std::fs::write(folder.join("b.yaml"), "name: b\napply: 1\n").unwrap();
        std::fs::write(folder.join("a.yml"), "name: a\napply: 1\n").unwrap();
        std::fs::write(folder.join("c.yaml"), "name: c\n").unwrap();
        std::fs::write(folder.join("d.yaml"), "name: d\npriority: high\napply: 1\n").unwrap();
        std::fs::write(folder.join("README.md"), "not a service").unwrap();
        std::fs::write(folder.join(".hidden.yaml"), "nonsense: [").unwrap();
        std::fs::write(folder.join("sub/e.yaml"), "name: e\napply: 1\n").unwrap();
        std::os::unix::fs::symlink(folder.join("a.yml"), folder.join("link.yaml")).unwrap();

        let (services, errors) = read_services(dir.path(), Path::new("catalog"));
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(services[0].source.file, "catalog/a.yml");
        let shown: Vec<String> = errors.iter().map(|e| e.location.to_string()).collect();
        assert_eq!(
            shown,
            [
                "catalog/c.yaml:1:1",
                "catalog/d.yaml:2:11",
                "catalog/link.yaml"
            ]
        );
        assert!(
            errors[2].to_string().contains("symbolic link"),
            "{}",
            errors[2]
        );

        let (services, errors) = read_services(dir.path(), Path::new("catalog/b.yaml"));
        assert_eq!((services.len(), errors.len()), (1, 0));

        let (services, errors) = read_services(dir.path(), Path::new("missing"));
        assert!(services.is_empty());
        assert!(matches!(errors[0].problem, Problem::Unreadable { .. }));
        assert_eq!(errors[0].location.to_string(), "missing");
    }
}
