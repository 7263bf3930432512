// The table view of an instant query: one row per series, native histograms as count / sum with their
// buckets in a small table, range vectors as value@timestamp lists.

import type { Histogram, HistogramBucket, QueryData, SamplePair } from './api';
import { el, formatSeries, formatTime } from './format';

const maxRows = 10000;

export function renderTable(data: QueryData): HTMLElement {
  const body = el('tbody');
  const table = el('table', { class: 'result-table', 'data-testid': 'result-table' }, body);
  let count = 0;

  const row = (series: string, value: Node | string) => {
    count++;
    if (count > maxRows) return;
    body.append(
      el(
        'tr',
        { 'data-testid': 'result-row' },
        el('td', { class: 'series' }, series),
        el('td', { class: 'value' }, value),
      ),
    );
  };

  switch (data.resultType) {
    case 'vector':
      for (const s of data.result) {
        if (s.histogram) row(formatSeries(s.metric), renderHistogram(s.histogram[1]));
        else if (s.value) row(formatSeries(s.metric), s.value[1]);
      }
      break;
    case 'matrix':
      for (const s of data.result) {
        const lines: Node[] = [];
        for (const [t, v] of s.values ?? []) lines.push(el('div', {}, `${v} @${formatSampleTime(t)}`));
        for (const [t, h] of s.histograms ?? []) {
          lines.push(el('div', {}, el('span', {}, `@${formatSampleTime(t)} `), renderHistogram(h)));
        }
        row(formatSeries(s.metric), el('div', { class: 'range-values' }, ...lines));
      }
      break;
    case 'scalar':
      row('scalar', scalarText(data.result));
      break;
    case 'string':
      row('string', scalarText(data.result));
      break;
  }

  const wrapper = el('div', { class: 'table-wrapper' });
  if (count === 0) {
    wrapper.append(el('div', { class: 'empty', 'data-testid': 'empty-result' }, 'Empty query result'));
    return wrapper;
  }
  const note =
    count > maxRows
      ? el('div', { class: 'note' }, `Showing ${maxRows} of ${count} series; narrow the query to see the rest.`)
      : el('div', { class: 'note' }, `${count} ${count === 1 ? 'series' : 'series'}`);
  wrapper.append(note, table);
  return wrapper;
}

function scalarText([t, v]: SamplePair): string {
  return `${v} @${formatSampleTime(t)}`;
}

function formatSampleTime(t: number): string {
  return `${t} (${formatTime(t * 1000)})`;
}

/** Interval notation of a bucket from its boundary rule. */
export function bucketRange([rule, lo, hi]: HistogramBucket): string {
  const left = rule === 1 || rule === 3 ? '[' : '(';
  const right = rule === 0 || rule === 3 ? ']' : ')';
  return `${left}${lo}, ${hi}${right}`;
}

export function renderHistogram(h: Histogram): HTMLElement {
  const buckets = h.buckets ?? [];
  const summary = el(
    'summary',
    {},
    el('span', { class: 'hist-tag' }, 'histogram'),
    ` count: ${h.count}, sum: ${h.sum}, ${buckets.length} bucket${buckets.length === 1 ? '' : 's'}`,
  );
  const details = el('details', { class: 'histogram', 'data-testid': 'histogram' }, summary);
  if (buckets.length > 0) {
    const max = Math.max(...buckets.map((b) => Number(b[3])).filter(Number.isFinite), 0);
    const rows = buckets.map((b) => {
      const c = Number(b[3]);
      const pct = max > 0 && Number.isFinite(c) ? Math.max(0, (c / max) * 100) : 0;
      return el(
        'tr',
        {},
        el('td', { class: 'bucket-range' }, bucketRange(b)),
        el('td', { class: 'bucket-count' }, b[3]),
        el('td', { class: 'bucket-bar' }, el('span', { style: `width:${pct.toFixed(1)}%` })),
      );
    });
    details.append(
      el(
        'table',
        { class: 'bucket-table' },
        el('thead', {}, el('tr', {}, el('th', {}, 'bucket'), el('th', {}, 'count'), el('th', {}, ''))),
        el('tbody', {}, ...rows),
      ),
    );
  }
  return details;
}
