// Events: the event log (GET /rackstack/v1/events), newest first — every
// state change of the project's resources (all of them, for an admin).
import { h, fill, table, link } from '../ui.js';

export async function render(ctx) {
  const { session, main } = ctx;
  const { events = [] } = await session.get('', '/rackstack/v1/events?limit=300');
  fill(main,
    h('h1', {}, 'Events'),
    table('Latest state changes', [
      { label: 'Time', get: e => e.time },
      { label: 'Resource', get: e => (e.resource_type === 'server' ? link('#/instances/' + e.resource_id, e.resource_id) : e.resource_type + ' ' + e.resource_id) },
      { label: 'Action', get: e => e.action },
      { label: 'From', get: e => e.from || '' },
      { label: 'To', get: e => e.to || '' },
      { label: 'Reason', get: e => e.reason || '' },
      { label: 'User', get: e => e.user_id || '' },
    ], events.slice().reverse(), 'No events.'));
}
