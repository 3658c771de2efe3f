// The table of processes. Rows are kept by name and updated in place, so a live update never
// takes the keyboard focus away from the button a person is on.

import * as fmt from './format.js';
import { createSparkline, drawSparkline } from './sparkline.js';

const COLUMNS = [
  ['name', 'Name'],
  ['status', 'Status'],
  ['health', 'Health'],
  ['pid', 'PID'],
  ['cpu', 'CPU'],
  ['memory', 'Memory'],
  ['uptime', 'Uptime'],
  ['restarts', 'Restarts'],
  ['spark', 'Recent'],
  ['actions', 'Actions'],
];

// Which buttons a row has, and when each one makes sense.
const ALIVE = new Set(['running', 'stopping', 'backoff', 'initial', 'waiting']);
const ACTIONS = [
  ['start', 'Start', (p) => !ALIVE.has(p.status) && p.status !== 'scheduled'],
  ['stop', 'Stop', (p) => ALIVE.has(p.status) || p.status === 'scheduled'],
  ['restart', 'Restart', () => true],
  ['kill', 'Kill', (p) => Boolean(p.pid)],
  ['logs', 'Logs', (p) => p.log_enabled !== false],
  ['delete', 'Delete', () => true],
];

function buildRow(name, onAction) {
  const row = document.createElement('tr');
  row.dataset.name = name;
  const cells = {};
  for (const [key, label] of COLUMNS) {
    const cell = document.createElement(key === 'name' ? 'th' : 'td');
    if (key === 'name') cell.scope = 'row';
    cell.className = `col-${key}`;
    cell.dataset.label = label;
    if (['pid', 'cpu', 'memory', 'uptime', 'restarts'].includes(key)) cell.classList.add('num');
    cells[key] = cell;
    row.append(cell);
  }
  cells.name.textContent = name;
  const badge = document.createElement('span');
  badge.className = 'badge';
  cells.status.append(badge);
  const spark = createSparkline();
  cells.spark.append(spark);
  const actions = document.createElement('div');
  actions.className = 'actions';
  const buttons = {};
  for (const [action, label] of ACTIONS) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = label;
    button.dataset.action = action;
    button.setAttribute('aria-label', `${label} ${name}`);
    if (action === 'kill' || action === 'delete') button.classList.add('danger');
    else if (action !== 'restart') button.classList.add('quiet');
    button.addEventListener('click', () => onAction(action, name, button));
    buttons[action] = button;
    actions.append(button);
  }
  cells.actions.append(actions);
  return { row, cells, badge, spark, buttons };
}

function setText(cell, text) {
  if (cell.textContent !== text) cell.textContent = text;
}

/** Keeps the rows of `tbody` equal to `processes` (sorted by name); `rows` is kept between calls. */
export function renderTable(tbody, rows, processes, samples, onAction) {
  const seen = new Set();
  let previous = null;
  for (const p of processes) {
    seen.add(p.name);
    let entry = rows.get(p.name);
    if (!entry) {
      entry = buildRow(p.name, onAction);
      rows.set(p.name, entry);
    }
    const { row, cells, badge, spark, buttons } = entry;
    row.dataset.status = p.status;
    setText(badge, p.status);
    badge.className = `badge s-${fmt.token(p.status)}`;
    const health = p.health === undefined || p.health === null ? '' : String(p.health);
    setText(cells.health, health || '-');
    cells.health.className = `col-health${health ? ` h-${fmt.token(health)}` : ''}`;
    setText(cells.pid, fmt.pid(p.pid));
    setText(cells.cpu, fmt.percent(p.cpu_percent));
    setText(cells.memory, fmt.megabytes(p.memory_mb));
    setText(cells.uptime, fmt.duration(p.uptime_secs));
    setText(cells.restarts, String(p.restarts ?? 0));
    cells.status.title = p.error || '';
    for (const [action, , enabled] of ACTIONS) {
      buttons[action].hidden = !enabled(p);
    }
    const history = samples.get(p.name);
    if (history) drawSparkline(spark, history);
    // Keep the daemon's order (by name) without moving rows that are already in place.
    const expectedNext = previous ? previous.nextSibling : tbody.firstChild;
    if (expectedNext !== row) tbody.insertBefore(row, expectedNext);
    previous = row;
  }
  for (const [name, entry] of rows) {
    if (!seen.has(name)) {
      entry.row.remove();
      rows.delete(name);
    }
  }
}
