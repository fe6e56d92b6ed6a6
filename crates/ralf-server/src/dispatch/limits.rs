//! The limits on active tasks and who may take which: the server's `max_parallel_tasks`, each
//! project's, one active task per template unless it allows parallel runs, a runner's own
//! `max_parallel_tasks`, and runner tags. One [`pick`] serves the server's own dispatcher and
//! every runner that asks for work, inside the store's claim transaction, so the limits hold
//! across the whole cluster.

use std::collections::HashMap;

use ralf_store::dispatch::{ActiveTask, QueuedTask};

/// Who asks for tasks, and what it may take.
#[derive(Debug, Clone)]
pub enum Taker<'a> {
    /// This server's own executor: tasks whose template requires no runner tags, unless
    /// every task is meant for runners.
    Server { use_remote_runner: bool },
    /// A remote runner: tasks of its project (or any project, for a global runner) whose
    /// required tags it carries, up to its own `max_parallel_tasks` (0 = no cap).
    Runner {
        id: i64,
        project_id: Option<i64>,
        tags: &'a [String],
        max_parallel_tasks: usize,
    },
}

impl Taker<'_> {
    fn may_take(&self, task: &QueuedTask) -> bool {
        let required = task.required_tags();
        match self {
            Taker::Server { use_remote_runner } => !use_remote_runner && required.is_empty(),
            Taker::Runner {
                project_id, tags, ..
            } => {
                project_id.is_none_or(|p| p == task.project_id)
                    && required.iter().all(|t| tags.contains(t))
            }
        }
    }
}

/// The waiting tasks `taker` starts now, oldest first, given what is active: a task held back
/// by its template or project does not hold back the tasks behind it.
pub fn pick(
    taker: &Taker<'_>,
    global_max: usize,
    queued: &[QueuedTask],
    active: &[ActiveTask],
) -> Vec<i64> {
    let mut slots = Slots::default();
    let mut own = 0;
    for task in active {
        slots.take(task.project_id, task.template_id);
        if let Taker::Runner { id, .. } = taker
            && task.runner_id == Some(*id)
        {
            own += 1;
        }
    }
    let own_max = match taker {
        Taker::Runner {
            max_parallel_tasks, ..
        } => *max_parallel_tasks,
        Taker::Server { .. } => 0,
    };
    let mut picked = Vec::new();
    for task in queued {
        if (global_max > 0 && slots.total >= global_max) || (own_max > 0 && own >= own_max) {
            break;
        }
        let project_full = task.project_max_parallel_tasks > 0
            && slots.in_project(task.project_id) >= task.project_max_parallel_tasks as usize;
        let template_busy = !task.allow_parallel_tasks && slots.in_template(task.template_id) > 0;
        if project_full || template_busy || !taker.may_take(task) {
            continue;
        }
        slots.take(task.project_id, task.template_id);
        own += 1;
        picked.push(task.id);
    }
    picked
}

/// Who holds slots now: counts for the limits.
#[derive(Default)]
struct Slots {
    total: usize,
    projects: HashMap<i64, usize>,
    templates: HashMap<i64, usize>,
}

impl Slots {
    fn take(&mut self, project_id: i64, template_id: i64) {
        self.total += 1;
        *self.projects.entry(project_id).or_default() += 1;
        *self.templates.entry(template_id).or_default() += 1;
    }

    fn in_project(&self, project_id: i64) -> usize {
        self.projects.get(&project_id).copied().unwrap_or(0)
    }

    fn in_template(&self, template_id: i64) -> usize {
        self.templates.get(&template_id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: i64, template_id: i64, tags: &str) -> QueuedTask {
        QueuedTask {
            id,
            project_id: 1,
            template_id,
            allow_parallel_tasks: false,
            project_max_parallel_tasks: 0,
            runner_tags: tags.into(),
        }
    }

    const SERVER: Taker<'static> = Taker::Server {
        use_remote_runner: false,
    };

    #[test]
    fn one_task_per_template_and_the_global_cap() {
        let q = [
            queued(1, 10, "[]"),
            queued(2, 10, "[]"),
            queued(3, 11, "[]"),
        ];
        assert_eq!(pick(&SERVER, 0, &q, &[]), vec![1, 3]);
        assert_eq!(pick(&SERVER, 1, &q, &[]), vec![1]);
        let busy = [ActiveTask {
            id: 9,
            project_id: 1,
            template_id: 10,
            runner_id: Some(4),
        }];
        assert_eq!(pick(&SERVER, 0, &q, &busy), vec![3]);
    }

    #[test]
    fn tagged_tasks_go_to_runners_that_carry_the_tags() {
        let q = [queued(1, 10, r#"["gpu"]"#), queued(2, 11, "[]")];
        assert_eq!(pick(&SERVER, 0, &q, &[]), vec![2]);
        let tags = ["gpu".to_string(), "eu".to_string()];
        let runner = Taker::Runner {
            id: 4,
            project_id: None,
            tags: &tags,
            max_parallel_tasks: 0,
        };
        assert_eq!(pick(&runner, 0, &q, &[]), vec![1, 2]);
        let untagged = Taker::Runner {
            id: 5,
            project_id: None,
            tags: &[],
            max_parallel_tasks: 1,
        };
        assert_eq!(pick(&untagged, 0, &q, &[]), vec![2]);
        let elsewhere = Taker::Runner {
            id: 6,
            project_id: Some(2),
            tags: &tags,
            max_parallel_tasks: 0,
        };
        assert!(pick(&elsewhere, 0, &q, &[]).is_empty());
        let remote_only = Taker::Server {
            use_remote_runner: true,
        };
        assert!(pick(&remote_only, 0, &q, &[]).is_empty());
    }

    #[test]
    fn a_runner_keeps_to_its_own_cap() {
        let mut a = queued(1, 10, "[]");
        a.allow_parallel_tasks = true;
        let mut b = queued(2, 10, "[]");
        b.allow_parallel_tasks = true;
        let runner = Taker::Runner {
            id: 4,
            project_id: None,
            tags: &[],
            max_parallel_tasks: 2,
        };
        let mine = ActiveTask {
            id: 9,
            project_id: 1,
            template_id: 12,
            runner_id: Some(4),
        };
        assert_eq!(pick(&runner, 0, &[a, b], &[mine]), vec![1]);
    }
}
