// The client's shell: who is logged in, the router (real paths, served by the server as the
// same page), the layout with its navigation, and the login, dashboard and project pages.

import { api, get, post, put, del, onUnauthorized, liveSocket, ApiError } from './api.js';
import { h, fill, clear, fmtTime, badge, notice, isActive, debounce } from './dom.js';
import { templatesPage, runPage, taskPage, historyPage, tokensPage } from './pages.js';
import { RESOURCES, resourcePage, formFor } from './resources.js';
import { catalogPage, rolloutPage } from './catalog.js';
import { session, PERM, can } from './session.js';

export { session, PERM, can };

const root = document.getElementById('app');
let cleanups = [];

const ROUTES = [
  ['/login', loginPage, { bare: true }],
  ['/', dashboardPage],
  ['/projects', projectsPage],
  ['/tokens', tokensPage],
  ['/admin/:resource', resourcePage],
  ['/admin/:resource/:id', resourcePage],
  ['/project/:pid', (ctx) => navigate(`/project/${ctx.params.pid}/templates`, true)],
  ['/project/:pid/templates', templatesPage],
  ['/project/:pid/templates/new', templateFormPage],
  ['/project/:pid/templates/:tid/edit', templateFormPage],
  ['/project/:pid/templates/:tid/run', runPage],
  ['/project/:pid/history', historyPage],
  ['/project/:pid/tasks/:tid', taskPage],
  ['/project/:pid/catalog', catalogPage],
  ['/project/:pid/catalog/rollouts/:rid', rolloutPage],
  ['/project/:pid/settings', projectSettingsPage],
  ['/project/:pid/:resource', resourcePage],
  ['/project/:pid/:resource/:id', resourcePage],
];

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const [pattern, page, options] of ROUTES) {
    const want = pattern.split('/').filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    want.forEach((w, i) => {
      if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(parts[i]);
      else if (w !== parts[i]) ok = false;
    });
    if (ok) return { page, params, options: options || {} };
  }
  return null;
}

export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

/** Runs when the page is left (closes its WebSockets, timers). */
export function onLeave(fn) {
  cleanups.push(fn);
}

export async function render() {
  for (const fn of cleanups.splice(0)) {
    try { fn(); } catch (e) { console.error(e); }
  }
  const path = location.pathname;
  if (!session.user && path !== '/login') {
    try {
      session.user = await get('/user');
    } catch {
      navigate(`/login?next=${encodeURIComponent(path + location.search)}`, true);
      return;
    }
  }
  const found = match(path);
  const main = h('main', { id: 'main', tabindex: '-1' });
  if (!found) {
    fill(root, layout(main, null));
    main.append(h('h1', {}, 'Not found'), h('p', {}, 'There is no page here. ', h('a', { href: '/' }, 'Dashboard')));
    return;
  }
  const { page, params, options } = found;
  const pid = params.pid ? Number(params.pid) : null;
  if (pid && (!session.project || session.project.id !== pid)) {
    try {
      session.project = await get(`/project/${pid}`);
      session.permissions = (await get(`/project/${pid}/role`)).permissions;
    } catch (e) {
      session.project = null;
      fill(root, layout(main, null));
      main.append(h('h1', {}, 'Project'), notice('error', e.message));
      return;
    }
  }
  if (!pid) { session.project = null; session.permissions = 0; }
  fill(root, options.bare ? main : layout(main, pid));
  const ctx = { main, params, pid, query: new URLSearchParams(location.search) };
  try {
    await page(ctx);
  } catch (e) {
    main.append(notice('error', e instanceof ApiError ? e.message : `Something went wrong: ${e.message}`));
    console.error(e);
  }
  const heading = main.querySelector('h1');
  document.title = heading ? `${heading.textContent} · ralf` : 'ralf';
  if (!options.bare && document.activeElement === document.body) main.focus({ preventScroll: true });
}

