// svcreg's web view: the services, instances and Raft peers of the server
// that serves it, from its REST API, kept live by its watch streams (no
// polling). Every value from the API goes into the page as text, never as
// markup.
'use strict';

const state = {
  token: sessionStorage.getItem('svcreg-token') || '',
  who: null,                 // WhoAmI: may this token write?
  services: [],
  endpoints: new Map(),      // "ns/name" -> endpoints of the service
  instances: new Map(),      // "ns/name" -> instance
  view: null,                // the AbortController of the current view's streams
};

const $ = (sel) => document.querySelector(sel);
const key = (o) => `${o.namespace || 'default'}/${o.name}`;

// h builds an element: attributes, then children (strings become text).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== false) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
  return el;
}

function headers(json) {
  const hd = { Accept: 'application/json' };
  if (json) hd['Content-Type'] = 'application/json';
  if (state.token) hd.Authorization = 'Bearer ' + state.token;
  return hd;
}

// httpError words a refused request; a missing or rejected token says
// where to put one (the Token button), not how to send a header.
function httpError(r, body) {
  if (r.status === 401) {
    return new Error((state.token ? 'The registry refused this token. ' : 'The registry wants a token. ') +
      'Press Token (top right) and paste one; a server started with --data-dir DIR keeps its operator token in DIR/bootstrap-token.');
  }
  return new Error(body.message || `${r.status} ${r.statusText}`);
}

async function api(path, init = {}) {
  const r = await fetch(path, { ...init, headers: headers(!!init.body) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw httpError(r, body);
  return body;
}

// watch yields the events of a REST watch stream (one JSON object a line).
async function* watch(path, signal) {
  const r = await fetch(path, { headers: headers(false), signal });
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    throw httpError(r, body);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) {
      const line = buf.slice(0, i).trim();
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.error) throw new Error(msg.error.message);
      yield msg.result;
    }
  }
}

// follow runs a watch until the view changes, reconnecting with backoff
// (1 s doubling to 30 s) when the stream ends or fails.
async function follow(path, signal, onEvent) {
  for (let delay = 1000; !signal.aborted; delay = Math.min(delay * 2, 30000)) {
    try {
      for await (const ev of watch(path, signal)) {
        live(true);
        delay = 1000;
        onEvent(ev);
      }
    } catch (err) {
      if (signal.aborted) return;
      showError(err);
    }
    live(false);
    await new Promise((done) => setTimeout(done, delay));
  }
}

function live(on) {
  const el = $('#live');
  el.className = 'live ' + (on ? 'on' : 'off');
  el.textContent = on ? 'live' : 'reconnecting…';
}

function showError(err) {
  const el = $('#error');
  el.hidden = !err;
  el.textContent = err ? String(err.message || err) : '';
}

// Rendering is coalesced: a burst of events draws once.
let pending = false;
function schedule(render) {
  if (pending) return;
  pending = true;
  setTimeout(() => { pending = false; render(); }, 0);
}

