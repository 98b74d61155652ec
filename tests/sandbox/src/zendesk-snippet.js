/* Sandbox stand-in for Zendesk's Web Widget snippet (messaging), served by the sandbox at
 * /sandbox/widget/zendesk.js?key=... Not Zendesk's code: it behaves as docs/vendors/zendesk.md
 * says the messenger behaves, including what makes an integration fail.
 *
 * - It finds its key from its own element, `script#ze-snippet` (throws without it), and refuses
 *   a key the account does not have.
 * - `zE("messenger", "loginUser", jwtCallback, loginCallback)` asks jwtCallback for a token, and
 *   verifies it as Zendesk does: HS256 with the key named by `kid` (unknown or missing kid:
 *   refused), `scope` "user", `external_id` a string, `exp` not past. It asks again when the
 *   token it holds runs out.
 * - The authenticated session survives page loads (localStorage); a load without loginUser
 *   shows it. `logoutUser` ends it. A loginUser for another user while one is logged in is
 *   refused and the earlier conversation stays: Zendesk does not document what happens, so the
 *   page must log out first.
 * - window.__sandboxZendesk records it all.
 */
(function () {
  "use strict";
  var account = {{ACCOUNT}};
  var log = (window.__sandboxZendesk = window.__sandboxZendesk ||
    { loads: 0, logins: [], logouts: 0, jwtRequests: 0, refused: [], conflicts: 0, shown: [] });
  log.loads++;
  var me = document.getElementById("ze-snippet");
  if (!me) throw new Error("Zendesk snippet: no script#ze-snippet to read the key from");
  var key = new URL(me.src, location.href).searchParams.get("key");
  if (key !== account.widget_key) {
    log.state = "unknown widget key";
    throw new Error("Zendesk snippet: unknown widget key " + key);
  }
  var STORE = "ZD-sandbox-session";
  var expiry = null;

  function session() {
    try { return JSON.parse(localStorage.getItem(STORE)); } catch (e) { return null; }
  }
  function setSession(value) {
    if (value) localStorage.setItem(STORE, JSON.stringify(value));
    else localStorage.removeItem(STORE);
  }

  function show() {
    var current = session();
    log.shown.push(current ? current.external_id : null);
    if (current) {
      sandbox.bubble("sandbox-zendesk", 128, "#03363d", "verified",
        "Zendesk (sandbox): messaging as " + current.external_id +
        (current.name ? " (" + current.name + ")" : ""), current.external_id);
    } else {
      sandbox.bubble("sandbox-zendesk", 128, "#03363d", "anonymous",
        "Zendesk (sandbox): messaging anonymously");
    }
  }

  function verify(jwt) {
    var header;
    try { header = sandbox.parse(jwt).header; } catch (e) { return Promise.reject(e); }
    var secret = header.kid && account.keys[header.kid];
    if (!secret) return Promise.reject(new Error("unknown or missing kid"));
    return sandbox.verifyHs256(jwt, secret).then(function (token) {
      var claims = token.claims;
      if (claims.scope !== "user") throw new Error("scope is not \"user\"");
      if (typeof claims.external_id !== "string" || !claims.external_id ||
          claims.external_id.length > 255) {
        throw new Error("external_id is not a string");
      }
      if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
        throw new Error("expired");
      }
      return claims;
    });
  }

  function loginUser(jwtCallback, loginCallback) {
    var done = typeof loginCallback === "function" ? loginCallback : function () {};
    log.jwtRequests++;
    jwtCallback(function (jwt) {
      verify(jwt).then(function (claims) {
        var current = session();
        if (current && current.external_id !== claims.external_id) {
          log.conflicts++;
          done({ type: "LoginFailedError", reason: "conflict",
                 message: "another user is logged in; call logoutUser first" });
          return;
        }
        setSession({ external_id: claims.external_id, name: claims.name || null });
        log.logins.push(claims.external_id);
        show();
        clearTimeout(expiry);
        if (typeof claims.exp === "number") {
          expiry = setTimeout(function () { loginUser(jwtCallback, loginCallback); },
            Math.max(0, claims.exp * 1000 - Date.now()));
        }
        // Tests: what the widget does when its token runs out, without waiting for it.
        log.expire = function () { clearTimeout(expiry); loginUser(jwtCallback, loginCallback); };
        done(null);
      }, function (error) {
        log.refused.push(String(error && error.message));
        done({ type: "LoginFailedError", reason: "unauthorized", message: String(error) });
      });
    });
  }

  function logoutUser() {
    clearTimeout(expiry);
    setSession(null);
    log.logouts++;
    show();
  }

  window.zE = function (scope, command) {
    var args = Array.prototype.slice.call(arguments, 2);
    if (scope !== "messenger") return;
    if (command === "loginUser") loginUser(args[0], args[1]);
    else if (command === "logoutUser") logoutUser();
  };
  show();
})();
