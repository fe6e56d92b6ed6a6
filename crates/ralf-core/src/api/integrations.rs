//! Integrations on the wire (inbound webhooks that start a template), their matchers, extract
//! values and aliases, and what a delivery is checked against: which integrations it
//! matches and the values it hands the task. No I/O: the server reads the rows and the
//! request, this module decides.
//!
//! A matcher or extract value reads a header (names compared ignoring case) or the body: as
//! JSON (`key` a dotted path such as `repository.full_name` or `commits.0.id`, `$.` in front
//! allowed), as XML (`key` a path of element names from the root, `push.ref`, with `@name` last
//! for an attribute) or as a string (the whole body). Matchers compare with `equals`,
//! `unequals` or `contains`; all of an integration's matchers must hold.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::tasks::TaskRequest;
use crate::validate::{self, Checked, invalid};

/// `auth_method` values: how a delivery proves it comes from the sender.
pub const AUTH_METHODS: [&str; 7] = ["", "none", "github", "bitbucket", "token", "hmac", "basic"];
pub const MATCH_TYPES: [&str; 2] = ["body", "header"];
pub const MATCH_METHODS: [&str; 3] = ["equals", "unequals", "contains"];
pub const BODY_DATA_TYPES: [&str; 3] = ["json", "xml", "string"];
pub const VALUE_SOURCES: [&str; 2] = ["body", "header"];
pub const VARIABLE_TYPES: [&str; 2] = ["environment", "task"];

/// Headers that carry a sender's id of one delivery, tried in this order; a delivery whose id
/// was seen recently starts nothing again.
pub const DELIVERY_ID_HEADERS: [&str; 6] = [
    "x-github-delivery",
    "x-gitea-delivery",
    "x-gogs-delivery",
    "x-gitlab-event-uuid",
    "x-request-uuid",
    "x-delivery-id",
];

/// An integration as the API shows it. Its secret is a key of the project (`auth_secret_id`,
/// a `login_password` key whose password is the secret); it is never shown here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Integration {
    pub id: i64,
    pub name: String,
    pub project_id: i64,
    pub template_id: i64,
    /// `""`/`none`, `github`, `bitbucket`, `token`, `hmac` or `basic`.
    pub auth_method: String,
    pub auth_secret_id: Option<i64>,
    /// The header with the token (`token`) or the signature (`hmac`).
    pub auth_header: String,
    /// Whether deliveries to the project's aliases may start it (when its matchers hold).
    pub searchable: bool,
    /// The task's overrides, as `POST /tasks` takes them.
    pub task_params: Option<TaskRequest>,
}

/// `POST /integrations` and `PUT /integrations/{id}`; `null` means absent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationRequest {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub project_id: Option<i64>,
    pub template_id: Option<i64>,
    pub auth_method: Option<String>,
    pub auth_secret_id: Option<i64>,
    pub auth_header: Option<String>,
    pub searchable: Option<bool>,
    pub task_params: Option<TaskRequest>,
}

/// An integration request checked for its shape; that the template and key are the
/// project's is the store's check.
#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationFields {
    pub name: String,
    pub template_id: i64,
    pub auth_method: String,
    pub auth_secret_id: Option<i64>,
    pub auth_header: String,
    pub searchable: bool,
    /// Without `template_id`, `template_name` and `secret`.
    pub task_params: Option<TaskRequest>,
}

impl IntegrationRequest {
    pub fn check(&self) -> Checked<IntegrationFields> {
        let name = validate::name("name", self.name.as_deref().unwrap_or_default())?;
        let template_id = match self.template_id {
            Some(id) if id > 0 => id,
            _ => return invalid("template_id is required"),
        };
        let auth_method = one_of(
            "auth_method",
            self.auth_method.as_deref().unwrap_or_default(),
            &AUTH_METHODS,
        )?;
        let auth_header = self
            .auth_header
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string();
        validate::short_text("auth_header", &auth_header)?;
        if !auth_header.is_empty() && !is_header_name(&auth_header) {
            return invalid(format!(
                "auth_header {auth_header:?} is not a valid HTTP header name"
            ));
        }
        let task_params = match &self.task_params {
            None => None,
            Some(p) => {
                if p.secret.as_deref().is_some_and(|s| !s.trim().is_empty()) {
                    return invalid(
                        "task_params.secret: an integration cannot keep secret answers \
                         (they are never stored)",
                    );
                }
                Some(TaskRequest {
                    template_id: None,
                    template_name: None,
                    secret: None,
                    ..p.clone()
                })
            }
        };
        Ok(IntegrationFields {
            name,
            template_id,
            auth_method,
            auth_secret_id: self.auth_secret_id.filter(|&id| id != 0),
            auth_header,
            searchable: self.searchable.unwrap_or(false),
            task_params,
        })
    }
}

