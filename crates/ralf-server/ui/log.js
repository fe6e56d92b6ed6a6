// A task's log, virtualised twice: only the lines in view (and a few around them) are in the
// DOM, and only a bounded window of lines is in memory (the chunks around the view and the live
// tail); other lines are read from the server by offset and limit when scrolled to. So a log
// of a million lines scrolls as smoothly, and costs the tab as little, as one of ten thousand.
// ANSI colours (SGR) become classes; other escape sequences are dropped.

import { h, fill } from './dom.js';

const LINE_HEIGHT = 20; // px; app.css sets .log .line to the same height.
const OVERSCAN = 30;
const CHUNK = 1000; // lines read from the server at a time
const KEEP_CHUNKS = 8; // at most this many chunks in memory: those nearest the view and the tail
const SEARCH_BLOCK = 5000; // lines read at a time while searching
const MAX_HEIGHT = 15000000; // px; browsers cap an element's height (Firefox near 17.9 million)
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

/**
 * `fetchLines(offset, limit)` reads lines from the server: `{ items: [{time, output}], total }`.
 * The page sets `total` (the task's line count) and `streamed` (where its live stream starts)
 * and hands each streamed line to `put`.
 */
export class LogView {
  constructor({ download, label = 'Task output', fetchLines }) {
    this.fetchLines = fetchLines;
    this.total = 0;
    this.streamed = 0;
    this.chunks = new Map(); // chunk number -> { times: [], texts: [] }, possibly with holes
    this.loading = new Set();
    this.tried = new Map(); // chunk number -> the total when it was last read
    this.version = 0;
    this.follow = true;
    this.query = null;
    this.current = -1; // the line of the current match
    this.searching = 0;
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
    this.search.addEventListener('input', () => {
      this.searching++;
      this.query = null;
      this.current = -1;
      this.version++;
      fill(this.found);
      this.draw();
    });
    this.el = h('section', { class: 'log-box', 'aria-label': label },
      h('div', { class: 'log-tools' }, this.followButton, times, searchForm,
        download ? h('a', { href: download, download: '', class: 'button' }, 'Download') : null, this.count),
      this.scroller);
    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    new ResizeObserver(() => this.draw()).observe(this.scroller);
  }

  /** The task's line count as the server last said (it only grows). */
  setTotal(total) {
    if (total > this.total) {
      this.total = total;
      this.schedule();
    }
  }

  /** Line `index` of the live stream; a line already held is kept as it is. */
  put(index, time, text) {
    if (index >= this.streamed) this.streamed = index + 1;
    if (index >= this.total) this.total = index + 1;
    this.keep(index, typeof time === 'number' ? time : Date.parse(time), text);
    this.schedule();
  }

  keep(index, time, text) {
    const k = Math.floor(index / CHUNK);
    let chunk = this.chunks.get(k);
    if (!chunk) {
      chunk = { times: [], texts: [] };
      this.chunks.set(k, chunk);
    }
    const j = index - k * CHUNK;
    if (chunk.texts[j] === undefined) {
      chunk.texts[j] = text;
      chunk.times[j] = time;
      this.version++;
    }
  }

  line(index) {
    const chunk = this.chunks.get(Math.floor(index / CHUNK));
    const j = index % CHUNK;
    return chunk && chunk.texts[j] !== undefined ? { text: chunk.texts[j], time: chunk.times[j] } : null;
  }

  /** Reads chunk `k` from the server, unless it is being read or was read at this total. */
  async load(k) {
    if (this.loading.has(k) || this.tried.get(k) === this.total) return;
    this.loading.add(k);
    const total = this.total;
    try {
      const { items, total: now } = await this.fetchLines(k * CHUNK, CHUNK);
      items.forEach((l, j) => this.keep(k * CHUNK + j, Date.parse(l.time), l.output));
      this.tried.set(k, total);
      this.total = Math.max(this.total, now, k * CHUNK + items.length);
    } catch (e) {
      this.found.textContent = `lines ${k * CHUNK + 1}–${(k + 1) * CHUNK}: ${e.message}`;
    } finally {
      this.loading.delete(k);
    }
    this.schedule();
  }

