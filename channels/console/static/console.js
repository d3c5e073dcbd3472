// Gentinfo agent console. Plain JavaScript, no libraries. Every text from citizens, the assistant
// or colleagues is put on the page with textContent, never parsed as HTML.
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var me = document.getElementById("ik").textContent;
  var state = { queue: null, current: null, seen: {}, socket: null, retry: 1000 };

  var CHANNELS = { whatsapp: "WhatsApp", telegram: "Telegram", web: "Webchat" };
  var SLOT_NAMES = { product: "Onderwerp", location: "Locatie", reference: "Referentie" };
  var OUTCOMES = {
    handback: "Dit gesprek is terug bij de digitale assistent.",
    closed: "Dit gesprek is afgesloten.",
    citizen_stop: "De burger typte 'stop' en praat weer met de digitale assistent.",
    expired: "Dit gesprek ging na lange stilte vanzelf terug naar de digitale assistent."
  };
  var WHO = { citizen: "Burger", assistant: "Assistent", agent: "Medewerker", note: "Notitie", system: "Systeem" };

  function $(id) { return document.getElementById(id); }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function minutesSince(ts) { return Math.max(0, Math.floor((Date.now() / 1000 - ts) / 60)); }

  function waitText(ts) {
    var m = minutesSince(ts);
    if (m < 1) return "net binnen";
    if (m < 60) return m + " min";
    return Math.floor(m / 60) + " u " + (m % 60) + " min";
  }

  function clock(ts) {
    if (!ts) return "";
    return new Date(ts * 1000).toLocaleTimeString("nl-BE", { hour: "2-digit", minute: "2-digit" });
  }

  function say(text) { $("melding").textContent = text || ""; }

  function api(method, path, body) {
    var options = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") {
      options.headers["X-CSRF-Token"] = csrf;
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body || {});
    }
    return fetch(path, options).then(function (response) {
      if (response.status === 401) { window.location.href = "/login"; throw new Error("Meld u opnieuw aan."); }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.message || ("Fout " + response.status));
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  // --- queue ------------------------------------------------------------------------------------

  function summary(item) {
    var slots = (item.context && item.context.slots) || {};
    var parts = [];
    if (item.context && item.context.product_name) parts.push(item.context.product_name);
    else if (slots.product) parts.push(slots.product);
    if (item.context && item.context.location_name) parts.push(item.context.location_name);
    if (slots.reference) parts.push(slots.reference);
    return parts.join(" · ");
  }

  function lastCitizenText(item) {
    var recent = (item.recent || []).filter(function (e) { return e.type === "citizen"; });
    if (recent.length) return recent[recent.length - 1].text;
    var messages = ((item.context && item.context.messages) || []).filter(function (m) { return m.from === "citizen"; });
    return messages.length ? messages[messages.length - 1].text : "";
  }

  function queueItem(item, held) {
    var li = el("li");
    var button = el("button", null, "kaart");
    button.type = "button";
    button.setAttribute("data-id", item.id);
    if (state.current === item.id) button.setAttribute("aria-current", "true");
    var top = el("span", null, "kop");
    top.appendChild(el("span", item.channel_name || CHANNELS[item.channel] || item.channel, "kanaal kanaal-" + item.channel));
    top.appendChild(el("span", item.label, "adres"));
    top.appendChild(el("span", held ? ("bij " + item.agent) : ("wacht " + waitText(item.since)), "wacht"));
    button.appendChild(top);
    var reason = item.offline ? "Bericht buiten de uren · " + item.reason_text : item.reason_text;
    button.appendChild(el("span", reason, "reden"));
    var topic = summary(item);
    if (topic) button.appendChild(el("span", topic, "onderwerp"));
    var last = lastCitizenText(item);
    if (last) button.appendChild(el("span", "“" + (last.length > 120 ? last.slice(0, 117) + "…" : last) + "”", "laatste"));
    button.addEventListener("click", function () { open(item.id, true); });
    li.appendChild(button);
    return li;
  }

  function renderQueue() {
    var data = state.queue;
    if (!data) return;
    var list = $("wachtrij"), heldList = $("behandeling");
    clear(list); clear(heldList);
    data.waiting.forEach(function (item) { list.appendChild(queueItem(item, false)); });
    data.held.forEach(function (item) { heldList.appendChild(queueItem(item, true)); });
    $("aantal").textContent = String(data.waiting.length);
    $("wachtrij-leeg").hidden = data.waiting.length > 0;
    $("behandeling-leeg").hidden = data.held.length > 0;
    $("beschikbaarheid").value = data.availability;
    $("uren").textContent = (data.open_now ? "Live chat is open. " : "Live chat is gesloten. ") + "Uren: " + data.hours + ".";
    document.title = (data.waiting.length ? "(" + data.waiting.length + ") " : "") + "Gentinfo-chat voor medewerkers";
  }

  var queueTimer = null;
  function loadQueue() {
    if (queueTimer) { clearTimeout(queueTimer); queueTimer = null; }
    return api("GET", "/api/queue").then(function (data) { state.queue = data; renderQueue(); })
      .catch(function (error) { say(error.message); });
  }
  function scheduleQueue() { if (!queueTimer) queueTimer = setTimeout(loadQueue, 150); }

  // --- one conversation -------------------------------------------------------------------------

  function addDetail(list, term, value) {
    if (value === undefined || value === null || value === "") return;
    list.appendChild(el("dt", term));
    list.appendChild(el("dd", value));
  }

  function message(entry) {
    var type = entry.type || entry.from;
    var li = el("li", null, "bericht bericht-" + type);
    var head = el("span", null, "wie");
    var who = WHO[type] || type;
    if ((type === "agent" || type === "note") && entry.agent) who += " " + entry.agent;
    head.appendChild(el("span", who));
    head.appendChild(el("time", clock(entry.at)));
    li.appendChild(head);
    li.appendChild(el("p", entry.text, "tekst"));
    return li;
  }

  function appendEntry(entry) {
    if (!entry || state.seen[entry.id]) return;
    state.seen[entry.id] = true;
    var list = $("transcript");
    list.appendChild(message(entry));
    list.scrollTop = list.scrollHeight;
  }

  function renderDetail(data) {
    var item = data.handoff;
    state.item = item;
    $("geen-gesprek").hidden = true;
    $("detail").hidden = false;
    $("gesprek-titel").textContent = (item.channel_name || item.channel) + " " + item.label;
    var facts = $("gegevens");
    clear(facts);
    addDetail(facts, "Kanaal", item.channel_name || item.channel);
    addDetail(facts, "Adres", item.conversation);
    addDetail(facts, "Reden", item.reason_text + (item.offline ? " (bericht buiten de uren)" : ""));
    addDetail(facts, "Wacht sinds", clock(item.since) + " (" + waitText(item.since) + ")");
    addDetail(facts, "Plaats in de wachtrij", item.position);
    addDetail(facts, "Status", { waiting: "wacht", held: "in behandeling", closed: "afgesloten", message: "wacht op bericht" }[item.status] || item.status);
    addDetail(facts, "Behandeld door", item.agent);
    var slots = $("slots");
    clear(slots);
    var values = (item.context && item.context.slots) || {};
    Object.keys(values).forEach(function (name) {
      var value = values[name];
      if (name === "product" && item.context.product_name) value = item.context.product_name + " (" + value + ")";
      if (name === "location" && item.context.location_name) value = item.context.location_name;
      addDetail(slots, SLOT_NAMES[name] || name, typeof value === "object" ? JSON.stringify(value) : value);
    });
    if (!slots.firstChild) addDetail(slots, "–", "Nog niets verzameld.");
    var context = $("context");
    clear(context);
    ((item.context && item.context.messages) || []).forEach(function (m) { context.appendChild(message(m)); });
    clear($("transcript"));
    state.seen = {};
    data.transcript.forEach(appendEntry);
    var mine = item.status === "held" && item.agent === me;
    var isOpen = item.status === "waiting" || item.status === "held" || item.status === "message";
    $("claim").hidden = item.status !== "waiting";
    $("terug").hidden = !(mine || item.status === "waiting");
    $("sluit").hidden = !(mine || item.status === "waiting");
    $("antwoord-form").hidden = !mine;
    $("notitie-form").hidden = !isOpen;
    if (item.status === "held" && !mine) say("Dit gesprek wordt behandeld door " + item.agent + ".");
    else if (!isOpen) say(OUTCOMES[item.outcome] || "Dit gesprek is afgesloten.");
  }

  function open(id, focus) {
    state.current = id;
    say("");
    renderQueue();
    return api("GET", "/api/conversations/" + encodeURIComponent(id)).then(function (data) {
      if (state.current !== id) return;
      renderDetail(data);
      if (focus) $("gesprek").focus();
    }).catch(function (error) { say(error.message); });
  }

  function refreshCurrent() { if (state.current) return open(state.current, false); }

  function act(path, body, after) {
    if (!state.current) return Promise.resolve();
    var id = state.current;
    say("");
    return api("POST", "/api/conversations/" + encodeURIComponent(id) + "/" + path, body)
      .then(function (data) { if (after) after(data); return data; })
      .catch(function (error) {
        if (error.data && error.data.entry) appendEntry(error.data.entry);
        say(error.message);
        refreshCurrent();
      });
  }

  $("claim").addEventListener("click", function () {
    act("claim", {}, function () { loadQueue(); refreshCurrent().then(function () { $("antwoord").focus(); }); });
  });
  $("terug").addEventListener("click", function () {
    act("handback", {}, function () { loadQueue(); refreshCurrent(); });
  });
  $("sluit").addEventListener("click", function () {
    if (!window.confirm("Dit gesprek afsluiten?")) return;
    act("close", {}, function () { loadQueue(); refreshCurrent(); });
  });

  function sendForm(formId, fieldId, path) {
    var form = $(formId), field = $(fieldId);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var text = field.value.trim();
      if (!text) { say("Typ eerst een bericht."); return; }
      act(path, { text: text }, function (data) { field.value = ""; appendEntry(data.entry); field.focus(); });
    });
    field.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); form.requestSubmit(); }
    });
  }
  sendForm("antwoord-form", "antwoord", "reply");
  sendForm("notitie-form", "notitie", "note");

  $("beschikbaarheid").addEventListener("change", function (event) {
    api("POST", "/api/availability", { value: event.target.value }).then(loadQueue).catch(function (error) { say(error.message); });
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey && event.key === "1") {
      var first = document.querySelector("#wachtrij button");
      if (first) { event.preventDefault(); first.click(); }
    }
  });

  // --- live updates -----------------------------------------------------------------------------

  function status(text, ok) {
    var node = $("verbinding");
    node.textContent = text;
    node.className = "verbinding " + (ok ? "ok" : "weg");
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/api/ws");
    state.socket = socket;
    socket.addEventListener("open", function () {
      state.retry = 1000;
      status("Live verbonden", true);
      loadQueue();
      refreshCurrent();
    });
    socket.addEventListener("message", function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data.type === "hello") return;
      if (data.type === "resync") { loadQueue(); refreshCurrent(); return; }
      if (data.id && data.id === state.current) {
        if (data.entry) appendEntry(data.entry);
        if (data.type === "claimed" || data.type === "closed" || data.type === "updated") refreshCurrent();
      }
      if (data.type !== "note") scheduleQueue();
    });
    socket.addEventListener("close", function () {
      status("Verbinding verbroken, opnieuw verbinden…", false);
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 15000);
    });
  }

  setInterval(renderQueue, 30000);  // waiting times
  loadQueue();
  connect();
})();
