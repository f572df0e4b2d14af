// Osprey embeds: <script src="https://osprey.example/embed.js"></script>
// <script>OspreyEmbed.render({s1: 12, s2: 13, w: 600, h: 200, tf: 'week_compare'})</script>
// draws the graph as an <img> right after the calling script (or into `el`). StatHat's
// StatHatEmbed.render is the same function, so old snippets keep working.
(function () {
  'use strict';
  var me = document.currentScript;
  var base = me && me.src ? new URL(me.src).origin : '';
  function render(o) {
    o = o || {};
    var ids = [o.s1, o.s2, o.s3].filter(function (s) { return s !== undefined && s !== null && s !== ''; }).map(function (s) { return encodeURIComponent(String(s)); });
    var q = new URLSearchParams();
    ['w', 'h', 'tf', 'style', 'title', 'sig'].forEach(function (k) {
      if (o[k] !== undefined && o[k] !== null) q.set(k, String(o[k]));
    });
    var img = document.createElement('img');
    img.src = base + '/embed/graph/' + ids.join('/') + '.' + (o.format === 'png' ? 'png' : 'svg') + (q.toString() ? '?' + q.toString() : '');
    img.width = Number(o.w) || 400;
    img.height = Number(o.h) || 150;
    img.alt = o.title || 'Osprey graph';
    img.className = 'osprey-embed';
    var target = typeof o.el === 'string' ? document.querySelector(o.el) : o.el;
    var caller = document.currentScript;
    if (target) target.appendChild(img);
    else if (caller && caller.parentNode) caller.parentNode.insertBefore(img, caller.nextSibling);
    else document.body.appendChild(img);
    return img;
  }
  window.OspreyEmbed = { render: render };
  if (!window.StatHatEmbed) window.StatHatEmbed = { render: render };
})();
