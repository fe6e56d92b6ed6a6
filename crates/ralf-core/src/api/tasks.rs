//! Tasks on the wire: a run of a template, its parameters and its output.
//!
//! Semaphore 2.13+ keeps the Ansible and Terraform switches in `params`; the older top-level
//! `debug`, `dry_run`, `diff` and `limit` are still accepted, folded into `params` when a task
//! is created, and shown again at the top level of every answer so both readings agree.

use serde::{Deserialize, Serialize};

use crate::api::templates::{
    SurveyVarType, TemplateSettings, TemplateTaskParams, string_or_object,
};
use crate::validate::{self, Checked, invalid};
use crate::{TaskStatus, Timestamp};

impl TaskParams {
    /// These switches, with the template's defaults where a switch is unset here (off, or an
    /// empty list).
    pub fn with_defaults(mut self, template: &TemplateTaskParams) -> TaskParams {
        let flag = |own: &mut bool, default: Option<bool>| *own |= default.unwrap_or(false);
        flag(&mut self.debug, template.debug);
        flag(&mut self.dry_run, template.dry_run);
        flag(&mut self.diff, template.diff);
        flag(&mut self.skip_galaxy_install, template.skip_galaxy_install);
        flag(&mut self.plan, template.plan);
        flag(&mut self.destroy, template.destroy);
        flag(&mut self.auto_approve, template.auto_approve);
        flag(&mut self.upgrade, template.upgrade);
        let list = |own: &mut Vec<String>, default: &Option<Vec<String>>| {
            if own.is_empty() {
                own.extend(
                    default
                        .iter()
                        .flatten()
                        .filter(|s| !s.trim().is_empty())
                        .cloned(),
                );
            }
        };
        list(&mut self.limit, &template.limit);
        list(&mut self.tags, &template.tags);
        list(&mut self.skip_tags, &template.skip_tags);
        self
    }
}

/// The switches of one run. Ansible reads `debug` … `skip_galaxy_install`; Terraform and
/// OpenTofu read `plan` … `upgrade`. Stored as JSON in `tasks.params`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct TaskParams {
    pub debug: bool,
    pub dry_run: bool,
    pub diff: bool,
    /// Hosts or groups to limit the run to (`--limit`).
    pub limit: Vec<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub skip_galaxy_install: bool,
    pub plan: bool,
    pub destroy: bool,
    pub auto_approve: bool,
    pub upgrade: bool,
}

/// A task as the API shows it. The `tpl_*` fields and `user_name` describe the template and
/// the user who started it, as Semaphore's task lists do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Task {
    pub id: i64,
    pub template_id: i64,
    pub project_id: i64,
    pub status: TaskStatus,
    /// `params.debug`.
    pub debug: bool,
    /// `params.dry_run`.
    pub dry_run: bool,
    /// `params.diff`.
    pub diff: bool,
    /// Overrides the template's playbook when not empty.
    pub playbook: String,
    /// Extra variables and survey answers: a JSON object in a string.
    pub environment: String,
    /// Secret survey answers are used for the run only and never stored: always `""`.
    pub secret: String,
    /// `params.limit` as a comma list.
    pub limit: String,
    /// Extra command-line arguments: a JSON array of strings in a string.
    pub arguments: Option<String>,
    pub git_branch: Option<String>,
    pub user_id: Option<i64>,
    pub integration_id: Option<i64>,
    pub schedule_id: Option<i64>,
    pub created: Timestamp,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub message: String,
    pub commit_hash: Option<String>,
    pub commit_message: String,
    pub build_task_id: Option<i64>,
    pub version: Option<String>,
    pub inventory_id: Option<i64>,
    pub params: TaskParams,
    pub tpl_playbook: String,
    /// The template's name.
    pub tpl_alias: String,
    pub tpl_type: String,
    pub tpl_app: String,
    /// The name of the user who started the task.
    pub user_name: Option<String>,
}

