// Show the server's answer for refused actions (400 bad input, 403 not allowed, 409 too late)
// in place, as it shows successes; other errors stay errors.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "(400|403|409|422)", swap: true, error: false },
  { code: "[45]..", swap: false, error: true },
];

// Keep the self-refresh from wiping a form someone is filling in.
window.queueIsIdle = function () {
  return !document.querySelector("#results details[open], #results :focus");
};
