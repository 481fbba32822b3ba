// jobspool dashboard: live refresh (fetch this page, swap #page), the interval picker,
// pause while the window is in the background, confirmations before destructive actions,
// and the live event tail over Server-Sent Events. No inline handlers: everything is
// attached here (the pages run under a CSP with nonces).
(function () {
  "use strict";
  var KEY = "jobspool.refresh";
  var CHOICES = ["0", "1", "2", "5", "10", "30"];
  var timer = null;
  var busy = false;
  var away = false;

  function picker() { return document.getElementById("refresh"); }
  function page() { return document.getElementById("page"); }

  function interval() {
    var p = picker();
    return p ? parseInt(p.value, 10) || 0 : 0;
  }

  function stamp(text) {
    var u = document.getElementById("updated");
    if (u) { u.textContent = text; }
  }

  // Whether a refresh now would lose something the user is doing on the page.
  function userBusy() {
    var pg = page();
    if (!pg) { return true; }
    // The answer to a POST (a confirmation, a form with its error) is not fetched again.
    if (window.location.pathname.indexOf("/actions/") === 0) { return true; }
    if (pg.querySelector("[data-live]")) { return true; }
    var a = document.activeElement;
    if (a && pg.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName)) { return true; }
    return document.querySelector("#page input[type=checkbox]:checked") !== null;
  }

  function refresh() {
    if (busy || away || document.hidden || userBusy()) { return Promise.resolve(); }
    busy = true;
    return fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "Accept": "text/html" },
      cache: "no-store"
    }).then(function (r) {
      if (!r.ok || r.redirected) { throw new Error("HTTP " + r.status); }
      return r.text();
    }).then(function (text) {
      var doc = new DOMParser().parseFromString(text, "text/html");
      var fresh = doc.getElementById("page");
      var pg = page();
      if (fresh && pg && !userBusy()) {
        pg.replaceChildren.apply(pg, Array.prototype.slice.call(fresh.childNodes).map(function (n) {
          return document.importNode(n, true);
        }));
        stamp("updated " + new Date().toLocaleTimeString());
      }
    }).catch(function (e) {
      stamp("refresh failed (" + e.message + ")");
    }).then(function () { busy = false; });
  }

  function schedule() {
    if (timer) { clearTimeout(timer); timer = null; }
    var s = interval();
    if (s > 0) {
      timer = setTimeout(function () {
        refresh().then(schedule);
      }, s * 1000);
    }
  }

  function setupPicker() {
    var p = picker();
    if (!p) { return; }
    var saved = null;
    try { saved = window.localStorage.getItem(KEY); } catch (e) { saved = null; }
    if (saved !== null && CHOICES.indexOf(saved) >= 0) { p.value = saved; }
    p.addEventListener("change", function () {
      try { window.localStorage.setItem(KEY, p.value); } catch (e) { /* private mode */ }
      stamp(p.value === "0" ? "paused" : "");
      schedule();
    });
    if (p.value === "0") { stamp("paused"); }
    schedule();
  }

  // Pause while the window is in the background; refresh at once when it comes back.
  window.addEventListener("blur", function () { away = true; });
  window.addEventListener("focus", function () {
    if (away) { away = false; if (interval() > 0) { refresh(); } }
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && interval() > 0) { refresh(); }
  });

  // Confirmations: `data-confirm` on a form asks its text; `data-confirm-selection` counts
  // the ticked boxes that belong to the form and names the button's action.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement)) { return; }
    var msg = form.getAttribute("data-confirm");
    if (form.hasAttribute("data-confirm-selection")) {
      // getAttribute: `form.id` would be the form's control named "id" (the checkboxes).
      var n = document.querySelectorAll("input[type=checkbox][form=\"" + form.getAttribute("id") + "\"]:checked").length;
      var what = ev.submitter && ev.submitter.value ? ev.submitter.value : "change";
      if (n === 0) {
        ev.preventDefault();
        window.alert("Tick the jobs first.");
        return;
      }
      msg = what.charAt(0).toUpperCase() + what.slice(1) + " " + n + " selected job" + (n === 1 ? "" : "s") + "?";
    }
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  }, true);

  // The event tail: new events arrive over Server-Sent Events and go on top of the table.
  function setupTail() {
    var pg = page();
    var table = document.getElementById("events");
    var last = document.getElementById("last-seq");
    if (!pg || !pg.querySelector("[data-live]") || !last || typeof EventSource === "undefined") { return; }
    var src = null;
    function onMessage(m) {
      var ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      var body = table ? table.tBodies[0] : null;
      if (!body) { window.location.reload(); return; }
      var tr = document.createElement("tr");
      tr.setAttribute("data-seq", String(ev.seq));
      var details = [];
      Object.keys(ev).forEach(function (k) {
        if (k !== "seq" && k !== "name" && k !== "jobId" && ev[k] !== null) {
          var v = ev[k];
          details.push(k + "=" + (typeof v === "string" ? v : JSON.stringify(v)));
        }
      });
      var at = Object.keys(ev).filter(function (k) { return /At$/.test(k) && typeof ev[k] === "string"; })[0];
      var when = at ? ev[at].replace("T", " ").replace(/\.\d+Z$/, "Z") : "";
      var cells = [String(ev.seq), when, ev.name, "", details.join("  ")];
      cells.forEach(function (text, i) {
        var td = document.createElement("td");
        if (i === 0) { td.className = "num"; }
        if (i === 2) { var c = document.createElement("code"); c.textContent = text; td.appendChild(c); }
        else if (i === 3 && ev.jobId) {
          var a = document.createElement("a");
          a.href = "/jobs/" + encodeURIComponent(ev.jobId);
          a.className = "mono";
          a.textContent = String(ev.jobId).slice(0, 13) + "…";
          td.appendChild(a);
        } else { td.textContent = text; if (i === 4) { td.className = "details"; } }
        tr.appendChild(td);
      });
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 500) { body.deleteRow(body.rows.length - 1); }
      last.textContent = String(ev.seq);
      stamp("live: event " + ev.seq);
    }
    // The browser reconnects on its own after a network error, but not after a refusal (a
    // 503 when the server has all the event streams it serves open): retry then, later.
    function connect() {
      src = new EventSource("/api/v1/events?after=" + encodeURIComponent(last.textContent), { withCredentials: true });
      src.onmessage = onMessage;
      src.onerror = function () {
        if (src.readyState === EventSource.CLOSED) {
          src.close();
          stamp("live: refused by the server; retrying in 10 s");
          window.setTimeout(connect, 10000);
        } else {
          stamp("live: reconnecting");
        }
      };
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupPicker();
    setupTail();
  });
})();
