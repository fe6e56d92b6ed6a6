// The service catalog: its services with their state, the dependency graph, the plan,
// starting a rollout, and a rollout's live progress step by step with each step's status
// object and the advisor's notes.

import { get, post, query, liveSocket } from './api.js';
import { h, fill, clear, fmtTime, badge, notice, debounce } from './dom.js';
import { can, PERM } from './session.js';
import { navigate, onLeave } from './app.js';

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : String(c));
  return el;
}

/** The dependency graph: a column per depth (dependencies left), each box in its state's colour. */
export function graphSvg(services, href) {
  const byName = Object.fromEntries(services.map((x) => [x.name, x]));
  const depth = {};
  const depthOf = (name, seen = new Set()) => {
    if (depth[name] !== undefined) return depth[name];
    if (seen.has(name)) return 0;
    seen.add(name);
    const deps = (byName[name] ? byName[name].depends_on : []).filter((d) => byName[d]);
    depth[name] = deps.length ? Math.max(...deps.map((d) => depthOf(d, seen))) + 1 : 0;
    return depth[name];
  };
  services.forEach((x) => depthOf(x.name));
  const columns = [];
  services.forEach((x) => { (columns[depth[x.name]] = columns[depth[x.name]] || []).push(x); });
  const W = 170, H = 46, GX = 60, GY = 18;
  const pos = {};
  columns.forEach((col, c) => col.forEach((x, r) => { pos[x.name] = { x: 10 + c * (W + GX), y: 10 + r * (H + GY) }; }));
  const width = 20 + columns.length * (W + GX) - GX;
  const height = 20 + Math.max(1, ...columns.map((c) => c.length)) * (H + GY) - GY;
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'graph', 'aria-label': 'Dependency graph of the services' },
    s('title', {}, 'Dependency graph: each service points at what it depends on'),
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M0 0L10 5L0 10z', class: 'edge-head' }))));
  for (const x of services) {
    for (const d of x.depends_on || []) {
      if (!pos[d]) continue;
      const a = pos[d], b = pos[x.name];
      svg.append(s('path', { d: `M${a.x + W} ${a.y + H / 2} C${a.x + W + GX / 2} ${a.y + H / 2} ${b.x - GX / 2} ${b.y + H / 2} ${b.x} ${b.y + H / 2}`, class: 'edge', 'marker-end': 'url(#arrow)' }));
    }
  }
  for (const x of services) {
    const p = pos[x.name];
    const box = s('g', { class: `node st-${x.state}`, transform: `translate(${p.x} ${p.y})` },
      s('rect', { width: W, height: H, rx: 6 }),
      s('text', { x: 10, y: 19, class: 'name' }, x.name.length > 20 ? `${x.name.slice(0, 19)}…` : x.name),
      s('text', { x: 10, y: 36, class: 'state' }, String(x.state).replace(/_/g, ' ')));
    svg.append(href ? s('a', { href: href(x) }, box) : box);
  }
  return svg;
}

