// Volumes: Cinder v3 volumes and snapshots; attach and detach go through
// Nova, as `openstack server add volume` does.
import { h, fill, table, field, form, button, danger, status } from '../ui.js';

export async function render(ctx) {
  const { session, main } = ctx;
  const [{ volumes }, { snapshots }, { servers }] = await Promise.all([
    session.get('volumev3', '/volumes/detail'),
    session.get('volumev3', '/snapshots/detail'),
    session.get('compute', '/servers'),
  ]);
  const serverName = id => (servers.find(s => s.id === id) || {}).name || id;
  const volName = id => (volumes.find(v => v.id === id) || {}).name || id;
  const attachedTo = v => (v.attachments || []).map(a => serverName(a.server_id) + ' ' + (a.device || '')).join(', ');
  fill(main,
    h('h1', {}, 'Volumes'),
    table('Volumes', [
      { label: 'Name', get: v => v.name || v.id },
      { label: 'Status', get: v => h('span', { class: 'state state-' + v.status }, v.status) },
      { label: 'Size', get: v => v.size + ' GiB' },
      { label: 'Attached to', get: attachedTo },
      { label: '', get: v => [
        v.status === 'in-use' && (v.attachments || []).map(a => button('Detach', async () => {
          await session.del('compute', '/servers/' + a.server_id + '/os-volume_attachments/' + v.id);
          status('Detaching ' + (v.name || v.id) + '.');
          ctx.refresh();
        }, { 'aria-label': 'Detach ' + (v.name || v.id) })),
        button('Snapshot', async () => {
          await session.post('volumev3', '/snapshots', { snapshot: { volume_id: v.id, name: (v.name || v.id) + '-snap', force: v.status === 'in-use' } });
          status('Snapshot of ' + (v.name || v.id) + ' requested.');
          ctx.refresh();
        }, { 'aria-label': 'Snapshot ' + (v.name || v.id) }),
        v.status !== 'in-use' && danger('Delete', async () => {
          await session.del('volumev3', '/volumes/' + v.id);
          status('Deleting ' + (v.name || v.id) + '.');
          ctx.refresh();
        }, { 'aria-label': 'Delete volume ' + (v.name || v.id) })] },
    ], volumes, 'No volumes.'),
    form('Create volume', [
      field('Name', 'name', { required: true }),
      field('Size (GiB)', 'size', { type: 'number', min: 1, value: '1', required: true }),
      field('From snapshot', 'snapshot', { options: [{ value: '', label: '(empty)' }, ...snapshots.filter(s => s.status === 'available').map(s => ({ value: s.id, label: s.name || s.id }))] }),
    ], 'Create', async v => {
      const volume = { name: v.name, size: Number(v.size) };
      if (v.snapshot) volume.snapshot_id = v.snapshot;
      await session.post('volumev3', '/volumes', { volume });
      status('Creating volume ' + v.name + '.');
      ctx.refresh();
    }),
    volumes.some(v => v.status === 'available') && servers.length > 0 && form('Attach volume', [
      field('Volume', 'volume', { options: volumes.filter(v => v.status === 'available').map(v => ({ value: v.id, label: v.name || v.id })) }),
      field('Instance', 'server', { options: servers.map(s => ({ value: s.id, label: s.name })) }),
    ], 'Attach', async v => {
      await session.post('compute', '/servers/' + v.server + '/os-volume_attachments', { volumeAttachment: { volumeId: v.volume } });
      status('Attaching ' + volName(v.volume) + '.');
      ctx.refresh();
    }),
    table('Snapshots', [
      { label: 'Name', get: s => s.name || s.id },
      { label: 'Volume', get: s => volName(s.volume_id) },
      { label: 'Status', get: s => h('span', { class: 'state state-' + s.status }, s.status) },
      { label: 'Size', get: s => s.size + ' GiB' },
      { label: 'Created', get: s => s.created_at },
      { label: '', get: s => danger('Delete', async () => {
        await session.del('volumev3', '/snapshots/' + s.id);
        status('Deleting snapshot ' + (s.name || s.id) + '.');
        ctx.refresh();
      }, { 'aria-label': 'Delete snapshot ' + (s.name || s.id) }) },
    ], snapshots, 'No snapshots.'));
  if ([...volumes, ...snapshots].some(v => /ing$/.test(v.status))) {
    const t = setTimeout(() => ctx.refresh(), 3000);
    ctx.onLeave(() => clearTimeout(t));
  }
}
