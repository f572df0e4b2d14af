// Osprey's pages: draws every .chart element from /api/v1/series with ECharts (SVG
// renderer), and keeps the time-frame buttons and the comparison toggle working.
// Text from the server goes into the page only through textContent or ECharts' own
// escaping, never as HTML.
(function () {
  'use strict';
  var COLORS = ['#2563eb', '#dc2626', '#059669'];
  var PCT_COLORS = { p50: '#7c3aed', p90: '#d97706', p99: '#be123c' };

  function fmt(v) {
    if (v === null || v === undefined) return '—';
    if (Math.abs(v) >= 1000 || Number.isInteger(v)) return v.toLocaleString('en-US', { maximumFractionDigits: 2 });
    return v.toPrecision(4);
  }

  function points(times, values) {
    var out = new Array(times.length);
    for (var i = 0; i < times.length; i++) out[i] = [times[i] * 1000, values[i]];
    return out;
  }

  function setStatus(el, text) {
    var block = el.closest('.chart-block');
    var status = block && block.querySelector('.chart-status');
    if (status) status.textContent = text;
  }

  function fillSummary(el, data) {
    var block = el.closest('.chart-block');
    var table = block && block.querySelector('table.summary tbody');
    if (!table) return;
    table.textContent = '';
    data.stats.forEach(function (s) {
      var tr = document.createElement('tr');
      var sum = s.summary || {};
      [s.name, sum.min, sum.max, sum.mean, sum.total, sum.stddev, sum.count].forEach(function (v, i) {
        var td = document.createElement('td');
        td.textContent = i === 0 ? v : fmt(v);
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
  }

  function draw(el, data) {
    var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: 'svg' });
    var series = [];
    data.stats.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      series.push({ name: s.name, type: 'line', showSymbol: false, connectNulls: false, data: points(s.times, s.values), itemStyle: { color: color }, lineStyle: { color: color, width: 2 } });
      if (s.comparison) {
        series.push({ name: s.name + ' (previous)', type: 'line', showSymbol: false, connectNulls: false, data: points(s.times, s.comparison), itemStyle: { color: color }, lineStyle: { color: color, width: 1, type: 'dashed', opacity: 0.6 } });
      }
      ['p50', 'p90', 'p99'].forEach(function (p) {
        var arr = s[p];
        if (arr && arr.some(function (v) { return v !== null; })) {
          series.push({ name: s.name + ' ' + p, type: 'line', showSymbol: false, connectNulls: false, data: points(s.times, arr), itemStyle: { color: PCT_COLORS[p] }, lineStyle: { color: PCT_COLORS[p], width: 1, opacity: 0.8 } });
        }
      });
    });
    var mini = el.classList.contains('mini-chart');
    chart.setOption(
      {
        animation: false,
        tooltip: { trigger: 'axis' },
        legend: mini ? { show: false } : { top: 0, type: 'scroll' },
        grid: { left: 56, right: 16, top: mini ? 10 : 36, bottom: 28 },
        xAxis: { type: 'time', min: data.from * 1000, max: data.to * 1000 },
        yAxis: { type: 'value', scale: true },
        series: series,
      },
      { notMerge: true },
    );
    el.dataset.draws = String(Number(el.dataset.draws || 0) + 1);
    el.dataset.drawnTf = el.dataset.tf;
    el.dataset.series = String(series.length);
    el.dataset.points = String(data.stats.reduce(function (n, s) { return n + s.times.length; }, 0));
    setStatus(el, data.stats.length ? data.resolution + ' resolution, a point every ' + data.stepSec + ' s' : 'no data');
    fillSummary(el, data);
  }

  function load(el) {
    var q = new URLSearchParams({ ids: el.dataset.ids, tf: el.dataset.tf, compare: el.dataset.compare, percentiles: el.dataset.percentiles });
    setStatus(el, 'loading…');
    el.dataset.loading = '1';
    return fetch('/api/v1/series?' + q.toString(), { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error(body.message || 'HTTP ' + res.status);
          return body;
        });
      })
      .then(function (data) { draw(el, data); })
      .catch(function (err) {
        el.dataset.error = String(err.message || err);
        setStatus(el, 'could not load the chart: ' + (err.message || err));
      })
      .finally(function () { delete el.dataset.loading; });
  }

  document.querySelectorAll('.chart[data-ids]').forEach(function (el) {
    var block = el.closest('.chart-block');
    if (block) {
      block.querySelectorAll('button[data-tf]').forEach(function (btn) {
        btn.addEventListener('click', function () {
          block.querySelectorAll('button[data-tf]').forEach(function (b) { b.classList.toggle('active', b === btn); });
          el.dataset.tf = btn.dataset.tf;
          var url = new URL(location.href);
          url.searchParams.set('tf', btn.dataset.tf);
          history.replaceState(null, '', url);
          load(el);
        });
      });
      var toggle = block.querySelector('.compare-toggle');
      if (toggle) {
        toggle.addEventListener('change', function () {
          el.dataset.compare = toggle.checked ? '1' : '0';
          load(el);
        });
      }
    }
    load(el);
  });

  window.addEventListener('resize', function () {
    document.querySelectorAll('.chart[data-ids]').forEach(function (el) {
      var c = echarts.getInstanceByDom(el);
      if (c) c.resize();
    });
  });
})();