/// `POST /api/project/{project_id}/tasks`. Either `template_id` or `template_name` names the
/// template; `template_id` wins when both are given. `null` is accepted for every field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskRequest {
    pub template_id: Option<i64>,
    pub template_name: Option<String>,
    /// Deprecated; the same as `params.debug`.
    pub debug: Option<bool>,
    /// Deprecated; the same as `params.dry_run`.
    pub dry_run: Option<bool>,
    /// Deprecated; the same as `params.diff`.
    pub diff: Option<bool>,
    pub playbook: Option<String>,
    /// A JSON object (extra variables and survey answers) in a string; the object itself is
    /// accepted too.
    #[serde(default, deserialize_with = "string_or_object")]
    #[schema(value_type = Option<String>)]
    pub environment: Option<String>,
    /// A JSON object of secret survey answers in a string (or the object); used for the run,
    /// never stored.
    #[serde(default, deserialize_with = "string_or_object")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<String>,
    /// Deprecated comma list, folded into `params.limit`.
    pub limit: Option<String>,
    pub git_branch: Option<String>,
    pub message: Option<String>,
    /// A JSON array of strings in a string; only when the template allows overriding them.
    pub arguments: Option<String>,
    pub inventory_id: Option<i64>,
    pub commit_hash: Option<String>,
    pub build_task_id: Option<i64>,
    pub params: Option<TaskParams>,
}

/// One line of a task's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct TaskOutput {
    pub task_id: i64,
    pub time: Timestamp,
    pub output: String,
}

/// `POST /api/project/{project_id}/tasks/{task_id}/stop`; the body may be empty.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct StopRequest {
    /// Stop at once instead of asking the running process to end.
    pub force: bool,
}

/// The template rules a new task is checked against.
#[derive(Debug, Clone, Copy)]
pub struct TaskRules<'a> {
    pub allow_override_args_in_task: bool,
    pub allow_override_branch_in_task: bool,
    /// The template's working directory, which a task's `playbook` is relative to (empty: the
    /// repository's root).
    pub working_directory: &'a str,
    pub survey_vars: &'a [SurveyRule<'a>],
}

/// One survey variable of a template, as far as checking answers needs it.
#[derive(Debug, Clone, Copy)]
pub struct SurveyRule<'a> {
    pub name: &'a str,
    /// `""` (string), `"int"`, `"enum"`, `"secret"` or `"text"`.
    pub kind: &'a str,
    pub required: bool,
    /// The allowed values of an `enum` variable.
    pub values: &'a [&'a str],
}

/// A task request checked against its template, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFields {
    pub playbook: String,
    pub environment: String,
    /// The secret answers, for the run only.
    pub secret: Option<String>,
    pub arguments: Option<String>,
    pub git_branch: Option<String>,
    pub message: String,
    pub commit_hash: Option<String>,
    pub params: TaskParams,
}

impl TaskRequest {
    /// `params` with the deprecated top-level switches folded in: a top-level `true` sets the
    /// switch, top-level `limit` entries are added to `params.limit` (each host once).
    pub fn merged_params(&self) -> TaskParams {
        let mut params = self.params.clone().unwrap_or_default();
        params.debug |= self.debug.unwrap_or(false);
        params.dry_run |= self.dry_run.unwrap_or(false);
        params.diff |= self.diff.unwrap_or(false);
        let mut limit = Vec::new();
        let top = self.limit.as_deref().unwrap_or_default().split(',');
        for host in params.limit.iter().map(String::as_str).chain(top) {
            let host = host.trim();
            if !host.is_empty() && !limit.iter().any(|h| h == host) {
                limit.push(host.to_string());
            }
        }
        params.limit = limit;
        params
    }

    /// Checks the request against the template's settings: its override flags and its survey.
    /// Survey variables not answered get their `default_value`, and the template's
    /// `task_params` fill the switches the task leaves unset.
    pub fn fields_for(&self, template: &TemplateSettings) -> Checked<TaskFields> {
        let with_defaults = self.with_survey_defaults(template)?;
        let mut fields = with_defaults.checked_against(template)?;
        fields.params = fields.params.with_defaults(&template.task_params);
        Ok(fields)
    }

