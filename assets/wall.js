/* The wall's client side, run once a second by a clientside callback (no server work):
 * - scale the 1920x1080 design canvas to the screen; a wide splice wall shows several
 *   pages side by side (one 1920-wide column per 16:9 of screen) instead of shrinking;
 * - rotate the pages every `rotate` seconds, in step on every wall (from the clock);
 * - the clock, the data-as-of time and the freshness light, from the last head the
 *   server sent (ages are measured on the server's clock, whatever the wall's);
 * - reload when the server's build changes, and once a day at `reload_at` after
 *   checking that the server answers (a reload must never leave a blank wall).
 */
(function () {
  var W = 1920, H = 1080, MAX_COLS = 4;
  var state = {offset: 0, headN: null, loadedAt: Date.now(), last: {}, reloading: false, resized: false};

  function fmt(ms, cfg, opts) {
    return new Intl.DateTimeFormat(cfg.lang === "en" ? "en-GB" : "zh-CN",
      Object.assign({timeZone: cfg.tz, hour12: false}, opts)).format(new Date(ms));
  }
  function hms(ms, cfg) { return fmt(ms, cfg, {hour: "2-digit", minute: "2-digit", second: "2-digit"}); }
  function since(ms, cfg, now) {
    var sameDay = fmt(ms, cfg, {year: "numeric", month: "2-digit", day: "2-digit"}) ===
                  fmt(now, cfg, {year: "numeric", month: "2-digit", day: "2-digit"});
    return sameDay ? fmt(ms, cfg, {hour: "2-digit", minute: "2-digit"})
                   : fmt(ms, cfg, {month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit"});
  }
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_m, k) { return values[k]; });
  }
  function changed(key, value) {
    var raw = JSON.stringify(value);
    if (state.last[key] === raw) { return window.dash_clientside.no_update; }
    state.last[key] = raw;
    return value;
  }

  function layout(cfg) {
    var vw = window.innerWidth || W, vh = window.innerHeight || H;
    var cols = Math.max(1, Math.min(MAX_COLS, Math.round((vw / vh) / (W / H))));
    var cw = W * cols, scale = Math.min(vw / cw, vh / H);
    var dx = Math.max(0, (vw - cw * scale) / 2), dy = Math.max(0, (vh - H * scale) / 2);
    var pages = cfg.pages, n = pages.length, start = pages.indexOf(cfg.page);
    if (cfg.rotate) { start = Math.floor(Date.now() / 1000 / cfg.rotate) % n; }
    var shown = {};
    for (var i = 0; i < Math.min(cols, n); i++) { shown[pages[(start + i) % n]] = i; }
    return {cols: Math.min(cols, n), scale: scale, dx: dx, dy: dy, shown: shown};
  }

  function light(head, cfg, now) {
    var s = cfg.strings;
    if (!head) { return {cls: "waiting", text: s.light_waiting}; }
    var age = now - head.c;
    if (age > cfg.stale_after * 1000) {
      return {cls: "stale", text: fill(s.light_stale, {since: since(head.c, cfg, now)})};
    }
    if (head.s === "error" || head.s === "stale") {
      return {cls: head.s, text: fill(s["light_" + head.s], {since: since(head.since || head.c, cfg, now)})};
    }
    return {cls: "fresh", text: s.light_fresh + " · " + fill(s.updated_ago, {n: Math.max(0, Math.round(age / 1000))})};
  }

  function maybeReload(head, cfg, now) {
    if (state.reloading) { return; }
    if (head && head.b && cfg.build && head.b !== cfg.build) {  // the server answered with a new build
      state.reloading = true;
      window.location.reload();
      return;
    }
    // the time of day on the server's clock; the page's age on the browser's own
    if (cfg.reload_at && Date.now() - state.loadedAt > 120000 &&
        fmt(now, cfg, {hour: "2-digit", minute: "2-digit"}) === cfg.reload_at) {
      state.reloading = true;
      fetch("/healthz", {cache: "no-store"}).then(function (r) {
        if (r.ok) { window.location.reload(); } else { state.reloading = false; }
      }).catch(function () { state.reloading = false; });
    }
  }

  // dash-renderer keeps an undo history of every input change (our interval ticks
  // included) and never trims it; a wall has no undo, so keep only the last few entries,
  // or the page grows for as long as it is open.
  function trimHistory() {
    var st = window.store && window.store.getState && window.store.getState();
    var past = st && st.history && st.history.past;
    if (past && past.length > 20) { past.splice(0, past.length - 20); }
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    wall: {
      tick: function (_n, head, cfg) {
        var nu = window.dash_clientside.no_update;
        if (!cfg) { return new Array(12).fill(nu); }
        if (!state.resized) {  // re-layout at once when the window changes size
          state.resized = true;
          window.addEventListener("resize", function () { state.last = {}; });
        }
        if (head && head.n !== state.headN) { state.headN = head.n; state.offset = head.n - Date.now(); }
        var now = Date.now() + state.offset;
        trimHistory();
        maybeReload(head, cfg, now);
        var lay = layout(cfg), lt = light(head, cfg, now);
        var old = head && now - head.c > cfg.stale_after * 1000;
        var canvas = {width: (W * lay.cols) + "px", height: H + "px", transformOrigin: "0 0",
                      transform: "translate(" + lay.dx + "px," + lay.dy + "px) scale(" + lay.scale + ")"};
        var pageStyles = cfg.pages.map(function (p) {
          return p in lay.shown ? {left: (lay.shown[p] * W) + "px", visibility: "visible"}
                                : {left: "0px", visibility: "hidden"};
        });
        var dots = "page-dots " + Object.keys(lay.shown).map(function (p) { return "on-" + p; }).join(" ");
        return [
          fmt(Date.now(), cfg, {hour: "2-digit", minute: "2-digit", second: "2-digit"}),
          changed("date", fmt(Date.now(), cfg, {year: "numeric", month: "2-digit", day: "2-digit", weekday: "short"})),
          changed("lightCls", "light light-" + lt.cls),
          changed("lightText", [{namespace: "dash_html_components", type: "Span", props: {className: "light-lamp"}},
                                {namespace: "dash_html_components", type: "Span", props: {className: "light-text", children: lt.text}}]),
          changed("asof", head && head.a ? cfg.strings.data_as_of + " " + hms(head.a, cfg) : ""),
          changed("canvas", canvas),
          changed("root", "wall-root" + (old ? " is-old" : "") + " cols-" + lay.cols),
          changed("p0", pageStyles[0]), changed("p1", pageStyles[1]),
          changed("p2", pageStyles[2]), changed("p3", pageStyles[3]),
          changed("dots", dots)
        ];
      }
    }
  });
})();
