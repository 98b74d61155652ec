/* Sandbox stand-in for LivePerson's lpTag, served by the sandbox at /sandbox/widget/lptag.js.
 * Not LivePerson's code: it calls the page's identity function and authentication method the
 * way docs/vendors/liveperson.md describes, checks the JWT (RS256 signature against the
 * issuer's JWKS, with WebCrypto; iss and sub against the identity), and draws a bubble.
 */
(function () {
  "use strict";
  var tag = window.lpTag || {};
  var log = (window.__sandboxLivePerson = { state: "starting" });

  function bubble(state, text, sub) {
    function draw() {
      var el = document.getElementById("sandbox-liveperson") || document.createElement("div");
      el.id = "sandbox-liveperson";
      el.setAttribute("data-state", state);
      if (sub) el.setAttribute("data-sub", sub);
      el.textContent = text;
      el.style.cssText = "position:fixed;right:16px;bottom:72px;max-width:24em;padding:10px 14px;" +
        "border-radius:16px 16px 4px 16px;background:#1a1aa6;color:#fff;font:14px system-ui;" +
        "box-shadow:0 2px 8px rgba(0,0,0,.3);z-index:2147483647";
      if (!el.parentNode) document.body.appendChild(el);
      log.state = state;
      log.sub = sub || null;
    }
    if (document.body) draw();
    else document.addEventListener("DOMContentLoaded", draw);
  }

  function fail(error) {
    bubble("failed", "LivePerson (sandbox): " + ((error && error.message) || error));
  }

  function bytes(base64url) {
    var text = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) text += "=";
    var binary = atob(text);
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }

  function json(base64url) {
    return JSON.parse(new TextDecoder().decode(bytes(base64url)));
  }

  function verify(jwt, who) {
    var parts = jwt.split(".");
    if (parts.length !== 3) return Promise.reject(new Error("not a signed JWT (an encrypted one only LivePerson can read)"));
    var header = json(parts[0]);
    var claims = json(parts[1]);
    if (header.alg !== "RS256") return Promise.reject(new Error("alg " + header.alg + ", expected RS256"));
    if (claims.iss !== who.iss || claims.sub !== who.sub) {
      return Promise.reject(new Error("the token's iss/sub differ from the identity function's"));
    }
    return fetch(claims.iss + "/jwks.json")
      .then(function (response) { return response.json(); })
      .then(function (jwks) {
        var jwk = jwks.keys.filter(function (k) { return k.kid === header.kid; })[0];
        if (!jwk) throw new Error("kid " + header.kid + " is not in the issuer's JWKS");
        return crypto.subtle.importKey("jwk", { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RS256", ext: true },
          { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"]);
      })
      .then(function (key) {
        var signed = new TextEncoder().encode(parts[0] + "." + parts[1]);
        return crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, bytes(parts[2]), signed);
      })
      .then(function (valid) {
        if (!valid) throw new Error("the signature does not verify");
        if (claims.exp * 1000 <= Date.now()) throw new Error("the token has expired");
        return claims;
      });
  }

  var identities = tag.identities || [];
  if (!identities.length) {
    bubble("anonymous", "LivePerson (sandbox), site " + tag.site + ": anonymous visitor");
    return;
  }
  identities[0](function (who) {
    if (!who) {
      bubble("anonymous", "LivePerson (sandbox), site " + tag.site + ": anonymous visitor");
      return;
    }
    var method = window[tag.authMethod || "lpGetAuthenticationToken"];
    if (typeof method !== "function") return fail("no authentication method on the page");
    method(function (answer, error) {
      if (!answer) return fail("authentication failed: " + error);
      if (typeof answer !== "string") {
        bubble("code", "LivePerson (sandbox): a code for " + who.sub + " (LivePerson's servers exchange it)", who.sub);
        return;
      }
      verify(answer, who).then(function (claims) {
        var name = claims.given_name || claims.preferred_username || claims.sub;
        bubble("verified", "LivePerson (sandbox): authenticated as " + name + " (sub " + claims.sub +
          ", signature verified)", claims.sub);
      }, fail);
    });
  });
})();