    /// The request with the survey's default answers added to `environment` where it has none.
    fn with_survey_defaults(&self, template: &TemplateSettings) -> Checked<TaskRequest> {
        let mut request = self.clone();
        let defaults: Vec<_> = template
            .survey_vars
            .iter()
            .filter(|v| !v.name.trim().is_empty() && !v.default_value.is_empty())
            .collect();
        if defaults.is_empty() {
            return Ok(request);
        }
        let text = validate::json_object("environment", self.environment.as_deref().unwrap_or(""))?;
        let mut environment: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).unwrap_or_default();
        let secret: serde_json::Map<String, serde_json::Value> = self
            .secret
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        for var in defaults {
            let answered = |map: &serde_json::Map<String, serde_json::Value>| {
                map.get(&var.name)
                    .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
            };
            if !answered(&environment) && !answered(&secret) {
                environment.insert(
                    var.name.clone(),
                    serde_json::Value::String(var.default_value.clone()),
                );
            }
        }
        request.environment = Some(serde_json::Value::Object(environment).to_string());
        Ok(request)
    }

    fn checked_against(&self, template: &TemplateSettings) -> Checked<TaskFields> {
        let values: Vec<Vec<&str>> = template
            .survey_vars
            .iter()
            .map(|v| v.values.iter().map(|x| x.value.as_str()).collect())
            .collect();
        let survey: Vec<SurveyRule<'_>> = template
            .survey_vars
            .iter()
            .zip(&values)
            .map(|(var, values)| SurveyRule {
                name: &var.name,
                kind: survey_kind(var.kind),
                required: var.required,
                values,
            })
            .collect();
        self.fields(&TaskRules {
            allow_override_args_in_task: template.allow_override_args_in_task,
            allow_override_branch_in_task: template.allow_override_branch_in_task,
            working_directory: template.working_directory.as_deref().unwrap_or_default(),
            survey_vars: &survey,
        })
    }

    /// Checks the request against the template's rules.
    pub fn fields(&self, rules: &TaskRules<'_>) -> Checked<TaskFields> {
        let playbook = self.playbook.clone().unwrap_or_default();
        validate::inside_repository_from("playbook", rules.working_directory, &playbook)?;
        let environment =
            validate::json_object("environment", self.environment.as_deref().unwrap_or(""))?;
        let secret = match self.secret.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(validate::json_object("secret", s)?),
        };
        let (environment, secret) =
            move_secret_answers(rules.survey_vars, environment, secret.as_deref());
        let message = self.message.clone().unwrap_or_default();
        validate::long_text("message", &message)?;

        let arguments = match self.arguments.as_deref() {
            None => None,
            Some(text) => {
                let args = validate::json_string_array("arguments", text)?;
                match (args.is_empty(), rules.allow_override_args_in_task) {
                    (true, _) => None,
                    (false, true) => Some(serde_json::to_string(&args).unwrap_or_default()),
                    (false, false) => {
                        return invalid(
                            "arguments: the template does not allow overriding its arguments \
                             (allow_override_args_in_task is off)",
                        );
                    }
                }
            }
        };
        let git_branch = match self.git_branch.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(_) if !rules.allow_override_branch_in_task => {
                return invalid(
                    "git_branch: the template does not allow overriding its branch \
                     (allow_override_branch_in_task is off)",
                );
            }
            Some(branch) => {
                validate::short_text("git_branch", branch)?;
                Some(branch.to_string())
            }
        };
        let commit_hash = match self.commit_hash.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(hash) => {
                validate::short_text("commit_hash", hash)?;
                Some(hash.to_string())
            }
        };
        let params = self.merged_params();
        for (field, list) in [
            ("params.limit", &params.limit),
            ("params.tags", &params.tags),
            ("params.skip_tags", &params.skip_tags),
        ] {
            validate::long_text(field, &list.join(","))?;
        }
        check_survey(rules.survey_vars, &environment, secret.as_deref())?;
        Ok(TaskFields {
            playbook,
            environment,
            secret,
            arguments,
            git_branch,
            message,
            commit_hash,
            params,
        })
    }
}

