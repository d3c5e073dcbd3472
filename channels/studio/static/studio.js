/* Gentinfo-studio. Every text from the server (content, questions, names) goes in with textContent
   or as an attribute value, never as HTML. No external code. */
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const role = document.querySelector('meta[name="role"]').content;
const canEdit = role === "editor" || role === "admin";
const isAdmin = role === "admin";
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function say(text, bad) {
  const box = $("melding");
  box.textContent = text;
  box.className = bad ? "melding fout" : "melding";
}

async function api(method, path, body) {
  const options = { method, headers: { "X-CSRF-Token": csrf } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) { window.location.href = "/login"; throw new Error("login"); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.message || `Fout ${response.status}`);
    error.data = data;
    throw error;
  }
  return data;
}

function fail(error) {
  say(error.message, true);
  const problems = (error.data && error.data.problems) || [];
  return problems;
}

function list(target, items) {
  target.replaceChildren(...items.map((text) => el("li", { text })));
}

async function refreshStatus() {
  const me = await api("GET", "/api/me");
  $("versie").textContent = me.version ? `Gepubliceerde versie ${me.version}` : "Nog niets gepubliceerd: de bestanden gelden";
  $("concepten").textContent = me.drafts.length ? `(${me.drafts.length})` : "";
}

/* --- generic field forms ----------------------------------------------------------------------- */

function renderFields(container, prefix, fields) {
  container.replaceChildren();
  for (const field of fields) {
    const id = `${prefix}-${field.name}`;
    let input;
    if (field.type === "textarea" || field.type === "list") {
      input = el("textarea", { id, name: field.name, rows: field.type === "list" ? 5 : 4 });
      input.value = field.value;
    } else if (field.type === "select") {
      input = el("select", { id, name: field.name });
      for (const option of field.options) input.append(el("option", { value: option.value, text: option.label }));
      input.value = field.value;
    } else {
      input = el("input", { id, name: field.name });
      input.value = field.value;
    }
    if (!canEdit) input.setAttribute("readonly", "");
    input.setAttribute("aria-describedby", `${id}-fout`);
    container.append(el("div", { class: "veld" }, el("label", { for: id, text: field.label }), input,
      el("p", { id: `${id}-fout`, class: "veldfout", role: "alert" })));
  }
}

function formValues(container) {
  const values = {};
  for (const input of container.querySelectorAll("input, textarea, select")) values[input.name] = input.value;
  return values;
}

function showProblems(container, prefix, general, result) {
  for (const node of container.querySelectorAll(".veldfout")) node.textContent = "";
  for (const [name, messages] of Object.entries(result.fields || {})) {
    const node = $(`${prefix}-${name}-fout`);
    if (node) node.textContent = messages.join(" ");
  }
  list(general, result.general || []);
  if (result.valid) say("Concept bewaard. Klaar om te publiceren.");
  else say("Concept bewaard, maar er zijn nog fouten (zie bij de velden).", true);
}

/* --- topics ---------------------------------------------------------------------------------------- */

let topicList = [];
let currentTopic = null;

async function loadTopics() {
  const data = await api("GET", "/api/topics");
  topicList = data.topics;
  $("onderwerp-ids").replaceChildren(...topicList.map((t) => el("option", { value: t.id, text: t.title })));
  $("nieuw-domein").replaceChildren(...data.domains.map((d) => el("option", { value: d, text: d })));
  filterTopics();
}

function filterTopics() {
  const query = $("zoek-onderwerp").value.trim().toLowerCase();
  const shown = topicList.filter((t) => !query || t.title.toLowerCase().includes(query) || t.id.includes(query));
  $("onderwerpen").replaceChildren(...shown.slice(0, 200).map((t) => el("li", {},
    el("button", { type: "button", class: "link", "data-id": t.id, onclick: () => openTopic(t.id) },
      el("span", { text: t.title }), el("span", { class: "klein", text: ` ${t.kind === "product" ? "product" : t.document.replace("knowledge/", "")}` })))));
}

async function openTopic(id) {
  const form = await api("GET", `/api/topics/${encodeURIComponent(id)}`);
  currentTopic = form.id;
  $("onderwerp-titel").textContent = form.fields.find((f) => f.name === "title").value || form.id;
  $("onderwerp-bron").textContent = `${form.id} · ${form.document}`;
  list($("onderwerp-algemeen"), []);
  renderFields($("onderwerp-velden"), "onderwerp", form.fields);
  $("onderwerp-form").hidden = false;
}

