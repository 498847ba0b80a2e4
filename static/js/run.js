// The run page: its values are rendered on the server and swapped in by htmx (see
// templates/training/_run_poll.html). What stays here must happen in the browser: the log
// follows its end unless the reader scrolled up to read, and Cancel asks first.
(function () {
  "use strict";
  const log = document.getElementById("run-log");
  let following = true;
  const atEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  if (log) {
    log.scrollTop = log.scrollHeight;
    document.body.addEventListener("htmx:oobBeforeSwap", (event) => {
      if (event.detail.target === log) following = atEnd();
    });
    document.body.addEventListener("htmx:oobAfterSwap", (event) => {
      if (event.detail.target === log && following) log.scrollTop = log.scrollHeight;
    });
  }

  // Delegated: the form is replaced (hidden) when the run finishes.
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
