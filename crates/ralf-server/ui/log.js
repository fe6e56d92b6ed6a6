// A task's log, virtualised: every line is kept as a string, but only the lines in view (and
// a few around them) are in the DOM, so a log of a million lines scrolls as smoothly as one
// of ten. ANSI colours (SGR) become classes; other escape sequences are dropped.

import { h, fill } from './dom.js';

const LINE_HEIGHT = 20; // px; app.css sets .log .line to the same height.
const OVERSCAN = 30;
const ESC = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r/g;

export function stripAnsi(text) {
  return text.replace(ESC, '');
}

const PALETTE = [[0, 0, 0], [205, 49, 49], [13, 188, 121], [229, 229, 16], [36, 114, 200], [188, 63, 188], [17, 168, 205], [229, 229, 229]];

function color256(n) {
  if (n < 16) return null;
  if (n >= 232) { const v = 8 + (n - 232) * 10; return `rgb(${v},${v},${v})`; }
  const i = n - 16;
  const c = (x) => (x ? 55 + x * 40 : 0);
  return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
}

/** The spans of one line: text pieces with the classes and colours of their SGR state. */
export function ansiSpans(text) {
  const out = [];
  let state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, fgRgb: null, bgRgb: null };
  let last = 0;
  const push = (piece) => {
    if (!piece) return;
    const classes = [];
    if (state.fg !== null) classes.push(`fg${state.fg}`);
    if (state.bg !== null) classes.push(`bg${state.bg}`);
    if (state.bold) classes.push('b');
    if (state.dim) classes.push('dim');
    if (state.italic) classes.push('i');
    if (state.underline) classes.push('u');
    if (!classes.length && !state.fgRgb && !state.bgRgb) { out.push(piece); return; }
    const span = h('span', { class: classes.join(' ') || null }, piece);
    if (state.fgRgb) span.style.color = state.fgRgb;
    if (state.bgRgb) span.style.backgroundColor = state.bgRgb;
    out.push(span);
  };
  ESC.lastIndex = 0;
  let m;
  while ((m = ESC.exec(text))) {
    push(text.slice(last, m.index));
    last = ESC.lastIndex;
    if (m[2] !== 'm') continue;
    const codes = (m[1] || '0').split(';').map((x) => Number(x || 0));
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, fgRgb: null, bgRgb: null };
      else if (c === 1) state.bold = true;
      else if (c === 2) state.dim = true;
      else if (c === 3) state.italic = true;
      else if (c === 4) state.underline = true;
      else if (c === 22) { state.bold = false; state.dim = false; }
      else if (c === 23) state.italic = false;
      else if (c === 24) state.underline = false;
      else if (c >= 30 && c <= 37) { state.fg = c - 30; state.fgRgb = null; }
      else if (c >= 90 && c <= 97) { state.fg = c - 90 + 8; state.fgRgb = null; }
      else if (c === 39) { state.fg = null; state.fgRgb = null; }
      else if (c >= 40 && c <= 47) { state.bg = c - 40; state.bgRgb = null; }
      else if (c >= 100 && c <= 107) { state.bg = c - 100 + 8; state.bgRgb = null; }
      else if (c === 49) { state.bg = null; state.bgRgb = null; }
      else if (c === 38 || c === 48) {
        let rgb = null;
        if (codes[i + 1] === 5) {
          const n = codes[i + 2];
          rgb = n < 16 ? null : color256(n);
          if (n < 16) { if (c === 38) state.fg = n; else state.bg = n; }
          i += 2;
        } else if (codes[i + 1] === 2) {
          rgb = `rgb(${codes[i + 2] | 0},${codes[i + 3] | 0},${codes[i + 4] | 0})`;
          i += 4;
        }
        if (rgb) { if (c === 38) { state.fgRgb = rgb; state.fg = null; } else { state.bgRgb = rgb; state.bg = null; } }
      }
    }
  }
  push(text.slice(last));
  return out;
}

