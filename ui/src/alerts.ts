import { el } from './format';

export type AlertKind = 'error' | 'warning' | 'info';

const titles: Record<AlertKind, string> = { error: 'Error', warning: 'Warning', info: 'Info' };

/** A message box; the text is the server's, shown as-is (never as HTML). */
export function alertBox(kind: AlertKind, message: string, ...extra: Node[]): HTMLElement {
  return el(
    'div',
    { class: `alert alert-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': `alert-${kind}` },
    el('strong', {}, `${titles[kind]}: `),
    el('span', { class: 'alert-text' }, message),
    ...extra,
  );
}
