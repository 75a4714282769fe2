// MatterHub's script: small progressive enhancements. Every page works without it.
"use strict";

// Copy buttons: <button data-copy="#id"> copies that element's text.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(source.textContent);
    button.textContent = "Copied";
  } catch (err) {
    // No clipboard (plain http, old browser): select the text so Ctrl+C works.
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = "Selected: press Ctrl+C";
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});

// Live submission status: poll the steps while the submission is active.
function pollStatus() {
  const overall = document.getElementById("overall");
  if (!overall || overall.dataset.active !== "true") return;
  const url = overall.dataset.poll;
  const words = { succeeded: "Published", curation: "Waiting for a curator", failed: "Failed", cancelled: "Cancelled" };
  const tick = async () => {
    let status;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      status = await response.json();
    } catch (err) {
      setTimeout(tick, 5000);
      return;
    }
    for (const step of status.status_list) {
      const row = document.querySelector(`#steps [data-step="${step.step}"]`);
      if (!row) continue;
      row.className = `step code-${step.code}`;
      row.querySelector(".code").textContent = step.code;
      row.querySelector(".meaning").textContent = step.meaning;
      row.querySelector(".detail").textContent = step.detail || "";
    }
    overall.className = `state ${status.state}`;
    overall.textContent = words[status.state] || `In progress (${status.state})`;
    if (status.state === "succeeded") document.getElementById("done-link").hidden = false;
    if (status.active) setTimeout(tick, status.state === "curation" ? 4000 : 1000);
  };
  setTimeout(tick, 800);
}
document.addEventListener("DOMContentLoaded", pollStatus);

// Servable "try it": send the form with fetch and show the answer in place (no reload).
// Without this script the form posts and the page comes back with the result.
function text(tag, content, attrs) {
  const node = document.createElement(tag);
  node.textContent = content;
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}
// One row a structure when an uploaded file held several.
function rowsTable(answer) {
  const table = text("table", "", { id: "try-rows" });
  const failed = answer.failed ? `, ${answer.failed} failed` : "";
  table.append(text("caption", `${answer.rows.length} structures${failed}`));
  const head = document.createElement("tr");
  for (const label of ["Structure", "Output", "ms"]) head.append(text("th", label, { scope: "col" }));
  const thead = document.createElement("thead");
  thead.append(head);
  const body = document.createElement("tbody");
  for (const row of answer.rows) {
    const tr = document.createElement("tr");
    const cell = document.createElement("td");
    cell.append(row.ok ? text("code", row.output) : text("span", row.error, { class: "error" }));
    tr.append(text("th", row.title, { scope: "row" }), cell, text("td", Number(row.total_ms || 0).toFixed(1)));
    body.append(tr);
  }
  table.append(thead, body);
  return table;
}
function enhanceTry() {
  const form = document.querySelector("form[data-try]");
  const box = document.getElementById("try-result");
  if (!form || !box) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    box.replaceChildren(text("p", "Running…", { class: "muted" }));
    for (const area of form.querySelectorAll("textarea, input[type=file]")) area.removeAttribute("aria-invalid");
    let answer;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      answer = await response.json();
    } catch (err) {
      answer = { ok: false, refused: true, error: `the request failed: ${err}` };
    }
    button.disabled = false;
    const ms = (value, digits) => `${Number(value || 0).toFixed(digits)} ms`;
    if (answer.ok) {
      const timing = text("p", "", { class: "muted", id: "try-timing" });
      if (answer.cached) {
        timing.append("answered from the result cache in ", text("strong", ms(answer.total_ms, 1)));
      } else {
        timing.append("ran in ", text("strong", ms(answer.wall_ms, 3)), ` (request ${ms(answer.total_ms, 1)})`);
      }
      timing.append(` · version ${answer.version} · task `, text("code", answer.task_id));
      if (answer.rows) {
        box.replaceChildren(text("h3", "Result"), rowsTable(answer), timing);
        const json = document.createElement("details");
        json.append(text("summary", "As JSON"), text("pre", answer.output, { id: "try-output" }));
        box.append(json);
      } else {
        box.replaceChildren(text("h3", "Result"), text("pre", answer.output, { id: "try-output" }), timing);
      }
    } else if (answer.task_id) {
      box.replaceChildren(text("h3", "The servable raised an error"),
        text("pre", answer.error, { class: "error", id: "try-error" }),
        text("p", `after ${ms(answer.wall_ms, 3)} · task ${answer.task_id}`, { class: "muted", id: "try-timing" }));
    } else {
      const where = answer.field ? `${answer.field}: ` : "";
      box.replaceChildren(text("p", where + answer.error, { class: "error", id: "try-error" }));
      const area = answer.field && form.querySelector(`[name="${answer.field}"]`);
      if (area) area.setAttribute("aria-invalid", "true");
    }
  });
}
document.addEventListener("DOMContentLoaded", enhanceTry);
