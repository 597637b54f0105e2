// rpmflow dashboard: live queue updates (server-sent events) and automatic logoff.
// Hand-written, no dependencies. Loaded with `defer` under a CSP that forbids inline script.
"use strict";

(function () {
  var body = document.body;

  // Automatic logoff: the server ends idle sessions; the page follows so no PHI stays on screen.
  var idleMinutes = parseFloat(body.getAttribute("data-idle-minutes") || "0");
  if (body.hasAttribute("data-signed-in") && idleMinutes > 0) {
    var timer = null;
    var reset = function () {
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () {
        window.location.assign("/login?expired=1");
      }, idleMinutes * 60 * 1000);
    };
    ["click", "keydown", "scroll", "mousemove", "touchstart"].forEach(function (name) {
      window.addEventListener(name, reset, { passive: true });
    });
    reset();
  }

  var root = document.getElementById("queue-root");
  if (!root || typeof window.EventSource === "undefined") { return; }
  var status = document.getElementById("live-status");
  var live = document.getElementById("queue-live");
  var lastId = live ? live.getAttribute("data-last-flag-id") : "0";
  var refreshing = false;
  var again = false;

  function setStatus(text) { if (status) { status.textContent = text; } }

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    // The background header keeps a refresh from counting as user activity (automatic logoff).
    fetch(root.getAttribute("data-rows-url"), {
      credentials: "same-origin",
      headers: { "X-Rpmflow-Background": "1" }
    }).then(function (resp) {
      if (resp.status === 401 || resp.redirected) { window.location.assign("/login?expired=1"); return null; }
      return resp.ok ? resp.text() : null;
    }).then(function (html) {
      if (html !== null && html !== undefined) {
        // Server-rendered, escaped HTML from our own origin.
        root.innerHTML = html;
      }
    }).finally(function () {
      refreshing = false;
      if (again) { again = false; refresh(); }
    });
  }

  var source = new EventSource("/events/flags?after=" + encodeURIComponent(lastId || "0"));
  source.addEventListener("open", function () { setStatus("Live: new flags appear automatically."); });
  source.addEventListener("flag", function (ev) {
    var data = {};
    try { data = JSON.parse(ev.data); } catch (e) { data = {}; }
    setStatus("New " + (data.severity || "") + " flag (" + (data.rule_id || "") + ") at " +
      new Date().toLocaleTimeString() + ".");
    refresh();
  });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.assign("/login?expired=1");
  });
  source.addEventListener("error", function () { setStatus("Reconnecting to live updates…"); });
}());