async function saveTopic(event) {
  event.preventDefault();
  try {
    const result = await api("PUT", `/api/topics/${encodeURIComponent(currentTopic)}`, { fields: formValues($("onderwerp-velden")) });
    showProblems($("onderwerp-velden"), "onderwerp", $("onderwerp-algemeen"), result);
    await Promise.all([refreshStatus(), loadTopics()]);
  } catch (error) { fail(error); }
}

async function createTopic() {
  try {
    const result = await api("POST", "/api/topics", { domain: $("nieuw-domein").value, id: $("nieuw-id").value.trim(), title: $("nieuw-titel").value });
    await loadTopics();
    await openTopic(result.id);
    say("Nieuw onderwerp in het concept. Vul het antwoord en de link in.");
  } catch (error) { fail(error); }
}

/* --- locations and closing days ------------------------------------------------------------------ */

let currentLocation = null;

async function loadLocations() {
  const data = await api("GET", "/api/locations");
  $("locaties").replaceChildren(...data.locations.map((loc) => el("li", {},
    el("button", { type: "button", class: "link", onclick: () => openLocation(loc.id), text: loc.name }))));
  $("sluitingsdagen").replaceChildren();
  for (const day of data.closing_days) $("sluitingsdagen").append(closingRow(day));  // one by one: rows are numbered
}

function closingRow(day) {
  const number = document.querySelectorAll("#sluitingsdagen tr").length;
  const cell = (name, value, label) => {
    const input = el("input", { name, "aria-label": `${label} ${number + 1}` });
    input.value = value || "";
    if (!canEdit) input.setAttribute("readonly", "");
    return el("td", {}, input);
  };
  const row = el("tr", {}, cell("date", day.date, "Datum"), cell("reason", day.reason, "Reden"),
    cell("locations", (day.locations || []).join(", "), "Locaties"),
    el("td", {}, canEdit ? el("button", { type: "button", class: "tweede", text: "Weg", onclick: () => row.remove() }) : null));
  row.append(el("td", { class: "veldfout", role: "alert" }));
  return row;
}

async function openLocation(id) {
  const form = await api("GET", `/api/locations/${encodeURIComponent(id)}`);
  currentLocation = form.id;
  $("locatie-titel").textContent = form.fields.find((f) => f.name === "name").value;
  list($("locatie-algemeen"), []);
  renderFields($("locatie-velden"), "locatie", form.fields);
  $("locatie-form").hidden = false;
}

async function saveLocation(event) {
  event.preventDefault();
  try {
    const result = await api("PUT", `/api/locations/${encodeURIComponent(currentLocation)}`, { fields: formValues($("locatie-velden")) });
    showProblems($("locatie-velden"), "locatie", $("locatie-algemeen"), result);
    await refreshStatus();
  } catch (error) { fail(error); }
}

async function saveClosingDays(event) {
  event.preventDefault();
  const rows = [...document.querySelectorAll("#sluitingsdagen tr")];
  const days = rows.map((row) => ({
    date: row.querySelector('[name="date"]').value.trim(),
    reason: row.querySelector('[name="reason"]').value,
    locations: row.querySelector('[name="locations"]').value.split(",").map((s) => s.trim()).filter(Boolean),
  }));
  try {
    const result = await api("PUT", "/api/closing-days", { days });
    rows.forEach((row, index) => { row.querySelector(".veldfout").textContent = (result.rows[index] || []).join(" "); });
    list($("sluitingsdagen-algemeen"), result.general);
    say(result.valid ? "Concept bewaard. Klaar om te publiceren." : "Concept bewaard, maar er zijn nog fouten.", !result.valid);
    await refreshStatus();
  } catch (error) { fail(error); }
}

/* --- texts ----------------------------------------------------------------------------------------- */

let textList = [];
let channelLabels = {};

async function loadTexts() {
  const data = await api("GET", "/api/texts");
  textList = data.texts;
  channelLabels = data.channels;
  filterTexts();
}

function filterTexts() {
  const query = $("zoek-tekst").value.trim().toLowerCase();
  const shown = textList.filter((t) => !query || t.key.includes(query) || Object.values(t.variants).some((v) => v.toLowerCase().includes(query)));
  $("teksten").replaceChildren(...shown.slice(0, 60).map(textForm));
}

