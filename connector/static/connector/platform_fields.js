// The connection page shows a returns platform's own settings only: each such input carries
// data-platforms="loop returngo" (from the platform registry); its row is hidden while another
// platform is chosen. Hidden inputs keep their values and are still submitted.
"use strict";
(function () {
  function update(select) {
    const chosen = select.value;
    document.querySelectorAll("[data-platforms]").forEach(function (input) {
      const row = input.closest(".form-row") || input.parentElement;
      const used = input.dataset.platforms.split(" ").includes(chosen);
      row.hidden = Boolean(chosen) && !used;
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    const select = document.getElementById("id_platform");
    if (!select) {
      return;
    }
    select.addEventListener("change", function () { update(select); });
    update(select);
  });
})();
