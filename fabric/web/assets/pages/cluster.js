// Cluster (admins only): Raft leader and members, nodes with their
// inventory, storage health with heal and rebalance progress, each node's
// dataplane counters, and capacity over time. The /rackstack/v1 routes
// behind it answer admins only; this page is not even listed for others.
import { h, fill, table, props, bytes } from '../ui.js';
import { history, rate, chart } from '../chart.js';

export async function render(ctx) {
  const { session, main } = ctx;
  const [st, nodes] = await Promise.all([
    session.get('', '/rackstack/v1/cluster/status'),
    session.get('', '/rackstack/v1/nodes'),
  ]);
  const storage = h('div', { id: 'storage' }, h('p', { class: 'loading' }, 'Loading storage status…'));
  const dataplane = h('div', { id: 'dataplane' });
  const capacity = h('div', { id: 'capacity', class: 'charts' });
  fill(main,
    h('h1', {}, 'Cluster'),
    h('dl', { class: 'props' },
      h('dt', {}, 'Leader'), h('dd', { id: 'cluster-leader' }, st.leader || '(none)'),
      h('dt', {}, 'Term'), h('dd', {}, String(st.term)),
      h('dt', {}, 'Commit index'), h('dd', {}, String(st.commit_index)),
      h('dt', {}, 'Applied index'), h('dd', {}, String(st.applied_index) + ' on ' + st.node),
      h('dt', {}, 'Healthy'), h('dd', { class: st.healthy ? 'state-active' : 'state-error' }, st.healthy ? 'yes' : 'no'),
      h('dt', {}, 'Quorum'), h('dd', {}, st.quorum ? 'yes' : 'no'),
      (st.problems || []).length > 0 && [h('dt', {}, 'Problems'), h('dd', { class: 'error' }, st.problems.join('; '))],
      st.halted && [h('dt', {}, 'Halted'), h('dd', { class: 'error' }, st.halted)]),
    table('Raft members', [
      { label: 'Name', get: m => m.name + (m.leader ? ' (leader)' : '') },
      { label: 'Raft address', get: m => m.address },
      { label: 'API', get: m => m.api_url },
      { label: 'Suffrage', get: m => m.suffrage },
      { label: 'Up', get: m => (m.up ? 'yes' : 'no') },
      { label: 'Last contact', get: m => m.last_contact },
    ], st.members || []),
    table('Nodes', [
      { label: 'Name', get: n => n.name },
      { label: 'Status', get: n => n.status },
      { label: 'CPUs', get: n => String(n.inventory.cpus) + ' × ' + (n.inventory.cpu_model || '') },
      { label: 'Memory', get: n => bytes(n.inventory.memory_bytes) },
      { label: 'Disks', get: n => (n.inventory.disks || []).map(d => d.name + ' ' + bytes(d.size_bytes)).join(', ') },
      { label: 'Kernel', get: n => n.inventory.kernel },
      { label: 'Last heartbeat', get: n => n.last_heartbeat },
    ], nodes.nodes || []),
    h('h2', {}, 'Capacity'), capacity,
    h('h2', {}, 'Storage'), storage,
    h('h2', {}, 'Dataplane'), dataplane);
  await Promise.all([
    storageStatus(session, storage),
    dataplaneCounters(session, nodes.nodes || [], dataplane),
    capacityCharts(session, capacity).catch(e => fill(capacity, h('p', { class: 'error' }, e.message))),
  ]);
}

async function storageStatus(session, box) {
  try {
    const s = await session.get('', '/rackstack/v1/storage/status');
    const misplaced = s.parts ? Math.round(100 * (s.parts - s.misplaced) / s.parts) : 100;
    fill(box,
      h('p', {}, h('label', { for: 'rebalance' }, 'Placed where placement wants them: '),
        h('progress', { id: 'rebalance', max: 100, value: misplaced }, misplaced + '%'), ' ' + misplaced + '%'),
      h('p', {}, `Heal queue: ${s.heal_queue}, degraded parts: ${s.degraded}, misplaced: ${s.misplaced} of ${s.parts}, coding ${s.k}+${s.m}; capacity ${bytes(s.capacity.free_bytes)} free of ${bytes(s.capacity.total_bytes)}.`),
      table('Disks', Object.keys((s.disks || [])[0] || {}).map(k => ({ label: k.replace(/_/g, ' '), get: d => (typeof d[k] === 'object' ? JSON.stringify(d[k]) : String(d[k])) })), s.disks || []),
      h('details', {}, h('summary', {}, 'Everything in the status'), props(s, 'Storage status')));
  } catch (e) {
    fill(box, h('p', { class: 'error' }, e.message));
  }
}

async function dataplaneCounters(session, nodes, box) {
  const parts = await Promise.all(nodes.map(async n => {
    try {
      const st = await session.get('', '/rackstack/v1/nodes/' + encodeURIComponent(n.name) + '/dataplane');
      // The counters (drops by reason above all) are what an operator
      // reads; programs and maps are there when asked for.
      const { counters = {}, ...rest } = st;
      return h('section', { 'aria-label': 'Dataplane of ' + n.name },
        h('h3', {}, n.name),
        table('Counters of ' + n.name, [
          { label: 'Counter', get: ([k]) => k.replace(/_/g, ' ') },
          { label: 'Value', get: ([, v]) => String(v) },
        ], Object.entries(counters).filter(([, v]) => v !== 0), 'Every counter is zero.'),
        h('details', {}, h('summary', {}, 'Programs, maps and the rest'), props(rest, 'Dataplane of ' + n.name)));
    } catch (e) {
      return h('p', {}, n.name + ': ' + e.message);
    }
  }));
  fill(box, ...parts);
}

// capacityCharts draws used against total for vCPUs, RAM and disk, one
// line pair per node, and the object store's throughput.
async function capacityCharts(session, box) {
  const { families = [] } = await session.get('', '/rackstack/v1/history');
  const kept = new Set(families);
  const lines = async (fam, what, toRate) => {
    if (!kept.has(fam)) return [];
    const series = await history(session, fam);
    return series.map(s => ({ label: (s.labels.node || '') + ' ' + what, points: toRate ? rate(s.points) : s.points }));
  };
  const pair = async (title, unit, used, total) =>
    chart(title, unit, [...await lines(used, 'used'), ...await lines(total, 'total')]);
  const figs = await Promise.all([
    pair('vCPUs', 'vCPUs', 'rackstack_node_vcpus_allocated', 'rackstack_node_vcpus'),
    pair('Memory', 'bytes', 'rackstack_node_memory_allocated_bytes', 'rackstack_node_memory_bytes'),
    pair('Disk', 'bytes', 'rackstack_node_disk_allocated_bytes', 'rackstack_node_disk_bytes'),
    (async () => chart('Object storage throughput', 'bytes/s', [
      ...await lines('rackstack_storage_read_bytes_total', 'read', true),
      ...await lines('rackstack_storage_written_bytes_total', 'written', true)]))(),
  ]);
  fill(box, figs);
}
