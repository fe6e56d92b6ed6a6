// The resource pages, all from one generic list / create / edit / delete view driven by a
// description of each resource's fields. The API validates; its message is shown next to the
// field it names. Secrets are write-only: their fields start empty and are never filled.

import { get, post, put, del } from './api.js';
import { h, fill, clear, notice, fmtTime } from './dom.js';
import { session, can, PERM } from './session.js';
import { navigate } from './app.js';

const refList = (path, label = (x) => x.name) => async (pid) =>
  (await get(path(pid))).map((x) => [x.id, label(x)]);
const projectRef = (what, label) => refList((pid) => `/project/${pid}/${what}`, label);

/** Descriptions of the resources. `scope`: project (under /project/{id}) or admin. */
export const RESOURCES = {
  keys: {
    scope: 'project', title: 'Keys', one: 'key', perm: PERM.resources,
    path: (pid) => `/project/${pid}/keys`,
    columns: [['name', 'Name'], ['type', 'Type']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', kind: 'select', options: [['none', 'None'], ['ssh', 'SSH key'], ['login_password', 'Login and password']] },
      { name: 'login_password.login', label: 'Login', when: (v) => v.type === 'login_password' },
      { name: 'login_password.password', label: 'Password', kind: 'password', secret: true, when: (v) => v.type === 'login_password' },
      { name: 'ssh.login', label: 'SSH login', when: (v) => v.type === 'ssh' },
      { name: 'ssh.private_key', label: 'Private key', kind: 'textarea', secret: true, when: (v) => v.type === 'ssh' },
      { name: 'ssh.passphrase', label: 'Passphrase', kind: 'password', secret: true, when: (v) => v.type === 'ssh' },
    ],
    // An edit keeps the stored secret unless a new one is typed.
    body: (v, item) => ({ ...v, override_secret: !item || !!(v.ssh && (v.ssh.private_key || v.ssh.passphrase)) || !!(v.login_password && v.login_password.password) }),
  },
  repositories: {
    scope: 'project', title: 'Repositories', one: 'repository', perm: PERM.resources,
    path: (pid) => `/project/${pid}/repositories`,
    columns: [['name', 'Name'], ['git_url', 'URL'], ['git_branch', 'Branch']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'git_url', label: 'Git URL', required: true, help: 'https://…, ssh://…, git@host:path or a local path' },
      { name: 'git_branch', label: 'Branch', required: true },
      { name: 'ssh_key_id', label: 'Access key', kind: 'select', ref: projectRef('keys'), nullable: true },
    ],
  },
  inventory: {
    scope: 'project', title: 'Inventories', one: 'inventory', perm: PERM.resources,
    path: (pid) => `/project/${pid}/inventory`,
    columns: [['name', 'Name'], ['type', 'Type']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'type', label: 'Type', kind: 'select', options: ['static', 'static-yaml', 'file', 'terraform-workspace', 'tofu-workspace'] },
      { name: 'inventory', label: 'Inventory (hosts, YAML, a file path or a workspace)', kind: 'textarea' },
      { name: 'ssh_key_id', label: 'SSH key', kind: 'select', ref: projectRef('keys'), nullable: true },
      { name: 'become_key_id', label: 'Become key', kind: 'select', ref: projectRef('keys'), nullable: true },
      { name: 'repository_id', label: 'Repository (for a file inventory)', kind: 'select', ref: projectRef('repositories'), nullable: true },
    ],
  },
  environment: {
    scope: 'project', title: 'Environments', one: 'environment', perm: PERM.resources,
    path: (pid) => `/project/${pid}/environment`,
    columns: [['name', 'Name']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'json', label: 'Extra variables (a JSON object)', kind: 'textarea', empty: '{}' },
      { name: 'env', label: 'Environment variables (a JSON object)', kind: 'textarea', empty: '{}' },
      { name: 'secrets', label: 'Secrets (write-only: their values are never shown)', kind: 'secrets' },
    ],
  },
  schedules: {
    scope: 'project', title: 'Schedules', one: 'schedule', perm: PERM.resources,
    path: (pid) => `/project/${pid}/schedules`,
    columns: [['name', 'Name'], ['tpl_name', 'Template'], ['cron_format', 'Cron'], ['active', 'Active'], ['next_run', 'Next run']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'template_id', label: 'Template', kind: 'select', ref: projectRef('templates'), required: true },
      { name: 'cron_format', label: 'Cron (minute hour day month weekday)', required: true },
      { name: 'active', label: 'Active', kind: 'checkbox' },
    ],
  },
  views: {
    scope: 'project', title: 'Views', one: 'view', perm: PERM.resources,
    path: (pid) => `/project/${pid}/views`,
    columns: [['title', 'Title'], ['position', 'Position']],
    fields: [
      { name: 'title', label: 'Title', required: true },
      { name: 'position', label: 'Position', kind: 'number' },
    ],
  },
  runners: {
    scope: 'both', title: 'Runners', one: 'runner', perm: PERM.resources,
    path: (pid) => (pid ? `/project/${pid}/runners` : '/runners'),
    columns: [['name', 'Name'], ['active', 'Active'], ['max_parallel_tasks', 'Tasks at a time'], ['tags', 'Tags'], ['touched', 'Last seen']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'webhook', label: 'Webhook' },
      { name: 'max_parallel_tasks', label: 'Tasks at a time (0: no limit)', kind: 'number' },
      { name: 'active', label: 'Active', kind: 'checkbox' },
      { name: 'tags', label: 'Tags (comma-separated)', kind: 'tags' },
    ],
  },
  members: {
    scope: 'project', title: 'Members', one: 'member', perm: PERM.users,
    path: (pid) => `/project/${pid}/users`,
    columns: [['username', 'Login'], ['name', 'Name'], ['role', 'Role']],
    fields: [
      { name: 'user_id', label: 'User', kind: 'select', createOnly: true, required: true,
        ref: async () => (await get('/users')).map((u) => [u.id, `${u.username} (${u.name})`]) },
      { name: 'role', label: 'Role', kind: 'select', options: [['owner', 'Owner'], ['manager', 'Manager'], ['task_runner', 'Task runner'], ['guest', 'Guest']] },
    ],
  },
  users: {
    scope: 'admin', title: 'Users', one: 'user', perm: 0, adminOnly: true,
    path: () => '/users',
    columns: [['username', 'Login'], ['name', 'Name'], ['email', 'E-mail'], ['admin', 'Admin']],
    fields: [
      { name: 'username', label: 'Login', required: true },
      { name: 'name', label: 'Name', required: true },
      { name: 'email', label: 'E-mail', kind: 'email', required: true },
      { name: 'password', label: 'Password (leave empty to keep)', kind: 'password', secret: true },
      { name: 'admin', label: 'Administrator', kind: 'checkbox' },
      { name: 'alert', label: 'Send alerts', kind: 'checkbox' },
    ],
    // A new password of an existing user goes to its own route.
    afterSave: async (saved, v, item) => {
      if (item && v.password) await post(`/users/${item.id}/password`, { password: v.password });
    },
    body: (v, item) => { if (item) { const { password, ...rest } = v; return { ...rest, id: item.id }; } return v; },
  },
  // Webhooks that start a template (Semaphore's integrations); their matchers, extract values
  // and aliases are parts of one integration, edited on its page (`children`).
  integrations: {
    scope: 'project', title: 'Integrations', one: 'integration', perm: PERM.resources,
    path: (pid) => `/project/${pid}/integrations`,
    columns: [['name', 'Name'], ['auth_method', 'Authentication'], ['searchable', 'Reached by project aliases']],
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'template_id', label: 'Template it starts', kind: 'select', ref: projectRef('templates'), required: true },
      { name: 'auth_method', label: 'How a delivery proves where it comes from', kind: 'select', options: [
        ['', 'Nothing: the alias alone'], ['github', 'GitHub, Gitea, Forgejo signature (X-Hub-Signature-256)'],
        ['bitbucket', 'Bitbucket signature (X-Hub-Signature)'], ['hmac', 'HMAC-SHA256 signature in a header'],
        ['token', 'A token in a header'], ['basic', 'HTTP basic authentication']] },
      { name: 'auth_secret_id', label: 'Secret (a login and password key: its password)', kind: 'select', nullable: true,
        ref: async (pid) => (await get(`/project/${pid}/keys`)).filter((k) => k.type === 'login_password').map((k) => [k.id, k.name]),
        when: (v) => !!v.auth_method && v.auth_method !== 'none' },
      { name: 'auth_header', label: 'Header', help: 'X-Gitlab-Token, say', when: (v) => v.auth_method === 'token' || v.auth_method === 'hmac' },
      { name: 'searchable', label: 'Deliveries to the project\'s aliases reach it (when its matchers hold)', kind: 'checkbox' },
      { name: 'task_params', label: 'The task\'s overrides (JSON, as POST /tasks takes them: message, git_branch, environment, …)', kind: 'json', empty: null },
    ],
    body: (v, item) => (item ? { ...v, id: item.id } : v),
    children: [
      {
        title: 'Matchers', one: 'matcher', path: (pid, id) => `/project/${pid}/integrations/${id}/matchers`,
        help: 'A delivery starts the template only when every matcher holds.',
        label: (m) => `${m.name ? `${m.name}: ` : ''}${m.match_type} ${m.key} ${m.method} ${JSON.stringify(m.value)}`,
        fields: [
          { name: 'name', label: 'Name' },
          { name: 'match_type', label: 'Reads', kind: 'select', options: [['body', 'the body'], ['header', 'a header']] },
          { name: 'body_data_type', label: 'The body as', kind: 'select', options: ['json', 'xml', 'string'], when: (v) => v.match_type !== 'header' },
          { name: 'key', label: 'Key', help: 'A header\'s name, or a path in the body: ref, repository.full_name, build.status' },
          { name: 'method', label: 'Comparison', kind: 'select', options: ['equals', 'unequals', 'contains'] },
          { name: 'value', label: 'Value' },
        ],
      },
      {
        title: 'Extract values', one: 'extract value', path: (pid, id) => `/project/${pid}/integrations/${id}/values`,
        help: 'Parts of a delivery handed to the task: an extra variable, or a task parameter.',
        label: (x) => `${x.name ? `${x.name}: ` : ''}${x.value_source} ${x.key} → ${x.variable} (${x.variable_type})`,
        fields: [
          { name: 'name', label: 'Name' },
          { name: 'value_source', label: 'Reads', kind: 'select', options: [['body', 'the body'], ['header', 'a header']] },
          { name: 'body_data_type', label: 'The body as', kind: 'select', options: ['json', 'xml', 'string'], when: (v) => v.value_source !== 'header' },
          { name: 'key', label: 'Key', help: 'A header\'s name, or a path in the body: after, pusher.name' },
          { name: 'variable', label: 'Variable', required: true },
          { name: 'variable_type', label: 'As', kind: 'select', options: [['environment', 'an extra variable'], ['task', 'a task parameter (git_branch, commit_hash, message, limit, …)']] },
        ],
      },
      {
        title: 'Aliases', one: 'alias', path: (pid, id) => `/project/${pid}/integrations/${id}/aliases`,
        help: 'The URLs to give the sender; each is random. Deleting one turns its URL off.',
        label: (a) => a.url, fixed: true,
      },
    ],
    // The project's own aliases reach every integration marked as reached by them.
    extra: (pid) => childSection(pid, null, {
      title: 'Project aliases', one: 'project alias', path: () => `/project/${pid}/integrations/aliases`,
      help: 'A delivery to one of these reaches every integration marked as reached by the project\'s aliases that has a matcher.',
      label: (a) => a.url, fixed: true,
    }),
  },
  templates: {
    scope: 'none', title: 'Templates', one: 'template', perm: PERM.resources,
    path: (pid) => `/project/${pid}/templates`,
    fields: [
      { name: 'name', label: 'Name', required: true },
      { name: 'app', label: 'App', kind: 'select', options: ['ansible', 'terraform', 'tofu', 'bash', 'python'] },
      { name: 'type', label: 'Type', kind: 'select', options: [['', 'Task'], ['build', 'Build'], ['deploy', 'Deploy']] },
      { name: 'repository_id', label: 'Repository', kind: 'select', ref: projectRef('repositories'), required: true },
      { name: 'playbook', label: 'Playbook, script or Terraform directory' },
      { name: 'inventory_id', label: 'Inventory', kind: 'select', ref: projectRef('inventory'), nullable: true },
      { name: 'environment_id', label: 'Environment', kind: 'select', ref: projectRef('environment'), nullable: true },
      { name: 'view_id', label: 'View', kind: 'select', ref: projectRef('views', (v) => v.title), nullable: true },
      { name: 'description', label: 'Description', kind: 'textarea' },
      { name: 'git_branch', label: 'Branch (overrides the repository\'s)', nullable: true },
      { name: 'arguments', label: 'Extra arguments (a JSON array of strings)', nullable: true },
      { name: 'allow_override_args_in_task', label: 'Arguments may be changed when run', kind: 'checkbox' },
      { name: 'allow_override_branch_in_task', label: 'Branch may be changed when run', kind: 'checkbox' },
      { name: 'allow_parallel_tasks', label: 'Tasks may run at the same time', kind: 'checkbox' },
      { name: 'survey_vars', label: 'Survey variables (JSON: [{"name","title","type":""|"int"|"enum"|"secret"|"text","required","values":[{"name","value"}]}])', kind: 'json' },
    ],
    body: (v, item) => (item && item.id ? { ...v, id: item.id } : v),
  },
};

