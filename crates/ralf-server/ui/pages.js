// The task pages: templates (search, views, pinned quick actions), the run form with the
// survey, the task with its live log, the task history, and the user's API tokens.

import { get, getCounted, post, del, query, liveSocket, ApiError } from './api.js';
import { h, fill, clear, fmtTime, duration, badge, notice, isActive, TASK_STATUSES } from './dom.js';
import { session, can, PERM } from './session.js';
import { navigate, onLeave } from './app.js';
import { formFor } from './resources.js';
import { LogView } from './log.js';

// ---- templates ---------------------------------------------------------------------------

/** How many of a task's last lines its page streams at first. */
const LIVE_TAIL = 2000;

const pinKey = (pid) => `ui.pinned.${pid}`;

async function pinned(pid) {
  const options = await get('/user/options').catch(() => ({}));
  return (options[pinKey(pid)] || '').split(',').filter(Boolean).map(Number);
}

/** Starts a template at once when it asks nothing; otherwise opens its run form. */
async function quickRun(pid, template) {
  if ((template.survey_vars || []).length) {
    navigate(`/project/${pid}/templates/${template.id}/run`);
    return;
  }
  const task = await post(`/project/${pid}/tasks`, { template_id: template.id });
  navigate(`/project/${pid}/tasks/${task.id}`);
}

