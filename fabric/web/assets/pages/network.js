// Networking: Neutron — networks, subnets and ports; security groups and
// their rules; routers and floating IPs.
import { h, fill, table, field, form, button, danger, status } from '../ui.js';

const opts = (xs, label) => xs.map(x => ({ value: x.id, label: label(x) }));
const del = (ctx, what, path, name) => danger('Delete', async () => {
  await ctx.session.del('network', path);
  status('Deleted ' + what + ' ' + name + '.');
  ctx.refresh();
}, { 'aria-label': 'Delete ' + what + ' ' + name });

export const networks = {
  async render(ctx) {
    const { session, main } = ctx;
    const [{ networks: nets }, { subnets }, { ports }] = await Promise.all([
      session.get('network', '/v2.0/networks'),
      session.get('network', '/v2.0/subnets'),
      session.get('network', '/v2.0/ports'),
    ]);
    const netName = id => (nets.find(n => n.id === id) || {}).name || id;
    fill(main,
      h('h1', {}, 'Networks'),
      table('Networks', [
        { label: 'Name', get: n => n.name || n.id },
        { label: 'Status', get: n => n.status },
        { label: 'Subnets', get: n => (n.subnets || []).map(id => (subnets.find(s => s.id === id) || {}).cidr || id).join(', ') },
        { label: 'Shared', get: n => (n.shared ? 'yes' : 'no') },
        { label: 'External', get: n => (n['router:external'] ? 'yes' : 'no') },
        { label: '', get: n => n.project_id === session.project.id && del(ctx, 'network', '/v2.0/networks/' + n.id, n.name || n.id) },
      ], nets, 'No networks.'),
      form('Create network', [
        field('Name', 'name', { required: true }),
        field('Subnet range (CIDR, optional)', 'cidr', { placeholder: '10.0.0.0/24' }),
      ], 'Create', async v => {
        const { network: n } = await session.post('network', '/v2.0/networks', { network: { name: v.name } });
        if (v.cidr) await session.post('network', '/v2.0/subnets', { subnet: { network_id: n.id, ip_version: 4, cidr: v.cidr, name: v.name + '-subnet' } });
        status('Created network ' + v.name + '.');
        ctx.refresh();
      }),
      table('Subnets', [
        { label: 'Name', get: s => s.name || s.id },
        { label: 'Network', get: s => netName(s.network_id) },
        { label: 'CIDR', get: s => s.cidr },
        { label: 'Gateway', get: s => s.gateway_ip || '' },
        { label: 'DHCP', get: s => (s.enable_dhcp ? 'yes' : 'no') },
        { label: '', get: s => s.project_id === session.project.id && del(ctx, 'subnet', '/v2.0/subnets/' + s.id, s.name || s.id) },
      ], subnets, 'No subnets.'),
      table('Ports', [
        { label: 'ID', get: p => p.name || p.id },
        { label: 'Network', get: p => netName(p.network_id) },
        { label: 'Fixed IPs', get: p => (p.fixed_ips || []).map(f => f.ip_address).join(', ') },
        { label: 'MAC', get: p => p.mac_address },
        { label: 'Device', get: p => (p.device_owner || '') + ' ' + (p.device_id || '') },
        { label: 'Status', get: p => p.status },
      ], ports, 'No ports.'));
  },
};

export const securityGroups = {
  async render(ctx) {
    const { session, main } = ctx;
    const { security_groups: groups } = await session.get('network', '/v2.0/security-groups');
    const name = id => (groups.find(g => g.id === id) || {}).name || id;
    const sections = groups.map(g => h('section', { 'aria-label': 'Security group ' + g.name },
      h('h2', {}, g.name + ' '), g.description && h('p', {}, g.description),
      table('Rules of ' + g.name, [
        { label: 'Direction', get: r => r.direction },
        { label: 'Ether type', get: r => r.ethertype },
        { label: 'Protocol', get: r => r.protocol || 'any' },
        { label: 'Ports', get: r => (r.port_range_min == null ? 'any' : r.port_range_min + (r.port_range_max !== r.port_range_min ? '–' + r.port_range_max : '')) },
        { label: 'Remote', get: r => r.remote_ip_prefix || (r.remote_group_id ? 'group ' + name(r.remote_group_id) : 'any') },
        { label: '', get: r => del(ctx, 'rule', '/v2.0/security-group-rules/' + r.id, r.id) },
      ], g.security_group_rules || [], 'No rules: nothing is allowed.'),
      form('Add rule to ' + g.name, [
        field('Direction', 'direction', { options: [{ value: 'ingress', label: 'ingress' }, { value: 'egress', label: 'egress' }] }),
        field('Protocol', 'protocol', { options: ['tcp', 'udp', 'icmp', ''].map(x => ({ value: x, label: x || 'any' })) }),
        field('Port from', 'min', { type: 'number', min: 1 }),
        field('Port to', 'max', { type: 'number', min: 1 }),
        field('Remote CIDR', 'cidr', { placeholder: '0.0.0.0/0' }),
      ], 'Add rule', async v => {
        const rule = { security_group_id: g.id, direction: v.direction, ethertype: 'IPv4' };
        if (v.protocol) rule.protocol = v.protocol;
        if (v.min) rule.port_range_min = Number(v.min);
        if (v.min || v.max) rule.port_range_max = Number(v.max || v.min);
        if (v.cidr) rule.remote_ip_prefix = v.cidr;
        await session.post('network', '/v2.0/security-group-rules', { security_group_rule: rule });
        status('Added a rule to ' + g.name + '.');
        ctx.refresh();
      }),
      g.name !== 'default' && del(ctx, 'security group', '/v2.0/security-groups/' + g.id, g.name)));
    fill(main,
      h('h1', {}, 'Security groups'),
      form('Create security group', [field('Name', 'name', { required: true }), field('Description', 'description')], 'Create', async v => {
        await session.post('network', '/v2.0/security-groups', { security_group: { name: v.name, description: v.description } });
        status('Created security group ' + v.name + '.');
        ctx.refresh();
      }),
      sections);
  },
};

