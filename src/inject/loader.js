/* Tether's page loader, served at {{PREFIX}}/inject/loader.js and put on the app's pages by
 * [inject]: the app's templates stay as they are.
 *
 * The tag may say who the page is for: data-tether-user="<key>" (signed in; a hash, never the
 * user id), "-" (nobody), or nothing (Tether could not tell without asking the app). It runs
 * before the vendors' scripts, and hands the page's CSP nonce (if any) to the scripts it adds.
 *
 * - LiveChat: sets __lc.license (and group), and for a signed-in visitor
 *   __lc.custom_identity_provider, then loads the widget. An anonymous visitor gets LiveChat's
 *   own anonymous identity (or no widget, by config) and every stored token is dropped. When the
 *   tag does not say, one token request finds out (the widget would make it anyway), and the
 *   widget's first getToken() is answered with that token instead of a second request.
 * - LivePerson: the identity function and authentication method, then the lpTag for the site.
 */
(function () {
  "use strict";
  var config = {{CONFIG}};
  var me = document.currentScript;
  var user = me ? me.getAttribute("data-tether-user") : null;
  var nonce = me ? me.nonce || me.getAttribute("nonce") || "" : "";

  function load(src) {
    var script = document.createElement("script");
    script.async = true;
    script.src = src;
    if (nonce) script.nonce = nonce;
    (document.head || document.documentElement).appendChild(script);
  }

  function liveChatWidget(signedIn) {
    var lc = (window.__lc = window.__lc || {});
    lc.license = config.livechat.license;
    if (config.livechat.group !== null) lc.group = config.livechat.group;
    if (signedIn) lc.custom_identity_provider = window.TetherLiveChat.identityProvider;
    if (!signedIn && !config.anonymousWidget) return;
    if (window.LiveChatWidget) return; // the page loads LiveChat itself
    // The widget's API queues calls made before its script arrives (LiveChatWidget.call(...)).
    var widget = {
      _q: [],
      _h: null,
      _v: "2.0",
      init: function () { load(config.livechat.widget); }
    };
    function queue(kind, args) {
      var call = [kind, Array.prototype.slice.call(args)];
      return widget._h ? widget._h.apply(null, call) : widget._q.push(call);
    }
    ["on", "once", "off", "call"].forEach(function (kind) {
      widget[kind] = function () { queue(kind, arguments); };
    });
    widget.get = function () {
      if (!widget._h) throw new Error("LiveChatWidget.get: the widget has not loaded yet");
      return queue("get", arguments);
    };
    window.LiveChatWidget = widget;
    if (!lc.asyncInit) widget.init();
  }

  function startLiveChat() {
    var provider = window.TetherLiveChat;
    if (user === "-") {
      provider.forget();
      liveChatWidget(false);
    } else if (user) {
      provider.expect(user);
      liveChatWidget(true);
    } else {
      provider.check().then(liveChatWidget);
    }
  }

  function startLivePerson() {
    if (user === "-" && !config.anonymousWidget) return;
    if (user !== "-") installLivePersonIdentity();
    var tag = (window.lpTag = window.lpTag || {});
    if (tag.site) return; // the page loads the lpTag itself
    tag.site = config.liveperson.site;
    tag.section = tag.section || "";
    tag.autoStart = tag.autoStart !== false;
    load(config.liveperson.tag);
  }

  function installLivePersonIdentity() {
    {{LIVEPERSON}}
  }

  {{LIVECHAT}}

  if (config.livechat) startLiveChat();
  if (config.liveperson) startLivePerson();
})();