/// Takes the answers to secret survey variables out of `environment` (clients may send them
/// there rather than in `secret`) and adds them to the secret answers, where an answer given in
/// `secret` wins. Both are JSON objects already; `environment` is rewritten only when it held
/// a secret answer.
fn move_secret_answers(
    vars: &[SurveyRule<'_>],
    environment: String,
    secret: Option<&str>,
) -> (String, Option<String>) {
    use serde_json::{Map, Value};
    let mut env: Map<String, Value> = serde_json::from_str(&environment).unwrap_or_default();
    let moved: Map<String, Value> = vars
        .iter()
        .filter(|v| v.kind == "secret")
        .filter_map(|v| env.remove_entry(v.name))
        .collect();
    if moved.is_empty() {
        return (environment, secret.map(str::to_string));
    }
    let mut answers = moved;
    if let Some(given) = secret {
        let given: Map<String, Value> = serde_json::from_str(given).unwrap_or_default();
        answers.extend(given);
    }
    (
        Value::Object(env).to_string(),
        Some(Value::Object(answers).to_string()),
    )
}

/// The wire name of a survey variable type, as [`SurveyRule::kind`] has it.
pub fn survey_kind(kind: SurveyVarType) -> &'static str {
    match kind {
        SurveyVarType::String => "",
        SurveyVarType::Int => "int",
        SurveyVarType::Enum => "enum",
        SurveyVarType::Secret => "secret",
        SurveyVarType::Text => "text",
    }
}

