// The console's only way to the cloud: the public OpenStack APIs, found in
// the token's service catalog, called with X-Auth-Token. The token is kept
// in this module's memory and nowhere else (no cookie, no storage, no URL),
// so a reload logs out and no other site's request can carry it.

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// errorMessage digs the message out of the error bodies the services use:
// Nova {"itemNotFound": {"message"}}, Neutron {"NeutronError": {"message"}},
// Keystone {"error": {"message"}}, Ironic {"error_message"}.
function errorMessage(status, text) {
  try {
    const body = JSON.parse(text);
    if (body.error_message) {
      try { return JSON.parse(body.error_message).faultstring; } catch { return body.error_message; }
    }
    for (const v of Object.values(body)) {
      if (v && typeof v === 'object' && v.message) return v.message;
    }
    if (body.message) return body.message;
  } catch { /* not JSON */ }
  return text.trim() || 'HTTP ' + status;
}

export class Session {
  constructor(token, body) {
    this.token = token;
    const t = body.token;
    this.user = t.user;
    this.project = t.project || null;
    this.roles = (t.roles || []).map(r => r.name);
    this.catalog = t.catalog || [];
    this.expires = t.expires_at;
  }

  get isAdmin() { return this.roles.includes('admin'); }

  // endpoint is the path of a service's public endpoint. Only the path is
  // used: the console talks to the origin it was loaded from (the CSP
  // allows no other), whatever host name the catalog was built with.
  endpoint(type) {
    const svc = this.catalog.find(s => s.type === type);
    if (!svc) throw new APIError(0, 'no ' + type + ' service in the catalog');
    const ep = svc.endpoints.find(e => e.interface === 'public') || svc.endpoints[0];
    return new URL(ep.url, location.href).pathname.replace(/\/$/, '');
  }

  has(type) { return this.catalog.some(s => s.type === type); }

  // call makes a JSON request to a service; path is relative to its
  // endpoint ('' type means the path is absolute on this origin).
  async call(type, method, path, body, headers = {}) {
    const url = (type ? this.endpoint(type) : '') + path;
    const h = { 'X-Auth-Token': this.token, 'Accept': 'application/json', ...headers };
    if (type === 'compute') h['OpenStack-API-Version'] = 'compute 2.79';
    if (type === 'baremetal') h['X-OpenStack-Ironic-API-Version'] = '1.81';
    let payload = body;
    if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
      h['Content-Type'] = h['Content-Type'] || 'application/json';
      payload = JSON.stringify(body);
    }
    const resp = await fetch(url, { method, headers: h, body: payload, credentials: 'omit', cache: 'no-store' });
    const text = await resp.text();
    if (!resp.ok) throw new APIError(resp.status, method + ' ' + path + ': ' + errorMessage(resp.status, text));
    if (!text) return {};
    const ct = resp.headers.get('Content-Type') || '';
    if (!ct.includes('json')) return text;
    return JSON.parse(text);
  }

  get(type, path) { return this.call(type, 'GET', path); }
  post(type, path, body) { return this.call(type, 'POST', path, body === undefined ? {} : body); }
  put(type, path, body, headers) { return this.call(type, 'PUT', path, body, headers); }
  patch(type, path, body, headers) { return this.call(type, 'PATCH', path, body, headers); }
  del(type, path) { return this.call(type, 'DELETE', path); }

  // upload PUTs a file with XMLHttpRequest, the one browser API that reports
  // upload progress; onProgress gets a fraction in [0, 1].
  upload(type, path, file, contentType, onProgress) {
    const url = this.endpoint(type) + path;
    return new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open('PUT', url);
      x.setRequestHeader('X-Auth-Token', this.token);
      x.setRequestHeader('Content-Type', contentType || 'application/octet-stream');
      x.upload.onprogress = e => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      x.onload = () => (x.status < 300 ? resolve() : reject(new APIError(x.status, 'upload: ' + errorMessage(x.status, x.responseText))));
      x.onerror = () => reject(new APIError(0, 'upload: network error'));
      x.send(file);
    });
  }

  // download fetches a file with the token and hands it to the browser as
  // a save; a plain link cannot carry X-Auth-Token.
  async download(type, path, name) {
    const resp = await fetch(this.endpoint(type) + path, { headers: { 'X-Auth-Token': this.token }, credentials: 'omit' });
    if (!resp.ok) throw new APIError(resp.status, 'download: ' + errorMessage(resp.status, await resp.text()));
    const url = URL.createObjectURL(await resp.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
}

async function tokens(body) {
  const resp = await fetch('/identity/v3/auth/tokens', {
    method: 'POST', headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
    body: JSON.stringify(body), credentials: 'omit', cache: 'no-store',
  });
  const text = await resp.text();
  if (resp.status !== 201) throw new APIError(resp.status, errorMessage(resp.status, text));
  return new Session(resp.headers.get('X-Subject-Token'), JSON.parse(text));
}

// login authenticates with a password, scoped to the named project (or
// the user's default project when project is empty).
export function login({ user, password, domain, project }) {
  const dom = { name: domain || 'Default' };
  const auth = { identity: { methods: ['password'], password: { user: { name: user, domain: dom, password } } } };
  if (project) auth.scope = { project: { name: project, domain: dom } };
  return tokens({ auth });
}

// rescope trades the session's token for one scoped to another project.
export function rescope(session, projectID) {
  return tokens({ auth: { identity: { methods: ['token'], token: { id: session.token } }, scope: { project: { id: projectID } } } });
}

// projects lists the projects the session's user may scope to.
export async function projects(session) {
  return (await session.get('', '/identity/v3/auth/projects')).projects || [];
}
