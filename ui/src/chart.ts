// A small canvas line chart for range query results: time axis, nice value ticks, gaps where samples
// are missing, optional stacking, a legend that isolates a series on click, and a hover box.

import type { Labels } from './api';
import { el, formatNumber, formatSeries, formatTime } from './format';

export interface ChartSeries {
  labels: Labels;
  /** Timestamps in ms and values; timestamps need not cover every step. */
  points: [number, number][];
  /** The values are a native histogram's observation count. */
  histogramCount?: boolean;
}

const palette = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
  '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf',
  '#3366cc', '#dc3912', '#109618', '#990099', '#0099c6',
];

const margin = { top: 10, right: 16, bottom: 28, left: 64 };
const hoverRows = 12;

interface Layout {
  width: number;
  height: number;
  plotW: number;
  plotH: number;
  yMin: number;
  yMax: number;
}

/** Values on the step grid: `grid[series][i]` is the value at `start + i*step`, or null. */
interface Grid {
  start: number;
  step: number;
  count: number;
  values: (number | null)[][];
  /** Stacked bottoms and tops (same shape as values) when stacking. */
  bottoms?: number[][];
  tops?: (number | null)[][];
}

export class Chart {
  readonly root: HTMLDivElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly overlay: HTMLCanvasElement;
  private readonly hover: HTMLDivElement;
  private readonly legend: HTMLDivElement;
  private readonly resize: ResizeObserver;
  private series: ChartSeries[] = [];
  private grid: Grid | null = null;
  private layout: Layout | null = null;
  private stacked = false;
  private start = 0;
  private end = 0;
  private isolated: number | null = null;

  constructor(parent: HTMLElement) {
    this.canvas = el('canvas', { class: 'chart-canvas', 'data-testid': 'graph-canvas' });
    this.overlay = el('canvas', { class: 'chart-overlay' });
    this.hover = el('div', { class: 'chart-hover', 'data-testid': 'graph-hover' });
    this.hover.hidden = true;
    const plot = el('div', { class: 'chart-plot' }, this.canvas, this.overlay, this.hover);
    this.legend = el('div', { class: 'chart-legend', 'data-testid': 'graph-legend' });
    this.root = el('div', { class: 'chart' }, plot, this.legend);
    parent.append(this.root);
    this.overlay.addEventListener('mousemove', (e) => this.onMove(e));
    this.overlay.addEventListener('mouseleave', () => this.clearHover());
    this.resize = new ResizeObserver(() => this.draw());
    this.resize.observe(plot);
  }

  destroy(): void {
    this.resize.disconnect();
    this.root.remove();
  }

  setData(series: ChartSeries[], startMs: number, endMs: number, stepMs: number, stacked: boolean): void {
    this.series = series;
    this.start = startMs;
    this.end = endMs;
    this.stacked = stacked;
    this.isolated = null;
    this.grid = buildGrid(series, startMs, endMs, stepMs);
    this.renderLegend();
    this.draw();
  }

  private visible(i: number): boolean {
    return this.isolated === null || this.isolated === i;
  }

  private renderLegend(): void {
    this.legend.replaceChildren();
    this.series.forEach((s, i) => {
      const item = el(
        'div',
        { class: 'legend-item', 'data-testid': 'legend-item', title: 'Click to show only this series; click again to show all' },
        el('span', { class: 'legend-swatch', style: `background:${color(i)}` }),
        el('span', { class: 'legend-label' }, formatSeries(s.labels) + (s.histogramCount ? ' (histogram count)' : '')),
      );
      item.addEventListener('click', () => {
        this.isolated = this.isolated === i ? null : i;
        this.legend.querySelectorAll('.legend-item').forEach((node, j) => {
          node.classList.toggle('legend-dimmed', !this.visible(j));
        });
        if (this.grid && this.stacked) stack(this.grid, (j) => this.visible(j));
        this.draw();
      });
      this.legend.append(item);
    });
  }

