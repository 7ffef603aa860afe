// Bare metal (admins only): Ironic nodes — state, inventory, power and
// provision actions.
import { h, fill, table, button, props, status, link } from '../ui.js';

// Provision verbs a node in each state accepts, as Ironic's state
// machine has them (the API refuses the others anyway).
const verbs = {
  enroll: ['manage'],
  manageable: ['provide', 'inspect', 'clean'],
  available: ['manage', 'active'],
  active: ['deleted', 'rebuild'],
  'deploy failed': ['deleted', 'active'],
  'clean failed': ['manage'],
  'inspect failed': ['manage', 'inspect'],
  error: ['deleted', 'rebuild'],
};

export async function render(ctx) {
  if (ctx.params[0]) return detail(ctx, ctx.params[0]);
  const { session, main } = ctx;
  const { nodes } = await session.get('baremetal', '/v1/nodes/detail');
  fill(main,
    h('h1', {}, 'Bare-metal nodes'),
    table('Nodes', [
      { label: 'Name', get: n => link('#/baremetal/' + n.uuid, n.name || n.uuid) },
      { label: 'Power', get: n => (n.power_state || 'unknown') + (n.target_power_state ? ' → ' + n.target_power_state : '') },
      { label: 'Provision state', get: n => n.provision_state + (n.target_provision_state ? ' → ' + n.target_provision_state : '') },
      { label: 'Maintenance', get: n => (n.maintenance ? 'yes' : 'no') },
      { label: 'Driver', get: n => n.driver },
      { label: 'Instance', get: n => n.instance_uuid || '' },
      { label: 'Last error', get: n => h('span', { class: 'error' }, n.last_error || '') },
    ], nodes, 'No bare-metal nodes enrolled.'));
}

async function detail(ctx, id) {
  const { session, main } = ctx;
  const n = await session.get('baremetal', '/v1/nodes/' + encodeURIComponent(id));
  const put = (what, path, body) => button(what, async () => {
    await session.put('baremetal', '/v1/nodes/' + n.uuid + path, body);
    status(what + ' requested for ' + (n.name || n.uuid) + '.');
    setTimeout(() => ctx.refresh(), 1500);
  });
  const inv = h('div', { id: 'inventory' });
  fill(main,
    h('h1', {}, 'Node ' + (n.name || n.uuid)),
    h('p', {}, link('#/baremetal', 'All nodes')),
    h('dl', { class: 'props' },
      h('dt', {}, 'Power'), h('dd', { id: 'node-power' }, (n.power_state || 'unknown') + (n.target_power_state ? ' → ' + n.target_power_state : '')),
      h('dt', {}, 'Provision state'), h('dd', {}, n.provision_state),
      h('dt', {}, 'Last error'), h('dd', { class: 'error' }, n.last_error || '')),
    h('div', { class: 'actions', role: 'group', 'aria-label': 'Power' },
      put('Power on', '/states/power', { target: 'power on' }),
      put('Power off', '/states/power', { target: 'power off' }),
      put('Reboot', '/states/power', { target: 'rebooting' })),
    h('div', { class: 'actions', role: 'group', 'aria-label': 'Provisioning' },
      (verbs[n.provision_state] || []).map(v => put('Provision: ' + v, '/states/provision', { target: v }))),
    h('h2', {}, 'Inventory'), inv,
    h('details', {}, h('summary', {}, 'Every field'), props(n, 'Node')));
  try {
    const r = await session.get('baremetal', '/v1/nodes/' + n.uuid + '/inventory');
    fill(inv, props(r.inventory || r, 'Inventory'));
  } catch (e) {
    fill(inv, h('p', { class: 'empty' }, e.status === 404 ? 'Not inspected yet.' : e.message));
  }
}