/** Why a service is in the plan (`{"because": "not_deployed", ...}`), in words. */
function describeSelected(selected) {
  if (!selected || typeof selected !== 'object') return String(selected ?? '');
  const { because, ...rest } = selected;
  const extra = Object.entries(rest).map(([k, v]) => `${k.replace(/_/g, ' ')}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return [because ? String(because).replace(/_/g, ' ') : null, ...extra].filter(Boolean).join(' · ');
}

export async function catalogPage(ctx) {
  const { pid } = ctx;
  ctx.main.append(h('h1', {}, 'Service catalog'));
  let services;
  try {
    services = await get(`/project/${pid}/catalog/services`);
  } catch (e) {
    ctx.main.append(notice('info', e.message, ' ', can(PERM.updateProject) ? 'Configure the catalog with `ralf catalog` or PUT /api/project/{id}/catalog/settings.' : ''));
    return;
  }
  const graph = h('figure', { class: 'graph-box' });
  const table = h('div', { class: 'table-wrap' });
  const planBox = h('section', { 'aria-labelledby': 'c-plan' });
  const rollouts = h('section', { 'aria-labelledby': 'c-rollouts' });
  const error = h('div', { 'aria-live': 'assertive' });
  const mayRun = can(PERM.run);
  const chosen = new Set();
  const draw = () => {
    fill(graph, graphSvg(services), h('figcaption', { class: 'muted' }, 'Arrows run from a service to those that depend on it.'));
    fill(table, h('table', {},
      h('thead', {}, h('tr', {}, [mayRun ? 'Pick' : null, 'Service', 'State', 'Priority', 'Depends on', 'Last step', 'Deployed'].filter(Boolean).map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, services.map((x) => h('tr', {},
        mayRun ? h('td', {}, h('input', { type: 'checkbox', 'aria-label': `Pick ${x.name} for the rollout`, checked: chosen.has(x.name),
          onchange: (e) => { if (e.target.checked) chosen.add(x.name); else chosen.delete(x.name); } })) : null,
        h('th', { scope: 'row' }, x.name, x.description ? h('div', { class: 'muted small' }, x.description) : null),
        h('td', {}, badge(x.state), x.approve ? h('span', { class: 'muted small' }, ' needs approval') : null),
        h('td', {}, x.priority),
        h('td', {}, (x.depends_on || []).join(', ') || '—'),
        h('td', {}, x.last_result ? [badge(x.last_result.result), ` ${x.last_result.summary || ''}`] : '—',
          x.last_task_id ? [' ', h('a', { href: `/project/${pid}/tasks/${x.last_task_id}` }, `task #${x.last_task_id}`)] : null),
        h('td', {}, fmtTime(x.deployed_at)))))));
  };
  const loadPlan = async () => {
    try {
      const view = await get(`/project/${pid}/catalog/plan`);
      const plan = view.plan;
      fill(planBox, h('h2', { id: 'c-plan' }, 'Plan'),
        h('p', { class: 'muted' }, `From commit ${String(view.commit).slice(0, 12)}: what a rollout of everything would do, in order.`),
        plan.services.length ? h('ol', { class: 'list' }, plan.services.map((p) => h('li', {},
          h('strong', {}, p.service.name), ' ', h('span', { class: 'muted' }, describeSelected(p.selected)),
          p.waits_for.length ? h('span', { class: 'muted' }, ` · after ${p.waits_for.join(', ')}`) : null)))
          : h('p', {}, 'Nothing to do: every service is deployed.'),
        plan.skipped.length ? h('p', { class: 'muted' }, `Skipped: ${plan.skipped.map((x) => `${x.name} (${x.reason.because.replace(/_/g, ' ')})`).join(', ')}`) : null);
    } catch (e) {
      fill(planBox, h('h2', { id: 'c-plan' }, 'Plan'), notice('error', e.message));
    }
  };
  const loadRollouts = async () => {
    const list = await get(`/project/${pid}/catalog/rollouts${query({ limit: 10 })}`).catch(() => []);
    fill(rollouts, h('h2', { id: 'c-rollouts' }, 'Rollouts'),
      list.length ? h('ul', { class: 'list' }, list.slice(0, 10).map((r) => h('li', {},
        h('a', { href: `/project/${pid}/catalog/rollouts/${r.id}` }, `Rollout #${r.id}`), ' ', badge(r.state),
        h('span', { class: 'muted' }, ` ${r.services.join(', ')} · ${fmtTime(r.created)}`))))
        : h('p', { class: 'muted' }, 'No rollout yet.'));
  };
  const start = async (names) => {
    clear(error);
    try {
      const rollout = await post(`/project/${pid}/catalog/rollouts`, names ? { names } : {});
      navigate(`/project/${pid}/catalog/rollouts/${rollout.id}`);
    } catch (e) {
      error.append(notice('error', e.message));
    }
  };
  ctx.main.append(error,
    mayRun ? h('div', { class: 'buttons' },
      h('button', { type: 'button', class: 'primary', onclick: () => start(null) }, 'Roll out everything'),
      h('button', { type: 'button', onclick: () => (chosen.size ? start([...chosen]) : error.append(notice('error', 'Pick the services first.'))) }, 'Roll out the picked services')) : '',
    graph, table, planBox, rollouts);
  draw();
  await Promise.all([loadPlan(), loadRollouts()]);
  const reload = debounce(async () => {
    services = await get(`/project/${pid}/catalog/services`).catch(() => services);
    draw();
    loadRollouts();
  }, 500);
  const feed = liveSocket('/ws', (m) => { if (m.type === 'catalog_rollout' && m.project_id === pid) reload(); });
  onLeave(() => feed.close());
}