  private draw(): void {
    const plot = this.canvas.parentElement;
    if (!plot || !this.grid) return;
    const width = Math.max(200, plot.clientWidth);
    const height = Math.max(150, plot.clientHeight);
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.overlay]) {
      c.width = Math.round(width * dpr);
      c.height = Math.round(height * dpr);
      c.style.width = `${width}px`;
      c.style.height = `${height}px`;
    }
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const grid = this.grid;
    const [yMin, yMax] = valueRange(grid, this.stacked, (i) => this.visible(i));
    const layout: Layout = {
      width,
      height,
      plotW: width - margin.left - margin.right,
      plotH: height - margin.top - margin.bottom,
      yMin,
      yMax,
    };
    this.layout = layout;
    this.drawAxes(ctx, layout);

    let drawnSeries = 0;
    let drawnPoints = 0;
    const order = grid.values.map((_, i) => i).filter((i) => this.visible(i));
    for (const i of order) {
      const tops = this.stacked && grid.tops ? grid.tops[i] : grid.values[i];
      const points = this.drawSeries(ctx, layout, tops, this.stacked && grid.bottoms ? grid.bottoms[i] : null, color(i));
      if (points > 0) drawnSeries++;
      drawnPoints += points;
    }
    // Attributes a browser test (and a curious user) can read: what was actually drawn.
    this.canvas.dataset.series = String(drawnSeries);
    this.canvas.dataset.points = String(drawnPoints);
  }

  private x(layout: Layout, t: number): number {
    const span = Math.max(1, this.end - this.start);
    return margin.left + ((t - this.start) / span) * layout.plotW;
  }

  private y(layout: Layout, v: number): number {
    const span = layout.yMax - layout.yMin || 1;
    return margin.top + layout.plotH - ((v - layout.yMin) / span) * layout.plotH;
  }

  private drawAxes(ctx: CanvasRenderingContext2D, layout: Layout): void {
    ctx.save();
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#555';
    ctx.strokeStyle = '#e4e4e4';
    ctx.lineWidth = 1;

    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of niceTicks(layout.yMin, layout.yMax, Math.max(2, Math.floor(layout.plotH / 40)))) {
      const y = Math.round(this.y(layout, v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(margin.left, y);
      ctx.lineTo(margin.left + layout.plotW, y);
      ctx.stroke();
      ctx.fillText(formatNumber(v), margin.left - 6, y);
    }

    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    const { ticks, withSeconds, withDate } = timeTicks(this.start, this.end, Math.max(2, Math.floor(layout.plotW / 110)));
    for (const t of ticks) {
      const x = Math.round(this.x(layout, t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, margin.top);
      ctx.lineTo(x, margin.top + layout.plotH);
      ctx.stroke();
      ctx.fillText(timeLabel(t, withSeconds, withDate), x, margin.top + layout.plotH + 6);
    }

    ctx.strokeStyle = '#999';
    ctx.strokeRect(margin.left + 0.5, margin.top + 0.5, layout.plotW, layout.plotH);
    ctx.restore();
  }

  /** Draws one series as connected runs; a missing step breaks the line. Returns points drawn. */
  private drawSeries(
    ctx: CanvasRenderingContext2D,
    layout: Layout,
    values: (number | null)[],
    bottoms: number[] | null,
    stroke: string,
  ): number {
    const grid = this.grid;
    if (!grid) return 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(margin.left, margin.top, layout.plotW, layout.plotH);
    ctx.clip();
    ctx.strokeStyle = stroke;
    ctx.fillStyle = stroke;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    let drawn = 0;
    let run: number[] = [];
    const flush = () => {
      if (run.length === 0) return;
      const xs = run.map((i) => this.x(layout, grid.start + i * grid.step));
      if (run.length === 1) {
        const v = values[run[0]] ?? 0;
        ctx.beginPath();
        ctx.arc(xs[0], this.y(layout, v), 2, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        if (bottoms) {
          ctx.beginPath();
          run.forEach((i, k) => ctx.lineTo(xs[k], this.y(layout, values[i] ?? 0)));
          for (let k = run.length - 1; k >= 0; k--) ctx.lineTo(xs[k], this.y(layout, bottoms[run[k]]));
          ctx.closePath();
          ctx.globalAlpha = 0.3;
          ctx.fill();
          ctx.globalAlpha = 1;
        }
        ctx.beginPath();
        run.forEach((i, k) => {
          const y = this.y(layout, values[i] ?? 0);
          if (k === 0) ctx.moveTo(xs[k], y);
          else ctx.lineTo(xs[k], y);
        });
        ctx.stroke();
      }
      drawn += run.length;
      run = [];
    };
    for (let i = 0; i < values.length; i++) {
      if (values[i] === null || !Number.isFinite(values[i] as number)) flush();
      else run.push(i);
    }
    flush();
    ctx.restore();
    return drawn;
  }

  private clearHover(): void {
    this.hover.hidden = true;
    const ctx = this.overlay.getContext('2d');
    ctx?.clearRect(0, 0, this.overlay.width, this.overlay.height);
  }

  private onMove(e: MouseEvent): void {
    const grid = this.grid;
    const layout = this.layout;
    if (!grid || !layout || grid.count === 0) return;
    const rect = this.overlay.getBoundingClientRect();
    const px = e.clientX - rect.left;
    const py = e.clientY - rect.top;
    if (px < margin.left || px > margin.left + layout.plotW) {
      this.clearHover();
      return;
    }
    const t = this.start + ((px - margin.left) / layout.plotW) * (this.end - this.start);
    const idx = Math.min(grid.count - 1, Math.max(0, Math.round((t - grid.start) / grid.step)));
    const at = grid.start + idx * grid.step;
    const rows: { i: number; v: number; y: number }[] = [];
    grid.values.forEach((vals, i) => {
      const v = vals[idx];
      if (v === null || !this.visible(i)) return;
      const shown = this.stacked && grid.tops ? (grid.tops[i][idx] ?? v) : v;
      rows.push({ i, v, y: this.y(layout, shown) });
    });

    const ctx = this.overlay.getContext('2d');
    if (!ctx) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, layout.width, layout.height);
    const x = Math.round(this.x(layout, at)) + 0.5;
    ctx.strokeStyle = 'rgba(170,0,0,0.6)';
    ctx.beginPath();
    ctx.moveTo(x, margin.top);
    ctx.lineTo(x, margin.top + layout.plotH);
    ctx.stroke();
    const nearest = rows.length > 0 ? rows.reduce((a, b) => (Math.abs(b.y - py) < Math.abs(a.y - py) ? b : a)) : null;
    if (nearest) {
      ctx.fillStyle = color(nearest.i);
      ctx.beginPath();
      ctx.arc(x, nearest.y, 4, 0, 2 * Math.PI);
      ctx.fill();
    }

    rows.sort((a, b) => Math.abs(a.y - py) - Math.abs(b.y - py));
    const shown = rows.slice(0, hoverRows);
    const none = rows.length === 0 ? [el('div', { class: 'muted' }, 'no samples at this step')] : [];
    const more = rows.length > shown.length ? [el('div', { class: 'hover-more' }, `… ${rows.length - shown.length} more`)] : [];
    this.hover.replaceChildren(
      el('div', { class: 'hover-time' }, formatTime(at)),
      ...none,
      ...shown.map((r) =>
        el(
          'div',
          { class: r === nearest ? 'hover-row hover-nearest' : 'hover-row' },
          el('span', { class: 'legend-swatch', style: `background:${color(r.i)}` }),
          el('span', { class: 'hover-value' }, String(r.v)),
          el('span', { class: 'hover-series' }, formatSeries(this.series[r.i].labels)),
        ),
      ),
      ...more,
    );
    this.hover.hidden = false;
    const boxW = this.hover.offsetWidth;
    const left = px + 16 + boxW > layout.width ? Math.max(0, px - 16 - boxW) : px + 16;
    this.hover.style.left = `${left}px`;
    this.hover.style.top = `${Math.max(0, Math.min(py, layout.height - this.hover.offsetHeight))}px`;
  }
}

function color(i: number): string {
  return palette[i % palette.length];
}

function buildGrid(series: ChartSeries[], start: number, end: number, step: number): Grid {
  const safeStep = Math.max(1, step);
  const count = Math.max(0, Math.floor((end - start) / safeStep) + 1);
  const values = series.map((s) => {
    const row: (number | null)[] = new Array(count).fill(null);
    for (const [t, v] of s.points) {
      const i = Math.round((t - start) / safeStep);
      if (i >= 0 && i < count) row[i] = v;
    }
    return row;
  });
  const grid: Grid = { start, step: safeStep, count, values };
  return grid;
}

/** Cumulative tops per step, in series order; a missing value leaves the stack where it was. */
function stack(grid: Grid, visible: (i: number) => boolean): void {
  const base = new Array(grid.count).fill(0);
  grid.bottoms = [];
  grid.tops = [];
  grid.values.forEach((vals, i) => {
    const bottoms = base.slice();
    const tops = vals.map((v, k) => {
      if (v === null || !Number.isFinite(v) || !visible(i)) return v === null ? null : base[k];
      base[k] += v;
      return base[k];
    });
    grid.bottoms?.push(bottoms);
    grid.tops?.push(tops);
  });
}

function valueRange(grid: Grid, stacked: boolean, visible: (i: number) => boolean): [number, number] {
  if (stacked) stack(grid, visible);
  let lo = Infinity;
  let hi = -Infinity;
  const rows = stacked && grid.tops ? grid.tops : grid.values;
  rows.forEach((vals, i) => {
    if (!visible(i)) return;
    for (const v of vals) {
      if (v === null || !Number.isFinite(v)) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  });
  if (!Number.isFinite(lo)) return [0, 1];
  if (stacked) lo = Math.min(0, lo);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * 0.05;
  return [lo >= 0 && lo - pad < 0 ? 0 : lo - pad, hi + pad];
}

/** Round tick values (1, 2, 5 × 10^n) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, wanted: number): number[] {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return [lo];
  const raw = span / wanted;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

const tickSteps = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
].map((s) => s * 1000);

/** Time ticks on round UTC boundaries. */
export function timeTicks(
  start: number,
  end: number,
  wanted: number,
): { ticks: number[]; withSeconds: boolean; withDate: boolean } {
  const span = Math.max(1, end - start);
  const step = tickSteps.find((s) => span / s <= wanted) ?? Math.ceil(span / wanted / 86400000) * 86400000;
  const ticks: number[] = [];
  for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
  return { ticks, withSeconds: step < 60000, withDate: span > 86400000 };
}

function timeLabel(t: number, withSeconds: boolean, withDate: boolean): string {
  const full = formatTime(t); // YYYY-MM-DD HH:MM:SS
  const clock = withSeconds ? full.slice(11, 19) : full.slice(11, 16);
  return withDate ? `${full.slice(5, 10)} ${clock}` : clock;
}
