// Instances: Nova servers — list, create, and a detail page with actions,
// console log, the live serial console and charts.
import { Terminal } from '../vendor/xterm/xterm.mjs';
import { h, fill, table, field, form, button, danger, status, link } from '../ui.js';
import { history, rate, chart } from '../chart.js';

export async function render(ctx) {
  if (ctx.params[0] === 'new') return create(ctx);
  if (ctx.params[0]) return detail(ctx, ctx.params[0]);
  return list(ctx);
}

function addresses(s) {
  return Object.entries(s.addresses || {}).map(([net, addrs]) => net + ': ' + addrs.map(a => a.addr).join(', ')).join('; ');
}

async function list(ctx) {
  const { session, main } = ctx;
  const { servers } = await session.get('compute', '/servers/detail');
  fill(main,
    h('h1', {}, 'Instances'),
    h('p', {}, link('#/instances/new', 'Launch instance')),
    table('Instances in this project', [
      { label: 'Name', get: s => link('#/instances/' + s.id, s.name) },
      { label: 'Status', get: s => h('span', { class: 'state state-' + s.status.toLowerCase() }, s.status) },
      { label: 'Addresses', get: addresses },
      { label: 'Flavor', get: s => (s.flavor && (s.flavor.original_name || s.flavor.id)) || '' },
      { label: 'Created', get: s => s.created },
    ], servers, 'No instances yet.'));
  // Transitional states change on their own: look again shortly.
  if (servers.some(s => !['ACTIVE', 'SHUTOFF', 'ERROR'].includes(s.status))) {
    const t = setTimeout(() => ctx.refresh(), 3000);
    ctx.onLeave(() => clearTimeout(t));
  }
}

async function create(ctx) {
  const { session, main } = ctx;
  const [imgs, flavors, nets, keys] = await Promise.all([
    session.get('image', '/v2/images'),
    session.get('compute', '/flavors/detail'),
    session.get('network', '/v2.0/networks'),
    session.get('compute', '/os-keypairs'),
  ]);
  const opt = (xs, label) => xs.map(x => ({ value: x.id, label: label(x) }));
  const f = form('Launch instance', [
    field('Name', 'name', { required: true }),
    field('Image', 'image', { options: opt(imgs.images.filter(i => i.status === 'active'), i => i.name || i.id), required: true }),
    field('Flavor', 'flavor', { options: opt(flavors.flavors, f => `${f.name} (${f.vcpus} vCPU, ${f.ram} MiB, ${f.disk} GiB)`), required: true }),
    // As in Horizon: an external network that is not shared is the
    // routers' to use, not a place for guests' ports.
    field('Network', 'network', { options: opt(nets.networks.filter(n => !n['router:external'] || n.shared), n => n.name || n.id), required: true }),
    field('Key pair', 'key', { options: [{ value: '', label: '(none)' }, ...keys.keypairs.map(k => ({ value: k.keypair.name, label: k.keypair.name }))] }),
    field('User data (script)', 'user_data', { textarea: true }),
  ], 'Launch', async v => {
    const server = { name: v.name, imageRef: v.image, flavorRef: v.flavor, networks: [{ uuid: v.network }] };
    if (v.key) server.key_name = v.key;
    if (v.user_data) server.user_data = btoa(unescape(encodeURIComponent(v.user_data)));
    const { server: s } = await session.post('compute', '/servers', { server });
    status('Launching ' + v.name + '.');
    location.hash = '#/instances/' + s.id;
  });
  fill(main, h('h1', {}, 'Launch instance'), f);
  f.querySelector('input').focus();
}

