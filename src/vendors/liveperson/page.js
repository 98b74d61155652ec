  // LivePerson's part of Tether's page loader, run as `function (tether, settings)`: the
  // identity function and authentication method (installIdentity, above), then LivePerson's
  // monitor snippet for the site, which tag.js needs (docs/vendors/liveperson.md, "On the
  // page"): the lpTag object with its deferred events, the DOM_READY wiring and init(), which
  // loads tag.js. A page that carries LivePerson's snippet already (lpTag._tagCount) gets the
  // identity function only; the tag is never loaded twice.
  if (tether.user === "-" && !tether.anonymousWidget) return;
  installIdentity();
  if (tether.user === "-") window.TetherLivePerson.know(false);
  else if (tether.user) window.TetherLivePerson.know(tether.visitor("liveperson"));

  var tag = window.lpTag;
  if (typeof tag._tagCount !== "undefined") {
    tag._tagCount += 1;
    return;
  }
  var keep = function (name) { return tag[name] || []; };
  var defer = function (fn, kind) {
    var name = kind === 0 ? "_defB" : kind === 1 ? "_defT" : "_defL";
    (this[name] = this[name] || []).push(fn);
  };
  tag = window.lpTag = {
    wl: tag.wl || null,
    scp: tag.scp || null,
    site: settings.site,
    section: tag.section || "",
    tagletSection: tag.tagletSection || null,
    autoStart: tag.autoStart !== false,
    ovr: tag.ovr || {},
    _v: "1.10.0",
    _tagCount: 1,
    protocol: "https:",
    // Until tag.js replaces them, bindings and triggers wait in the deferred lists.
    events: {
      bind: function (app, ev, fn) { window.lpTag.defer(function () { window.lpTag.events.bind(app, ev, fn); }, 0); },
      trigger: function (app, ev, data) { window.lpTag.defer(function () { window.lpTag.events.trigger(app, ev, data); }, 1); }
    },
    defer: defer,
    load: function (src, charset, id) {
      var self = this;
      setTimeout(function () { self._load(src, charset, id); }, 0);
    },
    _load: function (src, charset, id) {
      var script = tether.load(src || settings.tag);
      script.setAttribute("charset", charset || "UTF-8");
      if (id) script.setAttribute("id", id);
    },
    init: function () {
      this._timing = this._timing || {};
      this._timing.start = new Date().getTime();
      var self = this;
      window.addEventListener("DOMContentLoaded", function () { self._domReady("contReady"); }, false);
      window.addEventListener("load", function () { self._domReady("domReady"); }, false);
      if (typeof window._lptStop === "undefined") this.load();
    },
    start: function () { this.autoStart = true; },
    _domReady: function (when) {
      if (!this.isDom) {
        this.isDom = true;
        this.events.trigger("LPT", "DOM_READY", { t: when });
      }
      this._timing[when] = new Date().getTime();
    },
    vars: keep("vars"),
    dbs: keep("dbs"),
    ctn: keep("ctn"),
    sdes: keep("sdes"),
    hooks: keep("hooks"),
    identities: keep("identities"),
    ev: keep("ev")
  };
  tag.init();
  // After DOM ready (the loader ran late) the listeners above never fire: start by hand.
  if (document.readyState !== "loading") {
    tag._domReady("domReady");
    tag.start();
  }
