import type { Labels } from './api';

/** `name{a="1", b="2"}` in the exposition style, name first, other labels sorted. */
export function formatSeries(labels: Labels): string {
  const name = labels.__name__ ?? '';
  const rest = Object.keys(labels)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`);
  if (rest.length === 0) return name || '{}';
  return `${name}{${rest.join(', ')}}`;
}

const durationUnits: [string, number][] = [
  ['y', 365 * 24 * 3600],
  ['w', 7 * 24 * 3600],
  ['d', 24 * 3600],
  ['h', 3600],
  ['m', 60],
  ['s', 1],
  ['ms', 0.001],
];

/** Prometheus duration text (`1h30m`, `90s`, `500ms`) to seconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  const s = text.trim();
  if (s === '') return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+)(ms|y|w|d|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    if (m.index !== consumed) return null;
    consumed += m[0].length;
    const unit = durationUnits.find(([u]) => u === m[2]);
    if (!unit) return null;
    total += Number(m[1]) * unit[1];
  }
  return consumed === s.length && total > 0 ? total : null;
}

/** Seconds to the shortest Prometheus duration text. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '0s';
  let ms = Math.round(seconds * 1000);
  let out = '';
  for (const [unit, size] of durationUnits) {
    const unitMs = Math.round(size * 1000);
    if (ms >= unitMs) {
      out += `${Math.floor(ms / unitMs)}${unit}`;
      ms %= unitMs;
    }
  }
  return out;
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** UTC `YYYY-MM-DD HH:MM:SS` (plus `.mmm` when there are milliseconds). */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(
    d.getUTCMinutes(),
  )}:${pad(d.getUTCSeconds())}`;
  const millis = d.getUTCMilliseconds();
  return millis ? `${base}.${pad(millis, 3)}` : base;
}

/** Parses `YYYY-MM-DD HH:MM[:SS]` (UTC), an RFC 3339 time, or unix seconds; null for anything else. */
export function parseTime(text: string): number | null {
  const s = text.trim();
  if (s === '') return null;
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z)?$/.exec(s);
  if (m) {
    return Date.UTC(
      Number(m[1]),
      Number(m[2]) - 1,
      Number(m[3]),
      Number(m[4]),
      Number(m[5]),
      Number(m[6] ?? 0),
      Number((m[7] ?? '0').padEnd(3, '0')),
    );
  }
  const parsed = Date.parse(s);
  return Number.isNaN(parsed) ? null : parsed;
}

/** A compact number for axis ticks and hover boxes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const abs = Math.abs(v);
  if (abs >= 1e15 || abs < 1e-4) return v.toExponential(2);
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, suffix] of units) {
    if (abs >= size) return `${trim(v / size)}${suffix}`;
  }
  return trim(v);
}

function trim(v: number): string {
  return String(Number(v.toPrecision(4)));
}

/** Relative age of an RFC 3339 time, e.g. `3s ago`; the raw text when it does not parse. */
export function formatAge(rfc3339: string, nowMs: number): string {
  const t = Date.parse(rfc3339);
  if (Number.isNaN(t) || t <= 0) return 'never';
  const ageSec = Math.max(0, (nowMs - t) / 1000);
  if (ageSec < 1) return 'just now';
  return `${formatDuration(Math.round(ageSec))} ago`;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c);
  }
  return node;
}
