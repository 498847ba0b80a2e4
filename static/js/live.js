// Live status without reloading: every [data-live] element polls its JSON URL and updates the
// [data-bind] fields inside it; when the job finishes it swaps in a server-rendered fragment.
(function () {
  "use strict";
  const FINISHED = ["succeeded", "failed", "cancelled"];
  const labelsNode = document.getElementById("status-labels");
  const STATUS_LABELS = labelsNode ? JSON.parse(labelsNode.textContent) : {};
  const nf = (opts) => new Intl.NumberFormat(document.documentElement.lang || undefined, opts);

  function format(value, kind, root) {
    if (value === null || value === undefined || value === "") return "—";
    switch (kind) {
      case "percent": return nf({ style: "percent", maximumFractionDigits: 1 }).format(value);
      case "fixed4": return nf({ minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(value);
      case "int": return nf({ maximumFractionDigits: 0 }).format(value);
      case "status": return root.dataset["label" + value.charAt(0).toUpperCase() + value.slice(1)]
        || STATUS_LABELS[value] || value;
      default: return String(value);
    }
  }

  function apply(root, data) {
    root.querySelectorAll("[data-bind]").forEach((el) => {
      const key = el.dataset.bind;
      if (!(key in data)) return;
      el.textContent = format(data[key], el.dataset.format, root);
      if (el.dataset.format === "status") el.className = "badge " + data[key];
    });
    root.querySelectorAll("[data-bind-width]").forEach((el) => {
      const value = data[el.dataset.bindWidth];
      if (typeof value === "number") el.style.width = Math.round(value * 1000) / 10 + "%";
    });
    root.dataset.status = data.status;
  }

  async function poll(root) {
    const interval = Number(root.dataset.liveInterval || 1000);
    window.leptonLive = window.leptonLive || { polls: 0 };
    for (;;) {
      try {
        const response = await fetch(root.dataset.live, { credentials: "same-origin",
          headers: { Accept: "application/json" } });
        if (response.ok) {
          const data = await response.json();
          window.leptonLive.polls += 1;
          apply(root, data);
          // Pages that show more than [data-bind] fields (the run page) listen for this.
          root.dispatchEvent(new CustomEvent("live:update", { detail: data }));
          if (FINISHED.includes(data.status)) {
            await swapFragment(root);
            return;
          }
        }
      } catch (err) { /* network hiccup: try again on the next tick */ }
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  async function swapFragment(root) {
    const url = root.dataset.liveFragment;
    const target = document.querySelector(root.dataset.liveTarget || "");
    if (!url || !target) return;
    const response = await fetch(url, { credentials: "same-origin" });
    if (response.ok) target.innerHTML = await response.text();
  }

  document.querySelectorAll("[data-live]").forEach((root) => {
    if (!FINISHED.includes(root.dataset.status)) poll(root);
  });
})();
