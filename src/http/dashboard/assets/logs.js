// The log panel: follows one process's output by reading the pages after the last line it has
// (`/logs?after=N`), once a second while it is open.

import { request, processPath, ApiError } from './api.js';

const POLL_MS = 1000;
const FIRST_PAGE = 200;
const MAX_LINES = 2000;

export class LogPanel {
  constructor({ panel, title, lines, note, follow, close, onUnreachable }) {
    Object.assign(this, { panel, title, lines, note, follow });
    this.onUnreachable = onUnreachable;
    this.name = null;
    this.after = null;
    this.timer = null;
    close.addEventListener('click', () => this.close());
  }

  open(name, opener) {
    this.stop();
    this.name = name;
    this.after = null;
    this.opener = opener || null;
    this.title.textContent = `Logs of ${name}`;
    this.lines.replaceChildren();
    this.note.textContent = '';
    this.panel.hidden = false;
    this.panel.dataset.name = name;
    this.lines.focus();
    this.poll();
  }

  close() {
    this.stop();
    this.name = null;
    this.panel.hidden = true;
    if (this.opener && this.opener.isConnected) this.opener.focus();
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Resumes following after the daemon came back (the line numbers carry on). */
  resume() {
    if (this.name && !this.timer) this.poll();
  }

  async poll() {
    const name = this.name;
    if (!name) return;
    const query = this.after === null ? `?lines=${FIRST_PAGE}` : `?after=${this.after}`;
    try {
      const page = await request('GET', processPath(name, `/logs${query}`));
      if (name !== this.name) return;
      this.append(page);
      this.note.textContent = '';
    } catch (err) {
      if (name !== this.name) return;
      if (!(err instanceof ApiError)) {
        this.stop();
        this.onUnreachable(err);
        return;
      }
      this.note.textContent = err.message;
    }
    this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  append(page) {
    if (!page) return;
    if (page.skipped) {
      this.addLine(null, 'note', `… ${page.skipped} lines left out …`);
    }
    for (const line of page.lines || []) this.addLine(line.time, line.stream, line.text);
    if (typeof page.next === 'number') this.after = page.next;
    while (this.lines.childElementCount > MAX_LINES) this.lines.firstElementChild.remove();
    if (this.follow.checked) this.lines.scrollTop = this.lines.scrollHeight;
  }

  addLine(time, stream, text) {
    const row = document.createElement('div');
    row.className = `line ${stream || ''}`;
    if (time) {
      const stamp = document.createElement('span');
      stamp.className = 'time';
      stamp.textContent = `${time.slice(11, 23)} `;
      row.append(stamp);
    }
    row.append(document.createTextNode(text));
    this.lines.append(row);
  }
}
