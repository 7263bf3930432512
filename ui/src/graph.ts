// The query page: editor, Thanos toggles, table and graph tabs, and every note the server sends back.

import {
  ApiError,
  instantQuery,
  parseErrorPosition,
  rangeQuery,
  type ApiResult,
  type QueryData,
  type ThanosOptions,
} from './api';
import { alertBox } from './alerts';
import { Chart, type ChartSeries } from './chart';
import { createEditor, type PromQLEditor } from './editor';
import { el, formatDuration, formatTime, parseDuration, parseTime } from './format';
import { renderTable } from './table';

type Tab = 'table' | 'graph';

/** Everything a query depends on; mirrored in the page URL so a link reproduces the view. */
interface PanelState {
  expr: string;
  tab: Tab;
  /** Graph range in seconds. */
  range: number;
  /** Graph end / table evaluation time in ms; null = now. */
  end: number | null;
  /** Graph resolution in seconds; null = automatic. */
  step: number | null;
  stacked: boolean;
  opts: ThanosOptions;
}

const rangeSteps = [60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000];
const resolutions: [string, string][] = [
  ['0s', 'Only raw data'],
  ['auto', 'Auto downsampling'],
  ['5m', 'Max 5m downsampling'],
  ['1h', 'Max 1h downsampling'],
];

function readState(): PanelState {
  const q = new URLSearchParams(window.location.search);
  const bool = (name: string, dflt: boolean) => {
    const v = q.get(name);
    return v === null ? dflt : v === '1' || v === 'true';
  };
  const endText = q.get('end');
  return {
    expr: q.get('expr') ?? '',
    tab: q.get('tab') === 'graph' ? 'graph' : 'table',
    range: parseDuration(q.get('range') ?? '') ?? 3600,
    end: endText ? parseTime(endText) : null,
    step: parseDuration(q.get('step') ?? ''),
    stacked: bool('stacked', false),
    opts: {
      dedup: bool('dedup', true),
      partialResponse: bool('partial_response', true),
      maxSourceResolution: resolutions.some(([v]) => v === q.get('max_source_resolution'))
        ? (q.get('max_source_resolution') as string)
        : '0s',
    },
  };
}

function writeState(s: PanelState): void {
  const q = new URLSearchParams();
  if (s.expr) q.set('expr', s.expr);
  q.set('tab', s.tab);
  q.set('range', formatDuration(s.range));
  if (s.end !== null) q.set('end', formatTime(s.end));
  if (s.step !== null) q.set('step', formatDuration(s.step));
  if (s.stacked) q.set('stacked', '1');
  q.set('dedup', s.opts.dedup ? '1' : '0');
  q.set('partial_response', s.opts.partialResponse ? '1' : '0');
  q.set('max_source_resolution', s.opts.maxSourceResolution);
  window.history.replaceState(null, '', `${window.location.pathname}?${q.toString()}`);
}

/** Prometheus's UI default: about 250 points across the range, at least 1s. */
export function autoStep(rangeSec: number): number {
  return Math.max(Math.floor(rangeSec / 250), 1);
}

function checkbox(id: string, label: string, checked: boolean): [HTMLLabelElement, HTMLInputElement] {
  const input = el('input', { type: 'checkbox', id, 'data-testid': id });
  input.checked = checked;
  return [el('label', { class: 'check', for: id }, input, ` ${label}`), input];
}

