// Key pairs: Nova keypairs — list, import a public key, create one (the
// private key is shown once, as Nova returns it only at creation), delete.
import { h, fill, table, field, form, danger, status } from '../ui.js';

export async function render(ctx) {
  const { session, main } = ctx;
  const { keypairs } = await session.get('compute', '/os-keypairs');
  const secret = h('div', { id: 'new-private-key' });
  fill(main,
    h('h1', {}, 'Key pairs'),
    table('Key pairs', [
      { label: 'Name', get: k => k.keypair.name },
      { label: 'Type', get: k => k.keypair.type || 'ssh' },
      { label: 'Fingerprint', get: k => k.keypair.fingerprint },
      { label: '', get: k => danger('Delete', async () => {
        await session.del('compute', '/os-keypairs/' + encodeURIComponent(k.keypair.name));
        status('Deleted key pair ' + k.keypair.name + '.');
        ctx.refresh();
      }, { 'aria-label': 'Delete key pair ' + k.keypair.name }) },
    ], keypairs, 'No key pairs.'),
    form('Import or create a key pair', [
      field('Name', 'name', { required: true }),
      field('Public key (empty: create a new pair)', 'public_key', { textarea: true }),
    ], 'Save', async v => {
      const keypair = { name: v.name };
      if (v.public_key.trim()) keypair.public_key = v.public_key.trim();
      const { keypair: k } = await session.post('compute', '/os-keypairs', { keypair });
      status('Saved key pair ' + v.name + '.');
      if (k.private_key) {
        // Shown once: Nova keeps only the public half.
        fill(secret, h('h2', {}, 'Private key of ' + k.name),
          h('p', {}, 'Copy it now: it is not stored and cannot be shown again.'),
          h('pre', { class: 'log', tabindex: 0, 'aria-label': 'Private key' }, k.private_key));
        return;
      }
      ctx.refresh();
    }),
    secret);
}