/// A matcher: a condition a delivery must meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationMatcher {
    pub id: i64,
    pub integration_id: i64,
    pub name: String,
    /// `body` or `header`.
    pub match_type: String,
    /// `equals`, `unequals` or `contains`.
    pub method: String,
    /// `json`, `xml` or `string` (for `body`).
    pub body_data_type: String,
    pub key: String,
    pub value: String,
}

/// `POST /matchers`, `PUT /matchers/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationMatcherRequest {
    pub id: Option<i64>,
    pub integration_id: Option<i64>,
    pub name: Option<String>,
    pub match_type: Option<String>,
    pub method: Option<String>,
    pub body_data_type: Option<String>,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// A matcher's fields, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct MatcherFields {
    pub name: String,
    pub match_type: String,
    pub method: String,
    pub body_data_type: String,
    pub key: String,
    pub value: String,
}

impl IntegrationMatcherRequest {
    pub fn check(&self) -> Checked<MatcherFields> {
        let name = self.name.as_deref().unwrap_or_default().trim().to_string();
        validate::short_text("name", &name)?;
        let match_type = one_of(
            "match_type",
            self.match_type.as_deref().unwrap_or("body"),
            &MATCH_TYPES,
        )?;
        let method = one_of(
            "method",
            self.method.as_deref().unwrap_or("equals"),
            &MATCH_METHODS,
        )?;
        let body_data_type = body_data_type(self.body_data_type.as_deref())?;
        let key = self.key.as_deref().unwrap_or_default().trim().to_string();
        validate::short_text("key", &key)?;
        key_needed(&match_type, &body_data_type, &key)?;
        let value = self.value.clone().unwrap_or_default();
        validate::long_text("value", &value)?;
        Ok(MatcherFields {
            name,
            match_type,
            method,
            body_data_type,
            key,
            value,
        })
    }
}

/// An extract value: a piece of a delivery handed to the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationExtractValue {
    pub id: i64,
    pub integration_id: i64,
    pub name: String,
    /// `body` or `header`.
    pub value_source: String,
    /// `json`, `xml` or `string` (for `body`).
    pub body_data_type: String,
    pub key: String,
    /// The name the value gets.
    pub variable: String,
    /// `environment` (an extra variable of the task; the default) or `task` (a task
    /// parameter: `git_branch`, `commit_hash`, `message`, `limit`, `tags`, `skip_tags`, or a
    /// switch such as `debug`, `dry_run`, `diff`, `plan`, `destroy`, `auto_approve`).
    pub variable_type: String,
}

/// `POST /values`, `PUT /values/{id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationExtractValueRequest {
    pub id: Option<i64>,
    pub integration_id: Option<i64>,
    pub name: Option<String>,
    pub value_source: Option<String>,
    pub body_data_type: Option<String>,
    pub key: Option<String>,
    pub variable: Option<String>,
    pub variable_type: Option<String>,
}

/// An extract value's fields, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractValueFields {
    pub name: String,
    pub value_source: String,
    pub body_data_type: String,
    pub key: String,
    pub variable: String,
    pub variable_type: String,
}

impl IntegrationExtractValueRequest {
    pub fn check(&self) -> Checked<ExtractValueFields> {
        let name = self.name.as_deref().unwrap_or_default().trim().to_string();
        validate::short_text("name", &name)?;
        let value_source = one_of(
            "value_source",
            self.value_source.as_deref().unwrap_or("body"),
            &VALUE_SOURCES,
        )?;
        let body_data_type = body_data_type(self.body_data_type.as_deref())?;
        let key = self.key.as_deref().unwrap_or_default().trim().to_string();
        validate::short_text("key", &key)?;
        key_needed(&value_source, &body_data_type, &key)?;
        let variable = self
            .variable
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string();
        if variable.is_empty() {
            return invalid("variable is required");
        }
        validate::short_text("variable", &variable)?;
        let variable_type = match self.variable_type.as_deref().map(str::trim) {
            None | Some("") => "environment".to_string(),
            Some(other) => one_of("variable_type", other, &VARIABLE_TYPES)?,
        };
        if variable_type == "task" && !TASK_VARIABLES.contains(&variable.as_str()) {
            return invalid(format!(
                "variable: a task parameter must be one of {}, not {variable:?}",
                TASK_VARIABLES.join(", ")
            ));
        }
        Ok(ExtractValueFields {
            name,
            value_source,
            body_data_type,
            key,
            variable,
            variable_type,
        })
    }
}

