// The model form: choosing a template swaps in its dataset versions and its settings without a
// reload. Without this script the template cards are plain links (?template=key) that reload
// the page; with it, the same URL is fetched and only the [data-swap] parts are replaced, so the
// name typed so far stays.
(function () {
  "use strict";
  const form = document.querySelector("[data-testid=model-form]");
  if (!form) return;
  const input = form.querySelector("input[name=template]");
  let pending = null;

  function select(key) {
    form.querySelectorAll(".template-card").forEach((card) => {
      const on = card.dataset.template === key;
      card.classList.toggle("selected", on);
      if (on) card.setAttribute("aria-current", "true");
      else card.removeAttribute("aria-current");
    });
    input.value = key;
  }

  async function switchTo(card) {
    const url = new URL(card.href, window.location.href);
    const version = form.querySelector("select[name=dataset_version]");
    if (version && version.value) url.searchParams.set("dataset_version", version.value);
    const previous = input.value;
    select(card.dataset.template);
    form.classList.add("switching");
    const ticket = (pending = {});
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      if (ticket !== pending) return; // a later click won
      form.querySelectorAll("[data-swap]").forEach((part) => {
        const fresh = page.querySelector(`[data-swap="${part.dataset.swap}"]`);
        if (fresh) part.replaceWith(document.importNode(fresh, true));
      });
      window.history.replaceState(null, "", url);
    } catch (err) {
      select(previous);
      window.location.assign(url); // fall back to the plain link
    } finally {
      if (ticket === pending) form.classList.remove("switching");
    }
  }

  form.querySelectorAll(".template-card").forEach((card) => {
    card.addEventListener("click", (event) => {
      if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      if (card.dataset.template !== input.value) switchTo(card);
    });
  });

  // A refused field stops looking refused once it is changed.
  form.addEventListener("input", (event) => {
    const field = event.target.closest(".field.invalid");
    if (!field) return;
    field.classList.remove("invalid");
    field.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
    field.querySelectorAll(".field-error").forEach((el) => { el.hidden = true; });
  });

  // Open the folded group that holds a refused field, and bring the field into view.
  const invalid = form.querySelector(".field.invalid");
  if (invalid) {
    const group = invalid.closest("details");
    if (group) group.open = true;
    const control = invalid.querySelector("input:not([type=hidden]), select");
    if (control) control.focus({ preventScroll: true });
    invalid.scrollIntoView({ block: "center" });
  }
})();