function filters() {
  return { namespace: $('#namespace').value.trim(), selector: $('#selector').value.trim() };
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// listAll reads every page; out.revision is the first page's (the list is
// a view at or after it).
async function listAll(path, field, params) {
  const out = [];
  let pageToken = '';
  do {
    const page = await api(path + query({ ...params, pageSize: 1000, pageToken }));
    out.push(...(page[field] || []));
    out.revision ??= BigInt(page.resourceVersion || 0);
    pageToken = page.nextPageToken || '';
  } while (pageToken);
  return out;
}

// The enums' Kubernetes spellings: the server's one table (spellings.js).
const typeNames = window.SPELLINGS.ServiceType;
const proto = (p) => window.SPELLINGS.Protocol[p || 'PROTOCOL_TCP'] || p;
const ports = (svc) => (svc.ports || []).map((p) => `${p.port}${p.nodePort ? ':' + p.nodePort : ''}/${proto(p.protocol)}`).join(', ') || '—';
const labelText = (m) => Object.entries(m || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—';
const readyCount = (eps) => `${eps.filter((e) => e.ready).length}/${eps.length}`;
const matches = (selector, labels) => Object.keys(selector || {}).length > 0 &&
  Object.entries(selector).every(([k, v]) => (labels || {})[k] === v);

// endpointState: the conditions at a glance (KEP-1672), named as `svcreg
// get` names them: Ready, Not ready, Terminating (its colour says whether
// it still serves).
function endpointState(ep) {
  if (ep.terminating) return [ep.serving ? 'terminating' : 'notready', 'Terminating'];
  return ep.ready ? ['ready', 'Ready'] : ['notready', 'Not ready'];
}

// instanceState: what the instance says, what its probe found, and
// whether self-preservation holds its lapsed lease (docs/health.md).
function instanceState(inst) {
  if (inst.terminating) return ['terminating', 'Terminating'];
  if (inst.leaseLapsedTime) return ['notready', 'Lease lapsed (held)'];
  if (inst.ready === false) return ['notready', 'Not ready'];
  if (inst.readinessProbe && !(inst.probeStatus && inst.probeStatus.ready)) {
    return ['notready', 'Probe failing' + (inst.probeStatus && inst.probeStatus.message ? ': ' + inst.probeStatus.message : '')];
  }
  return ['ready', 'Ready'];
}

function canWrite(namespace) {
  const who = state.who;
  if (!who) return false;
  if (!who.authEnabled) return true;
  const glob = (p) => p === '*' || p === namespace || (p.endsWith('*') && namespace.startsWith(p.slice(0, -1)));
  return (who.token?.roles || []).some((b) => b.role && b.role !== 'ROLE_READER' && (b.namespaces || []).some(glob));
}

async function drain(inst, terminating) {
  try {
    await api(`/v1/namespaces/${encodeURIComponent(inst.namespace)}/instances/${encodeURIComponent(inst.name)}`,
      { method: 'PATCH', body: JSON.stringify({ terminating }) });
    showError(null);
  } catch (err) { showError(err); }
}

function drainButton(inst) {
  if (!canWrite(inst.namespace || 'default')) return '';
  const on = !inst.terminating;
  return h('button', { type: 'button', 'aria-label': `${on ? 'Drain' : 'Undrain'} ${inst.name}`,
    onclick: () => drain(inst, on) }, on ? 'Drain' : 'Undrain');
}

function table(caption, head, rows) {
  if (rows.length === 0) return h('p', { class: 'empty' }, `No ${caption.toLowerCase()}.`);
  return h('table', {}, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows));
}

function show(...nodes) {
  $('#main').replaceChildren(...nodes);
}

// The services view: every service in the filter, with ready/total
// endpoints; instance events refresh the counts of the services they touch.
async function servicesView(signal) {
  const f = filters();
  const ns = f.namespace || '-';
  state.services = await listAll(`/v1/namespaces/${encodeURIComponent(ns)}/services`, 'services', { labelSelector: f.selector });
  await Promise.all(state.services.map(refreshEndpoints));
  const render = () => show(h('h1', {}, 'Services'), table('Services', ['Name', 'Namespace', 'Type', 'Cluster IP', 'Ports', 'Endpoints', 'Scheduler'],
    state.services.map((s) => h('tr', { 'data-service': key(s) },
      h('td', {}, h('a', { href: `#/services/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}` }, s.name)),
      h('td', {}, s.namespace), h('td', {}, typeNames[s.type] || s.type), h('td', {}, s.clusterIp || '—'), h('td', {}, ports(s)),
      h('td', { class: 'num' }, s.type === 'SERVICE_TYPE_EXTERNAL_NAME' ? '—' : readyCount(state.endpoints.get(key(s)) || [])),
      h('td', {}, s.scheduler || '')))));
  render();
  // A burst of events makes one refresh: the list again if a service
  // changed, and the endpoints of the services the changes touched.
  let relist = false;
  let refreshing = null;
  const touched = new Map();
  const refresh = async () => {
    try {
      while (relist || touched.size > 0) {
        const list = relist;
        const svcs = [...touched.values()];
        relist = false;
        touched.clear();
        if (list) {
          state.services = await listAll(`/v1/namespaces/${encodeURIComponent(ns)}/services`, 'services', { labelSelector: f.selector });
          svcs.push(...state.services.filter((s) => !state.endpoints.has(key(s)))); // new ones
        }
        await Promise.all(svcs.map(refreshEndpoints));
      }
    } finally {
      refreshing = null;
    }
    if (!signal.aborted) render();
  };
  // An instance whose labels change leaves the services it matched before.
  const seenLabels = new Map();
  // The first stream's snapshot is what was just listed: it changes
  // nothing unless its SYNCED revision is past the list's. A later stream
  // (after a disconnect) replays everything, and everything is refreshed.
  let synced = false;
  const listed = state.services.revision;
  follow(`/v1/namespaces/${encodeURIComponent(ns)}:watch`, signal, (ev) => {
    const before = ev.instance && seenLabels.get(key(ev.instance));
    if (ev.instance) {
      if (ev.type === 'EVENT_TYPE_DELETED') seenLabels.delete(key(ev.instance)); else seenLabels.set(key(ev.instance), ev.instance.labels);
    }
    if (!synced) {
      if (ev.type !== 'EVENT_TYPE_SYNCED') return;
      synced = true;
      if (BigInt(ev.resourceVersion || 0) <= listed) return;
      relist = true;
      for (const s of state.services) touched.set(key(s), s);
    } else if (ev.service) {
      relist = true;
      touched.set(key(ev.service), ev.service);
    } else if (ev.instance) {
      for (const s of state.services) {
        if (s.namespace === ev.instance.namespace && (matches(s.selector, ev.instance.labels) || matches(s.selector, before))) touched.set(key(s), s);
      }
    }
    if (!refreshing && (relist || touched.size > 0)) refreshing = refresh().catch(showError);
  });
}

async function refreshEndpoints(svc) {
  if (svc.type === 'SERVICE_TYPE_EXTERNAL_NAME') return;
  try {
    const r = await api(`/v1/namespaces/${encodeURIComponent(svc.namespace)}/services/${encodeURIComponent(svc.name)}/endpoints`);
    state.endpoints.set(key(svc), r.endpoints || []);
  } catch { state.endpoints.delete(key(svc)); }
}

// The service view: its spec, and its endpoints from the endpoints watch
// of that one service (its snapshot, then every change).
async function serviceView(signal, namespace, name) {
  let svc = null;
  const eps = new Map();
  const render = () => {
    if (!svc) return show(h('h1', {}, `${namespace}/${name}`), h('p', { class: 'empty' }, 'No such service (yet).'));
    const rows = [...eps.values()].sort((a, b) => a.instance.localeCompare(b.instance)).map((ep) => {
      const [cls, text] = endpointState(ep);
      const inst = { namespace: ep.namespace, name: ep.instance, terminating: ep.terminating };
      return h('tr', { 'data-endpoint': ep.instance }, h('td', {}, ep.instance), h('td', {}, h('code', {}, ep.ip)),
        h('td', {}, (ep.ports || []).map((p) => `${p.name ? p.name + ':' : ''}${p.port}`).join(', ') || '—'),
        h('td', {}, h('span', { class: 'state ' + cls }, text)), h('td', { class: 'num' }, ep.weight ?? 1),
        h('td', {}, ep.zone || '—'), h('td', {}, drainButton(inst)));
    });
    show(h('h1', {}, `Service ${svc.namespace}/${svc.name}`),
      h('dl', {}, h('dt', {}, 'Type'), h('dd', {}, typeNames[svc.type] || svc.type), h('dt', {}, 'Cluster IP'), h('dd', {}, svc.clusterIp || '—'),
        h('dt', {}, 'Ports'), h('dd', {}, ports(svc)), h('dt', {}, 'Selector'), h('dd', {}, labelText(svc.selector)),
        h('dt', {}, 'Scheduler'), h('dd', {}, svc.scheduler || ''), h('dt', {}, 'Endpoints'), h('dd', { id: 'ready-count' }, readyCount([...eps.values()]) + ' ready')),
      table('Endpoints', ['Instance', 'Address', 'Ports', 'State', 'Weight', 'Zone', ''], rows));
  };
  render();
  const path = `/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(name)}/endpoints:watch`;
  follow(path, signal, (ev) => {
    if (ev.service) svc = ev.type === 'EVENT_TYPE_DELETED' ? null : ev.service;
    if (ev.endpoint) {
      if (ev.type === 'EVENT_TYPE_DELETED') eps.delete(ev.endpoint.instance);
      else eps.set(ev.endpoint.instance, ev.endpoint);
    }
    schedule(render);
  });
}

async function loadInstances(namespace, selector) {
  const list = await listAll(`/v1/namespaces/${encodeURIComponent(namespace)}/instances`, 'instances', { labelSelector: selector });
  state.instances = new Map(list.map((i) => [key(i), i]));
}

// leaseLeft is the countdown of an instance's lease, refreshed from the
// server when it runs out (renewals are not changes: no event says them).
function leaseLeft(inst) {
  if (!inst.ttlSeconds || !inst.leaseExpireTime) return '—';
  const left = Math.max(0, Math.round((Date.parse(inst.leaseExpireTime) - Date.now()) / 1000));
  return `${left}s of ${inst.ttlSeconds}s`;
}

async function instancesView(signal) {
  const f = filters();
  const ns = f.namespace || '-';
  await loadInstances(ns, f.selector);
  const render = () => show(h('h1', {}, 'Instances'), table('Instances', ['Name', 'Namespace', 'Address', 'State', 'Weight', 'Lease', 'Zone', ''],
    [...state.instances.values()].sort((a, b) => key(a).localeCompare(key(b))).map((i) => {
      const [cls, text] = instanceState(i);
      return h('tr', { 'data-instance': key(i) }, h('td', {}, i.name), h('td', {}, i.namespace), h('td', {}, h('code', {}, i.ip)),
        h('td', {}, h('span', { class: 'state ' + cls }, text)), h('td', { class: 'num' }, i.weight ?? 1),
        h('td', { class: 'num lease', 'data-key': key(i) }, leaseLeft(i)), h('td', {}, i.zone || '—'), h('td', {}, drainButton(i)));
    })));
  render();
  const tick = setInterval(() => {
    for (const cell of document.querySelectorAll('td.lease')) {
      const inst = state.instances.get(cell.dataset.key);
      if (!inst) continue;
      cell.textContent = leaseLeft(inst);
      if (inst.leaseExpireTime && Date.parse(inst.leaseExpireTime) <= Date.now() && !inst.refreshing) {
        inst.refreshing = true;
        api(`/v1/namespaces/${encodeURIComponent(inst.namespace)}/instances/${encodeURIComponent(inst.name)}`)
          .then((r) => state.instances.set(key(r.instance), r.instance)).catch(() => {});
      }
    }
  }, 1000);
  signal.addEventListener('abort', () => clearInterval(tick));
  follow(`/v1/namespaces/${encodeURIComponent(ns)}:watch${query({ labelSelector: f.selector })}`, signal, (ev) => {
    if (!ev.instance) return;
    const k = key(ev.instance);
    if (ev.type === 'EVENT_TYPE_DELETED') state.instances.delete(k);
    else state.instances.set(k, { leaseExpireTime: state.instances.get(k)?.leaseExpireTime, ...ev.instance });
    schedule(render);
  });
}

async function clusterView(signal) {
  const render = async () => {
    const r = await api('/v1/operator/raft/peers');
    if (signal.aborted) return;
    show(h('h1', {}, 'Cluster'), h('p', {}, 'Leader: ', h('strong', {}, r.leader || 'none')),
      table('Raft peers', ['ID', 'Raft address', 'gRPC address', 'State', 'Voter', 'Applied index', 'Caught up', 'Last contact'],
        (r.peers || []).map((p) => h('tr', {}, h('td', {}, p.id), h('td', {}, h('code', {}, p.raftAddress)), h('td', {}, h('code', {}, p.grpcAddress || '—')),
          h('td', {}, p.state), h('td', {}, p.voter ? 'yes' : 'no'), h('td', { class: 'num' }, p.appliedIndex || '0'),
          h('td', {}, p.caughtUp ? 'yes' : 'no'), h('td', { class: 'num' }, p.lastContactMs ? `${p.lastContactMs} ms` : '—')))),
      h('p', {}, h('button', { type: 'button', onclick: () => render().catch(showError) }, 'Refresh')));
  };
  await render();
}

const views = { services: servicesView, instances: instancesView, cluster: clusterView };

async function route() {
  state.view?.abort();
  const ctl = new AbortController();
  state.view = ctl;
  const [, view = 'services', ns, name] = location.hash.split('/').map(decodeURIComponent);
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  showError(null);
  try {
    if (!state.who) state.who = await api('/v1/whoami');
    if (view === 'services' && ns && name) await serviceView(ctl.signal, ns, name);
    else await (views[view] || servicesView)(ctl.signal);
  } catch (err) {
    if (!ctl.signal.aborted) {
      showError(err); // said once, above; the page says only that it is empty
      show(h('p', { class: 'empty' }, 'Nothing to show.'));
    }
  }
}

function setup() {
  const params = new URLSearchParams(location.search);
  if (params.get('namespace')) $('#namespace').value = params.get('namespace');
  $('#filters').addEventListener('submit', (e) => { e.preventDefault(); route(); });
  $('#namespace').addEventListener('change', route);
  $('#selector').addEventListener('change', route);
  const dialog = $('#token-dialog');
  $('#token-button').addEventListener('click', () => { $('#token').value = state.token; dialog.showModal(); });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') state.token = $('#token').value.trim();
    if (dialog.returnValue === 'clear') state.token = '';
    if (dialog.returnValue === 'save' || dialog.returnValue === 'clear') {
      if (state.token) sessionStorage.setItem('svcreg-token', state.token); else sessionStorage.removeItem('svcreg-token');
      state.who = null;
      route();
    }
  });
  window.addEventListener('hashchange', route);
  route();
}

setup();