/// An alias: the secret last part of a webhook's URL. Project-level aliases
/// (`integration_id` `null`) reach every searchable integration of the project whose matchers
/// hold; an integration's own aliases reach that integration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntegrationAlias {
    pub id: i64,
    pub alias: String,
    /// The URL to give the sender: `<web_host>/api/integrations/<alias>`.
    pub url: String,
    pub project_id: i64,
    pub integration_id: Option<i64>,
}

/// The task parameters a `task` extract value may set.
pub const TASK_VARIABLES: [&str; 14] = [
    "git_branch",
    "commit_hash",
    "message",
    "limit",
    "tags",
    "skip_tags",
    "debug",
    "dry_run",
    "diff",
    "skip_galaxy_install",
    "plan",
    "destroy",
    "auto_approve",
    "upgrade",
];

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Checked<String> {
    let value = value.trim();
    if allowed.contains(&value) {
        Ok(value.to_string())
    } else {
        let names: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        invalid(format!(
            "{field} must be one of {}, not {value:?}",
            names.join(", ")
        ))
    }
}

fn body_data_type(value: Option<&str>) -> Checked<String> {
    match value.map(str::trim) {
        None | Some("") => Ok("json".to_string()),
        Some(other) => one_of("body_data_type", other, &BODY_DATA_TYPES),
    }
}

/// A header, or a JSON or XML body, is read at a key; a string body is read whole.
fn key_needed(source: &str, body_data_type: &str, key: &str) -> Checked<()> {
    let needs_key = source == "header" || body_data_type != "string";
    if needs_key && key.is_empty() {
        return invalid("key is required (a header name, or a path into a JSON or XML body)");
    }
    if source == "header" && !is_header_name(key) {
        return invalid(format!("key {key:?} is not a valid HTTP header name"));
    }
    Ok(())
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// One delivery as the matchers and extract values see it: its headers and its body, the
/// body parsed (as JSON, as XML) at most once and only when asked.
pub struct Delivery<'a> {
    headers: Vec<(String, String)>,
    body: &'a [u8],
    json: OnceLock<Option<Value>>,
}

impl<'a> Delivery<'a> {
    /// `headers` as received (names in any case; of a repeated header, the first counts).
    pub fn new(headers: impl IntoIterator<Item = (String, String)>, body: &'a [u8]) -> Self {
        Delivery {
            headers: headers
                .into_iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value))
                .collect(),
            body,
            json: OnceLock::new(),
        }
    }

    /// The first value of header `name`, ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body(&self) -> &[u8] {
        self.body
    }

    /// The sender's id of this delivery, if it sent one.
    pub fn delivery_id(&self) -> Option<&str> {
        DELIVERY_ID_HEADERS
            .iter()
            .find_map(|h| self.header(h))
            .map(str::trim)
            .filter(|id| !id.is_empty())
    }

    /// What a matcher or extract value reads: `None` when the header or the body's key is
    /// not there.
    pub fn value(&self, source: &str, body_data_type: &str, key: &str) -> Option<String> {
        if source == "header" {
            return self.header(key).map(str::to_string);
        }
        match body_data_type {
            "string" => Some(String::from_utf8_lossy(self.body).into_owned()),
            "xml" => xml_at(self.body, key),
            _ => {
                let json = self
                    .json
                    .get_or_init(|| serde_json::from_slice(self.body).ok());
                json_at(json.as_ref()?, key).and_then(scalar_text)
            }
        }
    }

    /// Whether the matcher holds for this delivery. A header or key that is not there reads
    /// as the empty string.
    pub fn matches(&self, m: &IntegrationMatcher) -> bool {
        let found = self
            .value(&m.match_type, &m.body_data_type, &m.key)
            .unwrap_or_default();
        match m.method.as_str() {
            "equals" => found == m.value,
            "unequals" => found != m.value,
            "contains" => found.contains(&m.value),
            _ => false,
        }
    }

    /// The task of this delivery: the integration's overrides with the extracted values put
    /// in (environment values into `environment`, task values into their fields). A value
    /// the delivery does not have is left out; a task value that does not fit its field (a
    /// switch that is not a boolean) is an error naming it.
    pub fn task_request(
        &self,
        base: Option<&TaskRequest>,
        values: &[IntegrationExtractValue],
    ) -> Result<TaskRequest, String> {
        let mut request = base.cloned().unwrap_or_default();
        let mut environment: serde_json::Map<String, Value> = match request
            .environment
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            None => serde_json::Map::new(),
            Some(text) => serde_json::from_str(text)
                .map_err(|_| "the integration's task_params.environment is not a JSON object")?,
        };
        for v in values {
            let Some(found) = self.value(&v.value_source, &v.body_data_type, &v.key) else {
                continue;
            };
            if v.variable_type == "task" {
                set_task_value(&mut request, &v.variable, &found)?;
            } else {
                environment.insert(v.variable.clone(), Value::String(found));
            }
        }
        if !environment.is_empty() {
            request.environment = Some(Value::Object(environment).to_string());
        }
        Ok(request)
    }
}

