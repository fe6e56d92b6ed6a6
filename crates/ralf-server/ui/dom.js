// Small DOM helpers: building elements without HTML strings (so no text is ever parsed as
// markup), formatting times and statuses.

/** h('a', {href: '/x', class: 'btn', onclick: fn}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (key === 'checked' || key === 'selected' || key === 'disabled') {
      el[key] = !!value;
    } else {
      el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  return append(clear(el), children);
}

export function fmtTime(ts) {
  if (!ts) return '—';
  const d = new Date(ts);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function duration(start, end) {
  if (!start) return '';
  const ms = (end ? new Date(end) : new Date()) - new Date(start);
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const ACTIVE = ['waiting', 'starting', 'waiting_confirmation', 'confirmed', 'running', 'stopping'];
export const TASK_STATUSES = ['waiting', 'starting', 'waiting_confirmation', 'confirmed',
  'rejected', 'running', 'stopping', 'stopped', 'success', 'error'];

export function isActive(status) {
  return ACTIVE.includes(status);
}

/** A status word in a coloured badge; the word itself carries the meaning (not only colour). */
export function badge(status) {
  const text = String(status || 'unknown').replace(/_/g, ' ');
  return h('span', { class: `badge s-${status}` }, text);
}

export function notice(kind, ...text) {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...text);
}

/** Runs `fn` at most once a frame-ish (`ms`), with the latest arguments. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