function textForm(entry) {
  const prefix = `tekst-${entry.key.replace(/[^a-z0-9_]/gi, "-")}`;
  const fields = el("div");
  const form = el("form", { class: "formulier tekst" }, el("h3", { text: entry.key }), fields);
  renderFields(fields, prefix, Object.keys(channelLabels).map((channel) => ({ name: channel, label: `${entry.key} – ${channelLabels[channel]}`, type: "textarea", value: entry.variants[channel] || "" })));
  const general = el("ul", { class: "fouten" });
  form.append(general);
  if (canEdit) form.append(el("button", { type: "submit", text: "Concept bewaren" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api("PUT", `/api/texts/${encodeURIComponent(entry.key)}`, { variants: formValues(fields) });
      showProblems(fields, prefix, general, result);
      await refreshStatus();
    } catch (error) { fail(error); }
  });
  return form;
}

/* --- preview ----------------------------------------------------------------------------------------- */

async function ask(event) {
  event.preventDefault();
  const box = $("antwoord");
  box.textContent = "…";
  $("antwoord-knoppen").replaceChildren();
  try {
    const result = await api("POST", "/api/preview", { question: $("vraag").value, channel: $("kanaal").value });
    box.textContent = result.kind === "none" ? "De assistent vindt hierop geen antwoord (de vraag gaat naar 'onbeantwoorde vragen')." : result.text;
    list($("antwoord-knoppen"), result.buttons);
  } catch (error) {
    box.textContent = "";
    const problems = fail(error);
    list($("antwoord-knoppen"), problems.map((p) => `${p.document} ${p.path}: ${p.message}`));
  }
}

/* --- drafts and publishing ------------------------------------------------------------------------- */

async function loadDrafts() {
  const data = await api("GET", "/api/drafts");
  list($("publiceer-fouten"), data.problems.map((p) => `${p.document} ${p.path}: ${p.message}`));
  const blocks = Object.entries(data.diff).map(([name, diff]) => el("section", {},
    el("h3", { text: name }), el("pre", { class: "diff", text: diff || "(geen verschil met de gepubliceerde versie)" })));
  $("wijzigingen").replaceChildren(...(blocks.length ? blocks : [el("p", { class: "leeg", text: "Er zijn geen wijzigingen." })]));
}

async function publish() {
  try {
    const result = await api("POST", "/api/publish", { note: $("notitie").value });
    $("notitie").value = "";
    say(`Versie ${result.release.id} is gepubliceerd. De assistent gebruikt ze binnen enkele seconden.`);
    await Promise.all([loadDrafts(), refreshStatus()]);
  } catch (error) {
    const problems = fail(error);
    if (problems.length) list($("publiceer-fouten"), problems.map((p) => `${p.document} ${p.path}: ${p.message}`));
  }
}

async function discard() {
  try {
    await api("POST", "/api/drafts/discard", {});
    say("Het concept is weggegooid.");
    await Promise.all([loadDrafts(), refreshStatus()]);
  } catch (error) { fail(error); }
}

/* --- versions ------------------------------------------------------------------------------------------ */

async function loadVersions() {
  const data = await api("GET", "/api/versions");
  const newest = data.versions.length ? data.versions[0].id : 0;
  const back = (id) => (isAdmin && id !== newest
    ? el("button", { type: "button", text: "Terugzetten", "aria-label": `Terugzetten naar versie ${id}`, onclick: () => rollback(id) }) : null);
  const rows = data.versions.map((v) => el("tr", {},
    el("td", { text: v.id === newest ? `${v.id} (online)` : String(v.id) }),
    el("td", { text: new Date(v.published_at).toLocaleString("nl-BE") }),
    el("td", { text: v.author }), el("td", { text: v.note }),
    el("td", { text: v.documents.join(", ") }),
    el("td", {},
      el("button", { type: "button", class: "tweede", text: "Wijzigingen", "aria-label": `Wijzigingen van versie ${v.id}`, onclick: () => showDiff(v.id) }),
      back(v.id))));
  rows.push(el("tr", {}, el("td", { text: newest ? "0" : "0 (online)" }), el("td", { text: "–" }), el("td", { text: "–" }),
    el("td", { text: "De bestanden van de release (git)" }), el("td", { text: "" }), el("td", {}, back(0))));
  $("versies").replaceChildren(...rows);
}

async function showDiff(id) {
  const data = await api("GET", `/api/versions/${id}`);
  const box = $("versie-diff");
  box.textContent = Object.entries(data.diff).map(([name, diff]) => diff || name).join("\n");
  box.hidden = false;
}