function statusObject(st) {
  if (!st) return null;
  return h('div', { class: 'status-object' },
    h('p', {}, badge(st.result), ' ', st.summary),
    st.artifacts && st.artifacts.length ? h('p', {}, 'Artifacts: ', st.artifacts.join(', ')) : null,
    st.next_actions && st.next_actions.length ? h('div', {}, 'Next actions:', h('ul', {}, st.next_actions.map((a) => h('li', {}, a)))) : null,
    h('details', {}, h('summary', {}, 'Status object'), h('pre', {}, JSON.stringify(st, null, 2))));
}

export async function rolloutPage(ctx) {
  const { pid } = ctx;
  const rid = Number(ctx.params.rid);
  const head = h('div', { class: 'head' });
  const body = h('div', { 'aria-live': 'polite' });
  const error = h('div', { 'aria-live': 'assertive' });
  ctx.main.append(h('p', { class: 'crumbs' }, h('a', { href: `/project/${pid}/catalog` }, 'Service catalog')), head, error, body);
  const mayRun = can(PERM.run);
  // The graph's edges come from the catalog; the rollout has the states.
  const catalog = await get(`/project/${pid}/catalog/services`).catch(() => []);
  const dependsOn = Object.fromEntries(catalog.map((x) => [x.name, x.depends_on || []]));
  const decide = (name, verb) => async () => {
    clear(error);
    try { await post(`/project/${pid}/catalog/services/${encodeURIComponent(name)}/${verb}`, {}); load(); } catch (e) { error.append(notice('error', e.message)); }
  };
  const load = async () => {
    const r = await get(`/project/${pid}/catalog/rollouts/${rid}`);
    const running = ['running', 'waiting_approval'].includes(r.state);
    fill(head, h('h1', {}, `Rollout #${r.id}`), badge(r.state),
      mayRun && running ? h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { await post(`/project/${pid}/catalog/rollouts/${rid}/cancel`, {}); load(); } catch (e) { error.append(notice('error', e.message)); }
      } }, 'Cancel rollout') : null);
    fill(body,
      h('p', { class: 'muted' }, `Commit ${String(r.commit).slice(0, 12)} · started ${fmtTime(r.created)}${r.finished ? ` · finished ${fmtTime(r.finished)}` : ''}`),
      r.advice ? h('div', { class: 'card advice' }, h('h2', {}, 'Advice'), h('p', {}, r.advice)) : null,
      h('figure', { class: 'graph-box' }, graphSvg(r.services.map((x) => ({ name: x.name, state: x.state, depends_on: dependsOn[x.name] || [] })))),
      h('ol', { class: 'steps' }, r.services.map((x) => h('li', { class: 'card' },
        h('h2', {}, x.name, ' ', badge(x.state)),
        x.held_by ? h('p', {}, `Held: ${x.held_by} failed.`) : null,
        x.approval ? h('p', { class: 'muted' }, `${x.approval.approved ? 'Approved' : 'Rejected'} by ${x.approval.by} at ${fmtTime(x.approval.at)}`) : null,
        x.state === 'waiting_approval' && mayRun ? h('div', { class: 'buttons' },
          h('button', { type: 'button', class: 'primary', onclick: decide(x.name, 'approve') }, `Approve ${x.name}`),
          h('button', { type: 'button', class: 'danger', onclick: decide(x.name, 'reject') }, `Reject ${x.name}`)) : null,
        x.next_step ? h('p', { class: 'muted' }, `Next: ${x.next_step}${x.next_step_at ? ` at ${fmtTime(x.next_step_at)}` : ''}`) : null,
        x.steps.length ? h('ol', { class: 'step-list' }, x.steps.map((st) => h('li', {},
          h('strong', {}, st.step_id), ' ',
          st.task_id ? h('a', { href: `/project/${pid}/tasks/${st.task_id}` }, `task #${st.task_id}`) : null,
          h('span', { class: 'muted' }, ` ${fmtTime(st.started_at)}${st.finished_at ? '' : ' · running'}`),
          statusObject(st.status),
          st.advice ? h('div', { class: 'advice' }, h('strong', {}, 'Advisor: '), st.advice) : null))) : h('p', { class: 'muted' }, 'No step yet.')))));
  };
  await load();
  const reload = debounce(() => load().catch(() => {}), 300);
  const feed = liveSocket('/ws', (m) => {
    if ((m.type === 'catalog_rollout' && m.rollout_id === rid) || (m.type === 'update' && m.project_id === pid)) reload();
  });
  onLeave(() => feed.close());
}
