// The live run page. live.js polls the run API about once a second and fills the [data-bind]
// fields; on each of its "live:update" events this script renders what needs more than a
// number: time left, queue position, GPU time, the attempt note, the error, the Cancel button,
// the log tail and the learning curves (a server-drawn SVG, fetched again when an epoch ends).
// Its formats match apps/training/templatetags/training_live.py, which draws the first paint.
(function () {
  "use strict";
  const root = document.querySelector("[data-testid=run-live]");
  const stringsNode = document.getElementById("run-strings");
  if (!root || !stringsNode) return;
  const S = JSON.parse(stringsNode.textContent);
  const FINISHED = ["succeeded", "failed", "cancelled"];
  const lang = document.documentElement.lang || undefined;
  const fill = (pattern, values) => pattern.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
  const oneDecimal = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const ordinals = new Intl.PluralRules("en", { type: "ordinal" });

  function eta(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    let s = Math.max(0, Math.round(seconds));
    if (s < 60) return fill(S.eta_s, { s });
    if (s < 3600) {
      const m = Math.floor(s / 60);
      s %= 60;
      return s ? fill(S.eta_min_s, { m, s }) : fill(S.eta_min, { m });
    }
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return m ? fill(S.eta_h_min, { h, m }) : fill(S.eta_h, { h });
  }

  function queueText(data) {
    if (data.status !== "queued" || !data.queue_position) return "";
    const category = ordinals.select(data.queue_position);
    const position = fill(S.ordinal[category] || S.ordinal.other, { n: data.queue_position });
    return fill(S.queue, { position, queue: data.queue });
  }

  function attemptText(data) {
    if (data.attempts <= 1 && !data.resumed_from_epoch) return "";
    const attempt = fill(S.attempt, { attempt: data.attempts, max: S.max_attempts });
    if (data.resumed_from_epoch) return fill(S.resumed, { attempt, epoch: data.resumed_from_epoch });
    return fill(S.restarted, { attempt });
  }

  function setText(name, text) {
    const el = root.querySelector(`[data-run="${name}"]`);
    if (!el) return;
    if (el.textContent !== text) el.textContent = text;
    el.hidden = text === "" && ["queue", "attempt", "error"].includes(name);
  }

  // The log keeps following its end unless the reader scrolled up to read.
  const log = document.querySelector("[data-run=log]");
  const atEnd = () => log.scrollHeight - log.scrollTop - log.clientHeight < 24;
  function showLog(lines) {
    const text = lines.join("\n");
    if (log.textContent === text) return;
    const follow = atEnd();
    log.textContent = text;
    if (follow) log.scrollTop = log.scrollHeight;
  }
  if (log) log.scrollTop = log.scrollHeight;

  // Curves: drawn on the server; fetched again when the number of finished epochs changes,
  // and once more at the end (the final history replaces the per-epoch reports).
  const curves = document.getElementById("curves");
  let curvesShown = curves ? Number(curves.querySelector("[data-epochs]")?.dataset.epochs || 0) : 0;
  let curvesLoading = false;
  let curvesFinal = false;
  let curvesWanted = null;
  async function refreshCurves(count, finished) {
    if (!curves || curvesFinal) return;
    if (count === curvesShown && !finished) return;
    curvesWanted = { count, finished };
    if (curvesLoading) return; // the running fetch picks the newest wish up when it is done
    curvesLoading = true;
    while (curvesWanted) {
      const wanted = curvesWanted;
      curvesWanted = null;
      try {
        const response = await fetch(root.dataset.curvesUrl, { credentials: "same-origin" });
        if (response.ok) {
          curves.innerHTML = await response.text();
          curvesShown = wanted.count;
          curvesFinal = wanted.finished;
        }
      } catch (err) { /* try again on the next update */ }
    }
    curvesLoading = false;
  }

  function update(data) {
    const running = data.status === "running";
    const finished = FINISHED.includes(data.status);
    setText("eta", running ? eta(data.eta_seconds) : "—");
    setText("queue", queueText(data));
    setText("gpu_seconds", fill(S.seconds, { s: oneDecimal.format(data.gpu_seconds || 0) }));
    setText("attempt", attemptText(data));
    setText("error", data.error || "");
    document.querySelectorAll("[data-run-show]").forEach((el) => {
      el.hidden = !el.dataset.runShow.split(" ").includes(data.status);
    });
    if (log && Array.isArray(data.log_tail)) showLog(data.log_tail);
    refreshCurves((data.epochs || []).length, finished);
  }

  root.addEventListener("live:update", (event) => update(event.detail));

  document.querySelectorAll("form[data-testid=cancel-form]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(S.confirm_cancel)) event.preventDefault();
    });
  });
})();