export const routers = {
  async render(ctx) {
    const { session, main } = ctx;
    const [{ routers: rs }, { floatingips: fips }, { networks: nets }, { subnets }, { ports }] = await Promise.all([
      session.get('network', '/v2.0/routers'),
      session.get('network', '/v2.0/floatingips'),
      session.get('network', '/v2.0/networks'),
      session.get('network', '/v2.0/subnets'),
      session.get('network', '/v2.0/ports'),
    ]);
    const external = nets.filter(n => n['router:external']);
    const netName = id => (nets.find(n => n.id === id) || {}).name || id || '';
    const attachable = ports.filter(p => (p.device_owner || '').startsWith('compute:'));
    const free = fips.filter(f => !f.port_id);
    const portLabel = p => (p.fixed_ips || []).map(x => x.ip_address).join(' ') + ' ' + p.device_id;
    fill(main,
      h('h1', {}, 'Routers and floating IPs'),
      table('Routers', [
        { label: 'Name', get: r => r.name || r.id },
        { label: 'Status', get: r => r.status },
        { label: 'External gateway', get: r => (r.external_gateway_info ? netName(r.external_gateway_info.network_id) : 'none') },
        { label: 'Interfaces', get: r => ports.filter(p => p.device_id === r.id && p.device_owner === 'network:router_interface').map(p => (p.fixed_ips || []).map(f => f.ip_address).join(' ')).join(', ') },
        { label: '', get: r => del(ctx, 'router', '/v2.0/routers/' + r.id, r.name || r.id) },
      ], rs, 'No routers.'),
      form('Create router', [
        field('Name', 'name', { required: true }),
        field('External network', 'ext', { options: [{ value: '', label: '(none)' }, ...opts(external, n => n.name)] }),
      ], 'Create', async v => {
        const router = { name: v.name };
        if (v.ext) router.external_gateway_info = { network_id: v.ext };
        await session.post('network', '/v2.0/routers', { router });
        status('Created router ' + v.name + '.');
        ctx.refresh();
      }),
      rs.length > 0 && form('Add a subnet to a router', [
        field('Router', 'router', { options: opts(rs, r => r.name || r.id) }),
        field('Subnet', 'subnet', { options: opts(subnets, s => (s.name || s.id) + ' ' + s.cidr) }),
      ], 'Add interface', async v => {
        await session.put('network', '/v2.0/routers/' + v.router + '/add_router_interface', { subnet_id: v.subnet });
        status('Added the interface.');
        ctx.refresh();
      }),
      table('Floating IPs', [
        { label: 'Address', get: f => f.floating_ip_address },
        { label: 'Network', get: f => netName(f.floating_network_id) },
        { label: 'Fixed IP', get: f => f.fixed_ip_address || '' },
        { label: 'Status', get: f => f.status },
        { label: '', get: f => [
          f.port_id && button('Disassociate', async () => {
            await session.put('network', '/v2.0/floatingips/' + f.id, { floatingip: { port_id: null } });
            status('Disassociated ' + f.floating_ip_address + '.');
            ctx.refresh();
          }, { 'aria-label': 'Disassociate ' + f.floating_ip_address }),
          del(ctx, 'floating IP', '/v2.0/floatingips/' + f.id, f.floating_ip_address)] },
      ], fips, 'No floating IPs.'),
      free.length > 0 && attachable.length > 0 && form('Associate floating IP', [
        field('Floating IP', 'fip', { options: opts(free, f => f.floating_ip_address) }),
        field('Port', 'port', { options: opts(attachable, portLabel) }),
      ], 'Associate', async v => {
        await session.put('network', '/v2.0/floatingips/' + v.fip, { floatingip: { port_id: v.port } });
        status('Associated the floating IP.');
        ctx.refresh();
      }),
      external.length > 0 && form('Allocate floating IP', [
        field('External network', 'net', { options: opts(external, n => n.name) }),
        field('Associate with port', 'port', { options: [{ value: '', label: '(none)' }, ...opts(attachable, portLabel)] }),
      ], 'Allocate', async v => {
        const floatingip = { floating_network_id: v.net };
        if (v.port) floatingip.port_id = v.port;
        await session.post('network', '/v2.0/floatingips', { floatingip });
        status('Allocated a floating IP.');
        ctx.refresh();
      }));
  },
};