async function detail(ctx, id) {
  const { session, main } = ctx;
  const { server: s } = await session.get('compute', '/servers/' + id);
  const image = await imageLabel(session, s);
  const act = (label, body) => button(label, async () => {
    await session.post('compute', '/servers/' + id + '/action', body);
    status(label + ' requested for ' + s.name + '.');
    ctx.refresh();
  });
  const busy = !['ACTIVE', 'SHUTOFF', 'ERROR'].includes(s.status);
  const actions = h('div', { class: 'actions', role: 'group', 'aria-label': 'Instance actions' },
    s.status === 'SHUTOFF' && act('Start', { 'os-start': null }),
    s.status === 'ACTIVE' && act('Stop', { 'os-stop': null }),
    s.status === 'ACTIVE' && act('Reboot', { reboot: { type: 'SOFT' } }),
    danger('Delete', async () => {
      await session.del('compute', '/servers/' + id);
      status('Deleting ' + s.name + '.');
      location.hash = '#/instances';
    }, { id: 'delete-server' }));
  const props = h('dl', { class: 'props' },
    h('dt', {}, 'Status'), h('dd', { id: 'server-status', class: 'state state-' + s.status.toLowerCase() }, s.status + (s['OS-EXT-STS:task_state'] ? ' (' + s['OS-EXT-STS:task_state'] + ')' : '')),
    h('dt', {}, 'ID'), h('dd', {}, s.id),
    h('dt', {}, 'Addresses'), h('dd', {}, addresses(s)),
    h('dt', {}, 'Image'), h('dd', { id: 'server-image', title: (s.image && s.image.id) || '' }, image),
    h('dt', {}, 'Key pair'), h('dd', {}, s.key_name || ''),
    s['OS-EXT-SRV-ATTR:host'] && [h('dt', {}, 'Host'), h('dd', {}, s['OS-EXT-SRV-ATTR:host'])],
    s.fault && [h('dt', {}, 'Fault'), h('dd', { class: 'error' }, s.fault.message)]);
  const consoleBox = h('div', { id: 'serial', class: 'serial' });
  const openConsole = button('Open serial console', () => serial(ctx, id, consoleBox), { id: 'open-console', disabled: s.status !== 'ACTIVE' });
  const logBox = h('pre', { id: 'console-log', class: 'log', tabindex: 0, 'aria-label': 'Console log' }, '');
  const charts = h('div', { id: 'charts', class: 'charts' });
  const events = h('div', { id: 'events' });
  const changes = h('div', { id: 'state-changes' });
  fill(main,
    h('h1', {}, 'Instance ' + s.name), props, actions,
    h('h2', {}, 'Charts'), button('Refresh charts', () => instanceCharts(session, s, charts), { id: 'refresh-charts' }), charts,
    h('h2', {}, 'Serial console'), openConsole, consoleBox,
    h('h2', {}, 'Console log'), button('Refresh log', () => consoleLog(session, id, logBox), { id: 'refresh-log' }), logBox,
    h('h2', {}, 'Actions and events'), events,
    h('h2', {}, 'State changes'), changes);
  if (busy) {
    // Watch a transition through: BUILD → ACTIVE, a stop, a reboot.
    const t = setTimeout(() => ctx.refresh(), 2000);
    ctx.onLeave(() => clearTimeout(t));
  }
  await Promise.all([
    consoleLog(session, id, logBox).catch(e => { logBox.textContent = e.message; }),
    instanceEvents(session, id, events).catch(e => fill(events, h('p', { class: 'error' }, e.message))),
    stateChanges(session, id, changes).catch(e => fill(changes, h('p', { class: 'error' }, e.message))),
    instanceCharts(session, s, charts).catch(e => fill(charts, h('p', { class: 'error' }, e.message))),
  ]);
}

// imageLabel names a server's image: Nova gives only its id, so ask
// Glance; an image that is gone, or not the caller's to see, shows its id
// ("" for a server booted from a volume).
async function imageLabel(session, s) {
  const id = s.image && s.image.id;
  if (!id) return '';
  try {
    const img = await session.get('image', '/v2/images/' + id);
    return img.name || id;
  } catch (e) {
    return id;
  }
}