export async function templatesPage(ctx) {
  const { pid } = ctx;
  const [templates, views, pins] = await Promise.all([
    get(`/project/${pid}/templates`), get(`/project/${pid}/views`).catch(() => []), pinned(pid)]);
  let view = ctx.query.get('view') || '';
  let pinSet = new Set(pins);
  const search = h('input', { type: 'search', placeholder: 'Search templates', 'aria-label': 'Search templates', value: ctx.query.get('q') || '' });
  const tabs = h('div', { class: 'tabs', role: 'group', 'aria-label': 'Views' });
  const quick = h('section', { class: 'quick', 'aria-label': 'Quick actions' });
  const list = h('div', { class: 'table-wrap' });
  const error = h('div', { 'aria-live': 'assertive' });
  const mayRun = can(PERM.run);
  const mayEdit = can(PERM.resources);

  const savePins = async () => {
    await post('/user/options', { key: pinKey(pid), value: [...pinSet].join(',') });
  };
  const run = (t) => quickRun(pid, t).catch((e) => fill(error, notice('error', e.message)));
  const draw = () => {
    fill(tabs, [{ id: '', title: 'All' }, ...views].map((v) => h('button', {
      type: 'button', 'aria-pressed': String(String(v.id) === view),
      onclick: () => { view = String(v.id); draw(); },
    }, v.title)));
    const pinnedTemplates = templates.filter((t) => pinSet.has(t.id));
    fill(quick, pinnedTemplates.length && mayRun
      ? [h('h2', {}, 'Quick actions'), h('div', { class: 'buttons' }, pinnedTemplates.map((t) =>
        h('button', { type: 'button', class: 'primary', onclick: () => run(t) }, t.name)))]
      : null);
    const q = search.value.toLowerCase();
    const shown = templates.filter((t) => (!view || String(t.view_id) === view)
      && (!q || `${t.name} ${t.description} ${t.app} ${t.playbook}`.toLowerCase().includes(q)));
    fill(list, shown.length ? h('table', {},
      h('thead', {}, h('tr', {}, ['Template', 'App', 'Last task', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, shown.map((t) => h('tr', {},
        h('th', { scope: 'row' }, mayRun ? h('a', { href: `/project/${pid}/templates/${t.id}/run` }, t.name) : t.name,
          t.description ? h('div', { class: 'muted small' }, t.description) : null),
        h('td', {}, t.app),
        h('td', {}, t.last_task ? h('a', { href: `/project/${pid}/tasks/${t.last_task.id}` }, badge(t.last_task.status), ` #${t.last_task.id}`) : '—'),
        h('td', { class: 'row-actions' },
          mayRun ? h('button', { type: 'button', class: 'primary', onclick: () => run(t), 'aria-label': `Run ${t.name}` }, 'Run') : null,
          h('button', {
            type: 'button', 'aria-pressed': String(pinSet.has(t.id)), 'aria-label': `Pin ${t.name} to the quick actions`,
            onclick: async () => {
              if (pinSet.has(t.id)) pinSet.delete(t.id); else pinSet.add(t.id);
              try { await savePins(); } catch (e) { fill(error, notice('error', e.message)); }
              draw();
            },
          }, pinSet.has(t.id) ? '★ Pinned' : '☆ Pin'),
          h('a', { href: `/project/${pid}/history?template=${t.id}` }, 'History'),
          mayEdit ? h('a', { href: `/project/${pid}/templates/${t.id}/edit` }, 'Edit') : null)))))
      : h('p', { class: 'muted' }, templates.length ? 'No template matches.' : 'No template yet.'));
  };
  search.addEventListener('input', draw);
  ctx.main.append(h('div', { class: 'head' }, h('h1', {}, 'Templates'),
    mayEdit ? h('a', { href: `/project/${pid}/templates/new`, class: 'button primary' }, 'New template') : null),
  error, quick, h('div', { class: 'filters' }, search, views.length ? tabs : null), list);
  draw();
}

// ---- run ---------------------------------------------------------------------------------

export async function runPage(ctx) {
  const { pid } = ctx;
  const template = await get(`/project/${pid}/templates/${ctx.params.tid}`);
  ctx.main.append(h('p', { class: 'crumbs' }, h('a', { href: `/project/${pid}/templates` }, 'Templates')),
    h('h1', {}, `Run ${template.name}`),
    template.description ? h('p', {}, template.description) : null);
  if (!can(PERM.run)) {
    ctx.main.append(notice('info', 'Your role may not run tasks in this project.'));
    return;
  }
  const kinds = { '': 'text', int: 'number', enum: 'select', secret: 'password', text: 'textarea' };
  const fields = (template.survey_vars || []).map((v) => ({
    name: `survey.${v.name}`, label: `${v.title || v.name}${v.required ? ' (required)' : ''}`,
    kind: kinds[v.type || ''] || 'text', help: v.description || null, required: v.required,
    options: v.type === 'enum' ? [...(v.required ? [] : [['', '—']]), ...(v.values || []).map((x) => [x.value, x.name || x.value])] : null,
  }));
  const item = { survey: Object.fromEntries((template.survey_vars || []).map((v) => [v.name, v.default_value || ''])) };
  fields.push({ name: 'message', label: 'Message (why this run)' });
  if (template.allow_override_branch_in_task) fields.push({ name: 'git_branch', label: 'Branch', help: `Default: ${template.git_branch || 'the repository\'s'}` });
  if (template.allow_override_args_in_task) fields.push({ name: 'arguments', label: 'Arguments (a JSON array of strings)', help: template.arguments ? `Default: ${template.arguments}` : null });
  if (template.app === 'ansible') {
    fields.push({ name: 'params.limit', label: 'Limit to hosts (comma-separated)', kind: 'tags' },
      { name: 'params.dry_run', label: 'Dry run (--check)', kind: 'checkbox' },
      { name: 'params.diff', label: 'Show differences (--diff)', kind: 'checkbox' },
      { name: 'params.debug', label: 'Verbose (-vvvv)', kind: 'checkbox' });
  }
  if (['terraform', 'tofu'].includes(template.app)) {
    fields.push({ name: 'params.plan', label: 'Plan only', kind: 'checkbox' },
      { name: 'params.destroy', label: 'Destroy', kind: 'checkbox' },
      { name: 'params.auto_approve', label: 'Apply without asking for confirmation', kind: 'checkbox' });
  }
  ctx.main.append(await formFor({
    fields, item, pid, submitLabel: 'Run',
    save: (v) => {
      const answers = Object.fromEntries(Object.entries(v.survey || {}).filter(([, x]) => x !== ''));
      const body = { template_id: template.id, message: v.message || '', environment: JSON.stringify(answers) };
      if (v.git_branch) body.git_branch = v.git_branch;
      if (v.arguments) body.arguments = v.arguments;
      if (v.params) body.params = v.params;
      return post(`/project/${pid}/tasks`, body);
    },
    done: (task) => navigate(`/project/${pid}/tasks/${task.id}`),
  }));
}

// ---- one task ----------------------------------------------------------------------------

export async function taskPage(ctx) {
  const { pid } = ctx;
  const tid = Number(ctx.params.tid);
  let task = await get(`/project/${pid}/tasks/${tid}`);
  const status = h('span', { 'aria-live': 'polite' });
  const facts = h('dl', { class: 'facts' });
  const actions = h('div', { class: 'actions' });
  const plan = h('div', { 'aria-live': 'polite' });
  const error = h('div', { 'aria-live': 'assertive' });
  const log = new LogView({
    download: `/api/project/${pid}/tasks/${tid}/raw_output`,
    label: `Output of task ${tid}`,
    fetchLines: (offset, limit) => getCounted(`/project/${pid}/tasks/${tid}/output?offset=${offset}&limit=${limit}`),
  });
  const act = (path, body) => async () => {
    clear(error);
    try {
      await post(`/project/${pid}/tasks/${tid}/${path}`, body);
      task = await get(`/project/${pid}/tasks/${tid}`);
      draw();
    } catch (e) {
      error.append(notice('error', e.message));
    }
  };
  const draw = () => {
    fill(status, badge(task.status));
    fill(facts,
      h('dt', {}, 'Template'), h('dd', {}, h('a', { href: `/project/${pid}/templates/${task.template_id}/run` }, task.tpl_alias || `#${task.template_id}`)),
      h('dt', {}, 'Started by'), h('dd', {}, task.user_name || (task.schedule_id ? 'a schedule' : task.integration_id ? 'an integration' : '—')),
      h('dt', {}, 'Created'), h('dd', {}, fmtTime(task.created)),
      h('dt', {}, 'Ran'), h('dd', {}, task.start ? `${fmtTime(task.start)} · ${duration(task.start, task.end)}` : 'not yet'),
      h('dt', {}, 'Commit'), h('dd', {}, task.commit_hash ? h('code', {}, task.commit_hash.slice(0, 12)) : '—', task.commit_message ? ` ${task.commit_message}` : ''),
      task.git_branch ? [h('dt', {}, 'Branch'), h('dd', {}, task.git_branch)] : null,
      task.message ? [h('dt', {}, 'Message'), h('dd', {}, task.message)] : null,
      task.version ? [h('dt', {}, 'Version'), h('dd', {}, task.version)] : null);
    const mayRun = can(PERM.run);
    fill(actions,
      mayRun && isActive(task.status) && task.status !== 'stopping' ? h('button', { type: 'button', class: 'danger', onclick: act('stop', { force: false }) }, 'Stop') : null,
      mayRun && task.status === 'stopping' ? h('button', { type: 'button', class: 'danger', onclick: act('stop', { force: true }) }, 'Force stop') : null,
      mayRun && !isActive(task.status) ? h('a', { href: `/project/${pid}/templates/${task.template_id}/run`, class: 'button' }, 'Run again') : null);
    fill(plan, task.status === 'waiting_confirmation' ? h('div', { class: 'card confirm', role: 'region', 'aria-label': 'Plan waiting for confirmation' },
      h('h2', {}, 'The plan is waiting for confirmation'),
      h('p', {}, 'The plan is the end of the output below. Apply it, or reject it and end the task.'),
      mayRun ? h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'primary', onclick: act('confirm') }, 'Confirm and apply'),
        h('button', { type: 'button', class: 'danger', onclick: act('reject') }, 'Reject')) : notice('info', 'Your role may not confirm plans.')) : null);
  };
  ctx.main.append(h('p', { class: 'crumbs' }, h('a', { href: `/project/${pid}/history` }, 'Task history')),
    h('div', { class: 'head' }, h('h1', {}, `Task #${tid}`), status), facts, actions, error, plan, log.el);
  draw();
  const refresh = async (next) => {
    if (next === task.status) return;
    try { task = await get(`/project/${pid}/tasks/${tid}`); } catch { task.status = next; }
    draw();
  };
  // The stream starts near the end (the lines before are read when scrolled to), and after a
  // dropped connection from the line after the last one it sent.
  const { total } = await getCounted(`/project/${pid}/tasks/${tid}/output?limit=0`);
  log.setTotal(total);
  log.streamed = Math.max(0, total - LIVE_TAIL);
  const stream = liveSocket(() => `/project/${pid}/tasks/${tid}/stream?from=${log.streamed}`, (m) => {
    if (m.type === 'line') log.put(m.index, m.time, m.output);
    else if (m.type === 'status' || m.type === 'end') refresh(m.status);
  });
  onLeave(() => stream.close());
}

