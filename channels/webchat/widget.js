/* Gentinfo web chat for gent.be. Vanilla JS, no dependencies, no third-party requests.
 * Embed:  <script src="CHAT-SERVER/webhooks/webchat/widget.js" data-title="Gentinfo" defer></script>
 * See docs/webchat.md for the data- attributes and the server endpoints. */
(() => {
  'use strict';
  const script = document.currentScript;
  if (!script || window.gentinfoWebchat) return;

  const data = script.dataset;
  const api = data.server
    ? data.server.replace(/\/+$/, '') + '/webhooks/webchat'
    : new URL('.', script.src).href.replace(/\/$/, '');
  const title = (data.title || 'Gentinfo').slice(0, 60);
  const STORE = 'gentinfo-webchat';
  const SESSION = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const MAX_CHARS = 2000;
  const T = {
    launcher: 'Chat met ' + title,
    unread: ' (nieuw bericht)',
    ask: 'Stel uw vraag',
    send: 'Verstuur',
    restart: 'Opnieuw beginnen',
    close: 'Sluiten',
    log: 'Gesprek',
    you: 'U: ',
    bot: title + ': ',
    replies: 'Kies een antwoord',
    typing: title + ' is aan het typen…',
    offline: 'Geen verbinding. We proberen opnieuw…',
    kept: 'Uw bericht wordt verstuurd zodra er weer verbinding is.',
    notSent: 'Nog niet verstuurd',
    failed: 'Er ging iets mis. Probeer het later opnieuw.',
    newWindow: ' (opent in een nieuw venster)',
    image: 'Afbeelding',
    attachment: 'Bijlage openen',
    calendar: 'Zet de afspraak in uw agenda (.ics)',
  };

  /* ---- colours: any data-color works, the text on it is chosen for contrast ≥ 4.5:1 ---- */
  const hex = (value) => {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(value || '');
    if (!m) return null;
    const h = m[1].length === 3 ? m[1].replace(/./g, '$&$&') : m[1];
    return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16));
  };
  const luminance = (rgb) => {
    const [r, g, b] = rgb.map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const color = hex(data.color) ? data.color : '#005a85';
  const rgb = hex(color);
  const white = [255, 255, 255];
  const onAccent = contrast(rgb, white) >= contrast(rgb, [0, 0, 0]) ? '#ffffff' : '#000000';
  const accentInk = contrast(rgb, white) >= 4.5 ? color : '#1a1a1a';
  const accentLine = contrast(rgb, white) >= 3 ? color : '#595f66'; // borders: 3:1 (WCAG 1.4.11)

  const CSS = `
:host{all:initial}
*{box-sizing:border-box}
[hidden]{display:none!important}
.root{font:400 1em/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1a1a1a}
.sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
button,textarea{font:inherit;color:inherit}
button{cursor:pointer}
:focus-visible{outline:3px solid #000;outline-offset:2px;box-shadow:0 0 0 5px #fff}
.launcher{position:fixed;right:1em;bottom:1em;z-index:2147483000;display:flex;align-items:center;gap:.5em;min-height:48px;padding:.6em 1.1em;border:2px solid transparent;border-radius:2em;background:var(--accent);color:var(--on-accent);font-weight:600;box-shadow:0 2px 10px rgba(0,0,0,.3)}
.launcher svg,.icon svg{width:1.25em;height:1.25em;flex:none;fill:currentColor}
.badge{width:.75em;height:.75em;border-radius:50%;background:#c00;border:2px solid #fff}
.panel{position:fixed;right:1em;bottom:5em;z-index:2147483001;display:flex;flex-direction:column;width:24em;max-width:calc(100vw - 2em);height:38em;max-height:calc(100vh - 7em);background:#fff;border-radius:.75em;box-shadow:0 4px 24px rgba(0,0,0,.35);overflow:hidden}
.head{display:flex;align-items:center;gap:.25em;padding:.25em .25em .25em 1em;background:var(--accent);color:var(--on-accent)}
h2{flex:1;margin:0;font-size:1.125em;font-weight:700;overflow-wrap:anywhere}
.icon{display:flex;align-items:center;justify-content:center;min-width:44px;min-height:44px;padding:0;border:2px solid transparent;border-radius:.5em;background:transparent}
.icon:hover{background:rgba(127,127,127,.25)}
.notice{margin:0;padding:.5em 1em;background:#fff4ce;border-bottom:1px solid #8a6d00}
.notice:empty{display:none}
.log{flex:1 1 auto;min-height:0;overflow-y:auto;padding:1em;background:#f4f5f6}
.msg{display:flex;flex-direction:column;align-items:flex-start;max-width:85%;margin:0 0 .75em}
.from-user{margin-left:auto;align-items:flex-end}
.bubble{margin:0;padding:.55em .85em;border-radius:1em;white-space:pre-wrap;overflow-wrap:anywhere}
.from-bot .bubble{background:#fff;border:1px solid #c3c8ce;border-top-left-radius:.25em}
.from-user .bubble{background:var(--accent);color:var(--on-accent);border:1px solid transparent;border-top-right-radius:.25em}
.bubble a{color:#0b4f8a;text-decoration:underline}
.msg img{display:block;max-width:100%;height:auto;margin:.25em 0;border-radius:.5em}
.meta{font-size:.8125em;color:#595f66;margin-top:.15em}
.state{display:none;margin-left:.5em;font-weight:600}
.offline .state{display:inline}
.replies{display:flex;flex-wrap:wrap;gap:.5em;margin:0 0 .75em}
.reply{min-height:44px;padding:.4em .9em;border:2px solid var(--accent-line);border-radius:1.5em;background:#fff;color:var(--accent-ink);font-weight:600;text-align:left}
.reply:hover{background:#eef1f4}
.typing{display:flex;gap:.3em;padding:0 1.25em .5em;background:#f4f5f6}
.typing span{width:.5em;height:.5em;border-radius:50%;background:#595f66;animation:gw-blink 1.2s infinite ease-in-out both}
.typing span:nth-child(2){animation-delay:.2s}
.typing span:nth-child(3){animation-delay:.4s}
@keyframes gw-blink{0%,80%,100%{opacity:.25}40%{opacity:1}}
form{display:flex;align-items:flex-end;gap:.5em;padding:.5em;border-top:1px solid #c3c8ce;background:#fff}
textarea{flex:1;min-width:0;min-height:44px;max-height:8em;padding:.55em .75em;border:2px solid #6b7178;border-radius:.5em;background:#fff;resize:none}
textarea::placeholder{color:#595f66;opacity:1}
.send{min-height:44px;padding:.4em 1em;border:2px solid transparent;border-radius:.5em;background:var(--accent);color:var(--on-accent);font-weight:600}
@media (max-width:30em),(max-height:32em){
.panel{inset:0;width:auto;max-width:none;height:auto;max-height:none;border-radius:0}
.open .launcher{display:none}
.head{padding:0 0 0 .75em}
.log{padding:.5em}
}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}
@media print{.launcher,.panel{display:none!important}}
`;

  /* ---- storage: survives reloads and navigation; works (in memory) when storage is blocked ---- */
  const readStore = () => {
    try {
      const saved = JSON.parse(localStorage.getItem(STORE) || '{}');
      if (!saved || !SESSION.test(saved.session || '')) return {};
      const outbox = Array.isArray(saved.outbox)
        ? saved.outbox.filter((i) => i && typeof i.message === 'string' && typeof i.id === 'string')
        : [];
      return { session: saved.session, open: saved.open, greeted: !!saved.greeted, outbox };
    } catch (e) {
      return {};
    }
  };
  const state = Object.assign({ session: null, open: null, greeted: false, outbox: [] }, readStore());
  const save = () => {
    try {
      localStorage.setItem(STORE, JSON.stringify(state));
    } catch (e) {
      /* private mode: the conversation lasts as long as the page */
    }
  };

  const uuid = () => {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Array.from(b, (v) => v.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  };
  const backoff = (attempt) => Math.min(30000, 1000 * 2 ** attempt) * (0.8 + Math.random() * 0.4);

  /* ---- DOM: built from nodes only; bot text is never parsed as HTML ---- */
  const h = (tag, attrs, ...children) => {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (value !== false && value != null) el.setAttribute(key, value === true ? '' : value);
    }
    el.append(...children.filter((c) => c != null));
    return el;
  };
  const icon = (path) => {
    const ns = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', path);
    svg.append(p);
    return svg;
  };
  const httpUrl = (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (e) {
      return null;
    }
  };
  const link = (href, text) =>
    h('a', { href, target: '_blank', rel: 'noopener noreferrer' }, text, h('span', { class: 'sr' }, T.newWindow));
  /** Text with its http(s) addresses as links; trailing punctuation stays text. */
  const richText = (text) => {
    const out = document.createDocumentFragment();
    const pattern = /https?:\/\/[^\s<>"'`]+/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      const raw = match[0].replace(/[.,;:!?)\]]+$/, '');
      const href = httpUrl(raw);
      if (!href) continue;
      out.append(text.slice(last, match.index), link(href, raw));
      last = match.index + raw.length;
    }
    out.append(text.slice(last));
    return out;
  };
  const clock = (ms) => {
    const d = new Date(ms);
    return h('time', { datetime: d.toISOString() }, d.toLocaleTimeString('nl-BE', { hour: '2-digit', minute: '2-digit' }));
  };

  const host = h('div', { id: 'gentinfo-webchat' });
  const shadow = host.attachShadow({ mode: 'open' });
  if (shadow.adoptedStyleSheets && 'replaceSync' in CSSStyleSheet.prototype) {
    // A constructed sheet is not "inline style", so a strict Content-Security-Policy allows it.
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.append(h('style', {}, CSS));
  }
  host.style.setProperty('--accent', color);
  host.style.setProperty('--on-accent', onAccent);
  host.style.setProperty('--accent-ink', accentInk);
  host.style.setProperty('--accent-line', accentLine);

  const badge = h('span', { class: 'badge', hidden: true }, h('span', { class: 'sr' }, T.unread));
  const launcher = h(
    'button',
    { class: 'launcher', type: 'button', 'aria-expanded': 'false', 'aria-controls': 'gw-panel', onclick: () => (isOpen() ? close() : open(true)) },
    icon('M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z'),
    h('span', {}, T.launcher),
    badge,
  );
  const restartButton = h(
    'button',
    { class: 'icon', type: 'button', 'aria-label': T.restart, title: T.restart, onclick: restart },
    icon('M12 5V2L7 6l5 4V7a5 5 0 1 1-5 5H5a7 7 0 1 0 7-7z'),
  );
  const closeButton = h(
    'button',
    { class: 'icon', type: 'button', 'aria-label': T.close, title: T.close, onclick: close },
    icon('M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z'),
  );
  const notice = h('p', { class: 'notice', role: 'alert' });
  const log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': T.log, tabindex: '0' });
  const typing = h('div', { class: 'typing', 'aria-hidden': 'true', hidden: true }, h('span'), h('span'), h('span'));
  const status = h('div', { class: 'sr', role: 'status' });
  const input = h('textarea', {
    id: 'gw-input', rows: '1', maxlength: String(MAX_CHARS), placeholder: T.ask + '…', autocomplete: 'off',
  });
  const form = h(
    'form',
    { onsubmit: submit },
    h('label', { class: 'sr', for: 'gw-input' }, T.ask),
    input,
    h('button', { class: 'send', type: 'submit' }, T.send),
  );
  const panel = h(
    'div',
    { class: 'panel', id: 'gw-panel', role: 'dialog', 'aria-labelledby': 'gw-title', hidden: true },
    h('div', { class: 'head' }, h('h2', { id: 'gw-title' }, title), restartButton, closeButton),
    notice, log, typing, status, form,
  );
  const root = h('div', { class: 'root' }, panel, launcher);
  shadow.append(root);

  /* ---- rendering ---- */
  const scrollDown = () => {
    log.scrollTop = log.scrollHeight;
  };
  const clearReplies = () => log.querySelectorAll('.replies').forEach((el) => el.remove());

  function addUser(text, time, pendingId) {
    const el = h(
      'div',
      { class: 'msg from-user', 'data-pending': pendingId || null },
      h('span', { class: 'sr' }, T.you),
      h('p', { class: 'bubble' }, text),
      h('span', { class: 'meta' }, clock(time), pendingId ? h('span', { class: 'state' }, T.notSent) : null),
    );
    log.append(el);
    scrollDown();
  }

  /** The assistant's calendar payload ({custom: {type: 'ics', filename, content}}) as a download link. */
  function calendarFile(custom) {
    if (!custom || custom.type !== 'ics' || typeof custom.content !== 'string') return null;
    const name = /^[\w.-]{1,80}\.ics$/.test(custom.filename || '') ? custom.filename : 'afspraak.ics';
    const href = URL.createObjectURL(new Blob([custom.content], { type: 'text/calendar' }));
    return h('a', { href, download: name }, T.calendar);
  }

  function addBot(message, time) {
    const parts = [];
    if (typeof message.text === 'string' && message.text) parts.push(h('p', { class: 'bubble' }, richText(message.text)));
    const image = typeof message.image === 'string' && httpUrl(message.image);
    if (image) parts.push(h('img', { src: image, alt: T.image, onload: scrollDown }));
    const attachment = typeof message.attachment === 'string' && httpUrl(message.attachment);
    if (attachment) parts.push(h('p', { class: 'bubble' }, link(attachment, T.attachment)));
    const calendar = calendarFile(message.custom);
    if (calendar) parts.push(h('p', { class: 'bubble' }, calendar));
    if (!parts.length) return;
    log.append(
      h('div', { class: 'msg from-bot' }, h('span', { class: 'sr' }, T.bot), ...parts, h('span', { class: 'meta' }, clock(time))),
    );
    scrollDown();
  }

  function addReplies(buttons) {
    const valid = (Array.isArray(buttons) ? buttons : []).filter((b) => b && typeof b.title === 'string' && b.title);
    if (!valid.length) return;
    const group = h('div', { class: 'replies', role: 'group', 'aria-label': T.replies });
    for (const b of valid) {
      group.append(
        h('button', {
          class: 'reply', type: 'button',
          onclick: () => {
            clearReplies();
            enqueue(typeof b.payload === 'string' && b.payload ? b.payload : b.title, b.title);
            input.focus();
          },
        }, b.title),
      );
    }
    log.append(group);
    scrollDown();
  }

  /** Bot messages from an answer, a push or the history (timestamps in seconds, else now). */
  function showBot(messages) {
    let buttons = null;
    for (const m of messages) {
      if (!m || typeof m !== 'object') continue;
      clearReplies();
      addBot(m, m.timestamp ? m.timestamp * 1000 : Date.now());
      buttons = m.buttons || null;
    }
    if (buttons) addReplies(buttons);
  }

  const setNotice = (text) => {
    notice.textContent = text;
  };
  function setOffline(offline) {
    root.classList.toggle('offline', offline);
    if (offline) setNotice(T.offline + (state.outbox.some((i) => !i.hidden) ? ' ' + T.kept : ''));
    else if (notice.textContent.startsWith(T.offline)) setNotice('');
  }
  function setBusy(busy) {
    typing.hidden = !busy;
    status.textContent = busy ? T.typing : '';
    if (busy) scrollDown();
  }
  const isOpen = () => !panel.hidden;
  function setUnread(unread) {
    badge.hidden = !unread;
  }

  /* ---- sending: an outbox in storage, so a message typed while offline is never lost ---- */
  let sending = false;
  let sendAttempt = 0;
  let sendTimer = 0;
  let restored = false;

  function enqueue(message, label, hidden) {
    const item = { id: uuid(), message, label: label || null, hidden: !!hidden, time: Date.now() };
    state.outbox.push(item);
    save();
    if (!hidden) addUser(label || message, item.time, item.id);
    flush();
  }

  /** A message the server refused: back into the input, so the citizen can change it. */
  function unsend(item) {
    log.querySelector(`[data-pending="${item.id}"]`)?.remove();
    if (!input.value) input.value = item.message;
  }

  function showOutbox() {
    for (const item of state.outbox) {
      if (!item.hidden) addUser(item.label || item.message, item.time, item.id);
    }
  }

  function markSent(id) {
    const el = log.querySelector(`[data-pending="${id}"]`);
    if (!el) return;
    el.removeAttribute('data-pending');
    el.querySelector('.state')?.remove();
  }

  async function flush() {
    if (sending || !restored || !state.session) return;
    clearTimeout(sendTimer);
    sending = true;
    const session = state.session;
    try {
      while (state.outbox.length && state.session === session) {
        const item = state.outbox[0];
        setBusy(true);
        let res = null;
        try {
          res = await fetch(api + '/webhook', {
            method: 'POST',
            // text/plain keeps this a "simple" request: no CORS preflight round trip.
            headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
            body: JSON.stringify({ sender: session, message: item.message, label: item.label, message_id: item.id }),
          });
        } catch (e) {
          res = null;
        }
        if (state.session !== session) return;
        if (!res || res.status === 429 || res.status >= 502) {
          setOffline(true);
          sendTimer = setTimeout(flush, backoff(sendAttempt++));
          return;
        }
        const body = await res.json().catch(() => null);
        sendAttempt = 0;
        setOffline(false);
        state.outbox.shift();
        save();
        if (res.ok || res.status >= 500 || item.label || item.hidden) markSent(item.id);
        else unsend(item);
        if (res.ok) {
          setNotice('');
          showBot(Array.isArray(body) ? body : []);
        } else {
          setNotice((body && body.error) || T.failed);
        }
      }
    } finally {
      sending = false;
      setBusy(false);
      if (state.session !== session) flush();
    }
  }

  function submit(event) {
    if (event) event.preventDefault();
    const text = input.value.trim();
    if (!text) {
      input.focus();
      return;
    }
    input.value = '';
    fit();
    enqueue(text);
  }

  function fit() {
    input.style.height = 'auto';
    input.style.height = input.scrollHeight + 4 + 'px';
  }

  /* ---- pushes (agents' replies) over Server-Sent Events, reconnecting with back-off ---- */
  let source = null;
  let streamAttempt = 0;
  let streamTimer = 0;
  let lastEventId = 0;

  function connect() {
    clearTimeout(streamTimer);
    if (source) source.close();
    source = null;
    if (!state.session) return;
    const resume = lastEventId ? '&last_event_id=' + lastEventId : '';
    const es = new EventSource(`${api}/stream?sender=${state.session}${resume}`);
    source = es;
    es.onopen = () => {
      streamAttempt = 0;
      setOffline(false);
      if (restored) flush();
      else restore();
    };
    es.onmessage = (event) => {
      const id = Number(event.lastEventId) || 0;
      if (id && id <= lastEventId) return;
      lastEventId = Math.max(lastEventId, id);
      let message = null;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      showBot([message]);
      if (!isOpen()) setUnread(true);
    };
    es.onerror = () => {
      es.close();
      if (source !== es) return;
      source = null;
      if (streamAttempt > 0) setOffline(true);
      streamTimer = setTimeout(connect, backoff(streamAttempt++));
    };
  }

  /* ---- history: the server's transcript, then what is still waiting in the outbox ---- */
  let restoreAttempt = 0;
  let restoreTimer = 0;
  let restoring = false;

  async function restore() {
    if (restoring || restored) return;
    clearTimeout(restoreTimer);
    restoring = true;
    const session = state.session;
    let body = null;
    let refused = null;
    try {
      const res = await fetch(`${api}/history?sender=${session}`);
      if (res.ok) body = await res.json();
      else if (res.status < 500) refused = (await res.json().catch(() => null)) || {};
    } catch (e) {
      body = null;
    }
    restoring = false;
    if (state.session !== session) return;
    if (refused) {
      setNotice(refused.error || T.failed); // not a connection problem: retrying will not help
      return;
    }
    if (!body || !Array.isArray(body.messages)) {
      setOffline(true);
      restoreTimer = setTimeout(restore, backoff(restoreAttempt++));
      return;
    }
    restoreAttempt = 0;
    log.replaceChildren();
    let lastButtons = null;
    for (const m of body.messages) {
      if (m.sender === 'user') {
        addUser(String(m.text || ''), m.timestamp * 1000);
        lastButtons = null;
      } else {
        showBot([{ ...m, buttons: null }]);
        lastButtons = m.buttons || null;
      }
    }
    showOutbox();
    if (lastButtons && !state.outbox.length) addReplies(lastButtons);
    restored = true;
    if (!state.greeted && !body.messages.length) greet();
    flush();
  }

  function greet() {
    state.greeted = true;
    enqueue('/greet', null, true);
  }

  /** A fresh conversation: new unguessable id, empty log, greeting. */
  function startNew() {
    state.session = uuid();
    state.outbox = [];
    state.greeted = false;
    save();
    log.replaceChildren();
    setNotice('');
    setOffline(false);
    lastEventId = 0;
    restored = true;
    clearTimeout(sendTimer);
    clearTimeout(restoreTimer);
    greet();
    connect();
  }

  function restart() {
    startNew();
    input.focus();
  }

  function open(focus) {
    panel.hidden = false;
    root.classList.add('open');
    launcher.setAttribute('aria-expanded', 'true');
    setUnread(false);
    state.open = true;
    if (!state.session) startNew();
    save();
    scrollDown();
    if (focus) input.focus();
  }

  function close() {
    panel.hidden = true;
    root.classList.remove('open');
    launcher.setAttribute('aria-expanded', 'false');
    state.open = false;
    save();
    launcher.focus();
  }

  panel.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) submit(event);
  });
  input.addEventListener('input', fit);
  window.addEventListener('online', () => {
    sendAttempt = 0;
    streamAttempt = 0;
    if (state.session && !source) connect();
    flush();
  });

  window.gentinfoWebchat = { open: () => open(true), close };
  const mount = () => {
    document.body.append(host);
    if (state.session) {
      showOutbox();
      restore();
      connect();
    }
    if (state.open === true || (state.open == null && data.open === 'true')) open(false);
  };
  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount);
})();