  /** Drops the chunks farthest from both the view and the tail. */
  trim() {
    if (this.chunks.size <= KEEP_CHUNKS) return;
    const view = Math.floor(this.topLine() / CHUNK);
    const tail = Math.floor(Math.max(0, this.total - 1) / CHUNK);
    const distance = (k) => Math.min(Math.abs(k - view), Math.abs(k - tail));
    const far = [...this.chunks.keys()].sort((a, b) => distance(a) - distance(b)).slice(KEEP_CHUNKS);
    for (const k of far) {
      this.chunks.delete(k);
      this.tried.delete(k);
    }
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.height = Math.min(this.total * LINE_HEIGHT, MAX_HEIGHT);
      this.spacer.style.height = `${this.height}px`;
      this.count.textContent = `${this.total.toLocaleString()} lines`;
      if (this.follow) this.scrollToLine(this.total - 1, 'end');
      this.draw();
      this.trim();
    });
  }

  // The scroll bar spans the whole log. Up to MAX_HEIGHT a line is LINE_HEIGHT of it; beyond,
  // the scroll position maps linearly onto the lines (and the rows are placed at the view).
  geometry() {
    const view = this.scroller.clientHeight;
    const viewLines = view / LINE_HEIGHT;
    const maxScroll = Math.max(0, (this.height || 0) - view);
    const span = Math.max(0, this.total - viewLines);
    return { viewLines, maxScroll, span };
  }

  /** The (fractional) line at the top of the view. */
  topLine() {
    const { maxScroll, span } = this.geometry();
    return maxScroll > 0 ? Math.min(span, this.scroller.scrollTop * span / maxScroll) : 0;
  }

  setFollow(on) {
    this.follow = on;
    this.followButton.setAttribute('aria-pressed', String(on));
    if (on) this.scrollToLine(this.total - 1, 'end');
  }

  scrollToLine(index, where = 'center') {
    const { viewLines, maxScroll, span } = this.geometry();
    const top = where === 'end' ? index + 1 - viewLines : index - viewLines / 2;
    this.programmatic = true;
    this.scroller.scrollTop = span > 0 ? Math.min(span, Math.max(0, top)) * maxScroll / span : 0;
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
    const { viewLines } = this.geometry();
    const lineTop = this.topLine();
    const first = Math.max(0, Math.floor(lineTop) - OVERSCAN);
    const last = Math.min(this.total, Math.ceil(lineTop + viewLines) + OVERSCAN);
    this.rows.style.transform = `translateY(${this.scroller.scrollTop + (first - lineTop) * LINE_HEIGHT}px)`;
    if (first === this.drawnFirst && last === this.drawnLast && this.drawnVersion === this.version) return;
    this.drawnFirst = first;
    this.drawnLast = last;
    this.drawnVersion = this.version;
    const lines = [];
    let missing = false;
    for (let i = first; i < last; i++) {
      const line = this.line(i);
      if (!line) {
        missing = true;
        lines.push(h('div', { class: 'line pending', 'data-index': i }, h('span', { class: 'ts' }, ''), h('span', { class: 'txt' }, '…')));
        continue;
      }
      const hit = this.query && stripAnsi(line.text).toLowerCase().includes(this.query);
      const cls = i === this.current ? 'line hit current' : hit ? 'line hit' : 'line';
      lines.push(h('div', { class: cls, 'data-index': i },
        h('span', { class: 'ts' }, line.time ? clock(line.time) : ''),
        h('span', { class: 'txt' }, ansiSpans(line.text))));
    }
    fill(this.rows, lines);
    // Lines not in memory are read once scrolling rests, not for every chunk scrolled past.
    clearTimeout(this.loadTimer);
    if (missing) this.loadTimer = setTimeout(() => this.loadView(), 80);
  }

  loadView() {
    const { viewLines } = this.geometry();
    const lineTop = this.topLine();
    const first = Math.max(0, Math.floor(lineTop) - OVERSCAN);
    const last = Math.min(this.total, Math.ceil(lineTop + viewLines) + OVERSCAN);
    for (let k = Math.floor(first / CHUNK); k * CHUNK < last; k++) {
      for (let i = Math.max(first, k * CHUNK); i < Math.min(last, (k + 1) * CHUNK); i++) {
        if (!this.line(i)) { this.load(k); break; }
      }
    }
  }

  /**
   * The next (`step` 1) or previous (-1) line containing `q` (case-insensitive, without the
   * colour codes), from the current match or else the view, round the end. The log is read
   * from the server a block at a time, so a search never holds more than one block.
   */
  async find(q, step) {
    if (!q || !this.total) return;
    const needle = q.toLowerCase();
    const token = ++this.searching;
    if (this.query !== needle) {
      this.query = needle;
      this.current = -1;
    }
    const total = this.total;
    const { viewLines } = this.geometry();
    const start = this.current >= 0 ? this.current + step
      : step > 0 ? Math.floor(this.topLine()) : Math.ceil(this.topLine() + viewLines) - 1;
    let pos = ((start % total) + total) % total;
    let scanned = 0;
    while (scanned < total) {
      const blockStart = Math.floor(pos / SEARCH_BLOCK) * SEARCH_BLOCK;
      let items;
      try {
        ({ items } = await this.fetchLines(blockStart, Math.min(SEARCH_BLOCK, total - blockStart)));
      } catch (e) {
        if (token === this.searching) this.found.textContent = `search failed: ${e.message}`;
        return;
      }
      if (token !== this.searching) return;
      const matches = (i) => i - blockStart < items.length && stripAnsi(items[i - blockStart].output).toLowerCase().includes(needle);
      if (step > 0) {
        const end = Math.min(blockStart + SEARCH_BLOCK, total);
        for (let i = pos; i < end; i++) if (matches(i)) return this.show(i);
        scanned += end - pos;
        pos = end >= total ? 0 : end;
      } else {
        for (let i = pos; i >= blockStart; i--) if (matches(i)) return this.show(i);
        scanned += pos - blockStart + 1;
        pos = blockStart === 0 ? total - 1 : blockStart - 1;
      }
      this.found.textContent = `searching… ${Math.min(99, Math.floor(scanned * 100 / total))}%`;
    }
    this.current = -1;
    this.found.textContent = 'no match';
    this.version++;
    this.draw();
  }

  show(index) {
    this.current = index;
    this.found.textContent = `line ${(index + 1).toLocaleString()}`;
    this.setFollow(false);
    this.scrollToLine(index);
    this.version++;
    this.draw();
  }
}
