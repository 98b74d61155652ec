  // LiveChat's part of Tether's page loader, run as `function (tether, settings)` after the
  // identity provider above (docs/vendors/livechat.md, "How the widget uses it").
  //
  // At once, so page code may use them: window.__lc (license or organization, group) and the
  // LiveChatWidget queue, as LiveChat's own snippet defines them. Only init() waits: it loads
  // tracking.js once Tether knows whether someone is signed in and the identity provider is
  // set. A restart (destroy, then init, as LiveChat's own adapters do) replaces the script
  // element instead of adding a second one. A page carrying LiveChat's snippet after this tag is
  // kept from loading the widget early (asyncInit); one whose snippet ran before this tag has
  // already started the widget without the provider: that is warned about, once.
  var provider = window.TetherLiveChat;
  var lc = (window.__lc = window.__lc || {});
  var pageStartsItself = lc.asyncInit === true; // the page calls LiveChatWidget.init() itself
  if (settings.license) lc.license = settings.license;
  else lc.organizationId = settings.organization;
  if (settings.group !== null) lc.group = settings.group;
  lc.asyncInit = true;

  function loadedBeforeUs() {
    var scripts = document.getElementsByTagName("script");
    for (var i = 0; i < scripts.length; i++) {
      if (scripts[i] !== script && /\/tracking\.js(\?|$)/.test(scripts[i].src || "")) return true;
    }
    return false;
  }

  var decided = false; // whether someone is signed in is known
  var wanted = false; // init() was called before that
  var script = null; // the tracking.js element this loader added

  function start() {
    if (script && script.parentNode) script.parentNode.removeChild(script);
    script = tether.load(settings.widget);
  }

  if (!window.LiveChatWidget) {
    var api = { _q: [], _h: null, _v: "2.0" };
    var queue = function (kind, args) {
      var call = [kind, Array.prototype.slice.call(args)];
      return api._h ? api._h.apply(null, call) : api._q.push(call);
    };
    ["on", "once", "off", "call"].forEach(function (kind) {
      api[kind] = function () { return queue(kind, arguments); };
    });
    api.get = function () {
      if (!api._h) throw new Error("[LiveChatWidget] You can't use getters before load.");
      return queue("get", arguments);
    };
    api.init = function () {
      if (!decided) { wanted = true; return; }
      start();
    };
    window.LiveChatWidget = api;
  } else if (loadedBeforeUs() && window.console) {
    console.warn("tether: the page's own LiveChat snippet loaded the widget before Tether's " +
      "loader set the identity provider; set __lc.asyncInit = true in it, or remove it " +
      "(Tether's loader adds the widget).");
  }

  function decide(signedIn) {
    if (signedIn) lc.custom_identity_provider = provider.identityProvider;
    decided = true;
    if (!signedIn && !tether.anonymousWidget) return;
    if (wanted || !pageStartsItself) window.LiveChatWidget.init();
  }

  if (tether.user === "-") {
    provider.forget();
    decide(false);
  } else if (tether.user) {
    provider.expect(tether.user);
    decide(true);
  } else {
    provider.check().then(decide);
  }