export function showGraph(container: HTMLElement): void {
  const state = readState();
  let inflight: AbortController | null = null;
  let chart: Chart | null = null;

  // --- expression row
  const editorHost = el('div', { class: 'editor' });
  const execute = el('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'execute' }, 'Execute');
  const exprRow = el('div', { class: 'expr-row' }, editorHost, execute);

  // --- Thanos toggles
  const [dedupLabel, dedup] = checkbox('dedup', 'Use deduplication', state.opts.dedup);
  const [partialLabel, partial] = checkbox('partial-response', 'Use partial response', state.opts.partialResponse);
  const resolution = el('select', { id: 'max-source-resolution', 'data-testid': 'max-source-resolution' });
  for (const [value, text] of resolutions) resolution.append(el('option', { value }, text));
  resolution.value = state.opts.maxSourceResolution;
  resolution.title = 'max_source_resolution: which downsampled data range queries may use';
  const optionsRow = el('div', { class: 'options-row' }, dedupLabel, partialLabel, resolution);

  // --- tabs
  const tabTable = el('button', { type: 'button', class: 'tab', 'data-testid': 'tab-table' }, 'Table');
  const tabGraph = el('button', { type: 'button', class: 'tab', 'data-testid': 'tab-graph' }, 'Graph');
  const tabs = el('div', { class: 'tabs', role: 'tablist' }, tabTable, tabGraph);

  // --- table controls
  const evalTime = el('input', {
    type: 'text',
    class: 'time-input',
    placeholder: 'Evaluation time (now)',
    title: 'UTC, e.g. 2026-01-02 15:04:05, or unix seconds; empty = now',
    'data-testid': 'eval-time',
  });
  const tableControls = el('div', { class: 'controls' }, el('span', { class: 'muted' }, 'Evaluation time'), evalTime);

  // --- graph controls
  const rangeInput = el('input', { type: 'text', class: 'range-input', 'data-testid': 'range', title: 'Range, e.g. 1h, 30m, 2d' });
  const rangeDown = el('button', { type: 'button', class: 'btn', title: 'Shorter range' }, '−');
  const rangeUp = el('button', { type: 'button', class: 'btn', title: 'Longer range' }, '+');
  const endInput = el('input', {
    type: 'text',
    class: 'time-input',
    placeholder: 'End time (now)',
    title: 'UTC, e.g. 2026-01-02 15:04:05, or unix seconds; empty = now',
    'data-testid': 'end-time',
  });
  const stepInput = el('input', { type: 'text', class: 'step-input', placeholder: 'Res. (s)', 'data-testid': 'step', title: 'Resolution (query step), e.g. 15s; empty = automatic' });
  const [stackedLabel, stacked] = checkbox('stacked', 'Stacked', state.stacked);
  const graphControls = el(
    'div',
    { class: 'controls' },
    el('span', { class: 'btn-group' }, rangeDown, rangeInput, rangeUp),
    endInput,
    stepInput,
    stackedLabel,
  );

  const messages = el('div', { class: 'messages', 'data-testid': 'messages' });
  const result = el('div', { class: 'result', 'data-testid': 'result' });
  const stats = el('div', { class: 'stats muted', 'data-testid': 'query-stats' });
  const panel = el('div', { class: 'panel', 'data-testid': 'panel', 'data-status': 'idle' }, exprRow, optionsRow, tabs, tableControls, graphControls, messages, stats, result);
  container.replaceChildren(panel);

  const editor: PromQLEditor = createEditor(editorHost, state.expr, () => void run());

  const syncInputs = () => {
    rangeInput.value = formatDuration(state.range);
    endInput.value = state.end === null ? '' : formatTime(state.end);
    evalTime.value = state.end === null ? '' : formatTime(state.end);
    stepInput.value = state.step === null ? '' : formatDuration(state.step);
    tabTable.classList.toggle('active', state.tab === 'table');
    tabGraph.classList.toggle('active', state.tab === 'graph');
    tabTable.setAttribute('aria-selected', String(state.tab === 'table'));
    tabGraph.setAttribute('aria-selected', String(state.tab === 'graph'));
    tableControls.hidden = state.tab !== 'table';
    graphControls.hidden = state.tab !== 'graph';
    resolution.disabled = state.tab !== 'graph';
  };

  const setStatus = (status: 'idle' | 'loading' | 'done' | 'error') => {
    panel.dataset.status = status;
    execute.disabled = status === 'loading';
  };

  const showError = (e: unknown, expr: string) => {
    if (e instanceof ApiError) {
      const extra: Node[] = [];
      const pos = e.errorType === 'bad_data' ? parseErrorPosition(e.message) : null;
      if (pos) {
        const lines = expr.split('\n');
        const line = lines[pos.line - 1] ?? '';
        const caret = `${' '.repeat(Math.max(0, pos.column - 1))}^`;
        const goTo = el('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'goto-error' }, `Go to line ${pos.line}, column ${pos.column}`);
        goTo.addEventListener('click', () => editor.focusAt(pos.line, pos.column));
        extra.push(el('pre', { class: 'error-pos', 'data-testid': 'error-position' }, `${line}\n${caret}`), goTo);
      }
      messages.append(alertBox('error', `${e.message}${e.errorType !== 'unknown' ? ` (${e.errorType})` : ''}`, ...extra));
      for (const w of e.warnings) messages.append(alertBox('warning', w));
    } else {
      messages.append(alertBox('error', String(e)));
    }
  };

  const showNotes = (res: ApiResult<QueryData>) => {
    for (const w of res.warnings) messages.append(alertBox('warning', w));
    for (const i of res.infos) messages.append(alertBox('info', i));
  };

  async function run(): Promise<void> {
    readInputs();
    const expr = editor.value().trim();
    state.expr = expr;
    writeState(state);
    inflight?.abort();
    messages.replaceChildren();
    stats.textContent = '';
    if (expr === '') {
      result.replaceChildren();
      chart = null;
      setStatus('idle');
      return;
    }
    const controller = new AbortController();
    inflight = controller;
    setStatus('loading');
    const started = performance.now();
    const endMs = state.end ?? Date.now();
    try {
      if (state.tab === 'table') {
        const res = await instantQuery(expr, endMs / 1000, state.opts, controller.signal);
        if (controller.signal.aborted) return;
        showNotes(res);
        chart = null;
        result.replaceChildren(renderTable(res.data));
        stats.textContent = `Load time: ${Math.round(performance.now() - started)}ms · result type: ${res.data.resultType}`;
      } else {
        const step = state.step ?? autoStep(state.range);
        const endSec = Math.floor(endMs / 1000);
        const startSec = endSec - state.range;
        const res = await rangeQuery(expr, startSec, endSec, step, state.opts, controller.signal);
        if (controller.signal.aborted) return;
        showNotes(res);
        const series = toChartSeries(res.data);
        result.replaceChildren();
        if (series === null) {
          messages.append(alertBox('error', `A graph needs a range vector result; the query returned a ${res.data.resultType}.`));
          setStatus('error');
          return;
        }
        if (series.length === 0) {
          result.append(el('div', { class: 'empty', 'data-testid': 'empty-result' }, 'Empty query result'));
        } else {
          chart = new Chart(result);
          chart.setData(series, startSec * 1000, endSec * 1000, step * 1000, state.stacked);
        }
        stats.textContent = `Load time: ${Math.round(performance.now() - started)}ms · resolution: ${formatDuration(step)} · ${series.length} series`;
      }
      setStatus('done');
    } catch (e) {
      if (controller.signal.aborted) return;
      result.replaceChildren();
      showError(e, expr);
      setStatus('error');
    } finally {
      if (inflight === controller) inflight = null;
    }
  }

  function readInputs(): void {
    const range = parseDuration(rangeInput.value);
    if (range !== null) state.range = range;
    const timeText = state.tab === 'table' ? evalTime.value : endInput.value;
    state.end = timeText.trim() === '' ? null : (parseTime(timeText) ?? state.end);
    state.step = stepInput.value.trim() === '' ? null : (parseDuration(stepInput.value) ?? state.step);
    state.stacked = stacked.checked;
    state.opts = {
      dedup: dedup.checked,
      partialResponse: partial.checked,
      maxSourceResolution: resolution.value,
    };
    syncInputs();
  }

  const rerun = () => {
    if (editor.value().trim() !== '') void run();
    else {
      readInputs();
      writeState(state);
    }
  };

  execute.addEventListener('click', () => void run());
  for (const input of [dedup, partial, stacked]) input.addEventListener('change', rerun);
  resolution.addEventListener('change', rerun);
  for (const input of [rangeInput, endInput, stepInput, evalTime]) {
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') rerun();
    });
    input.addEventListener('change', rerun);
  }
  const switchTab = (tab: Tab) => {
    if (state.tab === tab) return;
    readInputs();
    state.tab = tab;
    syncInputs();
    rerun();
  };
  tabTable.addEventListener('click', () => switchTab('table'));
  tabGraph.addEventListener('click', () => switchTab('graph'));
  const stepRange = (dir: 1 | -1) => {
    readInputs();
    const next = dir > 0 ? rangeSteps.find((r) => r > state.range) : [...rangeSteps].reverse().find((r) => r < state.range);
    if (next !== undefined) state.range = next;
    syncInputs();
    rerun();
  };
  rangeUp.addEventListener('click', () => stepRange(1));
  rangeDown.addEventListener('click', () => stepRange(-1));

  syncInputs();
  if (state.expr !== '') void run();
  editor.view.focus();
}

/** Range query results as chart lines; native histograms are drawn as their observation count. */
function toChartSeries(data: QueryData): ChartSeries[] | null {
  if (data.resultType !== 'matrix') return null;
  return data.result.map((s) => {
    const points: [number, number][] = [];
    for (const [t, v] of s.values ?? []) points.push([t * 1000, Number(v)]);
    for (const [t, h] of s.histograms ?? []) points.push([t * 1000, Number(h.count)]);
    points.sort((a, b) => a[0] - b[0]);
    return { labels: s.metric, points, histogramCount: (s.histograms?.length ?? 0) > 0 };
  });
}
