/* Tether: LiveChat custom identity provider, served by Tether at
 * {{PREFIX}}/livechat/identity-provider.js (and carried by the page loader). Use it before the
 * widget initialises:
 *
 *   <script src="{{PREFIX}}/livechat/identity-provider.js"></script>
 *   <script>window.__lc = window.__lc || {};
 *           window.__lc.custom_identity_provider = TetherLiveChat.identityProvider;</script>
 *
 * At logout call TetherLiveChat.logout() (a Promise): it forgets the user's tokens here and at
 * Tether, and destroys the widget (LiveChat's widget cannot change customers in place).
 *
 * How it answers LiveChat's widget (docs/vendors/livechat.md, "How the widget uses it"):
 * - Every getToken() asks Tether, which knows who is signed in now (its answer is cached there
 *   and keeps the token's real creationDate), so a shared computer never hands the previous
 *   user's token to the next. Tether's loader may say whose page it is; the widget's first
 *   getToken() is then answered from a stored token with more than REUSE_MARGIN left.
 * - Tokens are kept in sessionStorage under the user's page key (a keyed hash, never the user
 *   id); when the user changes, every stored token goes.
 * - getFreshToken() always re-issues (POST), bypassing every cache; a getToken() that arrives
 *   while it is in flight (the widget reconnects at once after an authentication error) waits
 *   for it instead of being handed the refused token.
 * - The widget destroys itself for good when a session's customer changes. When Tether answers
 *   for another user than the one the widget's session began with, the widget is restarted for
 *   the new user (destroy, then init) instead of being handed that user's token. A page that
 *   drives @livechat/customer-sdk without the widget gets whoever is signed in now, and starts
 *   a new SDK instance itself when the customer changes.
 * - Nobody signed in (401): tokens are dropped and the widget is stopped; a rejected getToken()
 *   would make it reconnect with back-off for ever, in every open tab.
 * - A failed request is never cached; getToken() retries a failed request once before
 *   rejecting. invalidate() returns a Promise. expiresIn and creationDate are milliseconds.
 * - Every response body is read or cancelled: Chromium keeps an unread body pending, which
 *   holds an HTTP/1.1 connection and keeps the page from going idle.
 */
(function (global) {
  "use strict";
  var ENDPOINT = "{{PREFIX}}/livechat/token";
  var KEY_PREFIX = "tether.livechat.token.";
  var USER_KEY = "tether.livechat.user";
  var NOBODY = "tether: nobody is signed in";
  var memory = {}; // fallback when sessionStorage is unavailable (private mode, sandboxed frames)
  // The widget re-issues a token with an hour or less left; keep a margin above that.
  var REUSE_MARGIN = 65 * 60 * 1000;
  var primed = null; // the page's user key, for the widget's first getToken()
  var pendingFresh = null; // a getFreshToken() in flight
  var sessionUser = null; // whose token the widget's current session began with
  var restarting = false;

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

  /* Reads and discards a body nobody needs. */
  function discard(response) {
    if (response.body && response.body.cancel) response.body.cancel().catch(function () {});
  }

  /* The widget's API (LiveChat's own, or the loader's queue stub), if the page has it. */
  function hasWidget() {
    var widget = global.LiveChatWidget;
    return !!(widget && typeof widget.call === "function");
  }

  function widgetCall(name) {
    if (hasWidget()) global.LiveChatWidget.call(name);
  }

  function stopWidget() {
    sessionUser = null;
    widgetCall("destroy");
  }

  /* Destroys the widget's session and starts a new one for the user now signed in. */
  function restartWidget() {
    if (restarting) return;
    restarting = true;
    sessionUser = null;
    widgetCall("destroy");
    setTimeout(function () {
      restarting = false;
      var widget = global.LiveChatWidget;
      if (widget && typeof widget.init === "function") widget.init();
    }, 0);
  }

  function request(method) {
    return fetch(ENDPOINT, {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) {
        discard(response);
        dropAll();
        throw new Error(NOBODY);
      }
      if (!response.ok) {
        discard(response);
        throw new Error("tether: token request failed with HTTP " + response.status);
      }
      var userKey = response.headers.get("X-Tether-User-Key") || "";
      return response.json().then(function (token) {
        remember(userKey, token);
        return { userKey: userKey, token: token };
      });
    });
  }

  function nobody(error) {
    return String(error && error.message).indexOf(NOBODY) >= 0;
  }

  function withOneRetry(method) {
    return request(method).catch(function (first) {
      if (nobody(first)) throw first;
      return new Promise(function (resolve) { setTimeout(resolve, 500); }).then(function () {
        return request(method);
      });
    });
  }

  /* A token for the widget's session, or a restart when the session belongs to someone else. */
  function forSession(answer) {
    // Without LiveChat's widget (a page driving @livechat/customer-sdk itself) there is no
    // session to restart: the page owns that, and gets whoever is signed in now.
    if (!hasWidget()) return answer.token;
    if (sessionUser === null || answer.userKey === "") {
      sessionUser = answer.userKey || sessionUser;
      return answer.token;
    }
    if (answer.userKey !== sessionUser) {
      restartWidget();
      throw new Error("tether: another user signed in; the widget starts again for them");
    }
    return answer.token;
  }

  function settle(promise) {
    return promise.then(forSession, function (error) {
      if (nobody(error)) stopWidget();
      throw error;
    });
  }

  function takePrimed() {
    var user = primed;
    primed = null;
    if (user === null || currentUser() !== user) return null;
    var token = read(KEY_PREFIX + user);
    var left = token ? token.creationDate + token.expiresIn - Date.now() : 0;
    if (left <= REUSE_MARGIN) return null;
    if (sessionUser === null) sessionUser = user;
    return sessionUser === user ? token : null;
  }

  function fresh() {
    if (!pendingFresh) {
      pendingFresh = withOneRetry("POST");
      var done = function () { pendingFresh = null; };
      pendingFresh.then(done, done);
    }
    return settle(pendingFresh);
  }

  function identityProvider() {
    return {
      getToken: function () {
        if (pendingFresh) return settle(pendingFresh);
        var token = takePrimed();
        return token ? Promise.resolve(token) : settle(withOneRetry("GET"));
      },
      getFreshToken: fresh,
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
    stopWidget();
    return fetch(ENDPOINT, { method: "DELETE", credentials: "same-origin" }).then(discard, function () {});
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
      function (answer) { primed = answer.userKey; return true; },
      function (error) {
        // 401: nobody (request() dropped every token). Anything else: someone may be signed
        // in and Tether is briefly unavailable; the widget's own calls retry.
        return !nobody(error);
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
