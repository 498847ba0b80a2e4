// Dataset upload with drag and drop and a progress bar. Without JavaScript the form posts to
// the page as usual; with it, the file goes to the REST API (session + CSRF token) through
// XMLHttpRequest, whose upload.onprogress drives the bar, and the browser then opens the new
// version's page. The server's error message is shown in the form.
(function () {
  "use strict";
  const form = document.querySelector("form[data-upload-api]");
  if (!form) return;
  const input = form.querySelector("input[type=file][name=file]");
  const kind = form.querySelector("select[name=kind]");
  const name = form.querySelector("input[name=name]");
  const zone = form.querySelector(".dropzone");
  const progress = form.querySelector(".upload-progress");
  const bar = progress.querySelector("[role=progressbar]");
  const fill = bar.firstElementChild;
  const percent = progress.querySelector("[data-testid=upload-percent]");
  const fileLabel = progress.querySelector("[data-testid=upload-file]");
  const cancel = progress.querySelector("[data-testid=upload-cancel]");
  const submit = form.querySelector("button[type=submit]");
  const pct = new Intl.NumberFormat(document.documentElement.lang || undefined,
    { style: "percent", maximumFractionDigits: 0 });
  let request = null;

  form.querySelector(".drop-hint").hidden = false;
  zone.classList.add("enabled");

  function kindOf(file) {
    return /\.csv$/i.test(file.name) ? "tabular" : "image";
  }

  function showKind() {
    form.querySelectorAll("[data-kind-help]").forEach((el) => {
      el.hidden = el.dataset.kindHelp !== kind.value;
    });
    const accept = input.dataset["accept" + kind.value.charAt(0).toUpperCase() + kind.value.slice(1)];
    if (accept) input.accept = accept;
  }

  function clearMessages() {
    document.querySelectorAll("[data-testid=form-error], .upload-note").forEach((el) => el.remove());
  }

  function note(text, isError) {
    clearMessages();
    const box = document.createElement("div");
    box.className = isError ? "msg error" : "msg upload-note";
    box.setAttribute("role", isError ? "alert" : "status");
    if (isError) box.dataset.testid = "form-error";
    box.textContent = text;
    form.prepend(box);
  }

  function setProgress(fraction) {
    const value = Math.max(0, Math.min(1, fraction));
    fill.style.width = (value * 100).toFixed(1) + "%";
    bar.setAttribute("aria-valuenow", String(Math.round(value * 100)));
    percent.textContent = pct.format(value);
  }

  function busy(on) {
    progress.hidden = !on;
    submit.disabled = on;
    form.classList.toggle("uploading", on);
    window.onbeforeunload = on ? () => true : null;
  }

  function chosen(file) {
    if (!name.value.trim()) name.value = file.name.replace(/\.(tar\.gz|tgz|zip|tar|csv)$/i, "");
    kind.value = kindOf(file);
    showKind();
  }

  function upload() {
    const file = input.files[0];
    if (!file) { input.reportValidity(); return; }
    if (!form.reportValidity()) return;
    clearMessages();
    const body = new FormData(form);
    const csrf = body.get("csrfmiddlewaretoken");
    body.delete("csrfmiddlewaretoken");
    request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadApi);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) setProgress(event.loaded / event.total);
    };
    request.onload = () => {
      const data = request.response || {};
      if (request.status === 202 || request.status === 201) {
        setProgress(1);
        percent.textContent = form.dataset.msgDone;
        window.onbeforeunload = null;
        window.location.assign(form.dataset.versionUrl.replace(/[0-9a-f-]{36}/, data.id));
        return;
      }
      busy(false);
      const message = data.error && data.error.message;
      note(message || `${request.status} ${request.statusText}`, true);
    };
    request.onerror = () => { busy(false); note(form.dataset.msgNetwork, true); };
    request.onabort = () => { busy(false); note(form.dataset.msgCancelled, false); };
    fileLabel.textContent = file.name;
    setProgress(0);
    busy(true);
    request.send(body);
  }

  kind.addEventListener("change", showKind);
  input.addEventListener("change", () => { if (input.files[0]) chosen(input.files[0]); });
  cancel.addEventListener("click", () => { if (request) request.abort(); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    upload();
  });

  ["dragenter", "dragover"].forEach((type) => zone.addEventListener(type, (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  }));
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("over");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!files || !files.length || form.classList.contains("uploading")) return;
    input.files = files;
    chosen(files[0]);
    upload();
  });
  showKind();
})();
