// Tether's LivePerson page script: the identity function LivePerson's tag reads and the
// authentication method it calls. Served by Tether at {{PREFIX}}/liveperson/identity.js, and
// carried by the page loader (docs/vendors/liveperson.md, "On the page").
//
// - lpTag.identities: calls back {iss, acr: "loa1", sub} for the signed-in user, or null. When
//   the page already knows who it is for (Tether's loader says so), it answers at once, with no
//   request, as LivePerson's own examples do; otherwise it asks Tether.
// - window.{{METHOD}}(callback, codeChallenge): calls back a signed JWT (Implicit Flow) or
//   {ssoKey: code, redirect_uri} (Code Flow), or ("", reason) on failure. Nothing is cached in
//   the browser: Tether caches per user, so a shared computer never hands one user's token to
//   the next.
// - TetherLivePerson.logout(): for a single-page app's logout; LivePerson decides identity per
//   page, so the tag is told a new page began (lpTag.newPage), which ends the authenticated
//   conversation.
(function () {
  "use strict";
  var prefix = "{{PREFIX}}";
  var flow = "{{FLOW}}";
  var issuer = "{{ISSUER}}" || "https://" + location.host + prefix;
  // What the page says: {sub} (signed in), false (nobody), or null (ask Tether).
  var known = null;

  function call(method, path, body) {
    var init = { method: method, credentials: "same-origin", cache: "no-store", headers: {} };
    if (body) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(prefix + path, init).then(function (response) {
      if (response.status === 401 || !response.ok) {
        // An unread body keeps the connection and the page busy.
        if (response.body && response.body.cancel) response.body.cancel().catch(function () {});
        if (response.status === 401) return null;
        throw new Error("Tether " + path + " answered " + response.status);
      }
      return response.json();
    });
  }

  function identity(callback) {
    if (known) {
      callback({ iss: issuer, acr: "loa1", sub: known.sub });
      return;
    }
    if (known === false) {
      callback(null);
      return;
    }
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

  function logout() {
    known = null;
    var tag = window.lpTag;
    if (tag && typeof tag.newPage === "function") tag.newPage(location.href);
  }

  window.TetherLivePerson = {
    identity: identity,
    authenticate: authenticate,
    logout: logout,
    // The page loader's call: the page is for this visitor ({sub}), for nobody (false), or it
    // cannot say (null).
    know: function (visitor) {
      known = visitor === false ? false : visitor && visitor.sub ? visitor : null;
    }
  };
  window.lpTag = window.lpTag || {};
  window.lpTag.identities = window.lpTag.identities || [];
  window.lpTag.identities.push(identity);
  window["{{METHOD}}"] = authenticate;
})();
