// The web console: signs in with an API key kept in this tab's
// sessionStorage, sent only in the Authorization header, and follows the
// event stream with a short-lived token (never the key) in its URL.
'use strict';

(() => {
  const KEY_ITEM = 'app.console.key';
  const STREAM_TYPES = 'session.state,session.qr,message.status,message.incoming,sending.paused';
  const POLL_MS = 5000; // processes and backlogs have no events: they are polled
  const $ = (id) => document.getElementById(id);

  let key = sessionStorage.getItem(KEY_ITEM) || '';
  let stream = null; // the EventSource while one is open
  let streamLive = false;
  let lastEventID = '';
  let streamFailures = 0;
  let reconnectTimer = 0;
  let pollTimer = 0;
  let messagesTimer = 0;
  let qrURL = '';
  let qrSeq = 0;
  let lastSentID = '';
  // scopes are the signed-in key's (GET /v1/key); null until known, when
  // every panel is tried.
  let scopes = null;

  // What each panel needs; a panel the key cannot use says so, in one
  // wording, and is not loaded or polled.
  const PANEL_SCOPES = {
    session: 'session', send: 'messages:write', outbox: 'messages:read',
    messages: 'messages:read', webhooks: 'admin', cluster: 'admin',
  };

  function has(scope) {
    return scopes === null || scopes.includes(scope) || scopes.includes('admin');
  }

  function can(panel) {
    return has(PANEL_SCOPES[panel]);
  }

  function applyScopes() {
    for (const [panel, scope] of Object.entries(PANEL_SCOPES)) {
      const section = $(panel);
      let note = section.querySelector('.scope-note');
      if (!note) {
        note = Object.assign(document.createElement('p'), { className: 'note scope-note' });
        section.querySelector('h2').after(note);
      }
      const locked = !can(panel);
      section.classList.toggle('locked', locked);
      note.textContent = locked
        ? 'Needs a key with the ' + scope + ' scope; this key has ' + (scopes.length ? scopes.join(', ') : 'none') + '.'
        : '';
    }
  }

  async function loadScopes() {
    try {
      scopes = (await getJSON('/v1/key')).scopes || [];
    } catch (e) {
      if (e.status === 401) throw e; // signed out with the reason
      scopes = null; // not known yet (the server is away): try every panel
    }
    applyScopes();
  }

  class APIError extends Error {
    constructor(status, code, message, requestID) {
      super(message);
      this.status = status;
      this.code = code;
      this.requestID = requestID || '';
    }
  }

  // api calls the API with the key in the Authorization header. A non-2xx
  // answer becomes an APIError carrying the JSON error's message; a 401
  // (the key is unknown or was revoked) signs out.
  async function api(method, path, body, accept) {
    const headers = { Authorization: 'Bearer ' + key };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (accept) headers.Accept = accept;
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new APIError(0, 'network', 'The server did not answer (' + e.message + '). Is the suite running?');
    }
    if (res.ok) return res;
    let err = {};
    try {
      err = (await res.json()).error || {};
    } catch (e) { /* not JSON: a proxy's page */ }
    const apiErr = new APIError(res.status, err.code || 'http_' + res.status,
      err.message || 'The server answered ' + res.status + ' ' + res.statusText + '.', err.request_id);
    if (res.status === 401) signOut('The API key was refused: ' + apiErr.message);
    throw apiErr;
  }

  async function getJSON(path) {
    return (await api('GET', path)).json();
  }

  function describe(e) {
    if (!(e instanceof APIError)) return String(e && e.message || e);
    return e.message + (e.requestID ? ' (request ' + e.requestID + ')' : '');
  }

  function showError(id, e) {
    $(id).textContent = e ? describe(e) : '';
  }

  // --- formatting ------------------------------------------------------

  function ago(ms) {
    if (ms < 0) ms = 0;
    const s = Math.round(ms / 1000);
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function when(t) {
    if (!t) return '–';
    const d = new Date(t);
    if (isNaN(d)) return '–';
    return d.toLocaleString() + ' (' + ago(Date.now() - d.getTime()) + ')';
  }

  function short(t) {
    if (!t) return '–';
    const d = new Date(t);
    return isNaN(d) ? '–' : d.toLocaleString();
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null || text === '' ? '–' : String(text);
    if (cls) td.className = cls;
    return td;
  }

  function fillTable(table, rows, emptyText) {
    const body = table.tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell(emptyText, 'empty');
      td.colSpan = table.tHead.rows[0].cells.length;
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const r of rows) body.append(r);
  }

  function row(cells, cls) {
    const tr = document.createElement('tr');
    if (cls) tr.className = cls;
    tr.append(...cells);
    return tr;
  }

  const stateClass = {
    connected: 'ok', pairing: 'warn', connecting: 'warn', unpaired: 'warn', unknown: 'warn',
    disconnected: 'bad', logged_out: 'bad', temporarily_banned: 'bad', replaced: 'bad',
  };

  const stateHelp = {
    unpaired: 'Not linked to a WhatsApp account yet: the primary will show a QR code to scan.',
    pairing: 'Waiting for the phone to scan the QR code below (or for a pairing code to be typed on it).',
    connecting: 'Connecting to WhatsApp.',
    connected: 'Linked and connected: messages are sent and received.',
    disconnected: 'The connection dropped; the primary reconnects by itself.',
    logged_out: 'The account was logged out from the phone: pair again.',
    temporarily_banned: 'WhatsApp banned the account for a while; sending resumes when the ban ends.',
    replaced: 'Another device or process took this session over.',
  };

  // --- session and pairing ---------------------------------------------

  async function loadSession() {
    let s;
    try {
      s = await getJSON('/v1/session');
    } catch (e) {
      showError('session-error', e);
      return;
    }
    showError('session-error', null);
    const badge = $('session-state');
    badge.textContent = s.state;
    badge.className = 'badge ' + (stateClass[s.state] || 'warn');
    $('session-jid').textContent = s.jid || '–';
    $('session-driver').textContent = s.driver || '–';
    $('session-updated').textContent = when(s.updated_at);
    const notes = [stateHelp[s.state] || ''];
    if (s.reason) notes.push('Reason: ' + s.reason + '.');
    if (s.until) notes.push('Until ' + short(s.until) + '.');
    if (s.sending_paused_until && new Date(s.sending_paused_until) > new Date()) {
      notes.push('Sending is paused until ' + short(s.sending_paused_until) + ' (WhatsApp said we send too fast).');
    }
    $('session-reason').textContent = notes.filter(Boolean).join(' ');
    const pairing = s.state === 'pairing' || s.state === 'unpaired' || s.state === 'logged_out';
    $('pairing').hidden = !pairing;
    if (s.qr_available) {
      loadQR();
    } else {
      clearQR(pairing ? 'No QR code yet: the primary is asking WhatsApp for one.' : '');
    }
  }

  // loadQR fetches the current QR code as a PNG with the key and shows it
  // from a blob: URL (an <img src> could not send the header).
  async function loadQR() {
    const seq = ++qrSeq;
    let blob;
    try {
      const res = await api('GET', '/v1/session/qr', undefined, 'image/png');
      blob = await res.blob();
    } catch (e) {
      if (seq !== qrSeq) return;
      if (e.status === 409) {
        clearQR('No QR code right now: ' + e.message + '.');
      } else {
        clearQR('');
        showError('session-error', e);
      }
      return;
    }
    if (seq !== qrSeq) return; // a newer code was asked for meanwhile
    const url = URL.createObjectURL(blob);
    const img = $('qr');
    img.src = url;
    img.hidden = false;
    if (qrURL) URL.revokeObjectURL(qrURL);
    qrURL = url;
    $('qr-note').textContent = 'Code shown at ' + new Date().toLocaleTimeString() + '.';
  }

  function clearQR(note) {
    qrSeq++;
    const img = $('qr');
    img.removeAttribute('src');
    img.hidden = true;
    if (qrURL) URL.revokeObjectURL(qrURL);
    qrURL = '';
    $('qr-note').textContent = note || '';
  }

  async function pairWithCode(ev) {
    ev.preventDefault();
    const button = ev.submitter || $('pair-form').querySelector('button');
    const out = $('pair-result');
    out.className = '';
    out.textContent = 'Asking WhatsApp for a code…';
    button.disabled = true;
    try {
      const r = await (await api('POST', '/v1/session/pair-code', { phone: $('pair-phone').value.trim() })).json();
      out.replaceChildren('On the phone: WhatsApp, Linked devices, Link with phone number, then type ',
        Object.assign(document.createElement('span'), { className: 'pair-code', textContent: r.code || '?' }));
    } catch (e) {
      out.className = 'error';
      out.textContent = describe(e);
    } finally {
      button.disabled = false;
    }
  }

  // --- messages ----------------------------------------------------------

  async function loadMessages() {
    let sent, received;
    try {
      [sent, received] = await Promise.all([
        getJSON('/v1/messages?limit=15'),
        getJSON('/v1/messages?direction=incoming&limit=10'),
      ]);
    } catch (e) {
      showError('messages-error', e);
      return;
    }
    showError('messages-error', null);
    fillTable($('sent-table'), sent.messages.map((m) => {
      const note = m.error ? (m.error.reason || JSON.stringify(m.error)) : (m.waiting || '');
      const tr = row([cell(short(m.queued_at)), cell(m.to), cell(m.text, 'text'),
        cell(m.status, 'status'), cell(m.attempts, 'num'), cell(note)], m.status === 'failed' ? 'late' : '');
      tr.dataset.id = m.id;
      return tr;
    }), 'No message sent yet.');
    fillTable($('received-table'), received.messages.map((m) => row([cell(short(m.at)),
      cell(m.id.split('/')[0]), cell(m.push_name || m.sender), cell(m.kind),
      cell(m.text || m.reaction || (m.media && m.media.caption) || '', 'text')])), 'No message received yet.');
  }

  // countStatus counts the outbox's messages with a status, up to one page.
  async function countStatus(status) {
    const page = await getJSON('/v1/messages?status=' + status + '&limit=200');
    const n = page.messages.length;
    return {
      text: page.next ? 'more than ' + n : String(n),
      oldest: !page.next && n > 0 ? page.messages[n - 1].queued_at : '',
    };
  }

  async function loadOutbox() {
    try {
      const [queued, sending] = await Promise.all([countStatus('queued'), countStatus('sending')]);
      $('outbox-queued').textContent = queued.text;
      $('outbox-sending').textContent = sending.text;
      $('outbox-oldest').textContent = queued.oldest ? when(queued.oldest) : (queued.text === '0' ? 'none waiting' : 'older than the newest 200');
      showError('outbox-error', null);
    } catch (e) {
      showError('outbox-error', e);
    }
  }

  // Several events in a burst make one reload.
  function messagesChanged() {
    clearTimeout(messagesTimer);
    messagesTimer = setTimeout(() => { loadMessages(); loadOutbox(); }, 250);
  }

  async function sendMessage(ev) {
    ev.preventDefault();
    const button = ev.submitter || $('send-form').querySelector('button');
    const out = $('send-result');
    out.className = '';
    out.textContent = 'Sending…';
    button.disabled = true;
    try {
      const m = await (await api('POST', '/v1/messages', { to: $('send-to').value.trim(), text: $('send-text').value })).json();
      lastSentID = m.id;
      showSent(m.id, m.status);
      $('send-text').value = '';
      messagesChanged();
    } catch (e) {
      out.className = 'error';
      out.textContent = describe(e);
    } finally {
      button.disabled = false;
    }
  }

  function showSent(id, status, reason) {
    $('send-result').textContent = 'Message ' + id + ': ' + status + (reason ? ' (' + reason + ')' : '') + '.';
  }

  // --- webhooks and processes --------------------------------------------

  async function loadWebhooks() {
    let page;
    try {
      page = await getJSON('/v1/webhooks');
    } catch (e) {
      $('webhooks-table').hidden = true;
      if (e.status === 403) {
        // The key changed under the page (scopes are read at sign-in).
        loadScopes().catch(() => {});
        $('webhooks-note').textContent = '';
      } else {
        $('webhooks-note').textContent = '';
        showError('webhooks-error', e);
      }
      return;
    }
    showError('webhooks-error', null);
    $('webhooks-note').textContent = page.webhooks.length === 0 ? 'No webhook subscription.' : '';
    $('webhooks-table').hidden = page.webhooks.length === 0;
    fillTable($('webhooks-table'), page.webhooks.map((w) => {
      const backlog = Math.max(0, (w.log_position || 0) - (w.delivered_through || 0));
      return row([cell(w.url, 'text'), cell(w.enabled ? 'yes' : 'no' + (w.disabled_reason ? ': ' + w.disabled_reason : '')),
        cell(w.delivered_through, 'num'), cell(w.log_position || 0, 'num'), cell(backlog + (backlog === 1 ? ' event' : ' events'), 'num')],
      backlog > 0 && w.enabled ? 'late' : '');
    }), 'No webhook subscription.');
  }

  async function loadCluster() {
    let c;
    try {
      c = await getJSON('/v1/cluster');
    } catch (e) {
      if (e.status === 403) {
        // The key changed under the page (scopes are read at sign-in).
        loadScopes().catch(() => {});
      } else {
        showError('cluster-error', e);
      }
      return;
    }
    showError('cluster-error', null);
    const lease = c.lease;
    $('lease').textContent = lease && lease.valid
      ? 'The primary lease is held by pid ' + lease.pid + ' on ' + lease.host + ' (epoch ' + lease.epoch + ') until ' + short(lease.expires_at) + '.'
      : 'No primary holds a valid lease: WhatsApp and the background work are not running.';
    const now = Date.now();
    const rows = [...c.primaries, ...c.workers].map((p) => {
      // stale: no heartbeat for three intervals and it did not say it stopped.
      const late = 'stale' in p ? p.stale : !p.alive;
      const age = typeof p.heartbeat_age_ms === 'number' ? p.heartbeat_age_ms : now - new Date(p.last_seen).getTime();
      const holder = p.role === 'primary' && lease && lease.valid && lease.pid === p.pid && lease.host === p.host;
      return row([cell(p.role + (holder ? ' (lease holder)' : '')), cell(p.worker), cell(p.host), cell(p.pid, 'num'),
        cell(p.state), cell(ago(age) + (late ? ' — late' : '')), cell(short(p.started_at)), cell(p.requests, 'num'), cell(p.version)],
      late ? 'late' : '');
    });
    fillTable($('cluster-table'), rows, 'No process has recorded a heartbeat.');
  }

  // --- live updates --------------------------------------------------------

  function setLive(kind, text) {
    const el = $('live');
    el.hidden = false;
    el.className = 'live ' + kind;
    el.textContent = text;
  }

  // connect opens the event stream with a new token. On any failure the
  // stream is closed and opened again with a fresh token (the old one may
  // have expired), resuming after the last event seen.
  async function connect() {
    clearTimeout(reconnectTimer);
    if (stream) stream.close();
    stream = null;
    streamLive = false;
    if (!key) return;
    if (!has('messages:read')) {
      setLive('warn', 'No live updates: they need a key with the messages:read scope');
      return;
    }
    let token;
    try {
      token = (await (await api('POST', '/v1/events/token')).json()).token;
    } catch (e) {
      if (!key) return;
      if (e.status === 403) {
        setLive('warn', 'No live updates: they need a key with the messages:read scope');
        return; // polling covers it; a new key means signing in again
      }
      retry('Live updates unavailable: ' + describe(e));
      return;
    }
    const q = new URLSearchParams({ token, types: STREAM_TYPES });
    // After repeated failures the position may be too old to resume from
    // (410): start from now and reload everything instead.
    if (lastEventID && streamFailures < 2) q.set('last_event_id', lastEventID);
    const es = new EventSource('/v1/events?' + q.toString());
    stream = es;
    const on = (type, f) => es.addEventListener(type, (e) => {
      if (e.lastEventId) lastEventID = e.lastEventId;
      let ev = {};
      try { ev = JSON.parse(e.data); } catch (err) { /* keep going */ }
      f(ev.data || {});
    });
    es.onopen = () => {
      if (stream !== es) return;
      streamLive = true;
      streamFailures = 0;
      setLive('ok', 'Live');
      refreshAll(); // whatever changed while the stream was down
    };
    on('session.state', () => loadSession());
    on('sending.paused', () => loadSession());
    on('session.qr', () => loadQR());
    on('message.incoming', () => messagesChanged());
    on('message.status', (d) => {
      if (d.id && d.id === lastSentID) showSent(d.id, d.status, d.error && d.error.reason);
      messagesChanged();
    });
    es.onerror = () => {
      if (stream !== es) return;
      es.close();
      stream = null;
      streamLive = false;
      streamFailures++;
      retry('Live updates interrupted; reconnecting');
    };
  }

  function retry(text) {
    const delay = Math.min(30000, 1000 * 2 ** Math.min(streamFailures, 5));
    setLive('warn', text + ' in ' + Math.round(delay / 1000) + ' s');
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  function refreshAll() {
    if (can('session')) loadSession();
    if (can('messages')) loadMessages();
    if (can('outbox')) loadOutbox();
    if (can('webhooks')) loadWebhooks();
    if (can('cluster')) loadCluster();
  }

  // poll refreshes what has no events; while the stream is down it also
  // refreshes the session and the messages.
  function poll() {
    if (scopes === null) loadScopes().then(refreshAll, () => {});
    if (can('cluster')) loadCluster();
    if (can('outbox')) loadOutbox();
    if (can('webhooks')) loadWebhooks();
    if (!streamLive) {
      if (can('session')) loadSession();
      if (can('messages')) loadMessages();
    }
  }

  // --- signing in and out ---------------------------------------------------

  async function showDashboard() {
    try {
      await loadScopes();
    } catch (e) {
      return; // the key was refused: signed out
    }
    $('login-view').hidden = true;
    $('dashboard').hidden = false;
    $('signout').hidden = false;
    refreshAll();
    clearInterval(pollTimer);
    pollTimer = setInterval(poll, POLL_MS);
    connect();
  }

  function signOut(message) {
    key = '';
    sessionStorage.removeItem(KEY_ITEM);
    clearInterval(pollTimer);
    clearTimeout(reconnectTimer);
    clearTimeout(messagesTimer);
    if (stream) stream.close();
    stream = null;
    streamLive = false;
    lastEventID = '';
    scopes = null;
    clearQR('');
    $('dashboard').hidden = true;
    $('signout').hidden = true;
    $('live').hidden = true;
    $('login-view').hidden = false;
    $('login-error').textContent = message || '';
    $('key').focus();
  }

  async function signIn(ev) {
    ev.preventDefault();
    const input = $('key');
    const candidate = input.value.trim();
    $('login-error').textContent = '';
    if (!/^app_[A-Za-z0-9_-]+$/.test(candidate)) {
      $('login-error').textContent = 'An API key looks like app_<id>_<secret>: make one on the server with app keys create.';
      return;
    }
    key = candidate;
    // GET /v1/key answers any valid key with its scopes.
    try {
      await api('GET', '/v1/key');
    } catch (e) {
      if (e.status === 401) return; // api signed out with the reason
      key = '';
      $('login-error').textContent = describe(e);
      return;
    }
    sessionStorage.setItem(KEY_ITEM, key);
    input.value = '';
    showDashboard();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login-form').addEventListener('submit', signIn);
    $('pair-form').addEventListener('submit', pairWithCode);
    $('send-form').addEventListener('submit', sendMessage);
    $('signout').addEventListener('click', () => signOut(''));
    if (key) {
      showDashboard();
    } else {
      signOut('');
    }
  });
})();