/// Puts an extracted value into the task parameter `name`.
fn set_task_value(request: &mut TaskRequest, name: &str, value: &str) -> Result<(), String> {
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let switch = |v: &str| -> Result<bool, String> {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            other => Err(format!(
                "the task parameter {name} takes true or false, not {other:?}"
            )),
        }
    };
    match name {
        "git_branch" => request.git_branch = Some(value.to_string()),
        "commit_hash" => request.commit_hash = Some(value.to_string()),
        "message" => request.message = Some(value.to_string()),
        _ => {
            let params = request.params.get_or_insert_with(Default::default);
            match name {
                "limit" => params.limit = list(value),
                "tags" => params.tags = list(value),
                "skip_tags" => params.skip_tags = list(value),
                "debug" => params.debug = switch(value)?,
                "dry_run" => params.dry_run = switch(value)?,
                "diff" => params.diff = switch(value)?,
                "skip_galaxy_install" => params.skip_galaxy_install = switch(value)?,
                "plan" => params.plan = switch(value)?,
                "destroy" => params.destroy = switch(value)?,
                "auto_approve" => params.auto_approve = switch(value)?,
                "upgrade" => params.upgrade = switch(value)?,
                other => return Err(format!("{other:?} is not a task parameter")),
            }
        }
    }
    Ok(())
}

/// The value at a dotted path (`a.b.0.c`, `a.b[0].c`, `$.a.b`) of a JSON document.
fn json_at<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let path = path.trim();
    let path = path
        .strip_prefix("$.")
        .or_else(|| path.strip_prefix('$'))
        .unwrap_or(path);
    let mut here = root;
    for segment in path.replace('[', ".").replace(']', "").split('.') {
        if segment.is_empty() {
            continue;
        }
        here = match here {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(here)
}

/// A JSON value as the text a variable gets: strings as they are, whole numbers without a
/// fraction, objects and arrays as JSON; `null` is no value.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(match n.as_f64() {
            // 3.0 reads as "3", as Semaphore prints a whole float.
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                format!("{}", f as i64)
            }
            _ => n.to_string(),
        }),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    }
}

