// rpmflow dashboard: live queue updates (server-sent events) and automatic logoff.
// Hand-written, no dependencies. Loaded with `defer` under a CSP that forbids inline script.
"use strict";

(function () {
  var body = document.body;
  // Signed out (idle, or the session ended): back to this very page after signing in again.
  var signedOutUrl = function () {
    return "/login?expired=1&next=" + encodeURIComponent(window.location.pathname + window.location.search);
  };

  // Automatic logoff: the server ends idle sessions; the page follows so no PHI stays on screen.
  var idleMinutes = parseFloat(body.getAttribute("data-idle-minutes") || "0");
  if (body.hasAttribute("data-signed-in") && idleMinutes > 0) {
    var timer = null;
    var reset = function () {
      if (timer) { window.clearTimeout(timer); }
      timer = window.setTimeout(function () {
        window.location.assign(signedOutUrl());
      }, idleMinutes * 60 * 1000);
    };
    ["click", "keydown", "scroll", "mousemove", "touchstart"].forEach(function (name) {
      window.addEventListener(name, reset, { passive: true });
    });
    reset();
  }

  // A table wider than a phone scrolls inside itself (app.css); make it reachable by keyboard.
  Array.prototype.forEach.call(document.querySelectorAll("main table"), function (t) {
    if (t.scrollWidth > t.clientWidth + 1) { t.tabIndex = 0; }
  });

  var root = document.getElementById("queue-root");
  if (!root) { return; }
  var actForm = document.getElementById("pf");
  var panelTpl = document.getElementById("flag-panel");
  // data-acts codes → (event, label); the same pairs as the flag page's buttons.
  var ACTS = { a: ["acknowledge", "Acknowledge"], t: ["assign", "Take it"] };

  // The one-click buttons of each flag, from its data-acts (kept out of the markup of every row:
  // page weight). They submit the page's one form (#pf) to the flag's events URL.
  function addButtons(scope) {
    Array.prototype.forEach.call(scope.querySelectorAll("li[data-acts]"), function (li) {
      if (li.querySelector(".acts")) { return; }
      var acts = document.createElement("span");
      acts.className = "acts";
      li.getAttribute("data-acts").split(" ").forEach(function (code) {
        if (!ACTS[code]) { return; }
        var b = document.createElement("button");
        b.setAttribute("form", "pf");
        b.setAttribute("formaction", "/flags/" + li.getAttribute("data-flag-id") + "/events");
        b.name = "event";
        b.value = ACTS[code][0];
        b.textContent = ACTS[code][1];
        acts.appendChild(b);
      });
      li.insertBefore(acts, li.querySelector("a.button, a.more"));
    });
  }
  addButtons(root);

  // "Note, time, close…" opens one inline panel built from the page's template; it borrows the
  // page's single CSRF token (no token per row). Without script the link opens the flag page.
  root.addEventListener("click", function (ev) {
    var link = ev.target.closest ? ev.target.closest("a.more") : null;
    if (!link || !panelTpl || !actForm) { return; }
    var li = link.closest("li[data-flag-id]");
    if (!li) { return; }
    ev.preventDefault();
    var open = li.querySelector("form.panel");
    if (open) { open.hidden = !open.hidden; link.setAttribute("aria-expanded", String(!open.hidden)); return; }
    var form = panelTpl.content.firstElementChild.cloneNode(true);
    form.setAttribute("action", "/flags/" + li.getAttribute("data-flag-id") + "/events");
    form.appendChild(actForm.querySelector("input[name=csrf_token]").cloneNode());
    li.appendChild(form);
    link.setAttribute("aria-expanded", "true");
    var first = form.querySelector("textarea");
    if (first) { first.focus(); }
  });

  if (typeof window.EventSource === "undefined") { return; }
  var status = document.getElementById("live-status");
  var live = document.getElementById("queue-live");
  var lastId = live ? live.getAttribute("data-last-flag-id") : "0";
  var refreshing = false;
  var again = false;

  function setStatus(text) { if (status) { status.textContent = text; } }

  // A row the user is working in (focus inside, a panel open, text typed) is never replaced or moved.
  function busy(row) {
    if (row.contains(document.activeElement)) { return true; }
    var fields = row.querySelectorAll("form.panel textarea, form.panel input[name=minutes]");
    for (var i = 0; i < fields.length; i++) { if (fields[i].value !== "") { return true; } }
    var panel = row.querySelector("form.panel");
    return !!(panel && !panel.hidden);
  }

  function merge(html) {
    var box = document.createElement("template");  // inert: nothing in it loads or runs
    box.innerHTML = html;  // server-rendered, escaped HTML from our own origin
    var fresh = box.content.querySelector("#queue-live");
    var body = document.getElementById("queue-body");
    if (!fresh || !body || !live) { return; }
    live.setAttribute("data-last-flag-id", fresh.getAttribute("data-last-flag-id"));
    document.getElementById("queue-counts").replaceWith(fresh.querySelector("#queue-counts"));
    var kept = {};
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-patient]"), function (tr) {
      if (busy(tr)) { kept[tr.getAttribute("data-patient")] = tr; } else { tr.remove(); }
    });
    Array.prototype.forEach.call(body.querySelectorAll("tr:not([data-patient])"), function (tr) { tr.remove(); });
    var rows = Array.prototype.slice.call(fresh.querySelectorAll("#queue-body > tr"));
    var anchor = null;
    for (var i = rows.length - 1; i >= 0; i--) {
      var key = rows[i].getAttribute("data-patient");
      if (key && kept[key]) { anchor = kept[key]; continue; }
      if (!key && Object.keys(kept).length) { continue; }
      body.insertBefore(document.importNode(rows[i], true), anchor);
    }
    addButtons(body);
  }

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    // The background header keeps a refresh from counting as user activity (automatic logoff).
    fetch(root.getAttribute("data-rows-url"), {
      credentials: "same-origin",
      headers: { "X-Rpmflow-Background": "1" }
    }).then(function (resp) {
      if (resp.status === 401 || resp.redirected) { window.location.assign(signedOutUrl()); return null; }
      return resp.ok ? resp.text() : null;
    }).then(function (html) {
      if (html !== null && html !== undefined) { merge(html); }
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
    setStatus("New " + (data.severity || "") + " flag at " + (data.opened_local || "") +
      (data.opened_utc ? " (" + data.opened_utc + ")" : "") + ".");
    refresh();
  });
  source.addEventListener("signed-out", function () {
    source.close();
    window.location.assign(signedOutUrl());
  });
  source.addEventListener("error", function () { setStatus("Reconnecting to live updates…"); });
}());
