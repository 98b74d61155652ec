/* Shared by the sandbox's stand-ins for Zendesk's, Intercom's and Salesforce's widgets (served
 * in front of each): JWT parsing and verification with WebCrypto (independent of Tether's own
 * signing code), and the bubble each draws. */
var sandbox = (function () {
  "use strict";
  function bytes(base64url) {
    var text = String(base64url).replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) text += "=";
    var binary = atob(text);
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  }
  function text(base64url) { return new TextDecoder().decode(bytes(base64url)); }

  /* {header, claims, signed, signature} of a compact JWS; throws on anything else. */
  function parse(jwt) {
    var parts = String(jwt).split(".");
    if (parts.length !== 3) throw new Error("not a compact JWS");
    return {
      header: JSON.parse(text(parts[0])),
      claims: JSON.parse(text(parts[1])),
      signed: new TextEncoder().encode(parts[0] + "." + parts[1]),
      signature: bytes(parts[2])
    };
  }

  /* The claims of an HS256 JWT whose signature `secret` verifies; rejects otherwise. */
  function verifyHs256(jwt, secret) {
    var token;
    try { token = parse(jwt); } catch (e) { return Promise.reject(e); }
    if (token.header.alg !== "HS256") return Promise.reject(new Error("alg is not HS256"));
    return crypto.subtle.importKey("raw", new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
      .then(function (key) { return crypto.subtle.verify("HMAC", key, token.signature, token.signed); })
      .then(function (ok) {
        if (!ok) throw new Error("bad signature");
        return token;
      });
  }

  /* The claims of an RS256 JWT that `jwk` verifies; rejects otherwise. */
  function verifyRs256(jwt, jwk) {
    var token;
    try { token = parse(jwt); } catch (e) { return Promise.reject(e); }
    if (token.header.alg !== "RS256") return Promise.reject(new Error("alg is not RS256"));
    var publicJwk = { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RS256", ext: true };
    return crypto.subtle.importKey("jwk", publicJwk,
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["verify"])
      .then(function (key) {
        return crypto.subtle.verify("RSASSA-PKCS1-v1_5", key, token.signature, token.signed);
      })
      .then(function (ok) {
        if (!ok) throw new Error("bad signature");
        return token;
      });
  }

  /* Lowercase hex HMAC-SHA256 of `message` under `secret`. */
  function hmacHex(secret, message) {
    return crypto.subtle.importKey("raw", new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" }, false, ["sign"])
      .then(function (key) { return crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)); })
      .then(function (mac) {
        return Array.prototype.map.call(new Uint8Array(mac), function (b) {
          return ("0" + b.toString(16)).slice(-2);
        }).join("");
      });
  }

  /* Draws (or redraws) a stand-in's bubble. */
  function bubble(id, bottom, color, state, message, user) {
    function draw() {
      var el = document.getElementById(id) || document.createElement("div");
      el.id = id;
      el.setAttribute("data-state", state);
      if (user) el.setAttribute("data-user", user); else el.removeAttribute("data-user");
      el.textContent = message;
      el.style.cssText = "position:fixed;right:16px;bottom:" + bottom + "px;max-width:24em;" +
        "padding:10px 14px;border-radius:16px 16px 4px 16px;background:" + color + ";color:#fff;" +
        "font:14px system-ui;box-shadow:0 2px 8px rgba(0,0,0,.3);z-index:2147483647";
      if (!el.parentNode) document.body.appendChild(el);
    }
    if (document.body) draw(); else document.addEventListener("DOMContentLoaded", draw);
  }

  return { bytes: bytes, parse: parse, verifyHs256: verifyHs256, verifyRs256: verifyRs256,
           hmacHex: hmacHex, bubble: bubble };
})();
