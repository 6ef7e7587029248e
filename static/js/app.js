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
