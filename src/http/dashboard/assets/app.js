// The dashboard's entry point: login, the live table, actions, the start form, and the banner
// with reconnection when the daemon cannot be reached.

import { request, setCsrf, openEvents, processPath, Unreachable, ApiError } from './api.js';
import { Samples } from './sparkline.js';
import { renderTable } from './table.js';
import { LogPanel } from './logs.js';

const $ = (id) => document.getElementById(id);

/** How often the table is read again for fresh CPU and memory (events carry status only). */
const SAMPLE_MS = 2000;
/** How soon after an event the table is read again (several events make one read). */
const EVENT_REFRESH_MS = 50;
/** Reconnection tries: the first soon, then slower, never slower than the last. */
const RETRY_MS = [500, 1000, 2000, 3000];

const state = {
  view: null,
  rows: new Map(),
  samples: new Map(),
  events: null,
  sampleTimer: null,
  refreshTimer: null,
  refreshing: false,
  refreshAgain: false,
  down: false,
  retries: 0,
  retryTimer: null,
};

const logs = new LogPanel({
  panel: $('log-panel'),
  title: $('log-title'),
  lines: $('log-lines'),
  note: $('log-note'),
  follow: $('log-follow'),
  close: $('log-close'),
  onUnreachable: () => goDown(),
});

function announce(text) {
  $('announce').textContent = text;
}

function show(view) {
  state.view = view;
  $('loading').hidden = true;
  $('login-view').hidden = view !== 'login';
  $('app-view').hidden = view !== 'app';
  $('logout').hidden = view !== 'app';
}

// ---- connection ----------------------------------------------------------------------------

function setConnection(status) {
  const dot = $('connection');
  dot.className = `connection ${status}`;
  dot.title = status === 'live' ? 'Live updates on' : status === 'down' ? 'Unreachable' : '';
}

function stopLive() {
  if (state.events) {
    state.events.close();
    state.events = null;
  }
  clearInterval(state.sampleTimer);
  state.sampleTimer = null;
  logs.stop();
}

/** The daemon cannot be reached: show the banner and keep trying to come back. */
function goDown() {
  stopLive();
  if (!state.down) {
    state.down = true;
    state.retries = 0;
    $('banner').hidden = false;
    setConnection('down');
  }
  clearTimeout(state.retryTimer);
  const wait = RETRY_MS[Math.min(state.retries, RETRY_MS.length - 1)];
  state.retries += 1;
  state.retryTimer = setTimeout(connect, wait);
}

function cameBack() {
  if (!state.down) return;
  state.down = false;
  clearTimeout(state.retryTimer);
  $('banner').hidden = true;
  announce('Connected to the daemon again.');
}

/** Handles an error of any request: unreachable, a lost session, or the daemon's refusal. */
function failed(err, target) {
  if (err instanceof Unreachable) {
    goDown();
  } else if (err instanceof ApiError && err.status === 401) {
    showLogin('Your session has ended; log in again.');
  } else if (target) {
    target.textContent = err.message;
  }
}

/** Asks who we are and shows the table or the login form. */
async function connect() {
  let session;
  try {
    session = await request('GET', '/api/v1/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      cameBack();
      showLogin('');
      return;
    }
    goDown();
    return;
  }
  cameBack();
  setCsrf(session && session.csrf);
  showApp();
}

// ---- login ---------------------------------------------------------------------------------

function showLogin(message) {
  stopLive();
  setConnection('');
  setCsrf(null);
  show('login');
  $('login-error').textContent = message || '';
  $('secret').focus();
}

$('login-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const secret = $('secret').value;
  $('login-error').textContent = '';
  try {
    const answer = await request('POST', '/login', { secret });
    $('secret').value = '';
    setCsrf(answer && answer.csrf);
    showApp();
  } catch (err) {
    if (err instanceof ApiError) {
      $('login-error').textContent =
        err.status === 401 ? 'That secret is not right.' : err.message;
      $('secret').select();
    } else {
      goDown();
    }
  }
});

$('logout').addEventListener('click', async () => {
  try {
    await request('POST', '/logout');
  } catch (err) {
    if (err instanceof Unreachable) return goDown();
  }
  showLogin('You are logged out.');
});

