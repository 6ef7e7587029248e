// Show the server's answer for refused actions (400 bad input, 403 not allowed, 409 too late)
// in place, as it shows successes; other errors stay errors.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "(400|403|409|422)", swap: true, error: false },
  { code: "[45]..", swap: false, error: true },
];

// Keep the self-refresh from wiping a form someone is filling in: an open form, or a field with the
// cursor in it. A button or a summary keeps focus after a click; counting that as work left the
// queue frozen until the next click elsewhere.
window.queueIsIdle = function () {
  const results = document.getElementById("results");
  if (!results) return true;
  if (results.querySelector("details[open]")) return false;
  // A selection being built up is work too: a refresh would throw it away.
  if (results.querySelector(".row-select:checked, [name=all_matching]:checked")) return false;
  const active = document.activeElement;
  return !(active && results.contains(active) && active.matches("input, textarea, select"));
};

// An action's answer carries the new totals (HX-Trigger countsChanged): the tab badges and the
// list's own counters follow it, whatever rows are left on the page.
document.addEventListener("countsChanged", function (event) {
  const detail = event.detail || {};
  for (const [tab, count] of Object.entries(detail.tabs || {})) {
    document.querySelectorAll(`.count[data-tab="${CSS.escape(tab)}"]`).forEach((el) => { el.textContent = count; });
  }
  for (const [name, count] of Object.entries(detail.counters || {})) {
    document.querySelectorAll(`[data-counter="${CSS.escape(name)}"]`).forEach((el) => { el.textContent = count; });
  }
});

// --- the queue: selection, bulk actions and the keyboard ---------------------------------------

function queueRows() {
  return Array.from(document.querySelectorAll("#results tr[data-row]"));
}

function selectedBoxes() {
  return Array.from(document.querySelectorAll("#results .row-select:checked"));
}

// The bulk bar says how many are chosen and shows only the fields its action asks for.
function refreshBulk() {
  const bulk = document.getElementById("bulk");
  if (!bulk) return;
  const all = bulk.querySelector("[name=all_matching]");
  const count = bulk.querySelector("[data-selected]");
  if (count) count.textContent = all && all.checked ? "All" : String(selectedBoxes().length);
  queueRows().forEach((row) => {
    const box = row.querySelector(".row-select");
    row.classList.toggle("selected", Boolean(box && box.checked));
  });
  const action = bulk.querySelector("[name=action]").value;
  bulk.querySelectorAll("[data-for]").forEach((field) => {
    field.hidden = !field.dataset.for.split(" ").includes(action);
  });
}

let lastClickedBox = null;
document.addEventListener("click", function (event) {
  const box = event.target.closest && event.target.closest(".row-select");
  if (box) {
    // Shift-click: everything between the last box clicked and this one takes this one's state.
    if (event.shiftKey && lastClickedBox && document.contains(lastClickedBox)) {
      const boxes = queueRows().map((row) => row.querySelector(".row-select"));
      const [from, to] = [boxes.indexOf(lastClickedBox), boxes.indexOf(box)].sort((a, b) => a - b);
      if (from >= 0) boxes.slice(from, to + 1).forEach((b) => { b.checked = box.checked; });
    }
    lastClickedBox = box;
    refreshBulk();
    return;
  }
  const pageBox = event.target.closest && event.target.closest(".select-page");
  if (pageBox) {
    queueRows().forEach((row) => { row.querySelector(".row-select").checked = pageBox.checked; });
    refreshBulk();
  }
});
document.addEventListener("change", function (event) {
  if (event.target.closest && event.target.closest("#bulk")) refreshBulk();
});

let currentRowId = null;

function setCurrent(row) {
  queueRows().forEach((r) => r.classList.remove("current"));
  if (!row) return;
  row.classList.add("current");
  currentRowId = row.dataset.row;
  row.scrollIntoView({ block: "nearest" });
}

function currentRow() {
  return queueRows().find((row) => row.dataset.row === currentRowId) || null;
}

// After the list is swapped (a filter, a refresh, an action) the current row and the bar stay as they were.
document.addEventListener("htmx:afterSettle", function () {
  const row = currentRow();
  if (row) row.classList.add("current");
  refreshBulk();
});
document.addEventListener("DOMContentLoaded", refreshBulk);

function bulkDo(action, focusName) {
  const bulk = document.getElementById("bulk");
  if (!bulk) return;
  bulk.querySelector("[name=action]").value = action;
  refreshBulk();
  if (focusName) {
    const field = bulk.querySelector(`[name=${focusName}]`);
    if (field) field.focus();
  } else {
    bulk.requestSubmit();
  }
}

function rowDo(key, focusSelector) {
  const row = currentRow();
  if (!row) return;
  const target = row.querySelector(`[data-key="${key}"]`);
  if (!target) return;
  if (target.tagName === "DETAILS") {
    target.open = true;
    const field = target.querySelector(focusSelector);
    if (field) field.focus();
  } else {
    target.click();
  }
}

function toggleHelp(show) {
  const help = document.getElementById("keyboard-help");
  if (help) help.hidden = show === undefined ? !help.hidden : !show;
}

function typing(target) {
  return target.closest && Boolean(target.closest("input, textarea, select, [contenteditable]"));
}

document.addEventListener("keydown", function (event) {
  if (event.key === "Escape") {
    toggleHelp(false);
    return;
  }
  // Ctrl+Enter sends the form being typed in: a note is the last step of a resolve done from the keyboard.
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.form) {
    event.preventDefault();
    event.target.form.requestSubmit();
    return;
  }
  if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
  const rows = queueRows();
  if (event.key === "?") {
    toggleHelp();
  } else if (event.key === "/") {
    const search = document.getElementById("id_q") || document.getElementById("header-search");
    if (!search) return;
    search.focus();
    search.select();
  } else if (!rows.length) {
    return;
  } else if (event.key === "j" || event.key === "k") {
    const at = rows.indexOf(currentRow());
    const next = at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + (event.key === "j" ? 1 : -1)));
    setCurrent(rows[next]);
  } else if (event.key === "x") {
    const row = currentRow();
    if (!row) return;
    const box = row.querySelector(".row-select");
    box.checked = !box.checked;
    lastClickedBox = box;
    refreshBulk();
  } else if (event.key === "c") {
    selectedBoxes().length ? bulkDo("claim") : rowDo("c");
  } else if (event.key === "a") {
    selectedBoxes().length ? bulkDo("assign", "owner") : rowDo("a", "select");
  } else if (event.key === "r") {
    selectedBoxes().length ? bulkDo("resolve", "note") : rowDo("r", "textarea");
  } else {
    return;
  }
  event.preventDefault();
});
