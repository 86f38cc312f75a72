// raquel_pg dashboard: refreshes the queues table and draws the throughput chart (Chart.js).
(function () {
  "use strict";
  var REFRESH_MS = 5000;
  var live = document.getElementById("live");
  var table = document.getElementById("queues");

  function refreshQueues() {
    fetch("/fragments/queues", {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (html) { table.innerHTML = html; live.classList.remove("stale"); live.textContent = "live"; })
      .catch(function () { live.classList.add("stale"); live.textContent = "disconnected"; });
  }

  var canvas = document.getElementById("throughput");
  var chart = null;

  function label(iso) {
    var d = new Date(iso);
    var hh = String(d.getUTCHours()).padStart(2, "0"), mm = String(d.getUTCMinutes()).padStart(2, "0");
    return hh + ":" + mm;
  }

  function drawThroughput() {
    var span = canvas.getAttribute("data-window");
    fetch("/api/throughput?window=" + encodeURIComponent(span), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) {
        var labels = data.labels.map(function (l) { return label(l); });
        var sets = [
          {label: "succeeded", data: data.success, backgroundColor: "#3aa569", stack: "jobs"},
          {label: "failed (exhausted, expired)", data: data.failure, backgroundColor: "#d9474e", stack: "jobs"},
          {label: "cancelled", data: data.cancelled, backgroundColor: "#98a2b3", stack: "jobs"}
        ];
        if (chart) {
          chart.data.labels = labels;
          chart.data.datasets.forEach(function (set, i) { set.data = sets[i].data; });
          chart.update("none");
          return;
        }
        chart = new Chart(canvas, {
          type: "bar",
          data: {labels: labels, datasets: sets},
          options: {
            animation: false, maintainAspectRatio: false, responsive: true,
            scales: {x: {stacked: true, ticks: {maxTicksLimit: 13}, title: {display: true, text: "UTC"}},
                     y: {stacked: true, beginAtZero: true, ticks: {precision: 0}, title: {display: true, text: "jobs per " + (data.bucket_seconds / 60) + " min"}}},
            plugins: {legend: {position: "bottom"}}
          }
        });
        canvas.setAttribute("data-rendered", "true");
      })
      .catch(function (e) { canvas.setAttribute("data-error", String(e)); });
  }

  if (table && live) { setInterval(refreshQueues, REFRESH_MS); }
  if (canvas && window.Chart) { drawThroughput(); setInterval(drawThroughput, 30000); }
})();
