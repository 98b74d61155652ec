// Tether's LivePerson page script: the identity function LivePerson's tag reads and the
// authentication method it calls. Served by Tether at {{PREFIX}}/liveperson/identity.js.
//
// - lpTag.identities: calls back {iss, acr: "loa1", sub} for the logged-in user, or null.
// - window.{{METHOD}}(callback, codeChallenge): calls back a signed JWT (Implicit Flow) or
//   {ssoKey: code, redirect_uri} (Code Flow), or ("", reason) on failure. Nothing is cached in
//   the browser: Tether caches per user, so a shared computer never hands one user's token to
//   the next.
(function () {
  "use strict";
  var prefix = "{{PREFIX}}";
  var flow = "{{FLOW}}";

  function call(method, path, body) {
    var init = { method: method, credentials: "same-origin", cache: "no-store", headers: {} };
    if (body) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(prefix + path, init).then(function (response) {
      if (response.status === 401) {
        return null;
      }
      if (!response.ok) {
        throw new Error("Tether " + path + " answered " + response.status);
      }
      return response.json();
    });
  }

  function identity(callback) {
    call("GET", "/liveperson/identity").then(
      function (who) {
        callback(who ? { iss: who.iss, acr: "loa1", sub: who.sub } : null);
      },
      function () {
        callback(null);
      }
    );
  }

  function authenticate(callback, codeChallenge) {
    var answer;
    if (flow === "code") {
      var body = codeChallenge ? { code_challenge: codeChallenge, code_challenge_method: "S256" } : {};
      answer = call("POST", "/liveperson/code", body).then(function (grant) {
        return grant && { ssoKey: grant.code, redirect_uri: grant.redirect_uri };
      });
    } else {
      answer = call("GET", "/liveperson/token").then(function (token) {
        return token && token.jwt;
      });
    }
    answer.then(
      function (result) {
        if (result) {
          callback(result);
        } else {
          callback("", "not_authenticated");
        }
      },
      function (error) {
        callback("", String((error && error.message) || error));
      }
    );
  }

  window.lpTag = window.lpTag || {};
  window.lpTag.identities = window.lpTag.identities || [];
  window.lpTag.identities.push(identity);
  window["{{METHOD}}"] = authenticate;
})();
