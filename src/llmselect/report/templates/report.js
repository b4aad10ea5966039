(function () {
  "use strict";
  // Sorts and filters the shortlist from the cells' data-value attributes; holds no data itself.
  var table = document.getElementById("shortlist");
  var body = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  var shown = document.getElementById("shown");
  var noMatch = document.getElementById("no-match");
  function numberOf(text) {
    var value = text === "" || text === null ? NaN : parseFloat(text);
    return isFinite(value) ? value : null;
  }
  Array.prototype.forEach.call(headers, function (th, column) {
    if (!th.classList.contains("sortable")) { return; }
    th.tabIndex = 0;
    function sort() {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var numeric = th.getAttribute("data-type") === "num";
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-value");
        var y = b.cells[column].getAttribute("data-value");
        if (numeric) {
          x = numberOf(x); y = numberOf(y);
          if (x === null || y === null) { return (x === null) - (y === null); }  // missing last
          return ascending ? x - y : y - x;
        }
        var order = x.localeCompare(y, undefined, {sensitivity: "base", numeric: true});
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
    });
  });
  document.getElementById("filter").addEventListener("input", function (event) {
    var needle = event.target.value.trim().toLowerCase();
    var count = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) === -1;
      if (!row.hidden) { count += 1; }
    });
    shown.textContent = count + " of " + body.rows.length + " models";
    noMatch.hidden = count !== 0;
  });
  // Print every model's details, then put the page back as the reader left it.
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    closed.forEach(function (d) { d.open = false; });
    closed = [];
  });
})();