async function consoleLog(session, id, box) {
  const out = await session.post('compute', '/servers/' + id + '/action', { 'os-getConsoleOutput': { length: 100 } });
  // The log is what the guest wrote to its terminal: drop the escape
  // sequences (colours, clear screen) and control bytes a <pre> would show
  // as boxes.
  box.textContent = (out.output || '').replace(/\x1b(\[[0-9;?]*[ -\/]*[@-~]|[@-Z\\-_]|c)/g, '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  box.scrollTop = box.scrollHeight;
}

async function instanceEvents(session, id, box) {
  const { instanceActions } = await session.get('compute', '/servers/' + id + '/os-instance-actions');
  fill(box, table('Actions on this instance', [
    { label: 'Action', get: a => a.action },
    { label: 'Started', get: a => a.start_time },
    { label: 'Request', get: a => a.request_id },
    { label: 'User', get: a => a.user_id },
    { label: 'Message', get: a => a.message || '' },
    { label: 'Events', get: a => actionEvents(session, id, a.request_id) },
  ], instanceActions || []));
}

// stateChanges lists the event log's entries for the instance: every
// state change with who or what caused it (a crash included).
async function stateChanges(session, id, box) {
  const { events = [] } = await session.get('', '/rackstack/v1/events?resource=' + encodeURIComponent(id));
  fill(box, table('State changes of this instance', [
    { label: 'Time', get: e => e.time },
    { label: 'Action', get: e => e.action },
    { label: 'From', get: e => e.from || '' },
    { label: 'To', get: e => e.to || '' },
    { label: 'Reason', get: e => e.reason || '' },
    { label: 'User', get: e => e.user_id || '' },
    { label: 'Request', get: e => e.request_id || '' },
  ], events.slice().reverse(), 'No state changes recorded.'));
}

// actionEvents is a disclosure that loads an action's events (each step
// with its result and, when it failed, the fault) when opened.
function actionEvents(session, id, req) {
  const body = h('div', {}, 'Loading…');
  const d = h('details', {}, h('summary', {}, 'Events'), body);
  d.addEventListener('toggle', async () => {
    if (!d.open || d.dataset.loaded) return;
    d.dataset.loaded = '1';
    try {
      const { instanceAction: a } = await session.get('compute', '/servers/' + id + '/os-instance-actions/' + encodeURIComponent(req));
      fill(body, table('Events of ' + req, [
        { label: 'Event', get: e => e.event },
        { label: 'Result', get: e => e.result || '' },
        { label: 'Started', get: e => e.start_time || '' },
        { label: 'Finished', get: e => e.finish_time || '' },
        { label: 'Host', get: e => e.host || '' },
        { label: 'Fault', get: e => h('span', { class: 'error' }, e.traceback || (e.details || '')) },
      ], a.events || [], 'No events.'));
    } catch (e) {
      fill(body, h('span', { class: 'error' }, e.message));
    }
  });
  return d;
}

async function instanceCharts(session, s, box) {
  const byServer = { server_id: s.id };
  const one = async fam => {
    const series = await history(session, fam, byServer);
    return series.length ? series[0].points : [];
  };
  const [cpu, rx, tx, rd, wr] = await Promise.all([
    'rackstack_instance_cpu_seconds_total',
    'rackstack_instance_network_receive_bytes_total',
    'rackstack_instance_network_transmit_bytes_total',
    'rackstack_instance_disk_read_bytes_total',
    'rackstack_instance_disk_write_bytes_total',
  ].map(one));
  fill(box,
    chart('CPU', 'cores busy', [{ label: 'CPU', points: rate(cpu) }]),
    chart('Network', 'bytes/s', [{ label: 'receive', points: rate(rx) }, { label: 'transmit', points: rate(tx) }]),
    chart('Disk', 'bytes/s', [{ label: 'read', points: rate(rd) }, { label: 'write', points: rate(wr) }]));
}

// serial opens the guest's first serial port in an xterm.js terminal over
// the websocket whose URL Nova's remote-consoles hands out (it carries a
// short-lived console token, not the user's).
async function serial(ctx, id, box) {
  const { remote_console: rc } = await ctx.session.post('compute', '/servers/' + id + '/remote-consoles',
    { remote_console: { protocol: 'serial', type: 'serial' } });
  // Same origin as the page (the CSP's connect-src), whatever host the
  // URL was built with.
  const u = new URL(rc.url);
  const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + u.pathname + u.search, ['binary']);
  ws.binaryType = 'arraybuffer';
  const term = new Terminal({ convertEol: false, rows: 20, cols: 90, screenReaderMode: true });
  box.replaceChildren();
  term.open(box);
  const enc = new TextEncoder();
  ws.onmessage = e => term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
  ws.onclose = () => { term.write('\r\n[console closed]\r\n'); box.dataset.state = 'closed'; };
  ws.onopen = () => { box.dataset.state = 'open'; term.focus(); };
  term.onData(d => { if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d)); });
  ctx.onLeave(() => { ws.close(); term.dispose(); });
}
