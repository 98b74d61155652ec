/* Sandbox stand-in for a Salesforce Messaging for In-App and Web deployment's bootstrap script
 * (bootstrap.min.js), served by the sandbox at /sandbox/widget/salesforce.js. Not Salesforce's
 * code: it behaves as docs/vendors/salesforce.md says the bootstrap behaves, including what
 * makes an integration fail.
 *
 * - `embeddedservice_bootstrap.init(...)` fires `onEmbeddedMessagingReady` on window.
 * - `userVerificationAPI.setIdentityToken({identityTokenType: "JWT", identityToken})` verifies
 *   the token against the keyset (the JWKS; a key without x5c is refused): RS256 (WebCrypto),
 *   `kid` in the keyset, `iss` equal to the keyset's issuer, `exp` not past. The conversation
 *   button appears only after a valid token.
 * - When the token it holds runs out it fires `onEmbeddedMessagingIdentityTokenExpired` and
 *   clears the session unless a new token comes within 30 seconds.
 * - `clearSession(true)` forgets the user and fires ready again.
 * - window.__sandboxSalesforce records it all.
 */
(function () {
  "use strict";
  var account = {{ACCOUNT}};
  var log = (window.__sandboxSalesforce = window.__sandboxSalesforce ||
    { loads: 0, inits: 0, ready: 0, tokens: [], refused: [], cleared: 0, expired: 0, shown: [] });
  log.loads++;
  var verified = null;
  var expiryTimer = null;
  var windowTimer = null;

  function issuer() { return account.issuer || location.origin + "/.tether"; }
  function keysetUrl() { return account.keyset || issuer() + "/jwks.json"; }

  function show() {
    log.user = verified;
    log.shown.push(verified);
    if (verified) {
      sandbox.bubble("sandbox-salesforce", 240, "#0176d3", "verified",
        "Salesforce (sandbox): messaging as " + verified, verified);
    } else {
      sandbox.bubble("sandbox-salesforce", 240, "#0176d3", "waiting",
        "Salesforce (sandbox): waiting for a verified user");
    }
  }

  function fire(name) {
    if (name === "onEmbeddedMessagingReady") log.ready++;
    setTimeout(function () { window.dispatchEvent(new Event(name)); }, 0);
  }

  function verify(jwt) {
    var header;
    try { header = sandbox.parse(jwt).header; } catch (e) { return Promise.reject(e); }
    return fetch(keysetUrl(), { cache: "no-store" }).then(function (r) { return r.json(); })
      .then(function (jwks) {
        var jwk = (jwks.keys || []).filter(function (k) { return k.kid === header.kid; })[0];
        if (!jwk) throw new Error("kid not in the keyset");
        if (!Array.isArray(jwk.x5c) || !jwk.x5c.length) throw new Error("key without x5c");
        atob(jwk.x5c[0]); // standard base64 DER, or this throws
        return sandbox.verifyRs256(jwt, jwk);
      })
      .then(function (token) {
        var claims = token.claims;
        if (claims.iss !== issuer()) throw new Error("iss is not the keyset's issuer");
        if (typeof claims.exp !== "number" || claims.exp * 1000 <= Date.now()) {
          throw new Error("expired");
        }
        if (typeof claims.sub !== "string" || !claims.sub) throw new Error("no sub");
        return claims;
      });
  }

  function expired() {
    log.expired++;
    var before = log.tokens.length;
    fire("onEmbeddedMessagingIdentityTokenExpired");
    windowTimer = setTimeout(function () {
      if (log.tokens.length === before) clearSession(true);
    }, 30000);
  }

  function setIdentityToken(arg) {
    return new Promise(function (resolve, reject) {
      if (!arg || arg.identityTokenType !== "JWT") {
        log.refused.push("identityTokenType is not JWT");
        return reject(new Error("identityTokenType must be JWT"));
      }
      verify(arg.identityToken).then(function (claims) {
        clearTimeout(expiryTimer);
        clearTimeout(windowTimer);
        verified = claims.sub;
        log.tokens.push(claims.sub);
        show();
        expiryTimer = setTimeout(expired, claims.exp * 1000 - Date.now());
        resolve(true);
      }, function (error) {
        log.refused.push(String(error.message));
        reject(error);
      });
    });
  }

  function clearSession() {
    clearTimeout(expiryTimer);
    clearTimeout(windowTimer);
    verified = null;
    log.cleared++;
    show();
    fire("onEmbeddedMessagingReady");
  }

  // Tests: what the bootstrap does when its token runs out, without waiting for it.
  log.expire = function () { clearTimeout(expiryTimer); expired(); };

  window.embeddedservice_bootstrap = {
    settings: {},
    init: function () {
      log.inits++;
      show();
      fire("onEmbeddedMessagingReady");
    },
    userVerificationAPI: { setIdentityToken: setIdentityToken, clearSession: clearSession }
  };
})();