// ---- history -----------------------------------------------------------------------------

const PAGE = 50;

/** A date input's day (local time) as the UTC instant it starts at; `next` for the day after. */
function dayStart(day, next = false) {
  if (!day) return '';
  const d = new Date(`${day}T00:00:00`);
  if (next) d.setDate(d.getDate() + 1);
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export async function historyPage(ctx) {
  const { pid } = ctx;
  const q = ctx.query;
  const [templates, members] = await Promise.all([
    get(`/project/${pid}/templates`), get(`/project/${pid}/users`).catch(() => [])]);
  const names = Object.fromEntries(templates.map((t) => [t.id, t.name]));
  const filters = {
    status: q.get('status') || '', template: q.get('template') || '', user: q.get('user') || '',
    from: q.get('from') || '', to: q.get('to') || '',
  };
  const params = {
    status: filters.status, template_id: filters.template, user_id: filters.user,
    created_from: dayStart(filters.from), created_until: dayStart(filters.to, true),
    before_id: q.get('before') || '', limit: PAGE,
  };
  const tasks = await get(`/project/${pid}/tasks${query(params)}`);
  const form = h('form', { class: 'filters', onsubmit: (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    navigate(`/project/${pid}/history${query(data)}`);
  } },
  h('label', {}, 'Status ', h('select', { name: 'status' }, h('option', { value: '' }, 'any'),
    TASK_STATUSES.map((st) => h('option', { value: st, selected: st === filters.status }, st.replace(/_/g, ' '))))),
  h('label', {}, 'Template ', h('select', { name: 'template' }, h('option', { value: '' }, 'any'),
    templates.map((t) => h('option', { value: t.id, selected: String(t.id) === filters.template }, t.name)))),
  h('label', {}, 'Started by ', h('select', { name: 'user' }, h('option', { value: '' }, 'anyone'),
    members.map((u) => h('option', { value: u.id, selected: String(u.id) === filters.user }, u.name || u.username)))),
  h('label', {}, 'From ', h('input', { type: 'date', name: 'from', value: filters.from })),
  h('label', {}, 'To ', h('input', { type: 'date', name: 'to', value: filters.to })),
  h('button', { type: 'submit' }, 'Filter'));
  const older = tasks.length === PAGE
    ? h('a', { class: 'button', href: `/project/${pid}/history${query({ ...filters, before: tasks[tasks.length - 1].id })}` }, 'Older →')
    : null;
  const newest = q.get('before') ? h('a', { class: 'button', href: `/project/${pid}/history${query(filters)}` }, '← Newest') : null;
  ctx.main.append(h('h1', {}, 'Task history'), form,
    tasks.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Task', 'Template', 'Status', 'By', 'Created', 'Took'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, tasks.map((t) => h('tr', {},
        h('th', { scope: 'row' }, h('a', { href: `/project/${pid}/tasks/${t.id}` }, `#${t.id}`)),
        h('td', {}, names[t.template_id] || t.tpl_alias || `#${t.template_id}`),
        h('td', {}, badge(t.status)),
        h('td', {}, t.user_name || (t.schedule_id ? 'schedule' : '—')),
        h('td', {}, fmtTime(t.created)),
        h('td', {}, duration(t.start, t.end)))))))
      : h('p', { class: 'muted' }, 'No task matches.'),
    h('nav', { class: 'pager', 'aria-label': 'Pages' }, newest, older));
}