/// Checks survey answers: every required variable is answered, `int` answers are whole
/// numbers, `enum` answers are among the allowed values. Answers travel in `environment`
/// (secret ones may also come in `secret`); both are JSON objects already.
pub fn check_survey(
    vars: &[SurveyRule<'_>],
    environment: &str,
    secret: Option<&str>,
) -> Checked<()> {
    use serde_json::{Map, Value};
    let parse = |text: &str| serde_json::from_str::<Map<String, Value>>(text).unwrap_or_default();
    let environment = parse(environment);
    let secret = secret.map(parse).unwrap_or_default();
    for var in vars {
        let answer = match var.kind {
            "secret" => secret.get(var.name).or_else(|| environment.get(var.name)),
            _ => environment.get(var.name),
        };
        let text = match answer {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            Some(_) => {
                return invalid(format!(
                    "survey variable {}: the answer must be a string or a number",
                    var.name
                ));
            }
        };
        let Some(text) = text else {
            if var.required {
                return invalid(format!("survey variable {} is required", var.name));
            }
            continue;
        };
        match var.kind {
            "int" if text.trim().parse::<i64>().is_err() => {
                return invalid(format!(
                    "survey variable {} must be a whole number, not {text:?}",
                    var.name
                ));
            }
            "enum" if !var.values.contains(&text.as_str()) => {
                return invalid(format!(
                    "survey variable {} must be one of {}, not {text:?}",
                    var.name,
                    var.values
                        .iter()
                        .map(|v| format!("{v:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_RULES: TaskRules<'static> = TaskRules {
        allow_override_args_in_task: false,
        allow_override_branch_in_task: false,
        working_directory: "",
        survey_vars: &[],
    };

    fn request(json: serde_json::Value) -> TaskRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn top_level_limit_and_flags_fold_into_params() {
        let r = request(serde_json::json!({
            "template_id": 1, "debug": true, "limit": "web1, db1,,web1",
            "params": {"limit": ["db1", "cache"], "tags": ["x"]}
        }));
        let p = r.merged_params();
        assert!(p.debug && !p.dry_run);
        assert_eq!(p.limit, ["db1", "cache", "web1"]);
        assert_eq!(p.tags, ["x"]);
    }

    #[test]
    fn arguments_and_branch_need_the_template_flags() {
        let r = request(serde_json::json!({"arguments": "[\"-v\"]"}));
        assert!(
            r.fields(&NO_RULES)
                .unwrap_err()
                .0
                .contains("allow_override_args_in_task")
        );
        let allowed = TaskRules {
            allow_override_args_in_task: true,
            ..NO_RULES
        };
        assert_eq!(
            r.fields(&allowed).unwrap().arguments.as_deref(),
            Some("[\"-v\"]")
        );
        let r = request(serde_json::json!({"arguments": "[]", "git_branch": ""}));
        assert_eq!(r.fields(&NO_RULES).unwrap().arguments, None);
        let r = request(serde_json::json!({"git_branch": "dev"}));
        assert!(
            r.fields(&NO_RULES)
                .unwrap_err()
                .0
                .contains("allow_override_branch_in_task")
        );
        let r = request(serde_json::json!({"arguments": "-v"}));
        assert!(r.fields(&allowed).unwrap_err().0.contains("JSON array"));
    }

    #[test]
    fn a_tasks_playbook_stays_inside_the_repository() {
        let playbook = |p: &str, wd: &'static str| {
            let rules = TaskRules {
                working_directory: wd,
                ..NO_RULES
            };
            request(serde_json::json!({"playbook": p}))
                .fields(&rules)
                .map(|f| f.playbook)
                .map_err(|e| e.0)
        };
        assert_eq!(playbook("other.yml", "").unwrap(), "other.yml");
        assert_eq!(playbook("../site.yml", "ansible").unwrap(), "../site.yml");
        assert_eq!(
            playbook("/etc/passwd", "").unwrap_err(),
            "playbook must be relative to the repository, not an absolute path"
        );
        assert_eq!(
            playbook("../../../../initial-admin-password", "ansible").unwrap_err(),
            "playbook must stay inside the repository"
        );
    }

    #[test]
    fn survey_answers_are_checked() {
        let vars = [
            SurveyRule {
                name: "count",
                kind: "int",
                required: true,
                values: &[],
            },
            SurveyRule {
                name: "color",
                kind: "enum",
                required: false,
                values: &["red", "blue"],
            },
            SurveyRule {
                name: "token",
                kind: "secret",
                required: true,
                values: &[],
            },
        ];
        let check = |env: &str, secret: Option<&str>| check_survey(&vars, env, secret);
        assert!(check(r#"{"count": 3}"#, Some(r#"{"token":"t"}"#)).is_ok());
        assert!(check(r#"{"count": "3", "color": "red", "token": "t"}"#, None).is_ok());
        let e = check(r#"{"token": "t"}"#, None).unwrap_err().0;
        assert_eq!(e, "survey variable count is required");
        let e = check(r#"{"count": "three", "token": "t"}"#, None)
            .unwrap_err()
            .0;
        assert!(
            e.starts_with("survey variable count must be a whole number"),
            "{e}"
        );
        let e = check(r#"{"count": 1, "color": "green", "token": "t"}"#, None)
            .unwrap_err()
            .0;
        assert!(e.starts_with("survey variable color must be one of"), "{e}");
        let e = check(r#"{"count": 1}"#, Some("{}")).unwrap_err().0;
        assert_eq!(e, "survey variable token is required");
    }

    #[test]
    fn secret_answers_sent_in_environment_become_secret() {
        let vars = [SurveyRule {
            name: "token",
            kind: "secret",
            required: true,
            values: &[],
        }];
        let rules = TaskRules {
            survey_vars: &vars,
            ..NO_RULES
        };
        let r = request(serde_json::json!({"environment": r#"{"token": "s3cret", "x": 1}"#}));
        let fields = r.fields(&rules).unwrap();
        assert!(
            !fields.environment.contains("s3cret"),
            "{}",
            fields.environment
        );
        assert!(fields.environment.contains("\"x\""));
        assert_eq!(fields.secret.as_deref(), Some(r#"{"token":"s3cret"}"#));

        let r = request(serde_json::json!({
            "environment": r#"{"token": "old"}"#, "secret": r#"{"token": "new", "y": "z"}"#
        }));
        let secret = r.fields(&rules).unwrap().secret.unwrap();
        assert_eq!(secret, r#"{"token":"new","y":"z"}"#);

        let r = request(serde_json::json!({"environment": r#"{ "x": 1 }"#}));
        assert_eq!(
            r.fields(&rules).unwrap_err().0,
            "survey variable token is required"
        );
        let fields = request(serde_json::json!({"environment": r#"{ "x": 1 }"#}))
            .fields(&NO_RULES)
            .unwrap();
        assert_eq!(fields.environment, r#"{ "x": 1 }"#, "left as sent");
    }
}
