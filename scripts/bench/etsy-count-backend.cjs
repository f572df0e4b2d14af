/*
 * A backend for Etsy statsd in `npm run bench:ingest`: counts the lines Etsy receives, from
 * its 'packet' event (the generator sends no empty lines, so this is what Etsy's own
 * statsd.metrics_received counts, but never reset), and reports them in the management
 * `stats` answer as `bench.lines: N`. It does nothing at flush. Counting newlines with
 * indexOf costs far less than Etsy's own per-line work, so it hardly slows Etsy down.
 */
exports.init = function (startupTime, config, events) {
  let lines = 0;
  events.on('packet', function (msg) {
    // UDP hands a Buffer, TCP a string of whole lines; both have indexOf.
    const nl = typeof msg === 'string' ? '\n' : 10;
    let i = -1;
    while ((i = msg.indexOf(nl, i + 1)) >= 0) lines++;
    const last = typeof msg === 'string' ? msg.charCodeAt(msg.length - 1) : msg[msg.length - 1];
    if (msg.length > 0 && last !== 10) lines++;
  });
  events.on('status', function (write) {
    write(null, 'bench', 'lines', lines);
  });
  return true;
};
