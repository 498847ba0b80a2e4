// "Try it" on a regression endpoint page: the form's fields as one JSON row, POSTed to the
// prediction API with the session; the predicted value, or the API's message, is shown below.
(function () {
  "use strict";
  const form = document.getElementById("try-row-form");
  if (!form) return;
  const out = document.getElementById("try-row-result");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const button = form.querySelector("button[type=submit]");

  function cell(field) {
    const text = field.value.trim();
    if (text === "") return null; // a missing value, as the API reads null
    if (field.dataset.kind === "boolean") return text === "yes";
    if (field.dataset.kind === "numeric") {
      const number = Number(text);
      return Number.isFinite(number) ? number : text; // the API says what is wrong with it
    }
    return text;
  }

  function show(className, text) {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    out.replaceChildren(p);
    return p;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const row = {};
    for (const field of form.querySelectorAll("[data-kind]")) {
      if (field.validity && field.validity.badInput) {
        show("msg error", `${field.name}: not a number. Type digits, with a point for decimals.`);
        field.focus();
        return;
      }
      row[field.name] = cell(field);
    }
    button.disabled = true;
    out.textContent = "…";
    try {
      const response = await fetch(form.dataset.predictUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ row }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        show("msg error", (data.error && data.error.message) || response.statusText);
        return;
      }
      const value = data.predictions[0].value;
      const p = show("prediction", `${data.target || form.dataset.target}: `);
      const strong = document.createElement("strong");
      strong.dataset.testid = "predicted-value";
      strong.dataset.value = String(value);
      strong.textContent = new Intl.NumberFormat(document.documentElement.lang || undefined,
        { maximumSignificantDigits: 6 }).format(value);
      p.append(strong);
    } catch (err) {
      show("msg error", "The prediction could not be fetched; check the connection and try again.");
    } finally {
      button.disabled = false;
    }
  });
})();
