  // LiveChat's part of Tether's page loader, run as `function (tether, settings)` after the
  // identity provider above: sets __lc.license (and group), for a signed-in visitor
  // __lc.custom_identity_provider, then loads the widget. An anonymous visitor gets LiveChat's
  // own anonymous identity (or no widget, by config) and every stored token is dropped. When
  // the tag does not say, one token request finds out (the widget would make it anyway), and
  // the widget's first getToken() is answered with that token instead of a second request.
  var provider = window.TetherLiveChat;

  function widget(signedIn) {
    var lc = (window.__lc = window.__lc || {});
    lc.license = settings.license;
    if (settings.group !== null) lc.group = settings.group;
    if (signedIn) lc.custom_identity_provider = provider.identityProvider;
    if (!signedIn && !tether.anonymousWidget) return;
    if (window.LiveChatWidget) return; // the page loads LiveChat itself
    // The widget's API queues calls made before its script arrives (LiveChatWidget.call(...)).
    var api = {
      _q: [],
      _h: null,
      _v: "2.0",
      init: function () { tether.load(settings.widget); }
    };
    function queue(kind, args) {
      var call = [kind, Array.prototype.slice.call(args)];
      return api._h ? api._h.apply(null, call) : api._q.push(call);
    }
    ["on", "once", "off", "call"].forEach(function (kind) {
      api[kind] = function () { queue(kind, arguments); };
    });
    api.get = function () {
      if (!api._h) throw new Error("LiveChatWidget.get: the widget has not loaded yet");
      return queue("get", arguments);
    };
    window.LiveChatWidget = api;
    if (!lc.asyncInit) api.init();
  }

  if (tether.user === "-") {
    provider.forget();
    widget(false);
  } else if (tether.user) {
    provider.expect(tether.user);
    widget(true);
  } else {
    provider.check().then(widget);
  }
