// flowstate console: live updates only; every page works without this file.
"use strict";

// Times in the browser's zone.
function localTimes(root) {
  root.querySelectorAll("time[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d) && !t.closest("#log")) t.textContent = d.toLocaleString();
  });
}

// The executions list refreshes its first page every few seconds.
function autoRefresh() {
  var table = document.getElementById("executions");
  if (!table || !table.dataset.refresh) return;
  setInterval(function () {
    if (document.hidden) return;
    fetch(location.href, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var body = doc.querySelector("#executions tbody"), count = doc.getElementById("count");
        if (body) table.replaceChild(document.importNode(body, true), table.tBodies[0]);
        if (count) document.getElementById("count").textContent = count.textContent;
        localTimes(table);
      })
      .catch(function () {});
  }, Number(table.dataset.refresh) * 1000);
}

// The log pane follows new lines over Server-Sent Events.
function followLog() {
  var pane = document.getElementById("logs");
  if (!pane || pane.dataset.ended === "true" || !window.EventSource) return;
  var log = document.getElementById("log");
  var source = new EventSource(pane.dataset.stream);
  source.addEventListener("line", function (ev) {
    var l = JSON.parse(ev.data);
    var li = document.createElement("li");
    li.className = l.stream;
    li.dataset.task = l.taskKey || "";
    var time = document.createElement("time");
    time.textContent = (l.ts || "").slice(11, 23);
    var task = document.createElement("b");
    task.textContent = l.taskKey || "";
    var text = document.createElement("span");
    text.textContent = l.line; // text, never markup
    li.append(time, " ", task, " ", text);
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(li);
    if (atEnd) log.scrollTop = log.scrollHeight;
  });
  source.addEventListener("state", function (ev) {
    var s = JSON.parse(ev.data).state;
    var badge = document.querySelector("#state .badge");
    if (badge && badge.textContent !== s) {
      badge.textContent = s;
      badge.className = "badge s-" + s.toLowerCase();
    }
  });
  source.addEventListener("end", function () {
    source.close();
    var form = document.querySelector("form.cancel");
    if (form) form.remove();
  });
}

document.addEventListener("DOMContentLoaded", function () {
  localTimes(document);
  autoRefresh();
  followLog();
});
