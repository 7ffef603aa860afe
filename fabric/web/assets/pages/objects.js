// Object containers: Swift — containers, their objects (browse by
// pseudo-folder), upload with a progress bar, download, delete.
import { h, fill, table, field, form, button, danger, status, bytes, link } from '../ui.js';

const enc = s => s.split('/').map(encodeURIComponent).join('/');

export async function render(ctx) {
  if (ctx.params[0]) return container(ctx, ctx.params[0], ctx.params.slice(1).join('/'));
  const { session, main } = ctx;
  const containers = await session.get('object-store', '?format=json');
  fill(main,
    h('h1', {}, 'Containers'),
    table('Containers', [
      { label: 'Name', get: c => link('#/objects/' + encodeURIComponent(c.name), c.name) },
      { label: 'Objects', get: c => String(c.count) },
      { label: 'Size', get: c => bytes(c.bytes) },
      { label: '', get: c => danger('Delete', async () => {
        await session.del('object-store', '/' + encodeURIComponent(c.name));
        status('Deleted container ' + c.name + '.');
        ctx.refresh();
      }, { 'aria-label': 'Delete container ' + c.name }) },
    ], Array.isArray(containers) ? containers : [], 'No containers.'),
    form('Create container', [field('Name', 'name', { required: true })], 'Create', async v => {
      await session.put('object-store', '/' + encodeURIComponent(v.name));
      status('Created container ' + v.name + '.');
      ctx.refresh();
    }));
}

async function container(ctx, name, prefix) {
  const { session, main } = ctx;
  const base = '/' + encodeURIComponent(name);
  const q = new URLSearchParams({ format: 'json', delimiter: '/' });
  if (prefix) q.set('prefix', prefix.endsWith('/') ? prefix : prefix + '/');
  const list = await session.get('object-store', base + '?' + q);
  const objects = Array.isArray(list) ? list : [];
  const here = '#/objects/' + encodeURIComponent(name);
  const progress = h('progress', { id: 'object-progress', max: 100, value: 0, hidden: true, 'aria-label': 'Upload progress' });
  const path = prefix ? (prefix.endsWith('/') ? prefix : prefix + '/') : '';
  fill(main,
    h('h1', {}, 'Container ' + name + (path ? ' / ' + path : '')),
    h('p', {}, link('#/objects', 'All containers'), path && [' · ', link(here, name)]),
    table('Objects', [
      { label: 'Name', get: o => (o.subdir ? link(here + '/' + enc(o.subdir), o.subdir) : o.name.slice(path.length)) },
      { label: 'Size', get: o => (o.subdir ? '' : bytes(o.bytes)) },
      { label: 'Type', get: o => o.content_type || '' },
      { label: 'Modified', get: o => o.last_modified || '' },
      { label: '', get: o => !o.subdir && [
        button('Download', () => session.download('object-store', base + '/' + enc(o.name), o.name.split('/').pop()), { 'aria-label': 'Download ' + o.name }),
        danger('Delete', async () => {
          await session.del('object-store', base + '/' + enc(o.name));
          status('Deleted ' + o.name + '.');
          ctx.refresh();
        }, { 'aria-label': 'Delete ' + o.name })] },
    ], objects, 'Empty.'),
    form('Upload object', [
      field('File', 'file', { type: 'file', required: true }),
      field('Name (default: the file name)', 'name'),
      progress,
    ], 'Upload', async (v, el) => {
      const file = el.querySelector('input[type=file]').files[0];
      const obj = path + (v.name || file.name);
      progress.hidden = false;
      progress.value = 0;
      await session.upload('object-store', base + '/' + enc(obj), file, file.type || 'application/octet-stream', x => { progress.value = Math.round(100 * x); });
      status('Uploaded ' + obj + '.');
      ctx.refresh();
    }));
}
