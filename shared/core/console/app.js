// The Switchboard console: a client of the admin API, with no framework and no build step.
// Every node is built with the DOM API and text goes in as text (never as markup), the key
// lives in sessionStorage only, and every failing call shows its message.
'use strict';

(() => {
  // The API sits where the console does, under the same stage prefix (e.g. /prod).
  const BASE = location.pathname.replace(/\/console(\/.*)?$/, '');
  const KEY = 'switchboard.apiKey';
  const FORMATS = ['openai', 'openai-responses', 'anthropic', 'bedrock', 'mcp', 'vapi', 'retell'];
  const SCOPES = ['admin:read', 'admin:write', 'plugins:call', 'agents:read', 'audit:read'];
  const main = document.getElementById('main');
  const notice = document.getElementById('notice');
  let me = null; // GET /admin/whoami: org, scopes, key id
  let generation = 0; // bumped on every page change, so a late answer draws nothing

  // ---- DOM ----------------------------------------------------------------------------

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    // The API checks every value and says what to fix: the browser's own checks would
    // block a save over fields it cannot even show (a closed day's hours).
    if (tag === 'form') e.noValidate = true;
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'value') e.value = v;
      else if (k === 'checked') e.checked = Boolean(v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else if (v === true) e.setAttribute(k, '');
      else e.setAttribute(k, String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return e;
  }

  let ids = 0;
  const uid = (prefix) => `${prefix}-${++ids}`;

  function say(text, kind) {
    notice.replaceChildren(el('p', { class: kind || 'ok', text }));
  }

  function clearNotice() {
    notice.replaceChildren();
  }

  // ---- API ----------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const err = (body && body.error) || {};
      super(describe(status, err, body));
      this.status = status;
      this.code = err.code || '';
      this.details = Array.isArray(err.details) ? err.details : [];
    }
  }

  // What a refusal means to the person looking at the page.
  function describe(status, err, body) {
    if (status === 0) return 'The API could not be reached. Check the connection and try again.';
    if (status === 401) {
      return 'The API did not accept the key: it is missing, unknown or revoked. Enter a key again.';
    }
    if (status === 403 && !err.message) {
      return 'The key was refused (unknown or revoked, or not allowed here). Enter another key.';
    }
    if (err.message) return err.message;
    if (body && body.message) return `${status}: ${body.message}`;
    return `The API answered ${status}.`;
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await fetch(BASE + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
      });
    } catch (e) {
      throw new ApiError(0, null);
    }
    let json = null;
    try {
      json = await resp.json();
    } catch (e) {
      json = null;
    }
    if (!resp.ok || (json && json.success === false)) throw new ApiError(resp.status, json);
    return json && Object.prototype.hasOwnProperty.call(json, 'result') ? json.result : json;
  }

  const enc = encodeURIComponent;
  const has = (scope) => Boolean(me && me.scopes.includes(scope));
  const canWrite = () => has('admin:write');

  // ---- pages --------------------------------------------------------------------------

  const pages = {
    library: libraryPage,
    plugins: pluginsPage,
    channels: channelsPage,
    agents: agentsPage,
    keys: keysPage,
    credentials: credentialsPage,
    audit: auditPage,
  };

  async function route() {
    const gen = ++generation;
    clearNotice();
    if (!sessionStorage.getItem(KEY)) {
      signIn();
      return;
    }
    if (!me) {
      try {
        me = await api('GET', '/admin/whoami');
      } catch (e) {
        if (e.status === 401 || e.status === 403) sessionStorage.removeItem(KEY);
        signIn(e.message);
        return;
      }
      showWho();
    }
    const [name, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
    const page = pages[name] ? name : 'library';
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.getAttribute('href') === `#/${page}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    main.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
    try {
      const nodes = await pages[page](rest.map(decodeURIComponent), gen);
      if (gen !== generation) return;
      main.replaceChildren(...[].concat(nodes));
    } catch (e) {
      if (gen !== generation) return;
      main.replaceChildren(el('h1', { text: 'This page could not be loaded' }), el('p', { class: 'error', text: e.message }));
      if (e.status === 401) forget();
    }
    document.title = `${(main.querySelector('h1') || {}).textContent || 'Console'} · Switchboard`;
  }

  function signIn(message) {
    document.getElementById('nav').hidden = true;
    document.getElementById('who').replaceChildren();
    const input = el('input', { id: 'api-key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, class: 'secret' });
    const form = el('form', {
      onsubmit: (ev) => {
        ev.preventDefault();
        const key = input.value.trim();
        if (!key) return;
        sessionStorage.setItem(KEY, key);
        me = null;
        route();
      },
    },
    el('div', { class: 'field' },
      el('label', { for: 'api-key', text: 'API key' }),
      el('span', { class: 'hint', text: 'Kept in this tab only (sessionStorage) and sent as a bearer token; never put in a URL.' }),
      input),
    el('button', { type: 'submit', text: 'Use this key' }));
    main.replaceChildren(el('h1', { text: 'Sign in with an API key' }),
      message ? el('p', { class: 'error', role: 'alert', text: message }) : null, form);
    input.focus();
  }

  function forget() {
    sessionStorage.removeItem(KEY);
    me = null;
    route();
  }

  function showWho() {
    document.getElementById('nav').hidden = false;
    document.getElementById('who').replaceChildren(
      el('span', { text: `Organization ${me.org}` }),
      el('button', { class: 'secondary', type: 'button', onclick: forget, text: 'Forget key' }));
  }

  // ---- schema forms -------------------------------------------------------------------

  // A form for a JSON Schema object: its inputs, and `read()` for the value they hold.
  // Unfamiliar shapes get a JSON box; what cannot be read is sent as typed, so the API's
  // 422 names the field.
  function schemaForm(schema, value, path, defaults, root) {
    root = root || schema;
    schema = resolve(schema, root);
    const fields = [];
    const props = schema.properties || {};
    const required = new Set(schema.required || []);
    const nodes = [];
    for (const [name, raw] of Object.entries(props)) {
      const sub = resolve(raw, root);
      const at = `${path}/${name}`;
      const current = value && typeof value === 'object' ? value[name] : undefined;
      const dflt = sub.default !== undefined ? sub.default : defaults && typeof defaults === 'object' ? defaults[name] : undefined;
      const f = field(name, sub, current, at, required.has(name), dflt, root);
      fields.push([name, f]);
      nodes.push(f.node);
    }
    return {
      nodes,
      read() {
        // Keys the form has no field for stay as they are (the write replaces the object).
        const out = {};
        if (value && typeof value === 'object' && !Array.isArray(value) && schema.additionalProperties !== false) {
          for (const [k, v] of Object.entries(value)) if (!Object.hasOwn(props, k)) out[k] = v;
        }
        for (const [name, f] of fields) {
          const v = f.read();
          if (v !== undefined) out[name] = v;
        }
        return out;
      },
    };
  }

  function resolve(schema, root) {
    let s = schema || {};
    for (let i = 0; i < 8 && typeof s.$ref === 'string' && s.$ref.startsWith('#/'); i++) {
      s = s.$ref.slice(2).split('/').reduce((o, k) => (o ? o[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), root) || {};
    }
    return s;
  }

  function typesOf(schema) {
    if (Array.isArray(schema.type)) return schema.type;
    if (schema.type) return [schema.type];
    if (schema.enum) return ['enum'];
    return [];
  }

  function fieldId(at) {
    return `f${at.replace(/[^A-Za-z0-9]/g, '_')}`;
  }

  function field(name, schema, current, at, required, dflt, root) {
    const id = fieldId(at);
    const errId = `${id}-err`;
    const types = typesOf(schema).filter((t) => t !== 'null');
    const nullable = typesOf(schema).includes('null');
    const hintParts = [];
    if (schema.description) hintParts.push(schema.description);
    if (dflt !== undefined) hintParts.push(`Default: ${JSON.stringify(dflt)}.`);
    if (schema.minimum !== undefined || schema.maximum !== undefined) {
      hintParts.push(`From ${schema.minimum ?? '…'} to ${schema.maximum ?? '…'}.`);
    }
    const hint = hintParts.length ? el('span', { class: 'hint', id: `${id}-hint`, text: hintParts.join(' ') }) : null;
    const described = [hint ? `${id}-hint` : null, errId].filter(Boolean).join(' ');
    const errNode = el('p', { class: 'field-error', id: errId, 'data-error-for': at });
    const label = el('label', { for: id }, name, required ? ' (required)' : '');

    if (schema.enum) {
      const select = el('select', { id, 'aria-describedby': described, 'data-path': at, required },
        required ? null : el('option', { value: '', text: '(not set)' }),
        schema.enum.map((v, i) => el('option', { value: String(i), text: JSON.stringify(v) })));
      const idx = schema.enum.findIndex((v) => JSON.stringify(v) === JSON.stringify(current));
      select.value = idx >= 0 ? String(idx) : '';
      return {
        node: el('div', { class: 'field' }, label, hint, select, errNode),
        read: () => (select.value === '' ? undefined : schema.enum[Number(select.value)]),
      };
    }
    if (types.length === 1 && types[0] === 'boolean') {
      const box = el('input', { id, type: 'checkbox', 'aria-describedby': described, 'data-path': at, checked: current !== undefined ? current : dflt === true });
      return {
        node: el('div', { class: 'field' }, box, ' ', label, hint, errNode),
        read: () => box.checked,
      };
    }
    if (types.length === 1 && (types[0] === 'integer' || types[0] === 'number' || types[0] === 'string')) {
      const numeric = types[0] !== 'string';
      const input = el('input', {
        id,
        type: 'text',
        inputmode: numeric ? (types[0] === 'integer' ? 'numeric' : 'decimal') : null,
        'aria-describedby': described,
        'data-path': at,
        required,
        value: current === undefined || current === null ? '' : String(current),
        placeholder: dflt === undefined ? '' : String(dflt),
      });
      const initial = input.value;
      return {
        node: el('div', { class: 'field' }, label, hint, input, errNode),
        read: () => {
          const v = input.value;
          if (v === '') {
            const emptied = initial !== '' || current === '';
            // Emptied on purpose: an empty text where the schema takes one (e.g. "use the
            // org's name"), else null where it takes that, else back to the default.
            if (emptied && !numeric && !(schema.minLength > 0)) return '';
            if (emptied && nullable) return null;
            return current === null ? null : undefined;
          }
          if (!numeric) return v;
          // Plain decimal numbers only; anything else goes as typed, for the API to name.
          const n = Number(v);
          return /^\s*-?\d+(\.\d+)?([eE][-+]?\d+)?\s*$/.test(v) && Number.isFinite(n) ? n : v;
        },
      };
    }
    if (types.length === 1 && types[0] === 'object' && schema.properties) {
      // What is in effect: the stored value, else the default (an open day stays open).
      const effective = current === undefined ? dflt : current;
      const inner = schemaForm(schema, nullable ? effective : current, at, dflt, root);
      const legend = el('legend', { text: name });
      if (!nullable) {
        return {
          node: el('fieldset', { id, 'data-path': at }, legend, hint, inner.nodes, errNode),
          read: () => inner.read(),
        };
      }
      // null means "none" (e.g. a closed day): a switch in front of the inner fields.
      const set = el('input', { id: `${id}-set`, type: 'checkbox', checked: effective !== null && effective !== undefined, 'data-path': at });
      const body = el('div', {}, inner.nodes);
      body.hidden = !set.checked;
      set.addEventListener('change', () => { body.hidden = !set.checked; });
      return {
        node: el('fieldset', { id, 'data-path': at }, legend, hint,
          el('div', {}, set, ' ', el('label', { for: `${id}-set`, text: `Set ${name}` })), body, errNode),
        read: () => {
          if (set.checked) return inner.read();
          // Unset where nothing was in effect stays unset; otherwise it is now null.
          return effective === undefined || effective === null ? (current === undefined ? undefined : null) : null;
        },
      };
    }
    // Arrays, unions and the rest: JSON as typed.
    const box = el('textarea', { id, 'aria-describedby': described, 'data-path': at, rows: 3, value: current === undefined ? '' : JSON.stringify(current, null, 2) });
    return {
      node: el('div', { class: 'field' }, label, el('span', { class: 'hint', text: 'JSON.' }), hint, box, errNode),
      read: () => {
        if (box.value.trim() === '') return undefined;
        try {
          return JSON.parse(box.value);
        } catch (e) {
          return box.value;
        }
      },
    };
  }

  // Puts a 422's details next to the fields they point at (the nearest one up the path);
  // the rest go to `general`. Returns how many were placed.
  function showDetails(container, details, general) {
    for (const n of container.querySelectorAll('[data-error-for]')) n.textContent = '';
    for (const n of container.querySelectorAll('[aria-invalid]')) n.removeAttribute('aria-invalid');
    const rest = [];
    for (const d of details) {
      let at = d.path || '';
      let slot = null;
      while (at && !slot) {
        slot = container.querySelector(`[data-error-for="${CSS.escape(at)}"]`);
        const up = at.replace(/\/[^/]*$/, '');
        if (slot || up === at) break;
        at = up;
      }
      if (slot) {
        slot.textContent = slot.textContent ? `${slot.textContent} ${d.message}` : d.message;
        const input = container.querySelector(`[data-path="${CSS.escape(at)}"]`);
        if (input) input.setAttribute('aria-invalid', 'true');
      } else {
        rest.push(d);
      }
    }
    general.replaceChildren(...rest.map((d) => el('p', { class: 'error', text: `${d.path || '/'}: ${d.message}` })));
    return details.length - rest.length;
  }

  // A 409's banner: the data changed elsewhere. "Keep my draft" adopts the new version so
  // the next save overwrites; "Load saved" throws the draft away.
  function conflictBanner(slot, what, apiMessage, reload, keep) {
    const keepButton = el('button', { type: 'button', text: 'Keep my draft' });
    const banner = el('div', { class: 'banner conflict', role: 'alert' },
      el('p', { text: `${what} changed elsewhere since this page read it (${apiMessage}). Your draft is kept.` }),
      el('div', { class: 'row' }, keepButton,
        el('button', { type: 'button', class: 'secondary', onclick: reload, text: 'Load saved version' })));
    keepButton.addEventListener('click', busy(keepButton, async () => {
      try {
        await keep();
        banner.remove();
        say('Now editing over the newest version: save again to apply your draft.');
      } catch (e) {
        say(e.message, 'error');
      }
    }));
    slot.replaceChildren(banner);
  }

  function errorBox() {
    return el('div', { role: 'alert' });
  }

  function busy(button, work) {
    return async (ev) => {
      if (ev) ev.preventDefault();
      button.disabled = true;
      try {
        await work();
      } finally {
        button.disabled = false;
      }
    };
  }

  // ---- plugin library -----------------------------------------------------------------

  async function libraryPage() {
    const lib = await api('GET', '/admin/plugins');
    const cards = await Promise.all(lib.plugins.map(async (p) => {
      const detail = await api('GET', `/admin/plugins/${enc(p.name)}`);
      return pluginCard(detail);
    }));
    const out = [el('h1', { text: 'Plugin library' }),
      el('p', { class: 'muted', text: `${lib.plugins.length} plugins. Each organization enables the ones it uses, at a version it pins.` })];
    out.push(publishSection());
    out.push(...cards);
    return out;
  }

  function pluginCard(detail) {
    const m = detail.manifest;
    const config = m.config_schema && m.config_schema.properties ? Object.entries(m.config_schema.properties) : [];
    return el('section', { class: 'card', 'aria-labelledby': `lib-${m.name}` },
      el('h2', { id: `lib-${m.name}` }, m.display_name || m.name, el('span', { class: 'muted', text: ` ${m.name} ${detail.latest}` })),
      el('p', { text: m.description || '' }),
      el('p', {}, el('strong', { text: 'Versions: ' }), detail.versions.join(', ')),
      el('p', {}, el('strong', { text: 'Data adapters: ' }), (m.data_adapters || []).join(', ') || 'none'),
      config.length ? el('div', {}, el('h3', { text: 'Configuration' }),
        el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Setting' }), el('th', { scope: 'col', text: 'Type' }), el('th', { scope: 'col', text: 'Default' }), el('th', { scope: 'col', text: 'What it does' }))),
          el('tbody', {}, config.map(([k, s]) => el('tr', {},
            el('td', { text: k }), el('td', { text: typesOf(resolve(s, m.config_schema)).join(' or ') || 'object' }),
            el('td', { text: m.default_config && k in m.default_config ? JSON.stringify(m.default_config[k]) : '—' }),
            el('td', { text: resolve(s, m.config_schema).description || '' })))))) : el('p', { class: 'muted', text: 'No configuration.' }),
      el('h3', { text: 'Functions' }),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Function' }), el('th', { scope: 'col', text: 'Parameters' }), el('th', { scope: 'col', text: 'What it does' }))),
        el('tbody', {}, (m.functions || []).map((f) => el('tr', {},
          el('td', { text: f.name }),
          el('td', {}, paramList(f.parameters)),
          el('td', { text: f.description || '' }))))));
  }

  function paramList(schema) {
    const props = (schema && schema.properties) || {};
    const required = new Set((schema && schema.required) || []);
    const names = Object.keys(props);
    if (!names.length) return el('span', { class: 'muted', text: 'none' });
    return el('ul', {}, names.map((n) => el('li', {},
      el('code', { text: n }), ` ${typesOf(props[n]).join(' or ')}`, required.has(n) ? ' (required)' : '')));
  }

  function publishSection() {
    if (!has('platform:publish')) {
      return el('p', { class: 'muted', text: 'Publishing a plugin version needs a platform operator key (scope platform:publish).' });
    }
    const box = el('textarea', { id: 'publish-manifest', rows: 8, spellcheck: 'false' });
    const file = el('input', { id: 'publish-file', type: 'file', accept: 'application/json,.json' });
    file.addEventListener('change', async () => {
      if (file.files && file.files[0]) box.value = await file.files[0].text();
    });
    const errors = errorBox();
    const submit = el('button', { type: 'submit', text: 'Publish' });
    const form = el('form', { class: 'card', 'aria-labelledby': 'publish-h' },
      el('h2', { id: 'publish-h', text: 'Publish a plugin version' }),
      el('div', { class: 'field' }, el('label', { for: 'publish-file', text: 'manifest.json file' }), file),
      el('div', { class: 'field' }, el('label', { for: 'publish-manifest', text: 'or the manifest as JSON' }), box),
      errors, submit);
    form.addEventListener('submit', busy(submit, async () => {
      errors.replaceChildren();
      let manifest;
      try {
        manifest = JSON.parse(box.value);
      } catch (e) {
        errors.replaceChildren(el('p', { class: 'error', text: `The manifest is not JSON: ${e.message}` }));
        return;
      }
      try {
        const r = await api('POST', '/admin/plugins', manifest);
        if (r.created) await route();
        say(r.created ? `Published ${r.name} ${r.version}.` : `${r.name} ${r.version} was already published with this content.`);
      } catch (e) {
        errors.replaceChildren(el('p', { class: 'error', text: e.message }),
          ...e.details.map((d) => el('p', { class: 'error', text: `${d.path || '/'}: ${d.message}` })));
      }
    }));
    return form;
  }

  // ---- the organization's plugins ------------------------------------------------------

  async function pluginsPage(args) {
    if (args[0]) return instanceEditor(args[0]);
    const [lib, inst] = await Promise.all([api('GET', '/admin/plugins'), api('GET', '/admin/instances')]);
    const byName = new Map(inst.instances.map((i) => [i.plugin, i]));
    return [el('h1', { text: 'Your plugins' }),
      el('table', {},
        el('caption', { text: 'Plugins of the library and their state in this organization' }),
        el('thead', {}, el('tr', {}, ['Plugin', 'State', 'Pinned version', 'Latest', ''].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, lib.plugins.map((p) => {
          const i = byName.get(p.name);
          return el('tr', {},
            el('th', { scope: 'row', text: p.name }),
            el('td', { text: i ? (i.enabled ? 'enabled' : 'disabled') : 'not enabled' }),
            el('td', { text: i ? i.pinned_version : '—' }),
            el('td', { text: p.latest }),
            el('td', {}, el('a', { href: `#/plugins/${enc(p.name)}`, text: i ? `Configure ${p.name}` : `Enable ${p.name}` })));
        })))];
  }

  async function instanceEditor(name) {
    const versions = await api('GET', `/admin/plugins/${enc(name)}`);
    let saved = null;
    try {
      saved = await api('GET', `/admin/instances/${enc(name)}`);
    } catch (e) {
      if (e.status !== 404) throw e;
    }
    let version = saved ? saved.version : null;
    let manifest = null;
    const state = {
      enabled: saved ? saved.enabled : true,
      pinned: saved ? saved.pinned_version : versions.latest,
      config: saved ? saved.config : {},
    };
    const conflict = el('div');
    const errors = errorBox();
    const formSlot = el('div');
    let form = null;
    const enabled = el('input', { id: 'inst-enabled', type: 'checkbox', checked: state.enabled, 'data-path': '/enabled' });
    const pinned = el('select', { id: 'inst-version', 'data-path': '/pinned_version', 'aria-describedby': 'inst-version-err' },
      versions.versions.map((v) => el('option', { value: v, text: v === versions.latest ? `${v} (latest)` : v })));
    pinned.value = state.pinned;
    const adapter = el('textarea', { id: 'inst-adapter', rows: 3, 'data-path': '/data_adapter', 'aria-describedby': 'inst-adapter-hint inst-adapter-err', value: saved ? JSON.stringify(saved.data_adapter) : '' });

    let drawn = 0;
    async function drawConfig(v, keep) {
      const mine = ++drawn;
      const m = await api('GET', `/admin/plugins/${enc(name)}/versions/${enc(v)}`);
      // A later version choice's form wins over this one's late answer.
      if (mine !== drawn) return;
      manifest = m;
      const value = keep && form ? form.read() : state.config;
      form = schemaForm(manifest.config_schema || {}, value, '/config', manifest.default_config);
      formSlot.replaceChildren(el('fieldset', {}, el('legend', { text: `Configuration (${name} ${v})` }),
        form.nodes.length ? form.nodes : el('p', { class: 'muted', text: 'This version has no settings.' }),
        el('p', { class: 'field-error', 'data-error-for': '/config' })));
    }
    await drawConfig(state.pinned, false);
    pinned.addEventListener('change', () => drawConfig(pinned.value, true).catch((e) => say(e.message, 'error')));

    const save = el('button', { type: 'submit', text: saved ? 'Save' : `Enable ${name}` });
    const page = el('form', { 'aria-labelledby': 'inst-h' });
    page.addEventListener('submit', busy(save, async () => {
      errors.replaceChildren();
      clearNotice();
      const body = { enabled: enabled.checked, pinned_version: pinned.value, config: form.read() };
      if (adapter.value.trim()) {
        try {
          body.data_adapter = JSON.parse(adapter.value);
        } catch (e) {
          showDetails(page, [{ path: '/data_adapter', message: `not JSON: ${e.message}` }], errors);
          return;
        }
      }
      if (version !== null) body.version = version;
      try {
        const r = await api('PUT', `/admin/instances/${enc(name)}`, body);
        version = r.version;
        showDetails(page, [], errors);
        save.textContent = 'Save';
        say(`Saved ${name}: ${r.enabled ? 'enabled' : 'disabled'}, version ${r.pinned_version} (revision ${r.version}).`);
      } catch (e) {
        if (e.status === 409) {
          conflictBanner(conflict, `The ${name} instance`, e.message, () => route(), async () => {
            const now = await api('GET', `/admin/instances/${enc(name)}`);
            version = now.version;
          });
          return;
        }
        if (e.status === 422 && e.details.length) {
          showDetails(page, e.details, errors);
          errors.prepend(el('p', { class: 'error', text: e.message }));
          return;
        }
        errors.replaceChildren(el('p', { class: 'error', text: e.message }));
      }
    }));
    page.append(
      el('div', { class: 'field' }, enabled, ' ', el('label', { for: 'inst-enabled', text: 'Enabled' }), el('p', { class: 'field-error', 'data-error-for': '/enabled' })),
      el('div', { class: 'field' }, el('label', { for: 'inst-version', text: 'Pinned version' }), el('span', { class: 'hint', text: 'An upgrade the current settings do not satisfy is refused, naming the fields to change.' }), pinned,
        el('p', { class: 'field-error', id: 'inst-version-err', 'data-error-for': '/pinned_version' })),
      formSlot,
      el('div', { class: 'field' }, el('label', { for: 'inst-adapter', text: 'Data adapter (JSON)' }),
        el('span', { class: 'hint', id: 'inst-adapter-hint', text: 'Where the plugin keeps its data, e.g. {"type":"dynamodb"} (the built-in store). Empty keeps the current adapter; a new instance gets the built-in store.' }),
        adapter, el('p', { class: 'field-error', id: 'inst-adapter-err', 'data-error-for': '/data_adapter' })),
      conflict, errors, save);
    return [el('p', {}, el('a', { href: '#/plugins', text: '← Your plugins' })),
      el('h1', { id: 'inst-h', text: `${name}: ${saved ? 'settings' : 'enable'}` }), page];
  }

  // ---- channels × plugins -------------------------------------------------------------

  async function channelsPage() {
    const [chans, inst] = await Promise.all([api('GET', '/admin/channels'), api('GET', '/admin/instances')]);
    const columns = inst.instances.filter((i) => i.enabled).map((i) => i.plugin).sort();
    const section = el('div');
    const rows = chans.channels.map((c) => channelRow(c, columns));
    const names = new Set(chans.channels.map((c) => c.channel));
    const tbody = el('tbody', {}, rows.map((r) => r.nodes));
    const table = el('table', { class: 'matrix' },
      el('caption', { text: 'Channels (rows) and the enabled plugins (columns): tick to assign, then set the priority (lower first) and, if needed, a data adapter for this channel only.' }),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Channel' }),
        columns.map((p) => el('th', { scope: 'col', text: p })),
        el('th', { scope: 'col', text: 'Instructions override' }), el('th', { scope: 'col', text: 'Save' }))),
      tbody);
    const newName = el('input', { id: 'new-channel', pattern: '[a-z0-9][a-z0-9_-]*', 'aria-describedby': 'new-channel-hint' });
    const add = el('button', { type: 'submit', class: 'secondary', text: 'Add channel' });
    const addForm = el('form', { class: 'row' },
      el('label', { for: 'new-channel', text: 'New channel' }), newName,
      el('span', { class: 'hint', id: 'new-channel-hint', text: 'e.g. twilio, retell, whatsapp, web' }), add);
    addForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = newName.value.trim();
      if (!name) return;
      if (names.has(name)) {
        say(`Channel ${name} is already in the table.`, 'error');
        return;
      }
      names.add(name);
      const row = channelRow({ channel: name, version: null, plugin_assignments: [] }, columns);
      tbody.append(...row.nodes);
      newName.value = '';
      row.focus();
    });
    section.append(el('h1', { text: 'Channels' }),
      columns.length ? table : el('p', { text: 'No plugin is enabled yet: enable one under Your plugins first.' }),
      canWrite() ? addForm : null);
    return section;
  }

  function channelRow(saved, columns) {
    const c = saved.channel;
    let version = saved.version;
    const byPlugin = new Map(saved.plugin_assignments.map((a) => [a.plugin, a]));
    // Assignments of plugins no longer enabled stay as they are unless removed here (the
    // API refuses a channel that assigns one).
    const others = saved.plugin_assignments.filter((a) => !columns.includes(a.plugin)).map((a) => ({
      a,
      drop: el('input', { id: `m-${c}-drop-${a.plugin}`, type: 'checkbox' }),
    }));
    const errors = errorBox();
    const conflict = el('div');
    const preview = el('div', { 'aria-live': 'polite' });
    const cells = columns.map((p) => {
      const a = byPlugin.get(p);
      const id = `m-${c}-${p}`;
      const box = el('input', { id, type: 'checkbox', checked: a ? a.enabled : false, 'data-path': `plugin:${p}` });
      const prio = el('input', { id: `${id}-prio`, class: 'prio', inputmode: 'numeric', value: a ? String(a.priority) : '', 'aria-label': `Priority of ${p} on ${c}` });
      const adapter = el('input', { id: `${id}-adapter`, class: 'adapter', value: a && a.data_adapter ? JSON.stringify(a.data_adapter) : '', placeholder: 'adapter JSON', 'aria-label': `Data adapter of ${p} on ${c} (JSON, empty for the plugin's own)` });
      const err = el('p', { class: 'field-error', 'data-error-for': `plugin:${p}` });
      return {
        plugin: p,
        box,
        prio,
        adapter,
        node: el('td', {}, el('div', { class: 'cell' },
          el('span', {}, box, ' ', el('label', { for: id, text: `Assign ${p} to ${c}` })), prio, adapter, err)),
      };
    });
    const instructions = el('textarea', { id: `m-${c}-instructions`, rows: 3, value: saved.instructions || '', 'aria-label': `Instructions override for ${c}` });

    // The draft as the API takes it, and which plugin each assignment index is.
    function draft() {
      const order = [];
      const assignments = [];
      const problems = [];
      for (const cell of cells) {
        const prioText = cell.prio.value.trim();
        if (!cell.box.checked && prioText === '' && cell.adapter.value.trim() === '') continue;
        const a = { plugin: cell.plugin, enabled: cell.box.checked, priority: prioText === '' ? assignments.length + 1 : Number(prioText) };
        if (prioText !== '' && !Number.isInteger(a.priority)) a.priority = prioText;
        if (cell.adapter.value.trim()) {
          try {
            a.data_adapter = JSON.parse(cell.adapter.value);
          } catch (e) {
            problems.push({ path: `plugin:${cell.plugin}`, message: `the data adapter is not JSON: ${e.message}` });
          }
        }
        order.push(cell.plugin);
        assignments.push(a);
      }
      for (const o of others) {
        if (o.drop.checked) continue;
        order.push(o.a.plugin);
        assignments.push(o.a);
      }
      const body = { plugin_assignments: assignments };
      if (instructions.value.trim()) body.instructions = instructions.value;
      // Set with `switchboard channel locale`; a save here keeps it.
      if (saved.locale) body.locale = saved.locale;
      return { body, order, problems };
    }

    // API paths (/plugin_assignments/2/priority) to the cell of that assignment's plugin.
    function place(details, order) {
      const mapped = details.map((d) => {
        const m = /^\/plugin_assignments\/(\d+)/.exec(d.path || '');
        if (m && order[Number(m[1])]) return { path: `plugin:${order[Number(m[1])]}`, message: d.message };
        if ((d.path || '').startsWith('/instructions')) return { path: `instructions:${c}`, message: d.message };
        return d;
      });
      showDetails(row, mapped, errors);
    }

    const save = el('button', { type: 'button', text: `Save ${c}` });
    const previewButton = el('button', { type: 'button', class: 'secondary', text: `Preview ${c}` });
    const previewFormat = el('select', { 'aria-label': `Format of ${c}'s preview` },
      el('option', { value: '', text: 'diff only' }), FORMATS.map((f) => el('option', { value: f, text: `diff and ${f}` })));
    save.addEventListener('click', busy(save, async () => {
      clearNotice();
      errors.replaceChildren();
      const { body, order, problems } = draft();
      if (problems.length) {
        place(problems, order);
        return;
      }
      if (version !== null) body.version = version;
      try {
        const r = await api('PUT', `/admin/channels/${enc(c)}`, body);
        version = r.version;
        place([], order);
        preview.replaceChildren();
        conflict.replaceChildren();
        say(`Saved channel ${c} (revision ${r.version}).`);
      } catch (e) {
        if (e.status === 409) {
          conflictBanner(conflict, `Channel ${c} or a plugin it assigns`, e.message, () => route(), async () => {
            try {
              version = (await api('GET', `/admin/channels/${enc(c)}`)).version;
            } catch (err) {
              // Not saved yet (the 409 came from a plugin): the save creates it.
              if (err.status !== 404) throw err;
              version = null;
            }
          });
          return;
        }
        if (e.details.length) place(e.details, order);
        errors.prepend(el('p', { class: 'error', text: e.message }));
      }
    }));
    previewButton.addEventListener('click', busy(previewButton, async () => {
      errors.replaceChildren();
      const { body, order, problems } = draft();
      if (problems.length) {
        place(problems, order);
        return;
      }
      try {
        const ask = { channel: body };
        if (previewFormat.value) ask.format = previewFormat.value;
        const r = await api('POST', `/admin/channels/${enc(c)}/preview`, ask);
        place([], order);
        preview.replaceChildren(diffView(c, r));
      } catch (e) {
        preview.replaceChildren();
        if (e.details.length) place(e.details.map((d) => ({ ...d, path: (d.path || '').replace(/^\/channel/, '') })), order);
        errors.prepend(el('p', { class: 'error', text: e.message }));
      }
    }));
    const row = el('tr', {},
      el('th', { scope: 'row' }, c, version === null ? el('span', { class: 'muted', text: ' (new)' }) : null,
        others.map((o) => el('div', {}, el('p', { class: 'muted' }, `${o.a.plugin} is assigned but not enabled. `, o.drop, ' ',
          el('label', { for: o.drop.id, text: `Remove ${o.a.plugin} from ${c}` })),
        el('p', { class: 'field-error', 'data-error-for': `plugin:${o.a.plugin}` })))),
      cells.map((x) => x.node),
      el('td', {}, instructions, el('p', { class: 'field-error', 'data-error-for': `instructions:${c}` })),
      el('td', {}, el('div', { class: 'cell' }, canWrite() ? save : null, previewButton, previewFormat)));
    const under = el('tr', {}, el('td', { colspan: String(columns.length + 3) }, conflict, errors, preview));
    return { nodes: [row, under], focus: () => cells.length && cells[0].box.focus() };
  }

  // What the draft changes in the channel's agent: instructions and tools.
  function diffView(c, r) {
    const d = r.diff;
    const list = (title, items, render) => (items.length
      ? el('div', {}, el('h4', { text: `${title} (${items.length})` }), el('ul', {}, items.map(render)))
      : null);
    const changedTools = d.tools.changed.map((t) => `${t.name}: ${t.fields.join(', ')}`);
    const nothing = !d.instructions.changed && !d.tools.added.length && !d.tools.removed.length && !changedTools.length;
    return el('section', { class: 'card diff', 'aria-label': `Preview of ${c}` },
      el('h3', { text: `Draft agent of ${c}, against the saved one` }),
      nothing ? el('p', { text: 'The draft changes nothing in the agent.' }) : null,
      list('Tools added', d.tools.added, (n) => el('li', {}, el('ins', { text: n }))),
      list('Tools removed', d.tools.removed, (n) => el('li', {}, el('del', { text: n }))),
      list('Tools changed', changedTools, (n) => el('li', { text: n })),
      d.instructions.changed ? el('div', {}, el('h4', { text: 'Instructions changed' }),
        el('details', {}, el('summary', { text: 'Saved instructions' }), el('pre', { tabindex: '0', 'aria-label': 'Saved instructions', text: d.instructions.saved || '(none)' })),
        el('details', { open: true }, el('summary', { text: 'Draft instructions' }), el('pre', { tabindex: '0', 'aria-label': 'Draft instructions', text: d.instructions.draft }))) : null,
      r.saved_error ? el('p', { class: 'error', text: `The saved agent does not build: ${r.saved_error}` }) : null,
      r.export && r.export.error ? el('p', { class: 'error', text: `As ${r.export.format}: ${r.export.error}` }) : null,
      r.export && !r.export.error ? el('details', { open: true }, el('summary', { text: `The draft agent as ${r.export.format}` }),
        el('pre', { tabindex: '0', 'aria-label': `Draft agent as ${r.export.format}`, text: JSON.stringify(r.export.draft, null, 2) })) : null,
      r.draft_skipped && r.draft_skipped.length ? el('p', { class: 'muted', text: `Left out of the draft agent: ${r.draft_skipped.map((s) => `${s.plugin} (${s.reason})`).join('; ')}` }) : null);
  }

  // ---- agents -------------------------------------------------------------------------

  async function agentsPage() {
    const chans = await api('GET', '/admin/channels');
    const channel = el('select', { id: 'agent-channel' }, chans.channels.map((c) => el('option', { value: c.channel, text: c.channel })));
    const format = el('select', { id: 'agent-format' }, el('option', { value: '', text: 'the agent itself' }), FORMATS.map((f) => el('option', { value: f, text: f })));
    const out = el('div', { 'aria-live': 'polite' });
    const show = el('button', { type: 'submit', text: 'Show agent' });
    const form = el('form', { class: 'row' }, el('label', { for: 'agent-channel', text: 'Channel' }), channel,
      el('label', { for: 'agent-format', text: 'Format' }), format, show);
    form.addEventListener('submit', busy(show, async () => {
      out.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
      try {
        const q = format.value ? `?format=${enc(format.value)}` : '';
        const agent = await api('GET', `/agents/${enc(channel.value)}${q}`);
        const text = JSON.stringify(agent, null, 2);
        out.replaceChildren(el('div', { class: 'row' }, el('button', { type: 'button', class: 'secondary', onclick: () => copy(text), text: 'Copy' })),
          el('pre', { tabindex: '0', 'aria-label': 'Agent', text }));
      } catch (e) {
        out.replaceChildren(el('p', { class: 'error', role: 'alert', text: e.message }));
      }
    }));
    return [el('h1', { text: 'Agents' }),
      chans.channels.length ? form : el('p', { text: 'No channel is configured yet.' }), out];
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      say('Copied.');
    } catch (e) {
      say('The browser did not allow copying: select the text and copy it.', 'error');
    }
  }

  // ---- API keys -----------------------------------------------------------------------

  async function keysPage() {
    const [keys, chans] = await Promise.all([api('GET', '/admin/keys'), api('GET', '/admin/channels')]);
    const created = el('div', { 'aria-live': 'polite' });
    const name = el('input', { id: 'key-name' });
    const channel = el('select', { id: 'key-channel' }, el('option', { value: '', text: 'any (not bound)' }),
      chans.channels.map((c) => el('option', { value: c.channel, text: c.channel })));
    const boxes = SCOPES.map((s) => ({ s, box: el('input', { id: `scope-${s.replace(':', '-')}`, type: 'checkbox', checked: s === 'plugins:call' || s === 'agents:read' }) }));
    const errors = errorBox();
    const submit = el('button', { type: 'submit', text: 'Create key' });
    const form = el('form', { class: 'card', 'aria-labelledby': 'key-h' },
      el('h2', { id: 'key-h', text: 'Create a key' }),
      el('div', { class: 'field' }, el('label', { for: 'key-name', text: 'Name' }), name),
      el('fieldset', {}, el('legend', { text: 'Scopes' }), boxes.map(({ s, box }) => el('span', { class: 'row' }, box, el('label', { for: box.id, text: s })))),
      el('div', { class: 'field' }, el('label', { for: 'key-channel', text: 'Bound to channel' }),
        el('span', { class: 'hint', text: 'A bound key reaches only that channel\'s plugins and holds only plugins:call and agents:read.' }), channel),
      errors, submit);
    form.addEventListener('submit', busy(submit, async () => {
      errors.replaceChildren();
      const body = { scopes: boxes.filter((b) => b.box.checked).map((b) => b.s) };
      if (name.value.trim()) body.name = name.value.trim();
      if (channel.value) body.channel = channel.value;
      try {
        const r = await api('POST', '/admin/keys', body);
        const secret = el('input', { id: 'new-key', class: 'secret', readonly: true, value: r.key, 'aria-describedby': 'new-key-hint' });
        created.replaceChildren(el('div', { class: 'card' },
          el('h2', { text: `Key ${r.id} created` }),
          el('p', { id: 'new-key-hint', class: 'ok', text: 'This is the only time the key is shown: copy it now.' }),
          el('label', { for: 'new-key', text: 'The new key' }), el('div', { class: 'row' }, secret,
            el('button', { type: 'button', onclick: () => copy(r.key), text: 'Copy key' }))));
        list.replaceWith(list = keyTable((await api('GET', '/admin/keys')).keys));
        secret.focus();
        secret.select();
      } catch (e) {
        errors.replaceChildren(el('p', { class: 'error', text: e.message }),
          ...e.details.map((d) => el('p', { class: 'error', text: `${d.path || '/'}: ${d.message}` })));
      }
    }));
    let list = keyTable(keys.keys);
    return [el('h1', { text: 'API keys' }), canWrite() ? form : null, created, el('h2', { text: 'Keys' }), list];
  }

  function keyTable(keys) {
    return el('table', {},
      el('thead', {}, el('tr', {}, ['Id', 'Name', 'Scopes', 'Channel', 'Created', 'State', ''].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, keys.map((k) => {
        const state = el('td', { text: k.revoked ? 'revoked' : 'active' });
        const revoke = el('button', { type: 'button', class: 'danger', text: `Revoke ${k.id}` });
        let armed = false;
        revoke.addEventListener('click', busy(revoke, async () => {
          if (!armed) {
            armed = true;
            revoke.textContent = `Confirm: revoke ${k.id}`;
            return;
          }
          try {
            await api('DELETE', `/admin/keys/${enc(k.id)}`);
            state.textContent = 'revoked';
            revoke.remove();
            say(`Key ${k.id} revoked: it stops working within a minute (cached answers expire).`);
          } catch (e) {
            say(e.message, 'error');
          }
        }));
        return el('tr', {},
          el('td', {}, el('code', { text: k.id })), el('td', { text: k.name || '' }), el('td', { text: k.scopes.join(', ') }),
          el('td', { text: k.channel || 'any' }), el('td', { text: new Date(k.created * 1000).toISOString().slice(0, 16).replace('T', ' ') }),
          state, el('td', {}, !k.revoked && canWrite() && k.id !== me.key_id ? revoke : null));
      })));
  }

  // ---- credentials --------------------------------------------------------------------

  async function credentialsPage() {
    const creds = await api('GET', '/admin/credentials');
    const known = new Map(creds.credentials.map((c) => [c.name, c.version]));
    const name = el('input', { id: 'cred-name', pattern: '[a-z0-9][a-z0-9_-]*' });
    const rows = el('div');
    const addRow = (fieldName) => {
      const n = rows.children.length + 1;
      const key = el('input', { id: `cred-field-${n}`, value: fieldName || '', 'aria-label': `Field ${n} name` });
      const value = el('input', { id: `cred-value-${n}`, type: 'password', autocomplete: 'new-password', 'aria-label': `Field ${n} value` });
      rows.append(el('div', { class: 'row cred-row' }, key, value));
    };
    addRow('api_key');
    const errors = errorBox();
    const submit = el('button', { type: 'submit', text: 'Save credential' });
    const form = el('form', { class: 'card', 'aria-labelledby': 'cred-h' },
      el('h2', { id: 'cred-h', text: 'Store a credential' }),
      el('p', { class: 'muted', text: 'Values go to the secret store and are never shown again; the registry keeps the field names only. Saving an existing name replaces all its fields.' }),
      el('div', { class: 'field' }, el('label', { for: 'cred-name', text: 'Name' }), name),
      el('fieldset', {}, el('legend', { text: 'Fields' }), rows,
        el('button', { type: 'button', class: 'secondary', onclick: () => addRow(''), text: 'Add a field' })),
      errors, submit);
    form.addEventListener('submit', busy(submit, async () => {
      errors.replaceChildren();
      const value = {};
      for (const r of rows.querySelectorAll('.cred-row')) {
        const [k, v] = r.querySelectorAll('input');
        if (k.value.trim()) value[k.value.trim()] = v.value;
      }
      const n = name.value.trim();
      try {
        // The version this page read: replacing a credential someone changed since is a 409.
        const body = { value };
        if (known.has(n)) body.version = known.get(n);
        await api('PUT', `/admin/credentials/${enc(n)}`, body);
        for (const v of rows.querySelectorAll('input[type=password]')) v.value = '';
        await route();
        say(`Stored credential ${n} (${Object.keys(value).join(', ')}).`);
      } catch (e) {
        errors.replaceChildren(el('p', { class: 'error', text: e.message }),
          ...e.details.map((d) => el('p', { class: 'error', text: `${d.path || '/'}: ${d.message}` })));
      }
    }));
    return [el('h1', { text: 'Credentials' }),
      el('table', {}, el('caption', { text: 'Stored credentials (field names only)' }),
        el('thead', {}, el('tr', {}, ['Name', 'Fields', 'Updated'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, creds.credentials.map((c) => el('tr', {}, el('td', { text: c.name }), el('td', { text: c.fields.join(', ') }),
          el('td', { text: new Date(c.updated * 1000).toISOString().slice(0, 16).replace('T', ' ') }))))),
      canWrite() ? form : null];
  }

  // ---- audit log ----------------------------------------------------------------------

  async function auditPage() {
    const inputs = ['plugin', 'function', 'status'].map((k) => ({ k, input: el('input', { id: `audit-${k}` }) }));
    const out = el('div');
    const more = el('div');
    const show = el('button', { type: 'submit', text: 'Show entries' });
    let cursor = null;
    let body = null;
    async function load(first) {
      const q = new URLSearchParams();
      for (const { k, input } of inputs) if (input.value.trim()) q.set(k, input.value.trim());
      if (!first && cursor) q.set('cursor', cursor);
      const page = await api('GET', `/admin/audit?${q}`);
      cursor = page.next || null;
      const rows = page.entries.map((e) => el('tr', {},
        el('td', { text: e.at }), el('td', { text: e.route }), el('td', { text: e.plugin || '' }), el('td', { text: e.function || '' }),
        el('td', { text: String(e.status) }), el('td', { text: e.error_code || '' }), el('td', { text: e.channel || '' }), el('td', { text: e.key_id || '' })));
      if (first) {
        body = el('tbody', {}, rows);
        out.replaceChildren(el('table', {}, el('caption', { text: 'Newest first' }),
          el('thead', {}, el('tr', {}, ['Time', 'Route', 'Plugin', 'Function', 'Status', 'Error', 'Channel', 'Key'].map((h) => el('th', { scope: 'col', text: h })))), body));
      } else {
        body.append(...rows);
      }
      more.replaceChildren(cursor ? el('button', { type: 'button', class: 'secondary', onclick: () => load(false).catch((e) => say(e.message, 'error')), text: 'Load older entries' }) : null);
    }
    const form = el('form', { class: 'row' }, inputs.map(({ k, input }) => [el('label', { for: input.id, text: k }), input]), show);
    form.addEventListener('submit', busy(show, () => load(true).catch((e) => out.replaceChildren(el('p', { class: 'error', role: 'alert', text: e.message })))));
    await load(true);
    return [el('h1', { text: 'Audit log' }), el('p', { class: 'muted', text: 'The last 24 hours by default: every tool call, admin write and refused key of this organization.' }), form, out, more];
  }

  window.addEventListener('hashchange', route);
  route();
})();
