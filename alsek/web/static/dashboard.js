// alsek dashboard: refresh the live parts of the page (elements marked data-live) every
// data-refresh-ms, ask before destructive actions, tick every dead letter at once.
// No library, nothing from the network but this dashboard's own pages.
(function () {
  "use strict";
  var body = document.body;
  var every = parseInt(body.getAttribute("data-refresh-ms") || "0", 10);
  var state = document.getElementById("live-state");

  function busy(region) {
    // Leave alone a region the user is working in (a focused field, a ticked box).
    if (region.querySelector("input[type=checkbox]:checked")) { return true; }
    return region.contains(document.activeElement) && document.activeElement !== body;
  }

  function refresh() {
    if (document.hidden) { return schedule(); }
    var here = new URL(window.location.href);
    here.username = ""; here.password = "";  // fetch refuses URLs with credentials
    fetch(here.toString(), {
      credentials: "same-origin", cache: "no-store", headers: { "X-Alsek-Live": "1" }
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (region) {
        var twin = region.id && fresh.getElementById(region.id);
        // Only what changed is replaced: an element the user is about to click stays put.
        if (twin && twin.outerHTML !== region.outerHTML && !busy(region)) {
          region.replaceWith(document.importNode(twin, true));
        }
      });
      if (state) { state.textContent = "live: updated " + new Date().toISOString().slice(11, 19) + " UTC"; }
      body.removeAttribute("data-stale");
    }).catch(function (error) {
      if (state) { state.textContent = "not updated (" + error.message + "); retrying"; }
      body.setAttribute("data-stale", "1");
    }).then(schedule);
  }

  function schedule() { window.setTimeout(refresh, every); }

  document.addEventListener("submit", function (event) {
    var asker = (event.submitter && event.submitter.getAttribute("data-confirm")) ||
      event.target.getAttribute("data-confirm");
    if (asker && !window.confirm(asker)) { event.preventDefault(); }
  });

  document.addEventListener("change", function (event) {
    if (event.target.id !== "select-all") { return; }
    var form = event.target.form;
    form.querySelectorAll("input[name=uuid]").forEach(function (box) {
      box.checked = event.target.checked;
    });
  });

  if (every > 0 && document.querySelector("[data-live]")) { schedule(); }
})();
