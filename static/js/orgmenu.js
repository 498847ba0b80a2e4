// The header's organization menu is a <details> element: it opens and works without script.
// This only closes it the way a menu is expected to close: a click elsewhere, or Escape.
(function () {
  "use strict";
  const menu = document.querySelector("details.orgmenu");
  if (!menu) return;
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
})();
