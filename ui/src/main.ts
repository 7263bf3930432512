// Entry point: one page served at /, /graph and /stores; the path picks the view.

import './style.css';

import { showGraph } from './graph';
import { showStores } from './stores';

function route(): void {
  const app = document.getElementById('app');
  if (!app) return;
  const page = window.location.pathname.replace(/\/+$/, '').split('/').pop() ?? '';
  const isStores = page === 'stores';
  document.querySelectorAll<HTMLAnchorElement>('nav a[data-page]').forEach((a) => {
    a.classList.toggle('active', (a.dataset.page === 'stores') === isStores);
  });
  document.title = isStores ? 'Stores · Hypnos' : 'Query · Hypnos';
  if (isStores) void showStores(app);
  else showGraph(app);
}

route();
