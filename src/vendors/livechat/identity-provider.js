/* Tether: LiveChat custom identity provider, served by Tether at
 * {{PREFIX}}/livechat/identity-provider.js. Use it before the widget loads:
 *
 *   <script src="{{PREFIX}}/livechat/identity-provider.js"></script>
 *   <script>window.__lc = window.__lc || {};
 *           window.__lc.custom_identity_provider = TetherLiveChat.identityProvider;</script>
 *
 * On logout call TetherLiveChat.logout() (returns a Promise) before the app's own logout.
 *
 * Why it is written this way (the documented pitfalls it avoids):
 * - Every getToken() asks Tether, which knows who is logged in now (its answer is cached and
 *   keeps the token's real creationDate). So a shared computer never hands the previous user's
 *   token to the next one, even when the app switches users without reloading the page.
 * - Tokens are kept in sessionStorage under a per-user key (a hash Tether sends, never the user
 *   id); when the user changes, every stored token is dropped.
 * - A failed request is never cached: the next call tries again. getToken() retries a failed
 *   request once before rejecting, since a rejected promise can leave the widget waiting.
 * - getFreshToken() always asks for a new token (POST), bypassing every cache, Tether's too.
 * - Tether's page loader ([inject]) may vouch for the page's user (expect) or find out once
 *   (check); the widget's first getToken() on that page is then answered without a request, from
 *   a stored token with more than REUSE_MARGIN left. Every later call asks Tether, so a user
 *   switch without a reload is still seen.
 * - invalidate() returns a Promise. expiresIn and creationDate are milliseconds, as the widget
 *   expects, and the object is plain JSON (structured-cloneable).
 */
(function (global) {
  "use strict";
  var ENDPOINT = "{{PREFIX}}/livechat/token";
  var KEY_PREFIX = "tether.livechat.token.";
  var USER_KEY = "tether.livechat.user";
  var memory = {}; // fallback when sessionStorage is unavailable (private mode, sandboxed frames)
  // The widget re-issues a token with an hour or less left; keep a margin above that.
  var REUSE_MARGIN = 65 * 60 * 1000;
  var primed = null; // the page's user key, for the widget's first getToken()

  function storage() {
    try {
      var s = global.sessionStorage;
      s.setItem("tether.probe", "1");
      s.removeItem("tether.probe");
      return s;
    } catch (e) {
      return null;
    }
  }

  function read(key) {
    var s = storage();
    var text = s ? s.getItem(key) : memory[key];
    if (!text) return null;
    try { return JSON.parse(text); } catch (e) { return null; }
  }

  function write(key, value) {
    var text = JSON.stringify(value);
    var s = storage();
    if (s) s.setItem(key, text); else memory[key] = text;
  }

  function dropAll() {
    var s = storage();
    if (s) {
      for (var i = s.length - 1; i >= 0; i--) {
        var key = s.key(i);
        if (key && (key.indexOf(KEY_PREFIX) === 0 || key === USER_KEY)) s.removeItem(key);
      }
    }
    memory = {};
  }

  function currentUser() {
    var s = storage();
    return s ? s.getItem(USER_KEY) : memory[USER_KEY] || null;
  }

  function remember(userKey, token) {
    if (currentUser() !== userKey) dropAll(); // another user: forget everything
    var s = storage();
    if (s) s.setItem(USER_KEY, userKey); else memory[USER_KEY] = userKey;
    write(KEY_PREFIX + userKey, token);
  }

  function request(method) {
    return fetch(ENDPOINT, {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) {
        dropAll();
        throw new Error("tether: nobody is logged in");
      }
      if (!response.ok) throw new Error("tether: token request failed with HTTP " + response.status);
      var userKey = response.headers.get("X-Tether-User-Key") || "";
      return response.json().then(function (token) {
        remember(userKey, token);
        return token;
      });
    });
  }

  function withOneRetry(method) {
    return request(method).catch(function (first) {
      if (String(first && first.message).indexOf("nobody is logged in") >= 0) throw first;
      return new Promise(function (resolve) { setTimeout(resolve, 500); }).then(function () {
        return request(method);
      });
    });
  }

  function takePrimed() {
    var user = primed;
    primed = null;
    if (user === null || currentUser() !== user) return null;
    var token = read(KEY_PREFIX + user);
    var left = token ? token.creationDate + token.expiresIn - Date.now() : 0;
    return left > REUSE_MARGIN ? token : null;
  }

  function identityProvider() {
    return {
      getToken: function () {
        var token = takePrimed();
        return token ? Promise.resolve(token) : withOneRetry("GET");
      },
      getFreshToken: function () { return withOneRetry("POST"); },
      hasToken: function () {
        var user = currentUser();
        return Promise.resolve(!!(user !== null && read(KEY_PREFIX + user)));
      },
      invalidate: function () {
        var user = currentUser();
        var s = storage();
        if (user !== null) {
          if (s) s.removeItem(KEY_PREFIX + user); else delete memory[KEY_PREFIX + user];
        }
        return Promise.resolve();
      }
    };
  }

  function logout() {
    dropAll();
    return fetch(ENDPOINT, { method: "DELETE", credentials: "same-origin" }).then(function () {}, function () {});
  }

  // The page loader's calls. forget: nobody is signed in on this page. expect: the page is for
  // the user with this key. check: ask Tether once; resolves whether someone is signed in.
  function forget() { dropAll(); }

  function expect(userKey) {
    if (currentUser() !== userKey) dropAll();
    primed = userKey;
  }

  function check() {
    return request("GET").then(
      function () { primed = currentUser(); return true; },
      function (error) {
        // 401: nobody (request() dropped every token). Anything else: someone may be signed
        // in and Tether is briefly unavailable; the widget's own calls retry.
        return String(error && error.message).indexOf("nobody is logged in") < 0;
      });
  }

  global.TetherLiveChat = {
    identityProvider: identityProvider,
    logout: logout,
    forget: forget,
    expect: expect,
    check: check
  };
})(window);
