// The daemon's HTTP API as the page uses it: JSON requests with the session's CSRF token, and the
// event stream. A request that cannot reach the daemon throws Unreachable, so the page can show
// its banner; an answer with an error status throws ApiError carrying the daemon's sentence.

export class Unreachable extends Error {}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the daemon answered ${status}`);
    this.status = status;
    this.kind = body && body.kind;
  }
}

let csrfToken = null;

/** Remembers the token that mutating requests must carry (from /login or /api/v1/session). */
export function setCsrf(token) {
  csrfToken = token || null;
}

/** Sends one request; resolves to the parsed JSON body (or null when there is none). */
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let text;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    text = await response.text();
  } catch (err) {
    throw new Unreachable(String(err));
  }
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  // A daemon that is shutting down answers 503: to the page that is the daemon going away.
  if (response.status === 503) {
    throw new Unreachable('the daemon is shutting down');
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** The path of one process's resource, with the name escaped. */
export function processPath(name, rest = '') {
  return `/api/v1/processes/${encodeURIComponent(name)}${rest}`;
}

// Event names the stream may use; the handler reads the kind from the data, not from the name.
const EVENT_NAMES = ['status', 'state', 'defined', 'deleted', 'removed', 'process', 'change'];

/**
 * Opens the event stream (the browser sends the session cookie with it). `onEvent` gets each
 * event's parsed data; `onOpen` and `onError` tell the caller about the connection.
 */
export function openEvents({ onEvent, onOpen, onError }) {
  const source = new EventSource('/api/v1/events');
  const handle = (message) => {
    let data = null;
    try {
      data = JSON.parse(message.data);
    } catch {
      data = null;
    }
    onEvent(data, message.type);
  };
  source.onmessage = handle;
  for (const name of EVENT_NAMES) source.addEventListener(name, handle);
  source.onopen = () => onOpen(source);
  source.onerror = () => onError(source);
  return source;
}
