// "Try it" on an endpoint page: POST the chosen image to the prediction API with the session.
(function () {
  "use strict";
  const form = document.getElementById("try-form");
  if (!form) return;
  const out = document.getElementById("try-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData(form);
    const csrf = body.get("csrfmiddlewaretoken");
    body.delete("csrfmiddlewaretoken");
    out.textContent = "…";
    const response = await fetch(form.dataset.predictUrl, {
      method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": csrf },
    });
    const data = await response.json();
    out.replaceChildren();
    if (!response.ok) {
      const p = document.createElement("p");
      p.className = "msg error";
      p.textContent = (data.error && data.error.message) || response.statusText;
      out.append(p);
      return;
    }
    const list = document.createElement("ol");
    list.className = "predictions";
    for (const p of data.predictions) {
      const li = document.createElement("li");
      li.dataset.label = p.label;
      const pct = new Intl.NumberFormat(document.documentElement.lang || undefined,
        { style: "percent", maximumFractionDigits: 1 }).format(p.probability);
      // A <meter>, not a style="width" attribute: the Content-Security-Policy allows no inline style.
      li.innerHTML = `<span class="label"></span><span class="prob"></span>
        <meter class="gauge meter" min="0" max="1" aria-hidden="true"></meter>`;
      li.querySelector("meter").value = p.probability;
      li.querySelector(".label").textContent = p.label;
      li.querySelector(".prob").textContent = pct;
      list.append(li);
    }
    out.append(list);
  });
})();
