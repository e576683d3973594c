/* loopdesk console: moments in the viewer's time zone, "N minutes ago" kept current, the
 * chat box cleared after a send. htmx makes the requests; this file only formats. */
(function () {
  "use strict";
  var day = { year: "numeric", month: "short", day: "numeric" };
  var dateFormat = new Intl.DateTimeFormat(undefined, day);
  // dateStyle and timeStyle cannot take a zone name: the parts are spelled out.
  var momentFormat = new Intl.DateTimeFormat(undefined, Object.assign(
    { hour: "numeric", minute: "2-digit", timeZoneName: "short" }, day));

  function agoText(seconds) {
    var minutes = Math.floor(Math.max(seconds, 0) / 60);
    if (minutes < 1) return "less than a minute ago";
    if (minutes < 60) return minutes + (minutes === 1 ? " minute ago" : " minutes ago");
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + (hours === 1 ? " hour ago" : " hours ago");
    return Math.floor(hours / 24) + " days ago";
  }

  function moment(el) {
    var d = new Date(el.getAttribute("datetime"));
    return isNaN(d.getTime()) ? null : d;
  }

  function updateAgo(el) {
    var d = moment(el);
    if (!d) return;
    el.textContent = agoText((Date.now() - d.getTime()) / 1000);
    el.title = momentFormat.format(d);
  }

  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var d = moment(el);
      if (!d) return;
      if (!el.title) el.title = el.textContent; // the UTC text, kept as a tooltip
      el.textContent = (el.dataset.local === "date" ? dateFormat : momentFormat).format(d);
    });
    root.querySelectorAll("time[data-ago]").forEach(updateAgo);
  }

  document.addEventListener("DOMContentLoaded", function () { localize(document); });
  document.addEventListener("htmx:load", function (event) { localize(event.target); });
  setInterval(function () { document.querySelectorAll("time[data-ago]").forEach(updateAgo); }, 30000);

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form && form.id === "chat-form" && event.detail.successful) {
      var text = form.querySelector("[name=text]");
      text.value = "";
      text.focus();
    }
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "chat-log" && target.lastElementChild) {
      target.lastElementChild.scrollIntoView({ block: "nearest" });
    }
  });
})();