function clock(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export class LogView {
  constructor({ download, label = 'Task output' }) {
    this.times = [];
    this.texts = [];
    this.follow = true;
    this.matches = [];
    this.current = -1;
    this.pending = false;
    this.programmatic = false;
    this.spacer = h('div', { class: 'log-spacer' });
    this.rows = h('div', { class: 'log-rows' });
    this.spacer.append(this.rows);
    this.scroller = h('div', { class: 'log', role: 'log', tabindex: '0', 'aria-label': label }, this.spacer);
    this.count = h('span', { class: 'muted', 'aria-live': 'off' }, '0 lines');
    this.followButton = h('button', { type: 'button', 'aria-pressed': 'true', onclick: () => this.setFollow(!this.follow) }, 'Follow');
    const times = h('button', { type: 'button', 'aria-pressed': 'true', onclick: () => {
      const hidden = this.scroller.classList.toggle('no-times');
      times.setAttribute('aria-pressed', String(!hidden));
    } }, 'Timestamps');
    this.search = h('input', { type: 'search', placeholder: 'Search the log', 'aria-label': 'Search the log' });
    this.found = h('span', { class: 'muted', 'aria-live': 'polite' });
    const searchForm = h('form', { class: 'log-search', role: 'search', onsubmit: (e) => { e.preventDefault(); this.find(this.search.value, 1); } },
      this.search,
      h('button', { type: 'button', onclick: () => this.find(this.search.value, -1), 'aria-label': 'Previous match' }, '↑'),
      h('button', { type: 'submit', 'aria-label': 'Next match' }, '↓'),
      this.found);
    this.search.addEventListener('input', () => { this.matches = []; this.query = null; fill(this.found); });
    this.el = h('section', { class: 'log-box', 'aria-label': label },
      h('div', { class: 'log-tools' }, this.followButton, times, searchForm,
        download ? h('a', { href: download, download: '', class: 'button' }, 'Download') : null, this.count),
      this.scroller);
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    new ResizeObserver(() => this.draw()).observe(this.scroller);
  }

  get length() {
    return this.texts.length;
  }

  /** Line `index` (from the stream); repeats are ignored, a gap is filled with empties. */
  put(index, time, text) {
    if (index < this.texts.length) return;
    while (this.texts.length < index) { this.texts.push(''); this.times.push(0); }
    this.texts.push(text);
    this.times.push(typeof time === 'number' ? time : Date.parse(time));
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.spacer.style.height = `${this.texts.length * LINE_HEIGHT}px`;
      this.count.textContent = `${this.texts.length.toLocaleString()} lines`;
      if (this.follow) this.scrollToLine(this.texts.length - 1, 'end');
      this.draw();
    });
  }

  setFollow(on) {
    this.follow = on;
    this.followButton.setAttribute('aria-pressed', String(on));
    if (on) this.scrollToLine(this.texts.length - 1, 'end');
  }

  scrollToLine(index, where = 'center') {
    const view = this.scroller.clientHeight;
    let top = index * LINE_HEIGHT;
    if (where === 'end') top = top + LINE_HEIGHT - view;
    else top -= view / 2;
    this.programmatic = true;
    this.scroller.scrollTop = Math.max(0, top);
  }

  onScroll() {
    if (this.programmatic) {
      this.programmatic = false;
    } else {
      const atEnd = this.scroller.scrollTop + this.scroller.clientHeight >= this.scroller.scrollHeight - LINE_HEIGHT * 2;
      if (atEnd !== this.follow) {
        this.follow = atEnd;
        this.followButton.setAttribute('aria-pressed', String(atEnd));
      }
    }
    this.draw();
  }

  draw() {
    const first = Math.max(0, Math.floor(this.scroller.scrollTop / LINE_HEIGHT) - OVERSCAN);
    const visible = Math.ceil(this.scroller.clientHeight / LINE_HEIGHT) + OVERSCAN * 2;
    const last = Math.min(this.texts.length, first + visible);
    if (first === this.drawnFirst && last === this.drawnLast && this.drawnCurrent === this.current) return;
    this.drawnFirst = first;
    this.drawnLast = last;
    this.drawnCurrent = this.current;
    this.rows.style.transform = `translateY(${first * LINE_HEIGHT}px)`;
    const hits = this.matches.length ? new Set(this.matches) : null;
    const currentLine = this.current >= 0 ? this.matches[this.current] : -1;
    const lines = [];
    for (let i = first; i < last; i++) {
      const cls = i === currentLine ? 'line hit current' : hits && hits.has(i) ? 'line hit' : 'line';
      lines.push(h('div', { class: cls, 'data-index': i },
        h('span', { class: 'ts' }, this.times[i] ? clock(this.times[i]) : ''),
        h('span', { class: 'txt' }, ansiSpans(this.texts[i]))));
    }
    fill(this.rows, lines);
  }

  /** The next (`step` 1) or previous (-1) line containing `q`, case-insensitive. */
  find(q, step) {
    if (!q) return;
    if (this.query !== q || this.searchedUpTo !== this.texts.length) {
      const needle = q.toLowerCase();
      this.matches = [];
      for (let i = 0; i < this.texts.length; i++) {
        if (stripAnsi(this.texts[i]).toLowerCase().includes(needle)) this.matches.push(i);
      }
      this.query = q;
      this.searchedUpTo = this.texts.length;
      this.current = -1;
    }
    if (!this.matches.length) {
      this.found.textContent = 'no match';
      this.drawnFirst = -1;
      this.draw();
      return;
    }
    this.current = (this.current + step + this.matches.length) % this.matches.length;
    this.found.textContent = `${this.current + 1} of ${this.matches.length}`;
    this.setFollow(false);
    this.scrollToLine(this.matches[this.current]);
    this.drawnFirst = -1;
    this.draw();
  }
}
