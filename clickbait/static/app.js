// The editor's page: every text from the server or the editor is set with textContent, never parsed as HTML.
"use strict";
const $ = (id) => document.getElementById(id);
const starred = new Map(); // headline text -> row data

function headers() {
  const h = { "Content-Type": "application/json" };
  const token = $("token").value || sessionStorage.getItem("clickbait-token");
  if (token) h.Authorization = "Bearer " + token;
  return h;
}

async function call(path, body) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) { $("auth").hidden = false; }
  if (!response.ok) {
    const detail = data.detail;
    const text = Array.isArray(detail) ? detail.map((d) => `${d.field}: ${d.error}`).join("; ")
      : (detail && (detail.field ? `${detail.field}: ${detail.error}` : detail.error)) || response.statusText;
    throw new Error(text);
  }
  if ($("token").value) sessionStorage.setItem("clickbait-token", $("token").value);
  return data;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function updateStarred() {
  $("starred-count").textContent = `${starred.size} starred`;
  $("export").disabled = starred.size === 0;
}

function addRow(h) {
  const tr = document.createElement("tr");
  const star = document.createElement("button");
  star.type = "button";
  star.className = "star";
  star.textContent = "\u2606";
  star.setAttribute("aria-label", "star this headline");
  star.setAttribute("aria-pressed", "false");
  star.addEventListener("click", () => {
    const on = !starred.has(h.text);
    if (on) starred.set(h.text, h); else starred.delete(h.text);
    star.setAttribute("aria-pressed", String(on));
    star.textContent = on ? "\u2605" : "\u2606";
    updateStarred();
  });
  const td = document.createElement("td");
  td.appendChild(star);
  tr.appendChild(td);
  cell(tr, h.text, "headline");
  cell(tr, h.clickbait.toFixed(2), "num");
  cell(tr, h.log_prob_per_word.toFixed(2), "num");
  const copyTd = document.createElement("td");
  const copy = document.createElement("button");
  copy.type = "button";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", "copy this headline");
  copy.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(h.text); copy.textContent = "Copied"; }
    catch (e) { copy.textContent = "Copy failed"; }
  });
  copyTd.appendChild(copy);
  tr.appendChild(copyTd);
  $("results").querySelector("tbody").appendChild(tr);
}

$("generate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const body = {
    n: Number($("n").value), min_len: Number($("min_len").value), max_len: Number($("max_len").value),
    label: $("label").value, temperature: Number($("temperature").value),
    keywords: $("keywords").value.split(",").map((k) => k.trim()).filter((k) => k),
  };
  const prefix = $("prefix").value.trim();
  if (prefix) body.prefix = prefix;
  const minScore = numberOrNull("min_score");
  if (minScore !== null) body.min_score = minScore;
  const seed = numberOrNull("seed");
  if (seed !== null) body.seed = seed;
  $("generate").disabled = true;
  $("status").textContent = "Writing\u2026";
  try {
    const data = await call("/api/generate", body);
    $("results").querySelector("tbody").replaceChildren();
    // Most fluent first: the same headlines, but the ones that read as written come to the top (README: Realism).
    [...data.headlines].sort((a, b) => b.log_prob_per_word - a.log_prob_per_word).forEach(addRow);
    $("results").hidden = false;
    $("status").textContent = `${data.headlines.length} headlines (seed ${data.seed})`;
  } catch (e) {
    showError(e.message);
    $("status").textContent = "";
  } finally {
    $("generate").disabled = false;
  }
});

// Spreadsheet-safe, as batch files are: a cell starting with = + - @ is prefixed with ' so it shows as text.
function csvCell(value) {
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;
  return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

$("export").addEventListener("click", () => {
  const lines = ["text,clickbait,log_prob_per_word"];
  for (const h of starred.values()) lines.push([h.text, h.clickbait, h.log_prob_per_word].map(csvCell).join(","));
  const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = "starred-headlines.csv";
  document.body.appendChild(a);
  a.click();
  a.remove();
});

$("check-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("check-text").value.trim();
  if (!text) return;
  $("check-result").textContent = "Checking\u2026";
  try {
    const row = (await call("/api/check", { headlines: [text] })).rows[0];
    const slips = row.slips ? ` Slips: ${row.slips}.` : "";
    const copy = row.training_copy ? " It copies a training headline." : "";
    $("check-result").textContent =
      `Clickbait ${row.clickbait.toFixed(2)}, fluency ${row.log_prob_per_word.toFixed(2)} nats/word.${slips}${copy}`;
  } catch (e) {
    $("check-result").textContent = e.message;
  }
});

$("rewrite").addEventListener("click", async () => {
  const text = $("check-text").value.trim();
  if (!text) return;
  $("rewrites").replaceChildren();
  try {
    const data = await call("/api/rewrite", { text, n: 5, label: $("label").value });
    for (const r of data.rows) {
      const li = document.createElement("li");
      li.textContent = `${r.text} (${$("label").value} ${r.voice.toFixed(2)})`;
      $("rewrites").appendChild(li);
    }
  } catch (e) {
    $("check-result").textContent = e.message;
  }
});

updateStarred();
