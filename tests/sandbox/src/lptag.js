/* Sandbox stand-in for LivePerson's tag.js, served by the sandbox at /sandbox/widget/lptag.js.
 * Not LivePerson's code: it behaves as docs/vendors/liveperson.md says the tag behaves,
 * including what makes an integration fail.
 *
 * - It needs the monitor snippet's lpTag: it calls lpTag.defer at once, as tag.js does, and
 *   throws without it (and never starts).
 * - It takes over lpTag.events, runs what the snippet deferred, and starts when the DOM is ready
 *   (the snippet's LPT DOM_READY trigger, or lpTag.isDom set by hand) and autoStart allows.
 * - It calls the identity function (recording whether it answered synchronously), then the
 *   authentication method; it checks the JWT (RS256 against the issuer's JWKS, with WebCrypto;
 *   iss and sub against the identity) and draws a bubble naming the verified consumer.
 * - lpTag.newPage(url) ends the authenticated conversation and decides identity again.
 * - window.__sandboxLivePerson records it all (loads: how often the tag ran).
 */
(function () {
  "use strict";
  var tag = window.lpTag;
  var log = (window.__sandboxLivePerson = window.__sandboxLivePerson || { loads: 0, newPages: 0 });
  log.loads++;
  log.state = "loaded";
  // tag.js's first move: without the snippet's object this throws, and the tag never starts.
  tag.defer(function () {}, 0);

  var handlers = {};
  tag.events = {
    bind: function (app, ev, fn) {
      (handlers[app + " " + ev] = handlers[app + " " + ev] || []).push(fn);
    },
    trigger: function (app, ev, data) {
      (handlers[app + " " + ev] || []).forEach(function (fn) { fn(data); });
    }
  };
  ["_defB", "_defT", "_defL"].forEach(function (list) {
    (tag[list] || []).splice(0).forEach(function (fn) { fn(); });
  });

  var started = false;
  function maybeStart() {
    if (started || !tag.isDom || tag.autoStart === false) return;
    started = true;
    log.state = "started";
    decide();
  }
  tag.events.bind("LPT", "DOM_READY", maybeStart);
  tag.start = function () {
    tag.autoStart = true;
    maybeStart();
  };
  tag.newPage = function () {
    log.newPages++;
    if (started) decide();
  };
  maybeStart();

  function bubble(state, text, sub) {
    log.state = state;
    log.sub = sub || null;
    function draw() {
      var el = document.getElementById("sandbox-liveperson") || document.createElement("div");
      el.id = "sandbox-liveperson";
      el.setAttribute("data-state", state);
      if (sub) el.setAttribute("data-sub", sub); else el.removeAttribute("data-sub");
      el.textContent = text;
      el.style.cssText = "position:fixed;right:16px;bottom:72px;max-width:24em;padding:10px 14px;" +
        "border-radius:16px 16px 4px 16px;background:#1a1aa6;color:#fff;font:14px system-ui;" +
        "box-shadow:0 2px 8px rgba(0,0,0,.3);z-index:2147483647";
      if (!el.parentNode) document.body.appendChild(el);
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

  // One page's identity: the identity function, then the authentication method.
  function decide() {
    var identities = tag.identities || [];
    if (!identities.length) {
      bubble("anonymous", "LivePerson (sandbox), site " + tag.site + ": anonymous visitor");
      return;
    }
    var synchronous = true;
    identities[0](function (who) {
      log.identitySync = synchronous;
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
    synchronous = false;
  }
})();