function layout(main, pid) {
  const projectLinks = pid ? [
    ['templates', 'Templates'], ['history', 'Task history'], ['catalog', 'Catalog'],
    ...Object.entries(RESOURCES).filter(([, r]) => r.scope === 'project' || r.scope === 'both').map(([k, r]) => [k, r.title]),
    ['settings', 'Settings'],
  ] : [];
  const here = location.pathname;
  const link = (href, text) => h('a', { href, 'aria-current': here === href || here.startsWith(`${href}/`) ? 'page' : null }, text);
  const menu = h('nav', { class: 'menu', id: 'menu', 'aria-label': 'Main' },
    link('/', 'Dashboard'),
    link('/projects', 'Projects'),
    session.user && session.user.admin ? [link('/admin/users', 'Users'), link('/admin/runners', 'Runners')] : null,
    link('/tokens', 'API tokens'),
    h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'));
  const toggle = h('button', {
    type: 'button', class: 'menu-toggle', 'aria-controls': 'menu', 'aria-expanded': 'false',
    onclick: () => {
      const open = menu.classList.toggle('open');
      toggle.setAttribute('aria-expanded', String(open));
    },
  }, 'Menu');
  return [
    h('header', { class: 'top' },
      h('a', { href: '/', class: 'brand' }, 'ralf'),
      session.project ? h('a', { href: `/project/${session.project.id}/templates`, class: 'project-name' }, session.project.name) : null,
      toggle, menu,
      h('span', { class: 'who' }, session.user ? session.user.username : '')),
    pid ? h('nav', { class: 'sub', 'aria-label': 'Project' },
      projectLinks.map(([k, t]) => link(`/project/${pid}/${k}`, t))) : null,
    main,
  ];
}

async function logout() {
  try { await post('/auth/logout'); } catch { /* gone already */ }
  session.user = null;
  session.project = null;
  navigate('/login');
}

onUnauthorized(() => {
  if (location.pathname !== '/login') {
    session.user = null;
    navigate(`/login?next=${encodeURIComponent(location.pathname)}`, true);
  }
});

document.addEventListener('click', (event) => {
  const a = event.target.closest('a');
  if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('/api/') || a.hasAttribute('download') || a.target) return;
  event.preventDefault();
  navigate(href);
});
window.addEventListener('popstate', render);

// ---- login -------------------------------------------------------------------------------

async function loginPage(ctx) {
  const error = h('div', { 'aria-live': 'assertive' });
  const form = h('form', { class: 'card login', onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    clear(error);
    try {
      await post('/auth/login', { auth: data.get('auth'), password: data.get('password') });
      session.user = await get('/user');
      const next = ctx.query.get('next');
      navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
    } catch (e) {
      error.append(notice('error', e.status === 401 ? 'Wrong login or password.' : e.message));
    }
  } },
  h('h1', {}, 'Log in to ralf'),
  h('label', {}, 'Login or e-mail', h('input', { name: 'auth', autocomplete: 'username', required: true, autofocus: true })),
  h('label', {}, 'Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
  error,
  h('button', { type: 'submit', class: 'primary' }, 'Log in'));
  ctx.main.classList.add('center');
  ctx.main.append(form);
}

// ---- dashboard ---------------------------------------------------------------------------

async function dashboardPage(ctx) {
  ctx.main.append(h('h1', {}, 'Dashboard'));
  const active = h('section', { 'aria-labelledby': 'd-active' });
  const waiting = h('section', { 'aria-labelledby': 'd-waiting' });
  const failures = h('section', { 'aria-labelledby': 'd-fail' });
  const services = h('section', { 'aria-labelledby': 'd-services' });
  ctx.main.append(h('div', { class: 'grid' }, active, waiting, failures, services));
  const projects = await get('/projects');
  session.projects = projects;
  if (!projects.length) {
    ctx.main.prepend(notice('info', 'You are in no project yet. ', h('a', { href: '/projects' }, 'Create one')));
  }
  const names = Object.fromEntries(projects.map((p) => [p.id, p.name]));
  const taskRow = (t) => h('li', {},
    h('a', { href: `/project/${t.project_id}/tasks/${t.id}` }, `#${t.id} ${t.tpl_alias || ''}`), ' ',
    badge(t.status), h('span', { class: 'muted' }, ` ${names[t.project_id] || ''} · ${fmtTime(t.created)}`));
  const few = projects.slice(0, 20);
  const unfinished = 'waiting,starting,waiting_confirmation,confirmed,running,stopping';
  const load = async () => {
    // Per project: the list of every project's tasks (`/api/tasks`) is for admins only.
    const tasks = (await Promise.all(few.map((p) =>
      get(`/project/${p.id}/tasks?status=${unfinished}&limit=50`).catch(() => [])))).flat()
      .sort((a, b) => b.id - a.id);
    fill(active, h('h2', { id: 'd-active' }, 'Running and queued'),
      tasks.filter((t) => t.status !== 'waiting_confirmation').length
        ? h('ul', { class: 'list' }, tasks.filter((t) => t.status !== 'waiting_confirmation').map(taskRow))
        : h('p', { class: 'muted' }, 'Nothing is running.'));
    const plans = tasks.filter((t) => t.status === 'waiting_confirmation');
    fill(waiting, h('h2', { id: 'd-waiting' }, 'Waiting for approval'),
      plans.length ? h('ul', { class: 'list' }, plans.map(taskRow)) : h('p', { class: 'muted' }, 'No plan is waiting.'));
    const failed = (await Promise.all(few.map((p) =>
      get(`/project/${p.id}/tasks?status=error&limit=5`).catch(() => [])))).flat()
      .sort((a, b) => b.id - a.id).slice(0, 10);
    fill(failures, h('h2', { id: 'd-fail' }, 'Recent failures'),
      failed.length ? h('ul', { class: 'list' }, failed.map(taskRow)) : h('p', { class: 'muted' }, 'No failed task.'));
  };
  const loadServices = async () => {
    const lists = await Promise.all(few.map(async (p) => {
      try { return { p, services: await get(`/project/${p.id}/catalog/services`) }; } catch { return { p, services: [] }; }
    }));
    const rows = lists.flatMap(({ p, services: s }) => s.map((svc) => h('li', {},
      h('a', { href: `/project/${p.id}/catalog` }, svc.name), ' ', badge(svc.state),
      h('span', { class: 'muted' }, ` ${p.name}`))));
    fill(services, h('h2', { id: 'd-services' }, 'Catalog services'),
      rows.length ? h('ul', { class: 'list' }, rows) : h('p', { class: 'muted' }, 'No project has a service catalog.'));
  };
  await Promise.all([load(), loadServices()]);
  const refresh = debounce(load, 400);
  const refreshServices = debounce(loadServices, 800);
  const feed = liveSocket('/ws', (m) => {
    if (m.type === 'update') refresh();
    if (m.type === 'catalog_rollout') refreshServices();
  });
  onLeave(() => feed.close());
}

