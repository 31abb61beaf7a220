// Postfach panel: the live password meter and the copy buttons. Nothing else runs here;
// every page works without this script.
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function meter(form) {
    var input = form.querySelector("[data-meter]");
    var bar = form.querySelector("[data-meter-bar]");
    var label = form.querySelector("[data-meter-label]");
    var list = form.querySelector("[data-meter-feedback]");
    if (!input || !bar) return;
    var timer = null, seq = 0;
    function field(sel) { var el = form.querySelector(sel); return el ? el.value : ""; }
    function check() {
      var body = { password: input.value };
      var address = field("[data-address]");
      var local = field("[data-local]"), domain = field("[data-domain]");
      if (!address && local && domain) address = local + "@" + domain;
      if (address) body.address = address;
      var customer = field("[data-customer]");
      if (customer) body.customer = customer;
      var mine = ++seq;
      fetch("/api/v1/password-check", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body)
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (v) {
        if (!v || mine !== seq) return;
        bar.value = v.score;
        form.dataset.strength = v.accepted ? "strong" : "weak";
        label.textContent = v.label;
        label.className = "meter-label " + (v.accepted ? "good" : "bad");
        list.textContent = "";
        [v.reason, v.warning].concat(v.suggestions || []).forEach(function (text) {
          if (!text) return;
          var li = document.createElement("li");
          li.textContent = text;
          list.appendChild(li);
        });
      }).catch(function () {});
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 200);
    });
  }

  function copy(button) {
    button.addEventListener("click", function () {
      var target = document.getElementById(button.dataset.copy);
      if (!target) return;
      var text = target.textContent;
      var done = function () { button.classList.add("copied"); setTimeout(function () { button.classList.remove("copied"); }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var range = document.createRange();
        range.selectNodeContents(target);
        var sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        document.execCommand("copy");
        done();
      }
    });
  }

  document.querySelectorAll("[data-meter-form]").forEach(meter);
  document.querySelectorAll("button[data-copy]").forEach(copy);
})();
