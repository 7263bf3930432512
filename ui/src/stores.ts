// The stores page: every endpoint the querier knows, grouped by component type, from GET /api/v1/stores.

import { ApiError, get, type Labels, type StoreStatus, type StoresData } from './api';
import { el, formatAge, formatTime } from './format';
import { alertBox } from './alerts';

/** Thanos's sentinel bounds (math.MinInt64 / MaxInt64 ms) mean "no bound". */
function formatBound(ms: number, isMin: boolean): string {
  if (isMin && ms <= -62135596800000) return '-∞';
  if (!isMin && ms >= 9223372036854) return '+∞';
  if (!Number.isFinite(ms)) return String(ms);
  return formatTime(ms);
}

function labelSet(labels: Labels): HTMLElement {
  const names = Object.keys(labels).sort();
  return el(
    'div',
    { class: 'label-set' },
    ...names.map((n) => el('span', { class: 'label-badge' }, `${n}="${labels[n]}"`)),
  );
}

function storeRow(kind: string, s: StoreStatus, now: number): HTMLTableRowElement {
  const healthy = !s.lastError;
  return el(
    'tr',
    { 'data-testid': 'store-row', 'data-health': healthy ? 'up' : 'down', 'data-kind': kind },
    el('td', { class: 'store-name' }, s.name),
    el(
      'td',
      {},
      el('span', { class: healthy ? 'health up' : 'health down', 'data-testid': 'store-health' }, healthy ? 'UP' : 'DOWN'),
    ),
    el(
      'td',
      { class: 'label-sets' },
      ...(s.labelSets && s.labelSets.length > 0 ? s.labelSets.map(labelSet) : [el('span', { class: 'muted' }, 'none')]),
    ),
    el('td', { class: 'time' }, formatBound(s.minTime, true)),
    el('td', { class: 'time' }, formatBound(s.maxTime, false)),
    el('td', { title: s.lastCheck }, formatAge(s.lastCheck, now)),
    el('td', { class: 'last-error' }, s.lastError ?? ''),
  );
}

export function renderStores(data: StoresData, now: number): HTMLElement {
  const root = el('div', { class: 'stores', 'data-testid': 'stores' });
  const kinds = Object.keys(data).sort();
  let total = 0;
  for (const kind of kinds) {
    const stores = (data[kind] ?? []).slice().sort((a, b) => a.name.localeCompare(b.name));
    if (stores.length === 0) continue;
    total += stores.length;
    const up = stores.filter((s) => !s.lastError).length;
    root.append(
      el(
        'section',
        { class: 'store-kind', 'data-kind': kind },
        el('h2', {}, `${kind} `, el('span', { class: 'muted' }, `(${up}/${stores.length} up)`)),
        el(
          'table',
          { class: 'store-table' },
          el(
            'thead',
            {},
            el(
              'tr',
              {},
              ...['Endpoint', 'Health', 'Announced label sets', 'Min time (UTC)', 'Max time (UTC)', 'Last check', 'Last error'].map(
                (h) => el('th', {}, h),
              ),
            ),
          ),
          el('tbody', {}, ...stores.map((s) => storeRow(kind, s, now))),
        ),
      ),
    );
  }
  if (total === 0) root.append(el('div', { class: 'empty' }, 'The querier knows no stores.'));
  return root;
}

export async function showStores(container: HTMLElement): Promise<void> {
  const refresh = el('button', { type: 'button', class: 'btn' }, 'Refresh');
  const body = el('div', {});
  container.replaceChildren(el('div', { class: 'page-head' }, el('h1', {}, 'Stores'), refresh), body);
  const load = async () => {
    body.replaceChildren(el('div', { class: 'muted' }, 'Loading…'));
    try {
      const res = await get<StoresData>('/api/v1/stores');
      body.replaceChildren(
        ...res.warnings.map((w) => alertBox('warning', w)),
        renderStores(res.data ?? {}, Date.now()),
      );
    } catch (e) {
      const message = e instanceof ApiError ? e.message : String(e);
      body.replaceChildren(alertBox('error', `Cannot list the stores: ${message}`));
    }
  };
  refresh.addEventListener('click', () => void load());
  await load();
}
