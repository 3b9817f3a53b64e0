// attnwatch dashboard behaviours, written for this app (no library): it does the few
// things htmx would do here. Every page works without it; with it:
//   - a form with data-fragment fetches that fragment into data-target instead of
//     reloading the page (and updates the address bar);
//   - a checkbox with data-live-source opens an EventSource and prepends each "rows"
//     event's HTML to data-live-target;
//   - forms with data-live-form (relabel) post in the background and swap in the
//     updated event;
//   - elements with data-figure draw the JSON figure they name with Plotly.newPlot.
(function () {
  "use strict";

  function drawCharts(root) {
    root.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-figure"));
      if (!source) { return; }
      if (!window.Plotly) {
        el.textContent = "The chart could not be drawn: plotly.js did not load.";
        return;
      }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(el, figure.data, figure.layout, { responsive: true, displaylogo: false });
    });
  }

  function query(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "") { params.append(key, value); }
    });
    return params.toString();
  }

  function fetchFragment(form) {
    var target = document.querySelector(form.getAttribute("data-target"));
    var qs = query(form);
    fetch(form.getAttribute("data-fragment") + (qs ? "?" + qs : ""), { headers: { "X-Live": "fragment" } })
      .then(function (response) {
        return response.text().then(function (text) { return { ok: response.ok, text: text }; });
      })
      .then(function (result) {
        if (!result.ok) { throw new Error(result.text); }
        target.innerHTML = result.text;
        history.pushState(null, "", form.getAttribute("action") + (qs ? "?" + qs : ""));
        var live = document.querySelector("[data-live-source]");
        if (live) {
          live.setAttribute("data-live-source", "/events/stream" + (qs ? "?" + qs : ""));
          if (live.checked) { stopLive(); startLive(live); }
        }
      })
      .catch(function (error) {
        var message;
        try { message = JSON.parse(error.message).detail; } catch (e) { message = error.message; }
        target.innerHTML = "";
        var p = document.createElement("p");
        p.className = "error-message";
        p.setAttribute("role", "alert");
        p.textContent = message;
        target.appendChild(p);
      });
  }

  var source = null;

  function status(text) {
    var el = document.getElementById("live-status");
    if (el) { el.textContent = text; }
  }

  function stopLive() {
    if (source) { source.close(); source = null; }
  }

  function startLive(box) {
    var list = document.querySelector(box.getAttribute("data-live-target"));
    var arrived = 0;
    source = new EventSource(box.getAttribute("data-live-source"));
    source.addEventListener("hello", function () { status("Live: waiting for new messages."); });
    source.addEventListener("rows", function (event) {
      var data = JSON.parse(event.data);
      var empty = list.querySelector(".empty");
      if (empty) { empty.remove(); }
      list.insertAdjacentHTML("afterbegin", data.html);
      arrived += data.count;
      status(arrived + " new message" + (arrived === 1 ? "" : "s") + " since live updates started.");
    });
    source.onerror = function () { status("Live: reconnecting…"); };
  }

  function relabel(form) {
    var body = new URLSearchParams(new FormData(form));
    var message = form.querySelector(".form-message");
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: body,
      headers: { "X-Live": "fragment", "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (response) {
      return response.text().then(function (text) {
        if (!response.ok) {
          var detail;
          try { detail = JSON.parse(text).detail; } catch (e) { detail = text; }
          if (message) { message.textContent = detail; }
          return;
        }
        var item = form.closest("li.event");
        if (item) {
          item.insertAdjacentHTML("afterend", text);
          var replacement = item.nextElementSibling;
          item.remove();
          var summary = replacement && replacement.querySelector("summary");
          if (summary) { summary.focus(); }
        }
      });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute("data-live-form")) {
      event.preventDefault();
      relabel(form);
    } else if (form.hasAttribute("data-fragment")) {
      event.preventDefault();
      fetchFragment(form);
    }
  });

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.hasAttribute("data-submit-on-change") && el.form) {
      el.form.requestSubmit();
    } else if (el.hasAttribute("data-live-source")) {
      if (el.checked) { startLive(el); } else { stopLive(); status("Live updates off."); }
    }
  });

  window.addEventListener("popstate", function () { location.reload(); });
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
})();
