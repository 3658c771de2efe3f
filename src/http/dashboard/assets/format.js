// How the page writes figures: the same units as the socket's text table.

/** Seconds as `1h2m3s`, `-` when there are none. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '-';
  let s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h}h${m}m`;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

export function percent(value) {
  return Number.isFinite(value) ? `${value.toFixed(1)}%` : '-';
}

export function megabytes(value) {
  return Number.isFinite(value) ? `${value.toFixed(1)} MB` : '-';
}

/** A pid, or `-` when the process is not running (the API says 0). */
export function pid(value) {
  return value ? String(value) : '-';
}

/** A token that is safe in a class name (`s-running`). */
export function token(value) {
  return String(value || 'unknown').toLowerCase().replace(/[^a-z0-9-]/g, '-');
}