async function rollback(id) {
  try {
    const result = await api("POST", `/api/versions/${id}/rollback`, {});
    say(`Versie ${id} staat terug online (als versie ${result.release.id}).`);
    await Promise.all([loadVersions(), refreshStatus()]);
  } catch (error) { fail(error); }
}

/* --- unanswered questions --------------------------------------------------------------------------- */

async function loadClusters() {
  const data = await api("GET", "/api/unanswered");
  $("onbeantwoord-aantal").textContent = `(${data.total})`;
  $("clusters").replaceChildren(...data.clusters.map(clusterItem));
  if (!data.clusters.length) $("clusters").append(el("li", { class: "leeg", text: "Geen onbeantwoorde vragen." }));
}

function clusterItem(cluster, number) {
  const topicId = `cluster-${number}-onderwerp`;
  const domainId = `cluster-${number}-domein`;
  const ids = cluster.question_ids;
  const item = el("li", { class: "cluster" },
    el("h3", { text: `${cluster.size} ${cluster.size === 1 ? "vraag" : "vragen"}` }),
    el("ul", {}, ...cluster.phrasings.slice(0, 8).map((p) => el("li", { text: p.count > 1 ? `${p.text} (${p.count}×)` : p.text }))));
  if (canEdit) {
    const topic = el("input", { id: topicId, list: "onderwerp-ids", value: cluster.topic_guess || "" });
    const domain = el("select", { id: domainId }, ...[...$("nieuw-domein").options].map((o) => el("option", { value: o.value, text: o.text })));
    item.append(
      el("div", { class: "actie" }, el("label", { for: topicId, text: "Als synoniemen toevoegen aan onderwerp (id)" }), topic,
        el("button", { type: "button", text: "Synoniemen toevoegen", onclick: () => clusterAction("synonyms", { question_ids: ids, topic: topic.value.trim() }) })),
      el("div", { class: "actie" }, el("label", { for: domainId, text: "Of een nieuw onderwerp in domein" }), domain,
        el("button", { type: "button", class: "tweede", text: "Nieuw onderwerp", onclick: () => clusterAction("topic", { question_ids: ids, domain: domain.value }) })));
  }
  if (isAdmin) item.append(el("button", { type: "button", class: "tweede", text: "Negeren", onclick: () => clusterAction("dismiss", { question_ids: ids }) }));
  return item;
}

async function clusterAction(kind, body) {
  try {
    const result = await api("POST", `/api/unanswered/${kind}`, body);
    if (kind === "synonyms") say(`${result.added.length} synoniem(en) toegevoegd aan ${result.topic} in het concept. Publiceer om ze te gebruiken.`);
    else if (kind === "topic") say(`Nieuw onderwerp ${result.topic} in het concept: schrijf het antwoord bij Onderwerpen.`);
    else say(`${result.dismissed} vragen genegeerd.`);
    await Promise.all([loadClusters(), refreshStatus(), loadTopics()]);
  } catch (error) { fail(error); }
}

/* --- insights ----------------------------------------------------------------------------------------- */

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function barsHorizontal(target, entries, label) {
  const rows = entries.slice(0, 10);
  const max = Math.max(1, ...rows.map(([, v]) => v));
  const chart = svg("svg", { viewBox: `0 0 400 ${rows.length * 24 + 4}`, role: "img", "aria-label": label, class: "staaf" });
  rows.forEach(([name, value], i) => {
    const width = Math.max(2, (value / max) * 230);
    chart.append(svg("text", { x: 0, y: i * 24 + 16, class: "as" }, name.length > 22 ? `${name.slice(0, 21)}…` : name));
    chart.append(svg("rect", { x: 140, y: i * 24 + 4, width, height: 16, class: "balk" }));
    chart.append(svg("text", { x: 144 + width, y: i * 24 + 16, class: "waarde" }, String(value)));
  });
  target.replaceChildren(rows.length ? chart : el("p", { class: "leeg", text: "Geen gegevens." }));
}

