// Small DOM helpers: build elements without innerHTML, so data from the
// APIs is always text, never markup.

// h creates an element. attrs: on* keys are listeners, others attributes
// (false/null/undefined leave them out); children are nodes or strings.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// table renders rows as a table; cols: [{label, get(row) → node|string}].
export function table(caption, cols, rows, empty = 'None.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, cols.map(c => h('th', { scope: 'col' }, c.label)))),
    h('tbody', {}, rows.map(r => h('tr', {}, cols.map(c => h('td', {}, c.get(r)))))));
}

// field is a labelled input (or select when options are given).
let seq = 0;
export function field(label, name, opts = {}) {
  const id = 'f' + (++seq);
  let input;
  if (opts.options) {
    input = h('select', { id, name, required: opts.required },
      opts.options.map(o => h('option', { value: o.value }, o.label)));
  } else if (opts.textarea) {
    input = h('textarea', { id, name, rows: 3 });
  } else {
    input = h('input', { id, name, type: opts.type || 'text', required: opts.required, value: opts.value, placeholder: opts.placeholder, min: opts.min });
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

// form builds a form whose submit calls onSubmit(values, form); errors are
// shown in the form and the button is disabled while it runs.
export function form(title, fields, submitLabel, onSubmit) {
  const err = h('p', { class: 'error', role: 'alert' });
  const btn = h('button', { type: 'submit' }, submitLabel);
  const f = h('form', { class: 'inline-form', 'aria-label': title }, h('h3', {}, title), fields, btn, err);
  f.addEventListener('submit', async ev => {
    ev.preventDefault();
    err.textContent = '';
    btn.disabled = true;
    try {
      await onSubmit(Object.fromEntries(new FormData(f)), f);
    } catch (e) {
      err.textContent = e.message;
    } finally {
      btn.disabled = false;
    }
  });
  return f;
}

// button runs an async action, reporting failure in the status line.
export function button(label, action, attrs = {}) {
  const b = h('button', { type: 'button', ...attrs }, label);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await action();
    } catch (e) {
      status(e.message, true);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

export function status(msg, isError = false) {
  const s = document.getElementById('status');
  s.textContent = msg;
  s.className = 'status' + (isError ? ' error' : '');
}

export function link(href, text) { return h('a', { href }, text); }

export function bytes(n) {
  if (n === null || n === undefined) return '';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + ' ' + u[i];
}

// danger is a button that asks again before it acts: the first click
// arms it, the second runs the action (no modal dialog to trap focus).
export function danger(label, action, attrs = {}) {
  let armed = false;
  const b = h('button', { type: 'button', class: 'danger', ...attrs }, label);
  b.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      b.textContent = 'Confirm ' + label.toLowerCase();
      if (attrs['aria-label']) b.setAttribute('aria-label', 'Confirm: ' + attrs['aria-label']);
      return;
    }
    b.disabled = true;
    try {
      await action();
    } catch (e) {
      status(e.message, true);
    } finally {
      b.disabled = false;
      armed = false;
      b.textContent = label;
      if (attrs['aria-label']) b.setAttribute('aria-label', attrs['aria-label']);
    }
  });
  return b;
}

// props renders an object as a definition list, nested objects indented:
// for status documents whose every field is worth showing.
export function props(obj, label) {
  const dl = h('dl', { class: 'props', 'aria-label': label });
  for (const [k, v] of Object.entries(obj || {})) {
    if (v === null || v === undefined) continue;
    let dd;
    if (Array.isArray(v)) {
      dd = v.length && typeof v[0] === 'object'
        ? h('div', {}, v.map((x, i) => props(x, k + ' ' + (i + 1))))
        : v.join(', ');
    } else if (typeof v === 'object') {
      dd = props(v, k);
    } else {
      dd = String(v);
    }
    dl.append(h('dt', {}, k.replace(/_/g, ' ')), h('dd', {}, dd));
  }
  return dl;
}

// fill replaces el's children, with h's rules for children (arrays
// flattened; false, null and undefined left out).
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}