// ---- projects ----------------------------------------------------------------------------

const PROJECT_FIELDS = [
  { name: 'name', label: 'Name', required: true },
  { name: 'max_parallel_tasks', label: 'Tasks at a time (0: no limit)', kind: 'number' },
  { name: 'alert', label: 'Send alerts', kind: 'checkbox' },
  { name: 'alert_chat', label: 'Alert chat' },
];

async function projectsPage(ctx) {
  const projects = await get('/projects');
  session.projects = projects;
  ctx.main.append(h('h1', {}, 'Projects'),
    projects.length
      ? h('ul', { class: 'list big' }, projects.map((p) => h('li', {},
        h('a', { href: `/project/${p.id}/templates` }, p.name),
        h('span', { class: 'muted' }, ` created ${fmtTime(p.created)}`))))
      : h('p', { class: 'muted' }, 'No project yet.'));
  if (session.user.can_create_project || session.user.admin) {
    ctx.main.append(h('h2', {}, 'New project'), await formFor({
      fields: PROJECT_FIELDS, item: { max_parallel_tasks: 0 }, submitLabel: 'Create project',
      save: (body) => post('/projects', body),
      done: (p) => navigate(`/project/${p.id}/templates`),
    }));
  }
}

async function projectSettingsPage(ctx) {
  const { pid } = ctx;
  const project = session.project;
  ctx.main.append(h('h1', {}, `Settings of ${project.name}`));
  if (can(PERM.updateProject)) {
    ctx.main.append(await formFor({
      fields: PROJECT_FIELDS, item: project, submitLabel: 'Save',
      save: (body) => put(`/project/${pid}`, { ...body, id: pid }),
      done: () => { session.project = null; render(); },
    }), h('p', {}, h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!confirm(`Delete the project ${project.name} with all its templates and tasks?`)) return;
      await del(`/project/${pid}`);
      session.project = null;
      navigate('/projects');
    } }, 'Delete project')));
  } else {
    ctx.main.append(h('p', { class: 'muted' }, 'Your role may not change this project.'));
  }
  ctx.main.append(h('p', {}, h('a', { href: `/project/${pid}/members` }, 'Members and roles'), ' · ',
    h('a', { href: `/api/project/${pid}/backup`, download: `project-${pid}.json` }, 'Download a backup')));
}

// ---- templates' form (the generic form, with references loaded) ---------------------------

async function templateFormPage(ctx) {
  const { pid } = ctx;
  const tid = ctx.params.tid;
  const item = tid ? await get(`/project/${pid}/templates/${tid}`) : { app: 'ansible', type: '', survey_vars: [] };
  const desc = RESOURCES.templates;
  ctx.main.append(h('h1', {}, tid ? `Edit ${item.name}` : 'New template'));
  ctx.main.append(await desc.form(pid, item, (t) => navigate(`/project/${pid}/templates/${t && t.id ? t.id : tid}/run`)));
}

render();
