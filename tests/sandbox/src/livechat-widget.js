/* Sandbox stand-in for LiveChat's widget script (tracking.js), served by the sandbox at
 * /sandbox/widget/livechat.js. Not LiveChat's code: it behaves as docs/vendors/livechat.md says
 * the widget and @livechat/customer-sdk 4.0.2 behave, including what makes an integration fail.
 *
 * - It takes over the LiveChatWidget queue (_h, then the queued _q calls); call("destroy") ends
 *   the session; a new load of this script (LiveChatWidget.init() after a destroy, as LiveChat's
 *   adapters do) starts a new one.
 * - A session calls the custom identity provider as the SDK does: hasToken(), getToken(), and
 *   with an hour or less left invalidate() + getFreshToken(); then it logs in (the token is
 *   checked with the sandbox, as LiveChat's RTM server would). A token LiveChat does not know is
 *   an AUTHENTICATION error: getFreshToken(), then an immediate reconnect.
 * - Every login compares the token's entityId with the session's customer: a different one
 *   destroys the widget ("identity_mismatch"), and it stays dead until the window is refreshed.
 * - A rejected getToken() means a reconnect with back-off (300 ms, doubling, up to 60 s), for
 *   ever, until something destroys the widget.
 * - window.__sandboxLiveChat records what happened: sessions, tokens handed over, token calls,
 *   reconnects scheduled; reconnect() imitates a dropped socket.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  var sandbox = me ? new URL(me.src).origin : "";
  var lc = window.__lc || {};
  var log = (window.__sandboxLiveChat = window.__sandboxLiveChat || {
    loads: 0, sessions: [], tokens: [], tokenCalls: 0, reconnects: 0, state: "starting"
  });
  log.loads++;
  var api = (window.LiveChatWidget = window.LiveChatWidget || { _q: [], _h: null });
  var session = null;

  function whenReady(fn) {
    if (document.body) fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function bubble(state, text, entity) {
    log.state = state;
    log.entity = entity || null;
    whenReady(function () {
      var el = document.getElementById("sandbox-livechat") || document.createElement("div");
      el.id = "sandbox-livechat";
      el.setAttribute("data-state", state);
      if (entity) el.setAttribute("data-entity", entity); else el.removeAttribute("data-entity");
      el.textContent = text;
      el.style.cssText = "position:fixed;right:16px;bottom:16px;max-width:24em;padding:10px 14px;" +
        "border-radius:16px 16px 4px 16px;background:#ff5100;color:#fff;font:14px system-ui;" +
        "box-shadow:0 2px 8px rgba(0,0,0,.3);z-index:2147483647";
      if (!el.parentNode) document.body.appendChild(el);
    });
  }

  var account = lc.license ? "license " + lc.license : "organization " + lc.organizationId;

  function end(s, state) {
    if (!s || s.ended) return;
    s.ended = true;
    clearTimeout(s.timer);
    s.record.state = state;
    log.pendingReconnect = false;
    if (session === s) session = null;
  }

  // Destroyed for good: the widget is not available again until the window is refreshed.
  function die(s, reason) {
    end(s, "destroyed: " + reason);
    window.__sandboxLiveChatDead = reason;
    log.destroyedFor = reason;
    bubble("destroyed", "LiveChat (sandbox): destroyed (" + reason + "); reload the page");
  }

  function startSession() {
    if (window.__sandboxLiveChatDead) {
      log.state = "dead";
      return;
    }
    end(session, "replaced");
    var record = { entity: null, state: "connecting" };
    log.sessions.push(record);
    var s = { record: record, selfId: null, ended: false, attempt: 0, timer: null };
    session = s;
    var factory = lc.custom_identity_provider;
    if (typeof factory !== "function") {
      record.state = "anonymous";
      bubble("anonymous", "LiveChat (sandbox), " + account + ": chatting anonymously");
      return;
    }
    s.auth = factory();
    connect(s);
  }

  function getToken(s) {
    log.tokenCalls++;
    return s.auth.getToken();
  }

  // The SDK's token prefetch and the one-hour rule, then the login.
  function connect(s) {
    if (s.ended) return;
    s.auth.hasToken()
      .then(function (has) { return has ? getToken(s) : getToken(s); })
      .then(function (token) {
        if (token.creationDate + token.expiresIn - Date.now() > 3600000) return token;
        return s.auth.invalidate().then(function () { return s.auth.getFreshToken(); });
      })
      .then(function () { return getToken(s); })
      .then(function (token) { return login(s, token); }, function (error) {
        if (!s.ended) reconnect(s, "getToken rejected: " + ((error && error.message) || error));
      });
  }

  // The RTM login: the token must be one LiveChat issued, alive, for the entity it names.
  function login(s, token) {
    if (s.ended) return;
    log.tokens.push({ accessToken: token.accessToken, entityId: token.entityId, session: log.sessions.length });
    if (s.selfId !== null && token.entityId !== s.selfId) return die(s, "identity_mismatch");
    s.selfId = token.entityId;
    return fetch(sandbox + "/sandbox/token-owner?token=" + encodeURIComponent(token.accessToken))
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (s.ended) return;
        var alive = token.creationDate + token.expiresIn > Date.now();
        if (answer.entity_id !== token.entityId || !alive) {
          // AUTHENTICATION: a fresh token, and an immediate reconnect.
          s.auth.getFreshToken().catch(function () {});
          return reconnect(s, "authentication", 0);
        }
        s.attempt = 0;
        s.record.entity = token.entityId;
        s.record.state = "verified";
        bubble("verified", "LiveChat (sandbox): chatting as customer " + token.entityId +
          " (token verified by the sandbox)", token.entityId);
      });
  }

  function reconnect(s, why, delay) {
    if (s.ended) return;
    log.reconnects++;
    log.lastReconnect = why;
    if (delay === undefined) {
      delay = Math.min(300 * Math.pow(2, s.attempt), 60000) * (0.85 + 0.3 * Math.random());
      s.attempt++;
    }
    log.pendingReconnect = true;
    s.timer = setTimeout(function () {
      log.pendingReconnect = false;
      connect(s);
    }, delay);
  }

  // A dropped socket: the SDK reconnects and logs in again (getToken, then the identity check).
  log.reconnect = function () {
    if (session && !session.ended) connect(session);
  };

  function handle(kind, args) {
    if (kind === "call" && args[0] === "destroy") {
      end(session, "destroyed by the page");
      bubble("destroyed", "LiveChat (sandbox): stopped");
      return;
    }
    if (kind === "get" && args[0] === "state") {
      return { availability: "online", visibility: session ? "minimized" : "hidden" };
    }
    if (kind === "get" && args[0] === "customer_data") {
      return { id: session && session.selfId, status: session ? "browsing" : "idle" };
    }
  }

  api._h = function (kind, args) { return handle(kind, args); };
  var queued = api._q ? api._q.splice(0) : [];
  startSession();
  queued.forEach(function (call) { handle(call[0], call[1]); });
  if (window.LC_API && typeof window.LC_API.on_after_load === "function") {
    setTimeout(window.LC_API.on_after_load, 0);
  }
})();