for (const desc of Object.values(RESOURCES)) {
  desc.form = async (pid, item, done) => formFor({
    fields: desc.fields, item, pid, isNew: !(item && item.id !== undefined),
    save: (v) => {
      const body = desc.body ? desc.body(v, item && item.id !== undefined ? item : null) : v;
      return item && item.id !== undefined
        ? (desc === RESOURCES.members ? put(`${desc.path(pid)}/${item.id}`, { role: body.role }) : put(`${desc.path(pid)}/${item.id}`, body))
        : post(desc.path(pid), body);
    },
    afterSave: desc.afterSave ? (saved, v) => desc.afterSave(saved, v, item && item.id !== undefined ? item : null) : null,
    done,
  });
}

function getPath(obj, name) {
  return name.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, name, value) {
  const keys = name.split('.');
  let o = obj;
  keys.slice(0, -1).forEach((k) => { o = o[k] = o[k] || {}; });
  o[keys[keys.length - 1]] = value;
}

let fieldSeq = 0;

/**
 * A form for `fields`, filled from `item`; on submit, `save(values)` (the API call); its error
 * message goes next to the field it names, or above the buttons.
 */
export async function formFor({ fields, item = {}, pid = null, isNew = true, save, afterSave, done, submitLabel }) {
  const form = h('form', { class: 'card form', novalidate: true });
  const top = h('div', { 'aria-live': 'assertive' });
  const rows = [];
  for (const f of fields) {
    if (f.createOnly && !isNew) continue;
    const id = `f${++fieldSeq}`;
    const error = h('p', { class: 'field-error', id: `${id}-e` });
    let value = getPath(item, f.name);
    let input;
    const common = { id, name: f.name, 'aria-describedby': `${id}-e${f.help ? ` ${id}-h` : ''}`, required: f.required && !f.secret };
    if (f.kind === 'select') {
      let options = f.options ? f.options.map((o) => (Array.isArray(o) ? o : [o, o])) : [];
      if (f.ref) {
        try { options = await f.ref(pid); } catch { options = null; }
      }
      if (options === null) {
        input = h('input', { ...common, type: 'number', value: value ?? '' });
      } else {
        input = h('select', common,
          f.nullable || (f.required && value == null) ? h('option', { value: '' }, f.nullable ? '— none —' : '— choose —') : null,
          options.map(([v, label]) => h('option', { value: v, selected: String(v) === String(value ?? '') }, label)));
      }
    } else if (f.kind === 'secrets') {
      input = secretsEditor(id, value || []);
    } else if (f.kind === 'checkbox') {
      input = h('input', { ...common, type: 'checkbox', checked: !!value });
    } else if (f.kind === 'textarea' || f.kind === 'json') {
      const text = f.kind === 'json' ? JSON.stringify(value ?? ('empty' in f ? f.empty : []), null, 2) : (f.secret ? '' : (value ?? f.empty ?? ''));
      input = h('textarea', { ...common, rows: f.kind === 'json' ? 6 : 5, spellcheck: 'false' });
      input.value = text;
    } else {
      const type = f.kind === 'number' ? 'number' : f.kind === 'password' ? 'password' : f.kind === 'email' ? 'email' : 'text';
      const shown = f.secret ? '' : f.kind === 'tags' ? (value || []).join(', ') : (value ?? '');
      input = h('input', { ...common, type, value: shown, autocomplete: f.secret ? 'new-password' : 'off' });
    }
    const label = f.kind === 'checkbox'
      ? h('label', { class: 'check', for: id }, input, ` ${f.label}`)
      : h('label', { for: id }, f.label, f.secret && !isNew ? h('span', { class: 'muted' }, ' (write-only: leave empty to keep)') : null);
    const row = h('div', { class: 'field' }, label, f.kind === 'checkbox' ? null : input,
      f.help ? h('p', { class: 'help', id: `${id}-h` }, f.help) : null, error);
    rows.push({ f, input, error, row });
    form.append(row);
  }
  const read = () => {
    const v = {};
    for (const { f, input, row } of rows) {
      if (row.hidden) continue;
      let x;
      if (f.kind === 'secrets') x = input.read();
      else if (f.kind === 'checkbox') x = input.checked;
      else if (f.kind === 'number' || (f.kind === 'select' && input.type === 'number')) x = input.value === '' ? null : Number(input.value);
      else if (f.kind === 'tags') x = input.value.split(',').map((s) => s.trim()).filter(Boolean);
      else if (f.kind === 'json') {
        try { x = JSON.parse(input.value || 'null'); } catch (e) { throw { field: f, message: `${f.name}: not valid JSON (${e.message})` }; }
      } else x = input.value;
      if (f.kind === 'select' && f.ref && x !== '' && x !== null && /^\d+$/.test(String(x))) x = Number(x);
      if (f.nullable && x === '') x = null;
      if (f.secret && x === '' && !isNew) continue;
      setPath(v, f.name, x);
    }
    return v;
  };
  const applyWhen = () => {
    let v;
    try { v = read(); } catch { return; }
    for (const r of rows) if (r.f.when) r.row.hidden = !r.f.when({ ...v, ...readVisibleSelects(rows) });
  };
  form.addEventListener('change', applyWhen);
  applyWhen();
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel || (isNew ? 'Create' : 'Save'));
  form.append(top, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clear(top);
    for (const r of rows) { clear(r.error); r.input.removeAttribute('aria-invalid'); }
    submit.disabled = true;
    try {
      const values = read();
      const saved = await save(values);
      if (afterSave) await afterSave(saved, values);
      if (saved && typeof saved === 'object' && typeof saved.token === 'string') {
        // A runner's token is shown once; the page stays so it can be copied.
        top.append(notice('ok', 'Saved. Copy the token now; it is not shown again: ', h('code', { class: 'secret-once' }, saved.token)));
      } else if (done) done(saved); else top.append(notice('ok', 'Saved.'));
    } catch (e) {
      showError(rows, top, e.message || String(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * An environment's secrets: the stored ones by name and type (a new value replaces one, a
 * checkbox removes one) and empty rows for new ones. `read()` gives the API's operations.
 */
function secretsEditor(id, stored) {
  const kinds = [['var', 'extra variable'], ['env', 'environment variable']];
  const kindSelect = (label, value) => h('select', { 'aria-label': label },
    kinds.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
  const old = stored.map((sec) => ({
    sec,
    value: h('input', { type: 'password', autocomplete: 'new-password', 'aria-label': `New value of ${sec.name} (empty: keep)` }),
    remove: h('input', { type: 'checkbox', 'aria-label': `Remove ${sec.name}` }),
  }));
  const fresh = [];
  const list = h('div', { class: 'secrets' });
  const addRow = () => {
    const n = fresh.length + 1;
    const row = {
      name: h('input', { type: 'text', 'aria-label': `New secret ${n}: name`, placeholder: 'name' }),
      value: h('input', { type: 'password', autocomplete: 'new-password', 'aria-label': `New secret ${n}: value`, placeholder: 'value' }),
      kind: kindSelect(`New secret ${n}: type`, 'var'),
    };
    fresh.push(row);
    list.append(h('div', { class: 'secret-row' }, row.name, row.value, row.kind));
  };
  const box = h('div', { id, class: 'secrets-box', role: 'group' },
    old.length ? h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Type', 'New value', 'Remove'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, old.map((o) => h('tr', {}, h('th', { scope: 'row' }, o.sec.name), h('td', {}, o.sec.type), h('td', {}, o.value), h('td', {}, o.remove))))) : null,
    list,
    h('button', { type: 'button', onclick: addRow }, 'Add a secret'));
  addRow();
  box.read = () => [
    ...old.filter((o) => o.remove.checked || o.value.value).map((o) => ({
      id: o.sec.id, name: o.sec.name, type: o.sec.type, secret: o.remove.checked ? '' : o.value.value,
      operation: o.remove.checked ? 'delete' : 'update',
    })),
    ...fresh.filter((r) => r.name.value.trim()).map((r) => ({
      name: r.name.value.trim(), secret: r.value.value, type: r.kind.value, operation: 'create',
    })),
  ];
  box.setAttribute('aria-invalid', 'false');
  return box;
}

function readVisibleSelects(rows) {
  const v = {};
  for (const { f, input } of rows) if (f.kind === 'select') setPath(v, f.name, input.value);
  return v;
}

/** Puts the API's message next to the field it starts with (`name: …`, `email must …`). */
function showError(rows, top, message) {
  const survey = /survey variable "?([^\s"]+)/.exec(message);
  const m = /^(?:invalid request body: )?([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)(?:\[\d+\])?\b/i.exec(message);
  const named = survey ? `survey.${survey[1]}` : m ? m[1] : '';
  const target = rows.find((r) => !r.row.hidden && (r.f.name === named || r.f.name.endsWith(`.${named}`) || named.startsWith(`${r.f.name}.`)));
  if (target) {
    target.error.textContent = message;
    target.input.setAttribute('aria-invalid', 'true');
    target.input.focus();
  } else {
    top.append(notice('error', message));
  }
}

function cell(value) {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\dT/.test(value)) return fmtTime(value);
  return value ?? '—';
}

/** `/project/{pid}/{resource}[/{id|new}]` and `/admin/{resource}[/{id|new}]`. */
export async function resourcePage(ctx) {
  const key = ctx.params.resource;
  const desc = RESOURCES[key];
  const pid = ctx.pid;
  const fits = desc && (pid ? desc.scope === 'project' || desc.scope === 'both' : desc.scope === 'admin' || desc.scope === 'both');
  if (!fits) {
    ctx.main.append(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page.'));
    return;
  }
  const base = pid ? `/project/${pid}/${key}` : `/admin/${key}`;
  const mayChange = desc.adminOnly || !pid ? session.user.admin : can(desc.perm);
  const id = ctx.params.id;
  if (id) {
    const item = id === 'new' ? null : await get(`${desc.path(pid)}/${id}`);
    ctx.main.append(h('p', { class: 'crumbs' }, h('a', { href: base }, desc.title)),
      h('h1', {}, item ? `${desc.one[0].toUpperCase()}${desc.one.slice(1)} ${item.name || item.title || item.username || item.id}` : `New ${desc.one}`));
    if (!mayChange) {
      ctx.main.append(notice('info', 'Your role may look but not change this.'));
      return;
    }
    ctx.main.append(await desc.form(pid, item || {}, () => navigate(base)));
    if (item) {
      ctx.main.append(h('p', {}, h('button', { type: 'button', class: 'danger', onclick: async (event) => {
        if (!confirm(`Delete the ${desc.one} ${item.name || item.title || item.username || item.id}?`)) return;
        try {
          await del(`${desc.path(pid)}/${item.id}`);
          navigate(base);
        } catch (e) {
          event.target.after(notice('error', e.message));
        }
      } }, `Delete ${desc.one}`)));
      for (const child of desc.children || []) ctx.main.append(await childSection(pid, item.id, child));
    }
    return;
  }
  const items = await get(desc.path(pid));
  const filter = h('input', { type: 'search', placeholder: `Search ${desc.title.toLowerCase()}`, 'aria-label': `Search ${desc.title.toLowerCase()}` });
  const body = h('tbody');
  const show = () => {
    const q = filter.value.toLowerCase();
    fill(body, items.filter((it) => !q || JSON.stringify(desc.columns.map(([c]) => it[c])).toLowerCase().includes(q)).map((it) =>
      h('tr', {}, desc.columns.map(([c], i) => (i === 0
        ? h('th', { scope: 'row' }, h('a', { href: `${base}/${it.id}` }, String(cell(it[c]))))
        : h('td', {}, String(cell(it[c]))))))));
  };
  filter.addEventListener('input', show);
  show();
  ctx.main.append(h('div', { class: 'head' }, h('h1', {}, desc.title),
    mayChange ? h('a', { href: `${base}/new`, class: 'button primary' }, `New ${desc.one}`) : null),
  ...(items.length > 8 ? [filter] : []),
  items.length ? h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, desc.columns.map(([, t]) => h('th', { scope: 'col' }, t)))), body))
    : h('p', { class: 'muted' }, `No ${desc.title.toLowerCase()} yet.`));
  if (desc.extra) ctx.main.append(await desc.extra(pid));
}

