// The REST API as the client calls it: the same routes and session cookie as any other client,
// so the UI can do nothing the API refuses the user. Bodies are JSON, which is also what the
// server's cross-site guard asks of requests made with the cookie.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let unauthorized = () => {};
/** What to do when a request says the session is gone (show the login page). */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

/** The answer to a request, or an ApiError with the API's message. */
async function send(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api${path}`, init);
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${e.message})`);
  }
  if (!response.ok) {
    let message = response.statusText || `HTTP ${response.status}`;
    try {
      const json = await response.json();
      if (json && json.error) message = json.error;
    } catch { /* not JSON */ }
    if (response.status === 401 && !path.startsWith('/auth/')) unauthorized();
    throw new ApiError(response.status, message);
  }
  return response;
}

export async function api(method, path, body) {
  const response = await send(method, path, body);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  if (type.includes('json')) {
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }
  return response.text();
}

/** A list with the whole count the API gives in `X-Total-Count` (a task's output). */
export async function getCounted(path) {
  const response = await send('GET', path);
  return { items: await response.json(), total: Number(response.headers.get('X-Total-Count')) || 0 };
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/**
 * A WebSocket to `/api{path}` (the session cookie goes with it) that reconnects after a drop.
 * `path` may be a function, asked again at each reconnection (a stream's `from`). `onMessage`
 * gets each parsed frame; `onOpen(reconnected)` runs on every (re)connection. Returns { close }.
 */
export function liveSocket(path, onMessage, { onOpen = () => {}, reconnect = true } = {}) {
  let socket = null;
  let closed = false;
  let delay = 500;
  let current = path;
  const open = (again) => {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const target = typeof current === 'function' ? current() : current;
    socket = new WebSocket(`${scheme}//${location.host}/api${target}`);
    socket.onopen = () => { delay = 500; onOpen(again); };
    socket.onmessage = (event) => {
      try { onMessage(JSON.parse(event.data)); } catch (e) { console.error(e); }
    };
    socket.onclose = (event) => {
      if (closed || !reconnect || event.code === 1000) return;
      setTimeout(() => { if (!closed) open(true); }, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  open(false);
  return {
    close() { closed = true; if (socket) socket.close(); },
  };
}
