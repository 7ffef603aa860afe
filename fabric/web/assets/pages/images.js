// Images: Glance v2 — list, upload with a progress bar, delete.
import { h, fill, table, field, form, danger, status, bytes } from '../ui.js';

export async function render(ctx) {
  const { session, main } = ctx;
  const { images } = await session.get('image', '/v2/images');
  const progress = h('progress', { id: 'image-progress', max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const f = form('Upload image', [
    field('Name', 'name', { required: true }),
    field('Disk format', 'disk_format', { options: ['qcow2', 'raw', 'iso', 'vmdk', 'vdi', 'vhd', 'vhdx', 'ami', 'ari', 'aki'].map(x => ({ value: x, label: x })) }),
    field('Visibility', 'visibility', { options: ['private', 'shared', 'community', 'public'].map(x => ({ value: x, label: x })) }),
    field('File', 'file', { type: 'file', required: true }),
    progress,
  ], 'Upload', async (v, el) => {
    const file = el.querySelector('input[type=file]').files[0];
    const img = await session.post('image', '/v2/images', { name: v.name, disk_format: v.disk_format, container_format: 'bare', visibility: v.visibility });
    progress.hidden = false;
    progress.value = 0;
    try {
      await session.upload('image', '/v2/images/' + img.id + '/file', file, 'application/octet-stream', x => { progress.value = Math.round(100 * x); });
    } catch (e) {
      // The record without data is useless: remove it, say why.
      await session.del('image', '/v2/images/' + img.id).catch(() => {});
      throw e;
    }
    status('Uploaded ' + v.name + '.');
    ctx.refresh();
  });
  fill(main,
    h('h1', {}, 'Images'),
    table('Images', [
      { label: 'Name', get: i => i.name || i.id },
      { label: 'Status', get: i => h('span', { class: 'state state-' + i.status }, i.status) },
      { label: 'Format', get: i => (i.disk_format || '') + '/' + (i.container_format || '') },
      { label: 'Size', get: i => bytes(i.size) },
      { label: 'Visibility', get: i => i.visibility },
      { label: '', get: i => (i.owner === session.project.id || session.isAdmin) && danger('Delete', async () => {
        await session.del('image', '/v2/images/' + i.id);
        status('Deleted ' + (i.name || i.id) + '.');
        ctx.refresh();
      }, { 'aria-label': 'Delete image ' + (i.name || i.id) }) },
    ], images, 'No images.'),
    f);
}
