/**
 * A small SVG plotter for the bench results: line charts, one line per implementation, log–log
 * by default (either axis may be linear, e.g. a count against time), no dependencies, no fonts
 * fetched (generic font families only).
 */

export interface Series {
  label: string;
  color: string;
  dashed?: boolean;
  points: Array<{ x: number; y: number }>;
  /** Default 3.5; 0 for a line without dots (long time series). */
  dotRadius?: number;
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Default 'log'. */
  xScale?: 'log' | 'linear';
  yScale?: 'log' | 'linear';
  /** Tick labels (defaults: peer counts on x, durations on y). */
  xFormat?: (x: number) => string;
  yFormat?: (y: number) => string;
}

export const COLORS: Record<string, string> = {
  jitguard: '#d62728',
  wg: '#1f77b4',
  'wg-node': '#17becf',
  'wireguard-tools.js': '#2ca02c',
  netlink: '#9467bd',
  'netlink-raw': '#8c564b',
  floor: '#555555',
  ip: '#ff7f0e',
  'wg-flush': '#7f7f7f',
};

const W = 480;
const H = 400;
const M = { left: 70, right: 20, top: 40, bottom: 110 };

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function decadeRange(values: number[]): [number, number] {
  const lo = Math.floor(Math.log10(Math.min(...values)));
  let hi = Math.ceil(Math.log10(Math.max(...values)));
  if (hi === lo) hi = lo + 1;
  return [lo, hi];
}

/** Linear axis: a "nice" step (1, 2 or 5 × 10^k) giving about five ticks from 0 (or the minimum) to the maximum. */
function linearTicks(values: number[]): { lo: number; hi: number; ticks: number[] } {
  const lo = Math.min(0, ...values);
  const max = Math.max(...values);
  const span = max - lo || 1;
  const raw = span / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  const hi = Math.ceil(max / step) * step || step;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step / 2; v += step) ticks.push(v);
  return { lo, hi, ticks };
}

export function formatN(n: number): string {
  if (n >= 1e6) return `${+(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${+(n / 1e3).toFixed(1)}k`;
  return String(n);
}

export function formatTime(seconds: number): string {
  if (seconds >= 1) return `${+seconds.toPrecision(3)} s`;
  if (seconds >= 1e-3) return `${+(seconds * 1e3).toPrecision(3)} ms`;
  return `${+(seconds * 1e6).toPrecision(3)} µs`;
}

function panel(p: Panel, offsetX: number): string {
  const all = p.series.flatMap((s) => s.points);
  if (all.length === 0) return `<text x="${offsetX + W / 2}" y="${H / 2}" text-anchor="middle">${esc(p.title)}: no data</text>`;
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const xFormat = p.xFormat ?? formatN;
  const yFormat = p.yFormat ?? formatTime;
  // x: log spreads the distinct x values (sizes); linear runs from 0 (or the minimum).
  let X: (x: number) => number;
  let xTicks: number[];
  if (p.xScale === 'linear') {
    const axis = linearTicks(all.map((q) => q.x));
    X = (x) => offsetX + M.left + ((x - axis.lo) / (axis.hi - axis.lo)) * pw;
    xTicks = axis.ticks;
  } else {
    const xs = [...new Set(all.map((q) => q.x))].sort((a, b) => a - b);
    const [xlo, xhi] = xs.length > 1 ? [Math.log10(xs[0]!), Math.log10(xs[xs.length - 1]!)] : [Math.log10(xs[0]!) - 0.5, Math.log10(xs[0]!) + 0.5];
    const padX = (xhi - xlo) * 0.06;
    X = (x) => offsetX + M.left + ((Math.log10(x) - (xlo - padX)) / (xhi - xlo + 2 * padX)) * pw;
    xTicks = xs;
  }
  const out: string[] = [];
  out.push(`<text x="${offsetX + M.left + pw / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(p.title)}</text>`);
  out.push(`<rect x="${offsetX + M.left}" y="${M.top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  let Y: (y: number) => number;
  if (p.yScale === 'linear') {
    const axis = linearTicks(all.map((q) => q.y));
    Y = (y) => M.top + ph - ((y - axis.lo) / (axis.hi - axis.lo)) * ph;
    for (const v of axis.ticks) {
      const y = Y(v);
      out.push(`<line x1="${offsetX + M.left}" x2="${offsetX + M.left + pw}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${offsetX + M.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${esc(yFormat(v))}</text>`);
    }
  } else {
    const [ylo, yhi] = decadeRange(all.map((q) => q.y));
    Y = (y) => M.top + ph - ((Math.log10(y) - ylo) / (yhi - ylo)) * ph;
    for (let d = ylo; d <= yhi; d++) {
      const y = Y(10 ** d);
      out.push(`<line x1="${offsetX + M.left}" x2="${offsetX + M.left + pw}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      out.push(`<text x="${offsetX + M.left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${esc(yFormat(10 ** d))}</text>`);
      for (let k = 2; k < 10 && d < yhi; k++) {
        const yy = Y(k * 10 ** d);
        out.push(`<line x1="${offsetX + M.left}" x2="${offsetX + M.left + 4}" y1="${yy}" y2="${yy}" stroke="#bbb"/>`);
      }
    }
  }
  for (const x of xTicks) {
    const px = X(x);
    out.push(`<line x1="${px}" x2="${px}" y1="${M.top}" y2="${M.top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${px}" y="${M.top + ph + 16}" text-anchor="middle" font-size="11">${esc(xFormat(x))}</text>`);
  }
  out.push(`<text x="${offsetX + M.left + pw / 2}" y="${M.top + ph + 34}" text-anchor="middle" font-size="12">${esc(p.xLabel)}</text>`);
  out.push(
    `<text transform="translate(${offsetX + 16},${M.top + ph / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(p.yLabel)}</text>`,
  );
  for (const s of p.series) {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${pts.map((q) => `${X(q.x).toFixed(1)},${Y(q.y).toFixed(1)}`).join(' ')}"/>`,
      );
    }
    if ((s.dotRadius ?? 3.5) > 0) for (const q of pts) out.push(`<circle cx="${X(q.x).toFixed(1)}" cy="${Y(q.y).toFixed(1)}" r="${s.dotRadius ?? 3.5}" fill="${s.color}"><title>${esc(`${s.label}: ${p.xFormat ? xFormat(q.x) : `N=${formatN(q.x)}`}, ${yFormat(q.y)}`)}</title></circle>`);
  }
  // Legend under the plot, two columns.
  p.series.forEach((s, i) => {
    const lx = offsetX + M.left + (i % 2) * (pw / 2);
    const ly = M.top + ph + 54 + Math.floor(i / 2) * 17;
    out.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" font-size="11">${esc(s.label)}</text>`);
  });
  return out.join('\n');
}

/** Panels side by side in one SVG document. */
export function renderSvg(panels: Panel[], caption: string): string {
  const width = W * panels.length;
  const height = H + 24;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, Helvetica, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...panels.map((p, i) => panel(p, i * W)),
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle" font-size="11" fill="#444">${esc(caption)}</text>`,
    `</svg>`,
    '',
  ].join('\n');
}