function barsPerDay(target, perDay) {
  const totals = new Map();
  for (const row of perDay) totals.set(row.day, (totals.get(row.day) || 0) + row.conversations);
  const days = [...totals.entries()];
  if (!days.length) { target.replaceChildren(el("p", { class: "leeg", text: "Geen gesprekken in deze periode." })); return; }
  const max = Math.max(1, ...days.map(([, v]) => v));
  const width = 760 / days.length;
  const chart = svg("svg", { viewBox: "0 0 800 220", role: "img", "aria-label": "Gesprekken per dag", class: "dagen" });
  days.forEach(([day, value], i) => {
    const height = (value / max) * 180;
    const bar = svg("rect", { x: 30 + i * width, y: 190 - height, width: Math.max(1, width - 2), height, class: "balk" });
    bar.append(svg("title", {}, `${day}: ${value}`));
    chart.append(bar);
  });
  chart.append(svg("text", { x: 0, y: 14, class: "as" }, String(max)));
  chart.append(svg("text", { x: 30, y: 210, class: "as" }, days[0][0]));
  chart.append(svg("text", { x: 790, y: 210, class: "as", "text-anchor": "end" }, days[days.length - 1][0]));
  target.replaceChildren(chart);
}

const percent = (value) => (value === null || value === undefined ? "–" : `${Math.round(value * 1000) / 10}%`);
const minutes = (seconds) => (seconds === null || seconds === undefined ? "–" : `${Math.round(seconds / 6) / 10} min`);

async function loadInsights(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams();
  if ($("van").value) query.set("from", $("van").value);
  if ($("tot").value) query.set("to", $("tot").value);
  $("csv").href = `/api/insights.csv?${query}`;
  try {
    const data = await api("GET", `/api/insights?${query}`);
    $("van").value = data.start;
    $("tot").value = data.end;
    const cards = [
      ["Gesprekken", String(data.conversations)],
      ["Alleen door de assistent", percent(data.answered_alone)],
      ["Niet begrepen", percent(data.fallback_rate)],
      ["Naar een medewerker", percent(data.handoff_rate)],
      ["Wachttijd (mediaan)", minutes(data.wait_seconds.median)],
      ["Wachttijd (95%)", minutes(data.wait_seconds.p95)],
    ];
    $("kerncijfers").replaceChildren(...cards.map(([name, value]) => el("div", { class: "kaart" },
      el("span", { class: "klein", text: name }), el("strong", { text: value }))));
    barsPerDay($("grafiek-dagen"), data.per_day);
    barsHorizontal($("grafiek-redenen"), Object.entries(data.handoff_reasons), "Redenen voor een medewerker");
    barsHorizontal($("grafiek-onderwerpen"), Object.entries(data.top_topics), "Meest gevraagde onderwerpen");
    barsHorizontal($("grafiek-kafka"), Object.entries(data.kafka_per_product), "KAFKA-meldingen per product");
    $("kantoren").replaceChildren(...data.offices.map((o) => el("tr", {}, el("td", { text: o.office }),
      el("td", { text: String(o.bookings) }), el("td", { text: String(o.reschedules) }), el("td", { text: String(o.cancellations) }))));
    $("csat").replaceChildren(...Object.entries(data.csat_per_topic).map(([topic, v]) => el("tr", {},
      el("td", { text: topic }), el("td", { text: String(v.count) }), el("td", { text: String(v.average) }))));
  } catch (error) { fail(error); }
}

/* --- tabs and start ---------------------------------------------------------------------------------- */

const loaders = { onderwerpen: loadTopics, locaties: loadLocations, teksten: loadTexts, publiceren: loadDrafts,
  versies: loadVersions, onbeantwoord: loadClusters, inzichten: loadInsights };

function showTab(name) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    if (button.dataset.tab === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== `tab-${name}`;
  say("");
  if (loaders[name]) loaders[name]().catch(fail);
}

document.addEventListener("DOMContentLoaded", () => {
  if (!canEdit) for (const node of document.querySelectorAll(".alleen-redacteur")) node.hidden = true;
  for (const button of document.querySelectorAll("[data-tab]")) button.addEventListener("click", () => showTab(button.dataset.tab));
  $("zoek-onderwerp").addEventListener("input", filterTopics);
  $("zoek-tekst").addEventListener("input", filterTexts);
  $("onderwerp-form").addEventListener("submit", saveTopic);
  $("nieuw-maken").addEventListener("click", createTopic);
  $("locatie-form").addEventListener("submit", saveLocation);
  $("sluitingsdagen-form").addEventListener("submit", saveClosingDays);
  $("dag-toevoegen").addEventListener("click", () => $("sluitingsdagen").append(closingRow({})));
  $("voorbeeld-form").addEventListener("submit", ask);
  $("publiceer").addEventListener("click", publish);
  $("weggooien").addEventListener("click", discard);
  $("periode").addEventListener("submit", loadInsights);
  refreshStatus().catch(fail);
  loadTopics().catch(fail);
});