// ---- the live table ------------------------------------------------------------------------

function showApp() {
  const first = state.view !== 'app';
  show('app');
  if (first) $('main').focus();
  startLive();
}

function startLive() {
  if (!state.events) {
    state.events = openEvents({
      onEvent: onEvent,
      onOpen: () => setConnection('live'),
      onError: onEventsError,
    });
  }
  if (!state.sampleTimer) state.sampleTimer = setInterval(refresh, SAMPLE_MS);
  logs.resume();
  refresh();
}

function onEvent(data) {
  if (data && data.name && data.kind === 'status' && data.old !== undefined) {
    announce(`${data.name}: ${data.old} to ${data.new}`);
  }
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, EVENT_REFRESH_MS);
}

// The browser retries a broken stream by itself, but it cannot tell a dead daemon from a lost
// session: ask once, then either show the banner or open the stream again.
async function onEventsError(source) {
  if (source !== state.events) return;
  source.close();
  state.events = null;
  setConnection('');
  try {
    await request('GET', '/api/v1/session');
  } catch (err) {
    failed(err);
    return;
  }
  if (state.view === 'app' && !state.down) {
    setTimeout(() => {
      if (state.view === 'app' && !state.down) startLive();
    }, RETRY_MS[1]);
  }
}

async function refresh() {
  if (state.view !== 'app' || state.down) return;
  if (state.refreshing) {
    state.refreshAgain = true;
    return;
  }
  state.refreshing = true;
  try {
    const processes = await request('GET', '/api/v1/processes');
    draw(Array.isArray(processes) ? processes : []);
  } catch (err) {
    failed(err, $('action-error'));
  } finally {
    state.refreshing = false;
  }
  if (state.refreshAgain) {
    state.refreshAgain = false;
    refresh();
  }
}

function draw(processes) {
  const now = Date.now();
  for (const p of processes) {
    let history = state.samples.get(p.name);
    if (!history) {
      history = new Samples();
      state.samples.set(p.name, history);
    }
    history.push(now, p.cpu_percent, p.memory_mb);
  }
  const names = new Set(processes.map((p) => p.name));
  for (const name of state.samples.keys()) if (!names.has(name)) state.samples.delete(name);
  renderTable($('processes').tBodies[0], state.rows, processes, state.samples, onAction);
  $('count').textContent = `(${processes.length})`;
  $('empty').hidden = processes.length > 0;
  document.body.dataset.updated = String(now);
}

// ---- actions -------------------------------------------------------------------------------

function confirmAction(text, verb) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = verb;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

async function onAction(action, name, button) {
  $('action-error').textContent = '';
  if (action === 'logs') {
    logs.open(name, button);
    return;
  }
  if (action === 'kill' && !(await confirmAction(`Kill ${name} with SIGKILL now?`, 'Kill'))) {
    return;
  }
  if (
    action === 'delete' &&
    !(await confirmAction(`Stop ${name} and delete its definition?`, 'Delete'))
  ) {
    return;
  }
  button.disabled = true;
  try {
    if (action === 'delete') {
      await request('DELETE', processPath(name));
      if (logs.name === name) logs.close();
    } else {
      await request('POST', processPath(name, `/${action}`));
    }
    announce(`${name}: ${action} done.`);
  } catch (err) {
    failed(err, $('action-error'));
  } finally {
    button.disabled = false;
  }
  refresh();
}

$('start-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target;
  const definition = {
    name: form.elements.name.value.trim(),
    command: form.elements.command.value.trim(),
    log: form.elements.log.checked,
  };
  const cwd = form.elements.cwd.value.trim();
  if (cwd) definition.cwd = cwd;
  $('start-error').textContent = '';
  try {
    await request('POST', '/api/v1/processes', definition);
    announce(`${definition.name} started.`);
    form.reset();
    form.elements.name.focus();
  } catch (err) {
    failed(err, $('start-error'));
  }
  refresh();
});

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !$('log-panel').hidden && !$('confirm').open) logs.close();
});

connect();
