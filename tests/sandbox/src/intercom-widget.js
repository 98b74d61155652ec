/* Sandbox stand-in for Intercom's Messenger script (widget.intercom.io/widget/<app_id>), served
 * by the sandbox at /sandbox/widget/intercom.js. Not Intercom's code: it behaves as
 * docs/vendors/intercom.md says the Messenger behaves, including what makes an integration
 * fail.
 *
 * - It boots from window.intercomSettings when it loads (then runs calls queued on the
 *   snippet's Intercom.q), and on Intercom("boot", settings).
 * - Identity is verified as Intercom does with "enforce" on: intercom_user_jwt (HS256 with the
 *   Messenger API secret, `user_id` a string, `exp` not past) or user_hash (hex HMAC-SHA256 of
 *   user_id); a user_id without a valid value is refused (403).
 * - An anonymous boot resumes whoever the session cookie (intercom-session-<app_id>) names:
 *   the last user's conversations stay in the browser for a week unless the page shuts the
 *   Messenger down or the cookie is cleared.
 * - Intercom("update", settings) that names a user needs the value again (403 otherwise).
 * - Intercom("shutdown") forgets the user and clears the session cookie.
 * - window.__sandboxIntercom records it all.
 */
(function () {
  "use strict";
  var account = {{ACCOUNT}};
  var log = (window.__sandboxIntercom = window.__sandboxIntercom ||
    { loads: 0, boots: [], updates: 0, refused: [], shutdowns: 0, shown: [] });
  log.loads++;
  var COOKIE = "intercom-session-" + account.app_id;
  var queued = (window.Intercom && window.Intercom.q) || [];
  var current = null;

  function sessionUser() {
    var pairs = document.cookie.split(";");
    for (var i = 0; i < pairs.length; i++) {
      var pair = pairs[i].trim();
      if (pair.indexOf(COOKIE + "=") === 0) {
        var value = decodeURIComponent(pair.slice(COOKIE.length + 1));
        return value || null;
      }
    }
    return null;
  }
  function setSession(user) {
    document.cookie = COOKIE + "=" + encodeURIComponent(user) + "; path=/; max-age=604800";
  }
  function clearSession() {
    document.cookie = COOKIE + "=; path=/; max-age=0";
  }

  function show(state) {
    log.state = state;
    log.user = current;
    log.shown.push(current);
    sandbox.bubble("sandbox-intercom", 184, "#286efa", state,
      current ? "Intercom (sandbox): " + (state === "resumed" ? "resumed the session of " : "") +
        "user " + current : "Intercom (sandbox): " + state, current);
  }

  /* The verified user id of `settings`, null when it names none; rejects (403) otherwise. */
  function identify(settings) {
    var jwt = settings.intercom_user_jwt;
    if (jwt) {
      return sandbox.verifyHs256(jwt, account.secret).then(function (token) {
        var claims = token.claims;
        if (typeof claims.user_id !== "string" || !claims.user_id) {
          throw new Error("403: user_id is not a string");
        }
        if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
          throw new Error("403: intercom_user_jwt expired");
        }
        if (settings.user_id !== undefined && settings.user_id !== claims.user_id) {
          throw new Error("403: user_id differs from the JWT's");
        }
        return claims.user_id;
      }, function (error) { throw new Error("403: " + error.message); });
    }
    if (settings.user_id === undefined) return Promise.resolve(null);
    if (!settings.user_hash) return Promise.reject(new Error("403: user_id without a signed value"));
    return sandbox.hmacHex(account.secret, String(settings.user_id)).then(function (hash) {
      if (hash !== settings.user_hash) throw new Error("403: user_hash does not match user_id");
      return String(settings.user_id);
    });
  }

  function boot(settings) {
    settings = settings || {};
    log.boots.push(settings.user_id === undefined ? null : String(settings.user_id));
    if (settings.app_id !== account.app_id) {
      log.refused.push("unknown app_id " + settings.app_id);
      return show("refused");
    }
    identify(settings).then(function (user) {
      if (user === null) {
        current = sessionUser(); // the failure Intercom warns about: the last user's session
        show(current ? "resumed" : "anonymous");
      } else {
        current = user;
        setSession(user);
        show("verified");
      }
    }, function (error) {
      log.refused.push(String(error.message));
      current = null;
      show("refused");
    });
  }

  function update(settings) {
    log.updates++;
    if (!settings || (settings.user_id === undefined && !settings.intercom_user_jwt)) return;
    identify(settings).then(function (user) {
      if (user !== current) log.refused.push("update for another user without shutdown");
    }, function (error) {
      log.refused.push(String(error.message));
    });
  }

  function shutdown() {
    current = null;
    clearSession();
    log.shutdowns++;
    show("shut down");
  }

  window.Intercom = function (command, settings) {
    if (command === "boot") boot(settings);
    else if (command === "update") update(settings);
    else if (command === "shutdown") shutdown();
  };
  boot(window.intercomSettings);
  queued.forEach(function (args) { window.Intercom.apply(null, args); });
})();