/// The text at a path of element names from the root element (`push.ref`, `/push/ref`), or an
/// attribute's value when the last step is `@name`. The root's own name may start the path.
fn xml_at(body: &[u8], path: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let mut steps: Vec<&str> = path
        .split(['.', '/'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let root = doc.root_element();
    if steps.first() == Some(&root.tag_name().name()) {
        steps.remove(0);
    }
    let mut node = root;
    for (i, step) in steps.iter().enumerate() {
        if let Some(attribute) = step.strip_prefix('@') {
            return (i + 1 == steps.len())
                .then(|| node.attribute(attribute).map(str::to_string))
                .flatten();
        }
        node = node
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == *step)?;
    }
    Some(
        node.descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect::<String>()
            .trim()
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(
        match_type: &str,
        kind: &str,
        key: &str,
        method: &str,
        value: &str,
    ) -> IntegrationMatcher {
        IntegrationMatcher {
            id: 1,
            integration_id: 1,
            name: String::new(),
            match_type: match_type.into(),
            method: method.into(),
            body_data_type: kind.into(),
            key: key.into(),
            value: value.into(),
        }
    }

    const PUSH: &str = r#"{"ref":"refs/heads/main","after":"abc123","size":3,"ratio":2.5,
        "repository":{"full_name":"acme/site","private":false},
        "commits":[{"id":"c1"},{"id":"c2"}]}"#;

    fn push() -> Delivery<'static> {
        Delivery::new(
            [("X-GitHub-Event".to_string(), "push".to_string())],
            PUSH.as_bytes(),
        )
    }

    #[test]
    fn json_paths_read_scalars_and_nested_values() {
        let d = push();
        assert_eq!(d.value("body", "json", "ref").unwrap(), "refs/heads/main");
        assert_eq!(
            d.value("body", "json", "$.repository.full_name").unwrap(),
            "acme/site"
        );
        assert_eq!(d.value("body", "json", "commits.1.id").unwrap(), "c2");
        assert_eq!(d.value("body", "json", "commits[0].id").unwrap(), "c1");
        assert_eq!(d.value("body", "json", "size").unwrap(), "3");
        assert_eq!(d.value("body", "json", "ratio").unwrap(), "2.5");
        assert_eq!(
            d.value("body", "json", "repository.private").unwrap(),
            "false"
        );
        assert_eq!(d.value("body", "json", "missing.key"), None);
        assert_eq!(d.value("header", "", "x-github-event").unwrap(), "push");
    }

    #[test]
    fn matchers_compare_each_way() {
        let d = push();
        assert!(d.matches(&matcher("header", "", "X-GitHub-Event", "equals", "push")));
        assert!(!d.matches(&matcher("header", "", "X-GitHub-Event", "equals", "ping")));
        assert!(d.matches(&matcher(
            "body",
            "json",
            "ref",
            "unequals",
            "refs/heads/dev"
        )));
        assert!(d.matches(&matcher("body", "json", "ref", "contains", "heads/")));
        assert!(d.matches(&matcher("body", "string", "", "contains", "acme/site")));
        assert!(!d.matches(&matcher("body", "json", "nothing", "equals", "x")));
        let xml = Delivery::new(
            [],
            b"<push branch=\"main\"><ref>refs/heads/main</ref></push>",
        );
        assert!(xml.matches(&matcher(
            "body",
            "xml",
            "push.ref",
            "equals",
            "refs/heads/main"
        )));
        assert!(xml.matches(&matcher("body", "xml", "ref", "equals", "refs/heads/main")));
        assert!(xml.matches(&matcher("body", "xml", "@branch", "equals", "main")));
        assert!(!push().matches(&matcher("body", "xml", "ref", "equals", "refs/heads/main")));
    }

    #[test]
    fn extracted_values_go_into_the_environment_or_the_task() {
        let value = |variable: &str, key: &str, variable_type: &str| IntegrationExtractValue {
            id: 1,
            integration_id: 1,
            name: String::new(),
            value_source: "body".into(),
            body_data_type: "json".into(),
            key: key.into(),
            variable: variable.into(),
            variable_type: variable_type.into(),
        };
        let base = TaskRequest {
            environment: Some(r#"{"stage":"prod"}"#.into()),
            ..Default::default()
        };
        let request = push()
            .task_request(
                Some(&base),
                &[
                    value("REPO", "repository.full_name", "environment"),
                    value("commit_hash", "after", "task"),
                    value("NOTHING", "missing", "environment"),
                ],
            )
            .unwrap();
        let env: Value = serde_json::from_str(request.environment.as_deref().unwrap()).unwrap();
        assert_eq!(
            env,
            serde_json::json!({"stage": "prod", "REPO": "acme/site"})
        );
        assert_eq!(request.commit_hash.as_deref(), Some("abc123"));
        let e = push()
            .task_request(None, &[value("debug", "ref", "task")])
            .unwrap_err();
        assert!(e.contains("true or false"), "{e}");
    }

    #[test]
    fn delivery_ids_come_from_the_known_headers() {
        let d = Delivery::new(
            [("X-GitHub-Delivery".to_string(), " 72d3162e ".to_string())],
            b"",
        );
        assert_eq!(d.delivery_id(), Some("72d3162e"));
        assert_eq!(Delivery::new([], b"").delivery_id(), None);
    }

    #[test]
    fn requests_are_checked() {
        let r: IntegrationRequest =
            serde_json::from_value(serde_json::json!({"name": "hook", "template_id": 2})).unwrap();
        let f = r.check().unwrap();
        assert_eq!((f.auth_method.as_str(), f.searchable), ("", false));
        let r: IntegrationRequest = serde_json::from_value(
            serde_json::json!({"name": "hook", "template_id": 2, "auth_method": "magic"}),
        )
        .unwrap();
        assert!(r.check().unwrap_err().0.contains("auth_method"));
        let m: IntegrationMatcherRequest =
            serde_json::from_value(serde_json::json!({"match_type": "header", "key": "bad name"}))
                .unwrap();
        assert!(m.check().is_err());
        let v: IntegrationExtractValueRequest = serde_json::from_value(
            serde_json::json!({"key": "ref", "variable": "nonsense", "variable_type": "task"}),
        )
        .unwrap();
        assert!(v.check().unwrap_err().0.contains("task parameter"));
        let v: IntegrationExtractValueRequest = serde_json::from_value(
            serde_json::json!({"body_data_type": "string", "variable": "BODY"}),
        )
        .unwrap();
        assert_eq!(v.check().unwrap().variable_type, "environment");
    }
}
