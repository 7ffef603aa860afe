// The console's shell: login, the project switcher, navigation and a hash
// router over the pages. State lives in memory only.
import { login, rescope, projects } from './api.js';
import { h, status } from './ui.js';
import * as instances from './pages/instances.js';
import * as images from './pages/images.js';
import * as network from './pages/network.js';
import * as volumes from './pages/volumes.js';
import * as objects from './pages/objects.js';
import * as baremetal from './pages/baremetal.js';
import * as cluster from './pages/cluster.js';
import * as events from './pages/events.js';
import * as keypairs from './pages/keypairs.js';

// pages in navigation order; admin pages are not even listed for others
// (the APIs behind them refuse non-admins anyway).
const pages = [
  { path: 'instances', label: 'Instances', page: instances },
  { path: 'keypairs', label: 'Key pairs', page: keypairs },
  { path: 'images', label: 'Images', page: images },
  { path: 'network', label: 'Networks', page: network.networks },
  { path: 'security-groups', label: 'Security groups', page: network.securityGroups },
  { path: 'routers', label: 'Routers & floating IPs', page: network.routers },
  { path: 'volumes', label: 'Volumes', page: volumes, service: 'volumev3' },
  { path: 'objects', label: 'Containers', page: objects, service: 'object-store' },
  { path: 'events', label: 'Events', page: events },
  { path: 'baremetal', label: 'Bare metal', page: baremetal, admin: true, service: 'baremetal' },
  { path: 'cluster', label: 'Cluster', page: cluster, admin: true },
];

const app = { session: null, leave: [] };

function visible(p) {
  return (!p.admin || app.session.isAdmin) && (!p.service || app.session.has(p.service));
}

async function route() {
  for (const f of app.leave.splice(0)) f();
  const main = document.getElementById('main');
  if (!app.session) return;
  const [first, ...rest] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const p = pages.find(x => x.path === first && visible(x));
  if (!p) {
    location.hash = '#/instances';
    return;
  }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.path === p.path) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
  status('');
  const ctx = {
    session: app.session, main, params: rest,
    onLeave: f => app.leave.push(f),
    refresh: () => route(),
  };
  // Arriving from the navigation, a keyboard or screen reader user
  // continues at the page's content, not at the menu.
  const fromNav = document.activeElement && document.activeElement.closest('#nav');
  try {
    await p.page.render(ctx);
    if (fromNav) main.focus();
  } catch (e) {
    main.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

async function showSession() {
  const s = app.session;
  const nav = document.getElementById('nav');
  nav.replaceChildren(h('ul', {}, pages.filter(visible).map(p =>
    h('li', {}, h('a', { href: '#/' + p.path, 'data-path': p.path }, p.label)))));
  nav.hidden = false;
  const sel = h('select', { id: 'project-switch' });
  const list = await projects(s).catch(() => []);
  for (const p of list) sel.append(h('option', { value: p.id, selected: s.project && p.id === s.project.id }, p.name));
  sel.addEventListener('change', async () => {
    try {
      app.session = await rescope(app.session, sel.value);
      await showSession();
      route();
    } catch (e) {
      status(e.message, true);
    }
  });
  const out = h('button', { type: 'button', id: 'logout' }, 'Log out');
  out.addEventListener('click', () => logout());
  document.getElementById('session').replaceChildren(
    h('span', { id: 'whoami' }, s.user.name + (s.isAdmin ? ' (admin)' : '')),
    h('label', { for: 'project-switch' }, 'Project'), sel, out);
}

async function logout() {
  const s = app.session;
  app.session = null;
  for (const f of app.leave.splice(0)) f();
  if (s) fetch('/identity/v3/auth/tokens', { method: 'DELETE', headers: { 'X-Auth-Token': s.token, 'X-Subject-Token': s.token } }).catch(() => {});
  location.reload();
}

function start() {
  const loginForm = document.getElementById('login-form');
  loginForm.addEventListener('submit', async ev => {
    ev.preventDefault();
    const err = document.getElementById('login-error');
    err.textContent = '';
    const submit = document.getElementById('login-submit');
    submit.disabled = true;
    try {
      const v = Object.fromEntries(new FormData(loginForm));
      let s = await login(v);
      if (!s.project) {
        // An unscoped token has no catalog: take the first project.
        const list = await projects(s);
        if (!list.length) throw new Error('this user has no project to work in');
        s = await rescope(s, list[0].id);
      }
      app.session = s;
      loginForm.reset();
      await showSession();
      if (!location.hash || location.hash === '#') location.hash = '#/instances';
      else route();
    } catch (e) {
      err.textContent = e.message;
    } finally {
      submit.disabled = false;
    }
  });
  window.addEventListener('hashchange', route);
  document.getElementById('login-user').focus();
}

start();