// ---- tokens ------------------------------------------------------------------------------

export async function tokensPage(ctx) {
  const tokens = await get('/user/tokens');
  const shown = h('div', { 'aria-live': 'polite' });
  ctx.main.append(h('h1', {}, 'API tokens'),
    h('p', {}, 'A token lets a program use the API as you: send it as ', h('code', {}, 'Authorization: Bearer <token>'), '.'),
    shown,
    tokens.length ? h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, ['Name', 'Created', 'State', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, tokens.map((t) => h('tr', {},
        h('th', { scope: 'row' }, t.name || '(no name)'), h('td', {}, fmtTime(t.created)), h('td', {}, t.expired ? 'expired' : 'active'),
        h('td', {}, t.expired ? null : h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirm(`Expire the token ${t.name || ''}? Programs using it stop working.`)) return;
          await del(`/user/tokens/${encodeURIComponent(t.id)}`);
          navigate('/tokens', true);
        } }, 'Expire')))))))
      : h('p', { class: 'muted' }, 'You have no token.'),
    h('h2', {}, 'New token'),
    await formFor({
      fields: [{ name: 'name', label: 'Name (what it is for)' }], submitLabel: 'Create token',
      save: (v) => post('/user/tokens', v),
      done: (t) => {
        fill(shown, h('div', { class: 'card' }, h('p', {}, 'Copy the token now; it is not shown again:'),
          h('p', {}, h('code', { class: 'secret-once' }, t.id))));
      },
    }));
}
