/* Sandbox stand-in for LiveChat's widget script, served by the sandbox at
 * /sandbox/widget/livechat.js. Not LiveChat's code: it uses the page's custom identity provider
 * the way @livechat/customer-sdk does (docs/vendors/livechat.md) and draws a bubble
 * naming the customer, after asking the sandbox whose token it was given.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var sandbox = script ? new URL(script.src).origin : "";
  var lc = window.__lc || {};
  var log = (window.__sandboxLiveChat = { tokens: [], state: "starting" });

  function whenReady(fn) {
    if (document.body) fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  function bubble(state, text, entity) {
    whenReady(function () {
      var el = document.getElementById("sandbox-livechat") || document.createElement("div");
      el.id = "sandbox-livechat";
      el.setAttribute("data-state", state);
      if (entity) el.setAttribute("data-entity", entity);
      el.textContent = text;
      el.style.cssText = "position:fixed;right:16px;bottom:16px;max-width:24em;padding:10px 14px;" +
        "border-radius:16px 16px 4px 16px;background:#ff5100;color:#fff;font:14px system-ui;" +
        "box-shadow:0 2px 8px rgba(0,0,0,.3);z-index:2147483647";
      if (!el.parentNode) document.body.appendChild(el);
      log.state = state;
      log.entity = entity || null;
    });
  }

  var factory = lc.custom_identity_provider;
  if (typeof factory !== "function") {
    bubble("anonymous", "LiveChat (sandbox), license " + lc.license + ": chatting anonymously");
    return;
  }
  var provider = factory();

  function record(token) {
    log.tokens.push({ accessToken: token.accessToken, entityId: token.entityId });
    return token;
  }

  // The SDK re-issues a token with an hour or less left.
  function freshEnough(token) {
    if (token.creationDate + token.expiresIn - Date.now() > 3600000) return token;
    return provider.invalidate().then(function () { return provider.getFreshToken(); }).then(record);
  }

  function owner(token) {
    return fetch(sandbox + "/sandbox/token-owner?token=" + encodeURIComponent(token.accessToken))
      .then(function (response) { return response.json(); })
      .then(function (answer) { return answer.entity_id; });
  }

  provider.hasToken()
    .then(function () { return provider.getToken(); })
    .then(record)
    .then(freshEnough)
    .then(function (token) {
      // On reconnect the SDK asks again and destroys the chat if the customer changed.
      return provider.getToken().then(record).then(function (again) {
        if (again.entityId !== token.entityId) throw new Error("Identity has changed");
        return owner(token);
      }).then(function (entity) {
        if (entity !== token.entityId) {
          throw new Error("the sandbox does not know this token as customer " + token.entityId);
        }
        return token;
      });
    })
    .then(function (token) {
      bubble("verified", "LiveChat (sandbox): chatting as customer " + token.entityId +
        " (token verified by the sandbox)", token.entityId);
    }, function (error) {
      bubble("failed", "LiveChat (sandbox): " + ((error && error.message) || error));
    });
})();
