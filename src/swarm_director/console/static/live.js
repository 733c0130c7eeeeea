// Live logs: when the task page offers a stream (data-stream on the log table), new log
// records arrive over Server-Sent Events and are prepended. The page works without this
// script; if the stream is missing or fails, the script stops quietly.
(function () {
  "use strict";
  var table = document.getElementById("logs");
  if (!table || !window.EventSource) { return; }
  var url = table.getAttribute("data-stream");
  if (!url) { return; }
  var body = table.tBodies[0];
  var MAX_ROWS = 1000;
  var PREVIEW_CHARS = 2048;  // of a row's metadata; the rest is one link away
  var failures = 0;
  var seen = {};
  Array.prototype.forEach.call(body.rows, function (row) {
    var id = row.getAttribute("data-log-id");
    if (id) { seen[id] = true; }
  });

  function text(value) {
    return value === null || value === undefined ? "—" : String(value);
  }

  function cell(row, content, className) {
    var td = document.createElement("td");
    if (className) { td.className = className; }
    if (typeof content === "string") { td.textContent = content; } else { td.appendChild(content); }
    row.appendChild(td);
    return td;
  }

  function link(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  }

  function rowFor(log) {
    var row = document.createElement("tr");
    row.setAttribute("data-log-id", String(log.id));
    row.className = "fresh";
    var time = document.createElement("time");
    time.setAttribute("datetime", text(log.timestamp));
    time.textContent = text(log.timestamp).replace("T", " ").replace(/\.\d+/, "").replace("+00:00", "Z");
    cell(row, time, "nowrap");
    var badge = document.createElement("span");
    badge.className = "badge s-" + String(log.log_level).replace(/[^a-z_]/g, "");
    badge.textContent = text(log.log_level);
    cell(row, badge);
    var agent = cell(row, text(log.agent_type));
    if (log.agent_id !== null && log.agent_id !== undefined) {
      agent.appendChild(document.createElement("br"));
      agent.appendChild(link("/ui/agents/" + encodeURIComponent(log.agent_id), "agent #" + log.agent_id));
    }
    if (log.session_id !== null && log.session_id !== undefined) {
      cell(row, link("?session_id=" + encodeURIComponent(log.session_id), String(log.session_id)));
    } else {
      cell(row, "—");
    }
    var message = cell(row, text(log.message), "msg");
    if (log.metadata !== null && log.metadata !== undefined) {
      var details = document.createElement("details");
      var summary = document.createElement("summary");
      summary.textContent = "metadata";
      var pre = document.createElement("pre");
      var json = JSON.stringify(log.metadata, null, 2);
      // As the server's pages do: a preview, and the whole document one link away.
      pre.textContent = json.length > PREVIEW_CHARS ? json.slice(0, PREVIEW_CHARS) : json;
      details.appendChild(summary);
      details.appendChild(pre);
      if (json.length > PREVIEW_CHARS) {
        var more = document.createElement("p");
        more.className = "muted";
        more.appendChild(document.createTextNode("The first " + PREVIEW_CHARS + " of " + json.length + " characters. "));
        more.appendChild(link("/ui/logs/" + encodeURIComponent(log.id) + "/metadata", "Whole metadata (JSON)"));
        details.appendChild(more);
      }
      message.appendChild(details);
    }
    return row;
  }

  function add(log) {
    if (!log || seen[log.id]) { return; }
    seen[log.id] = true;
    var empty = body.querySelector("tr.empty");
    if (empty) { body.removeChild(empty); }
    body.insertBefore(rowFor(log), body.firstChild);
    while (body.rows.length > MAX_ROWS) { body.deleteRow(body.rows.length - 1); }
  }

  var source = new EventSource(url);
  source.onmessage = function (event) {
    failures = 0;
    try { add(JSON.parse(event.data)); } catch (ignored) { /* not a log record */ }
  };
  source.onerror = function () {
    // EventSource reconnects by itself after a dropped connection; a missing endpoint
    // (404) closes it for good. Give up quietly after a few failures either way.
    failures += 1;
    if (source.readyState === EventSource.CLOSED || failures > 5) { source.close(); }
  };
}());
