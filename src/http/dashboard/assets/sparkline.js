// The small chart of CPU and memory in each row, drawn as inline SVG from the samples the page
// has seen (the API gives only the latest reading, so the history lives in the page).

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 100;
const HEIGHT = 24;
/** How long a sample is kept: the chart shows the last few minutes. */
export const WINDOW_MS = 5 * 60 * 1000;
/** The shortest span the chart is drawn over, so a page just opened does not stretch two dots. */
const MIN_SPAN_MS = 10 * 1000;

/** Keeps one process's samples: push a reading, drop those older than the window. */
export class Samples {
  constructor() {
    this.points = [];
  }

  push(time, cpu, memory) {
    this.points.push({ time, cpu: cpu || 0, memory: memory || 0 });
    const oldest = time - WINDOW_MS;
    while (this.points.length && this.points[0].time < oldest) this.points.shift();
  }
}

function polyline(points, now, span, pick, floor, cls) {
  const top = Math.max(floor, ...points.map(pick));
  const coords = points.map((p) => {
    const x = WIDTH - ((now - p.time) / span) * WIDTH;
    const y = HEIGHT - 1 - (pick(p) / top) * (HEIGHT - 2);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('class', cls);
  line.setAttribute('points', coords.join(' '));
  return line;
}

function range(points, pick) {
  const values = points.map(pick);
  return [Math.min(...values), Math.max(...values)];
}

/** Draws `samples` into `svg` (made by createSparkline) and sets its accessible description. */
export function drawSparkline(svg, samples, now = Date.now()) {
  const points = samples.points;
  svg.replaceChildren();
  const base = document.createElementNS(SVG, 'line');
  base.setAttribute('class', 'base');
  base.setAttribute('x1', '0');
  base.setAttribute('x2', String(WIDTH));
  base.setAttribute('y1', String(HEIGHT - 0.5));
  base.setAttribute('y2', String(HEIGHT - 0.5));
  svg.append(base);
  if (points.length === 0) {
    svg.setAttribute('aria-label', 'No samples yet');
    return;
  }
  // The chart stretches over the samples there are, up to the whole window.
  const span = Math.max(MIN_SPAN_MS, now - points[0].time);
  svg.append(polyline(points, now, span, (p) => p.memory, 1, 'mem'));
  svg.append(polyline(points, now, span, (p) => p.cpu, 5, 'cpu'));
  const [cpuLow, cpuHigh] = range(points, (p) => p.cpu);
  const [memLow, memHigh] = range(points, (p) => p.memory);
  const minutes = Math.max(1, Math.round((now - points[0].time) / 60000));
  svg.setAttribute(
    'aria-label',
    `CPU ${cpuLow.toFixed(1)} to ${cpuHigh.toFixed(1)}%, memory ${memLow.toFixed(1)} to ` +
      `${memHigh.toFixed(1)} MB over the last ${minutes} min`,
  );
}

export function createSparkline() {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('width', String(WIDTH));
  svg.setAttribute('height', String(HEIGHT));
  svg.setAttribute('role', 'img');
  svg.setAttribute('preserveAspectRatio', 'none');
  return svg;
}