/**
 * The parts of one item that have their own list in the API (an integration's matchers):
 * each part with its form and Delete behind a disclosure, and a form for a new one. A `fixed`
 * part has no fields: it is made by the server (an alias) and only added or deleted.
 */
async function childSection(pid, parentId, child) {
  const section = h('section', { class: 'card', 'aria-label': child.title });
  const mayChange = can(PERM.resources);
  const path = child.path(pid, parentId);
  const render = async () => {
    let items;
    try {
      items = await get(path);
    } catch (e) {
      fill(section, h('h2', {}, child.title), notice('error', e.message));
      return;
    }
    const rows = await Promise.all(items.map(async (it) => {
      const remove = mayChange ? h('button', { type: 'button', class: 'danger', onclick: async (event) => {
        if (!confirm(`Delete the ${child.one} ${child.label(it)}?`)) return;
        try { await del(`${path}/${it.id}`); await render(); } catch (e) { event.target.after(notice('error', e.message)); }
      } }, `Delete ${child.one}`) : null;
      if (child.fixed || !mayChange) return h('li', {}, h('code', {}, child.label(it)), ' ', remove);
      const form = await formFor({ fields: child.fields, item: it, pid, isNew: false,
        save: (v) => put(`${path}/${it.id}`, { ...v, id: it.id }), done: () => render() });
      return h('li', {}, h('details', {}, h('summary', {}, child.label(it)), form, remove));
    }));
    const add = !mayChange ? null : child.fixed
      ? h('button', { type: 'button', onclick: async (event) => {
        try { await post(path, {}); await render(); } catch (e) { event.target.after(notice('error', e.message)); }
      } }, `Add ${child.one === 'alias' ? 'an' : 'a'} ${child.one}`)
      : h('details', {}, h('summary', {}, `New ${child.one}`),
        await formFor({ fields: child.fields, pid, save: (v) => post(path, v), done: () => render() }));
    fill(section, h('h2', {}, child.title), child.help ? h('p', { class: 'muted' }, child.help) : null,
      items.length ? h('ul', { class: 'list' }, rows) : h('p', { class: 'muted' }, `No ${child.title.toLowerCase()} yet.`), add);
  };
  await render();
  return section;
}
